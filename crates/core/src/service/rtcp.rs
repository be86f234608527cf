//! Remote forwarding through a chain (go-gost/x `listener/rtcp`, `listener/rudp`,
//! `handler/forward/remote`): the chain's last node — a socks5 or relay server
//! with `bind=true` — opens the service's port on its host; each connection (or
//! UDP peer) arriving there comes back over the chain and is forwarded to the
//! service's target. A lost tunnel is re-established with GOST's backoff (1 s,
//! 2 s, 4 s, then every 5 s), and the rule shows why meanwhile.

use super::{io_msg, Ctx, Started};
use crate::codec::addr::Addr;
use crate::config::validate::{ChainPlan, Network};
use crate::conn::Conn;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

pub async fn start(ctx: Ctx) -> Result<Started, String> {
    let addr = Addr::parse(&ctx.plan.addr).map_err(|e| format!("{}: {e}", ctx.plan.addr))?;
    let ctx = Arc::new(ctx);
    let task = tokio::spawn(run(ctx, addr));
    // Nothing listens here: the port is on the chain's last node.
    Ok(Started { local: Vec::new(), tasks: vec![task] })
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(match attempt {
        0 => 1,
        1 => 2,
        2 => 4,
        _ => 5,
    })
}

async fn run(ctx: Arc<Ctx>, addr: Addr) {
    let Some(chain) = ctx.plan.bind_chain.clone() else { return };
    let mut attempt = 0u32;
    loop {
        let outcome = tokio::select! {
            _ = ctx.cancel.cancelled() => return,
            r = bind_once(&ctx, &chain, &addr) => r,
        };
        match outcome {
            // The tunnel worked for a while: start the backoff over.
            Ok(reason) => {
                attempt = 0;
                let msg = format!("remote port {addr} lost: {reason}; re-binding in {}s", backoff(0).as_secs());
                ctx.counters.fail(msg.clone());
                warn!(service = %ctx.plan.name, "{msg}");
            }
            Err(e) => {
                let msg = format!("cannot bind {addr} through chain {:?}: {e}; retrying in {}s", chain.name, backoff(attempt).as_secs());
                ctx.counters.fail(msg.clone());
                warn!(service = %ctx.plan.name, "{msg}");
            }
        }
        tokio::select! {
            _ = ctx.cancel.cancelled() => return,
            _ = tokio::time::sleep(backoff(attempt)) => {}
        }
        attempt = attempt.saturating_add(1);
    }
}

/// Binds once and serves until the tunnel ends: `Ok(why it ended)` after a
/// successful bind, `Err` when the bind itself failed.
async fn bind_once(ctx: &Arc<Ctx>, chain: &ChainPlan, addr: &Addr) -> Result<String, String> {
    let plan = &ctx.plan;
    let (conn, route) = crate::chain::dial_route(Some(chain), crate::chain::Network::Tcp, None, plan.dial_timeout, None).await.map_err(|(e, _)| e)?;
    let (Some(hop), Some(i)) = (chain.hops.last(), route.last_node) else {
        return Err("empty chain".into());
    };
    let opts = &hop.opts[i];
    let node = &hop.nodes[i];
    if let Conn::Ssh(session) = &conn {
        // rtcp over an SSH hop: `tcpip-forward`, each connection a forwarded-tcpip channel.
        let host = match &addr.host {
            crate::codec::addr::Host::Ip(ip) if ip.is_unspecified() => String::new(),
            crate::codec::addr::Host::Ip(ip) => ip.to_string(),
            crate::codec::addr::Host::Domain(d) => d.clone(),
        };
        let mut listener = session.tcpip_forward(&host, addr.port).await.map_err(|e| e.to_string())?;
        info!(service = %plan.name, "rtcp: listening on port {} at {} ({}) over ssh → {}", listener.port(), node.name, node.addr, targets(ctx));
        loop {
            let next = tokio::select! {
                _ = ctx.cancel.cancelled() => return Ok("service stopped".into()),
                n = listener.accept() => n,
            };
            match next {
                Ok(fc) => {
                    let peer = Addr::parse(&fc.originator).unwrap_or_else(|_| Addr::ip(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0));
                    let ctx = ctx.clone();
                    tokio::spawn(async move { forward_inbound(ctx, Conn::boxed(fc.stream), peer).await });
                }
                Err(e) => return Ok(e.to_string()),
            }
        }
    }
    match plan.network {
        Network::Tcp => {
            let (bound, listener) = match opts.connector.as_str() {
                "relay" => {
                    let o = crate::connector::relay::ConnectorOptions { auth: opts.auth.clone(), nodelay: true, server: opts.addr.clone() };
                    crate::connector::relay::bind_tcp(conn, addr, &o, opts.mux.clone()).await.map_err(|e| e.to_string())?
                }
                _ => {
                    let c = crate::connector::socks5::Socks5Connector::new(crate::connector::socks5_options(opts));
                    c.mux_bind(conn, addr, opts.mux.clone()).await.map_err(|e| e.to_string())?
                }
            };
            info!(service = %plan.name, "rtcp: listening on {bound} at {} ({}) → {}", node.name, node.addr, targets(ctx));
            while let Some((stream, peer)) = tokio::select! {
                _ = ctx.cancel.cancelled() => None,
                a = listener.accept() => a,
            } {
                let ctx = ctx.clone();
                tokio::spawn(async move { forward_inbound(ctx, Conn::boxed(stream), peer).await });
            }
            Ok(listener.close_reason().unwrap_or_else(|| "the tunnel closed".into()))
        }
        Network::Udp => {
            let mut conn = conn;
            let bound = match opts.connector.as_str() {
                "relay" => {
                    let o = crate::connector::relay::ConnectorOptions { auth: opts.auth.clone(), nodelay: true, server: opts.addr.clone() };
                    crate::connector::relay::bind_udp(&mut conn, addr, &o).await.map_err(|e| e.to_string())?
                }
                _ => {
                    let c = crate::connector::socks5::Socks5Connector::new(crate::connector::socks5_options(opts));
                    let (s, bound) = c.udp_bind(conn, addr).await.map_err(|e| e.to_string())?;
                    conn = s.into_conn();
                    bound
                }
            };
            info!(service = %plan.name, "rudp: listening on {bound} at {} ({}) → {}", node.name, node.addr, targets(ctx));
            Ok(serve_udp(ctx, conn).await)
        }
    }
}

fn targets(ctx: &Ctx) -> String {
    ctx.plan.targets.iter().map(|t| t.addr.as_str()).collect::<Vec<_>>().join(", ")
}

/// One connection that arrived at the remote port: to a target of the service,
/// through the handler's chain if it has one.
async fn forward_inbound(ctx: Arc<Ctx>, client: Conn, peer: Addr) {
    let c = &ctx.counters;
    c.total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    c.active.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let _guard = super::tcp::ActiveGuard(&c.active);
    let hash_key = ctx.plan.wants_hash_key().then(|| match &peer.host {
        crate::codec::addr::Host::Ip(ip) => ip.to_string(),
        crate::codec::addr::Host::Domain(d) => d.clone(),
    });
    super::tcp::forward_to_target(client, &peer.to_string(), hash_key.as_deref(), &ctx).await;
}

/// rudp: datagrams from remote peers arrive framed with the peer's address; each
/// peer gets a session (a UDP socket to a target, GOST's keepalive session rules:
/// rudp always keeps sessions until `ttl` of silence) and answers go back framed
/// to that peer. Returns why the tunnel ended.
async fn serve_udp(ctx: &Arc<Ctx>, conn: Conn) -> String {
    let plan = &ctx.plan;
    let (mut rx, mut tx) = crate::framed::tun_split(conn);
    let (back_tx, mut back_rx) = mpsc::channel::<(Addr, Vec<u8>)>(plan.udp.read_queue_size.max(1));
    // Frames are read by their own task: a frame read cut short by another
    // branch of the select below would lose its bytes and the framing with them.
    let (in_tx, mut in_rx) = mpsc::channel::<Result<(Addr, Vec<u8>), String>>(plan.udp.read_queue_size.max(1));
    let reader = tokio::spawn(async move {
        loop {
            let item = match rx.recv().await {
                Ok(Some((peer, payload))) => Ok((peer, payload.to_vec())),
                Ok(None) => Err("the tunnel closed".to_string()),
                Err(e) => Err(e.to_string()),
            };
            let end = item.is_err();
            if in_tx.send(item).await.is_err() || end {
                return;
            }
        }
    });
    let mut sessions: HashMap<Addr, UdpSession> = HashMap::new();
    let mut tick = tokio::time::interval(plan.udp.ttl);
    tick.tick().await;
    let reason = loop {
        tokio::select! {
            _ = ctx.cancel.cancelled() => break "service stopped".to_string(),
            _ = tick.tick() => {
                sessions.retain(|_, (_, idle, task)| {
                    if idle.swap(true, std::sync::atomic::Ordering::Relaxed) {
                        task.abort();
                        false
                    } else {
                        true
                    }
                });
            }
            Some((peer, data)) = back_rx.recv() => {
                // Counted before the send: once the peer holds it, it is counted.
                ctx.counters.bytes_out.fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
                if let Err(e) = tx.send(&peer, &data).await {
                    break e.to_string();
                }
            }
            r = in_rx.recv() => {
                let (peer, payload) = match r {
                    Some(Ok(x)) => x,
                    Some(Err(e)) => break e,
                    None => break "the tunnel closed".to_string(),
                };
                if !sessions.contains_key(&peer) {
                    match open_udp_session(ctx, &peer, back_tx.clone()).await {
                        Some(s) => {
                            sessions.insert(peer.clone(), s);
                        }
                        None => continue,
                    }
                }
                if let Some((sock, idle, _)) = sessions.get(&peer) {
                    idle.store(false, std::sync::atomic::Ordering::Relaxed);
                    match sock.send(&payload).await {
                        Ok(n) => {
                            ctx.counters.bytes_in.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(e) => debug!(service = %plan.name, "rudp: send to target: {}", io_msg(&e)),
                    }
                }
            }
        }
    };
    reader.abort();
    for (_, (_, _, t)) in sessions.drain() {
        t.abort();
    }
    reason
}

type UdpSession = (Arc<UdpSocket>, Arc<std::sync::atomic::AtomicBool>, tokio::task::JoinHandle<()>);

async fn open_udp_session(ctx: &Arc<Ctx>, peer: &Addr, back: mpsc::Sender<(Addr, Vec<u8>)>) -> Option<UdpSession> {
    let plan = &ctx.plan;
    let Some(idx) = plan.selector.select(&plan.targets, None) else {
        ctx.counters.fail("node not available: every target is marked failed");
        return None;
    };
    let target = &plan.targets[idx];
    let sock = match super::udp::connect_upstream(&target.addr).await {
        Ok(s) => {
            target.marker.reset();
            Arc::new(s)
        }
        Err(e) => {
            target.marker.mark();
            ctx.counters.fail(format!("dial udp {}: {}", target.addr, io_msg(&e)));
            return None;
        }
    };
    ctx.counters.total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let idle = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (s2, idle2, peer2) = (sock.clone(), idle.clone(), peer.clone());
    let size = plan.udp.reply_buffer_size;
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; size];
        while let Ok(n) = s2.recv(&mut buf).await {
            idle2.store(false, std::sync::atomic::Ordering::Relaxed);
            if back.send((peer2.clone(), buf[..n].to_vec())).await.is_err() {
                return;
            }
        }
    });
    Some((sock, idle, task))
}
