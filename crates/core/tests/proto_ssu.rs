//! SSU (Shadowsocks UDP relay, GOST's `ssu` connector and handler) over real
//! loopback sockets: our connector against our handler for each cipher, hostile
//! datagrams, the stream form, and interop with shadowsocks-libev (`ss-server`
//! for our connector, `ss-tunnel` for our handler).

mod common;

use common::peers::ChildGuard;
use common::{udp_backend, T};
use portway_core::codec::addr::Addr;
use portway_core::codec::ss::{SsCipher, StreamOpener};
use portway_core::connector::ssu::{SsStream, SsuAssociation};
use portway_core::framed::{read_frame, write_frame, FrameBuf};
use portway_core::handler::ssu::{serve, serve_stream, Meters, ServerOptions, ServerStats};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

const METHODS: [&str; 3] = ["aes-128-gcm", "aes-256-gcm", "chacha20-ietf-poly1305"];

fn cipher(method: &str, pw: &str) -> Option<SsCipher> {
    SsCipher::new(method, pw, None).unwrap()
}

struct Server {
    addr: SocketAddr,
    stats: Arc<ServerStats>,
    bytes: Arc<(AtomicU64, AtomicU64)>,
    cancel: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn start_handler(opts: ServerOptions) -> Server {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let stats = Arc::new(ServerStats::default());
    let bytes = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let (bi, bo) = (bytes.clone(), bytes.clone());
    let meters = Arc::new(Meters {
        on_in: Box::new(move |n| {
            bi.0.fetch_add(n, Relaxed);
        }),
        on_out: Box::new(move |n| {
            bo.1.fetch_add(n, Relaxed);
        }),
    });
    let cancel = CancellationToken::new();
    tokio::spawn(serve(sock, opts, meters, stats.clone(), cancel.clone()));
    Server { addr, stats, bytes, cancel }
}

async fn recv_within(a: &SsuAssociation, d: Duration) -> Option<(Addr, Vec<u8>)> {
    tokio::time::timeout(d, a.recv()).await.ok().map(|r| r.unwrap())
}

/// Polls a counter until it reaches `want`, bounded by `T`.
async fn wait_count(c: &AtomicU64, want: u64, what: &str) {
    let r = tokio::time::timeout(T, async {
        while c.load(Relaxed) < want {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(r.is_ok(), "{what}: counter is {} after {T:?}, wanted {want}", c.load(Relaxed));
}

#[tokio::test]
async fn each_cipher_round_trips_through_our_handler() {
    let echo = udp_backend("127.0.0.1", "echo").await;
    let other = udp_backend("127.0.0.1", "other").await;
    for m in METHODS {
        let srv = start_handler(ServerOptions::new(cipher(m, "s3cret"))).await;
        let a = SsuAssociation::connect(srv.addr, cipher(m, "s3cret")).await.unwrap();
        let target = Addr::ip(echo.addr.ip(), echo.addr.port());
        a.send(&target, b"ping").await.unwrap();
        let (from, p) = recv_within(&a, T).await.expect("answer through the handler");
        assert_eq!((from.to_string(), p.as_slice()), (echo.addr.to_string(), &b"echo:ping"[..]), "{m}");
        // One association, another target: the answer names its own source.
        a.send(&Addr::ip(other.addr.ip(), other.addr.port()), b"x").await.unwrap();
        let (from, p) = recv_within(&a, T).await.expect("answer from the second target");
        assert_eq!((from.to_string(), p.as_slice()), (other.addr.to_string(), &b"other:x"[..]), "{m}");
        assert_eq!(srv.stats.sessions_opened.load(Relaxed), 1, "{m}: one client, one session");
        assert_eq!(srv.bytes.0.load(Relaxed), 5, "{m}: payload bytes in");
        wait_count(&srv.bytes.1, 9 + 7, "bytes out").await;
    }
}

#[tokio::test]
async fn a_name_target_is_resolved_by_the_handler() {
    let echo = udp_backend("127.0.0.1", "echo").await;
    let srv = start_handler(ServerOptions::new(cipher("aes-128-gcm", "pw"))).await;
    let a = SsuAssociation::connect(srv.addr, cipher("aes-128-gcm", "pw")).await.unwrap();
    a.send(&Addr::parse(&format!("localhost:{}", echo.addr.port())).unwrap(), b"n").await.unwrap();
    let (from, p) = recv_within(&a, T).await.expect("answer for a name target");
    assert_eq!(p, b"echo:n");
    assert_eq!(from.port, echo.addr.port());
}

#[tokio::test]
async fn wrong_password_gets_no_answer_and_is_counted() {
    let echo = udp_backend("127.0.0.1", "echo").await;
    let srv = start_handler(ServerOptions::new(cipher("chacha20-ietf-poly1305", "right"))).await;
    let target = Addr::ip(echo.addr.ip(), echo.addr.port());
    let bad = SsuAssociation::connect(srv.addr, cipher("chacha20-ietf-poly1305", "wrong")).await.unwrap();
    bad.send(&target, b"hello").await.unwrap();
    wait_count(&srv.stats.decrypt_errors, 1, "decrypt errors").await;
    assert!(recv_within(&bad, Duration::from_millis(300)).await.is_none(), "a wrong key must get no answer");
    // Another method with the same password fails the same way.
    let other = SsuAssociation::connect(srv.addr, cipher("aes-256-gcm", "right")).await.unwrap();
    other.send(&target, b"hello").await.unwrap();
    wait_count(&srv.stats.decrypt_errors, 2, "decrypt errors").await;
    assert_eq!(srv.stats.sessions_opened.load(Relaxed), 0);
    assert_eq!(srv.bytes.0.load(Relaxed), 0, "nothing reached the target");
    let err = portway_core::codec::ss::SsError::Decrypt.to_string();
    assert_eq!(err, "shadowsocks: could not decrypt data from the peer (wrong password or cipher method, or not Shadowsocks)");
}

#[tokio::test]
async fn garbage_and_truncated_datagrams_do_not_kill_the_handler() {
    let echo = udp_backend("127.0.0.1", "echo").await;
    let srv = start_handler(ServerOptions::new(cipher("aes-256-gcm", "pw"))).await;
    let raw = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    raw.connect(srv.addr).await.unwrap();
    // A real packet, to cut short.
    let c = cipher("aes-256-gcm", "pw").unwrap();
    let mut good = Vec::new();
    portway_core::codec::ss::encode_udp(Some(&c), &Addr::ip(echo.addr.ip(), echo.addr.port()), b"pay", &mut good).unwrap();
    let junk: Vec<Vec<u8>> = vec![vec![], vec![0], vec![0xFF; 31], vec![0x42; 48], vec![7; 1400], good[..good.len() - 1].to_vec(), good[..40].to_vec()];
    for j in &junk {
        raw.send(j).await.unwrap();
    }
    // A packet that decrypts but names an unknown address type.
    let mut bad_addr = Vec::new();
    c.seal_packet(&[0x09, 1, 2, 3], &mut bad_addr);
    raw.send(&bad_addr).await.unwrap();
    wait_count(&srv.stats.decrypt_errors, junk.len() as u64, "decrypt errors").await;
    wait_count(&srv.stats.bad_packets, 1, "bad packets").await;
    // Still serving: the real packet from the same socket gets its answer.
    raw.send(&good).await.unwrap();
    let mut buf = vec![0u8; 2048];
    let n = tokio::time::timeout(T, raw.recv(&mut buf)).await.expect("answer after garbage").unwrap();
    let (from, p) = portway_core::codec::ss::decode_udp(Some(&c), &buf[..n]).unwrap();
    assert_eq!((from.to_string(), p.as_slice()), (echo.addr.to_string(), &b"echo:pay"[..]));
}

#[tokio::test]
async fn idle_sessions_close_after_ttl_and_a_new_one_opens() {
    let echo = udp_backend("127.0.0.1", "echo").await;
    let mut opts = ServerOptions::new(cipher("aes-128-gcm", "pw"));
    opts.ttl = Duration::from_millis(100);
    let srv = start_handler(opts).await;
    let a = SsuAssociation::connect(srv.addr, cipher("aes-128-gcm", "pw")).await.unwrap();
    let target = Addr::ip(echo.addr.ip(), echo.addr.port());
    a.send(&target, b"1").await.unwrap();
    assert_eq!(recv_within(&a, T).await.expect("first answer").1, b"echo:1");
    assert_eq!(srv.stats.sessions_active.load(Relaxed), 1);
    let r = tokio::time::timeout(T, async {
        while srv.stats.sessions_active.load(Relaxed) > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(r.is_ok(), "the idle session did not close");
    a.send(&target, b"2").await.unwrap();
    assert_eq!(recv_within(&a, T).await.expect("answer in a new session").1, b"echo:2");
    assert_eq!(srv.stats.sessions_opened.load(Relaxed), 2);
}

#[tokio::test]
async fn stream_form_carries_udptun_frames_inside_a_shadowsocks_stream() {
    let echo = udp_backend("127.0.0.1", "echo").await;
    let c = cipher("chacha20-ietf-poly1305", "pw");
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let laddr = l.local_addr().unwrap();
    let server_cipher = c.clone();
    let server = tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        serve_stream(s, server_cipher.as_ref(), &Meters::none()).await
    });
    let tcp = TcpStream::connect(laddr).await.unwrap();
    let mut s = SsStream::new(tcp, c.as_ref());
    let target = Addr::ip(echo.addr.ip(), echo.addr.port());
    let mut fb = FrameBuf::new();
    for i in 0..3u8 {
        write_frame(&mut s, &target, &[b'a' + i; 20]).await.unwrap();
        let (from, p) = tokio::time::timeout(T, read_frame(&mut s, &mut fb)).await.unwrap().unwrap().unwrap();
        assert_eq!(from.to_string(), echo.addr.to_string());
        assert_eq!(p, [b"echo:".to_vec(), vec![b'a' + i; 20]].concat().as_slice());
    }
    drop(s);
    let r = tokio::time::timeout(T, server).await.unwrap().unwrap();
    assert!(r.is_ok(), "{r:?}");
}

/// What the connector puts on the wire for the stream form: salt, then sealed
/// chunks whose plaintext starts with a UDP-over-stream frame, not with a
/// Shadowsocks target address (GOST: `ss.ShadowConn(…, nil)`).
#[tokio::test]
async fn stream_form_sends_no_address_header() {
    let c = cipher("aes-128-gcm", "pw").unwrap();
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let laddr = l.local_addr().unwrap();
    let tcp = TcpStream::connect(laddr).await.unwrap();
    let (mut peer, _) = l.accept().await.unwrap();
    let mut s = SsStream::new(tcp, Some(&c));
    write_frame(&mut s, &Addr::parse("192.168.1.1:53").unwrap(), &[0x11; 30]).await.unwrap();
    let mut wire = vec![0u8; 16 + 18 + 40 + 16];
    tokio::time::timeout(T, peer.read_exact(&mut wire)).await.unwrap().unwrap();
    let mut o = StreamOpener::new(&c);
    o.push(&wire);
    let plain = o.next_chunk().unwrap().expect("one chunk");
    let mut want = vec![0x00, 0x1E, 0xFF, 0x01, 0xC0, 0xA8, 0x01, 0x01, 0x00, 0x35];
    want.extend_from_slice(&[0x11; 30]);
    assert_eq!(plain, want, "§5.8 B frame inside the encrypted stream");
}

// ---- shadowsocks-libev interop ----

fn have(bin: &str) -> bool {
    Command::new(bin).arg("-h").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map(|a| a.port()).unwrap()
}

/// Sends until an answer comes back: a freshly started UDP peer has no
/// readiness signal, so the first datagrams may find nothing listening yet.
async fn ask_until_answered(a: &SsuAssociation, target: &Addr, payload: &[u8], child: &mut ChildGuard) -> (Addr, Vec<u8>) {
    let r = tokio::time::timeout(T, async {
        loop {
            // Until the server binds, the kernel answers "port unreachable",
            // which a connected socket reports as an error on send or recv.
            let _ = a.send(target, payload).await;
            if let Ok(Ok(x)) = tokio::time::timeout(Duration::from_millis(200), a.recv()).await {
                return x;
            }
            if let Ok(Some(st)) = child.0.try_wait() {
                panic!("shadowsocks-libev exited early: {st}");
            }
        }
    })
    .await;
    r.expect("no answer through shadowsocks-libev")
}

#[tokio::test]
async fn our_connector_through_ss_server() {
    assert!(have("ss-server"), "ss-server missing: apt-get install shadowsocks-libev");
    let echo = udp_backend("127.0.0.1", "echo").await;
    for m in METHODS {
        let port = free_udp_port();
        let child = Command::new("ss-server")
            .args(["-s", "127.0.0.1", "-p", &port.to_string(), "-k", "libev-pw", "-m", m, "-U"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ss-server");
        let mut child = ChildGuard(child);
        let server: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let a = SsuAssociation::connect(server, cipher(m, "libev-pw")).await.unwrap();
        let target = Addr::ip(echo.addr.ip(), echo.addr.port());
        let (from, p) = ask_until_answered(&a, &target, b"via-libev", &mut child).await;
        assert_eq!((from.to_string(), p.as_slice()), (echo.addr.to_string(), &b"echo:via-libev"[..]), "{m}");
        // A wrong password through the same server gets nothing back.
        let bad = SsuAssociation::connect(server, cipher(m, "nope")).await.unwrap();
        bad.send(&target, b"x").await.unwrap();
        assert!(recv_within(&bad, Duration::from_millis(300)).await.is_none(), "{m}: wrong key answered");
    }
}

#[tokio::test]
async fn ss_tunnel_through_our_handler() {
    assert!(have("ss-tunnel"), "ss-tunnel missing: apt-get install shadowsocks-libev");
    let echo = udp_backend("127.0.0.1", "echo").await;
    for m in METHODS {
        let srv = start_handler(ServerOptions::new(cipher(m, "tun-pw"))).await;
        let local = free_udp_port();
        let child = Command::new("ss-tunnel")
            .args(["-s", "127.0.0.1", "-p", &srv.addr.port().to_string(), "-b", "127.0.0.1", "-l", &local.to_string()])
            .args(["-L", &echo.addr.to_string(), "-k", "tun-pw", "-m", m, "-U"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ss-tunnel");
        let mut child = ChildGuard(child);
        let app = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        app.connect(("127.0.0.1", local)).await.unwrap();
        let mut buf = [0u8; 256];
        let r = tokio::time::timeout(T, async {
            loop {
                app.send(b"tunnel").await.unwrap();
                if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(200), app.recv(&mut buf)).await {
                    return n;
                }
                if let Ok(Some(st)) = child.0.try_wait() {
                    panic!("ss-tunnel exited early: {st}");
                }
            }
        })
        .await;
        let n = r.expect("no answer through ss-tunnel and our handler");
        assert_eq!(&buf[..n], b"echo:tunnel", "{m}");
        assert_eq!(srv.stats.decrypt_errors.load(Relaxed), 0, "{m}");
        assert!(srv.bytes.0.load(Relaxed) >= 6);
    }
}

/// GOST with an empty method or password (or `none`) encrypts nothing: the
/// packet is the bare `ADDR | payload`, and the handler still relays it.
#[tokio::test]
async fn without_a_cipher_packets_are_plain_socks_addresses() {
    let echo = udp_backend("127.0.0.1", "echo").await;
    assert!(SsCipher::new("chacha20-ietf-poly1305", "", None).unwrap().is_none());
    let srv = start_handler(ServerOptions::new(None)).await;
    let raw = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    raw.connect(srv.addr).await.unwrap();
    let mut pkt = vec![0x01, 127, 0, 0, 1];
    pkt.extend_from_slice(&echo.addr.port().to_be_bytes());
    pkt.extend_from_slice(b"plain");
    raw.send(&pkt).await.unwrap();
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(T, raw.recv(&mut buf)).await.expect("plain answer").unwrap();
    let mut want = pkt[..7].to_vec();
    want.extend_from_slice(b"echo:plain");
    assert_eq!(&buf[..n], &want[..]);
}
