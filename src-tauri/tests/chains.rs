//! The Chains view's commands against real engines and real sockets: the hops are
//! real Portway socks5 services run in-process by a second engine, the rule's
//! target a real echo server, the profile a real folder.

mod common;
use common::*;

use portway_core::config::load_str;
use portway_core::Engine;
use portway_ipc::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A backend on an empty profile: nothing else listens or uses a chain.
fn backend(dir: &std::path::Path) -> portway_app::backend::Backend {
    let b = common::backend(dir);
    b.profile_create("chains").expect("profile");
    b
}

/// Two Portway socks5 proxies on free ports, in their own engine and runtime; the
/// second one wants user `u`, password `p`.
struct Hops {
    rt: tokio::runtime::Runtime,
    engine: Engine,
    a: SocketAddr,
    b: SocketAddr,
}

impl Hops {
    fn start() -> Hops {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let engine = {
            let _g = rt.enter();
            Engine::new()
        };
        let yaml = "services:\n- name: hop-a\n  addr: 127.0.0.1:0\n  handler: {type: socks5}\n  listener: {type: tcp}\n- name: hop-b\n  addr: 127.0.0.1:0\n  handler: {type: socks5, auth: {username: u, password: p}}\n  listener: {type: tcp}\n";
        let cfg = load_str("hops.yaml", yaml).expect("hops config").config;
        let e = engine.clone();
        let report = rt.block_on(async move { e.apply(cfg).await });
        assert!(report.failed.is_empty(), "{report:?}");
        let at = |n: &str| engine.service_status(n).and_then(|s| s.listening.first().copied()).unwrap_or_else(|| panic!("{n} listens"));
        let (a, b) = (at("hop-a"), at("hop-b"));
        Hops { rt, engine, a, b }
    }

    fn stop(&self, name: &str) {
        let e = self.engine.clone();
        let n = name.to_string();
        self.rt.block_on(async move { e.stop(&n).await }).expect("stopped");
    }
}

impl Drop for Hops {
    fn drop(&mut self) {
        let e = self.engine.clone();
        self.rt.block_on(async move { e.shutdown().await });
    }
}

fn node(name: &str, addr: SocketAddr, user: &str, pass: &str) -> NodeDraft {
    NodeDraft {
        name: name.into(),
        protocol: "socks5".into(),
        transport: "tcp".into(),
        addr: addr.to_string(),
        username: user.into(),
        password: pass.into(),
        options: Vec::new(),
        origin: None,
    }
}

fn hop(name: &str, n: NodeDraft) -> HopDraft {
    HopDraft { name: name.into(), strategy: "round".into(), max_fails: 1, fail_timeout_secs: 30, nodes: vec![n], shared: false, origin: None }
}

fn two_hops(h: &Hops, pass: &str) -> ChainDraft {
    ChainDraft { name: "via-two".into(), hops: vec![hop("hop-0", node("a", h.a, "", "")), hop("hop-1", node("b", h.b, "u", pass))] }
}

fn rule(name: &str, port: u16, target: SocketAddr, chain: &str) -> RuleDraft {
    RuleDraft {
        name: name.into(),
        kind: RuleKindDto::LocalTcp,
        listen: format!("127.0.0.1:{port}"),
        targets: vec![target.to_string()],
        strategy: "round".into(),
        max_fails: 1,
        fail_timeout_secs: 10,
        keep_alive: false,
        ttl_secs: 5,
        chain: chain.into(),
    }
}

fn echo_round_trip(s: &mut TcpStream, payload: &[u8]) {
    s.write_all(payload).expect("write");
    let mut back = vec![0u8; payload.len()];
    s.read_exact(&mut back).expect("echo");
    assert_eq!(back, payload);
}

/// The first frame within 20 s that `pick` accepts.
fn frame_where<T>(rx: &mpsc::Receiver<StatsFrame>, what: &str, mut pick: impl FnMut(&StatsFrame) -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = None;
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(f) => {
                if let Some(v) = pick(&f) {
                    return v;
                }
                last = Some(f);
            }
            Err(_) => panic!("no frame with {what} within 20 s; last: {last:?}"),
        }
    }
}

fn node_health<'a>(f: &'a StatsFrame, chain: &str, hop: usize) -> Option<&'a NodeHealthView> {
    f.chains.iter().find(|c| c.chain == chain)?.hops.get(hop)?.nodes.first()
}

#[test]
fn a_two_hop_chain_made_in_the_form_carries_bytes_and_the_probe_names_the_broken_hop() {
    let dir = tempfile::tempdir().expect("tmp");
    let b = backend(dir.path());
    let hops = Hops::start();
    let target = echo_backend("far");

    // Wrong password on hop 2: saved (the form cannot know), the probe says where.
    let s = b.chain_save(two_hops(&hops, "wrong"), None).expect("saved");
    assert_eq!(s.chains, vec!["via-two"], "the rule editor's picker lists it");
    let port = free_port();
    b.rule_save(rule("through", port, target, "via-two"), None).expect("rule saved");
    let p = b.chain_probe("through").expect("probe");
    assert!(!p.ok, "{p:?}");
    let broken = p.hops.last().expect("a step");
    assert_eq!((broken.index, broken.addr.as_str()), (Some(1), hops.b.to_string().as_str()), "{p:?}");
    assert!(broken.error.as_deref().unwrap_or("").contains("auth"), "{p:?}");
    assert_eq!(p.hops[0].error, None, "hop 1 was fine: {p:?}");

    // Edit the password in place: bytes pass through both hops to the target.
    let listed = b.chains_list().expect("list");
    let mut d = listed[0].chain.clone();
    assert_eq!(listed[0].used_by, vec!["through"]);
    assert_eq!(d.hops[1].nodes[0].password, "wrong");
    d.hops[1].nodes[0].password = "p".into();
    b.chain_save(d, Some("via-two".into())).expect("saved");
    let (tx, rx) = mpsc::channel();
    b.stream_stats(move |f| tx.send(f).is_ok());
    let (who, mut conn) = hello(port).expect("through the chain");
    assert_eq!(who, "far");
    echo_round_trip(&mut conn, &[7u8; 50_000]);
    let ok = frame_where(&rx, "hop 2 healthy", |f| node_health(f, "via-two", 1).filter(|n| n.successes >= 1 && n.fails == 0).cloned());
    assert_eq!(ok.addr, hops.b.to_string());
    let p = b.chain_probe("through").expect("probe");
    assert!(p.ok && p.hops.iter().all(|h| h.error.is_none()), "{p:?}");
    assert_eq!(p.target, target.to_string());
    drop(conn);

    // Hop 2 goes away: a connection attempt fails, the stream marks the node dead,
    // the probe names hop 2 and its address.
    hops.stop("hop-b");
    if let Ok((_, mut c)) = hello(port) {
        let mut b1 = [0u8; 1];
        let _ = c.read(&mut b1);
    }
    let dead = frame_where(&rx, "hop 2 dead", |f| node_health(f, "via-two", 1).filter(|n| n.fails >= 1 && n.dead_until.is_some()).cloned());
    assert!(dead.dead_until.unwrap_or(0) > (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64));
    let hop1 = frame_where(&rx, "hop 1 still fine", |f| node_health(f, "via-two", 0).cloned());
    assert_eq!(hop1.dead_until, None, "{hop1:?}");
    let p = b.chain_probe("through").expect("probe");
    assert!(!p.ok);
    let broken = p.hops.last().expect("a step");
    assert_eq!((broken.index, broken.addr.as_str()), (Some(1), hops.b.to_string().as_str()), "{p:?}");
    assert!(p.error.as_deref().unwrap_or("").contains(&hops.b.to_string()), "{p:?}");
    b.shutdown();
}

#[test]
fn saving_a_chain_leaves_rules_that_do_not_use_it_connected() {
    let dir = tempfile::tempdir().expect("tmp");
    let b = backend(dir.path());
    let hops = Hops::start();
    let target = echo_backend("direct");
    let port = free_port();
    b.rule_save(rule("direct", port, target, ""), None).expect("rule");
    b.chain_save(two_hops(&hops, "p"), None).expect("chain");
    let (_, mut conn) = hello(port).expect("direct");
    let mut d = b.chains_list().expect("list")[0].chain.clone();
    d.hops.remove(1);
    d.name = "via-one".into();
    let s = b.chain_save(d, Some("via-two".into())).expect("renamed");
    assert_eq!(s.chains, vec!["via-one"]);
    echo_round_trip(&mut conn, b"still here");
    b.shutdown();
}

#[test]
fn deleting_a_chain_in_use_is_refused_naming_the_rules() {
    let dir = tempfile::tempdir().expect("tmp");
    let b = backend(dir.path());
    let hops = Hops::start();
    let target = echo_backend("t");
    b.chain_save(two_hops(&hops, "p"), None).expect("chain");
    b.rule_save(rule("r1", free_port(), target, "via-two"), None).expect("r1");
    b.rule_save(rule("r2", free_port(), target, "via-two"), None).expect("r2");
    let e = b.chain_delete("via-two").expect_err("in use");
    assert_eq!(e.code, ErrorCode::Invalid);
    assert!(e.message.contains("\"r1\"") && e.message.contains("\"r2\""), "{}", e.message);
    assert!(std::fs::read_to_string(dir.path().join("profiles/chains.yaml")).expect("file").contains("via-two"));
    // A copy nobody uses can go.
    let s = b.chain_duplicate("via-two").expect("copy");
    assert_eq!(s.chains, vec!["via-two", "via-two-2"]);
    let s = b.chain_delete("via-two-2").expect("deleted");
    assert_eq!(s.chains, vec!["via-two"]);
    b.shutdown();
}

#[test]
fn a_bad_node_address_is_refused_naming_the_field_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tmp");
    let b = backend(dir.path());
    let hops = Hops::start();
    let before = std::fs::read_to_string(dir.path().join("profiles/chains.yaml")).expect("file");
    let mut d = two_hops(&hops, "p");
    d.hops[1].nodes[0].addr = "127.0.0.1".into();
    let e = b.chain_save(d.clone(), None).expect_err("no port");
    assert_eq!((e.code, e.field.as_deref(), e.message.as_str()), (ErrorCode::Invalid, Some("hops.1.nodes.0.addr"), "address needs a port"));
    d.hops[1].nodes[0].addr = "127.0.0.1:99999".into();
    assert_eq!(b.chain_save(d.clone(), None).expect_err("bad port").field.as_deref(), Some("hops.1.nodes.0.addr"));
    d.hops[1].nodes[0].addr = hops.b.to_string();
    d.hops[0].nodes[0].protocol = "gopher".into();
    assert_eq!(b.chain_save(d, None).expect_err("protocol").field.as_deref(), Some("hops.0.nodes.0.protocol"));
    assert_eq!(std::fs::read_to_string(dir.path().join("profiles/chains.yaml")).expect("file"), before);
    assert!(b.snapshot().expect("snapshot").chains.is_empty());
    b.shutdown();
}

#[test]
fn keys_the_form_does_not_show_survive_an_edit() {
    let dir = tempfile::tempdir().expect("tmp");
    let b = backend(dir.path());
    let yaml = "\
chains:
- name: keep
  metadata: {owner: ops}
  hops:
  - name: hop-0
    bypass: local-nets
    nodes:
    - name: edge
      addr: 127.0.0.1:1080
      connector:
        type: http
        metadata:
          header: {X-Team: blue}
          keepalive: 'true'
      dialer:
        type: tls
        tls: {serverName: edge.example, options: {minVersion: VersionTLS12}}
      metadata: {weight: 3}
      interface: eth9
";
    b.profile_import(yaml, Some("keep.yaml"), "keep").expect("imported");
    let v = b.chains_list().expect("list");
    let n = &v[0].chain.hops[0].nodes[0];
    assert_eq!((n.protocol.as_str(), n.transport.as_str()), ("http", "tls"));
    let keys: Vec<&str> = n.options.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, vec!["serverName", "keepalive", "node.weight"]);
    for k in ["metadata.owner", "hops.0: bypass", "hops.0.nodes.0: interface", "hops.0.nodes.0: connector.metadata.header", "hops.0.nodes.0: tls.options"] {
        assert!(v[0].kept.iter().any(|x| x == k), "{k} listed in {:?}", v[0].kept);
    }
    // Change the address and one option, add a login.
    let mut d = v[0].chain.clone();
    let n = &mut d.hops[0].nodes[0];
    n.addr = "127.0.0.1:3128".into();
    n.username = "me".into();
    n.password = "secret".into();
    n.options.retain(|o| o.key != "keepalive");
    n.options.push(NodeOption { key: "udp".into(), value: "true".into() });
    b.chain_save(d, Some("keep".into())).expect("saved");
    let text = std::fs::read_to_string(dir.path().join("profiles/keep.yaml")).expect("file");
    let c = load_str("k.yaml", &text).expect("parses").config;
    let node = &c.chains[0].hops[0].nodes[0];
    assert_eq!(node.addr, "127.0.0.1:3128");
    assert_eq!(c.chains[0].metadata.get_string(&["owner"]).as_deref(), Some("ops"), "{text}");
    assert!(c.chains[0].hops[0].extra.contains_key("bypass"), "{text}");
    assert!(node.extra.contains_key("interface"), "{text}");
    let conn = node.connector.as_ref().expect("connector");
    assert_eq!(conn.metadata.get_string_map(&["header"]), vec![("X-Team".to_string(), "blue".to_string())], "{text}");
    assert!(conn.metadata.get(&["keepalive"]).is_none(), "removed option is gone: {text}");
    assert_eq!(conn.metadata.get_string(&["udp"]).as_deref(), Some("true"));
    assert_eq!(conn.auth.as_ref().map(|a| (a.username.as_str(), a.password.as_str())), Some(("me", "secret")));
    let tls = node.dialer.as_ref().and_then(|d| d.tls.as_ref()).expect("tls kept");
    assert_eq!(tls.server_name, "edge.example");
    assert!(tls.extra.contains_key("options"), "{text}");
    assert_eq!(node.metadata.get_int(&["weight"]).expect("int"), Some(3));
    b.shutdown();
}
