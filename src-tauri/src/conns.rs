//! (placeholder: filled in by the conns work)
