//! GOST's `scheme+tls` compositions and the relay protocol, built from command
//! lines exactly as a user types them (addresses on loopback):
//!   server: -L "relay+tls://u:p@127.0.0.1:0"      client: -L tcp://127.0.0.1:0/target -F "relay+tls://u:p@server?nodelay=true"
//! and the same for socks5+tls, http+tls and forward+tls; UDP through relay.

mod common;
use common::peers::*;
use common::*;
use portway_core::config::{build_from_cmd, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn cmd(services: &[String], nodes: &[String]) -> Config {
    match build_from_cmd(services, nodes) {
        Ok(c) => c,
        Err(e) => panic!("{services:?} {nodes:?}: {e}"),
    }
}

/// A GET through a forwarding port; the body names the backend.
async fn get(port: std::net::SocketAddr) -> String {
    let mut s = tokio::time::timeout(T, tokio::net::TcpStream::connect(port)).await.expect("connect in time").expect("connect");
    s.write_all(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n").await.expect("write");
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("/x HTTP/1.1") {
        let n = tokio::time::timeout(T, s.read(&mut buf)).await.expect("answer in time").expect("read");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    text.split("\r\n\r\n").nth(1).unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scheme_plus_tls_composition_carries_bytes() {
    let (web, _w) = http_backend("127.0.0.1", "web").await;
    for scheme in ["socks5", "http", "relay", "forward"] {
        let server_url = if scheme == "forward" { format!("tls://127.0.0.1:0/{web}") } else { format!("{scheme}+tls://u:p@127.0.0.1:0") };
        let server = engine();
        server.apply(cmd(&[server_url.clone()], &[])).await;
        let saddr = listening(&server, "service-0");
        let node = if scheme == "forward" { format!("forward+tls://{saddr}") } else { format!("{scheme}+tls://u:p@{saddr}") };
        let client = engine();
        client.apply(cmd(&[format!("tcp://127.0.0.1:0/{web}")], &[node.clone()])).await;
        let body = get(listening(&client, "service-0")).await;
        assert_eq!(body, "web GET /x HTTP/1.1", "{server_url} ← {node}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_with_auth_lazy_and_nodelay_and_a_wrong_password() {
    let greeter = tcp_backend("127.0.0.1", "server-speaks-first").await;
    let (web, _w) = http_backend("127.0.0.1", "web").await;
    let server = engine();
    server.apply(cmd(&["relay://u:p@127.0.0.1:0".into()], &[])).await;
    let saddr = listening(&server, "service-0");

    // GOST's default (nodelay=false): fine for a client-first protocol.
    let lazy = engine();
    lazy.apply(cmd(&[format!("tcp://127.0.0.1:0/{web}")], &[format!("relay://u:p@{saddr}")])).await;
    assert_eq!(get(listening(&lazy, "service-0")).await, "web GET /x HTTP/1.1");

    // A server-first target needs nodelay=true, as with GOST.
    let eager = engine();
    eager.apply(cmd(&[format!("tcp://127.0.0.1:0/{}", greeter.addr)], &[format!("relay://u:p@{saddr}?nodelay=true")])).await;
    let (name, mut s) = tcp_hello(listening(&eager, "service-0")).await.expect("greeting through relay with nodelay");
    assert_eq!(name, "server-speaks-first");
    echo(&mut s, &vec![3u8; 200_000]).await.expect("bulk");

    // Wrong password: the client's connection closes, the probe says why.
    let wrong = engine();
    wrong.apply(cmd(&[format!("tcp://127.0.0.1:0/{}", greeter.addr)], &[format!("relay://u:bad@{saddr}?nodelay=true")])).await;
    assert!(tcp_hello(listening(&wrong, "service-0")).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_forward_mode_ignores_the_requested_address() {
    // Server: -L relay://:8420/target ; client: -L tcp://:8080 -F relay://server (no target).
    let greeter = tcp_backend("127.0.0.1", "chosen-by-server").await;
    let server = engine();
    server.apply(cmd(&[format!("relay://127.0.0.1:0/{}?nodelay=true", greeter.addr)], &[])).await;
    let saddr = listening(&server, "service-0");
    let client = engine();
    client.apply(cmd(&["tcp://127.0.0.1:0".into()], &[format!("relay://{saddr}?nodelay=true")])).await;
    let (name, _) = tcp_hello(listening(&client, "service-0")).await.expect("forward mode");
    assert_eq!(name, "chosen-by-server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_forwarding_through_a_relay_hop() {
    let dns = udp_backend("127.0.0.1", "dns").await;
    let server = engine();
    server.apply(cmd(&["relay://127.0.0.1:0".into()], &[])).await;
    let saddr = listening(&server, "service-0");
    let client = engine();
    client.apply(cmd(&[format!("udp://127.0.0.1:0/{}?keepAlive=true", dns.addr)], &[format!("relay://{saddr}")])).await;
    let a = listening(&client, "service-0");
    let c = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    for i in 0..5 {
        c.send_to(format!("r{i}").as_bytes(), a).await.expect("send");
        let mut buf = [0u8; 512];
        let (n, _) = tokio::time::timeout(T, c.recv_from(&mut buf)).await.expect("answer through relay").expect("recv");
        assert_eq!(&buf[..n], format!("dns:r{i}").as_bytes());
    }
    let st = server.stats_now();
    assert_eq!((st[0].bytes_in, st[0].bytes_out), (10, 30), "the relay server counted the payloads");
}
