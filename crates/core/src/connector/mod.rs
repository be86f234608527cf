//! Connectors: the client side of a proxy protocol, run over a connection a dialer
//! (or the previous hop) made, to ask the node for the next address (go-gost/x
//! `connector/*`).

pub mod socks4;
pub mod socks5;

use crate::config::validate::NodeOpts;
use crate::conn::Conn;
use std::io;

/// What a connection through the chain will carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Tcp,
    Udp,
}

/// Asks the node behind `conn` (reached with `opts`) to connect to `addr`
/// (GOST's `Connector.Connect`).
pub async fn connect(opts: &NodeOpts, conn: Conn, network: Network, _addr: &str) -> io::Result<Conn> {
    match opts.connector.as_str() {
        // The forward connector sends nothing: the server it reaches decides where
        // the bytes go, so `addr` is ignored (go-gost/x connector/forward).
        "forward" => Ok(conn),
        other => Err(io::Error::other(format!("connector {other:?} is not implemented in Portway yet"))),
    }
    .map(|c| {
        let _ = network;
        c
    })
}
