//! GOST's "Local Port Forwarding" guide (TCP and UDP), run through the `portway`
//! binary on loopback, plus the selector strategies and port ranges from the
//! command line. Backends answer with their own name, so every test sees which
//! target a connection reached.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, UdpSocket};

fn names(bs: &[&TcpBackend]) -> String {
    bs.iter().map(|b| b.target()).collect::<Vec<_>>().join(",")
}

/// The seed's `gost -L tcp://:8080/192.168.1.1:80`, with the target rewritten to a loopback
/// backend: one target; bytes pass both ways, a large
/// transfer arrives intact, and a half-close travels through (the backend sees
/// our EOF, finishes, and we see its EOF). `:PORT` listens dual-stack as in GOST.
#[test]
fn seed_tcp_single_target_forwards_bytes_both_ways() {
    let dir = config_dir();
    let b = TcpBackend::start("127.0.0.1", "solo");
    let (_pw, port, lines) = retry(|| {
        let port = free_port_any();
        let url = format!("tcp://:{port}/{}", b.target());
        let (p, l) = launch(portway_cmd(dir.path(), &["-L", &url]), 1)?;
        Ok((p, port, l))
    });
    assert_eq!(lines[0], format!("service \"service-0\": tcp listening on [::]:{port} -> {}", b.target()));

    let v6: SocketAddr = format!("[::1]:{port}").parse().unwrap();
    for addr in [v4("127.0.0.1", port), v6] {
        let mut s = connect(addr).unwrap();
        assert_eq!(read_line(&mut s).unwrap(), "solo", "via {addr}");
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut w = s.try_clone().unwrap();
        let sent = data.clone();
        let writer = std::thread::spawn(move || {
            w.write_all(&sent).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        });
        let mut got = Vec::new();
        s.read_to_end(&mut got).expect("reading the echo until the backend's EOF");
        writer.join().unwrap();
        assert_eq!(got.len(), data.len(), "via {addr}");
        assert!(got == data, "echoed bytes differ via {addr}");
    }
    assert_eq!(b.accepted(), 2);
}

/// `gost -L "tcp://:8080/a,b,c?strategy=round&maxFails=1&failTimeout=30s"`:
/// connections rotate a, b, c, a, b, c; after b dies, the connection that picks it
/// fails once (the client is closed), b is then skipped for failTimeout and the
/// rotation continues over a and c without another failure.
#[test]
fn seed_tcp_round_robin_rotates_and_skips_a_dead_backend() {
    let dir = config_dir();
    let b1 = TcpBackend::start("127.0.0.1", "b1");
    let mut b2 = TcpBackend::start("127.0.0.202", "b2");
    let b3 = TcpBackend::start("127.0.0.3", "b3");
    let targets = names(&[&b1, &b2, &b3]);
    let (pw, port, lines) = retry(|| {
        let port = free_port("127.0.0.1");
        let url = format!("tcp://127.0.0.1:{port}/{targets}?strategy=round&maxFails=1&failTimeout=30s");
        let (p, l) = launch(portway_cmd(dir.path(), &["-L", &url]), 1)?;
        Ok((p, port, l))
    });
    assert_eq!(
        lines[0],
        format!("service \"service-0\": tcp listening on 127.0.0.1:{port} -> {}, {}, {}", b1.target(), b2.target(), b3.target())
    );
    let addr = v4("127.0.0.1", port);
    let seq: Vec<String> = (0..6).map(|_| hello(addr).unwrap()).collect();
    assert_eq!(seq, ["b1", "b2", "b3", "b1", "b2", "b3"]);

    b2.stop();
    // The round counter is at 6: b1, then b2 (dead: this client is closed).
    assert_eq!(hello(addr).as_deref(), Ok("b1"));
    let failed = hello(addr);
    assert!(failed.is_err(), "the pick of the dead backend should fail, got {failed:?}");
    // maxFails=1 reached: b2 is skipped for 30s; every connection succeeds.
    let after: Vec<String> = (0..10).map(|i| hello(addr).unwrap_or_else(|e| panic!("connection {i} after the failure: {e}\n{}", pw.transcript()))).collect();
    let used: BTreeSet<&str> = after.iter().map(String::as_str).collect();
    assert_eq!(used, BTreeSet::from(["b1", "b3"]), "{after:?}");
    pw.wait_line(0, Src::Err, EVENT, |l| l.contains("connection refused") && l.contains(&b2.target()))
        .expect("a warning naming the refused target");
}

/// `gost -L "udp://:10053/a,b,c?keepAlive=true&ttl=5s"`: one session per client;
/// with keepAlive the session (one upstream socket) stays for the client's next
/// datagrams; sessions are spread round-robin over the targets.
#[test]
fn seed_udp_sessions_stick_to_a_target_and_spread_over_all() {
    let dir = config_dir();
    let us = [UdpBackend::start("127.0.0.1", "u1"), UdpBackend::start("127.0.0.2", "u2"), UdpBackend::start("127.0.0.3", "u3")];
    let targets = us.iter().map(|u| u.target()).collect::<Vec<_>>().join(",");
    let (_pw, port, lines) = retry(|| {
        let port = free_port_any();
        let url = format!("udp://:{port}/{targets}?keepAlive=true&ttl=5s");
        let (p, l) = launch(portway_cmd(dir.path(), &["-L", &url]), 1)?;
        Ok((p, port, l))
    });
    assert_eq!(
        lines[0],
        format!("service \"service-0\": udp listening on [::]:{port} -> {}", targets.replace(',', ", "))
    );
    let mut per_client = Vec::new();
    for i in 0..6 {
        let (local, dst) = if i == 5 { ("[::1]:0", format!("[::1]:{port}")) } else { ("127.0.0.1:0", format!("127.0.0.1:{port}")) };
        let c = UdpSocket::bind(local).unwrap();
        let dst: SocketAddr = dst.parse().unwrap();
        let answers: Vec<String> = (0..3).map(|k| udp_ask(&c, dst, &format!("client{i}-msg{k}")).unwrap()).collect();
        assert!(answers.iter().all(|a| a == &answers[0]), "client {i} moved between targets: {answers:?}");
        per_client.push(answers[0].clone());
    }
    assert_eq!(per_client, ["u1", "u2", "u3", "u1", "u2", "u3"]);
    for u in &us {
        assert_eq!(u.sessions(), 2, "{}: one upstream socket per client session", u.name);
    }
}

/// `?strategy=fifo`: everything goes to the first target while it lives; when it
/// dies, one connection fails and the rest go to the second.
#[test]
fn strategy_fifo_uses_the_first_target_until_it_dies() {
    // Targets that a test kills live on addresses no other test binds, so a
    // parallel test cannot reuse the freed port and answer in its place.
    let dir = config_dir();
    let mut b1 = TcpBackend::start("127.0.0.201", "b1");
    let b2 = TcpBackend::start("127.0.0.2", "b2");
    let b3 = TcpBackend::start("127.0.0.3", "b3");
    let targets = names(&[&b1, &b2, &b3]);
    let (_pw, port, _) = retry(|| {
        let port = free_port("127.0.0.1");
        let url = format!("tcp://127.0.0.1:{port}/{targets}?strategy=fifo");
        let (p, l) = launch(portway_cmd(dir.path(), &["-L", &url]), 1)?;
        Ok((p, port, l))
    });
    let addr = v4("127.0.0.1", port);
    for _ in 0..5 {
        assert_eq!(hello(addr).as_deref(), Ok("b1"));
    }
    b1.stop();
    assert!(hello(addr).is_err(), "the dead first target is tried once");
    for _ in 0..5 {
        assert_eq!(hello(addr).as_deref(), Ok("b2"));
    }
    assert_eq!(b3.accepted(), 0);
}

/// `?strategy=hash`: the client IP picks the target, GOST's way
/// (crc32(ip) mod number of targets), so one client always lands on the same one
/// and different clients spread.
fn hash_strategy(listen_host: &str) {
    let dir = config_dir();
    let bs = [TcpBackend::start("127.0.0.1", "b0"), TcpBackend::start("127.0.0.2", "b1"), TcpBackend::start("127.0.0.3", "b2")];
    let targets = names(&[&bs[0], &bs[1], &bs[2]]);
    let (_pw, port, _) = retry(|| {
        let port = if listen_host.is_empty() { free_port_any() } else { free_port(listen_host) };
        let url = format!("tcp://{listen_host}:{port}/{targets}?strategy=hash");
        let (p, l) = launch(portway_cmd(dir.path(), &["-L", &url]), 1)?;
        Ok((p, port, l))
    });
    let addr = v4("127.0.0.1", port);
    let mut seen = BTreeMap::new();
    for last in 10u8..30 {
        let src = Ipv4Addr::new(127, 0, 0, last);
        let expected = format!("b{}", crc32fast::hash(src.to_string().as_bytes()) % 3);
        for _ in 0..2 {
            let got = hello_on(connect_from(src, addr).unwrap()).unwrap();
            assert_eq!(got, expected, "client {src}");
        }
        *seen.entry(expected).or_insert(0) += 1;
    }
    assert!(seen.len() >= 2, "20 client IPs all hashed to one target: {seen:?}");
}

#[test]
fn strategy_hash_keeps_each_client_ip_on_one_target() {
    hash_strategy("127.0.0.1");
}

/// The same on a dual-stack `:PORT` listener: an IPv4 client arrives as
/// `::ffff:127.0.0.x` and must hash as `127.0.0.x`, as in GOST (Go prints
/// v4-mapped addresses in IPv4 form).
#[test]
fn strategy_hash_on_dual_stack_listener_hashes_the_ipv4_form() {
    hash_strategy("");
}

/// `?strategy=rand`: every target is used eventually.
#[test]
fn strategy_rand_eventually_uses_every_target() {
    let dir = config_dir();
    let bs = [TcpBackend::start("127.0.0.1", "b1"), TcpBackend::start("127.0.0.2", "b2"), TcpBackend::start("127.0.0.3", "b3")];
    let targets = names(&[&bs[0], &bs[1], &bs[2]]);
    let (_pw, port, _) = retry(|| {
        let port = free_port("127.0.0.1");
        let url = format!("tcp://127.0.0.1:{port}/{targets}?strategy=rand");
        let (p, l) = launch(portway_cmd(dir.path(), &["-L", &url]), 1)?;
        Ok((p, port, l))
    });
    let addr = v4("127.0.0.1", port);
    let mut seen = BTreeSet::new();
    // P(a target unseen after 60 picks) = 3 * (2/3)^60 ≈ 1e-10.
    for _ in 0..60 {
        seen.insert(hello(addr).unwrap());
        if seen.len() == 3 {
            break;
        }
    }
    assert_eq!(seen, BTreeSet::from(["b1".to_string(), "b2".into(), "b3".into()]));
}

/// `tcp://127.0.0.1:P-P+2/127.0.0.1:Q-Q+2`: three services, service i forwarding
/// port P+i to port Q+i.
#[test]
fn port_range_makes_one_service_per_port_each_with_its_own_target() {
    let dir = config_dir();
    let (_pw, _backends, p, lines) = retry(|| {
        let q = free_port_range("127.0.0.1", 3);
        let mut backends = Vec::new();
        for i in 0..3u16 {
            let b = TcpBackend::start_on(v4("127.0.0.1", q + i), &format!("r{i}"))
                .map_err(|e| format!("backend port taken meanwhile, address already in use: {e}"))?;
            backends.push(b);
        }
        let p = free_port_range("127.0.0.1", 3);
        let url = format!("tcp://127.0.0.1:{}-{}/127.0.0.1:{}-{}", p, p + 2, q, q + 2);
        let (pw, l) = launch(portway_cmd(dir.path(), &["-L", &url]), 3)?;
        Ok((pw, backends, p, l))
    });
    for i in 0..3u16 {
        assert!(
            lines[i as usize].starts_with(&format!("service \"service-{i}\": tcp listening on 127.0.0.1:{} -> 127.0.0.1:", p + i)),
            "{lines:?}"
        );
    }
    for i in 0..3u16 {
        assert_eq!(hello(v4("127.0.0.1", p + i)).unwrap(), format!("r{i}"), "port {}", p + i);
    }
}

/// A port range with a single target: every service shares it (GOST's rule).
#[test]
fn port_range_with_one_target_shares_it() {
    let dir = config_dir();
    let b = TcpBackend::start("127.0.0.4", "shared");
    let (_pw, p, lines) = retry(|| {
        let p = free_port_range("127.0.0.1", 2);
        let url = format!("tcp://127.0.0.1:{}-{}/{}", p, p + 1, b.target());
        let (pw, l) = launch(portway_cmd(dir.path(), &["-L", &url]), 2)?;
        Ok((pw, p, l))
    });
    assert!(lines[1].ends_with(&format!("-> {}", b.target())), "{lines:?}");
    for i in 0..2 {
        assert_eq!(hello(v4("127.0.0.1", p + i)).unwrap(), "shared");
    }
}

/// GOST's default `keepAlive=false`: the session closes right after the first
/// reply, so each request of the same client is a new session (and, with
/// round-robin, goes to the next target). No request may be lost in between.
#[test]
fn udp_without_keepalive_makes_a_session_per_request() {
    let dir = config_dir();
    let us = [UdpBackend::start("127.0.0.1", "u1"), UdpBackend::start("127.0.0.2", "u2"), UdpBackend::start("127.0.0.3", "u3")];
    let targets = us.iter().map(|u| u.target()).collect::<Vec<_>>().join(",");
    let (_pw, port, _) = retry(|| {
        let port = free_udp_port("127.0.0.1");
        let url = format!("udp://127.0.0.1:{port}/{targets}");
        let (p, l) = launch(portway_cmd(dir.path(), &["-L", &url]), 1)?;
        Ok((p, port, l))
    });
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dst = v4("127.0.0.1", port);
    let got: Vec<String> = (0..30).map(|k| udp_ask_once(&c, dst, &format!("req{k}")).unwrap()).collect();
    let want: Vec<&str> = (0..30).map(|k| ["u1", "u2", "u3"][k % 3]).collect();
    assert_eq!(got, want);
    for u in &us {
        assert_eq!(u.sessions(), 10, "{}: a new upstream socket per request", u.name);
    }
}
