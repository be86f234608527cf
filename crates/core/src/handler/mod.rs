//! Handlers: the server side of a proxy protocol, run on an accepted connection
//! to learn where the client wants to go (go-gost/x `handler/*`).

pub mod bind;
pub mod http;
pub mod relay;
pub mod socks4;
pub mod socks5;
pub mod socks5_udp;
pub mod ssu;

use crate::service::Ctx;
use crate::conn::Conn;
use std::net::SocketAddr;
use std::sync::Arc;

/// Runs the service's handler on an accepted (and, for a `tls` listener,
/// decrypted) connection.
pub async fn serve(client: Conn, peer: SocketAddr, ctx: Arc<Ctx>) {
    use crate::service::proxy;
    match ctx.plan.handler.as_str() {
        "socks5" | "socks" => proxy::socks5(client, peer, ctx).await,
        "socks4" | "socks4a" => proxy::socks4(client, peer, ctx).await,
        "auto" => proxy::auto(client, peer, ctx).await,
        "http" => proxy::http(client, peer, ctx).await,
        "relay" => proxy::relay_handler(client, peer, ctx).await,
        "ssu" => proxy::ssu_stream(client, peer, ctx).await,
        "sshd" => proxy::sshd(client, peer, ctx).await,
        _ => crate::service::tcp::forward(client, peer, ctx).await,
    }
}
