//! The engine forwarding TCP over real loopback sockets.

mod common;
use common::*;
use portway_core::stats::{Event, ServiceState};
use std::collections::HashMap;
use std::time::Duration;
use tokio::io::AsyncReadExt;

fn one_service(addr: &str, targets: &[std::net::SocketAddr], selector: &str) -> String {
    let mut y = format!("services:\n- name: fwd\n  addr: {addr}\n  handler: {{type: tcp}}\n  listener: {{type: tcp}}\n  forwarder:\n    nodes:\n");
    for (i, t) in targets.iter().enumerate() {
        y.push_str(&format!("    - {{name: target-{i}, addr: \"{t}\"}}\n"));
    }
    y.push_str(selector);
    y
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_pass_through_and_counters_move() {
    let b = tcp_backend("127.0.0.1", "b0").await;
    let e = engine();
    let r = e.apply(cfg(&one_service("127.0.0.1:0", &[b.addr], ""))).await;
    assert_eq!(r.started, vec!["fwd"]);
    let a = listening(&e, "fwd");
    let mut rx = e.subscribe();
    let (name, mut s) = tcp_hello(a).await.expect("through the tunnel");
    assert_eq!(name, "b0");
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    echo(&mut s, &payload).await.expect("echo");
    let conns = e.connections();
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0].service, "fwd");
    assert_eq!(conns[0].target, b.addr.to_string());
    assert_eq!(conns[0].node, "target-0");
    assert_eq!(conns[0].bytes_in, 200_000);
    assert_eq!(conns[0].bytes_out, 200_003);
    // A stats tick reports the connection and the bytes.
    let ev = wait_event(&mut rx, |e| matches!(e, Event::Stats { services, .. } if services.iter().any(|s| s.active == 1 && s.bytes_in == 200_000))).await;
    let Event::Stats { services, .. } = ev else { unreachable!() };
    assert_eq!(services[0].total, 1);
    assert_eq!(services[0].nodes[0].fails, 0);
    drop(s);
    let ev = wait_event(&mut rx, |e| matches!(e, Event::ConnClosed { .. })).await;
    let Event::ConnClosed { conn, .. } = ev else { unreachable!() };
    assert_eq!(conn.bytes_out, 200_003);
    assert!(e.connections().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_rotates_over_targets() {
    let bs = [tcp_backend("127.0.0.1", "b0").await, tcp_backend("127.0.0.2", "b1").await, tcp_backend("127.0.0.3", "b2").await];
    let addrs: Vec<_> = bs.iter().map(|b| b.addr).collect();
    let e = engine();
    e.apply(cfg(&one_service("127.0.0.1:0", &addrs, "    selector: {strategy: round, maxFails: 1, failTimeout: 30s}\n"))).await;
    let a = listening(&e, "fwd");
    let mut seen = Vec::new();
    for _ in 0..6 {
        seen.push(tcp_hello(a).await.expect("hello").0);
    }
    assert_eq!(seen, ["b0", "b1", "b2", "b0", "b1", "b2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_target_is_marked_then_skipped_until_fail_timeout() {
    let b0 = tcp_backend("127.0.0.1", "b0").await;
    // Nothing listens there now, and no other test binds 127.0.0.203, so a parallel
    // test cannot take the freed port over.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.203:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let b2 = tcp_backend("127.0.0.1", "b2").await;
    let e = engine();
    e.apply(cfg(&one_service("127.0.0.1:0", &[b0.addr, dead, b2.addr], "    selector: {strategy: round, maxFails: 1, failTimeout: 30s}\n"))).await;
    let a = listening(&e, "fwd");
    let mut ok = Vec::new();
    let mut failures = 0;
    for _ in 0..9 {
        match tcp_hello(a).await {
            Ok((n, _)) => ok.push(n),
            Err(_) => failures += 1,
        }
    }
    // GOST: the client whose pick was the dead target is closed; the target is
    // marked and skipped by the next connections.
    assert_eq!(failures, 1, "exactly one client hit the dead target: {ok:?}");
    assert_eq!(ok.len(), 8);
    assert!(ok.iter().all(|n| n == "b0" || n == "b2"));
    let st = e.stats_now();
    let health = &st[0].nodes[1];
    assert_eq!(health.name, "target-1");
    assert_eq!(health.fails, 1);
    assert!(health.dead_until.is_some(), "dead node shows when it is retried");
    assert!(st[0].errors >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_uses_first_until_it_fails() {
    let b0 = tcp_backend("127.0.0.204", "b0").await;
    let b1 = tcp_backend("127.0.0.1", "b1").await;
    let a0 = b0.addr;
    let e = engine();
    e.apply(cfg(&one_service("127.0.0.1:0", &[b0.addr, b1.addr], "    selector: {strategy: fifo, maxFails: 1, failTimeout: 30s}\n"))).await;
    let a = listening(&e, "fwd");
    for _ in 0..3 {
        assert_eq!(tcp_hello(a).await.expect("hello").0, "b0");
    }
    drop(b0);
    // Wait until the port is really closed (the backend task is aborted).
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(a0).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(tcp_hello(a).await.is_err(), "the connection that hits the dead primary fails (GOST does not retry the target)");
    for _ in 0..3 {
        assert_eq!(tcp_hello(a).await.expect("fail-over").0, "b1");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_keeps_a_client_ip_on_one_target() {
    let bs = [tcp_backend("127.0.0.1", "b0").await, tcp_backend("127.0.0.1", "b1").await, tcp_backend("127.0.0.1", "b2").await];
    let addrs: Vec<_> = bs.iter().map(|b| b.addr).collect();
    let e = engine();
    e.apply(cfg(&one_service("127.0.0.1:0", &addrs, "    selector: {strategy: hash}\n"))).await;
    let a = listening(&e, "fwd");
    let mut by_ip: HashMap<String, std::collections::HashSet<String>> = HashMap::new();
    for i in 1..=12u8 {
        let src = format!("127.0.0.{}", 10 + i);
        for _ in 0..3 {
            let sock = tokio::net::TcpSocket::new_v4().expect("socket");
            sock.bind(format!("{src}:0").parse().expect("addr")).expect("bind src");
            let mut s = sock.connect(a).await.expect("connect");
            let mut line = vec![0u8; 3];
            tokio::time::timeout(T, s.read_exact(&mut line)).await.expect("timely").expect("read");
            by_ip.entry(src.clone()).or_default().insert(String::from_utf8_lossy(&line[..2]).into_owned());
        }
    }
    assert!(by_ip.values().all(|s| s.len() == 1), "a client IP moved between targets: {by_ip:?}");
    let used: std::collections::HashSet<_> = by_ip.values().flatten().collect();
    assert!(used.len() >= 2, "hash sent every client to one target: {by_ip:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_in_use_fails_that_service_only() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let b = tcp_backend("127.0.0.1", "b0").await;
    let y = format!(
        "services:\n- name: busy\n  addr: 127.0.0.1:{port}\n  handler: {{type: tcp}}\n  listener: {{type: tcp}}\n  forwarder: {{nodes: [{{name: t, addr: \"{0}\"}}]}}\n- name: ok\n  addr: 127.0.0.1:0\n  handler: {{type: tcp}}\n  listener: {{type: tcp}}\n  forwarder: {{nodes: [{{name: t, addr: \"{0}\"}}]}}\n",
        b.addr
    );
    let e = engine();
    let r = e.apply(cfg(&y)).await;
    assert_eq!(r.failed.len(), 1);
    let busy = e.service_status("busy").expect("status");
    assert_eq!(busy.state, ServiceState::Failed { error: format!("127.0.0.1:{port}: address already in use") });
    assert_eq!(tcp_hello(listening(&e, "ok")).await.expect("other service runs").0, "b0");
    // Freeing the port and retrying starts it.
    drop(taken);
    let st = e.start("busy").await.expect("start");
    assert_eq!(st.state, ServiceState::Running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unimplemented_types_fail_at_start_naming_type_and_service() {
    let b = tcp_backend("127.0.0.1", "b0").await;
    let y = format!(
        "services:\n- name: viasocks\n  addr: 127.0.0.1:0\n  handler: {{type: tcp, chain: c}}\n  listener: {{type: tcp}}\n  forwarder: {{nodes: [{{name: t, addr: \"{0}\"}}]}}\n- name: fine\n  addr: 127.0.0.1:0\n  handler: {{type: tcp}}\n  listener: {{type: tcp}}\n  forwarder: {{nodes: [{{name: t, addr: \"{0}\"}}]}}\nchains:\n- name: c\n  hops:\n  - name: h\n    nodes:\n    - name: n\n      addr: 127.0.0.1:1\n      connector: {{type: ss}}\n",
        b.addr
    );
    let e = engine();
    e.apply(cfg(&y)).await;
    match e.service_status("viasocks").expect("status").state {
        ServiceState::Failed { error } => {
            assert!(error.contains("\"viasocks\"") && error.contains("connector type \"ss\" is not implemented"), "{error}");
        }
        other => panic!("expected failure, got {other:?}"),
    }
    assert_eq!(e.service_status("fine").expect("status").state, ServiceState::Running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_keeps_unchanged_services_and_their_connections() {
    let b = tcp_backend("127.0.0.1", "b0").await;
    let b2 = tcp_backend("127.0.0.1", "b2").await;
    let port = free_port();
    let svc_a = format!("- name: a\n  addr: 127.0.0.1:{port}\n  handler: {{type: tcp}}\n  listener: {{type: tcp}}\n  forwarder: {{nodes: [{{name: t, addr: \"{}\"}}]}}\n", b.addr);
    let svc_b = format!("- name: b\n  addr: 127.0.0.1:0\n  handler: {{type: tcp}}\n  listener: {{type: tcp}}\n  forwarder: {{nodes: [{{name: t, addr: \"{}\"}}]}}\n", b.addr);
    let e = engine();
    e.apply(cfg(&format!("services:\n{svc_a}"))).await;
    let a = listening(&e, "a");
    let (_, mut held) = tcp_hello(a).await.expect("hello");
    let r = e.apply(cfg(&format!("services:\n{svc_a}{svc_b}"))).await;
    assert_eq!(r.unchanged, vec!["a"]);
    assert_eq!(r.started, vec!["b"]);
    echo(&mut held, b"still here").await.expect("connection through the unchanged service survives");
    assert_eq!(tcp_hello(listening(&e, "b")).await.expect("new service").0, "b0");
    // Changing a's target restarts a: its old connection closes, new ones go to b2.
    let svc_a2 = svc_a.replace(&b.addr.to_string(), &b2.addr.to_string());
    let r = e.apply(cfg(&format!("services:\n{svc_a2}{svc_b}"))).await;
    assert_eq!(r.restarted, vec!["a"]);
    assert_eq!(r.unchanged, vec!["b"]);
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(T, held.read(&mut buf)).await.expect("closed in time").unwrap_or(0);
    assert_eq!(n, 0, "restarting a service closes its connections");
    assert_eq!(tcp_hello(listening(&e, "a")).await.expect("hello").0, "b2");
    // Removing b stops it.
    let bport = listening(&e, "b");
    let r = e.apply(cfg(&format!("services:\n{svc_a2}"))).await;
    assert_eq!(r.stopped, vec!["b"]);
    assert!(tokio::net::TcpStream::connect(bport).await.is_err(), "removed service's port is closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_off_closes_the_port_and_on_reopens_it() {
    let b = tcp_backend("127.0.0.1", "b0").await;
    let port = free_port();
    let e = engine();
    e.apply(cfg(&one_service(&format!("127.0.0.1:{port}"), &[b.addr], ""))).await;
    let a = listening(&e, "fwd");
    let (_, mut held) = tcp_hello(a).await.expect("hello");
    let st = e.set_enabled("fwd", false).await.expect("off");
    assert_eq!(st.state, ServiceState::Disabled);
    assert!(!st.enabled);
    assert!(tokio::net::TcpStream::connect(a).await.is_err(), "port closed when switched off");
    let mut buf = [0u8; 1];
    assert_eq!(tokio::time::timeout(T, held.read(&mut buf)).await.expect("in time").unwrap_or(0), 0);
    // Re-applying the same config keeps it off.
    e.apply(e.config()).await;
    assert_eq!(e.service_status("fwd").expect("status").state, ServiceState::Disabled);
    let st = e.set_enabled("fwd", true).await.expect("on");
    assert_eq!(st.state, ServiceState::Running);
    assert_eq!(tcp_hello(a).await.expect("hello again").0, "b0");
    assert!(matches!(e.set_enabled("nope", true).await, Err(portway_core::EngineError::NoSuchService { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_connection_by_id() {
    let b = tcp_backend("127.0.0.1", "b0").await;
    let e = engine();
    e.apply(cfg(&one_service("127.0.0.1:0", &[b.addr], ""))).await;
    let (_, mut s) = tcp_hello(listening(&e, "fwd")).await.expect("hello");
    let id = e.connections()[0].id;
    assert!(e.close_connection(id));
    let mut buf = [0u8; 1];
    assert_eq!(tokio::time::timeout(T, s.read(&mut buf)).await.expect("closed in time").unwrap_or(0), 0);
    assert!(!e.close_connection(id + 1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_client_and_refusing_target_do_not_disturb_others() {
    let b = tcp_backend("127.0.0.1", "b0").await;
    let dead = free_port_on("127.0.0.205");
    let y = format!(
        "services:\n- name: good\n  addr: 127.0.0.1:0\n  handler: {{type: tcp}}\n  listener: {{type: tcp}}\n  forwarder: {{nodes: [{{name: t, addr: \"{}\"}}]}}\n- name: bad\n  addr: 127.0.0.1:0\n  handler: {{type: tcp}}\n  listener: {{type: tcp}}\n  forwarder: {{nodes: [{{name: t, addr: \"127.0.0.205:{dead}\"}}]}}\n",
        b.addr
    );
    let e = engine();
    e.apply(cfg(&y)).await;
    let mut rx = e.subscribe();
    // A client to the refusing target is closed promptly.
    let mut s = tokio::net::TcpStream::connect(listening(&e, "bad")).await.expect("accepts");
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(T, s.read(&mut buf)).await.expect("closed promptly").unwrap_or(0);
    assert_eq!(n, 0);
    // The log names the service, the target and the reason.
    let ev = wait_event(&mut rx, |e| matches!(e, Event::Log { line } if line.message.contains("refused"))).await;
    let Event::Log { line } = ev else { unreachable!() };
    assert!(line.fields.iter().any(|(k, v)| k == "service" && v == "bad"), "{line:?}");
    assert!(line.fields.iter().any(|(k, v)| k == "target" && v.contains(&dead.to_string())), "{line:?}");
    // Clients that connect and send nothing are held without harm.
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(tokio::net::TcpStream::connect(listening(&e, "good")).await.expect("connect"));
    }
    let (name, mut s) = tcp_hello(listening(&e, "good")).await.expect("still serving");
    assert_eq!(name, "b0");
    echo(&mut s, b"ok").await.expect("echo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_timeout_is_reported() {
    // A listener with a full accept queue never completes new handshakes on Linux
    // loopback, so a connect to it hangs until our dial timeout fires.
    let Some((blackhole, _fill)) = socket_with_backlog_zero() else { panic!("cannot build a black-hole listener") };
    let y = format!(
        "services:\n- name: slow\n  addr: 127.0.0.1:0\n  handler: {{type: tcp, metadata: {{dialTimeout: 1s}}}}\n  listener: {{type: tcp}}\n  forwarder: {{nodes: [{{name: t, addr: \"{blackhole}\"}}]}}\n"
    );
    let e = engine();
    e.apply(cfg(&y)).await;
    let mut rx = e.subscribe();
    let started = std::time::Instant::now();
    let mut s = tokio::net::TcpStream::connect(listening(&e, "slow")).await.expect("accepts");
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.expect("closed after the dial timeout").unwrap_or(0);
    assert_eq!(n, 0);
    assert!(started.elapsed() >= Duration::from_millis(900), "closed before the timeout: {:?}", started.elapsed());
    wait_event(&mut rx, |e| matches!(e, Event::Log { line } if line.message.contains("timed out"))).await;
}

/// A listening socket whose accept queue is full, plus the connections filling it.
fn socket_with_backlog_zero() -> Option<(std::net::SocketAddr, Vec<std::net::TcpStream>)> {
    use std::os::fd::FromRawFd;
    // SAFETY: a fresh socket handed to std, which owns it from then on.
    let l = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        if fd < 0 {
            return None;
        }
        let addr = libc::sockaddr_in { sin_family: libc::AF_INET as u16, sin_port: 0, sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes([127, 0, 0, 1]) }, sin_zero: [0; 8] };
        if libc::bind(fd, &addr as *const _ as *const libc::sockaddr, std::mem::size_of::<libc::sockaddr_in>() as u32) != 0 {
            return None;
        }
        if libc::listen(fd, 0) != 0 {
            return None;
        }
        std::net::TcpListener::from_raw_fd(fd)
    };
    let a = l.local_addr().ok()?;
    let mut fill = Vec::new();
    for _ in 0..4 {
        let s = std::net::TcpStream::connect_timeout(&a, Duration::from_millis(200));
        match s {
            Ok(s) => fill.push(s),
            Err(_) => break,
        }
    }
    std::mem::forget(l);
    Some((a, fill))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resetting_target_closes_the_client_and_is_logged() {
    // A target that accepts and resets at once (close with SO_LINGER 0).
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let rst_addr = l.local_addr().expect("addr");
    let rst = tokio::spawn(async move {
        for _ in 0..16 {
            let Ok((s, _)) = l.accept().await else { return };
            #[allow(deprecated)] // a reset is the point here
            let _ = s.set_linger(Some(Duration::ZERO));
            drop(s);
        }
    });
    let good = tcp_backend("127.0.0.1", "good").await;
    let y = format!(
        "services:\n- name: rst\n  addr: 127.0.0.1:0\n  handler: {{type: tcp}}\n  listener: {{type: tcp}}\n  forwarder: {{nodes: [{{name: t, addr: \"{rst_addr}\"}}]}}\n- name: ok\n  addr: 127.0.0.1:0\n  handler: {{type: tcp}}\n  listener: {{type: tcp}}\n  forwarder: {{nodes: [{{name: t, addr: \"{}\"}}]}}\n",
        good.addr
    );
    let e = engine();
    e.apply(cfg(&y)).await;
    let mut rx = e.subscribe();
    for _ in 0..3 {
        let mut s = tokio::net::TcpStream::connect(listening(&e, "rst")).await.expect("accepts");
        let _ = tokio::io::AsyncWriteExt::write_all(&mut s, b"hello").await;
        let mut buf = [0u8; 8];
        let n = tokio::time::timeout(T, s.read(&mut buf)).await.expect("closed promptly").unwrap_or(0);
        assert_eq!(n, 0, "nothing comes back from a resetting target");
    }
    let ev = wait_event(&mut rx, |e| matches!(e, Event::ConnClosed { conn, error: Some(err) } if conn.service == "rst" && err.contains("reset"))).await;
    assert!(matches!(ev, Event::ConnClosed { .. }));
    assert_eq!(e.service_status("rst").expect("status").state, ServiceState::Running);
    assert_eq!(tcp_hello(listening(&e, "ok")).await.expect("other service").0, "good");
    rst.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_closes_a_quiet_connection_but_not_a_trickling_one() {
    let b = tcp_backend("127.0.0.1", "b0").await;
    let e = engine();
    let y = one_service("127.0.0.1:0", &[b.addr], "").replace("handler: {type: tcp}", "handler: {type: tcp, metadata: {idleTimeout: 400ms}}");
    e.apply(cfg(&y)).await;
    let a = listening(&e, "fwd");
    let mut rx = e.subscribe();
    let (_, mut s) = tcp_hello(a).await.expect("through the tunnel");
    // A byte each way every 150 ms for three idle periods: never idle long enough.
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        echo(&mut s, b"x").await.expect("still open while bytes flow");
    }
    assert_eq!(e.connections().len(), 1);
    // Then quiet: the forwarder closes it after one to two idle periods.
    let quiet = std::time::Instant::now();
    let mut b1 = [0u8; 1];
    let n = tokio::time::timeout(T, s.read(&mut b1)).await.expect("closed by the idle timeout");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    // The last byte passed the forwarder just before `quiet` started.
    assert!(quiet.elapsed() >= Duration::from_millis(390), "closed after {:?}", quiet.elapsed());
    let ev = wait_event(&mut rx, |e| matches!(e, Event::ConnClosed { .. })).await;
    let Event::ConnClosed { error, .. } = ev else { unreachable!() };
    assert_eq!(error.as_deref(), Some("idle for 400ms"));
}
