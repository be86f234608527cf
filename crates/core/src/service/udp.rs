//! UDP listener + local forwarding handler (go-gost/x `listener/udp`,
//! `internal/net/udp/listener.go`, `handler/forward/local`).
//!
//! One socket; a session per client address (`ip:port`), each with its own
//! upstream socket to a target the selector picks once per session.
//! - `keepAlive=false` (GOST's default): the session closes right after the first
//!   datagram is written back to the client (request/response, e.g. DNS).
//! - Idle sweep every `ttl`: a session already flagged idle is closed, otherwise
//!   flagged; any datagram either way clears the flag. An idle session therefore
//!   closes after one to two `ttl` periods ("at most two check cycles").
//! - `readBufferSize` bytes are read per datagram (longer ones are truncated, as in
//!   GOST); `readQueueSize` datagrams may wait per session; `backlog` sessions may
//!   be waiting for their upstream at once — beyond that, datagrams are dropped with
//!   a warning.

use super::{bind_addrs, io_msg, v4_fallback, Ctx, Started};
use crate::mmsg::{self, Batch, Refs};
use crate::stats::Meter;
use std::os::fd::AsRawFd;
use tokio::io::Interest;
use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::{Relaxed, SeqCst}};
use std::sync::Arc;
use tokio::net::UdpSocket;
use crate::connector::UdpFraming;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

struct Session {
    id: u64,
    tx: mpsc::Sender<Vec<u8>>,
    idle: Arc<AtomicBool>,
    cancel: CancellationToken,
    fast: Arc<Fast>,
}

/// What the reader needs to send a client's datagram straight to the target,
/// without waking the session task: set once the upstream socket is connected.
#[derive(Default)]
struct Fast {
    up: std::sync::OnceLock<(Arc<UdpSocket>, Meter)>,
    /// The session takes no more datagrams (keepAlive=false, after its first reply).
    closed: AtomicBool,
    /// Datagrams forwarded to the target, for the drain.
    sent: std::sync::atomic::AtomicU64,
}

fn bind_udp(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    // Linux binds `[::]` dual-stack unless net.ipv6.bindv6only is set, matching Go.
    let s = std::net::UdpSocket::bind(addr)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

pub async fn start(ctx: Ctx) -> Result<Started, String> {
    let addrs = bind_addrs(&ctx.plan.addr).await.map_err(|e| format!("{}: {}", ctx.plan.addr, io_msg(&e)))?;
    let a = addrs[0];
    let std_sock = match bind_udp(a) {
        Ok(s) => s,
        Err(e) if a.is_ipv6() && a.ip().is_unspecified() && e.kind() == io::ErrorKind::AddrNotAvailable => {
            bind_udp(v4_fallback(a)).map_err(|e| format!("{}: {}", ctx.plan.addr, io_msg(&e)))?
        }
        Err(e) => {
            let shown = if ctx.plan.addr.starts_with(':') { a.to_string() } else { ctx.plan.addr.clone() };
            return Err(format!("{shown}: {}", io_msg(&e)));
        }
    };
    let sock = UdpSocket::from_std(std_sock).map_err(|e| format!("{}: {}", ctx.plan.addr, io_msg(&e)))?;
    let local = sock.local_addr().map(|a| vec![a]).unwrap_or_default();
    if ctx.plan.handler == "ssu" {
        return Ok(Started { local, tasks: vec![tokio::spawn(run_ssu(sock, ctx))] });
    }
    let task = tokio::spawn(run(Arc::new(sock), Arc::new(ctx)));
    Ok(Started { local, tasks: vec![task] })
}

thread_local! {
    /// Replies read from upstream sockets, a batch at a time; one per thread, as
    /// it is used between two awaits only.
    static REPLIES: RefCell<Batch> = RefCell::new(Batch::new(65535));
}

async fn run(sock: Arc<UdpSocket>, ctx: Arc<Ctx>) {
    let opts = ctx.plan.udp.clone();
    let mut sessions: HashMap<SocketAddr, Session> = HashMap::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let pending = Arc::new(AtomicUsize::new(0));
    let mut tick = tokio::time::interval(opts.ttl);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    // Datagrams are read a batch per system call (see `mmsg`).
    let mut batch = Batch::new(opts.read_buffer_size);
    let mut out = Outgoing::default();
    let mut last_warn = 0u64;
    loop {
        tokio::select! {
            _ = ctx.cancel.cancelled() => break,
            Some(Done { peer, id, leftovers }) = done_rx.recv() => {
                if sessions.get(&peer).is_some_and(|s| s.id == id) {
                    sessions.remove(&peer);
                }
                // Datagrams the ended session had queued but not forwarded start
                // (or join) the client's next session instead of being lost.
                let mut left = leftovers.into_iter();
                if let Some(s) = sessions.get(&peer) {
                    for d in left.by_ref() {
                        if s.tx.try_send(d).is_err() {
                            break;
                        }
                    }
                } else if let Some(first) = left.next() {
                    let s = spawn_session(peer, first, &sock, &ctx, &pending, &done_tx);
                    for d in left {
                        let _ = s.tx.try_send(d);
                    }
                    sessions.insert(peer, s);
                }
            }
            _ = tick.tick() => {
                sessions.retain(|_, s| {
                    if s.idle.swap(true, Relaxed) {
                        s.cancel.cancel();
                        false
                    } else {
                        true
                    }
                });
            }
            r = sock.readable() => {
                if let Err(e) = r {
                    debug!(service = %ctx.plan.name, "udp recv: {e}");
                    continue;
                }
                let n = match sock.try_io(Interest::READABLE, || batch.recv(sock.as_raw_fd(), opts.read_buffer_size)) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => {
                        // ICMP errors surface here on some kernels; they concern one
                        // peer, not the socket.
                        debug!(service = %ctx.plan.name, "udp recv: {e}");
                        continue;
                    }
                };
                for i in 0..n {
                    let Some(peer) = batch.peer(i) else { continue };
                    let data = batch.datagram(i);
                    let peer = super::canon(peer);
                    if let Some(s) = sessions.get(&peer) {
                        if !s.fast.closed.load(SeqCst) && s.fast.up.get().is_some() {
                            // Counted now, right after the check and before the send: a
                            // session draining its replies stops once it has as many as
                            // were sent, and must not see this datagram's reply before
                            // the datagram is counted.
                            s.fast.sent.fetch_add(1, SeqCst);
                            s.idle.store(false, Relaxed);
                            out.add(peer, s.id, &s.fast, i);
                            continue;
                        }
                        match s.tx.try_send(data.to_vec()) {
                            Ok(()) => continue,
                            Err(mpsc::error::TrySendError::Full(_)) => {
                                if super::warn_due(&mut last_warn) {
                                    warn!(service = %ctx.plan.name, client = %peer, "udp: recv queue is full ({} datagrams), dropping", opts.read_queue_size);
                                }
                                continue;
                            }
                            // The session ended; start a new one below.
                            Err(mpsc::error::TrySendError::Closed(_)) => { sessions.remove(&peer); }
                        }
                    }
                    if pending.load(Relaxed) >= opts.backlog {
                        if super::warn_due(&mut last_warn) {
                            warn!(service = %ctx.plan.name, client = %peer, "udp: backlog of {} new sessions is full, dropping", opts.backlog);
                        }
                        continue;
                    }
                    let sess = spawn_session(peer, data.to_vec(), &sock, &ctx, &pending, &done_tx);
                    sessions.insert(peer, sess);
                }
                if let Some(peer) = out.send(&batch, &sessions) {
                    if super::warn_due(&mut last_warn) {
                        warn!(service = %ctx.plan.name, client = %peer, "udp: session queue is full ({} datagrams) or the session ended, dropping", opts.read_queue_size);
                    }
                }
            }
        }
    }
    for (_, s) in sessions.drain() {
        s.cancel.cancel();
    }
}

/// One batch's datagrams for sessions that send straight to their upstream,
/// grouped per session so that each group leaves in one sendmmsg(2).
#[derive(Default)]
struct Outgoing {
    groups: Vec<Group>,
}

struct Group {
    peer: SocketAddr,
    /// The session the datagrams were counted on; the map may hold a newer one
    /// for the same client by the time the group is sent.
    id: u64,
    fast: Arc<Fast>,
    /// Positions in the batch, in arrival order (a batch is at most 256 long).
    idx: [u8; mmsg::BATCH],
    n: usize,
}

const _: () = assert!(mmsg::BATCH <= 256);

impl Outgoing {
    fn add(&mut self, peer: SocketAddr, id: u64, fast: &Arc<Fast>, i: usize) {
        if let Some(g) = self.groups.iter_mut().find(|g| g.id == id) {
            g.idx[g.n] = i as u8;
            g.n += 1;
            return;
        }
        let mut idx = [0u8; mmsg::BATCH];
        idx[0] = i as u8;
        self.groups.push(Group { peer, id, fast: fast.clone(), idx, n: 1 });
    }

    /// Sends each group with one sendmmsg(2) and empties the list. What an
    /// upstream socket cannot take now (WouldBlock, or ECONNREFUSED left by an
    /// earlier ICMP) goes to its session task, which waits for the socket and
    /// reports errors. Returns a client whose datagrams were dropped, if any: its
    /// session's queue was full or the session had ended.
    fn send(&mut self, batch: &Batch, sessions: &HashMap<SocketAddr, Session>) -> Option<SocketAddr> {
        let mut dropped = None;
        for g in self.groups.drain(..) {
            let Some((up, meter)) = g.fast.up.get() else { continue };
            let list = Refs::new(g.idx[..g.n].iter().map(|&i| batch.datagram(i as usize)));
            let sent = up.try_io(Interest::WRITABLE, || mmsg::send_many(up.as_raw_fd(), None, &list)).unwrap_or(0);
            meter.add_in(mmsg::bytes(&list[..sent]));
            if sent == g.n {
                continue;
            }
            g.fast.sent.fetch_sub((g.n - sent) as u64, SeqCst);
            let queued = match sessions.get(&g.peer).filter(|s| s.id == g.id) {
                // Each is offered, even after one is refused.
                Some(s) => list[sent..].iter().filter(|d| s.tx.try_send(d.to_vec()).is_err()).count() == 0,
                None => false,
            };
            if !queued {
                dropped = Some(g.peer);
            }
        }
        dropped
    }
}

/// A session telling the reader it ended, with what it had not forwarded.
struct Done {
    peer: SocketAddr,
    id: u64,
    leftovers: Vec<Vec<u8>>,
}

fn spawn_session(
    peer: SocketAddr,
    first: Vec<u8>,
    sock: &Arc<UdpSocket>,
    ctx: &Arc<Ctx>,
    pending: &Arc<AtomicUsize>,
    done: &mpsc::UnboundedSender<Done>,
) -> Session {
    let (tx, rx) = mpsc::channel(ctx.plan.udp.read_queue_size.max(1));
    let _ = tx.try_send(first);
    let idle = Arc::new(AtomicBool::new(false));
    let cancel = ctx.cancel.child_token();
    let id = ctx.conns.next_id();
    let fast = Arc::new(Fast::default());
    pending.fetch_add(1, Relaxed);
    tokio::spawn(session(SessionArgs {
        id,
        peer,
        rx,
        fast: fast.clone(),
        idle: idle.clone(),
        cancel: cancel.clone(),
        sock: sock.clone(),
        ctx: ctx.clone(),
        pending: pending.clone(),
        done: done.clone(),
    }));
    Session { id, tx, idle, cancel, fast }
}

struct SessionArgs {
    id: u64,
    peer: SocketAddr,
    rx: mpsc::Receiver<Vec<u8>>,
    fast: Arc<Fast>,
    idle: Arc<AtomicBool>,
    cancel: CancellationToken,
    sock: Arc<UdpSocket>,
    ctx: Arc<Ctx>,
    pending: Arc<AtomicUsize>,
    done: mpsc::UnboundedSender<Done>,
}

pub(crate) async fn connect_upstream(target: &str) -> io::Result<UdpSocket> {
    let addrs = crate::chain::resolve(target).await?;
    let mut last = None;
    for a in addrs {
        let bind = if a.is_ipv4() { SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0) } else { SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0) };
        let s = UdpSocket::bind(bind).await?;
        match s.connect(a).await {
            Ok(()) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no address")))
}

async fn session(a: SessionArgs) {
    let SessionArgs { id, peer, mut rx, fast, idle, cancel, sock, ctx, pending, done } = a;
    let plan = &ctx.plan;
    let c = &ctx.counters;
    c.total.fetch_add(1, Relaxed);
    c.active.fetch_add(1, Relaxed);
    let hash_key = peer.ip().to_string();
    let finish = |pending_left: bool, leftovers: Vec<Vec<u8>>| {
        if pending_left {
            pending.fetch_sub(1, Relaxed);
        }
        c.active.fetch_sub(1, Relaxed);
        let _ = done.send(Done { peer, id, leftovers });
    };
    let Some(idx) = plan.selector.select(&plan.targets, Some(&hash_key)) else {
        c.fail("node not available: every target is marked failed");
        warn!(service = %plan.name, client = %peer, "node not available: every target is marked failed");
        finish(true, Vec::new());
        return;
    };
    let target = &plan.targets[idx];
    if let Some(ssu) = plan.chain.as_deref().and_then(datagram_ssu_hop) {
        let (hop, n) = (&ssu.0, ssu.1);
        let node = &hop.nodes[n];
        let assoc = async {
            let server = crate::chain::resolve(&node.addr).await?.into_iter().next().ok_or_else(|| io::Error::other("no address"))?;
            crate::connector::ssu::SsuAssociation::connect(server, hop.opts[n].ss_cipher.clone()).await
        };
        let assoc = match tokio::time::timeout(plan.dial_timeout, assoc).await {
            Ok(Ok(a)) => {
                node.marker.reset();
                a
            }
            Ok(Err(e)) => {
                node.marker.mark();
                c.fail(format!("ssu {}: {}", node.addr, io_msg(&e)));
                warn!(service = %plan.name, client = %peer, node = %node.name, "ssu {}: {}", node.addr, io_msg(&e));
                finish(true, Vec::new());
                return;
            }
            Err(_) => {
                node.marker.mark();
                c.fail(format!("ssu {}: timed out", node.addr));
                finish(true, Vec::new());
                return;
            }
        };
        pending.fetch_sub(1, Relaxed);
        let (error, leftovers) = ssu_session(&ctx, id, peer, &target.addr, &node.name, assoc, rx, &idle, &cancel, &sock).await;
        fast.closed.store(true, SeqCst);
        ctx.close_conn(id, error);
        finish(false, leftovers);
        return;
    }
    if let Some(chain) = plan.chain.clone() {
        let (conn, route) = match crate::chain::dial_retry_network(Some(&chain), crate::chain::Network::Udp, &target.addr, plan.dial_timeout, Some(&hash_key), plan.retries).await {
            Ok(x) => {
                target.marker.reset();
                x
            }
            Err(e) => {
                target.marker.mark();
                c.fail(e.clone());
                warn!(service = %plan.name, client = %peer, target = %target.addr, node = %target.name, "{e}");
                finish(true, Vec::new());
                return;
            }
        };
        pending.fetch_sub(1, Relaxed);
        let node = route.hops.iter().rev().find(|h| h.hop != "target").map(|h| h.node.clone()).unwrap_or_else(|| target.name.clone());
        let (error, leftovers) = chained(&ctx, id, peer, &target.addr, &node, conn, &route, rx, &idle, &cancel, &sock).await;
        fast.closed.store(true, SeqCst);
        ctx.close_conn(id, error);
        finish(false, leftovers);
        return;
    }
    let upstream = match tokio::time::timeout(plan.dial_timeout, connect_upstream(&target.addr)).await {
        Ok(Ok(s)) => {
            target.marker.reset();
            s
        }
        Ok(Err(e)) => {
            target.marker.mark();
            c.fail(format!("dial udp {}: {}", target.addr, io_msg(&e)));
            warn!(service = %plan.name, client = %peer, target = %target.addr, node = %target.name, "dial udp {}: {}", target.addr, io_msg(&e));
            finish(true, Vec::new());
            return;
        }
        Err(_) => {
            target.marker.mark();
            c.fail(format!("dial udp {}: timed out", target.addr));
            warn!(service = %plan.name, client = %peer, target = %target.addr, node = %target.name, "dial udp {}: timed out", target.addr);
            finish(true, Vec::new());
            return;
        }
    };
    pending.fetch_sub(1, Relaxed);
    let meter = ctx.open_conn(id, &cancel, "udp", &peer.to_string(), &target.addr, &target.name);
    let upstream = Arc::new(upstream);
    let _ = fast.up.set((upstream.clone(), meter.clone()));
    debug!(service = %plan.name, client = %peer, target = %target.addr, node = %target.name, "udp session opened");
    let keep_alive = plan.udp.keep_alive;
    let reply_size = plan.udp.reply_buffer_size;
    let mut error: Option<String> = None;
    // keepAlive=false: GOST closes the session at the first reply, losing the
    // replies to any other request already forwarded on it. Portway closes it to
    // new datagrams at that point (they start the next session, with a new target,
    // as in GOST) but keeps listening until the requests it forwarded are answered
    // or `ttl` passes.
    let mut got = 0u64;
    let mut drain_until: Option<tokio::time::Instant> = None;
    let mut announced = false;
    loop {
        if drain_until.is_some() && got >= fast.sent.load(SeqCst) {
            break;
        }
        let deadline = drain_until.unwrap_or_else(|| tokio::time::Instant::now() + std::time::Duration::from_secs(3600));
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep_until(deadline), if drain_until.is_some() => break,
            d = rx.recv(), if drain_until.is_none() => {
                let Some(d) = d else { break };
                idle.store(false, Relaxed);
                // What queued up while the upstream was being dialled (with
                // keepAlive=false, a good part of a busy client's datagrams) leaves
                // in one sendmmsg; whatever the socket cannot take now, one by one.
                let mut queued = vec![d];
                while queued.len() < mmsg::BATCH {
                    match rx.try_recv() {
                        Ok(d) => queued.push(d),
                        Err(_) => break,
                    }
                }
                fast.sent.fetch_add(queued.len() as u64, Relaxed);
                let list = Refs::new(queued.iter().map(|d| &d[..]));
                meter.add_in(mmsg::bytes(&list));
                let mut sent = 0;
                // Each turn sends at least one datagram, skips one that failed, or
                // waits for the socket to take more.
                while sent < list.len() {
                    if let Err(e) = upstream.writable().await {
                        debug!(service = %plan.name, client = %peer, target = %target.addr, "udp send: {e}");
                        break;
                    }
                    match upstream.try_io(Interest::WRITABLE, || mmsg::send_many(upstream.as_raw_fd(), None, &list[sent..])) {
                        Ok(n) => sent += n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => {
                            // A refused port shows up as ECONNREFUSED on the next
                            // send/recv; the datagram it came back on is lost.
                            debug!(service = %plan.name, client = %peer, target = %target.addr, "udp send: {e}");
                            sent += 1;
                        }
                    }
                }
            }
            // ERROR interest too: an ICMP "port unreachable" only shows as a socket
            // error, and plain readiness never fires for it.
            r = upstream.ready(tokio::io::Interest::READABLE | tokio::io::Interest::ERROR) => {
                let ready = match r {
                    Err(e) => { error = Some(io_msg(&e)); break; }
                    Ok(ready) => ready,
                };
                let res = if ready.is_error() {
                    // try_recv would only say WouldBlock here (tokio checks read
                    // readiness first) and we would spin: fetch SO_ERROR instead.
                    match upstream.take_error() {
                        Ok(Some(e)) | Err(e) => Err(e),
                        Ok(None) => Ok(None),
                    }
                } else {
                    // keepAlive=false ends the session at this reply: stop the reader's
                    // fast path before the client can see the reply and send again,
                    // so its next datagram starts the next session (GOST).
                    if !keep_alive {
                        fast.closed.store(true, SeqCst);
                    }
                    // Every reply queued on the upstream socket in one call, and
                    // straight back to the client from the thread's batch in one more;
                    // only what the client's socket cannot take now is copied out.
                    // Counted first: once the client holds a reply, the rule shows it.
                    REPLIES.with(|b| {
                        let mut b = b.borrow_mut();
                        let k = match upstream.try_io(Interest::READABLE, || b.recv(upstream.as_raw_fd(), reply_size)) {
                            Ok(k) => k,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                            Err(e) => return Err(e),
                        };
                        let replies = Refs::new((0..k).map(|i| b.datagram(i)));
                        meter.add_out(mmsg::bytes(&replies));
                        let later = match sock.try_io(Interest::WRITABLE, || mmsg::send_many(sock.as_raw_fd(), Some(peer), &replies)) {
                            Ok(m) => replies[m..].iter().map(|r| r.to_vec()).collect(),
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => replies.iter().map(|r| r.to_vec()).collect(),
                            Err(e) => {
                                debug!(service = %plan.name, client = %peer, "udp reply: {e}");
                                Vec::new()
                            }
                        };
                        Ok(Some((k as u64, later)))
                    })
                };
                match res {
                    Ok(Some((k, later))) => {
                        idle.store(false, Relaxed);
                        for data in later {
                            if let Err(e) = sock.send_to(&data, peer).await {
                                debug!(service = %plan.name, client = %peer, "udp reply: {e}");
                            }
                        }
                        got += k;
                        if !keep_alive && drain_until.is_none() {
                            fast.closed.store(true, SeqCst);
                            rx.close();
                            let mut leftovers = Vec::new();
                            while let Ok(d) = rx.try_recv() {
                                leftovers.push(d);
                            }
                            let _ = done.send(Done { peer, id, leftovers });
                            announced = true;
                            drain_until = Some(tokio::time::Instant::now() + plan.udp.ttl);
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        // ECONNREFUSED from the target: nothing listens there.
                        if e.kind() == io::ErrorKind::ConnectionRefused {
                            target.marker.mark();
                            c.fail(format!("udp {}: connection refused", target.addr));
                            warn!(service = %plan.name, client = %peer, target = %target.addr, node = %target.name, "udp {}: connection refused", target.addr);
                            error = Some("connection refused".into());
                            break;
                        }
                        debug!(service = %plan.name, client = %peer, "udp recv: {e}");
                    }
                }
            }
        }
    }
    // Stop the reader's fast path first: a datagram that arrives after this point must
    // reach the next session (and the next target), not the socket of one that ended.
    fast.closed.store(true, SeqCst);
    ctx.close_conn(id, error);
    if announced {
        c.active.fetch_sub(1, Relaxed);
    } else {
        let mut leftovers = Vec::new();
        rx.close();
        while let Ok(d) = rx.try_recv() {
            leftovers.push(d);
        }
        finish(false, leftovers);
    }
}

/// A UDP session through a chain: the last hop carries the datagrams framed on
/// a stream (GOST's UDP-over-stream for socks5/http, `udp=true` on their server).
/// Returns why it ended and the datagrams it had not sent.
#[allow(clippy::too_many_arguments)]
async fn chained(
    ctx: &Ctx,
    id: u64,
    peer: SocketAddr,
    target: &str,
    node: &str,
    conn: crate::conn::Conn,
    route: &crate::chain::Route,
    mut rx: mpsc::Receiver<Vec<u8>>,
    idle: &AtomicBool,
    cancel: &CancellationToken,
    sock: &UdpSocket,
) -> (Option<String>, Vec<Vec<u8>>) {
    let plan = &ctx.plan;
    // GOST's client resolves the target itself and frames datagrams with its IP.
    let dst = match crate::chain::resolve(target).await {
        Ok(a) => match a.first() {
            Some(a) => crate::codec::addr::Addr::from(*a),
            None => return (Some(format!("{target}: no address")), drain(rx)),
        },
        Err(e) => return (Some(format!("{target}: {}", io_msg(&e))), drain(rx)),
    };
    let meter = ctx.open_conn(id, cancel, "udp", &peer.to_string(), target, node);
    debug!(service = %plan.name, client = %peer, target = %target, route = ?route.path, "udp session opened through the chain");
    let (mut rd, mut wr) = tokio::io::split(conn);
    let (reply_tx, mut reply_rx) = mpsc::unbounded_channel::<()>();
    let framing = crate::connector::udp_framing(&route.last_connector);
    let down = async {
        let mut fb = crate::framed::FrameBuf::new();
        let mut rbuf = Vec::new();
        loop {
            let next = match framing {
                UdpFraming::Tun => crate::framed::read_frame(&mut rd, &mut fb).await.map(|o| o.map(|(_, p)| p)).map_err(|e| e.to_string()),
                UdpFraming::Relay => match crate::connector::relay::recv_datagram(&mut rd, &mut rbuf).await {
                    Ok(Some(n)) => Ok(Some(&rbuf[..n])),
                    Ok(None) => Ok(None),
                    Err(e) => Err(e.to_string()),
                },
            };
            match next {
                Ok(Some(payload)) => {
                    idle.store(false, Relaxed);
                    meter.add_out(payload.len() as u64);
                    if let Err(e) = sock.send_to(payload, peer).await {
                        debug!(service = %plan.name, client = %peer, "udp reply: {e}");
                    }
                    let _ = reply_tx.send(());
                }
                Ok(None) => return None,
                Err(e) => return Some(e),
            }
        }
    };
    tokio::pin!(down);
    let (mut sent, mut got) = (0u64, 0u64);
    let error = loop {
        tokio::select! {
            _ = cancel.cancelled() => break None,
            e = &mut down => break Some(e.unwrap_or_else(|| "the chain closed the UDP tunnel".to_string())),
            d = rx.recv() => {
                let Some(d) = d else { break None };
                if d.is_empty() {
                    continue; // a stream frame cannot carry an empty datagram (GOST drops it too)
                }
                idle.store(false, Relaxed);
                let w = match framing {
                    UdpFraming::Tun => crate::framed::write_frame(&mut wr, &dst, &d).await.map_err(|e| e.to_string()),
                    UdpFraming::Relay => crate::connector::relay::send_datagram(&mut wr, &d).await.map_err(|e| e.to_string()),
                };
                if let Err(e) = w {
                    break Some(e);
                }
                meter.add_in(d.len() as u64);
                sent += 1;
            }
            Some(()) = reply_rx.recv() => {
                got += 1;
                // keepAlive=false: the session ends once what it sent is answered.
                if !plan.udp.keep_alive && got >= sent {
                    break None;
                }
            }
        }
    };
    (error, drain(rx))
}

fn drain(mut rx: mpsc::Receiver<Vec<u8>>) -> Vec<Vec<u8>> {
    rx.close();
    let mut left = Vec::new();
    while let Ok(d) = rx.try_recv() {
        left.push(d);
    }
    left
}

/// A chain of one hop whose node speaks ssu over a datagram dialer: UDP goes to
/// it as Shadowsocks UDP packets, not through a stream. Picks the node.
fn datagram_ssu_hop(chain: &crate::config::validate::ChainPlan) -> Option<(&crate::config::validate::HopPlan, usize)> {
    let [hop] = chain.hops.as_slice() else { return None };
    if !hop.opts.iter().any(|o| o.connector == "ssu" && o.dialer == "udp") {
        return None;
    }
    let idx = hop.selector.select(&hop.nodes, None)?;
    (hop.opts[idx].connector == "ssu" && hop.opts[idx].dialer == "udp").then_some((hop, idx))
}

/// A UDP session through an ssu node: each datagram becomes one Shadowsocks
/// UDP packet to the node, addressed to the target (resolved here, as GOST's
/// client does).
#[allow(clippy::too_many_arguments)]
async fn ssu_session(
    ctx: &Ctx,
    id: u64,
    peer: SocketAddr,
    target: &str,
    node: &str,
    assoc: crate::connector::ssu::SsuAssociation,
    mut rx: mpsc::Receiver<Vec<u8>>,
    idle: &AtomicBool,
    cancel: &CancellationToken,
    sock: &UdpSocket,
) -> (Option<String>, Vec<Vec<u8>>) {
    let plan = &ctx.plan;
    let dst = match crate::chain::resolve(target).await.ok().and_then(|a| a.first().copied()) {
        Some(a) => crate::codec::addr::Addr::from(a),
        None => return (Some(format!("{target}: no address")), drain(rx)),
    };
    let meter = ctx.open_conn(id, cancel, "udp", &peer.to_string(), target, node);
    let (mut sent, mut got) = (0u64, 0u64);
    let error = loop {
        tokio::select! {
            _ = cancel.cancelled() => break None,
            d = rx.recv() => {
                let Some(d) = d else { break None };
                idle.store(false, Relaxed);
                if let Err(e) = assoc.send(&dst, &d).await {
                    break Some(e.to_string());
                }
                meter.add_in(d.len() as u64);
                sent += 1;
            }
            r = assoc.recv() => match r {
                Ok((_, payload)) => {
                    idle.store(false, Relaxed);
                    meter.add_out(payload.len() as u64);
                    if let Err(e) = sock.send_to(&payload, peer).await {
                        debug!(service = %plan.name, client = %peer, "udp reply: {e}");
                    }
                    got += 1;
                    if !plan.udp.keep_alive && got >= sent {
                        break None;
                    }
                }
                Err(e) => break Some(e.to_string()),
            },
        }
    };
    (error, drain(rx))
}

/// An `ssu` service: GOST's Shadowsocks UDP relay on this socket.
async fn run_ssu(sock: UdpSocket, ctx: Ctx) {
    let mut opts = crate::handler::ssu::ServerOptions::new(ctx.plan.ss_cipher.clone());
    opts.ttl = ctx.plan.udp.ttl;
    opts.read_queue_size = ctx.plan.udp.read_queue_size;
    opts.service = Arc::from(ctx.plan.name.as_str());
    let a = ctx.counters.clone();
    let b = ctx.counters.clone();
    let meters = Arc::new(crate::handler::ssu::Meters {
        on_in: Box::new(move |n| {
            a.bytes_in.fetch_add(n, Relaxed);
        }),
        on_out: Box::new(move |n| {
            b.bytes_out.fetch_add(n, Relaxed);
        }),
    });
    let stats = Arc::new(crate::handler::ssu::ServerStats::default());
    crate::handler::ssu::serve(sock, opts, meters, stats, ctx.cancel.clone()).await;
}
