//! GOST's `mux.*` metadata through the engine: remote forwarding (rtcp) over a
//! SOCKS5 MUX-BIND and a relay BIND with smux protocol v2 (`mux.version=2` on
//! the hop's handler and on the client's connector), a version mismatch that
//! the rule reports, and a bad value refused when the service starts.

mod common;
use common::*;
use portway_core::config::{build_from_cmd, Config};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn cmd(services: &[String], nodes: &[String]) -> Config {
    match build_from_cmd(services, nodes) {
        Ok(c) => c,
        Err(e) => panic!("{services:?} {nodes:?}: {e}"),
    }
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Connects to the port the hop opened, retrying until the bind is in place.
async fn hello_when_bound(port: u16) -> (String, tokio::net::TcpStream) {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        if let Ok(x) = tcp_hello(local(port)).await {
            return x;
        }
        assert!(tokio::time::Instant::now() < deadline, "remote port {port} never served");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Sends `len` bytes and reads them back at the same time, so the tunnel's
/// windows (not the test) decide the pace.
async fn echo_concurrently(s: tokio::net::TcpStream, len: usize) {
    let data: Vec<u8> = (0..len).map(|i| (i % 249) as u8).collect();
    let (mut r, mut w) = s.into_split();
    let d2 = data.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&d2).await.expect("write through the tunnel");
        w
    });
    let mut back = vec![0u8; len];
    tokio::time::timeout(std::time::Duration::from_secs(20), r.read_exact(&mut back)).await.expect("echo stalled").expect("read back");
    assert!(back == data, "echo through the tunnel changed the bytes");
    let _w = tokio::time::timeout(T, writer).await.expect("writer stuck").expect("writer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtcp_with_mux_version_2_on_both_ends_passes_bytes() {
    let backend = tcp_backend("127.0.0.1", "private-service").await;
    for scheme in ["socks5", "relay"] {
        let hop = engine();
        hop.apply(cmd(&[format!("{scheme}://127.0.0.1:0?bind=true&mux.version=2&mux.maxStreamBuffer=65536")], &[])).await;
        let hop_addr = listening(&hop, "service-0");
        let port = free_port();
        let client = engine();
        client.apply(cmd(&[format!("rtcp://127.0.0.1:{port}/{}", backend.addr)], &[format!("{scheme}://{hop_addr}?mux.version=2&mux.maxStreamBuffer=65536")])).await;
        let (name, s) = hello_when_bound(port).await;
        assert_eq!(name, "private-service", "{scheme}");
        // 32 windows' worth each way.
        echo_concurrently(s, 2 * 1024 * 1024).await;
        // A second connection is a second stream of the same session.
        let (name, s) = hello_when_bound(port).await;
        assert_eq!(name, "private-service", "{scheme}");
        echo_concurrently(s, 300_000).await;
        let last = client.stats_now()[0].last_error.clone();
        assert!(last.is_none(), "{scheme}: {last:?}");
    }
}

/// v2 on the hop, the default v1 on the client: the first stream the hop
/// opens ends the client's session, and the rule says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mismatched_mux_versions_are_reported_on_the_rule() {
    let backend = tcp_backend("127.0.0.1", "private-service").await;
    for scheme in ["socks5", "relay"] {
        let hop = engine();
        hop.apply(cmd(&[format!("{scheme}://127.0.0.1:0?bind=true&mux.version=2")], &[])).await;
        let hop_addr = listening(&hop, "service-0");
        let port = free_port();
        let client = engine();
        client.apply(cmd(&[format!("rtcp://127.0.0.1:{port}/{}", backend.addr)], &[format!("{scheme}://{hop_addr}")])).await;
        let deadline = tokio::time::Instant::now() + T;
        let mut conns = Vec::new();
        loop {
            // Each connection to the remote port makes the hop open a stream.
            if let Ok(Ok(c)) = tokio::time::timeout(T, tokio::net::TcpStream::connect(local(port))).await {
                conns.push(c);
            }
            let last = client.stats_now()[0].last_error.clone().map(|e| e.1).unwrap_or_default();
            if last.contains("lost") {
                assert!(last.contains("peer speaks protocol version 2, this side version 1 (mux.version must match on both ends)"), "{scheme}: {last}");
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{scheme}: no version error shown: {last:?}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_mux_value_stops_the_service_naming_the_key() {
    let hop = engine();
    hop.apply(cmd(&["socks5://127.0.0.1:0?bind=true&mux.version=3".into()], &[])).await;
    let st = hop.service_status("service-0").expect("status");
    let portway_core::stats::ServiceState::Failed { error } = st.state else { panic!("{st:?}") };
    assert!(error.contains("handler.metadata.mux.version: 3 is not an smux protocol version"), "{error}");

    let client = engine();
    client.apply(cmd(&["rtcp://127.0.0.1:0/127.0.0.1:80".into()], &["relay://127.0.0.1:1?mux.maxFrameSize=70000".into()])).await;
    let st = client.service_status("service-0").expect("status");
    let portway_core::stats::ServiceState::Failed { error } = st.state else { panic!("{st:?}") };
    assert!(error.contains("connector.metadata.mux.maxFrameSize: 70000 is larger than 65535"), "{error}");
}
