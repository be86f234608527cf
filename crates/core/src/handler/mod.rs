//! Handlers: the server side of a proxy protocol, run on an accepted connection
//! to learn where the client wants to go (go-gost/x `handler/*`).
pub mod relay;
