//! Proxy handlers glued to the engine: the protocol's server side
//! ([`crate::handler`]) learns the target, the service's chain dials it, the
//! data path pipes it, and the connection shows in the live list like any other.

use super::tcp::{dial_target, relay};
use super::Ctx;
use crate::codec::addr::Addr;
use crate::codec::socks5::{cmd, rep};
use crate::conn::Conn;
use crate::handler::{http, relay as hrelay, socks4, socks5, socks5_udp};
use crate::stats::Meter;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tracing::{debug, warn};

fn md_bool(ctx: &Ctx, key: &str) -> bool {
    ctx.plan.handler_md.get_bool(&[key]).unwrap_or(None).unwrap_or(false)
}

/// A handshake failure: the client's problem, logged at debug unless it is a
/// refused login (which an operator wants to see).
fn handshake_failed(ctx: &Ctx, peer: SocketAddr, proto: &str, e: &dyn std::fmt::Display) {
    let msg = e.to_string();
    let msg = msg.strip_prefix(&format!("{proto}: ")).map(str::to_string).unwrap_or(msg);
    ctx.counters.fail(format!("{peer}: {proto}: {msg}"));
    if msg.contains("authentication") || msg.contains("not allowed") || msg.contains("disabled") {
        warn!(service = %ctx.plan.name, client = %peer, "{proto}: {msg}");
    } else {
        debug!(service = %ctx.plan.name, client = %peer, "{proto}: {msg}");
    }
}

/// GOST's `socks5` handler: CONNECT through the chain; with `udp=true`
/// UDP-over-stream associations and standard UDP ASSOCIATE; with `bind=true`
/// the BIND family.
pub async fn socks5(client: Conn, peer: SocketAddr, ctx: Arc<Ctx>) {
    let opts = socks5::ServerOptions { auther: ctx.plan.auther.clone(), udp: md_bool(&ctx, "udp"), bind: md_bool(&ctx, "bind"), tls: ctx.plan.socks5_tls.clone() };
    // Taken before a TLS layer may hide the socket: the BIND and UDP ASSOCIATE
    // replies report it.
    let reply_ip = client.local_addr().map(|a| a.ip());
    let (mut client, req) = match tokio::time::timeout(ctx.plan.read_timeout, socks5::accept(client, &opts)).await {
        // Without TLS (methods 00/02) this is the accepted connection itself, so
        // CONNECT keeps the splice fast path.
        Ok(Ok((s, r))) => (s.into_conn(), r),
        Ok(Err(e)) => return handshake_failed(&ctx, peer, "socks5", &e),
        Err(_) => return handshake_failed(&ctx, peer, "socks5", &format!("no request within {:?}", ctx.plan.read_timeout)),
    };
    match req.cmd {
        cmd::CONNECT => {
            let target = req.addr.to_string();
            let (up, route) = match dial_target(&ctx, &target, None).await {
                Some(Ok(x)) => x,
                Some(Err(e)) => {
                    ctx.counters.fail(e.clone());
                    warn!(service = %ctx.plan.name, client = %peer, target = %target, "{e}");
                    let _ = socks5::reply(&mut client, rep::HOST_UNREACHABLE, None).await;
                    return;
                }
                None => return,
            };
            let bound = up.local_addr().map(Addr::from);
            if let Err(e) = socks5::reply(&mut client, rep::SUCCEEDED, bound.as_ref()).await {
                return handshake_failed(&ctx, peer, "socks5", &e);
            }
            relay(&ctx, client, up, &peer.to_string(), &target, "", route).await;
        }
        cmd::UDP_TUN if req.addr.port == 0 => udp_tun(client, peer, ctx).await,
        // GOST's remote forwarding end: the client's rtcp/rudp listener lives here.
        cmd::MUX_BIND => {
            match socks5::mux_bind(client, &req, reply_ip, ctx.plan.mux.clone()).await {
                Ok(server) => serve_mux_bind(server, peer, ctx).await,
                Err(e) => bind_failed(&ctx, peer, "socks5", &e),
            }
        }
        cmd::BIND => {
            match socks5::bind(client, &req, reply_ip).await {
                Ok(b) => {
                    let target = b.peer_addr.to_string();
                    let route = crate::chain::Route::default();
                    relay(&ctx, Conn::boxed(b.control), Conn::Tcp(b.peer), &peer.to_string(), &target, "bind", route).await;
                }
                Err(e) => bind_failed(&ctx, peer, "socks5", &e),
            }
        }
        cmd::UDP_TUN => match socks5::udp_bind(&mut client, &req).await {
            Ok(sock) => serve_udp_tun(client, sock, peer, ctx).await,
            Err(e) => bind_failed(&ctx, peer, "socks5", &e),
        },
        cmd::UDP_ASSOCIATE => udp_associate(client, reply_ip, peer, ctx).await,
        other => {
            debug!(service = %ctx.plan.name, client = %peer, "socks5: command 0x{other:02x} is not supported by Portway yet");
            let _ = socks5::reply(&mut client, rep::CMD_UNSUPPORTED, None).await;
        }
    }
}

/// GOST's `http` handler: CONNECT tunnels, GOST's UDP tunnel (`udp=true`), and
/// plain proxying of `GET http://…` requests, each through the service's chain.
pub async fn http(mut client: Conn, peer: SocketAddr, ctx: Arc<Ctx>) {
    let md = &ctx.plan.handler_md;
    let mut opts = http::ServerOptions { auther: ctx.plan.auther.clone(), udp: md_bool(&ctx, "udp"), header: md.get_string_map(&["header"]), ..Default::default() };
    if let Some(a) = md.get_string(&["proxyAgent"]) {
        opts.proxy_agent = a;
    }
    if let Some(r) = md.get_string(&["authBasicRealm", "realm"]) {
        opts.realm = r;
    }
    let req = match tokio::time::timeout(ctx.plan.read_timeout, http::accept(&mut client, &opts)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return handshake_failed(&ctx, peer, "http", &e),
        Err(_) => return handshake_failed(&ctx, peer, "http", &format!("no request within {:?}", ctx.plan.read_timeout)),
    };
    match req {
        http::Request::Connect(t) => {
            let (up, route) = match dial_target(&ctx, &t.target, None).await {
                Some(Ok(x)) => x,
                Some(Err(e)) => {
                    ctx.counters.fail(e.clone());
                    warn!(service = %ctx.plan.name, client = %peer, target = %t.target, "{e}");
                    let _ = http::reply_error(&mut client, &opts, 503).await;
                    return;
                }
                None => return,
            };
            if let Err(e) = http::reply_connected(&mut client, &opts).await {
                return handshake_failed(&ctx, peer, "http", &e);
            }
            let client = Conn::prefixed(t.leftover, client);
            relay(&ctx, client, up, &peer.to_string(), &t.target, "", route).await;
        }
        http::Request::Udp(t) => {
            if let Err(e) = http::reply_udp_ok(&mut client, &opts).await {
                return handshake_failed(&ctx, peer, "http", &e);
            }
            let client = Conn::prefixed(t.leftover, client);
            udp_tun_after_reply(client, peer, ctx).await;
        }
        http::Request::Plain(p) => {
            let target = p.target.addr.clone();
            let (id, meter, cancel) = register(&ctx, peer, "tcp", &target, "");
            let mut client = crate::io::Metered::new(client, meter);
            let ctx2 = ctx.clone();
            let dial = move |addr: String| {
                let ctx = ctx2.clone();
                async move {
                    match dial_target(&ctx, &addr, None).await {
                        Some(Ok((c, _))) => Ok(c),
                        Some(Err(e)) => {
                            warn!(service = %ctx.plan.name, target = %addr, "{e}");
                            Err(std::io::Error::other(e))
                        }
                        None => Err(std::io::Error::other("service stopped")),
                    }
                }
            };
            let r = tokio::select! {
                _ = cancel.cancelled() => Err("closed by user".to_string()),
                r = http::proxy_plain(&mut client, p, dial) => r.map_err(|e| e.to_string()),
            };
            unregister(&ctx, id, r.err());
        }
    }
}

/// The server half of GOST's UDP-over-stream association: datagrams framed on the
/// client's stream go out of a UDP socket of ours, answers come back framed.
async fn udp_tun(mut client: Conn, peer: SocketAddr, ctx: Arc<Ctx>) {
    if ctx.plan.chain.is_some() {
        // The association's datagrams would have to go through the chain as UDP
        // too; refuse plainly rather than bypass the chain.
        warn!(service = %ctx.plan.name, client = %peer, "socks5: UDP through this service's own chain is not supported yet");
        let _ = socks5::reply(&mut client, rep::CMD_UNSUPPORTED, None).await;
        return;
    }
    let sock = match bind_udp_like(peer).await {
        Ok(s) => s,
        Err(e) => {
            warn!(service = %ctx.plan.name, client = %peer, "socks5: udp socket: {e}");
            let _ = socks5::reply(&mut client, rep::GENERAL_FAILURE, None).await;
            return;
        }
    };
    let bound = sock.local_addr().ok().map(Addr::from);
    if socks5::reply(&mut client, rep::SUCCEEDED, bound.as_ref()).await.is_err() {
        return;
    }
    serve_udp_tun(client, sock, peer, ctx).await;
}

/// Standard UDP ASSOCIATE (go-gost/x `handler/socks/v5/udp.go`): the chain's
/// UDP tunnel is opened first (its failure answers `01`, as GOST does), then a
/// UDP socket on the address the client reached is answered, and datagrams
/// are relayed until the client closes the control connection.
/// `local_ip` is the address the client reached, taken before any TLS layer.
async fn udp_associate(mut client: Conn, local_ip: Option<IpAddr>, peer: SocketAddr, ctx: Arc<Ctx>) {
    let size = socks5_udp::buffer_size(ctx.plan.handler_md.get_int(&["udpBufferSize", "udp.bufferSize"]).ok().flatten());
    let tunnel = match &ctx.plan.chain {
        None => None,
        Some(chain) => match udp_tunnel(&ctx, chain, peer).await {
            Ok(x) => Some(x),
            Err(e) => {
                ctx.counters.fail(format!("{peer}: socks5 UDP ASSOCIATE: {e}"));
                warn!(service = %ctx.plan.name, client = %peer, "socks5 UDP ASSOCIATE: {e}");
                let _ = socks5::reply(&mut client, rep::GENERAL_FAILURE, None).await;
                return;
            }
        },
    };
    let assoc = match socks5_udp::associate(&mut client, local_ip, peer.ip(), size).await {
        Ok(a) => a,
        Err(e) => return bind_failed(&ctx, peer, "socks5", &e),
    };
    let node = tunnel.as_ref().map(|(_, n)| n.clone()).unwrap_or_default();
    let (id, meter, cancel) = register(&ctx, peer, "udp", "*", &node);
    if let Ok(a) = assoc.local_addr() {
        debug!(service = %ctx.plan.name, client = %peer, "socks5: UDP ASSOCIATE relaying on {a}");
    }
    let to_targets = |n: u64| meter.add_in(n);
    let to_client = |n: u64| meter.add_out(n);
    let meters = socks5_udp::Meters { to_targets: &to_targets, to_client: &to_client };
    let r = tokio::select! {
        _ = cancel.cancelled() => Err("closed by user".to_string()),
        r = async {
            match tunnel {
                None => socks5_udp::relay_direct(client, &assoc, meters).await.map_err(|e| super::io_msg(&e)),
                Some((stream, _)) => socks5_udp::relay_stream(client, &assoc, stream, meters).await.map_err(|e| e.to_string()),
            }
        } => r,
    };
    if assoc.dropped() > 0 {
        debug!(service = %ctx.plan.name, client = %peer, "socks5: UDP ASSOCIATE dropped {} datagrams", assoc.dropped());
    }
    unregister(&ctx, id, r.err());
}

/// The chain's UDP tunnel for an association whose datagrams go to many
/// targets: only connectors whose frames name each datagram's address can
/// carry it (socks5, http). Returns the stream and the last node's name.
async fn udp_tunnel(ctx: &Ctx, chain: &crate::config::validate::ChainPlan, peer: SocketAddr) -> Result<(Conn, String), String> {
    let per_datagram = |c: &str| matches!(c, "socks5" | "socks" | "http");
    if let Some(bad) = chain.hops.last().and_then(|h| h.opts.iter().find(|o| !per_datagram(&o.connector) || o.dialer == "udp")) {
        return Err(format!("the chain's last hop uses connector {:?}, which cannot carry datagrams to several targets (use socks5 or http)", bad.connector));
    }
    let hash_key = peer.ip().to_string();
    // GOST dials the chain with an empty address; the tunnel's frames carry each target.
    let (conn, route) = crate::chain::dial_retry_network(Some(chain), crate::chain::Network::Udp, "0.0.0.0:0", ctx.plan.dial_timeout, Some(&hash_key), ctx.plan.retries).await?;
    let node = route.hops.iter().rev().find(|h| h.hop != "target").map(|h| h.node.clone()).unwrap_or_default();
    Ok((conn, node))
}

/// GOST's UDP tunnel over HTTP: the 200 is out, frames follow.
async fn udp_tun_after_reply(client: Conn, peer: SocketAddr, ctx: Arc<Ctx>) {
    if ctx.plan.chain.is_some() {
        warn!(service = %ctx.plan.name, client = %peer, "http: UDP through this service's own chain is not supported yet");
        return;
    }
    match bind_udp_like(peer).await {
        Ok(sock) => serve_udp_tun(client, sock, peer, ctx).await,
        Err(e) => warn!(service = %ctx.plan.name, client = %peer, "http: udp socket: {e}"),
    }
}

async fn serve_udp_tun(client: Conn, sock: tokio::net::UdpSocket, peer: SocketAddr, ctx: Arc<Ctx>) {
    let (id, meter, cancel) = register(&ctx, peer, "udp", "*", "udp-tun");
    let to_targets = |n: u64| meter.add_in(n);
    let to_client = |n: u64| meter.add_out(n);
    let r = tokio::select! {
        _ = cancel.cancelled() => Err("closed by user".to_string()),
        r = socks5::udp_tun_serve(client, sock, &to_targets, &to_client) => r.map_err(|e| e.to_string()),
    };
    unregister(&ctx, id, r.err());
}

async fn bind_udp_like(peer: SocketAddr) -> std::io::Result<tokio::net::UdpSocket> {
    // Dual-stack where the machine has IPv6, so targets of either family work.
    match tokio::net::UdpSocket::bind(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)).await {
        Ok(s) => Ok(s),
        Err(_) => {
            let _ = peer;
            tokio::net::UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)).await
        }
    }
}

/// Lists a connection that does not go through [`relay`] (a UDP association).
fn register(ctx: &Ctx, peer: SocketAddr, network: &'static str, target: &str, node: &str) -> (u64, Meter, tokio_util::sync::CancellationToken) {
    let id = ctx.conns.next_id();
    let cancel = ctx.cancel.child_token();
    let meter = ctx.open_conn(id, &cancel, network, &peer.to_string(), target, node);
    (id, meter, cancel)
}

fn unregister(ctx: &Ctx, id: u64, error: Option<String>) {
    ctx.close_conn(id, error);
}

/// GOST's `socks4`/`socks4a` handler: CONNECT only.
pub async fn socks4(mut client: Conn, peer: SocketAddr, ctx: Arc<Ctx>) {
    let req = match tokio::time::timeout(ctx.plan.read_timeout, socks4::accept(&mut client, ctx.plan.auther.as_deref())).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return handshake_failed(&ctx, peer, "socks4", &e),
        Err(_) => return handshake_failed(&ctx, peer, "socks4", &format!("no request within {:?}", ctx.plan.read_timeout)),
    };
    let target = req.addr().to_string();
    let (up, route) = match dial_target(&ctx, &target, None).await {
        Some(Ok(x)) => x,
        Some(Err(e)) => {
            ctx.counters.fail(e.clone());
            warn!(service = %ctx.plan.name, client = %peer, target = %target, "{e}");
            let _ = socks4::reply(&mut client, crate::codec::socks4::FAILED).await;
            return;
        }
        None => return,
    };
    if socks4::reply(&mut client, crate::codec::socks4::GRANTED).await.is_err() {
        return;
    }
    relay(&ctx, client, up, &peer.to_string(), &target, "", route).await;
}

/// GOST's `auto` handler: SOCKS5, SOCKS4 or HTTP on one port, told apart by the
/// first byte.
pub async fn auto(mut client: Conn, peer: SocketAddr, ctx: Arc<Ctx>) {
    let mut first = [0u8; 1];
    match tokio::time::timeout(ctx.plan.read_timeout, client.read(&mut first)).await {
        Ok(Ok(1)) => {}
        _ => return,
    }
    let client = Conn::prefixed(first.to_vec(), client);
    match first[0] {
        5 => socks5(client, peer, ctx).await,
        4 => socks4(client, peer, ctx).await,
        _ => http(client, peer, ctx).await,
    }
}

/// GOST's `relay` handler: CONNECT (TCP or UDP) to the address the client asks
/// for, or — when the service has a forwarder (`-L relay://:8420/host:port`) —
/// to the forwarder's target whatever the client asked (GOST's forward mode).
pub async fn relay_handler(mut client: Conn, peer: SocketAddr, ctx: Arc<Ctx>) {
    let md = &ctx.plan.handler_md;
    let opts = hrelay::ServerOptions {
        auther: ctx.plan.auther.as_deref().cloned(),
        nodelay: md_bool(&ctx, "nodelay"),
        bind: md_bool(&ctx, "bind"),
        forward: !ctx.plan.targets.is_empty(),
        read_timeout: md.get_duration(&["readTimeout"]).unwrap_or(None).filter(|d| !d.is_zero()).unwrap_or(ctx.plan.read_timeout),
    };
    let req = match hrelay::accept(&mut client, &opts).await {
        Ok(r) => r,
        Err(e) => return handshake_failed(&ctx, peer, "relay", &e),
    };
    if req.cmd == hrelay::Command::Bind && !opts.forward {
        let addr = req.addr.clone().unwrap_or_else(|| crate::codec::addr::Addr::ip(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0));
        match req.network {
            crate::codec::relay::Network::Tcp => match hrelay::bind_tcp(client, &addr, ctx.plan.mux.clone()).await {
                Ok(server) => serve_mux_bind(server, peer, ctx).await,
                Err(e) => bind_failed(&ctx, peer, "relay", &e),
            },
            crate::codec::relay::Network::Udp => match hrelay::bind_udp(&mut client, &addr).await {
                Ok(sock) => serve_udp_tun(client, sock, peer, ctx).await,
                Err(e) => bind_failed(&ctx, peer, "relay", &e),
            },
        }
        return;
    }
    let (target, fwd_node) = if opts.forward {
        let hash_key = ctx.plan.wants_hash_key().then(|| peer.ip().to_string());
        match ctx.plan.selector.select(&ctx.plan.targets, hash_key.as_deref()) {
            Some(i) => (ctx.plan.targets[i].addr.clone(), Some(i)),
            None => {
                warn!(service = %ctx.plan.name, client = %peer, "node not available: every target is marked failed");
                let _ = hrelay::respond_error(&mut client, crate::codec::relay::STATUS_SERVICE_UNAVAILABLE).await;
                return;
            }
        }
    } else {
        match &req.addr {
            Some(a) => (a.to_string(), None),
            None => return,
        }
    };
    let mark = |ok: bool| {
        if let Some(i) = fwd_node {
            if ok {
                ctx.plan.targets[i].marker.reset()
            } else {
                ctx.plan.targets[i].marker.mark()
            }
        }
    };
    match req.network {
        crate::codec::relay::Network::Tcp => {
            let (up, route) = match dial_target(&ctx, &target, None).await {
                Some(Ok(x)) => x,
                Some(Err(e)) => {
                    mark(false);
                    ctx.counters.fail(e.clone());
                    warn!(service = %ctx.plan.name, client = %peer, target = %target, "{e}");
                    let _ = hrelay::respond_error(&mut client, opts.dial_failure_status()).await;
                    return;
                }
                None => return,
            };
            mark(true);
            // Answer as soon as the target is reached (GOST's nodelay form): GOST
            // clients read it lazily or wait for it, both fine, and the connection
            // stays a plain socket the data path can splice.
            if let Err(e) = hrelay::respond_ok_now(&mut client).await {
                return handshake_failed(&ctx, peer, "relay", &e);
            }
            relay(&ctx, client, up, &peer.to_string(), &target, "", route).await;
        }
        crate::codec::relay::Network::Udp => {
            if ctx.plan.chain.is_some() {
                warn!(service = %ctx.plan.name, client = %peer, "relay: UDP through this service's own chain is not supported yet");
                let _ = hrelay::respond_error(&mut client, opts.dial_failure_status()).await;
                return;
            }
            let sock = match super::udp::connect_upstream(&target).await {
                Ok(s) => s,
                Err(e) => {
                    mark(false);
                    warn!(service = %ctx.plan.name, client = %peer, target = %target, "relay: udp {target}: {}", super::io_msg(&e));
                    let _ = hrelay::respond_error(&mut client, opts.dial_failure_status()).await;
                    return;
                }
            };
            mark(true);
            let stream = match hrelay::ServerStream::respond_ok(client, &opts).await {
                Ok(s) => s,
                Err(e) => return handshake_failed(&ctx, peer, "relay", &e),
            };
            let (id, meter, cancel) = register(&ctx, peer, "udp", &target, "");
            let r = tokio::select! {
                _ = cancel.cancelled() => Err("closed by user".to_string()),
                r = hrelay::udp_serve(stream, &sock, &meter) => r.map_err(|e| e.to_string()),
            };
            unregister(&ctx, id, r.err());
        }
    }
}

fn bind_failed(ctx: &Ctx, peer: SocketAddr, proto: &str, e: &dyn std::fmt::Display) {
    let msg = e.to_string();
    ctx.counters.fail(format!("{peer}: {proto}: {msg}"));
    warn!(service = %ctx.plan.name, client = %peer, "{proto} bind: {msg}");
}

/// The server end of GOST's remote TCP forwarding: a port opened here for the
/// client, each inbound connection carried to it as an smux stream. Every one
/// is listed and counted like a forwarded connection (client = the remote peer,
/// target = the binding client).
async fn serve_mux_bind(mut server: crate::handler::bind::MuxBindServer, peer: SocketAddr, ctx: Arc<Ctx>) {
    let bound = server.local_addr();
    tracing::info!(service = %ctx.plan.name, client = %peer, "listening on {bound} for {peer} (remote forwarding)");
    loop {
        let next = tokio::select! {
            _ = ctx.cancel.cancelled() => break,
            n = server.accept() => n,
        };
        match next {
            Ok(Some(inbound)) => {
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    let route = crate::chain::Route::default();
                    let from = inbound.peer_addr.to_string();
                    relay(&ctx, Conn::Tcp(inbound.peer), Conn::boxed(inbound.stream), &from, &peer.to_string(), "bind", route).await;
                });
            }
            Ok(None) => break,
            Err(e) => {
                debug!(service = %ctx.plan.name, client = %peer, "bind on {bound}: {e}");
                break;
            }
        }
    }
    tracing::info!(service = %ctx.plan.name, client = %peer, "closed {bound}{}", server.close_reason().map(|r| format!(": {r}")).unwrap_or_default());
}

/// An `ssu` service on a stream listener (`-L ssu+tls://…`): a Shadowsocks
/// stream carrying GOST's UDP-over-stream frames.
pub async fn ssu_stream(client: Conn, peer: SocketAddr, ctx: Arc<Ctx>) {
    let (id, meter, cancel) = register(&ctx, peer, "udp", "*", "ssu");
    let m1 = meter.clone();
    let m2 = meter.clone();
    let meters = crate::handler::ssu::Meters { on_in: Box::new(move |n| m1.add_in(n)), on_out: Box::new(move |n| m2.add_out(n)) };
    let r = tokio::select! {
        _ = cancel.cancelled() => Err("closed by user".to_string()),
        r = crate::handler::ssu::serve_stream(client, ctx.plan.ss_cipher.as_ref(), &meters) => r.map_err(|e| e.to_string()),
    };
    unregister(&ctx, id, r.err());
}

/// Portway's SSH server (`-L sshd://user:pass@:2222`): OpenSSH clients forward
/// through it with `ssh -N -L` (direct-tcpip, dialed through the service's
/// chain) and `ssh -N -R` (tcpip-forward). Every channel is listed and counted.
pub async fn sshd(client: Conn, peer: SocketAddr, ctx: Arc<Ctx>) {
    let Some(cfg) = ctx.plan.ssh_server.clone() else { return };
    let hooks = Arc::new(SshdHooks { ctx: ctx.clone(), peer });
    let server = crate::ssh::server::SshServer::new((*cfg).clone(), hooks);
    let r = tokio::select! {
        _ = ctx.cancel.cancelled() => Ok(()),
        r = server.serve(client, Some(peer)) => r,
    };
    if let Err(e) = r {
        handshake_failed(&ctx, peer, "sshd", &e);
    }
}

struct SshdHooks {
    ctx: Arc<Ctx>,
    peer: SocketAddr,
}

impl crate::ssh::server::SshServerHooks for SshdHooks {
    fn dial(&self, host: String, port: u16) -> crate::ssh::server::BoxFuture<'static, std::io::Result<Conn>> {
        let ctx = self.ctx.clone();
        Box::pin(async move {
            let target = crate::codec::addr::Addr::parse(&format!("{host}:{port}")).map(|a| a.to_string()).unwrap_or_else(|_| format!("{host}:{port}"));
            match dial_target(&ctx, &target, None).await {
                Some(Ok((c, _))) => Ok(c),
                Some(Err(e)) => {
                    ctx.counters.fail(e.clone());
                    Err(std::io::Error::other(e))
                }
                None => Err(std::io::Error::other("service stopped")),
            }
        })
    }

    fn relay(&self, channel: Conn, peer: Conn) -> crate::ssh::server::BoxFuture<'static, ()> {
        let ctx = self.ctx.clone();
        let client = self.peer.to_string();
        Box::pin(async move {
            let target = peer.local_addr().map(|a| a.to_string()).unwrap_or_else(|| "ssh channel".into());
            relay(&ctx, channel, peer, &client, &target, "sshd", crate::chain::Route::default()).await;
        })
    }
}
