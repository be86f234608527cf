//! (placeholder: filled in by the chains work)
