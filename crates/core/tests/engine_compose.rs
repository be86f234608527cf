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
        server.apply(cmd(std::slice::from_ref(&server_url), &[])).await;
        let saddr = listening(&server, "service-0");
        let node = if scheme == "forward" { format!("forward+tls://{saddr}") } else { format!("{scheme}+tls://u:p@{saddr}") };
        let client = engine();
        client.apply(cmd(&[format!("tcp://127.0.0.1:0/{web}")], std::slice::from_ref(&node))).await;
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

    // Wrong password: the client's connection closes, and the rule says why once
    // the (lazy) answer arrives.
    let wrong = engine();
    wrong.apply(cmd(&[format!("tcp://127.0.0.1:0/{}", greeter.addr)], &[format!("relay://u:bad@{saddr}?nodelay=true")])).await;
    assert!(tcp_hello(listening(&wrong, "service-0")).await.is_err());
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let last = wrong.stats_now()[0].last_error.clone().map(|e| e.1).unwrap_or_default();
        if !last.is_empty() {
            assert!(last.contains("relay") && last.contains("unauthorized") && !last.contains("bad"), "{last}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no error on the rule");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_forwarding_through_an_ssu_service_over_udp_and_over_tls() {
    // Seed: the last node of a UDP chain may be "an SSU service".
    let dns = udp_backend("127.0.0.1", "dns").await;
    let server = engine();
    server
        .apply(cmd(&["ssu://chacha20-ietf-poly1305:s3cret@127.0.0.1:0".into(), "ssu+tls://aes-256-gcm:pw2@127.0.0.1:0".into()], &[]))
        .await;
    for (node, svc) in [
        (format!("ssu://chacha20-ietf-poly1305:s3cret@{}", listening(&server, "service-0")), "datagram"),
        (format!("ssu+tls://aes-256-gcm:pw2@{}", listening(&server, "service-1")), "stream"),
    ] {
        let client = engine();
        client.apply(cmd(&[format!("udp://127.0.0.1:0/{}?keepAlive=true", dns.addr)], std::slice::from_ref(&node))).await;
        let a = listening(&client, "service-0");
        let c = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        for i in 0..3 {
            c.send_to(format!("{svc}{i}").as_bytes(), a).await.expect("send");
            let mut buf = [0u8; 512];
            let (n, _) = tokio::time::timeout(T, c.recv_from(&mut buf)).await.unwrap_or_else(|_| panic!("{node}: no answer")).expect("recv");
            assert_eq!(&buf[..n], format!("dns:{svc}{i}").as_bytes(), "{node}");
        }
    }
    // A wrong password gets no answer: the server cannot decrypt.
    let wrong = engine();
    wrong.apply(cmd(&[format!("udp://127.0.0.1:0/{}?keepAlive=true", dns.addr)], &[format!("ssu://chacha20-ietf-poly1305:bad@{}", listening(&server, "service-0"))])).await;
    let c = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    c.send_to(b"x", listening(&wrong, "service-0")).await.expect("send");
    let mut buf = [0u8; 64];
    assert!(tokio::time::timeout(std::time::Duration::from_millis(500), c.recv_from(&mut buf)).await.is_err(), "no answer with a wrong password");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks5_and_relay_services_open_a_bound_port_for_a_binding_client() {
    // The server end of remote forwarding: `socks5://:1080?bind=true`, `relay://:8421?bind=true`.
    use portway_core::codec::addr::Addr;
    use portway_core::connector::socks5::{Socks5Connector, Socks5Options};
    let server = engine();
    server.apply(cmd(&["socks5://127.0.0.1:0?bind=true".into(), "relay://127.0.0.1:0?bind=true".into(), "socks5://127.0.0.1:0".into()], &[])).await;
    let want = free_port_on("127.0.0.1");
    let ctl = tokio::net::TcpStream::connect(listening(&server, "service-0")).await.expect("connect");
    let (bound, mux) = Socks5Connector::new(Socks5Options::default()).mux_bind(ctl, &Addr::parse(&format!("127.0.0.1:{want}")).expect("addr"), Default::default()).await.expect("mux bind");
    assert_eq!(bound.port, want);
    // A peer connects to the bound port; the binding client gets a stream naming it.
    let mut peer = tokio::net::TcpStream::connect(("127.0.0.1", want)).await.expect("the port is open on the server");
    peer.write_all(b"hello from the far side").await.expect("write");
    let (mut st, from) = tokio::time::timeout(T, mux.accept()).await.expect("a stream in time").expect("a stream");
    assert_eq!(from.socket_addr(), peer.local_addr().ok());
    let mut buf = vec![0u8; 23];
    tokio::time::timeout(T, st.read_exact(&mut buf)).await.expect("in time").expect("read");
    assert_eq!(&buf, b"hello from the far side");
    st.write_all(b"back").await.expect("write back");
    let mut back = [0u8; 4];
    tokio::time::timeout(T, peer.read_exact(&mut back)).await.expect("in time").expect("read");
    assert_eq!(&back, b"back");
    // The connection is listed on the server like any other.
    assert!(server.connections().iter().any(|c| c.service == "service-0" && c.client == peer.local_addr().expect("addr").to_string()));
    // Dropping the control connection closes the port.
    drop(mux);
    drop(st);
    let deadline = std::time::Instant::now() + T;
    while tokio::net::TcpStream::connect(("127.0.0.1", want)).await.is_ok() {
        assert!(std::time::Instant::now() < deadline, "the bound port stayed open");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Without bind=true the server refuses, naming the reason.
    let ctl = tokio::net::TcpStream::connect(listening(&server, "service-2")).await.expect("connect");
    let e = Socks5Connector::new(Socks5Options::default()).mux_bind(ctl, &Addr::parse("127.0.0.1:0").expect("addr"), Default::default()).await.expect_err("refused");
    assert!(e.to_string().contains("not allowed"), "{e}");
    // Relay BIND.
    let ctl = tokio::net::TcpStream::connect(listening(&server, "service-1")).await.expect("connect");
    let want = free_port_on("127.0.0.1");
    let opts = portway_core::connector::relay::ConnectorOptions::default();
    let (bound, mux) = portway_core::connector::relay::bind_tcp(ctl, &Addr::parse(&format!("127.0.0.1:{want}")).expect("addr"), &opts, Default::default()).await.expect("relay bind");
    assert_eq!(bound.port, want);
    let mut peer = tokio::net::TcpStream::connect(("127.0.0.1", want)).await.expect("relay-bound port open");
    peer.write_all(b"r").await.expect("write");
    let (mut st, _) = tokio::time::timeout(T, mux.accept()).await.expect("in time").expect("a stream");
    let mut one = [0u8; 1];
    tokio::time::timeout(T, st.read_exact(&mut one)).await.expect("in time").expect("read");
    assert_eq!(&one, b"r");
}
