//! Remote port forwarding through a chain (seed: "Remote Port Forwarding"), with
//! addresses on loopback: `-L rtcp://:P/target -F socks5://hop` where the hop
//! runs `socks5://:1080?bind=true` (and relay with bind=true), rudp likewise;
//! a hop that goes away is re-bound with backoff and the rule says so meanwhile.

mod common;
use common::*;
use portway_core::config::{build_from_cmd, Config};

fn cmd(services: &[String], nodes: &[String]) -> Config {
    match build_from_cmd(services, nodes) {
        Ok(c) => c,
        Err(e) => panic!("{services:?} {nodes:?}: {e}"),
    }
}

/// Connects to the port the hop opened, retrying until the bind is in place.
async fn hello_when_bound(port: u16) -> (String, tokio::net::TcpStream) {
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let deadline = tokio::time::Instant::now() + T;
    loop {
        if let Ok(x) = tcp_hello(addr).await {
            return x;
        }
        assert!(tokio::time::Instant::now() < deadline, "remote port {port} never served");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtcp_through_socks5_and_relay_hops_opens_the_port_on_the_hop() {
    let backend = tcp_backend("127.0.0.1", "private-service").await;
    for scheme in ["socks5", "relay"] {
        let hop = engine();
        hop.apply(cmd(&[format!("{scheme}://u:p@127.0.0.1:0?bind=true")], &[])).await;
        let hop_addr = listening(&hop, "service-0");
        let port = free_port();
        let client = engine();
        client.apply(cmd(&[format!("rtcp://127.0.0.1:{port}/{}", backend.addr)], &[format!("{scheme}://u:p@{hop_addr}")])).await;
        let (name, mut s) = hello_when_bound(port).await;
        assert_eq!(name, "private-service", "{scheme}");
        echo(&mut s, &vec![9u8; 100_000]).await.expect("bulk back through the tunnel");
        // Listed on both ends.
        assert!(client.connections().iter().any(|c| c.target == backend.addr.to_string()), "{scheme}");
        assert!(hop.connections().iter().any(|c| c.service == "service-0"), "{scheme}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rudp_through_socks5_and_relay_hops() {
    let dns = udp_backend("127.0.0.1", "dns").await;
    for scheme in ["socks5", "relay"] {
        let hop = engine();
        hop.apply(cmd(&[format!("{scheme}://127.0.0.1:0?bind=true")], &[])).await;
        let hop_addr = listening(&hop, "service-0");
        let port = std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).expect("free udp port").port();
        let client = engine();
        client.apply(cmd(&[format!("rudp://127.0.0.1:{port}/{}", dns.addr)], &[format!("{scheme}://{hop_addr}")])).await;
        let c = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let mut buf = [0u8; 256];
        let deadline = tokio::time::Instant::now() + T;
        let got = loop {
            c.send_to(b"ask", ("127.0.0.1", port)).await.expect("send");
            if let Ok(Ok((n, _))) = tokio::time::timeout(std::time::Duration::from_millis(200), c.recv_from(&mut buf)).await {
                break buf[..n].to_vec();
            }
            assert!(tokio::time::Instant::now() < deadline, "{scheme}: no answer on the remote UDP port");
        };
        assert_eq!(got, b"dns:ask", "{scheme}");
        // A second peer gets its own session, answered to its own address.
        let c2 = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        c2.send_to(b"two", ("127.0.0.1", port)).await.expect("send");
        let (n, _) = tokio::time::timeout(T, c2.recv_from(&mut buf)).await.expect("answer in time").expect("recv");
        assert_eq!(&buf[..n], b"dns:two", "{scheme}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_hop_is_rebound_and_the_rule_says_why_meanwhile() {
    let backend = tcp_backend("127.0.0.1", "private-service").await;
    let hop_port = free_port();
    let hop = engine();
    hop.apply(cmd(&[format!("socks5://127.0.0.1:{hop_port}?bind=true")], &[])).await;
    let port = free_port();
    let client = engine();
    client.apply(cmd(&[format!("rtcp://127.0.0.1:{port}/{}", backend.addr)], &[format!("socks5://127.0.0.1:{hop_port}")])).await;
    assert_eq!(hello_when_bound(port).await.0, "private-service");
    hop.shutdown().await;
    // The rule keeps running and says what happened.
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let st = client.stats_now();
        let last = st[0].last_error.clone().map(|e| e.1).unwrap_or_default();
        if last.contains("lost") || last.contains("cannot bind") {
            assert!(last.contains("retrying") || last.contains("re-binding"), "{last}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no error shown after the hop went away: {st:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The hop comes back on the same port: the tunnel is re-established.
    let hop2 = engine();
    hop2.apply(cmd(&[format!("socks5://127.0.0.1:{hop_port}?bind=true")], &[])).await;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(12);
    loop {
        if let Ok((name, _)) = tcp_hello(addr).await {
            assert_eq!(name, "private-service");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not re-bound within the backoff");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hop_that_cannot_bind_is_refused_at_start() {
    let e = engine();
    e.apply(cmd(&["rtcp://127.0.0.1:0/127.0.0.1:80".into()], &["http://127.0.0.1:3128".into()])).await;
    let st = e.service_status("service-0").expect("status");
    let portway_core::stats::ServiceState::Failed { error } = st.state else { panic!("{st:?}") };
    assert!(error.contains("\"http\"") && error.contains("cannot"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_taken_on_the_hop_is_shown_and_retried_until_it_frees() {
    let backend = tcp_backend("127.0.0.1", "private-service").await;
    let hop = engine();
    hop.apply(cmd(&["socks5://127.0.0.1:0?bind=true".into()], &[])).await;
    let hop_addr = listening(&hop, "service-0");
    // Something else already listens on the port the client wants on the hop.
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = squatter.local_addr().expect("addr").port();
    let client = engine();
    client.apply(cmd(&[format!("rtcp://127.0.0.1:{port}/{}", backend.addr)], &[format!("socks5://{hop_addr}")])).await;
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let last = client.stats_now()[0].last_error.clone().map(|e| e.1).unwrap_or_default();
        if last.contains("cannot bind") {
            assert!(last.contains("retrying") && last.contains(&port.to_string()), "{last}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no error shown for a taken port");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The port frees: the next attempt binds it on the hop.
    drop(squatter);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(12);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    loop {
        if let Ok((name, _)) = tcp_hello(addr).await {
            assert_eq!(name, "private-service");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not bound after the port freed");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_rule_shows_its_hop_health_and_the_probe_walks_that_chain() {
    let backend = tcp_backend("127.0.0.1", "private-service").await;
    let hop_port = free_port();
    let hop = engine();
    hop.apply(cmd(&[format!("socks5://127.0.0.1:{hop_port}?bind=true")], &[])).await;
    let port = free_port();
    let client = engine();
    client.apply(cmd(&[format!("rtcp://127.0.0.1:{port}/{}", backend.addr)], &[format!("socks5://127.0.0.1:{hop_port}")])).await;
    assert_eq!(hello_when_bound(port).await.0, "private-service");
    // The chain that opens the port is the rule's chain as far as the user is concerned.
    let st = client.stats_now();
    assert_eq!(st[0].hops.len(), 1, "{st:?}");
    assert_eq!(st[0].hops[0].nodes[0].addr, format!("127.0.0.1:{hop_port}"));
    assert_eq!(st[0].hops[0].nodes[0].fails, 0);
    let r = client.probe("service-0", None).await.expect("probe");
    assert!(r.ok, "{r:?}");
    assert_eq!(r.hops.first().map(|h| h.addr.clone()), Some(format!("127.0.0.1:{hop_port}")), "{r:?}");
    assert_eq!(r.hops.last().map(|h| h.hop.as_str()), Some("target"), "then the local target: {r:?}");

    // The hop goes away: the re-bind attempts mark its node, and the probe names it.
    hop.shutdown().await;
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let st = client.stats_now();
        if st[0].hops[0].nodes[0].fails > 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the hop's node never marked: {st:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let r = client.probe("service-0", None).await.expect("probe");
    assert!(!r.ok);
    assert_eq!(r.hops.last().and_then(|h| h.error.clone()).as_deref(), Some("connection refused"), "{r:?}");
    assert!(r.error.unwrap_or_default().contains(&format!("127.0.0.1:{hop_port}")));
}
