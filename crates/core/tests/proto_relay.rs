//! Relay client and server against each other and against raw peers, over real
//! loopback sockets. The server here is the glue the engine will have: accept →
//! dial with tokio → copy through `ServerStream` (or `udp_serve`).

use portway_core::auth::Auther;
use portway_core::codec::addr::Addr;
use portway_core::codec::relay::{Network, RelayError};
use portway_core::connector::relay::{connect, recv_datagram, send_datagram, ConnectorOptions, RelayStream};
use portway_core::handler::relay::{accept, respond_error, udp_serve, Request, ServerOptions, ServerStream};
use portway_core::stats::{ConnCounters, Meter, ServiceCounters};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const T: Duration = Duration::from_secs(5);
const BANNER: &[u8] = b"SSH-2.0-PortwayTest\r\n";

async fn t<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(T, f).await.expect("timed out after 5 s")
}

/// Aborts its accept loop on drop, so no test leaves a task behind.
struct Task(JoinHandle<()>);
impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Backend {
    addr: SocketAddr,
    _task: Task,
}

/// Echoes every byte (a client-first target).
async fn echo_backend() -> Backend {
    tcp_backend(None).await
}

/// Sends an SSH-style banner on accept, then echoes (a server-first target).
async fn banner_backend() -> Backend {
    tcp_backend(Some(BANNER)).await
}

async fn tcp_backend(banner: Option<&'static [u8]>) -> Backend {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                if let Some(b) = banner {
                    if s.write_all(b).await.is_err() {
                        return;
                    }
                }
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    Backend { addr, _task: Task(task) }
}

/// Answers one HTTP/1.0 request and closes.
async fn http_backend() -> Backend {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut b = [0u8; 512];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut b).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&b[..n]),
                    }
                }
                let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
            });
        }
    });
    Backend { addr, _task: Task(task) }
}

/// Answers each datagram with `echo:` + payload.
async fn udp_echo() -> Backend {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = s.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut b = vec![0u8; 65536];
        while let Ok((n, from)) = s.recv_from(&mut b).await {
            let mut out = b"echo:".to_vec();
            out.extend_from_slice(&b[..n]);
            let _ = s.send_to(&out, from).await;
        }
    });
    Backend { addr, _task: Task(task) }
}

struct Server {
    addr: SocketAddr,
    /// What `accept` returned for each connection, errors as their text.
    results: mpsc::UnboundedReceiver<Result<Request, String>>,
    meter: Meter,
    _task: Task,
}

impl Server {
    async fn next(&mut self) -> Result<Request, String> {
        t(self.results.recv()).await.expect("server task ended")
    }
}

async fn relay_server(opts: ServerOptions) -> Server {
    relay_server_to(opts, None).await
}

/// A relay service; with `forward`, every request goes there (GOST's forward mode).
async fn relay_server_to(opts: ServerOptions, forward: Option<SocketAddr>) -> Server {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, results) = mpsc::unbounded_channel();
    let meter = Meter { conn: Arc::new(ConnCounters::default()), service: Arc::new(ServiceCounters::default()) };
    let m = meter.clone();
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let (opts, tx, m) = (opts.clone(), tx.clone(), m.clone());
            tokio::spawn(serve_one(s, opts, forward, tx, m));
        }
    });
    Server { addr, results, meter, _task: Task(task) }
}

async fn serve_one(
    mut s: TcpStream,
    opts: ServerOptions,
    forward: Option<SocketAddr>,
    tx: mpsc::UnboundedSender<Result<Request, String>>,
    meter: Meter,
) {
    let req = match accept(&mut s, &opts).await {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.send(Err(e.to_string()));
            return;
        }
    };
    let _ = tx.send(Ok(req.clone()));
    let target = forward.or_else(|| req.addr.as_ref().and_then(Addr::socket_addr)).expect("test targets are IPs");
    match req.network {
        Network::Tcp => match TcpStream::connect(target).await {
            Err(_) => {
                let _ = respond_error(&mut s, opts.dial_failure_status()).await;
            }
            Ok(mut t) => {
                let Ok(mut ss) = ServerStream::respond_ok(s, &opts).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut ss, &mut t).await;
            }
        },
        Network::Udp => {
            let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            sock.connect(target).await.unwrap();
            let Ok(ss) = ServerStream::respond_ok(s, &opts).await else { return };
            let _ = udp_serve(ss, &sock, &meter).await;
        }
    }
}

fn client_opts(server: &Server, nodelay: bool, auth: Option<(&str, &str)>) -> ConnectorOptions {
    ConnectorOptions {
        auth: auth.map(|(u, p)| (u.to_string(), p.to_string())),
        nodelay,
        server: server.addr.to_string(),
    }
}

async fn dial(
    server: &Server,
    target: SocketAddr,
    network: Network,
    opts: &ConnectorOptions,
) -> RelayStream<TcpStream> {
    let tcp = t(TcpStream::connect(server.addr)).await.unwrap();
    t(connect(tcp, &Addr::from(target), network, opts)).await.unwrap()
}

async fn read_n<R: AsyncReadExt + Unpin>(r: &mut R, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    t(r.read_exact(&mut b)).await.unwrap();
    b
}

/// The error text a read on the relay stream ends with.
async fn read_error(s: &mut RelayStream<TcpStream>) -> String {
    let mut b = [0u8; 16];
    let e = t(s.read(&mut b)).await.expect_err("read must fail");
    RelayError::from_io(e).to_string()
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn addr_bytes(a: SocketAddr) -> Vec<u8> {
    let mut v = Vec::new();
    Addr::from(a).encode(&mut v);
    v
}

fn auther(user: &str, pass: &str) -> Option<Auther> {
    let mut a = Auther::new();
    a.add(user, pass);
    Some(a)
}

#[tokio::test]
async fn tcp_bytes_through_with_lazy_request_and_response() {
    let echo = echo_backend().await;
    let mut srv = relay_server(ServerOptions::default()).await;
    let mut s = dial(&srv, echo.addr, Network::Tcp, &client_opts(&srv, false, None)).await;
    t(s.write_all(b"hello relay")).await.unwrap();
    assert_eq!(read_n(&mut s, 11).await, b"hello relay");
    assert!(s.is_established());
    let req = srv.next().await.unwrap();
    assert_eq!(req.addr, Some(Addr::from(echo.addr)));
    assert_eq!(req.user, None);
}

#[tokio::test]
async fn a_megabyte_both_ways_arrives_intact() {
    let echo = echo_backend().await;
    let srv = relay_server(ServerOptions::default()).await;
    let s = dial(&srv, echo.addr, Network::Tcp, &client_opts(&srv, false, None)).await;
    let data: Vec<u8> = (0..1_048_576u32).map(|i| (i * 7 % 251) as u8).collect();
    let (mut r, mut w) = tokio::io::split(s);
    let sent = data.clone();
    let writer = tokio::spawn(async move { w.write_all(&sent).await.map(|_| w) });
    let got = read_n(&mut r, data.len()).await;
    let _w = t(writer).await.unwrap().unwrap();
    assert!(got == data, "payload changed in transit");
}

#[tokio::test]
async fn nodelay_client_works_with_a_lazy_server_and_a_client_first_target() {
    // GOST's client would wait here for an answer the lazy server only sends with
    // the target's first bytes; Portway sends the payload first.
    let echo = echo_backend().await;
    let srv = relay_server(ServerOptions::default()).await;
    let mut s = dial(&srv, echo.addr, Network::Tcp, &client_opts(&srv, true, None)).await;
    t(s.write_all(b"ping")).await.unwrap();
    assert_eq!(read_n(&mut s, 4).await, b"ping");
}

#[tokio::test]
async fn server_first_target_needs_nodelay() {
    let ssh = banner_backend().await;
    let mut srv = relay_server(ServerOptions::default()).await;

    let mut s = dial(&srv, ssh.addr, Network::Tcp, &client_opts(&srv, true, None)).await;
    assert_eq!(read_n(&mut s, BANNER.len()).await, BANNER);
    assert!(srv.next().await.is_ok());

    // Without nodelay the request waits for client bytes, as in GOST: no banner...
    let mut lazy = dial(&srv, ssh.addr, Network::Tcp, &client_opts(&srv, false, None)).await;
    let mut b = [0u8; 1];
    assert!(tokio::time::timeout(Duration::from_millis(300), lazy.read(&mut b)).await.is_err());
    assert!(srv.results.try_recv().is_err(), "the server must not have seen a request yet");
    // ...until the client says something.
    t(lazy.write_all(b"SSH-2.0-client\r\n")).await.unwrap();
    assert_eq!(read_n(&mut lazy, BANNER.len()).await, BANNER);
}

#[tokio::test]
async fn nodelay_server_answers_before_any_data() {
    let ssh = banner_backend().await;
    let srv = relay_server(ServerOptions { nodelay: true, ..Default::default() }).await;
    let mut s = dial(&srv, ssh.addr, Network::Tcp, &client_opts(&srv, true, None)).await;
    t(s.handshake()).await.unwrap();
    assert!(s.is_established());
    assert_eq!(read_n(&mut s, BANNER.len()).await, BANNER);
}

#[tokio::test]
async fn authentication_ok_and_wrong_password() {
    let echo = echo_backend().await;
    let mut srv = relay_server(ServerOptions { auther: auther("u", "p"), ..Default::default() }).await;

    let mut s = dial(&srv, echo.addr, Network::Tcp, &client_opts(&srv, false, Some(("u", "p")))).await;
    t(s.write_all(b"authed")).await.unwrap();
    assert_eq!(read_n(&mut s, 6).await, b"authed");
    assert_eq!(srv.next().await.unwrap().user.as_deref(), Some("u"));

    let mut bad = dial(&srv, echo.addr, Network::Tcp, &client_opts(&srv, false, Some(("u", "wrong")))).await;
    t(bad.write_all(b"hi")).await.unwrap();
    assert_eq!(read_error(&mut bad).await, format!("relay: {} refused: unauthorized", srv.addr));
    let err = srv.next().await.unwrap_err();
    assert_eq!(err, "relay: authentication failed (client user \"u\")");
    assert!(!err.contains("wrong"), "no password in errors");

    let mut eager = dial(&srv, echo.addr, Network::Tcp, &client_opts(&srv, true, Some(("u", "wrong")))).await;
    let e = t(eager.handshake()).await.unwrap_err();
    assert!(matches!(e, RelayError::Refused { status: 2, .. }));
    assert_eq!(std::io::Error::from(e).kind(), std::io::ErrorKind::PermissionDenied);
}

#[tokio::test]
async fn unreachable_target_is_reported_with_gost_status() {
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let srv = relay_server(ServerOptions::default()).await;
    let mut s = dial(&srv, closed, Network::Tcp, &client_opts(&srv, false, None)).await;
    t(s.write_all(b"x")).await.unwrap();
    assert_eq!(read_error(&mut s).await, format!("relay: {} refused: network unreachable", srv.addr));
}

#[tokio::test]
async fn forward_mode_goes_to_the_forwarder_target() {
    let echo = echo_backend().await;
    let mut srv = relay_server_to(ServerOptions { forward: true, ..Default::default() }, Some(echo.addr)).await;
    let elsewhere: SocketAddr = "127.0.0.2:9".parse().unwrap();
    let mut s = dial(&srv, elsewhere, Network::Tcp, &client_opts(&srv, false, None)).await;
    t(s.write_all(b"fwd")).await.unwrap();
    assert_eq!(read_n(&mut s, 3).await, b"fwd");
    assert_eq!(srv.next().await.unwrap().addr, Some(Addr::from(elsewhere)));
}

#[tokio::test]
async fn udp_connect_through_relay() {
    let echo = udp_echo().await;
    let srv = relay_server(ServerOptions::default()).await;
    let mut s = dial(&srv, echo.addr, Network::Udp, &client_opts(&srv, false, None)).await;
    let mut buf = Vec::new();
    for msg in [&b"ping"[..], &b"second datagram"[..], &[0u8; 1400][..]] {
        t(send_datagram(&mut s, msg)).await.unwrap();
        let n = t(recv_datagram(&mut s, &mut buf)).await.unwrap().unwrap();
        assert_eq!(&buf[..n], [&b"echo:"[..], msg].concat());
    }
    assert_eq!(srv.meter.service.bytes_in.load(Relaxed), 4 + 15 + 1400);
    assert_eq!(srv.meter.service.bytes_out.load(Relaxed), 4 + 15 + 1400 + 15);
}

#[tokio::test]
async fn raw_gost_style_coalesced_request_and_payload_is_served() {
    let http = http_backend().await;
    let srv = relay_server(ServerOptions::default()).await;
    let mut c = t(TcpStream::connect(srv.addr)).await.unwrap();
    // §5.8 D: request and first payload in one write.
    let addr = addr_bytes(http.addr);
    let mut wire = vec![1, 1, 0, 3 + addr.len() as u8, 2, 0, addr.len() as u8];
    wire.extend_from_slice(&addr);
    wire.extend_from_slice(b"GET / HTTP/1.0\r\n\r\n");
    t(c.write_all(&wire)).await.unwrap();
    let mut got = Vec::new();
    t(c.read_to_end(&mut got)).await.unwrap();
    assert_eq!(got, b"\x01\x00\x00\x00HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
}

#[tokio::test]
async fn raw_request_alone_gets_an_immediate_answer_from_a_nodelay_server() {
    let echo = echo_backend().await;
    let srv = relay_server(ServerOptions { nodelay: true, ..Default::default() }).await;
    let mut c = t(TcpStream::connect(srv.addr)).await.unwrap();
    let addr = addr_bytes(echo.addr);
    let mut wire = vec![1, 1, 0, 3 + addr.len() as u8, 2, 0, addr.len() as u8];
    wire.extend_from_slice(&addr);
    t(c.write_all(&wire)).await.unwrap();
    assert_eq!(read_n(&mut c, 4).await, [1, 0, 0, 0]);
    t(c.write_all(b"after")).await.unwrap();
    assert_eq!(read_n(&mut c, 5).await, b"after");
}

#[tokio::test]
async fn raw_udp_request_like_example_e() {
    let echo = udp_echo().await;
    let srv = relay_server(ServerOptions::default()).await;
    let mut c = t(TcpStream::connect(srv.addr)).await.unwrap();
    let mut wire = hex("01 81 000F 04 0002 0001 02 0007");
    wire.extend_from_slice(&addr_bytes(echo.addr));
    wire.extend_from_slice(&hex("0004"));
    wire.extend_from_slice(b"ping");
    t(c.write_all(&wire)).await.unwrap();
    assert_eq!(read_n(&mut c, 4 + 2 + 9).await, b"\x01\x00\x00\x00\x00\x09echo:ping");
}

/// The server closed without sending a byte; bytes it left unread make the
/// kernel send a reset instead of a FIN, which is the same to the client.
async fn closed_without_answer(c: &mut TcpStream) {
    let mut got = Vec::new();
    match t(c.read_to_end(&mut got)).await {
        Ok(_) => assert!(got.is_empty(), "unexpected answer {got:?}"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
    }
    assert!(got.is_empty());
}

#[tokio::test]
async fn hostile_clients_get_errors_not_hangs() {
    let mut srv = relay_server(ServerOptions { read_timeout: Duration::from_millis(300), ..Default::default() }).await;

    // An HTTP client at a relay port: closed without an answer, as GOST does.
    let mut c = t(TcpStream::connect(srv.addr)).await.unwrap();
    t(c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")).await.unwrap();
    closed_without_answer(&mut c).await;
    assert!(srv.next().await.unwrap_err().contains("unsupported protocol version 0x47"));

    // Largest FLEN, then the client goes away.
    let mut c = t(TcpStream::connect(srv.addr)).await.unwrap();
    t(c.write_all(&[1, 1, 0xFF, 0xFF, 2, 0, 7])).await.unwrap();
    t(c.shutdown()).await.unwrap();
    assert_eq!(srv.next().await.unwrap_err(), "relay: the client closed the connection in the middle of its request");

    // Largest FLEN, then silence: the read limit ends it.
    let mut c = t(TcpStream::connect(srv.addr)).await.unwrap();
    t(c.write_all(&[1, 1, 0xFF, 0xFF, 2])).await.unwrap();
    assert_eq!(srv.next().await.unwrap_err(), "relay: no complete request from the client within 300ms");
    closed_without_answer(&mut c).await;

    // 64 KiB of garbage features behind a valid header.
    let mut c = t(TcpStream::connect(srv.addr)).await.unwrap();
    let mut wire = vec![1, 1, 0xFF, 0xFF];
    wire.extend_from_slice(&[0xEE; 0xFFFF]);
    t(c.write_all(&wire)).await.unwrap();
    assert!(srv.next().await.unwrap_err().starts_with("relay: malformed request from the client: feature 0xee claims"));
    closed_without_answer(&mut c).await;

    // A truncated header.
    let mut c = t(TcpStream::connect(srv.addr)).await.unwrap();
    t(c.write_all(&[1, 1, 0])).await.unwrap();
    t(c.shutdown()).await.unwrap();
    assert_eq!(srv.next().await.unwrap_err(), "relay: the client closed the connection in the middle of its request");
}

/// A fake relay server that reads whatever comes and answers `reply`, then closes.
async fn fake_server(reply: &'static [u8]) -> Server {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (_tx, results) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let mut b = [0u8; 256];
            let _ = s.read(&mut b).await;
            let _ = s.write_all(reply).await;
        }
    });
    let meter = Meter { conn: Arc::new(ConnCounters::default()), service: Arc::new(ServiceCounters::default()) };
    Server { addr, results, meter, _task: Task(task) }
}

#[tokio::test]
async fn hostile_servers_give_errors_naming_them() {
    let target: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let cases: [(&'static [u8], &str); 4] = [
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "sent a malformed response: unsupported protocol version 0x48"),
        (b"", "closed the connection without answering"),
        (b"\x01\x00\xff\xff\x02\x00", "closed the connection without answering"),
        (b"\x01\x07\x00\x00", "refused: network unreachable"),
    ];
    for (reply, want) in cases {
        let srv = fake_server(reply).await;
        let mut s = dial(&srv, target, Network::Tcp, &client_opts(&srv, false, None)).await;
        t(s.write_all(b"x")).await.unwrap();
        let e = read_error(&mut s).await;
        assert!(e.starts_with(&format!("relay: {} {want}", srv.addr)), "{e}");
    }
}

#[tokio::test]
async fn bind_is_refused_on_the_wire() {
    let mut srv = relay_server(ServerOptions::default()).await;
    let mut c = t(TcpStream::connect(srv.addr)).await.unwrap();
    t(c.write_all(&hex("01 02 000C 04 0002 0000 02 0004 03 00 1F90"))).await.unwrap();
    let mut got = Vec::new();
    t(c.read_to_end(&mut got)).await.unwrap();
    assert_eq!(got, [1, 3, 0, 0]);
    assert_eq!(srv.next().await.unwrap_err(), "relay: BIND is disabled (the relay service needs bind=true)");
}
