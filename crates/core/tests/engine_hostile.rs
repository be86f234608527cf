//! Hostile and broken clients on every proxy handler of a running engine:
//! garbage, wrong versions, huge lengths, truncated handshakes and clients that
//! stop mid-handshake. Each connection is closed within the handler's
//! `readTimeout`, the rule keeps running and shows the latest error, and a
//! well-behaved client is served right after.

mod common;
use common::peers::*;
use common::*;
use portway_core::stats::ServiceState;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HANDLERS: &[&str] = &["socks5", "socks4", "http", "relay", "auto"];

fn services() -> String {
    let mut y = String::from("services:\n");
    for h in HANDLERS {
        y.push_str(&format!("- name: {h}\n  addr: 127.0.0.1:0\n  handler: {{type: {h}, metadata: {{readTimeout: 300ms}}}}\n  listener: {{type: tcp}}\n"));
    }
    y.push_str("- name: tls\n  addr: 127.0.0.1:0\n  handler: {type: socks5, metadata: {readTimeout: 300ms}}\n  listener: {type: tls}\n");
    y
}

/// Sends `bytes`, then waits for the server to close; returns what it answered
/// and how long the close took.
async fn send_and_wait_close(addr: std::net::SocketAddr, bytes: &[u8]) -> (Vec<u8>, Duration) {
    let t0 = Instant::now();
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let _ = s.write_all(bytes).await;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(T, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                assert!(got.len() < 1 << 20, "{addr}: unbounded answer");
            }
            Err(_) => panic!("{addr}: still open after {T:?} (sent {bytes:02x?})"),
        }
    }
    (got, t0.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clients_get_closed_and_the_rules_keep_serving() {
    let (web, _w) = http_backend("127.0.0.1", "web").await;
    let e = engine();
    e.apply(cfg(&services())).await;
    let mut huge_relay = vec![1u8, 1, 0xff, 0xff];
    huge_relay.extend(std::iter::repeat_n(0u8, 100));
    let cases: &[(&str, &[u8])] = &[
        ("nothing (stops before the handshake)", b""),
        ("one byte then silence", &[5]),
        ("wrong version", &[9, 9, 9, 9]),
        ("socks5 methods then silence", &[5, 1, 0]),
        ("socks5 request cut short", &[5, 1, 0, 5, 1, 0, 3, 200, b'a']),
        ("http head that never ends", b"CONNECT a:1 HTTP/1.1\r\nX: "),
        ("relay with a 64 KiB feature length", &huge_relay),
        ("binary garbage", &[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0xff, 0xfe, 1, 2, 3]),
    ];
    for name in HANDLERS.iter().chain(["tls"].iter()) {
        let addr = listening(&e, name);
        for (what, bytes) in cases {
            let (_, took) = send_and_wait_close(addr, bytes).await;
            assert!(took < Duration::from_secs(3), "{name}, {what}: closed after {took:?}");
        }
        assert_eq!(e.service_status(name).expect("status").state, ServiceState::Running, "{name}");
    }
    let st = e.stats_now();
    for s in &st {
        assert!(s.errors > 0, "{}: errors counted", s.service);
        let (_, msg) = s.last_error.clone().unwrap_or_else(|| panic!("{}: no last error", s.service));
        assert!(!msg.is_empty() && msg.contains("127.0.0.1:"), "{}: {msg}", s.service);
    }
    // And a real client right after, on each service that speaks something curl knows.
    for (name, flag) in [("socks5", "--socks5-hostname"), ("socks4", "--socks4a"), ("http", "-x"), ("auto", "--socks5-hostname"), ("auto", "-x")] {
        let p = listening(&e, name);
        let proxy = if flag == "-x" { format!("http://{p}") } else { p.to_string() };
        let (code, out, err) = curl(vec![flag.into(), proxy, format!("http://{web}/ok")]).await;
        assert_eq!(code, 0, "{name} {flag}: {err}");
        assert_eq!(out, "web GET /ok HTTP/1.1");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hop_that_answers_with_an_error_is_named_in_the_rules_last_error() {
    let e = engine();
    let hop = engine();
    hop.apply(cfg("services:\n- name: hop\n  addr: 127.0.0.1:0\n  handler: {type: socks5, auth: {username: u, password: right}}\n  listener: {type: tcp}\n")).await;
    let y = format!(
        "services:\n- name: fwd\n  addr: 127.0.0.1:0\n  handler: {{type: tcp, chain: c}}\n  listener: {{type: tcp}}\n  forwarder: {{nodes: [{{name: t, addr: \"127.0.0.1:9\"}}]}}\nchains:\n- name: c\n  hops:\n  - name: hop-0\n    nodes:\n    - {{name: strict, addr: \"{}\", connector: {{type: socks5, auth: {{username: u, password: wrong}}}}}}\n",
        listening(&hop, "hop")
    );
    e.apply(cfg(&y)).await;
    assert!(tcp_hello(listening(&e, "fwd")).await.is_err());
    let st = e.stats_now();
    let (_, msg) = st[0].last_error.clone().expect("a last error");
    assert!(msg.contains("hop \"hop-0\" node \"strict\"") && msg.contains("authentication failed"), "{msg}");
    assert!(!msg.contains("wrong"), "never the password: {msg}");
}
