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
    // Every connection's task holds this future; the proxy handlers' state machines
    // are several KiB each, so they are boxed when reached instead of making every
    // task (port forwarding's included) as big as the largest of them.
    match ctx.plan.handler.as_str() {
        "socks5" | "socks" => Box::pin(proxy::socks5(client, peer, ctx)).await,
        "socks4" | "socks4a" => Box::pin(proxy::socks4(client, peer, ctx)).await,
        "auto" => Box::pin(proxy::auto(client, peer, ctx)).await,
        "http" => Box::pin(proxy::http(client, peer, ctx)).await,
        "relay" => Box::pin(proxy::relay_handler(client, peer, ctx)).await,
        "ssu" => Box::pin(proxy::ssu_stream(client, peer, ctx)).await,
        "sshd" => Box::pin(proxy::sshd(client, peer, ctx)).await,
        _ => crate::service::tcp::forward(client, peer, ctx).await,
    }
}
