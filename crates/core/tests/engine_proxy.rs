//! Proxy services and chains of proxy hops, with real peers on loopback: curl
//! through Portway's socks5 service, Portway's socks5 connector through
//! microsocks, two- and three-hop chains mixing both, failover and the probe.

mod common;
use common::peers::*;
use common::*;
use portway_core::stats::{Event, ServiceState};

fn socks_service(name: &str, auth: &str, chain: &str, md: &str) -> String {
    let auth = if auth.is_empty() { String::new() } else { format!(", auth: {{username: {}, password: {}}}", auth.split(':').next().unwrap_or(""), auth.split(':').nth(1).unwrap_or("")) };
    let chain = if chain.is_empty() { String::new() } else { format!(", chain: {chain}") };
    format!("- name: {name}\n  addr: 127.0.0.1:0\n  handler: {{type: socks5{auth}{chain}, metadata: {{{md}}}}}\n  listener: {{type: tcp}}\n")
}

fn node(name: &str, addr: &str, connector: &str, auth: Option<(&str, &str)>) -> String {
    let auth = auth.map(|(u, p)| format!(", auth: {{username: {u}, password: {p}}}")).unwrap_or_default();
    format!("    - {{name: {name}, addr: \"{addr}\", connector: {{type: {connector}{auth}}}, dialer: {{type: tcp}}}}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_through_a_socks5_service_with_auth() {
    let (web, _w) = http_backend("127.0.0.1", "web").await;
    let e = engine();
    e.apply(cfg(&format!("services:\n{}", socks_service("proxy", "alice:s3cret", "", "")))).await;
    let p = listening(&e, "proxy");
    let (code, out, err) = curl(vec!["--socks5-hostname".into(), p.to_string(), "--proxy-user".into(), "alice:s3cret".into(), format!("http://{web}/hello")]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "web GET /hello HTTP/1.1");
    // A name the proxy resolves.
    let (code, out, err) = curl(vec!["--socks5-hostname".into(), p.to_string(), "--proxy-user".into(), "alice:s3cret".into(), format!("http://localhost:{}/n", web.port())]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("web GET /n"), "{out}");
    let mut rx = e.subscribe();
    let (code, _, err) = curl(vec!["--socks5-hostname".into(), p.to_string(), "--proxy-user".into(), "alice:wrong".into(), format!("http://{web}/")]).await;
    assert_ne!(code, 0, "a wrong password must not get through");
    assert!(err.to_lowercase().contains("user was rejected") || err.contains("authentication"), "{err}");
    // This service's line: other tests' engines log to the same stream.
    let ev = wait_event(&mut rx, |e| matches!(e, Event::Log { line } if line.message.contains("authentication failed") && line.fields.iter().any(|(k, v)| k == "service" && v == "proxy"))).await;
    let Event::Log { line } = ev else { unreachable!() };
    assert!(line.message.contains("\"alice\"") && !line.message.contains("wrong"), "names the user, never the password: {}", line.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_and_three_hop_chains_mixing_portway_and_microsocks() {
    let backend = tcp_backend("127.0.0.1", "far-end").await;
    let (ms, _m) = microsocks("127.0.0.1", Some(("ms", "mspw"))).await;
    let hops = engine();
    hops.apply(cfg(&format!("services:\n{}", socks_service("pw-hop", "u:p", "", "")))).await;
    let pw = listening(&hops, "pw-hop").to_string();

    // you → Portway socks5 → microsocks → target
    let two = format!(
        "services:\n- name: fwd\n  addr: 127.0.0.1:0\n  handler: {{type: tcp, chain: c}}\n  listener: {{type: tcp}}\n  forwarder: {{nodes: [{{name: t, addr: \"{}\"}}]}}\nchains:\n- name: c\n  hops:\n  - name: hop-1\n    nodes:\n{}  - name: hop-2\n    nodes:\n{}",
        backend.addr,
        node("portway", &pw, "socks5", Some(("u", "p"))),
        node("microsocks", &ms.to_string(), "socks5", Some(("ms", "mspw")))
    );
    let e = engine();
    e.apply(cfg(&two)).await;
    let (name, mut s) = tcp_hello(listening(&e, "fwd")).await.expect("two hops");
    assert_eq!(name, "far-end");
    echo(&mut s, &vec![1u8; 300_000]).await.expect("bulk through two hops");
    // The connection list names the last hop's node.
    let conns = e.connections();
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0].node, "microsocks");
    drop(s);

    // you → microsocks → Portway socks5 → Portway socks5 (second instance) → target
    let hops2 = engine();
    hops2.apply(cfg(&format!("services:\n{}", socks_service("pw-hop2", "", "", "")))).await;
    let pw2 = listening(&hops2, "pw-hop2").to_string();
    let three = format!(
        "services:\n- name: fwd\n  addr: 127.0.0.1:0\n  handler: {{type: tcp, chain: c}}\n  listener: {{type: tcp}}\n  forwarder: {{nodes: [{{name: t, addr: \"{}\"}}]}}\nchains:\n- name: c\n  hops:\n  - name: a\n    nodes:\n{}  - name: b\n    nodes:\n{}  - name: c\n    nodes:\n{}",
        backend.addr,
        node("microsocks", &ms.to_string(), "socks5", Some(("ms", "mspw"))),
        node("portway", &pw, "socks5", Some(("u", "p"))),
        node("portway2", &pw2, "socks5", None)
    );
    let e3 = engine();
    e3.apply(cfg(&three)).await;
    let (name, mut s) = tcp_hello(listening(&e3, "fwd")).await.expect("three hops");
    assert_eq!(name, "far-end");
    echo(&mut s, b"three hops").await.expect("echo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_hop_node_fails_over_and_shows_in_health_and_probe() {
    let backend = tcp_backend("127.0.0.1", "target").await;
    let hops = engine();
    hops.apply(cfg(&format!("services:\n{}", socks_service("live", "", "", "")))).await;
    let live = listening(&hops, "live").to_string();
    let dead = format!("127.0.0.208:{}", free_port_on("127.0.0.208"));
    let y = format!(
        "services:\n- name: fwd\n  addr: 127.0.0.1:0\n  handler: {{type: tcp, chain: c, retries: 1}}\n  listener: {{type: tcp}}\n  forwarder: {{nodes: [{{name: t, addr: \"{}\"}}]}}\nchains:\n- name: c\n  hops:\n  - name: hop-0\n    selector: {{strategy: fifo, maxFails: 1, failTimeout: 30s}}\n    nodes:\n{}{}",
        backend.addr,
        node("dead", &dead, "socks5", None),
        node("live", &live, "socks5", None)
    );
    let e = engine();
    e.apply(cfg(&y)).await;
    let (name, _) = tcp_hello(listening(&e, "fwd")).await.expect("failover within the connection (retries: 1)");
    assert_eq!(name, "target");
    let st = e.stats_now();
    let hop = &st[0].hops[0];
    assert_eq!((hop.chain.as_str(), hop.hop.as_str()), ("c", "hop-0"));
    assert_eq!((hop.nodes[0].name.as_str(), hop.nodes[0].fails), ("dead", 1));
    assert!(hop.nodes[0].dead_until.is_some(), "marked dead until failTimeout passes");
    assert_eq!((hop.nodes[1].name.as_str(), hop.nodes[1].fails), ("live", 0));
    // The probe goes the same way and reports the hop that answered.
    let r = e.probe("fwd", None).await.expect("probe");
    assert!(r.ok, "{r:?}");
    assert_eq!(r.hops.len(), 1);
    assert_eq!(r.hops[0].node, "live");

    // Kill the live hop too: the probe names the hop, node and reason.
    hops.shutdown().await;
    let r = e.probe("fwd", None).await.expect("probe");
    assert!(!r.ok);
    let last = r.hops.last().expect("a hop result");
    assert_eq!(last.node, "live");
    assert_eq!(last.error.as_deref(), Some("connection refused"), "{r:?}");
    assert!(r.error.as_deref().unwrap_or("").contains("hop \"hop-0\" node \"live\""), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_names_the_hop_whose_server_refuses_the_login() {
    let backend = tcp_backend("127.0.0.1", "target").await;
    let (ms, _m) = microsocks("127.0.0.1", Some(("ms", "right"))).await;
    let hops = engine();
    hops.apply(cfg(&format!("services:\n{}", socks_service("first", "", "", "")))).await;
    let first = listening(&hops, "first").to_string();
    let y = format!(
        "services:\n- name: fwd\n  addr: 127.0.0.1:0\n  handler: {{type: tcp, chain: c}}\n  listener: {{type: tcp}}\n  forwarder: {{nodes: [{{name: t, addr: \"{}\"}}]}}\nchains:\n- name: c\n  hops:\n  - name: hop-1\n    nodes:\n{}  - name: hop-2\n    nodes:\n{}",
        backend.addr,
        node("portway", &first, "socks5", None),
        node("microsocks", &ms.to_string(), "socks5", Some(("ms", "wrong")))
    );
    let e = engine();
    e.apply(cfg(&y)).await;
    assert_eq!(e.service_status("fwd").expect("status").state, ServiceState::Running);
    let r = e.probe("fwd", None).await.expect("probe");
    assert!(!r.ok);
    assert_eq!(r.hops.len(), 2, "{r:?}");
    assert!(r.hops[0].error.is_none(), "{r:?}");
    let why = r.hops[1].error.clone().unwrap_or_default();
    assert!(why.contains("authentication failed") && why.contains("\"ms\""), "{r:?}");
    let msg = r.error.unwrap_or_default();
    assert!(msg.contains("microsocks") && msg.contains(&ms.to_string()), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_forwarding_through_socks5_and_http_hops_with_udp_true() {
    // Seed: gost -L udp://:10053/127.0.0.1:53 -F socks5://…  with the server
    // `socks5://:1080?udp=true` (and the same over an http hop).
    let dns = udp_backend("127.0.0.1", "dns").await;
    let hops = engine();
    hops.apply(cfg(&format!(
        "services:\n{}- name: http-hop\n  addr: 127.0.0.1:0\n  handler: {{type: http, metadata: {{udp: true}}}}\n  listener: {{type: tcp}}\n",
        socks_service("socks-hop", "u:p", "", "udp: true")
    )))
    .await;
    for (hop, connector, auth) in [("socks-hop", "socks5", Some(("u", "p"))), ("http-hop", "http", None)] {
        let y = format!(
            "services:\n- name: dns\n  addr: 127.0.0.1:0\n  handler: {{type: udp, chain: c}}\n  listener: {{type: udp, metadata: {{keepAlive: true, ttl: 5s}}}}\n  forwarder: {{nodes: [{{name: t, addr: \"{}\"}}]}}\nchains:\n- name: c\n  hops:\n  - name: hop-0\n    nodes:\n{}",
            dns.addr,
            node("n", &listening(&hops, hop).to_string(), connector, auth)
        );
        let e = engine();
        e.apply(cfg(&y)).await;
        let a = listening(&e, "dns");
        let c = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        for i in 0..5 {
            c.send_to(format!("q{i}").as_bytes(), a).await.expect("send");
            let mut buf = [0u8; 1500];
            let (n, _) = tokio::time::timeout(T, c.recv_from(&mut buf)).await.unwrap_or_else(|_| panic!("{connector}: no answer through the hop")).expect("recv");
            assert_eq!(&buf[..n], format!("dns:q{i}").as_bytes(), "{connector}");
        }
        let conns = e.connections();
        assert_eq!(conns.len(), 1, "one session per client: {conns:?}");
        assert_eq!((conns[0].network.as_str(), conns[0].node.as_str()), ("udp", "n"));
    }
    // Without udp=true the hop refuses, and the session says so.
    let strict = engine();
    strict.apply(cfg(&format!("services:\n{}", socks_service("strict", "", "", "")))).await;
    let y = format!(
        "services:\n- name: dns\n  addr: 127.0.0.1:0\n  handler: {{type: udp, chain: c}}\n  listener: {{type: udp}}\n  forwarder: {{nodes: [{{name: t, addr: \"{}\"}}]}}\nchains:\n- name: c\n  hops:\n  - name: hop-0\n    nodes:\n{}",
        dns.addr,
        node("n", &listening(&strict, "strict").to_string(), "socks5", None)
    );
    let e = engine();
    e.apply(cfg(&y)).await;
    let mut rx = e.subscribe();
    let c = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    c.send_to(b"q", listening(&e, "dns")).await.expect("send");
    // The client's own log line (other engines in this process log to the same stream).
    let ev = wait_event(&mut rx, |e| matches!(e, Event::Log { line } if line.message.contains("chain") && line.fields.iter().any(|(k, v)| k == "service" && v == "dns"))).await;
    let Event::Log { line } = ev else { unreachable!() };
    assert!(line.message.contains("refused UDP-TUN") && line.message.contains("not allowed"), "{}", line.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_through_http_and_auto_services_with_a_socks5_upstream_chain() {
    // The most common GOST setup: a local proxy whose traffic leaves through a chain.
    let (web, _w) = http_backend("127.0.0.1", "web").await;
    let (ms, _m) = microsocks("127.0.0.1", None).await;
    let y = format!(
        "services:\n- name: http\n  addr: 127.0.0.1:0\n  handler: {{type: http, chain: up, auth: {{username: u, password: p}}}}\n  listener: {{type: tcp}}\n- name: auto\n  addr: 127.0.0.1:0\n  handler: {{type: auto, chain: up}}\n  listener: {{type: tcp}}\nchains:\n- name: up\n  hops:\n  - name: hop-0\n    nodes:\n{}",
        node("microsocks", &ms.to_string(), "socks5", None)
    );
    let e = engine();
    e.apply(cfg(&y)).await;
    let http = listening(&e, "http");
    let auto = listening(&e, "auto");
    // Plain proxying and CONNECT, with the proxy's credentials.
    let (code, out, err) = curl(vec!["-x".into(), format!("http://u:p@{http}"), format!("http://{web}/plain")]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "web GET /plain HTTP/1.1");
    let (code, out, err) = curl(vec!["-p".into(), "-x".into(), format!("http://u:p@{http}"), format!("http://{web}/tunnel")]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "web GET /tunnel HTTP/1.1");
    let (code, out, _) = curl(vec!["-s".into(), "-o".into(), "/dev/null".into(), "-w".into(), "%{http_code}".into(), "-x".into(), format!("http://u:bad@{http}"), format!("http://{web}/")]).await;
    assert_eq!((code, out.as_str()), (0, "407"));
    // auto: SOCKS5, SOCKS4a and HTTP on one port.
    for flag in ["--socks5-hostname", "--socks4a", "-x"] {
        let proxy = if flag == "-x" { format!("http://{auto}") } else { auto.to_string() };
        let (code, out, err) = curl(vec![flag.into(), proxy, format!("http://{web}/{}", flag.trim_start_matches('-'))]).await;
        assert_eq!(code, 0, "{flag}: {err}");
        assert!(out.starts_with("web GET /"), "{flag}: {out}");
    }
    let st = e.stats_now();
    assert!(st.iter().all(|s| s.bytes_out > 0), "bytes counted: {st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_dials_every_target_and_names_the_dead_one() {
    let a = tcp_backend("127.0.0.1", "a").await;
    let b = tcp_backend("127.0.0.1", "b").await;
    let dead = format!("127.0.0.1:{}", free_port());
    let hops = engine();
    hops.apply(cfg(&format!("services:\n{}", socks_service("hop", "", "", "")))).await;
    let hop = listening(&hops, "hop").to_string();
    let y = format!(
        "services:\n- name: fwd\n  addr: 127.0.0.1:0\n  handler: {{type: tcp, chain: c}}\n  listener: {{type: tcp}}\n  forwarder: {{nodes: [{{name: a, addr: \"{}\"}}, {{name: dead, addr: \"{dead}\"}}, {{name: b, addr: \"{}\"}}]}}\nchains:\n- name: c\n  hops:\n  - name: hop-0\n    nodes:\n{}",
        a.addr,
        b.addr,
        node("hop", &hop, "socks5", None)
    );
    let e = engine();
    e.apply(cfg(&y)).await;
    let r = e.probe("fwd", None).await.expect("probe");
    assert!(!r.ok, "one target of three is down: {r:?}");
    let seen: Vec<(String, bool)> = r.targets.iter().map(|t| (t.target.clone(), t.ok)).collect();
    assert_eq!(seen, vec![(a.addr.to_string(), true), (dead.clone(), false), (b.addr.to_string(), true)]);
    // The route shown is the failing target's: the hop answered, the target did not.
    assert_eq!(r.target, dead);
    assert!(r.hops[0].error.is_none(), "{r:?}");
    assert!(r.error.clone().unwrap_or_default().contains(&dead), "{r:?}");
    // Asked for one target, only that one is dialled.
    let r = e.probe("fwd", Some(&b.addr.to_string())).await.expect("probe");
    assert!(r.ok && r.targets.is_empty(), "{r:?}");
    // Without a chain the targets are dialled directly.
    let direct = format!(
        "services:\n- name: fwd\n  addr: 127.0.0.1:0\n  handler: {{type: tcp}}\n  listener: {{type: tcp}}\n  forwarder: {{nodes: [{{name: a, addr: \"{}\"}}, {{name: dead, addr: \"{dead}\"}}]}}\n",
        a.addr
    );
    e.apply(cfg(&direct)).await;
    let r = e.probe("fwd", None).await.expect("probe");
    assert_eq!(r.targets.iter().map(|t| t.ok).collect::<Vec<_>>(), vec![true, false], "{r:?}");
    assert_eq!(r.targets[1].error.as_deref().map(|e| e.contains("refused")), Some(true), "{r:?}");
}
