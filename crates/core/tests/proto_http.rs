//! HTTP proxy as GOST speaks it, against real peers on loopback: curl through
//! a small server built from the handler, the connector through tinyproxy,
//! and both against hostile peers.

mod common;

use common::{tcp_backend, T};
use portway_core::auth::Auther;
use portway_core::codec::http::HttpError;
use portway_core::connector::http::{connect, ConnectOptions};
use portway_core::handler::http::{accept, proxy_plain, reply_connected, reply_error, reply_udp_ok, Request, ServerOptions};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(T, f).await.expect("timed out")
}

/// An origin server that answers every request on a connection with a
/// fixed-length body naming itself and the path, and records the heads.
struct Origin {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn origin(name: &str) -> Origin {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let (h2, name) = (heads.clone(), name.to_string());
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let (heads, name) = (h2.clone(), name.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut b = [0u8; 4096];
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head: Vec<u8> = buf.drain(..end + 4).collect();
                        let head = String::from_utf8_lossy(&head).into_owned();
                        let path = head.split(' ').nth(1).unwrap_or("").to_string();
                        heads.lock().unwrap().push(head);
                        let body = format!("backend {name} path {path}");
                        let resp = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                        if s.write_all(resp.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    match s.read(&mut b).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&b[..n]),
                    }
                }
            });
        }
    });
    Origin { addr, heads, task }
}

/// A proxy server made of the handler's pieces, dialing directly.
struct Server {
    addr: SocketAddr,
    conns: Arc<AtomicUsize>,
    errors: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(mut c: TcpStream, opts: &ServerOptions) -> Result<(), HttpError> {
    match accept(&mut c, opts).await? {
        Request::Connect(t) => match TcpStream::connect(&t.target).await {
            Ok(mut up) => {
                reply_connected(&mut c, opts).await?;
                up.write_all(&t.leftover).await?;
                tokio::io::copy_bidirectional(&mut c, &mut up).await?;
                Ok(())
            }
            Err(e) => {
                reply_error(&mut c, opts, 503).await?;
                Err(e.into())
            }
        },
        Request::Udp(_) => {
            reply_udp_ok(&mut c, opts).await?;
            c.write_all(b"udp-tun frames would follow").await?;
            Ok(())
        }
        Request::Plain(p) => proxy_plain(&mut c, p, |a: String| TcpStream::connect(a)).await,
    }
}

async fn server(opts: ServerOptions) -> Server {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let (c2, e2, opts) = (conns.clone(), errors.clone(), Arc::new(opts));
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            c2.fetch_add(1, Ordering::SeqCst);
            let (e, opts) = (e2.clone(), opts.clone());
            tokio::spawn(async move {
                if let Err(err) = handle(s, &opts).await {
                    e.lock().unwrap().push(err.to_string());
                }
            });
        }
    });
    Server { addr, conns, errors, task }
}

fn auth_opts() -> ServerOptions {
    let mut a = Auther::new();
    a.add("u", "p");
    ServerOptions { auther: Some(Arc::new(a)), ..Default::default() }
}

struct Curl {
    code: String,
    body: String,
}

async fn curl(args: &[&str]) -> Curl {
    let out = within(
        tokio::process::Command::new("curl")
            .args(["-sS", "--max-time", "5", "-w", "\n%{http_code}"])
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", ""));
    Curl { code: code.to_string(), body: body.to_string() }
}

#[tokio::test]
async fn curl_plain_proxying_rewrites_the_request() {
    let o = origin("alpha").await;
    let s = server(ServerOptions::default()).await;
    let proxy = format!("http://{}", s.addr);
    let r = curl(&["-x", &proxy, &format!("http://{}/x?q=1", o.addr)]).await;
    assert_eq!(r.code, "200");
    assert_eq!(r.body, "backend alpha path /x?q=1");
    let heads = o.heads.lock().unwrap().clone();
    let head = &heads[0];
    assert!(head.starts_with("GET /x?q=1 HTTP/1.1\r\n"), "{head}");
    assert!(head.contains(&format!("Host: {}\r\n", o.addr)), "{head}");
    assert!(!head.contains("Proxy-"), "proxy headers reached the origin: {head}");
    assert!(head.ends_with("Connection: close\r\n\r\n"), "{head}");
}

#[tokio::test]
async fn curl_two_requests_on_one_kept_alive_connection() {
    let o = origin("beta").await;
    let s = server(auth_opts()).await;
    let proxy = format!("http://{}", s.addr);
    let (a, b) = (format!("http://{}/one", o.addr), format!("http://{}/two", o.addr));
    let r = curl(&["-x", &proxy, "--proxy-user", "u:p", &a, &b]).await;
    assert_eq!(r.body, "backend beta path /one\n200backend beta path /two");
    assert_eq!(r.code, "200");
    assert_eq!(s.conns.load(Ordering::SeqCst), 1, "curl had to open a second connection");
    let heads = o.heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 2);
    assert!(heads.iter().all(|h| !h.contains("Proxy-Authorization")), "{heads:?}");
}

#[tokio::test]
async fn curl_connect_tunnel_with_auth() {
    let o = origin("gamma").await;
    let s = server(auth_opts()).await;
    let proxy = format!("http://{}", s.addr);
    let r = curl(&["-p", "-x", &proxy, "--proxy-user", "u:p", &format!("http://{}/t", o.addr)]).await;
    assert_eq!(r.code, "200");
    assert_eq!(r.body, "backend gamma path /t");
    // Through a tunnel the origin sees curl's own request, untouched.
    let heads = o.heads.lock().unwrap().clone();
    assert!(heads[0].starts_with("GET /t HTTP/1.1\r\n"), "{heads:?}");
}

#[tokio::test]
async fn curl_wrong_password_gets_407() {
    let o = origin("delta").await;
    let s = server(auth_opts()).await;
    let proxy = format!("http://{}", s.addr);
    let url = format!("http://{}/x", o.addr);
    let r = curl(&["-x", &proxy, "--proxy-user", "u:wrong", &url]).await;
    assert_eq!(r.code, "407");
    let r = curl(&["-p", "-x", &proxy, "--proxy-user", "u:wrong", &url]).await;
    assert!(r.code == "407" || r.code == "000", "tunnel with wrong password: {}", r.code);
    let r = curl(&["-x", &proxy, &url]).await;
    assert_eq!(r.code, "407");
    assert!(o.heads.lock().unwrap().is_empty(), "a request reached the origin without credentials");
    let errors = s.errors.lock().unwrap().clone();
    assert!(errors.iter().any(|e| e == "http: proxy authentication failed (user \"u\")"), "{errors:?}");
    assert!(errors.iter().all(|e| !e.contains("wrong")), "password in an error: {errors:?}");
}

async fn raw_exchange(addr: SocketAddr, req: &[u8]) -> Vec<u8> {
    let mut c = within(TcpStream::connect(addr)).await.unwrap();
    c.write_all(req).await.unwrap();
    let mut out = Vec::new();
    within(c.read_to_end(&mut out)).await.unwrap();
    out
}

#[tokio::test]
async fn server_replies_byte_exact() {
    let s = server(ServerOptions::default()).await;
    let udp_req = b"CONNECT 192.168.1.1:53 HTTP/1.1\r\nHost: 192.168.1.1:53\r\nUser-Agent: Go-http-client/1.1\r\nProxy-Connection: keep-alive\r\nX-Gost-Protocol: udp\r\n\r\n";
    assert_eq!(raw_exchange(s.addr, udp_req).await, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    let s_udp = server(ServerOptions { udp: true, ..Default::default() }).await;
    assert_eq!(raw_exchange(s_udp.addr, udp_req).await, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nudp-tun frames would follow");
    // Not a proxy request: no usable host → 400; a Host naming a host → 503.
    assert_eq!(raw_exchange(s.addr, b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n").await, b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    assert_eq!(raw_exchange(s.addr, b"GET https://x/ HTTP/1.1\r\n\r\n").await, b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    assert_eq!(raw_exchange(s.addr, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await, b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
    // A CONNECT whose dial fails.
    let dead = common::free_port();
    let req = format!("CONNECT 127.0.0.1:{dead} HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(raw_exchange(s.addr, req.as_bytes()).await, b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nProxy-Agent: gost/3.0\r\n\r\n");
    // 407 to a client that asked to keep the connection.
    let a = server(auth_opts()).await;
    let got = raw_exchange(a.addr, b"CONNECT h:1 HTTP/1.1\r\nProxy-Connection: Keep-Alive\r\n\r\n").await;
    assert_eq!(got, b"HTTP/1.1 407 Proxy Authentication Required\r\nConnection: close\r\nProxy-Authenticate: Basic realm=\"gost\"\r\nProxy-Connection: close\r\n\r\n");
}

#[tokio::test]
async fn connector_through_own_server_tcp_and_udp() {
    let b = tcp_backend("127.0.0.1", "echo-one").await;
    let s = server(auth_opts()).await;
    let mut c = within(TcpStream::connect(s.addr)).await.unwrap();
    let opts = ConnectOptions { auth: Some(("u".into(), "p".into())), ..Default::default() };
    let left = within(connect(&mut c, &s.addr.to_string(), &b.addr.to_string(), &opts)).await.unwrap();
    let mut c = portway_core::conn::Prefixed::new(left, c);
    let mut line = [0u8; 9];
    within(c.read_exact(&mut line)).await.unwrap();
    assert_eq!(&line, b"echo-one\n");
    c.write_all(b"ping").await.unwrap();
    let mut back = [0u8; 4];
    within(c.read_exact(&mut back)).await.unwrap();
    assert_eq!(&back, b"ping");

    let su = server(ServerOptions { udp: true, ..Default::default() }).await;
    let mut c = within(TcpStream::connect(su.addr)).await.unwrap();
    let opts = ConnectOptions { udp: true, ..Default::default() };
    let left = within(connect(&mut c, "udp-node", "192.168.1.1:53", &opts)).await.unwrap();
    let mut rest = Vec::new();
    within(c.read_to_end(&mut rest)).await.unwrap();
    let mut all = left;
    all.extend_from_slice(&rest);
    assert_eq!(all, b"udp-tun frames would follow");

    let mut c = within(TcpStream::connect(s.addr)).await.unwrap();
    let bad = ConnectOptions { auth: Some(("u".into(), "nope".into())), ..Default::default() };
    let err = within(connect(&mut c, &s.addr.to_string(), "127.0.0.1:9", &bad)).await.unwrap_err();
    assert_eq!(err.to_string(), format!("http proxy {} answered 407 Proxy Authentication Required", s.addr));
}

/// tinyproxy in the foreground on a free port, killed by PID on drop.
struct Tinyproxy {
    child: tokio::process::Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn tinyproxy(connect_port: u16, auth: Option<(&str, &str)>) -> Tinyproxy {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let mut conf = format!("Port {port}\nListen 127.0.0.1\nAllow 127.0.0.1\nConnectPort {connect_port}\nLogLevel Info\n");
    if let Some((u, p)) = auth {
        conf.push_str(&format!("BasicAuth {u} {p}\n"));
    }
    let path = dir.path().join("tinyproxy.conf");
    std::fs::write(&path, conf).unwrap();
    let child = tokio::process::Command::new("/usr/bin/tinyproxy")
        .arg("-d")
        .arg("-c")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("tinyproxy runs");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let tp = Tinyproxy { child, addr, _dir: dir };
    within(async {
        while TcpStream::connect(addr).await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    tp
}

#[tokio::test]
async fn connector_through_tinyproxy() {
    let b = tcp_backend("127.0.0.1", "behind-tinyproxy").await;
    let tp = tinyproxy(b.addr.port(), None).await;
    let proxy = tp.addr.to_string();
    let mut c = within(TcpStream::connect(tp.addr)).await.unwrap();
    let left = within(connect(&mut c, &proxy, &b.addr.to_string(), &ConnectOptions::default())).await.unwrap();
    let mut c = portway_core::conn::Prefixed::new(left, c);
    let mut line = vec![0u8; "behind-tinyproxy\n".len()];
    within(c.read_exact(&mut line)).await.unwrap();
    assert_eq!(line, b"behind-tinyproxy\n");
    c.write_all(b"through").await.unwrap();
    let mut back = [0u8; 7];
    within(c.read_exact(&mut back)).await.unwrap();
    assert_eq!(&back, b"through");

    // A port tinyproxy does not allow for CONNECT.
    let other = b.addr.port().wrapping_add(1).max(1);
    let mut c = within(TcpStream::connect(tp.addr)).await.unwrap();
    let err = within(connect(&mut c, &proxy, &format!("127.0.0.1:{other}"), &ConnectOptions::default())).await.unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with(&format!("http proxy {proxy} answered 403")), "{text}");
}

#[tokio::test]
async fn connector_through_tinyproxy_with_basic_auth() {
    let b = tcp_backend("127.0.0.1", "auth-ok").await;
    let tp = tinyproxy(b.addr.port(), Some(("alice", "s3cret"))).await;
    let proxy = tp.addr.to_string();
    let target = b.addr.to_string();

    let mut c = within(TcpStream::connect(tp.addr)).await.unwrap();
    let good = ConnectOptions { auth: Some(("alice".into(), "s3cret".into())), ..Default::default() };
    let left = within(connect(&mut c, &proxy, &target, &good)).await.unwrap();
    let mut c = portway_core::conn::Prefixed::new(left, c);
    let mut line = [0u8; 8];
    within(c.read_exact(&mut line)).await.unwrap();
    assert_eq!(&line, b"auth-ok\n");

    let mut c = within(TcpStream::connect(tp.addr)).await.unwrap();
    let bad = ConnectOptions { auth: Some(("alice".into(), "wrong".into())), ..Default::default() };
    let err = within(connect(&mut c, &proxy, &target, &bad)).await.unwrap_err();
    let text = err.to_string();
    // tinyproxy refuses bad proxy credentials with 401, not 407; the error
    // shows its status line as it was sent.
    assert_eq!(text, format!("http proxy {proxy} answered 401 Unauthorized"));
    assert!(!text.contains("wrong"));
    let io: std::io::Error = err.into();
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
}

/// A server that writes `bytes` (repeating `tail` up to `limit`), then holds
/// the connection open.
async fn hostile(head: &'static [u8], tail: &'static [u8], limit: usize) -> (SocketAddr, JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut sink = [0u8; 1024];
                let _ = s.read(&mut sink).await;
                let _ = s.write_all(head).await;
                let mut sent = head.len();
                while !tail.is_empty() && sent < limit {
                    if s.write_all(tail).await.is_err() {
                        return;
                    }
                    sent += tail.len();
                }
                let _ = s.read(&mut sink).await;
            });
        }
    });
    (addr, task)
}

async fn connect_to(addr: SocketAddr) -> Result<Vec<u8>, HttpError> {
    let mut c = within(TcpStream::connect(addr)).await.unwrap();
    within(connect(&mut c, &addr.to_string(), "10.0.0.1:80", &ConnectOptions::default())).await
}

#[tokio::test]
async fn hostile_proxies_give_errors_not_hangs() {
    let (a, t1) = hostile(b"\x00\x01garbage\r\n\r\n", b"", 0).await;
    let e = connect_to(a).await.unwrap_err();
    assert!(matches!(e, HttpError::Malformed("response", _)), "{e}");
    let (a, t2) = hostile(b"HTTP/1.1 200 OK\r\n", b"X-Forever: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 1 << 20).await;
    let e = connect_to(a).await.unwrap_err();
    assert_eq!(e.to_string(), "http: the response head is longer than 16384 bytes");
    let (a, t3) = hostile(b"HTTP/1.1 200 OK\r\nX-Forever: ", b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1 << 20).await;
    let e = connect_to(a).await.unwrap_err();
    assert!(matches!(e, HttpError::HeadTooLong(_)), "{e}");
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    let t4 = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut sink = [0u8; 1024];
        let _ = s.read(&mut sink).await;
        let _ = s.write_all(b"HTTP/1.1 200").await;
    });
    let e = connect_to(a).await.unwrap_err();
    assert_eq!(e.to_string(), format!("http proxy {a} closed the connection before answering"));
    for t in [t1, t2, t3, t4] {
        t.abort();
    }
}

#[tokio::test]
async fn hostile_clients_give_errors_not_hangs() {
    let s = server(ServerOptions::default()).await;
    let mut c = within(TcpStream::connect(s.addr)).await.unwrap();
    c.write_all(b"GET http://x/ HTTP/1.1\r\n").await.unwrap();
    let line = format!("X-Pad: {}\r\n", "b".repeat(200));
    let mut sent = 0;
    while sent < 64 * 1024 {
        if c.write_all(line.as_bytes()).await.is_err() {
            break;
        }
        sent += line.len();
    }
    let mut out = Vec::new();
    let _ = within(c.read_to_end(&mut out)).await;
    within(async {
        while s.errors.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let errors = s.errors.lock().unwrap().clone();
    assert_eq!(errors, vec!["http: the request head is longer than 16384 bytes".to_string()]);

    let mut c = within(TcpStream::connect(s.addr)).await.unwrap();
    c.write_all(b"\x16\x03\x01\x02\x00garbage\r\n\r\n").await.unwrap();
    let mut out = Vec::new();
    within(c.read_to_end(&mut out)).await.unwrap();
    assert!(out.is_empty(), "answered garbage with {out:?}");
}
