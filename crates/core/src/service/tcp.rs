//! TCP listener + local forwarding handler (go-gost/x `listener/tcp`,
//! `handler/forward/local`): one target per client connection, picked by the
//! forwarder's selector; a failed dial marks the target and closes the client, as
//! GOST does (the next connection picks another target).

use super::{bind_addrs, io_msg, v4_fallback, Ctx, Started};
use crate::chain::{self, Conn};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tracing::{debug, warn};

fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let sock = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    sock.set_reuseaddr(true)?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        // Dual-stack, like Go's ":port".
        let _ = socket_v6only(&sock, false);
    }
    // Accepted sockets inherit TCP_NODELAY from the listener on Linux: one
    // setsockopt here instead of one per connection.
    let _ = sock.set_nodelay(true);
    sock.bind(addr)?;
    sock.listen(4096)
}

fn socket_v6only(sock: &TcpSocket, on: bool) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let v: libc::c_int = on as libc::c_int;
    // SAFETY: setsockopt with a valid fd and a c_int option value.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_V6ONLY,
            &v as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Binds and starts accepting. The bind happens before this returns, so the
/// caller learns "address already in use" at once.
pub async fn start(ctx: Ctx) -> Result<Started, String> {
    let addrs = bind_addrs(&ctx.plan.addr).await.map_err(|e| format!("{}: {}", ctx.plan.addr, io_msg(&e)))?;
    let mut listeners = Vec::new();
    for a in addrs {
        let l = match listen(a) {
            Ok(l) => l,
            Err(e) if a.is_ipv6() && a.ip().is_unspecified() && e.kind() == io::ErrorKind::AddrNotAvailable => {
                listen(v4_fallback(a)).map_err(|e| format!("{}: {}", ctx.plan.addr, io_msg(&e)))?
            }
            Err(e) => return Err(format!("{}: {}", display_addr(&ctx.plan.addr, a), io_msg(&e))),
        };
        listeners.push(l);
    }
    let local: Vec<SocketAddr> = listeners.iter().filter_map(|l| l.local_addr().ok()).collect();
    let ctx = Arc::new(ctx);
    let tasks = listeners.into_iter().map(|l| tokio::spawn(accept_loop(l, ctx.clone()))).collect();
    Ok(Started { local, tasks })
}

fn display_addr(cfg: &str, a: SocketAddr) -> String {
    if cfg.starts_with(':') { a.to_string() } else { cfg.to_string() }
}

fn is_resource_error(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM))
}

async fn accept_loop(l: TcpListener, ctx: Arc<Ctx>) {
    let mut backoff = Duration::ZERO;
    let mut last_warn: u64 = 0;
    loop {
        let r = tokio::select! {
            _ = ctx.cancel.cancelled() => return,
            r = l.accept() => r,
        };
        match r {
            Ok((s, peer)) => {
                backoff = Duration::ZERO;
                tokio::spawn(handle(s, peer, ctx.clone()));
            }
            Err(e) if is_resource_error(&e) => {
                // Out of descriptors: back off (5 ms doubling to 1 s) instead of
                // spinning, and keep going; connections wait in the kernel backlog.
                backoff = if backoff.is_zero() { Duration::from_millis(5) } else { (backoff * 2).min(Duration::from_secs(1)) };
                if super::warn_due(&mut last_warn) {
                    warn!(service = %ctx.plan.name, "accept: {} — backing off {:?} (raise `ulimit -n`)", io_msg(&e), backoff);
                }
                ctx.counters.fail(format!("accept: {}", io_msg(&e)));
                tokio::select! {
                    _ = ctx.cancel.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
            }
            Err(e) => {
                debug!(service = %ctx.plan.name, "accept: {e}");
            }
        }
    }
}

async fn handle(sock: TcpStream, peer: SocketAddr, ctx: Arc<Ctx>) {
    // Go reports an IPv4 client on a dual-stack socket as IPv4; so do we (the hash
    // strategy keys on this string).
    let peer = super::canon(peer);
    let c = &ctx.counters;
    c.total.fetch_add(1, Relaxed);
    c.active.fetch_add(1, Relaxed);
    let _guard = ActiveGuard(&c.active);
    let client = match &ctx.plan.tls_server {
        None => Conn::Tcp(sock),
        Some(cfg) => {
            // The handshake runs here, per connection, so a slow client never holds
            // up the accept loop.
            let acceptor = tokio_rustls::TlsAcceptor::from(cfg.clone());
            match tokio::time::timeout(ctx.plan.read_timeout, acceptor.accept(sock)).await {
                Ok(Ok(s)) => Conn::boxed(s),
                Ok(Err(e)) => {
                    c.fail(format!("{peer}: tls handshake: {}", crate::tls::handshake_msg(&e)));
                    debug!(service = %ctx.plan.name, client = %peer, "tls handshake: {}", crate::tls::handshake_msg(&e));
                    return;
                }
                Err(_) => {
                    c.fail(format!("{peer}: tls handshake timed out"));
                    debug!(service = %ctx.plan.name, client = %peer, "tls handshake timed out");
                    return;
                }
            }
        }
    };
    crate::handler::serve(client, peer, ctx.clone()).await;
}

/// The local forwarding handler (`tcp`, `forward`, `rtcp` without a chain): one
/// forwarder target per connection.
pub async fn forward(client: Conn, peer: SocketAddr, ctx: Arc<Ctx>) {
    // Only the hash strategy reads the client IP as text; skip the allocation otherwise.
    let hash_key = ctx.plan.wants_hash_key().then(|| peer.ip().to_string());
    forward_to_target(client, &peer.to_string(), hash_key.as_deref(), &ctx).await;
}

/// Picks a forwarder target for one client (`client_s` for the connection list,
/// `hash_key` for the hash strategy), dials it and pipes; a failed dial marks
/// the target and closes the client, as GOST does. Remote forwarding hands its
/// inbound connections here too.
pub async fn forward_to_target(client: Conn, client_s: &str, hash_key: Option<&str>, ctx: &Ctx) {
    let plan = &ctx.plan;
    let c = &ctx.counters;
    let Some(idx) = plan.selector.select(&plan.targets, hash_key) else {
        c.fail("node not available: every target is marked failed");
        warn!(service = %plan.name, client = %client_s, "node not available: every target is marked failed");
        return;
    };
    let target = &plan.targets[idx];
    let (conn, route) = match dial_target(ctx, &target.addr, hash_key).await {
        Some(Ok(x)) => {
            target.marker.reset();
            x
        }
        Some(Err(e)) => {
            target.marker.mark();
            c.fail(e.clone());
            warn!(service = %plan.name, client = %client_s, target = %target.addr, node = %target.name, "{e}");
            return;
        }
        None => return,
    };
    relay(ctx, client, conn, client_s, &target.addr, &target.name, route).await;
}

/// Dials `target` through the service's chain with its retries; `None` when the
/// service stopped meanwhile.
pub async fn dial_target(ctx: &Ctx, target: &str, hash_key: Option<&str>) -> Option<Result<(Conn, chain::Route), String>> {
    let plan = &ctx.plan;
    tokio::select! {
        _ = ctx.cancel.cancelled() => None,
        r = chain::dial_retry(plan.chain.as_deref(), target, plan.dial_timeout, hash_key, plan.retries) => Some(r),
    }
}

/// Registers a connection, pipes it until either side ends, and reports it closed.
/// Takes the route by value to drop it once it is listed: the connection list
/// has what it shows, and an open connection should hold no more than it needs.
pub async fn relay(ctx: &Ctx, client: Conn, upstream: Conn, client_s: &str, target: &str, node: &str, route: chain::Route) {
    let plan = &ctx.plan;
    let id = ctx.conns.next_id();
    let cancel = ctx.cancel.child_token();
    // Through a chain, the node column shows the last hop's node.
    let node = route.hops.iter().rev().find(|h| h.hop != "target").map(|h| h.node.as_str()).unwrap_or(node);
    let meter = ctx.open_conn(id, &cancel, "tcp", client_s, target, node);
    debug!(service = %plan.name, client = %client_s, target = %target, route = ?route.path, "connected");
    drop(route);
    let result = tokio::select! {
        _ = cancel.cancelled() => Err(io::Error::new(io::ErrorKind::Interrupted, "closed by user")),
        r = crate::io::pipe_conn(client, upstream, &meter, plan.idle_timeout) => r,
    };
    let error = result.err().map(|e| io_msg(&e));
    // A relay hop answers lazily: its refusal (a wrong password, an unreachable
    // target) only shows once data flows. Show it on the rule like a dial error.
    if let Some(e) = error.as_deref().filter(|e| e.starts_with("relay:")) {
        ctx.counters.fail(e.to_string());
        warn!(service = %plan.name, client = %client_s, target = %target, "{e}");
    }
    debug!(service = %plan.name, client = %client_s, target = %target, bytes_in = meter.conn.bytes_in.load(Relaxed), bytes_out = meter.conn.bytes_out.load(Relaxed), "closed{}", error.as_ref().map(|e| format!(": {e}")).unwrap_or_default());
    ctx.close_conn(id, error);
}

pub(crate) struct ActiveGuard<'a>(pub(crate) &'a std::sync::atomic::AtomicU64);
impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    /// The size of the future an async fn returns, without calling it.
    fn future_size<A, B, C, F>(_: fn(A, B, C) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    #[test]
    fn a_connections_task_stays_small() {
        // Every open connection holds one of these, so it is most of a forwarder's
        // memory per idle connection (fwdbench's memory test). It was 5.6 KiB while
        // the copy loops were passed by value and waited with `readable()`; 2.0 KiB
        // after. A rare path (a proxy protocol, TLS, bulk splicing) belongs in a Box.
        let n = future_size(super::handle);
        assert!(n <= 2560, "handle's future is {n} bytes");
    }
}
