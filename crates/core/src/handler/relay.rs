//! Relay server, protocol part (go-gost/x `handler/relay/handler.go`,
//! `connect.go`, `forward.go`, `conn.go`). The engine owns dialing and the data
//! path; this module reads and checks the request and writes the answer.
//!
//! Engine flow:
//! ```text
//! let req = accept(&mut s, &opts).await?;          // errors already answered
//! match dial(req or forwarder) {
//!     Err(_) => respond_error(&mut s, opts.dial_failure_status()).await,
//!     Ok(t)  => { let s = ServerStream::respond_ok(s, &opts).await?; copy / udp_serve }
//! }
//! ```
//! BIND (`opts.bind = true`, GOST's rtcp/rudp through this server): `accept`
//! returns `Command::Bind` with the address to listen on (an empty domain from
//! GOST v3.2.6 already turned into 0.0.0.0); the engine calls [`bind_tcp`]
//! (then pipes each [`MuxBindServer::accept`]) or [`bind_udp`] (then
//! `handler::socks5::udp_tun_serve`).
//!
//! Forward mode (`-L relay://:8420/host:port`, `opts.forward = true`): the request's
//! address and command are ignored; the engine dials its forwarder's target with
//! `req.network`, answers `STATUS_SERVICE_UNAVAILABLE` when it has no target and
//! `dial_failure_status()` (host unreachable) when the dial fails.

use crate::auth::Auther;
use crate::codec::addr::{Addr, Host};
use crate::codec::relay::{
    self, message_len, network_name, Network, RelayError, Response, CMD_ASSOCIATE, CMD_BIND, CMD_CONNECT, FLAG_UDP,
    HEADER_LEN, NETWORK_TCP, NETWORK_UDP, STATUS_BAD_REQUEST, STATUS_FORBIDDEN, STATUS_HOST_UNREACHABLE,
    STATUS_NETWORK_UNREACHABLE, STATUS_OK, STATUS_SERVICE_UNAVAILABLE, STATUS_UNAUTHORIZED,
};
use crate::connector::relay::{recv_datagram, send_datagram, WriteFront};
use crate::handler::bind::{self, MuxBindServer};
use crate::mux::MuxConfig;
use crate::stats::Meter;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::UdpSocket;

/// GOST's `readTimeout` default for the request.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// `None`: anyone may connect (GOST without `auth`/`authers`).
    pub auther: Option<Auther>,
    /// Answer as soon as the target is dialed instead of in front of its first bytes.
    pub nodelay: bool,
    /// GOST's `bind=true`: allow BIND (rtcp/rudp through this server), served by
    /// [`bind_tcp`] / [`bind_udp`].
    pub bind: bool,
    /// The service has a forwarder: any request goes to the forwarder's target.
    pub forward: bool,
    /// Limit for reading the whole request; zero means GOST's 15 s.
    pub read_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions { auther: None, nodelay: false, bind: false, forward: false, read_timeout: DEFAULT_READ_TIMEOUT }
    }
}

impl ServerOptions {
    /// What to answer when dialing the target fails: GOST sends 06 in forward mode
    /// and 07 for CONNECT.
    pub fn dial_failure_status(&self) -> u8 {
        if self.forward {
            STATUS_HOST_UNREACHABLE
        } else {
            STATUS_NETWORK_UNREACHABLE
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Connect,
    Bind,
    Associate,
    Unknown(u8),
}

impl Command {
    fn from_byte(cmd: u8) -> Command {
        match cmd & relay::CMD_MASK {
            0 | CMD_CONNECT => Command::Connect,
            CMD_BIND => Command::Bind,
            CMD_ASSOCIATE => Command::Associate,
            other => Command::Unknown(other),
        }
    }
}

/// An accepted request. Without forward mode it is always a CONNECT with an
/// address; in forward mode `cmd` and `addr` are what the client sent, for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub cmd: Command,
    pub network: Network,
    pub addr: Option<Addr>,
    /// The UserAuth name, for logs and stats (never the password).
    pub user: Option<String>,
}

/// Reads the request and settles everything that does not need the target:
/// version, authentication, network, command. Every refusal is answered here the
/// way GOST answers it (or not at all, where GOST just closes), and returned as
/// the error.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, opts: &ServerOptions) -> Result<Request, RelayError> {
    let limit = if opts.read_timeout.is_zero() { DEFAULT_READ_TIMEOUT } else { opts.read_timeout };
    let raw = tokio::time::timeout(limit, read_request(s)).await.map_err(|_| RelayError::Timeout(limit))??;

    let (user, pass) = raw.user_auth().unwrap_or(("", ""));
    let user = user.to_string();
    if let Some(auther) = &opts.auther {
        if !auther.authenticate(&user, pass) {
            respond_error(s, STATUS_UNAUTHORIZED).await?;
            return Err(RelayError::Unauthorized(user));
        }
    }
    let network = network_of(&raw);
    let req = Request {
        cmd: Command::from_byte(raw.cmd),
        network: network.unwrap_or(Network::Tcp),
        addr: raw.addr().cloned().map(local_if_unnamed),
        user: (!user.is_empty()).then_some(user),
    };
    if opts.forward {
        return require_network(s, network, STATUS_HOST_UNREACHABLE, req).await;
    }
    match req.cmd {
        Command::Connect if req.addr.is_none() => {
            respond_error(s, STATUS_BAD_REQUEST).await?;
            Err(RelayError::NoTarget)
        }
        Command::Connect => require_network(s, network, STATUS_NETWORK_UNREACHABLE, req).await,
        Command::Bind if !opts.bind => {
            respond_error(s, STATUS_FORBIDDEN).await?;
            Err(RelayError::BindDisabled)
        }
        // GOST listens on "" (any port, all interfaces) when no address came.
        Command::Bind => {
            let addr = Some(req.addr.clone().unwrap_or_else(|| Addr::ip(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)));
            require_network(s, network, STATUS_SERVICE_UNAVAILABLE, Request { addr, ..req }).await
        }
        Command::Associate | Command::Unknown(_) => {
            respond_error(s, STATUS_BAD_REQUEST).await?;
            Err(RelayError::UnknownCommand(raw.cmd & relay::CMD_MASK))
        }
    }
}

/// Reads exactly one request, no payload after it. A wrong first byte fails at
/// once, and GOST sends no answer to it, so neither do we.
async fn read_request<S: AsyncRead + Unpin>(s: &mut S) -> Result<relay::Request, RelayError> {
    let mut buf = vec![0u8; HEADER_LEN];
    read_exact_or_truncated(s, &mut buf[..1]).await?;
    message_len(&buf[..1]).map_err(RelayError::Malformed)?;
    read_exact_or_truncated(s, &mut buf[1..]).await?;
    let total = message_len(&buf).map_err(RelayError::Malformed)?.unwrap_or(HEADER_LEN);
    buf.resize(total, 0);
    read_exact_or_truncated(s, &mut buf[HEADER_LEN..]).await?;
    match relay::Request::decode(&buf).map_err(RelayError::Malformed)? {
        Some((req, _)) => Ok(req),
        None => Err(RelayError::Truncated),
    }
}

async fn read_exact_or_truncated<S: AsyncRead + Unpin>(s: &mut S, buf: &mut [u8]) -> Result<(), RelayError> {
    match s.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(RelayError::Truncated),
        Err(e) => Err(e.into()),
    }
}

/// The 0x80 flag wins over the Network feature, as in GOST; an unknown id is
/// tcp (`NetworkID.String`). ip/unix/serial are GOST features Portway does not
/// offer: a remote client must not reach local sockets or devices through it.
fn network_of(req: &relay::Request) -> Result<Network, &'static str> {
    if req.cmd & FLAG_UDP != 0 {
        return Ok(Network::Udp);
    }
    match req.network_id().unwrap_or(NETWORK_TCP) {
        NETWORK_UDP => Ok(Network::Udp),
        id => match network_name(id) {
            "tcp" => Ok(Network::Tcp),
            other => Err(other),
        },
    }
}

/// Refuses an unsupported network with the status GOST would send when its
/// dial of that network failed.
async fn require_network<S: AsyncWrite + Unpin>(
    s: &mut S,
    network: Result<Network, &'static str>,
    status: u8,
    req: Request,
) -> Result<Request, RelayError> {
    match network {
        Ok(_) => Ok(req),
        Err(name) => {
            respond_error(s, status).await?;
            Err(RelayError::UnsupportedNetwork(name))
        }
    }
}

/// A stable GOST client sends a host-less `:port` as an empty domain name; a Go
/// server dials or listens on that as "this host", which 0.0.0.0 means here too.
fn local_if_unnamed(a: Addr) -> Addr {
    match &a.host {
        Host::Domain(d) if d.is_empty() => Addr::ip(IpAddr::V4(Ipv4Addr::UNSPECIFIED), a.port),
        _ => a,
    }
}

/// Answers OK (`01 00 0000`) right away: GOST's `nodelay` server form, which
/// every GOST client accepts (it reads the answer lazily or waits for it).
pub async fn respond_ok_now<S: AsyncWrite + Unpin>(s: &mut S) -> Result<(), RelayError> {
    respond_error(s, STATUS_OK).await
}

/// Answers with a failure status (`01 ss 0000`) right away.
pub async fn respond_error<S: AsyncWrite + Unpin>(s: &mut S, status: u8) -> Result<(), RelayError> {
    s.write_all(&Response::bare(status)).await?;
    s.flush().await?;
    Ok(())
}

/// The accepted connection after a successful dial: payload both ways, with the
/// OK response in front of the first bytes written back unless it went out
/// already.
#[derive(Debug)]
pub struct ServerStream<S> {
    inner: S,
    front: WriteFront,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ServerStream<S> {
    /// GOST's default: `01 00 0000` travels with the target's first bytes.
    pub fn lazy(inner: S) -> ServerStream<S> {
        ServerStream { inner, front: WriteFront::waiting(Response::bare(STATUS_OK).to_vec()) }
    }

    /// `nodelay=true`: the OK goes out now.
    pub async fn respond_now(mut inner: S) -> Result<ServerStream<S>, RelayError> {
        respond_error(&mut inner, STATUS_OK).await?;
        Ok(ServerStream { inner, front: WriteFront::clear() })
    }

    /// Lazy or now, as the service's `nodelay` says.
    pub async fn respond_ok(inner: S, opts: &ServerOptions) -> Result<ServerStream<S>, RelayError> {
        if opts.nodelay {
            Self::respond_now(inner).await
        } else {
            Ok(Self::lazy(inner))
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for ServerStream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for ServerStream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        me.front.poll_write(&mut me.inner, cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        ready!(me.front.poll_drain(&mut me.inner, cx))?;
        Pin::new(&mut me.inner).poll_flush(cx)
    }

    /// Unlike GOST, a target that closes without a byte still gets its OK sent
    /// first, so the client sees a clean end instead of "no answer".
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        me.front.release();
        ready!(me.front.poll_drain(&mut me.inner, cx))?;
        Pin::new(&mut me.inner).poll_shutdown(cx)
    }
}

/// Listens for a BIND, or answers `05` (GOST's status when it cannot listen)
/// and returns an error naming the address.
async fn listen_or_refuse<S, L, F>(s: &mut S, addr: &Addr, listen: F) -> Result<L, RelayError>
where
    S: AsyncWrite + Unpin,
    F: std::future::Future<Output = io::Result<L>>,
{
    match listen.await {
        Ok(l) => Ok(l),
        Err(source) => {
            respond_error(s, STATUS_SERVICE_UNAVAILABLE).await?;
            Err(RelayError::ListenFailed { addr: addr.to_string(), source })
        }
    }
}

async fn respond_bound<S: AsyncWrite + Unpin>(s: &mut S, bound: std::net::SocketAddr) -> Result<(), RelayError> {
    let mut out = Vec::new();
    Response::ok_with_addr(&Addr::from(bound)).encode(&mut out).map_err(RelayError::Encode)?;
    s.write_all(&out).await?;
    s.flush().await?;
    Ok(())
}

/// BIND TCP (rtcp through relay) for an accepted request with `Command::Bind`
/// and `Network::Tcp`: listens on `addr` (strict), answers `00` + the
/// listener's own address (§5.8 F), then `control` becomes an smux session in
/// which this server opens a stream per inbound connection and writes
/// `01 00 FLEN [Addr peer]` on it first (go-gost/x `handler/relay/bind.go`,
/// `entrypoint.go`). See [`MuxBindServer::accept`].
pub async fn bind_tcp<S>(mut control: S, addr: &Addr, cfg: MuxConfig) -> Result<MuxBindServer, RelayError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let listener = listen_or_refuse(&mut control, addr, bind::listen_tcp(addr)).await?;
    respond_bound(&mut control, listener.local_addr()?).await?;
    Ok(MuxBindServer::new(control, listener, peer_header, cfg)?)
}

fn peer_header(peer: &Addr) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + 3 + peer.encoded_len());
    // An Addr feature always fits; an empty header would only cost the client
    // this one stream.
    let _ = Response::ok_with_addr(peer).encode(&mut out);
    out
}

/// BIND UDP (rudp through relay, CMD `82`): listens on UDP `addr`, answers `00`
/// with the socket's address. Then run [`crate::handler::socks5::udp_tun_serve`] on
/// `control` and the socket: the same UDP-over-stream frames as SOCKS5's
/// UDP-TUN. GOST closes without an answer when it cannot listen on UDP;
/// Portway answers `05` like for TCP, which a GOST client reads as the same
/// failure and a Portway client can show.
pub async fn bind_udp<S>(control: &mut S, addr: &Addr) -> Result<UdpSocket, RelayError>
where
    S: AsyncWrite + Unpin,
{
    let sock = listen_or_refuse(control, addr, bind::listen_udp(addr)).await?;
    respond_bound(control, sock.local_addr()?).await?;
    Ok(sock)
}

/// The server's UDP data path after a CONNECT-UDP: `LEN | payload` frames from the
/// client go to `sock` (connected to the target), datagrams from it go back
/// framed. Payload bytes are counted (`in` = client → target). Ends when the
/// client closes; a socket error (e.g. the target port refusing) ends it with
/// that error.
pub async fn udp_serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    sock: &UdpSocket,
    meter: &Meter,
) -> Result<(), RelayError> {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let up = async {
        let mut buf = Vec::new();
        while let Some(n) = recv_datagram(&mut rd, &mut buf).await? {
            sock.send(&buf[..n]).await?;
            meter.add_in(n as u64);
        }
        Ok::<(), RelayError>(())
    };
    let down = async {
        let mut buf = vec![0u8; relay::MAX_DATAGRAM];
        loop {
            let n = sock.recv(&mut buf).await?;
            // Counted before the write: once the client holds it, it is counted.
            meter.add_out(n as u64);
            send_datagram(&mut wr, &buf[..n]).await?;
        }
    };
    tokio::select! {
        r = up => r,
        r = down => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    fn req_bytes(hex: &str) -> Vec<u8> {
        let s: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    async fn run(wire: &str, opts: ServerOptions) -> (Result<Request, RelayError>, Vec<u8>) {
        let (mut client, mut server) = duplex(1 << 17);
        client.write_all(&req_bytes(wire)).await.unwrap();
        let r = accept(&mut server, &opts).await;
        drop(server);
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        (r, answer)
    }

    #[tokio::test]
    async fn connect_is_accepted_without_an_answer_yet() {
        let (r, answer) = run("01 01 000A 02 0007 01 7F000001 0050", ServerOptions::default()).await;
        let r = r.unwrap();
        assert_eq!(r.cmd, Command::Connect);
        assert_eq!(r.network, Network::Tcp);
        assert_eq!(r.addr.unwrap().to_string(), "127.0.0.1:80");
        assert!(answer.is_empty());
    }

    #[tokio::test]
    async fn cmd_zero_is_connect_and_udp_flag_wins() {
        let (r, _) = run("01 80 000F 04 0002 0000 02 0007 01 7F000001 0035", ServerOptions::default()).await;
        let r = r.unwrap();
        assert_eq!((r.cmd, r.network), (Command::Connect, Network::Udp));
    }

    #[tokio::test]
    async fn empty_domain_means_this_host() {
        let (r, _) = run("01 01 0007 02 0004 03 00 1F90", ServerOptions::default()).await;
        assert_eq!(r.unwrap().addr.unwrap().to_string(), "0.0.0.0:8080");
    }

    #[tokio::test]
    async fn refusals_are_answered_as_gost_does() {
        let bind = "01 02 000F 04 0002 0000 02 0007 01 00000000 1F90";
        let (r, a) = run(bind, ServerOptions::default()).await;
        assert_eq!(a, [1, 3, 0, 0]);
        assert_eq!(r.unwrap_err().to_string(), "relay: BIND is disabled (the relay service needs bind=true)");
        let (r, a) = run(bind, ServerOptions { bind: true, ..Default::default() }).await;
        assert!(a.is_empty(), "the answer comes from bind_tcp, after listening");
        let r = r.unwrap();
        assert_eq!((r.cmd, r.network, r.addr.unwrap().to_string()), (Command::Bind, Network::Tcp, "0.0.0.0:8080".into()));
        // Stable GOST's `rudp://:8080`: UDP flag, empty domain.
        let (r, _) = run("01 82 000C 04 0002 0001 02 0004 03 00 1F90", ServerOptions { bind: true, ..Default::default() }).await;
        let r = r.unwrap();
        assert_eq!((r.cmd, r.network, r.addr.unwrap().to_string()), (Command::Bind, Network::Udp, "0.0.0.0:8080".into()));
        let (r, a) = run("01 01 0000", ServerOptions::default()).await;
        assert_eq!(a, [1, 1, 0, 0]);
        assert!(matches!(r, Err(RelayError::NoTarget)));
        let (r, a) = run("01 03 0000", ServerOptions::default()).await;
        assert_eq!(a, [1, 1, 0, 0]);
        assert!(matches!(r, Err(RelayError::UnknownCommand(3))));
        let (r, a) = run("01 01 000F 04 0002 0010 02 0007 01 7F000001 0050", ServerOptions::default()).await;
        assert_eq!(a, [1, 7, 0, 0]);
        assert_eq!(r.unwrap_err().to_string(), "relay: network unix is not supported (only tcp and udp)");
    }

    #[tokio::test]
    async fn forward_mode_ignores_address_and_command() {
        let opts = ServerOptions { forward: true, ..Default::default() };
        let (r, a) = run("01 02 0000", opts.clone()).await;
        assert_eq!(r.unwrap().addr, None);
        assert!(a.is_empty());
        assert_eq!(opts.dial_failure_status(), STATUS_HOST_UNREACHABLE);
        assert_eq!(ServerOptions::default().dial_failure_status(), STATUS_NETWORK_UNREACHABLE);
    }

    #[tokio::test]
    async fn authentication() {
        let mut a = Auther::new();
        a.add("u", "p");
        let opts = ServerOptions { auther: Some(a), ..Default::default() };
        let (r, ans) = run("01 01 0011 01 0004 01 75 01 70 02 0007 01 C0A80101 0050", opts.clone()).await;
        assert_eq!(r.unwrap().user.as_deref(), Some("u"));
        assert!(ans.is_empty());
        let (r, ans) = run("01 01 0011 01 0004 01 75 01 71 02 0007 01 C0A80101 0050", opts.clone()).await;
        assert_eq!(ans, [1, 2, 0, 0]);
        let msg = r.unwrap_err().to_string();
        assert_eq!(msg, "relay: authentication failed (client user \"u\")");
        let (r, ans) = run("01 01 000A 02 0007 01 C0A80101 0050", opts).await;
        assert_eq!(ans, [1, 2, 0, 0]);
        assert!(matches!(r, Err(RelayError::Unauthorized(u)) if u.is_empty()));
    }

    #[tokio::test]
    async fn bad_version_and_malformed_requests_get_no_answer() {
        for wire in ["05 01 00", "01 01 0004 02 0009 01", "01 01 0007 02 0004 09 000050"] {
            let (r, a) = run(wire, ServerOptions::default()).await;
            assert!(matches!(r, Err(RelayError::Malformed(_)) | Err(RelayError::Truncated)), "{wire}: {r:?}");
            assert!(a.is_empty(), "{wire}");
        }
    }

    #[tokio::test]
    async fn lazy_ok_goes_in_front_of_the_first_bytes_or_at_shutdown() {
        let (mut client, server) = duplex(1024);
        let mut s = ServerStream::lazy(server);
        s.write_all(b"banner").await.unwrap();
        s.write_all(b"!").await.unwrap();
        drop(s);
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"\x01\x00\x00\x00banner!");

        let (mut client, server) = duplex(1024);
        let mut s = ServerStream::lazy(server);
        s.shutdown().await.unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, [1, 0, 0, 0]);

        let (mut client, server) = duplex(1024);
        let _s = ServerStream::respond_now(server).await.unwrap();
        let mut got = [0u8; 4];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [1, 0, 0, 0]);
    }
}
