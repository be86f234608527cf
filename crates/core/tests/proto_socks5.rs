//! SOCKS5 / SOCKS4(a) against real peers on loopback: curl through our server
//! side, our client through microsocks (and danted when present), our client
//! against our server for GOST's UDP-TUN, and hostile peers.

use portway_core::auth::Auther;
use portway_core::codec::addr::Addr;
use portway_core::codec::socks4::{self as s4, Socks4Error};
use portway_core::codec::socks5::{cmd, rep, Socks5Error};
use portway_core::connector::socks4::{Socks4Connector, Socks4Options};
use portway_core::connector::socks5::{Socks5Connector, Socks5Options};
use portway_core::framed::{read_frame, write_frame, FrameBuf};
use portway_core::handler::{socks4 as h4, socks5 as h5};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;

const T: Duration = Duration::from_secs(5);
const BODY: &str = "hello through socks";

/// Aborts a spawned server when the test ends.
struct Task(JoinHandle<()>);
impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A loopback HTTP-ish backend: reads a request head, answers a fixed response.
async fn http_backend() -> (SocketAddr, Task) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut b = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut b).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&b[..n]),
                    }
                }
                let resp = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY}", BODY.len());
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (addr, Task(task))
}

/// A UDP echo server on loopback.
async fn udp_echo() -> (SocketAddr, Task) {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = s.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut b = vec![0u8; 65535];
        while let Ok((n, from)) = s.recv_from(&mut b).await {
            let mut reply = b"echo:".to_vec();
            reply.extend_from_slice(&b[..n]);
            let _ = s.send_to(&reply, from).await;
        }
    });
    (addr, Task(task))
}

#[derive(Default)]
struct Counters {
    up: AtomicU64,
    down: AtomicU64,
}

/// Our SOCKS5 server side glued to a plain dialer, as the engine will: CONNECT
/// pipes bytes, UDP-TUN runs `udp_tun_serve`. Handshake errors go to `errs`.
async fn socks5_server(opts: h5::ServerOptions) -> (SocketAddr, mpsc::UnboundedReceiver<String>, Arc<Counters>, Task) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let counters = Arc::new(Counters::default());
    let c2 = counters.clone();
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let (opts, tx, c) = (opts.clone(), tx.clone(), c2.clone());
            tokio::spawn(async move {
                if let Err(e) = serve5(s, &opts, &c).await {
                    let _ = tx.send(e);
                }
            });
        }
    });
    (addr, rx, counters, Task(task))
}

async fn serve5(mut s: TcpStream, opts: &h5::ServerOptions, c: &Counters) -> Result<(), String> {
    let req = timeout(T, h5::accept(&mut s, opts)).await.map_err(|_| "handshake timeout".to_string())?.map(|(_, r)| r).map_err(|e| e.to_string())?;
    match req.cmd {
        cmd::CONNECT => {
            let mut up = match TcpStream::connect(req.addr.to_string()).await {
                Ok(u) => u,
                Err(e) => {
                    h5::reply(&mut s, rep::HOST_UNREACHABLE, None).await.map_err(|e| e.to_string())?;
                    return Err(format!("dial {}: {e}", req.addr));
                }
            };
            let bnd = Addr::from(up.local_addr().unwrap());
            h5::reply(&mut s, rep::SUCCEEDED, Some(&bnd)).await.map_err(|e| e.to_string())?;
            let _ = tokio::io::copy_bidirectional(&mut s, &mut up).await;
            Ok(())
        }
        cmd::UDP_TUN => {
            let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let bnd = Addr::from(sock.local_addr().unwrap());
            h5::reply(&mut s, rep::SUCCEEDED, Some(&bnd)).await.map_err(|e| e.to_string())?;
            let up = |n| {
                c.up.fetch_add(n, Ordering::Relaxed);
            };
            let down = |n| {
                c.down.fetch_add(n, Ordering::Relaxed);
            };
            h5::udp_tun_serve(s, sock, &up, &down).await.map_err(|e| e.to_string())
        }
        other => Err(format!("test server does not serve command {other}")),
    }
}

/// Our SOCKS4/4a server side glued to a plain dialer.
async fn socks4_server(auther: Option<Auther>) -> (SocketAddr, mpsc::UnboundedReceiver<String>, Task) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let auther = auther.map(Arc::new);
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let (tx, auther) = (tx.clone(), auther.clone());
            tokio::spawn(async move {
                let r = async {
                    let req = timeout(T, h4::accept(&mut s, auther.as_deref()))
                        .await
                        .map_err(|_| "timeout".to_string())?
                        .map_err(|e| e.to_string())?;
                    let mut up = match TcpStream::connect(req.addr().to_string()).await {
                        Ok(u) => u,
                        Err(e) => {
                            let _ = h4::reply(&mut s, s4::FAILED).await;
                            return Err(e.to_string());
                        }
                    };
                    h4::reply(&mut s, s4::GRANTED).await.map_err(|e| e.to_string())?;
                    let _ = tokio::io::copy_bidirectional(&mut s, &mut up).await;
                    Ok::<(), String>(())
                }
                .await;
                if let Err(e) = r {
                    let _ = tx.send(e);
                }
            });
        }
    });
    (addr, rx, Task(task))
}

struct CurlOut {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn curl(args: &[&str]) -> CurlOut {
    let mut c = tokio::process::Command::new("curl");
    c.args(["-sS", "--max-time", "5"]).args(args).kill_on_drop(true);
    let out = timeout(T + Duration::from_secs(1), c.output()).await.expect("curl timed out").expect("run curl");
    CurlOut {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn auther(user: &str, pass: &str) -> Option<Arc<Auther>> {
    let mut a = Auther::new();
    a.add(user, pass);
    Some(Arc::new(a))
}

async fn next_err(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    timeout(T, rx.recv()).await.expect("no server error reported").expect("server gone")
}

// ---- (a) curl through our server side -------------------------------------

#[tokio::test]
async fn curl_socks5_hostname_through_our_server() {
    let (backend, _b) = http_backend().await;
    let (proxy, _rx, _c, _t) = socks5_server(h5::ServerOptions::default()).await;
    let out = curl(&["--socks5-hostname", &proxy.to_string(), &format!("http://127.0.0.1:{}/", backend.port())]).await;
    assert_eq!(out.code, 0, "curl failed: {}", out.stderr);
    assert_eq!(out.stdout, BODY);
    // A name for the server to resolve (ATYP 03).
    let out = curl(&["--socks5-hostname", &proxy.to_string(), &format!("http://localhost:{}/", backend.port())]).await;
    assert_eq!(out.code, 0, "curl failed: {}", out.stderr);
    assert_eq!(out.stdout, BODY);
}

#[tokio::test]
async fn curl_socks5_with_user_and_wrong_password() {
    let (backend, _b) = http_backend().await;
    let opts = h5::ServerOptions { auther: auther("u", "p"), ..Default::default() };
    let (proxy, mut errs, _c, _t) = socks5_server(opts).await;
    let url = format!("http://127.0.0.1:{}/", backend.port());

    let ok = curl(&["--socks5-hostname", &proxy.to_string(), "--proxy-user", "u:p", &url]).await;
    assert_eq!(ok.code, 0, "curl failed: {}", ok.stderr);
    assert_eq!(ok.stdout, BODY);

    let bad = curl(&["--socks5-hostname", &proxy.to_string(), "--proxy-user", "u:wrong", &url]).await;
    assert_ne!(bad.code, 0);
    assert_eq!(bad.stdout, "");
    assert_eq!(bad.code, 97, "curl said: {}", bad.stderr);
    assert!(bad.stderr.contains("User was rejected by the SOCKS5 server"), "curl said: {}", bad.stderr);
    let e = next_err(&mut errs).await;
    assert_eq!(e, "socks5: authentication failed for user \"u\"");
    assert!(!e.contains("wrong"));

    // No credentials at all: curl offers only 00, we answer FF.
    let none = curl(&["--socks5-hostname", &proxy.to_string(), &url]).await;
    assert_ne!(none.code, 0);
    assert_eq!(none.stdout, "");
    let e = next_err(&mut errs).await;
    assert!(e.contains("no acceptable authentication method") && e.contains("02"), "{e}");
}

#[tokio::test]
async fn curl_socks4_and_socks4a_through_our_server() {
    let (backend, _b) = http_backend().await;
    let (proxy, _rx, _t) = socks4_server(None).await;
    let url = format!("http://127.0.0.1:{}/", backend.port());
    let out = curl(&["--socks4", &proxy.to_string(), &url]).await;
    assert_eq!(out.code, 0, "curl failed: {}", out.stderr);
    assert_eq!(out.stdout, BODY);
    let url = format!("http://localhost:{}/", backend.port());
    let out = curl(&["--socks4a", &proxy.to_string(), &url]).await;
    assert_eq!(out.code, 0, "curl failed: {}", out.stderr);
    assert_eq!(out.stdout, BODY);
}

#[tokio::test]
async fn curl_socks4_userid_checked() {
    let (backend, _b) = http_backend().await;
    let mut a = Auther::new();
    a.add("alice", "");
    let (proxy, mut errs, _t) = socks4_server(Some(a)).await;
    let url = format!("http://127.0.0.1:{}/", backend.port());
    let ok = curl(&["--socks4", &proxy.to_string(), "--proxy-user", "alice:", &url]).await;
    assert_eq!(ok.code, 0, "curl failed: {}", ok.stderr);
    assert_eq!(ok.stdout, BODY);
    let bad = curl(&["--socks4", &proxy.to_string(), "--proxy-user", "mallory:", &url]).await;
    assert_ne!(bad.code, 0);
    assert_eq!(bad.stdout, "");
    assert_eq!(next_err(&mut errs).await, "socks4: user id \"mallory\" is not allowed");
}

// ---- (b) our client through real SOCKS servers ----------------------------

/// A child process killed by its PID when the test ends.
struct ChildGuard(Child);
impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until something accepts on `addr` (the child has no readiness signal).
async fn wait_listening(addr: SocketAddr, child: &mut ChildGuard) {
    timeout(T, async {
        loop {
            if TcpStream::connect(addr).await.is_ok() {
                return;
            }
            if let Ok(Some(st)) = child.0.try_wait() {
                panic!("server exited early: {st}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("server did not start listening");
}

async fn microsocks(auth: Option<(&str, &str)>) -> (SocketAddr, ChildGuard) {
    let port = free_port();
    let mut c = Command::new("/usr/bin/microsocks");
    c.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
    if let Some((u, p)) = auth {
        c.args(["-u", u, "-P", p]);
    }
    let mut child = ChildGuard(c.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn microsocks"));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_listening(addr, &mut child).await;
    (addr, child)
}

/// GET / through an already-connected tunnel; returns the response body.
async fn http_get(s: &mut TcpStream) -> String {
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut resp = Vec::new();
    timeout(T, s.read_to_end(&mut resp)).await.expect("response timeout").unwrap();
    let resp = String::from_utf8_lossy(&resp).into_owned();
    resp.split("\r\n\r\n").nth(1).unwrap_or_default().to_string()
}

#[tokio::test]
async fn connector_through_microsocks() {
    let (backend, _b) = http_backend().await;
    let (proxy, _m) = microsocks(None).await;
    let mut s = TcpStream::connect(proxy).await.unwrap();
    let bnd = timeout(T, Socks5Connector::default().connect(&mut s, &backend.to_string())).await.unwrap().unwrap().1;
    assert!(bnd.socket_addr().is_some(), "BND {bnd}");
    assert_eq!(http_get(&mut s).await, BODY);

    // Name resolved by the server (ATYP 03).
    let mut s = TcpStream::connect(proxy).await.unwrap();
    timeout(T, Socks5Connector::default().connect(&mut s, &format!("localhost:{}", backend.port()))).await.unwrap().unwrap();
    assert_eq!(http_get(&mut s).await, BODY);

    // A closed port: microsocks answers a refusal, we name it.
    let closed = free_port();
    let mut s = TcpStream::connect(proxy).await.unwrap();
    let e = timeout(T, Socks5Connector::default().connect(&mut s, &format!("127.0.0.1:{closed}"))).await.unwrap().unwrap_err();
    assert!(matches!(e, Socks5Error::Refused { .. }), "{e}");
    assert!(e.to_string().starts_with(&format!("socks5: server refused CONNECT 127.0.0.1:{closed}: ")), "{e}");
}

#[tokio::test]
async fn connector_through_microsocks_with_auth() {
    let (backend, _b) = http_backend().await;
    let (proxy, _m) = microsocks(Some(("bob", "s3cret"))).await;
    let good = Socks5Connector::new(Socks5Options { auth: Some(("bob".into(), "s3cret".into())), tls: None });
    let mut s = TcpStream::connect(proxy).await.unwrap();
    timeout(T, good.connect(&mut s, &backend.to_string())).await.unwrap().unwrap();
    assert_eq!(http_get(&mut s).await, BODY);

    let wrong = Socks5Connector::new(Socks5Options { auth: Some(("bob".into(), "nope".into())), tls: None });
    let mut s = TcpStream::connect(proxy).await.unwrap();
    let e = timeout(T, wrong.connect(&mut s, &backend.to_string())).await.unwrap().unwrap_err();
    assert_eq!(e.to_string(), "socks5: authentication failed (server rejected user \"bob\")");
    assert!(!e.to_string().contains("nope"));
    let io: std::io::Error = e.into();
    assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);

    let mut s = TcpStream::connect(proxy).await.unwrap();
    let e = timeout(T, Socks5Connector::default().connect(&mut s, &backend.to_string())).await.unwrap().unwrap_err();
    assert_eq!(e.to_string(), "socks5: server requires username/password");
}

const DANTED: &str = "/usr/sbin/danted";

#[tokio::test]
async fn connector_through_danted() {
    if !Path::new(DANTED).exists() {
        eprintln!("skipped: {DANTED} not installed");
        return;
    }
    let (backend, _b) = http_backend().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = dir.path().join("danted.conf");
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    std::fs::write(
        &conf,
        format!(
            "logoutput: stderr\ninternal: 127.0.0.1 port = {port}\nexternal: 127.0.0.1\n\
             socksmethod: none\nclientmethod: none\nuser.privileged: {user}\nuser.unprivileged: {user}\n\
             client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}\n\
             socks pass {{ from: 127.0.0.0/8 to: 127.0.0.0/8 command: connect }}\n"
        ),
    )
    .unwrap();
    let pid = dir.path().join("danted.pid");
    let mut child = ChildGuard(
        Command::new(DANTED)
            .arg("-f")
            .arg(&conf)
            .arg("-p")
            .arg(&pid)
            .arg("-N")
            .arg("1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn danted"),
    );
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_listening(addr, &mut child).await;
    // danted's negotiator process may still be starting after the port accepts
    // (the readiness probe above); give it a few bounded tries.
    let mut last = String::new();
    let mut ready = None;
    for _ in 0..5 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        // What the engine sends by default (GOST's offer `00 80`): danted knows
        // no 80 and must answer 00, and the stream stays plain.
        let tls = portway_core::tls::client_config(None, &addr.to_string()).unwrap();
        let gost_default = Socks5Connector::new(Socks5Options { auth: None, tls: Some(tls) });
        let r = timeout(T, gost_default.connect(&mut s, &backend.to_string())).await.map(|r| r.map(|(s, bnd)| (s.is_tls(), bnd)));
        let r = r.map(|r| r.map(|(tls, bnd)| {
            assert!(!tls, "danted does not speak GOST's TLS method");
            bnd
        }));
        match r {
            Ok(Ok(bnd)) => {
                ready = Some((s, bnd));
                break;
            }
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "timed out".into(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (mut s, bnd) = ready.unwrap_or_else(|| panic!("danted never served a CONNECT: {last}"));
    assert_eq!(bnd.socket_addr().map(|a| a.ip().to_string()), Some("127.0.0.1".into()));
    assert_eq!(http_get(&mut s).await, BODY);
}

#[tokio::test]
async fn socks4_connector_against_our_server() {
    let (backend, _b) = http_backend().await;
    let (proxy, _rx, _t) = socks4_server(None).await;
    for disable4a in [false, true] {
        let c = Socks4Connector::new(Socks4Options { userid: Some("u".into()), disable4a });
        let mut s = TcpStream::connect(proxy).await.unwrap();
        timeout(T, c.connect(&mut s, &format!("localhost:{}", backend.port()))).await.unwrap().unwrap();
        assert_eq!(http_get(&mut s).await, BODY, "disable4a={disable4a}");
    }
    let closed = free_port();
    let mut s = TcpStream::connect(proxy).await.unwrap();
    let e = timeout(T, Socks4Connector::default().connect(&mut s, &format!("127.0.0.1:{closed}"))).await.unwrap().unwrap_err();
    assert!(matches!(e, Socks4Error::Refused { code: 91, .. }), "{e}");
}

// ---- (c) UDP-TUN: our client against our server ---------------------------

#[tokio::test]
async fn udp_tun_frames_both_ways() {
    let (echo, _e) = udp_echo().await;
    let opts = h5::ServerOptions { udp: true, ..Default::default() };
    let (proxy, _rx, counters, _t) = socks5_server(opts).await;
    let mut s = TcpStream::connect(proxy).await.unwrap();
    let bnd = timeout(T, Socks5Connector::default().udp_tun(&mut s)).await.unwrap().unwrap().1;
    assert_eq!(bnd.socket_addr().unwrap().ip().to_string(), "127.0.0.1");
    assert_ne!(bnd.port, 0);

    let target = Addr::from(echo);
    let mut fb = FrameBuf::new();
    for i in 0..20usize {
        let payload = vec![b'a' + (i % 26) as u8; 1 + i * 100];
        write_frame(&mut s, &target, &payload).await.unwrap();
        let (from, got) = timeout(T, read_frame(&mut s, &mut fb)).await.unwrap().unwrap().unwrap();
        assert_eq!(from, target, "replies carry the source address");
        assert_eq!(&got[..5], b"echo:");
        assert_eq!(&got[5..], &payload[..]);
    }
    // A name the server resolves (ATYP 03).
    let by_name = Addr::parse(&format!("localhost:{}", echo.port())).unwrap();
    write_frame(&mut s, &by_name, b"named").await.unwrap();
    let (from, got) = timeout(T, read_frame(&mut s, &mut fb)).await.unwrap().unwrap().unwrap();
    assert_eq!((from, got), (target, &b"echo:named"[..]));

    let sent: u64 = (0..20).map(|i| 1 + i * 100).sum::<u64>() + 5;
    assert_eq!(counters.up.load(Ordering::Relaxed), sent);
    assert_eq!(counters.down.load(Ordering::Relaxed), sent + 21 * 5);
}

#[tokio::test]
async fn udp_tun_refused_without_udp_option() {
    let (proxy, mut errs, _c, _t) = socks5_server(h5::ServerOptions::default()).await;
    let mut s = TcpStream::connect(proxy).await.unwrap();
    let e = timeout(T, Socks5Connector::default().udp_tun(&mut s)).await.unwrap().unwrap_err();
    assert_eq!(e.to_string(), "socks5: server refused UDP-TUN 0.0.0.0:0: not allowed by ruleset (reply 0x02)");
    assert_eq!(next_err(&mut errs).await, "socks5: UDP-TUN is disabled on this service (enable it with udp=true)");

    // BIND needs `bind`.
    let mut s = TcpStream::connect(proxy).await.unwrap();
    let e = timeout(T, Socks5Connector::default().bind(&mut s, &Addr::parse(":0").unwrap())).await.unwrap().unwrap_err();
    assert!(matches!(e, Socks5Error::Refused { code: 2, .. }), "{e}");
    assert!(next_err(&mut errs).await.contains("enable it with bind=true"));
}

#[tokio::test]
async fn udp_tun_ends_when_client_closes() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    let c = TcpStream::connect(a).await.unwrap();
    let (srv, _) = l.accept().await.unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    drop(c);
    let r = timeout(T, h5::udp_tun_serve(srv, sock, &|_| {}, &|_| {})).await.expect("serve did not end");
    assert!(r.is_ok(), "{r:?}");
}

// ---- (d) hostile peers ----------------------------------------------------

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

async fn connect_err(proxy: SocketAddr, c: Socks5Connector) -> Socks5Error {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    timeout(T, c.connect(&mut s, "192.168.1.1:80")).await.expect("connector hung").map(|(_, a)| a).unwrap_err()
}

#[tokio::test]
async fn hostile_servers_give_errors_not_hangs() {
    // Each script reads what the client sent first: closing with unread data
    // would reset the connection instead of closing it.
    let (http, _a) = scripted(|mut s| async move {
        let mut b = [0u8; 3];
        let _ = s.read_exact(&mut b).await;
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
    })
    .await;
    let e = connect_err(http, Socks5Connector::default()).await;
    assert_eq!(e.to_string(), "socks5: peer sent version 72 instead of 5 (is it a SOCKS5 proxy?)");

    let (short, _b) = scripted(|mut s| async move {
        let mut b = [0u8; 3];
        let _ = s.read_exact(&mut b).await;
        let _ = s.write_all(&[5]).await;
    })
    .await;
    let e = connect_err(short, Socks5Connector::default()).await;
    assert_eq!(e.to_string(), "socks5: connection closed by the peer during method selection");

    let (cut_reply, _c) = scripted(|mut s| async move {
        let mut b = [0u8; 3];
        let _ = s.read_exact(&mut b).await;
        let _ = s.write_all(&[5, 0]).await;
        let mut r = [0u8; 10];
        let _ = s.read_exact(&mut r).await;
        let _ = s.write_all(&[5, 0, 0, 3, 200, b'x']).await;
    })
    .await;
    let e = connect_err(cut_reply, Socks5Connector::default()).await;
    assert_eq!(e.to_string(), "socks5: connection closed by the peer during the reply to a request");

    let (bad_atyp, _d) = scripted(|mut s| async move {
        let mut b = [0u8; 3];
        let _ = s.read_exact(&mut b).await;
        let _ = s.write_all(&[5, 0, 5, 0, 0, 9, 1, 2, 3, 4]).await;
    })
    .await;
    let e = connect_err(bad_atyp, Socks5Connector::default()).await;
    assert_eq!(e.to_string(), "socks5: bad address: unknown address type 0x09");

    // GOST v3.2.6 with users answers 02 although only 00 was offered.
    let (gost326, _e) = scripted(|mut s| async move {
        let mut b = [0u8; 3];
        let _ = s.read_exact(&mut b).await;
        let _ = s.write_all(&[5, 2]).await;
        let _ = s.read(&mut b).await;
    })
    .await;
    let e = connect_err(gost326, Socks5Connector::default()).await;
    assert_eq!(e.to_string(), "socks5: server requires username/password");

    // GOST's TLS method, which we never offer.
    let (tls, _f) = scripted(|mut s| async move {
        let mut b = [0u8; 3];
        let _ = s.read_exact(&mut b).await;
        let _ = s.write_all(&[5, 0x80]).await;
    })
    .await;
    let e = connect_err(tls, Socks5Connector::default()).await;
    assert!(matches!(e, Socks5Error::UnexpectedMethod(0x80)), "{e}");

    let (s4_garbage, _g) = scripted(|mut s| async move {
        let mut b = [0u8; 64];
        let _ = s.read(&mut b).await;
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
    })
    .await;
    let mut s = TcpStream::connect(s4_garbage).await.unwrap();
    let e = timeout(T, Socks4Connector::default().connect(&mut s, "10.0.0.1:80")).await.unwrap().unwrap_err();
    assert_eq!(e.to_string(), "socks4: reply starts with 72, not 0 (is it a SOCKS4 proxy?)");
}

#[tokio::test]
async fn hostile_clients_give_errors() {
    let (proxy, mut errs, _c, _t) = socks5_server(h5::ServerOptions::default()).await;
    let cases: &[(&[u8], &str)] = &[
        (b"GET / HTTP/1.1\r\n\r\n", "socks5: peer sent version 71 instead of 5 (is it a SOCKS5 proxy?)"),
        (&[5, 1, 0, 5, 1, 0, 7, 0, 0], "socks5: bad address: unknown address type 0x07"),
        (&[5, 3], "socks5: connection closed by the peer during method selection"),
        (&[5, 1, 0, 5, 1, 0, 3, 10, b'a'], "socks5: connection closed by the peer during the request"),
        (&[5, 1, 0, 5, 0xF0, 0, 1, 0, 0, 0, 0, 0, 0], "socks5: client asked for unsupported RESOLVE"),
    ];
    for (bytes, want) in cases {
        let mut s = TcpStream::connect(proxy).await.unwrap();
        s.write_all(bytes).await.unwrap();
        s.shutdown().await.unwrap();
        assert_eq!(&next_err(&mut errs).await, want, "for {bytes:?}");
    }
    // The unsupported command got reply 07 before the close.
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(&[5, 1, 0, 5, 0xF1, 0, 1, 0, 0, 0, 0, 0, 0]).await.unwrap();
    let mut got = Vec::new();
    timeout(T, s.read_to_end(&mut got)).await.unwrap().unwrap();
    assert_eq!(got, [5, 0, 5, 7, 0, 1, 0, 0, 0, 0, 0, 0]);
    let _ = next_err(&mut errs).await;
}
