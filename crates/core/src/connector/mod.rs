//! Connectors: the client side of a proxy protocol, run over a connection a dialer
//! (or the previous hop) made, to ask the node for the next address (go-gost/x
//! `connector/*`).
pub mod relay;
