//! Handlers: the server side of a proxy protocol, run on an accepted connection
//! to learn where the client wants to go (go-gost/x `handler/*`).

pub mod socks4;
pub mod socks5;

use crate::service::Ctx;
use crate::conn::Conn;
use std::net::SocketAddr;
use std::sync::Arc;

/// Runs the service's handler on an accepted (and, for a `tls` listener,
/// decrypted) connection.
pub async fn serve(client: Conn, peer: SocketAddr, ctx: Arc<Ctx>) {
    match ctx.plan.handler.as_str() {
        _ => crate::service::tcp::forward(client, peer, ctx).await,
    }
}
