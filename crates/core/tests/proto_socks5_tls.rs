//! GOST's SOCKS5 TLS methods `80`/`82` on loopback: Portway's connector against
//! Portway's handler with a tap relay in between that records the bytes on the
//! wire, `notls` on either side, a raw client that upgrades by hand after
//! `05 01 80`, hostile peers that pick `80` and send garbage, and the engine
//! (curl through a TLS-capable service, a chain hop negotiating `80`).

mod common;
use common::peers::curl;
use common::{cfg, engine, listening, tcp_backend, tcp_hello, T};
use portway_core::auth::Auther;
use portway_core::codec::addr::Addr;
use portway_core::codec::socks5::{cmd, rep, Socks5Error};
use portway_core::connector::socks5::{Socks5Connector, Socks5Options};
use portway_core::handler::socks5 as h5;
use portway_core::tls::{client_config, server_config, MaybeTls};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Aborts a spawned task when the test ends.
struct Task(JoinHandle<()>);
impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the test server saw of one connection.
#[derive(Debug)]
enum Seen {
    Accepted { tls: bool, user: Option<String> },
    Error(String),
}

/// Portway's socks5 handler on loopback: CONNECT dials the target and pipes the
/// stream `accept` handed back (plain or TLS). Reports each handshake.
async fn server(opts: h5::ServerOptions) -> (SocketAddr, mpsc::UnboundedReceiver<Seen>, Task) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let opts = Arc::new(opts);
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let (tx, opts) = (tx.clone(), opts.clone());
            tokio::spawn(async move {
                let (mut s, req) = match timeout(T, h5::accept(s, &opts)).await {
                    Ok(Ok(x)) => x,
                    Ok(Err(e)) => return drop(tx.send(Seen::Error(e.to_string()))),
                    Err(_) => return drop(tx.send(Seen::Error("handshake timeout".into()))),
                };
                let _ = tx.send(Seen::Accepted { tls: s.is_tls(), user: req.user.clone() });
                if req.cmd != cmd::CONNECT {
                    return;
                }
                let Ok(mut up) = TcpStream::connect(req.addr.to_string()).await else {
                    let _ = h5::reply(&mut s, rep::HOST_UNREACHABLE, None).await;
                    return;
                };
                let bnd = Addr::from(up.local_addr().unwrap());
                if h5::reply(&mut s, rep::SUCCEEDED, Some(&bnd)).await.is_ok() {
                    let _ = tokio::io::copy_bidirectional(&mut s, &mut up).await;
                }
            });
        }
    });
    (addr, rx, Task(task))
}

async fn seen(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    timeout(T, rx.recv()).await.expect("server reported nothing").expect("server gone")
}

/// A loopback relay to `to` that records what passes each way (record, then
/// forward: once an end has received bytes, the record holds them).
struct Tap {
    addr: SocketAddr,
    up: Arc<Mutex<Vec<u8>>>,
    down: Arc<Mutex<Vec<u8>>>,
    _t: Task,
}

impl Tap {
    fn up(&self) -> Vec<u8> {
        self.up.lock().unwrap().clone()
    }
    fn down(&self) -> Vec<u8> {
        self.down.lock().unwrap().clone()
    }
}

async fn pump<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(mut r: R, mut w: W, rec: Arc<Mutex<Vec<u8>>>) {
    let mut b = vec![0u8; 16384];
    loop {
        let n = match r.read(&mut b).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        rec.lock().unwrap().extend_from_slice(&b[..n]);
        if w.write_all(&b[..n]).await.is_err() {
            break;
        }
    }
    let _ = w.shutdown().await;
}

async fn tap(to: SocketAddr) -> Tap {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (up, down) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new())));
    let (u, d) = (up.clone(), down.clone());
    let task = tokio::spawn(async move {
        while let Ok((c, _)) = l.accept().await {
            let Ok(s) = TcpStream::connect(to).await else { continue };
            let (cr, cw) = c.into_split();
            let (sr, sw) = s.into_split();
            tokio::spawn(pump(cr, sw, u.clone()));
            tokio::spawn(pump(sr, cw, d.clone()));
        }
    });
    Tap { addr, up, down, _t: Task(task) }
}

fn users(u: &str, p: &str) -> Option<Arc<Auther>> {
    let mut a = Auther::new();
    a.add(u, p);
    Some(Arc::new(a))
}

fn tls_server_opts(auther: Option<Arc<Auther>>) -> h5::ServerOptions {
    h5::ServerOptions { auther, tls: Some(server_config(None).unwrap()), ..Default::default() }
}

fn tls_client(node: SocketAddr, auth: Option<(&str, &str)>) -> Socks5Connector {
    Socks5Connector::new(Socks5Options {
        auth: auth.map(|(u, p)| (u.to_string(), p.to_string())),
        tls: Some(client_config(None, &node.to_string()).unwrap()),
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Reads the backend's `name\n` greeting and checks an echo round trip.
async fn greet_and_echo<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, name: &str, data: &[u8]) {
    let mut greet = vec![0u8; name.len() + 1];
    timeout(T, s.read_exact(&mut greet)).await.unwrap().unwrap();
    assert_eq!(greet, format!("{name}\n").as_bytes());
    s.write_all(data).await.unwrap();
    let mut back = vec![0u8; data.len()];
    timeout(T, s.read_exact(&mut back)).await.unwrap().unwrap();
    assert_eq!(back, data);
}

// ---- Portway connector ↔ Portway handler ------------------------------------

#[tokio::test]
async fn both_sides_default_negotiate_80_and_tunnel_inside_tls() {
    let backend = tcp_backend("127.0.0.1", "far").await;
    let (srv, mut seen_rx, _s) = server(tls_server_opts(None)).await;
    let tap = tap(srv).await;
    let s = TcpStream::connect(tap.addr).await.unwrap();
    let (mut s, bnd) = timeout(T, tls_client(tap.addr, None).connect(s, &backend.addr.to_string())).await.unwrap().unwrap();
    assert!(s.is_tls(), "the connector hands back the TLS stream");
    assert_eq!(bnd.socket_addr().unwrap().ip().to_string(), "127.0.0.1");
    greet_and_echo(&mut s, "far", &vec![7u8; 100_000]).await;
    assert!(matches!(seen(&mut seen_rx).await, Seen::Accepted { tls: true, user: None }));

    let (up, down) = (tap.up(), tap.down());
    // GOST's default offer and choice (§5.1, §5.8 A), then a TLS handshake record.
    assert_eq!(&up[..4], &[5, 2, 0, 0x80]);
    assert_eq!(up[4], 0x16, "a TLS ClientHello right after the offer");
    assert_eq!(&down[..2], &[5, 0x80]);
    assert_eq!(down[2], 0x16, "a TLS ServerHello right after the choice");
    // The request and the payload never show on the wire.
    let port = backend.addr.port().to_be_bytes();
    assert!(!contains(&up, &[5, 1, 0, 1, 127, 0, 0, 1, port[0], port[1]]), "request in clear");
    assert!(!contains(&up, &[7u8; 64]), "payload in clear");
}

#[tokio::test]
async fn with_users_both_sides_negotiate_82_and_the_password_stays_inside_tls() {
    let backend = tcp_backend("127.0.0.1", "far").await;
    let (srv, mut seen_rx, _s) = server(tls_server_opts(users("bobby-user", "s3cret-pw"))).await;
    let tap = tap(srv).await;
    let s = TcpStream::connect(tap.addr).await.unwrap();
    let (mut s, _) = timeout(T, tls_client(tap.addr, Some(("bobby-user", "s3cret-pw"))).connect(s, &backend.addr.to_string())).await.unwrap().unwrap();
    greet_and_echo(&mut s, "far", b"ping").await;
    assert!(matches!(seen(&mut seen_rx).await, Seen::Accepted { tls: true, user: Some(u) } if u == "bobby-user"));
    let (up, down) = (tap.up(), tap.down());
    assert_eq!(&up[..6], &[5, 4, 0, 2, 0x80, 0x82]);
    assert_eq!(&down[..2], &[5, 0x82]);
    assert!(!contains(&up, b"s3cret-pw"), "the password went in clear");
    assert!(!contains(&up, b"bobby-user"), "the user name went in clear");

    // A wrong password is refused inside TLS, with the usual message.
    let s = TcpStream::connect(srv).await.unwrap();
    let e = timeout(T, tls_client(srv, Some(("bobby-user", "nope"))).connect(s, &backend.addr.to_string())).await.unwrap().unwrap_err();
    assert_eq!(e.to_string(), "socks5: authentication failed (server rejected user \"bobby-user\")");
    assert_eq!(seen(&mut seen_rx).await.to_string_lossy(), "socks5: authentication failed for user \"bobby-user\"");
}

impl Seen {
    fn to_string_lossy(&self) -> String {
        match self {
            Seen::Error(e) => e.clone(),
            other => format!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn notls_on_the_client_gives_plain_00_and_02() {
    let backend = tcp_backend("127.0.0.1", "far").await;
    for (auther, auth, offer, choice) in [
        (None, None, vec![5u8, 1, 0], [5u8, 0]),
        (users("u", "p"), Some(("u".to_string(), "p".to_string())), vec![5, 2, 0, 2], [5, 2]),
    ] {
        let (srv, mut seen_rx, _s) = server(tls_server_opts(auther)).await;
        let tap = tap(srv).await;
        let c = Socks5Connector::new(Socks5Options { auth, tls: None });
        let s = TcpStream::connect(tap.addr).await.unwrap();
        let (mut s, _) = timeout(T, c.connect(s, &backend.addr.to_string())).await.unwrap().unwrap();
        assert!(!s.is_tls());
        // Plain means the caller's own socket comes back: the fast path applies.
        assert!(matches!(s, MaybeTls::Plain(_)));
        greet_and_echo(&mut s, "far", b"plain").await;
        assert!(matches!(seen(&mut seen_rx).await, Seen::Accepted { tls: false, .. }));
        assert_eq!(&tap.up()[..offer.len()], &offer[..]);
        assert_eq!(&tap.down()[..2], &choice);
        assert_eq!(tap.up()[offer.len()], if choice[1] == 2 { 1 } else { 5 }, "RFC 1929 or the request follows in clear");
    }
}

#[tokio::test]
async fn notls_on_the_server_answers_00_or_02_to_a_tls_offer() {
    let backend = tcp_backend("127.0.0.1", "far").await;
    for (auther, auth, offer, choice) in [
        (None, None, vec![5u8, 2, 0, 0x80], [5u8, 0]),
        (users("u", "p"), Some(("u", "p")), vec![5, 4, 0, 2, 0x80, 0x82], [5, 2]),
    ] {
        let (srv, mut seen_rx, _s) = server(h5::ServerOptions { auther, tls: None, ..Default::default() }).await;
        let tap = tap(srv).await;
        let s = TcpStream::connect(tap.addr).await.unwrap();
        let (mut s, _) = timeout(T, tls_client(tap.addr, auth).connect(s, &backend.addr.to_string())).await.unwrap().unwrap();
        assert!(!s.is_tls());
        greet_and_echo(&mut s, "far", b"plain").await;
        assert!(matches!(seen(&mut seen_rx).await, Seen::Accepted { tls: false, .. }));
        assert_eq!(&tap.up()[..offer.len()], &offer[..]);
        assert_eq!(&tap.down()[..2], &choice);
    }
}

#[tokio::test]
async fn tls_offer_against_microsocks_falls_back_to_00_and_02() {
    let backend = tcp_backend("127.0.0.1", "far").await;
    for auth in [None, Some(("ms", "mspw"))] {
        let (ms, _m) = common::peers::microsocks("127.0.0.1", auth).await;
        let tap = tap(ms).await;
        let s = TcpStream::connect(tap.addr).await.unwrap();
        let (mut s, _) = timeout(T, tls_client(tap.addr, auth).connect(s, &backend.addr.to_string())).await.unwrap().unwrap();
        assert!(!s.is_tls());
        greet_and_echo(&mut s, "far", b"via microsocks").await;
        let (offer, choice): (&[u8], [u8; 2]) = if auth.is_some() { (&[5, 4, 0, 2, 0x80, 0x82], [5, 2]) } else { (&[5, 2, 0, 0x80], [5, 0]) };
        assert_eq!(&tap.up()[..offer.len()], offer);
        assert_eq!(tap.down()[..2], choice);
    }
}

// ---- the handler against a raw client -------------------------------------

#[tokio::test]
async fn raw_client_upgrades_after_05_01_80() {
    let backend = tcp_backend("127.0.0.1", "far").await;
    let (srv, mut seen_rx, _s) = server(tls_server_opts(None)).await;
    let mut s = TcpStream::connect(srv).await.unwrap();
    s.write_all(&[5, 1, 0x80]).await.unwrap();
    let mut choice = [0u8; 2];
    timeout(T, s.read_exact(&mut choice)).await.unwrap().unwrap();
    assert_eq!(choice, [5, 0x80]);
    // Hand the socket to a TLS client, as openssl s_client would take it.
    let (cfg, name) = client_config(None, &srv.to_string()).unwrap();
    let mut t = timeout(T, tokio_rustls::TlsConnector::from(cfg).connect(name, s)).await.unwrap().expect("TLS handshake after 05 80");
    let mut req = vec![5, 1, 0];
    Addr::from(backend.addr).encode(&mut req);
    t.write_all(&req).await.unwrap();
    let mut reply = [0u8; 10];
    timeout(T, t.read_exact(&mut reply)).await.unwrap().unwrap();
    assert_eq!(&reply[..4], &[5, 0, 0, 1]);
    greet_and_echo(&mut t, "far", b"over tls").await;
    assert!(matches!(seen(&mut seen_rx).await, Seen::Accepted { tls: true, user: None }));
}

#[tokio::test]
async fn client_that_picks_tls_then_sends_garbage_gets_a_clear_server_error() {
    let (srv, mut seen_rx, _s) = server(tls_server_opts(None)).await;
    let mut s = TcpStream::connect(srv).await.unwrap();
    s.write_all(&[5, 1, 0x80]).await.unwrap();
    let mut choice = [0u8; 2];
    timeout(T, s.read_exact(&mut choice)).await.unwrap().unwrap();
    assert_eq!(choice, [5, 0x80]);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let e = seen(&mut seen_rx).await.to_string_lossy();
    assert_eq!(e, "socks5: TLS handshake after method 0x80 failed: received corrupt message of type InvalidContentType");
    // And the server hangs up rather than waiting.
    let mut b = [0u8; 64];
    let mut total = 0;
    loop {
        match timeout(T, s.read(&mut b)).await.expect("server kept the connection open") {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
        assert!(total < 4096, "server keeps talking");
    }
}

// ---- hostile servers --------------------------------------------------------

/// A server that runs `script` on every connection.
async fn scripted<F, Fut>(script: F) -> (SocketAddr, Task)
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let script = Arc::new(script);
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(script(s));
        }
    });
    (addr, Task(task))
}

async fn connect_err(server: SocketAddr, c: Socks5Connector) -> Socks5Error {
    let s = TcpStream::connect(server).await.unwrap();
    timeout(T, c.connect(s, "192.168.1.1:80")).await.expect("connector hung").map(|(_, a)| a).unwrap_err()
}

#[tokio::test]
async fn server_that_picks_80_then_sends_garbage_gives_the_tls_error() {
    let (garbage, _g) = scripted(|mut s| async move {
        let mut b = [0u8; 4];
        let _ = s.read_exact(&mut b).await;
        let _ = s.write_all(&[5, 0x80]).await;
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        let mut rest = [0u8; 1024];
        let _ = s.read(&mut rest).await;
    })
    .await;
    let e = connect_err(garbage, tls_client(garbage, None)).await;
    let text = e.to_string();
    assert_eq!(text, "socks5: TLS handshake after method 0x80 failed: received corrupt message of type InvalidContentType");
    assert!(matches!(e, Socks5Error::TlsHandshake { method: 0x80, .. }));

    // 82 and then the server hangs up.
    let (cut, _c) = scripted(|mut s| async move {
        let mut b = [0u8; 6];
        let _ = s.read_exact(&mut b).await;
        let _ = s.write_all(&[5, 0x82]).await;
    })
    .await;
    let e = connect_err(cut, tls_client(cut, Some(("u", "p")))).await;
    assert!(e.to_string().starts_with("socks5: TLS handshake after method 0x82 failed: "), "{e}");

    // A node with notls does not follow a server into TLS it did not offer.
    let (pushy, _p) = scripted(|mut s| async move {
        let mut b = [0u8; 3];
        let _ = s.read_exact(&mut b).await;
        let _ = s.write_all(&[5, 0x80]).await;
    })
    .await;
    let e = connect_err(pushy, Socks5Connector::default()).await;
    assert_eq!(e.to_string(), "socks5: server chose method 0x80, which was not offered (GOST's TLS-inside-SOCKS5 method; this node has notls=true)");
}

// ---- the engine ---------------------------------------------------------------

fn socks_service(name: &str, md: &str) -> String {
    format!("- name: {name}\n  addr: 127.0.0.1:0\n  handler: {{type: socks5, metadata: {{{md}}}}}\n  listener: {{type: tcp}}\n")
}

fn forward_through(target: SocketAddr, node: SocketAddr, connector_md: &str) -> String {
    format!(
        "services:\n- name: fwd\n  addr: 127.0.0.1:0\n  handler: {{type: tcp, chain: c}}\n  listener: {{type: tcp}}\n  forwarder: {{nodes: [{{name: t, addr: \"{target}\"}}]}}\nchains:\n- name: c\n  hops:\n  - name: h\n    nodes:\n    - {{name: pw, addr: \"{node}\", connector: {{type: socks5, metadata: {{{connector_md}}}}}, dialer: {{type: tcp}}}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_chain_hop_negotiates_80_unless_notls() {
    let backend = tcp_backend("127.0.0.1", "far-end").await;
    for (server_md, client_md, choice) in [("", "", 0x80u8), ("", "notls: true", 0x00), ("notls: true", "", 0x00)] {
        let hop = engine();
        hop.apply(cfg(&format!("services:\n{}", socks_service("hop", server_md)))).await;
        let tap = tap(listening(&hop, "hop")).await;
        let e = engine();
        e.apply(cfg(&forward_through(backend.addr, tap.addr, client_md))).await;
        let (name, mut s) = tcp_hello(listening(&e, "fwd")).await.expect("through the hop");
        assert_eq!(name, "far-end");
        common::echo(&mut s, &vec![3u8; 200_000]).await.expect("bulk through the hop");
        let want_offer: &[u8] = if client_md.is_empty() { &[5, 2, 0, 0x80] } else { &[5, 1, 0] };
        assert_eq!(&tap.up()[..want_offer.len()], want_offer, "server md {server_md:?}, client md {client_md:?}");
        assert_eq!(&tap.down()[..2], &[5, choice], "server md {server_md:?}, client md {client_md:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_through_a_tls_capable_service_still_works() {
    let (web, _w) = common::peers::http_backend("127.0.0.1", "web").await;
    let e = engine();
    e.apply(cfg(&format!("services:\n{}", socks_service("proxy", "")))).await;
    let p = listening(&e, "proxy");
    let tap = tap(p).await;
    let (code, out, err) = curl(vec!["--socks5".into(), tap.addr.to_string(), format!("http://{web}/hello")]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "web GET /hello HTTP/1.1");
    // curl offers no TLS method; the service answers 00 as any SOCKS5 server.
    assert_eq!(tap.down()[..2], [5, 0]);
    assert!(!tap.up()[2..2 + tap.up()[1] as usize].contains(&0x80));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_stalling_inside_tls_is_cut_at_read_timeout() {
    let e = engine();
    e.apply(cfg(&format!("services:\n{}", socks_service("proxy", "readTimeout: 300ms")))).await;
    let p = listening(&e, "proxy");
    let mut s = TcpStream::connect(p).await.unwrap();
    s.write_all(&[5, 1, 0x80]).await.unwrap();
    let mut choice = [0u8; 2];
    timeout(T, s.read_exact(&mut choice)).await.unwrap().unwrap();
    assert_eq!(choice, [5, 0x80]);
    // No ClientHello: the service must hang up by itself, well within T.
    let mut b = [0u8; 16];
    let n = timeout(T, s.read(&mut b)).await.expect("the service waited past its readTimeout");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_udp_through_a_tls_socks5_hop_tun_and_relay_udp() {
    // UDP-TUN frames ride inside TLS; with relay=udp (standard UDP ASSOCIATE)
    // only the control connection is TLS and the datagrams go plain to the
    // relay port the hop answered, as GOST's relayUDP sends them.
    let dns = common::udp_backend("127.0.0.1", "dns").await;
    let hop = engine();
    hop.apply(cfg(&format!("services:\n{}", socks_service("hop", "udp: true")))).await;
    for connector_md in ["", "relay: udp"] {
        let tap = tap(listening(&hop, "hop")).await;
        let y = format!(
            "services:\n- name: dns\n  addr: 127.0.0.1:0\n  handler: {{type: udp, chain: c}}\n  listener: {{type: udp, metadata: {{keepAlive: true, ttl: 5s}}}}\n  forwarder: {{nodes: [{{name: t, addr: \"{}\"}}]}}\nchains:\n- name: c\n  hops:\n  - name: h\n    nodes:\n    - {{name: pw, addr: \"{}\", connector: {{type: socks5, metadata: {{{connector_md}}}}}, dialer: {{type: tcp}}}}\n",
            dns.addr, tap.addr
        );
        let e = engine();
        e.apply(cfg(&y)).await;
        let c = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for i in 0..3 {
            // Long enough that TLS ciphertext cannot hold it by chance (a 2-byte
            // "q0" turned up in random record bytes about once in 30 runs).
            c.send_to(format!("datagram-{i}-must-not-be-seen-in-clear").as_bytes(), listening(&e, "dns")).await.unwrap();
            let mut buf = [0u8; 1500];
            let (n, _) = timeout(T, c.recv_from(&mut buf)).await.unwrap_or_else(|_| panic!("{connector_md:?}: no answer")).unwrap();
            assert_eq!(&buf[..n], format!("dns:datagram-{i}-must-not-be-seen-in-clear").as_bytes(), "{connector_md:?}");
        }
        assert_eq!(&tap.down()[..2], &[5, 0x80], "{connector_md:?}");
        assert!(!contains(&tap.up(), b"datagram-0-must-not-be-seen"), "{connector_md:?}: a datagram went through the TCP stream in clear");
    }
}

/// A self-signed certificate for `name`, written as PEM files in `dir`.
fn cert_files(dir: &std::path::Path, name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap().self_signed(&key).unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c.display().to_string(), k.display().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_uses_handler_tls_and_connector_tls() {
    // The service presents handler.tls's certificate inside SOCKS5; a node with
    // connector.tls {secure, caFile, serverName} checks it, and refuses it for
    // another name with the TLS error.
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = cert_files(dir.path(), "hop.portway.test");
    let backend = tcp_backend("127.0.0.1", "far-end").await;
    let hop = engine();
    hop.apply(cfg(&format!(
        "services:\n- name: hop\n  addr: 127.0.0.1:0\n  handler: {{type: socks5, tls: {{certFile: \"{cert}\", keyFile: \"{key}\"}}}}\n  listener: {{type: tcp}}\n"
    )))
    .await;
    let node = listening(&hop, "hop");
    let through = |server_name: &str| {
        format!(
            "services:\n- name: fwd\n  addr: 127.0.0.1:0\n  handler: {{type: tcp, chain: c}}\n  listener: {{type: tcp}}\n  forwarder: {{nodes: [{{name: t, addr: \"{}\"}}]}}\nchains:\n- name: c\n  hops:\n  - name: h\n    nodes:\n    - {{name: pw, addr: \"{node}\", connector: {{type: socks5, tls: {{secure: true, caFile: \"{cert}\", serverName: {server_name}}}}}, dialer: {{type: tcp}}}}\n",
            backend.addr
        )
    };
    let good = engine();
    good.apply(cfg(&through("hop.portway.test"))).await;
    let (name, _s) = tcp_hello(listening(&good, "fwd")).await.expect("verified TLS inside SOCKS5");
    assert_eq!(name, "far-end");

    let bad = engine();
    bad.apply(cfg(&through("other.portway.test"))).await;
    let mut rx = bad.subscribe();
    assert!(tcp_hello(listening(&bad, "fwd")).await.is_err(), "a certificate for another name was accepted");
    let ev = common::wait_event(&mut rx, |e| {
        matches!(e, portway_core::stats::Event::Log { line } if line.message.contains("TLS handshake after method 0x80"))
    })
    .await;
    let portway_core::stats::Event::Log { line } = ev else { unreachable!() };
    assert!(line.message.contains("socks5: TLS handshake after method 0x80 failed: invalid peer certificate"), "{}", line.message);
}

#[test]
fn plan_errors_name_the_tls_and_notls_settings() {
    use portway_core::config::validate::plan_service;
    let plan = |yaml: &str| {
        let c = cfg(yaml);
        plan_service(&c, &c.services[0]).map(|_| ()).unwrap_err()
    };
    let e = plan("services:\n- name: s\n  addr: :1080\n  handler: {type: socks5, tls: {certFile: /nonexistent/c.pem, keyFile: /nonexistent/k.pem}}\n  listener: {type: tcp}\n");
    assert!(e.contains("handler.tls: cannot read certificate file \"/nonexistent/c.pem\""), "{e}");
    let e = plan("services:\n- name: s\n  addr: :1080\n  handler: {type: socks5, metadata: {notls: maybe}}\n  listener: {type: tcp}\n");
    assert!(e.contains("notls") && e.contains("not a boolean"), "{e}");
    // notls lifts the need for a usable certificate, as in GOST (no TLS config read).
    let c = cfg("services:\n- name: s\n  addr: :1080\n  handler: {type: socks5, metadata: {notls: true}}\n  listener: {type: tcp}\n");
    let p = plan_service(&c, &c.services[0]).unwrap();
    assert!(p.socks5_tls.is_none());
    let c = cfg("services:\n- name: s\n  addr: :1080\n  handler: {type: socks5}\n  listener: {type: tcp}\n");
    assert!(plan_service(&c, &c.services[0]).unwrap().socks5_tls.is_some(), "TLS is on by default");
}
