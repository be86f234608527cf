//! (placeholder: filled in by the desktop work)
