//! SOCKS5 server side, protocol only (go-gost/x `handler/socks/v5`): method choice,
//! RFC 1929 auth, the request and its gates, replies, and the server half of a
//! GOST UDP-TUN association (standard UDP ASSOCIATE is in [`super::socks5_udp`]),
//! and the BIND family: plain BIND ([`bind()`]),
//! MUX-BIND ([`mux_bind`]) and UDP-TUN bind ([`udp_bind`]). Dialing the target
//! and piping bytes are the engine's job.
//!
//! GOST's TLS methods `80`/`82` are chosen when offered and the service has a
//! TLS config (it does unless `notls`); the rest of the connection then runs
//! inside TLS, so [`accept`] takes the stream by value and hands back a
//! [`MaybeTls`] for everything after the request.

use crate::auth::Auther;
use crate::codec::addr::{Addr, Host};
use crate::codec::socks5::{self as s5, cmd, method, rep, Message, Socks5Error, MAX_METHODS_LEN, MAX_REQUEST_LEN, MAX_USER_PASS_LEN};
use crate::codec::udptun::UdpTunError;
use crate::connector::socks5::read_msg;
use crate::handler::bind::{self, MuxBindServer};
use crate::mux::MuxConfig;
use crate::tls::MaybeTls;
use crate::framed::{read_frame, write_frame, FrameBuf};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::UdpSocket;

#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Users; `Some` makes authentication mandatory (GOST: any auther set).
    pub auther: Option<Arc<Auther>>,
    /// GOST `udp`: allow UDP ASSOCIATE and UDP-TUN association.
    pub udp: bool,
    /// GOST `bind`: allow BIND, MUX-BIND and UDP-TUN bind (port ≠ 0).
    pub bind: bool,
    /// TLS for methods `80`/`82`, made once per service (`handler.tls` or the
    /// default certificate); `None` (GOST's `notls=true`) never picks them.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// What the client asked for, after the gates passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub cmd: u8,
    pub addr: Addr,
    /// The authenticated user, if auth ran.
    pub user: Option<String>,
}

/// GOST master's choice (`handler/socks/v5/selector.go`): with users, `82` if
/// offered and TLS is on, else `02` if offered; without users, `80` if offered
/// and TLS is on, else `00` if offered; otherwise `FF`. (Stable v3.2.6 looks
/// only for `80` and upgrades `00`→`02`, `80`→`82` when users are set.)
pub fn choose_method(offered: &[u8], auth_required: bool, tls: bool) -> u8 {
    let (with_tls, plain) = if auth_required { (method::TLS_AUTH, method::USER_PASS) } else { (method::TLS, method::NO_AUTH) };
    if tls && offered.contains(&with_tls) {
        with_tls
    } else if offered.contains(&plain) {
        plain
    } else {
        method::NONE_ACCEPTABLE
    }
}

async fn send<S: AsyncWrite + Unpin + ?Sized>(s: &mut S, bytes: &[u8]) -> Result<(), Socks5Error> {
    s.write_all(bytes).await?;
    s.flush().await?;
    Ok(())
}

/// Runs the handshake up to and including the request, TLS included when the
/// client and the service agree on `80`/`82`; returns the stream that carries
/// the rest (the same stream when no TLS ran). Refused requests are answered
/// here (`02` not allowed, `07` unsupported) and come back as errors. The
/// caller bounds the whole call with its read timeout (GOST: 15 s).
pub async fn accept<S>(s: S, opts: &ServerOptions) -> Result<(MaybeTls<S>, Request), Socks5Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut s, user) = negotiate(s, opts).await?;
    let req = read_msg(&mut s, MAX_REQUEST_LEN, "the request", Message::decode).await?;
    if let Err(e) = gate(req.code, &req.addr, opts) {
        let code = match e {
            Socks5Error::NotAllowed { .. } => rep::NOT_ALLOWED,
            _ => rep::CMD_UNSUPPORTED,
        };
        reply(&mut s, code, None).await?;
        return Err(e);
    }
    Ok((s, Request { cmd: req.code, addr: req.addr, user }))
}

/// Method selection, then what the method needs (TLS for `80`/`82`, RFC 1929
/// for `02`/`82`): returns the stream to go on with and the user that logged in.
async fn negotiate<S>(mut s: S, opts: &ServerOptions) -> Result<(MaybeTls<S>, Option<String>), Socks5Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let offered = read_msg(&mut s, MAX_METHODS_LEN, "method selection", s5::decode_methods).await?;
    let chosen = choose_method(&offered, opts.auther.is_some(), opts.tls.is_some());
    tracing::debug!("socks5: client offered {}, chose 0x{chosen:02x}", method_list(&offered));
    let mut out = Vec::with_capacity(2);
    s5::encode_method_choice(chosen, &mut out);
    send(&mut s, &out).await?;
    match (chosen, &opts.auther, &opts.tls) {
        (method::NO_AUTH, None, _) => Ok((MaybeTls::Plain(s), None)),
        (method::USER_PASS, Some(auther), _) => {
            let user = authenticate(&mut s, auther).await?;
            Ok((MaybeTls::Plain(s), Some(user)))
        }
        (method::TLS | method::TLS_AUTH, auther, Some(config)) => {
            let mut t = tls_server(s, config, chosen).await?;
            let user = match auther {
                Some(a) => Some(authenticate(&mut t, a).await?),
                None => None,
            };
            Ok((MaybeTls::Tls(Box::new(tokio_rustls::TlsStream::Server(t))), user))
        }
        _ => Err(Socks5Error::NoAcceptableMethod {
            offered: method_list(&offered),
            needed: needed(opts),
        }),
    }
}

fn needed(opts: &ServerOptions) -> &'static str {
    match (opts.auther.is_some(), opts.tls.is_some()) {
        (true, true) => "82 (TLS + username/password) or 02 (username/password)",
        (true, false) => "02 (username/password)",
        (false, true) => "80 (TLS) or 00 (no authentication)",
        (false, false) => "00 (no authentication)",
    }
}

/// The TLS server handshake right after choosing `80`/`82`.
async fn tls_server<S>(s: S, config: &Arc<rustls::ServerConfig>, chosen: u8) -> Result<tokio_rustls::server::TlsStream<S>, Socks5Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tokio_rustls::TlsAcceptor::from(config.clone())
        .accept(s)
        .await
        .map_err(|e| Socks5Error::TlsHandshake { method: chosen, reason: crate::tls::handshake_msg(&e) })
}

fn method_list(m: &[u8]) -> String {
    if m.is_empty() {
        return "nothing".into();
    }
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

async fn authenticate<S>(s: &mut S, auther: &Auther) -> Result<String, Socks5Error>
where
    S: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let up = read_msg(s, MAX_USER_PASS_LEN, "username/password authentication", s5::decode_user_pass).await?;
    let ok = auther.authenticate(&up.user, &up.pass);
    let mut out = Vec::with_capacity(2);
    s5::encode_auth_status(if ok { 0 } else { 1 }, &mut out);
    send(s, &out).await?;
    if ok {
        Ok(up.user)
    } else {
        Err(Socks5Error::ClientAuthFailed(up.user))
    }
}

/// GOST's gates (`handler/socks/v5/handler.go`, `udp_tun.go`, `bind.go`,
/// `mbind.go`, `udp.go`). UDP-TUN with a non-zero port is a bind (rudp) and
/// needs `bind`, not `udp`.
fn gate(code: u8, addr: &Addr, opts: &ServerOptions) -> Result<(), Socks5Error> {
    let need = match code {
        cmd::CONNECT => return Ok(()),
        cmd::UDP_ASSOCIATE => ("udp", opts.udp),
        cmd::UDP_TUN if addr.port == 0 => ("udp", opts.udp),
        cmd::UDP_TUN | cmd::BIND | cmd::MUX_BIND => ("bind", opts.bind),
        c => return Err(Socks5Error::UnsupportedCommand(s5::cmd_name(c))),
    };
    match need {
        (_, true) => Ok(()),
        (option, false) => Err(Socks5Error::NotAllowed { cmd: s5::cmd_name(code), option }),
    }
}

/// Writes `05 REP 00 ADDR`; without an address gosocks5 writes `01 00000000 0000`.
pub async fn reply<S>(s: &mut S, code: u8, bound: Option<&Addr>) -> Result<(), Socks5Error>
where
    S: AsyncWrite + Unpin + ?Sized,
{
    let addr = bound.cloned().unwrap_or_else(s5::zero_addr);
    let mut out = Vec::with_capacity(3 + addr.encoded_len());
    Message::new(code, addr).encode(&mut out);
    send(s, &out).await
}

/// The server half of a UDP-TUN association: frames from `stream` go from `sock`
/// to the address they carry (names resolved with the system resolver), and
/// datagrams arriving on `sock` go back framed with their source address. Ends
/// with `Ok` when the client closes the stream. `to_targets` / `to_client` count
/// payload bytes each way.
pub async fn udp_tun_serve<S>(
    stream: S,
    sock: UdpSocket,
    to_targets: &(dyn Fn(u64) + Send + Sync),
    to_client: &(dyn Fn(u64) + Send + Sync),
) -> Result<(), UdpTunError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let v6 = sock.local_addr()?.is_ipv6();
    let sock = &sock;
    let uplink = async move {
        let mut fb = FrameBuf::new();
        let mut names = NameCache::default();
        while let Some((addr, payload)) = read_frame(&mut rd, &mut fb).await? {
            let Some(dst) = names.resolve(&addr, v6).await else { continue };
            match sock.send_to(payload, dst).await {
                Ok(n) => to_targets(n as u64),
                Err(e) => tracing::debug!("udp-tun: send to {dst} failed: {e}"),
            }
        }
        Ok(())
    };
    let downlink = async move {
        let mut buf = vec![0u8; 65535];
        loop {
            let (n, src) = match sock.recv_from(&mut buf).await {
                Ok(x) => x,
                // An ICMP error from an earlier send; the association lives on.
                Err(e) if transient(&e) => continue,
                Err(e) => return Err(UdpTunError::Io(e)),
            };
            let Some(payload) = buf.get(..n).filter(|p| !p.is_empty()) else { continue };
            // Counted before the write: once the client holds it, it is counted.
            to_client(n as u64);
            write_frame(&mut wr, &Addr::from(unmap(src)), payload).await?;
        }
    };
    tokio::select! {
        r = uplink => r,
        r = downlink => r,
    }
}

/// Listens for BIND / MUX-BIND / UDP-TUN bind, or answers `01` and returns an
/// error naming the address (GOST's strict mode: a port in use is a failure).
async fn listen_or_refuse<S, L, F>(s: &mut S, req: &Request, listen: F) -> Result<L, Socks5Error>
where
    S: AsyncWrite + Unpin + ?Sized,
    F: std::future::Future<Output = io::Result<L>>,
{
    match listen.await {
        Ok(l) => Ok(l),
        Err(source) => {
            reply(s, rep::GENERAL_FAILURE, None).await?;
            Err(Socks5Error::ListenFailed { cmd: s5::cmd_name(req.cmd), addr: req.addr.to_string(), source })
        }
    }
}

/// MUX-BIND (`F2`, GOST's rtcp through SOCKS5): listens on `req.addr`, answers
/// with `reply_ip` (the control connection's local IP, or `publicAddr`) and the
/// bound port, then turns `control` into an smux session in which this server
/// opens a stream per inbound connection, writing `05 00 00 <peer>` first
/// (§5.8 C). `cfg` is the handler's `mux.*` (both ends must agree on
/// `mux.version`). See [`MuxBindServer::accept`].
pub async fn mux_bind<S>(mut control: S, req: &Request, reply_ip: Option<IpAddr>, cfg: MuxConfig) -> Result<MuxBindServer, Socks5Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let listener = listen_or_refuse(&mut control, req, bind::listen_tcp(&req.addr)).await?;
    let bound = listener.local_addr()?;
    reply(&mut control, rep::SUCCEEDED, Some(&bind::reply_addr(bound, reply_ip))).await?;
    Ok(MuxBindServer::new(control, listener, mux_stream_header, cfg)?)
}

/// What starts each MUX-BIND stream: a SOCKS5 success reply naming the peer.
/// (GOST's `comp=true` leaves it out for GOST v2 clients; Portway does not.)
fn mux_stream_header(peer: &Addr) -> Vec<u8> {
    let mut out = Vec::with_capacity(3 + peer.encoded_len());
    Message::new(rep::SUCCEEDED, peer.clone()).encode(&mut out);
    out
}

/// A plain BIND once its peer arrived: pipe `control` and `peer`.
pub struct BindAccepted<S> {
    /// The control connection, with any byte the client sent early in front.
    pub control: crate::conn::Prefixed<S>,
    pub peer: tokio::net::TcpStream,
    pub peer_addr: SocketAddr,
}

/// Plain BIND (`02`): listens, first reply with the listening address, waits
/// for one connection, second reply with its address; after that the control
/// connection is the data pipe. Fails if the client goes away first (the
/// listener closes with it). GOST sets no time limit; the caller may.
pub async fn bind<S>(mut control: S, req: &Request, reply_ip: Option<IpAddr>) -> Result<BindAccepted<S>, Socks5Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    use tokio::io::AsyncReadExt;
    let listener = listen_or_refuse(&mut control, req, bind::listen_tcp(&req.addr)).await?;
    let bound = listener.local_addr()?;
    reply(&mut control, rep::SUCCEEDED, Some(&bind::reply_addr(bound, reply_ip))).await?;
    let mut early = [0u8; 1];
    let (peer, peer_addr) = tokio::select! {
        a = listener.accept() => match a {
            Ok(x) => x,
            Err(e) => {
                reply(&mut control, rep::GENERAL_FAILURE, None).await?;
                return Err(Socks5Error::Io(e));
            }
        },
        // Read is cancel-safe: a byte is either taken here or still in the stream.
        r = control.read(&mut early) => match r {
            Ok(0) | Err(_) => return Err(Socks5Error::ControlClosed("waiting for the BIND peer")),
            Ok(_) => {
                let (peer, addr) = listener.accept().await?;
                return finish_bind(control, early.to_vec(), peer, addr).await;
            }
        },
    };
    finish_bind(control, Vec::new(), peer, peer_addr).await
}

async fn finish_bind<S>(mut control: S, early: Vec<u8>, peer: tokio::net::TcpStream, peer_addr: SocketAddr) -> Result<BindAccepted<S>, Socks5Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    reply(&mut control, rep::SUCCEEDED, Some(&Addr::from(bind::unmap(peer_addr)))).await?;
    Ok(BindAccepted { control: crate::conn::Prefixed::new(early, control), peer, peer_addr })
}

/// UDP-TUN in bind mode (`F3` with a port, GOST's rudp through SOCKS5): listens
/// on UDP and answers with the socket's own address, as GOST does. Then run
/// [`udp_tun_serve`] on the stream and this socket: datagrams from peers go to
/// the client framed with the peer address, and the client's frames go to the
/// peer they name.
pub async fn udp_bind<S>(control: &mut S, req: &Request) -> Result<UdpSocket, Socks5Error>
where
    S: AsyncWrite + Unpin + ?Sized,
{
    let sock = listen_or_refuse(control, req, bind::listen_udp(&req.addr)).await?;
    let bound = sock.local_addr()?;
    reply(control, rep::SUCCEEDED, Some(&Addr::from(bound))).await?;
    Ok(sock)
}

pub(crate) fn transient(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset)
}

/// A v4-mapped source seen on a dual-stack socket is reported as plain IPv4, the
/// address the client sent to.
pub(crate) fn unmap(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), a.port()),
            None => a,
        },
        IpAddr::V4(_) => a,
    }
}

/// Resolved names for one association, so a stream of frames to one name costs
/// one lookup. Bounded: cleared when full.
#[derive(Default)]
pub(crate) struct NameCache {
    map: HashMap<(String, u16), SocketAddr>,
}

const NAME_CACHE_MAX: usize = 256;

impl NameCache {
    /// Where to send a frame from a socket of the given family; `None` (logged)
    /// when the name does not resolve or the family cannot be reached.
    pub(crate) async fn resolve(&mut self, addr: &Addr, v6_socket: bool) -> Option<SocketAddr> {
        let found = match &addr.host {
            Host::Ip(ip) => SocketAddr::new(*ip, addr.port),
            Host::Domain(name) => {
                let key = (name.clone(), addr.port);
                if let Some(a) = self.map.get(&key) {
                    *a
                } else {
                    let a = lookup(name, addr.port, v6_socket).await?;
                    if self.map.len() >= NAME_CACHE_MAX {
                        self.map.clear();
                    }
                    self.map.insert(key, a);
                    a
                }
            }
        };
        fit_family(found, v6_socket)
    }
}

async fn lookup(name: &str, port: u16, v6_socket: bool) -> Option<SocketAddr> {
    let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((name, port)).await {
        Ok(a) => a.collect(),
        Err(e) => {
            tracing::debug!("socks5 udp: cannot resolve {name}: {e}");
            return None;
        }
    };
    // IPv4 first, as GOST picks (handler/socks/v5/udp.go `resolvePacketConn`);
    // IPv6 only when the socket can reach it.
    addrs.iter().find(|a| a.is_ipv4()).or_else(|| addrs.iter().find(|_| v6_socket)).copied()
}

fn fit_family(a: SocketAddr, v6_socket: bool) -> Option<SocketAddr> {
    match (a.ip(), v6_socket) {
        (IpAddr::V4(v4), true) => Some(SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), a.port())),
        (IpAddr::V6(_), false) => {
            tracing::debug!("socks5 udp: cannot send to {a} from an IPv4 socket");
            None
        }
        _ => Some(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_choice_follows_gost_master() {
        // TLS on (GOST's default: a handler always has a TLS config).
        assert_eq!(choose_method(&[0x00, 0x80], false, true), 0x80);
        assert_eq!(choose_method(&[0x00, 0x02, 0x80, 0x82], true, true), 0x82);
        assert_eq!(choose_method(&[0x00, 0x02], true, true), 0x02);
        assert_eq!(choose_method(&[0x00], false, true), 0x00);
        // master: 80 alone does not mean 82 with users (stable would answer 82).
        assert_eq!(choose_method(&[0x00, 0x80], true, true), 0xFF);
        assert_eq!(choose_method(&[0x82], false, true), 0xFF);
        // notls.
        assert_eq!(choose_method(&[0x00, 0x80], false, false), 0x00);
        assert_eq!(choose_method(&[0x80], false, false), 0xFF);
        assert_eq!(choose_method(&[0x00, 0x02, 0x80, 0x82], true, false), 0x02);
        assert_eq!(choose_method(&[0x00], true, false), 0xFF);
        assert_eq!(choose_method(&[], false, true), 0xFF);
    }

    #[test]
    fn gates_name_the_option() {
        let off = ServerOptions::default();
        let zero = s5::zero_addr();
        let port = Addr::parse(":8080").unwrap();
        assert!(gate(cmd::CONNECT, &zero, &off).is_ok());
        let e = gate(cmd::UDP_TUN, &zero, &off).unwrap_err();
        assert_eq!(e.to_string(), "socks5: UDP-TUN is disabled on this service (enable it with udp=true)");
        let e = gate(cmd::UDP_TUN, &port, &off).unwrap_err();
        assert!(e.to_string().contains("bind=true"), "{e}");
        assert!(gate(cmd::MUX_BIND, &port, &off).unwrap_err().to_string().contains("MUX-BIND"));
        assert!(gate(cmd::UDP_ASSOCIATE, &zero, &off).unwrap_err().to_string().contains("udp=true"));
        let on = ServerOptions { udp: true, bind: true, auther: None, tls: None };
        for c in [cmd::UDP_TUN, cmd::UDP_ASSOCIATE, cmd::BIND, cmd::MUX_BIND] {
            assert!(gate(c, &port, &on).is_ok());
        }
        assert!(matches!(gate(cmd::RESOLVE, &zero, &on), Err(Socks5Error::UnsupportedCommand(_))));
    }

    #[test]
    fn families() {
        let v4: SocketAddr = "10.0.0.1:53".parse().unwrap();
        assert_eq!(fit_family(v4, true).unwrap().to_string(), "[::ffff:10.0.0.1]:53");
        assert_eq!(fit_family(v4, false), Some(v4));
        assert_eq!(fit_family("[::1]:53".parse().unwrap(), false), None);
        assert_eq!(unmap("[::ffff:10.0.0.1]:53".parse().unwrap()), v4);
    }
}
