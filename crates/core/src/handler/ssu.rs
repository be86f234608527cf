//! Server side of GOST's `ssu` service (go-gost/x `handler/ss/udp`, fed by the
//! `udp` listener of go-gost/core `common/net/udp`).
//!
//! [`serve`]: one UDP socket; every datagram is a Shadowsocks UDP packet
//! `salt | seal(ADDR | payload)`. Each client address gets a session with its own
//! unconnected UDP socket, which sends payloads to whatever target each packet
//! names and wraps every answer with the address it came from. A session ends
//! after `ttl` (GOST's listener default 5 s) without traffic, checked every `ttl`
//! like GOST's pool, so it lasts one to two `ttl` periods.
//!
//! [`serve_stream`]: the same over a stream transport (`ssu+tls` …): a
//! Shadowsocks AEAD stream carrying GOST's UDP-over-stream frames.
//!
//! Packets that do not decrypt or name no valid address are dropped with a debug
//! log and counted in [`ServerStats`]; GOST instead ends the client's session on
//! the first such packet (its `relayPacket` returns the read error).

use crate::codec::addr::{Addr, Host};
use crate::codec::ss::{decode_udp, encode_udp, SsCipher, SsError};
use crate::connector::ssu::SsStream;
use crate::framed::{read_frame, write_frame, FrameBuf};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// `None`: no encryption (GOST with an empty method or password).
    pub cipher: Option<SsCipher>,
    /// Idle time after which a client's session closes (listener `ttl`).
    pub ttl: Duration,
    /// Bytes read per datagram. GOST reads 1500 (listener `readBufferSize`), so a
    /// larger packet arrives cut and fails to decrypt; the default here takes any.
    pub read_buffer_size: usize,
    /// Datagrams that may wait per session (listener `readQueueSize`).
    pub read_queue_size: usize,
    /// Sessions at once; datagrams from further clients are dropped.
    pub max_sessions: usize,
    /// The service's name, for its log lines.
    pub service: Arc<str>,
}

impl ServerOptions {
    pub fn new(cipher: Option<SsCipher>) -> ServerOptions {
        ServerOptions { cipher, ttl: Duration::from_secs(5), read_buffer_size: 65535, read_queue_size: 128, max_sessions: 1024, service: Arc::from("") }
    }
}

/// Payload byte counters: `on_in` for client → target, `on_out` for the answers.
pub struct Meters {
    pub on_in: Box<dyn Fn(u64) + Send + Sync>,
    pub on_out: Box<dyn Fn(u64) + Send + Sync>,
}

impl Meters {
    pub fn none() -> Meters {
        Meters { on_in: Box::new(|_| {}), on_out: Box::new(|_| {}) }
    }
}

/// What the service saw, for the UI and for tests.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Datagrams that failed authentication (wrong password or method, garbage).
    pub decrypt_errors: AtomicU64,
    /// Datagrams that decrypted but were malformed, too short, or undeliverable.
    pub bad_packets: AtomicU64,
    pub sessions_opened: AtomicU64,
    pub sessions_active: AtomicU64,
}

struct Session {
    tx: mpsc::Sender<(Addr, Vec<u8>)>,
    idle: Arc<AtomicBool>,
    cancel: CancellationToken,
}

/// Shared by every session of one service.
struct Shared {
    server: Arc<UdpSocket>,
    cipher: Option<SsCipher>,
    meters: Arc<Meters>,
    stats: Arc<ServerStats>,
    service: Arc<str>,
}

/// Runs the service on `sock` until `cancel` fires (or the socket fails).
pub async fn serve(sock: UdpSocket, opts: ServerOptions, meters: Arc<Meters>, stats: Arc<ServerStats>, cancel: CancellationToken) {
    let shared = Arc::new(Shared { server: Arc::new(sock), cipher: opts.cipher.clone(), meters, stats, service: opts.service.clone() });
    let mut sessions: HashMap<SocketAddr, Session> = HashMap::new();
    let ttl = opts.ttl.max(Duration::from_millis(10));
    let mut tick = tokio::time::interval(ttl);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut buf = vec![0u8; opts.read_buffer_size.clamp(512, 65535)];
    loop {
        let (n, peer) = tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {
                sweep(&mut sessions);
                continue;
            }
            r = shared.server.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    recv_failed(&shared.service, "service socket", &e).await;
                    continue;
                }
            },
        };
        let peer = canon(peer);
        let (target, payload) = match decode_udp(shared.cipher.as_ref(), buf.get(..n).unwrap_or_default()) {
            Ok(v) => v,
            Err(e) => {
                let counter = if matches!(e, SsError::Decrypt | SsError::Short(_)) { &shared.stats.decrypt_errors } else { &shared.stats.bad_packets };
                counter.fetch_add(1, Relaxed);
                debug!(service = %shared.service, client = %peer, "ssu: dropped a {n}-byte datagram: {e}");
                continue;
            }
        };
        deliver(&mut sessions, peer, target, payload, &opts, &shared, &cancel);
    }
    for (_, s) in sessions.drain() {
        s.cancel.cancel();
    }
}

/// Closes sessions that saw nothing since the last sweep and flags the rest.
fn sweep(sessions: &mut HashMap<SocketAddr, Session>) {
    sessions.retain(|_, s| {
        if s.idle.swap(true, Relaxed) || s.tx.is_closed() {
            s.cancel.cancel();
            false
        } else {
            true
        }
    });
}

fn deliver(
    sessions: &mut HashMap<SocketAddr, Session>,
    peer: SocketAddr,
    target: Addr,
    payload: Vec<u8>,
    opts: &ServerOptions,
    shared: &Arc<Shared>,
    cancel: &CancellationToken,
) {
    if sessions.get(&peer).is_some_and(|s| s.tx.is_closed()) {
        sessions.remove(&peer);
    }
    if !sessions.contains_key(&peer) {
        if sessions.len() >= opts.max_sessions {
            warn!(service = %opts.service, client = %peer, "ssu: {} sessions already open, dropping a datagram", opts.max_sessions);
            return;
        }
        match open_session(peer, opts, shared, cancel) {
            Ok(s) => {
                sessions.insert(peer, s);
            }
            Err(e) => {
                warn!(service = %opts.service, client = %peer, "ssu: cannot open a UDP socket for the session: {e}");
                return;
            }
        }
    }
    let Some(s) = sessions.get(&peer) else { return };
    s.idle.store(false, Relaxed);
    if s.tx.try_send((target, payload)).is_err() {
        debug!(service = %opts.service, client = %peer, "ssu: session queue full, dropping a datagram");
    }
}

fn open_session(peer: SocketAddr, opts: &ServerOptions, shared: &Arc<Shared>, cancel: &CancellationToken) -> io::Result<Session> {
    let up = bind_any()?;
    let (tx, rx) = mpsc::channel(opts.read_queue_size.max(1));
    let idle = Arc::new(AtomicBool::new(false));
    let cancel = cancel.child_token();
    shared.stats.sessions_opened.fetch_add(1, Relaxed);
    shared.stats.sessions_active.fetch_add(1, Relaxed);
    debug!(service = %opts.service, client = %peer, "ssu: session opened");
    tokio::spawn(session(peer, up, rx, idle.clone(), cancel.clone(), shared.clone()));
    Ok(Session { tx, idle, cancel })
}

/// A dual-stack socket where the host has IPv6, else an IPv4 one.
fn bind_any() -> io::Result<UdpSocket> {
    let s = std::net::UdpSocket::bind(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0))
        .or_else(|_| std::net::UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)))?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s)
}

async fn session(
    peer: SocketAddr,
    up: UdpSocket,
    mut rx: mpsc::Receiver<(Addr, Vec<u8>)>,
    idle: Arc<AtomicBool>,
    cancel: CancellationToken,
    shared: Arc<Shared>,
) {
    let v6 = up.local_addr().is_ok_and(|a| a.is_ipv6());
    let mut buf = vec![0u8; 65535];
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            m = rx.recv() => {
                let Some((target, payload)) = m else { break };
                match forward(&up, v6, &target, &payload).await {
                    Ok(()) => (shared.meters.on_in)(payload.len() as u64),
                    Err(e) => {
                        shared.stats.bad_packets.fetch_add(1, Relaxed);
                        debug!(service = %shared.service, client = %peer, "ssu: cannot send to {target}: {e}");
                    }
                }
            }
            r = up.recv_from(&mut buf) => {
                let (n, from) = match r {
                    Ok(x) => x,
                    Err(e) => {
                        recv_failed(&shared.service, "session socket", &e).await;
                        continue;
                    }
                };
                idle.store(false, Relaxed);
                let from = canon(from);
                let mut pkt = Vec::with_capacity(n + 64);
                let answer = buf.get(..n).unwrap_or_default();
                if let Err(e) = encode_udp(shared.cipher.as_ref(), &Addr::ip(from.ip(), from.port()), answer, &mut pkt) {
                    debug!(service = %shared.service, client = %peer, "ssu: answer from {from} dropped: {e}");
                    continue;
                }
                // Counted before the send: once the client holds it, it is counted.
                (shared.meters.on_out)(n as u64);
                if let Err(e) = shared.server.send_to(&pkt, peer).await {
                    debug!(service = %shared.service, client = %peer, "ssu: cannot answer the client: {e}");
                }
            }
        }
    }
    shared.stats.sessions_active.fetch_sub(1, Relaxed);
    debug!(service = %shared.service, client = %peer, "ssu: session closed");
}

/// ICMP errors for one peer surface as recv errors and leave the socket usable;
/// anything else gets a pause so a broken socket cannot spin the loop.
async fn recv_failed(service: &str, which: &str, e: &io::Error) {
    match e.kind() {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset => debug!(service, "ssu: {which}: {e}"),
        _ => {
            warn!(service, "ssu: {which}: {e}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn forward(up: &UdpSocket, v6: bool, target: &Addr, payload: &[u8]) -> io::Result<()> {
    let dest = resolve(target, v6).await?;
    up.send_to(payload, dest).await.map(|_| ())
}

/// Where to send: a name is looked up (GOST: `net.ResolveUDPAddr`), and an IPv4
/// address becomes v4-mapped on a dual-stack socket.
async fn resolve(target: &Addr, v6: bool) -> io::Result<SocketAddr> {
    let a = match &target.host {
        Host::Ip(ip) => SocketAddr::new(*ip, target.port),
        Host::Domain(name) => {
            let lookup = tokio::net::lookup_host((name.as_str(), target.port));
            let mut it = tokio::time::timeout(Duration::from_secs(5), lookup)
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("{name}: lookup timed out")))??;
            it.find(|a| v6 || a.is_ipv4()).ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{name}: no usable address")))?
        }
    };
    match (a, v6) {
        (SocketAddr::V4(v4), true) => Ok(SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())),
        (SocketAddr::V6(_), false) => Err(io::Error::new(io::ErrorKind::Unsupported, "no IPv6 on this host")),
        (a, _) => Ok(a),
    }
}

/// v4-mapped addresses as plain IPv4, so a client keeps one session and answers
/// carry ATYP 0x01 as Go's do.
fn canon(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => a,
        },
        a => a,
    }
}

/// The handler's stream branch (`ssu` behind a stream listener): the client's
/// Shadowsocks AEAD stream carries UDP-over-stream frames; each frame's payload
/// goes to its target from one UDP socket, answers come back as frames with
/// their source address. Ends when the client closes the stream.
pub async fn serve_stream<S: AsyncRead + AsyncWrite + Unpin>(stream: S, cipher: Option<&SsCipher>, meters: &Meters) -> Result<(), SsError> {
    let up = bind_any()?;
    let v6 = up.local_addr().is_ok_and(|a| a.is_ipv6());
    let (mut rd, mut wr) = tokio::io::split(SsStream::new(stream, cipher));
    let upward = async {
        let mut fb = FrameBuf::new();
        while let Some((target, payload)) = read_frame(&mut rd, &mut fb).await.map_err(io::Error::from)? {
            match forward(&up, v6, &target, payload).await {
                Ok(()) => (meters.on_in)(payload.len() as u64),
                Err(e) => debug!("ssu: cannot send to {target}: {e}"),
            }
        }
        Ok::<(), SsError>(())
    };
    let downward = answers(&up, &mut wr, meters);
    tokio::select! {
        r = upward => r,
        r = downward => r,
    }
}

async fn answers<W: AsyncWrite + Unpin>(up: &UdpSocket, wr: &mut W, meters: &Meters) -> Result<(), SsError> {
    let mut buf = vec![0u8; 65535];
    loop {
        let (n, from) = up.recv_from(&mut buf).await?;
        let from = canon(from);
        let answer = buf.get(..n).unwrap_or_default();
        // An empty answer cannot be framed on a stream (see codec::udptun).
        if answer.is_empty() {
            continue;
        }
        // Counted before the write: once the client holds it, it is counted.
        (meters.on_out)(n as u64);
        write_frame(wr, &Addr::ip(from.ip(), from.port()), answer).await.map_err(io::Error::from)?;
    }
}
