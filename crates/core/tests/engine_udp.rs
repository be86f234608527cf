//! The engine forwarding UDP over real loopback sockets: sessions, keepAlive, ttl.

mod common;
use common::*;
use portway_core::stats::Event;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

fn udp_service(targets: &[SocketAddr], listener_md: &str, selector: &str) -> String {
    let mut y = format!("services:\n- name: dns\n  addr: 127.0.0.1:0\n  handler: {{type: udp}}\n  listener:\n    type: udp\n    metadata: {{{listener_md}}}\n  forwarder:\n    nodes:\n");
    for (i, t) in targets.iter().enumerate() {
        y.push_str(&format!("    - {{name: target-{i}, addr: \"{t}\"}}\n"));
    }
    y.push_str(selector);
    y
}

async fn ask(c: &UdpSocket, to: SocketAddr, msg: &[u8]) -> String {
    c.send_to(msg, to).await.expect("send");
    let mut buf = vec![0u8; 65536];
    let (n, _) = tokio::time::timeout(T, c.recv_from(&mut buf)).await.expect("a reply within 5s").expect("recv");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keepalive_each_reply_ends_the_session() {
    let b0 = udp_backend("127.0.0.1", "b0").await;
    let b1 = udp_backend("127.0.0.2", "b1").await;
    let e = engine();
    e.apply(cfg(&udp_service(&[b0.addr, b1.addr], "", ""))).await;
    let a = listening(&e, "dns");
    let mut rx = e.subscribe();
    let c = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    assert_eq!(ask(&c, a, b"q1").await, "b0:q1");
    wait_event(&mut rx, |e| matches!(e, Event::ConnClosed { conn, .. } if conn.network == "udp" && conn.client == c.local_addr().expect("addr").to_string())).await;
    // Same client again: a new session, so the round-robin selector moves on (GOST).
    assert_eq!(ask(&c, a, b"q2").await, "b1:q2");
    assert_eq!(ask(&c, a, b"q3").await, "b0:q3");
    let st = e.stats_now();
    assert_eq!(st[0].total, 3, "three sessions");
    assert_eq!(st[0].bytes_in, 6);
    assert_eq!(st[0].bytes_out, 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_session_sticks_to_its_target_and_idles_out_within_two_ttl() {
    let b0 = udp_backend("127.0.0.1", "b0").await;
    let b1 = udp_backend("127.0.0.2", "b1").await;
    let e = engine();
    e.apply(cfg(&udp_service(&[b0.addr, b1.addr], "keepAlive: true, ttl: 1s", ""))).await;
    let a = listening(&e, "dns");
    let mut rx = e.subscribe();
    let c1 = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let c2 = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    for i in 0..5 {
        assert_eq!(ask(&c1, a, format!("x{i}").as_bytes()).await, format!("b0:x{i}"));
    }
    // A second client gets its own session and the next target.
    assert_eq!(ask(&c2, a, b"y").await, "b1:y");
    assert_eq!(e.connections().iter().filter(|c| c.network == "udp").count(), 2);
    let last = Instant::now();
    let c1a = c1.local_addr().expect("addr").to_string();
    wait_event(&mut rx, |e| matches!(e, Event::ConnClosed { conn, .. } if conn.client == c1a)).await;
    let idle = last.elapsed();
    assert!(idle >= Duration::from_millis(900) && idle <= Duration::from_millis(2600), "idle session closed after {idle:?}, expected 1-2 ttl (1s)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_keeps_a_keepalive_session_open() {
    let b0 = udp_backend("127.0.0.1", "b0").await;
    let e = engine();
    e.apply(cfg(&udp_service(&[b0.addr], "keepAlive: true, ttl: 1s", ""))).await;
    let a = listening(&e, "dns");
    let c = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    assert_eq!(ask(&c, a, b"first").await, "b0:first");
    let id = e.connections()[0].id;
    // Keep talking for 3 ttl periods: the session must survive.
    let until = Instant::now() + Duration::from_secs(3);
    let mut n = 0;
    while Instant::now() < until && n < 100 {
        ask(&c, a, b"ping").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        n += 1;
    }
    let conns = e.connections();
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0].id, id, "the session was replaced while in use");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_buffer_size_truncates_datagrams_like_gost() {
    let b0 = udp_backend("127.0.0.1", "b0").await;
    let e = engine();
    e.apply(cfg(&udp_service(&[b0.addr], "readBufferSize: 16", ""))).await;
    let a = listening(&e, "dns");
    let c = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let big = vec![b'z'; 100];
    assert_eq!(ask(&c, a, &big).await, format!("b0:{}", "z".repeat(16)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusing_target_is_marked_and_skipped() {
    let dead = {
        let s = std::net::UdpSocket::bind("127.0.0.207:0").expect("bind");
        s.local_addr().expect("addr")
    };
    let b1 = udp_backend("127.0.0.1", "b1").await;
    let e = engine();
    e.apply(cfg(&udp_service(&[dead, b1.addr], "keepAlive: true", "    selector: {strategy: fifo, maxFails: 1, failTimeout: 30s}\n"))).await;
    let a = listening(&e, "dns");
    let mut rx = e.subscribe();
    let c = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    c.send_to(b"lost", a).await.expect("send");
    // ICMP port unreachable closes the session and marks the node.
    wait_event(&mut rx, |e| matches!(e, Event::ConnClosed { error: Some(err), .. } if err.contains("refused"))).await;
    assert_eq!(ask(&c, a, b"again").await, "b1:again");
    let st = e.stats_now();
    assert_eq!(st[0].nodes[0].fails, 1);
    assert!(st[0].nodes[0].dead_until.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_each_get_their_own_session() {
    let b0 = udp_backend("127.0.0.1", "b0").await;
    let b1 = udp_backend("127.0.0.1", "b1").await;
    let b2 = udp_backend("127.0.0.1", "b2").await;
    let e = engine();
    e.apply(cfg(&udp_service(&[b0.addr, b1.addr, b2.addr], "keepAlive: true, ttl: 5s", ""))).await;
    let a = listening(&e, "dns");
    let mut names = std::collections::HashSet::new();
    let mut clients = Vec::new();
    for i in 0..30 {
        let c = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let r = ask(&c, a, format!("c{i}").as_bytes()).await;
        assert!(r.ends_with(&format!(":c{i}")), "{r}");
        names.insert(r[..2].to_string());
        clients.push(c);
    }
    assert_eq!(names.len(), 3, "sessions spread over every target");
    assert_eq!(e.connections().len(), 30);
    e.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keepalive_a_burst_of_requests_is_answered_in_full() {
    // GOST would drop the replies that arrive after the first one; Portway answers
    // every request (each session still ends after its replies are in).
    let b0 = udp_backend("127.0.0.1", "b0").await;
    let b1 = udp_backend("127.0.0.1", "b1").await;
    let e = engine();
    e.apply(cfg(&udp_service(&[b0.addr, b1.addr], "ttl: 2s", ""))).await;
    let a = listening(&e, "dns");
    let c = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    const N: usize = 100; // within readQueueSize (128), beyond which GOST and Portway drop
    for i in 0..N {
        c.send_to(format!("q{i}").as_bytes(), a).await.expect("send");
    }
    let mut answered = std::collections::HashSet::new();
    let mut buf = vec![0u8; 1500];
    while answered.len() < N {
        match tokio::time::timeout(T, c.recv_from(&mut buf)).await {
            Ok(Ok((n, _))) => {
                let r = String::from_utf8_lossy(&buf[..n]).into_owned();
                let q = r.split(':').nth(1).expect("name:payload").to_string();
                answered.insert(q);
            }
            _ => break,
        }
    }
    assert_eq!(answered.len(), N, "some requests got no answer");
    // And sessions wind down once answered.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !e.connections().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(e.connections().is_empty(), "sessions left open: {:?}", e.connections());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interleaved_bursts_from_many_clients_reach_their_own_sessions_and_are_counted() {
    // Datagrams are read and sent a batch per system call, grouped per session:
    // several clients sending at once must each get every answer, from the target
    // their session picked, and the rule must count every byte both ways.
    let b0 = udp_backend("127.0.0.1", "b0").await;
    let b1 = udp_backend("127.0.0.1", "b1").await;
    let e = engine();
    e.apply(cfg(&udp_service(&[b0.addr, b1.addr], "keepAlive: true, ttl: 5s", ""))).await;
    let a = listening(&e, "dns");
    const CLIENTS: usize = 8;
    const EACH: usize = 60; // 480 in all: many batches, each holding several clients
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
    }
    // Rounds of 4 datagrams per client, sent one client after the other so that
    // every batch the service reads mixes clients; 32 in flight at most, which
    // loopback's socket buffers hold without dropping any.
    const PER_ROUND: usize = 4;
    let (mut sent_bytes, mut got_bytes) = (0u64, 0u64);
    let mut backends: Vec<Option<String>> = vec![None; CLIENTS];
    let mut buf = vec![0u8; 1500];
    for round in 0..EACH / PER_ROUND {
        for k in 0..PER_ROUND {
            for (c, s) in clients.iter().enumerate() {
                let q = format!("c{c}-q{:02}", round * PER_ROUND + k);
                sent_bytes += q.len() as u64;
                s.send_to(q.as_bytes(), a).await.expect("send");
            }
        }
        for (c, s) in clients.iter().enumerate() {
            let mut seen = std::collections::BTreeSet::new();
            while seen.len() < PER_ROUND {
                let (n, _) = tokio::time::timeout(T, s.recv_from(&mut buf)).await.unwrap_or_else(|_| panic!("client {c}, round {round}: {} of {PER_ROUND} answers", seen.len())).expect("recv");
                got_bytes += n as u64;
                let r = String::from_utf8_lossy(&buf[..n]).into_owned();
                let (name, q) = r.split_once(':').expect("name:payload");
                assert!(q.starts_with(&format!("c{c}-")), "client {c} got another client's answer: {r}");
                assert_eq!(backends[c].get_or_insert(name.to_string()), name, "client {c}: one session, one target");
                seen.insert(q.to_string());
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let st = e.stats_now();
        if (st[0].bytes_in, st[0].bytes_out) == (sent_bytes, got_bytes) {
            break;
        }
        assert!(Instant::now() < deadline, "counted {} in / {} out, want {sent_bytes} / {got_bytes}", st[0].bytes_in, st[0].bytes_out);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(e.connections().len(), CLIENTS);
    e.shutdown().await;
}
