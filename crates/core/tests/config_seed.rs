//! The GOST port-forwarding guide Portway is built from (`../shared/seeds/
//! gost-port-forwarding.txt`): each `gost …` command in it, built with our `-L`/`-F`
//! grammar and printed as `-O yaml`, loads to the same configuration as the YAML the
//! guide shows under it — after a normalisation, documented below, for the ways GOST's
//! real `-O yaml` output differs from the hand-written docs (shared/reference/
//! gost-compat.md §2.2) and for the docs' known errata (§2.2, §8). Commands the guide
//! shows without YAML are checked on what they build. 192.168.1.x becomes 127.0.0.x.
//!
//! The seed is read in place at test time; when it is missing this test fails.

mod gost_cmdline;

use gost_cmdline::parse_gost_line;
use portway_core::config::validate::plan_service;
use portway_core::config::{build_from_cmd, load_str, Config, Metadata};
use serde_yaml::Value;
use std::path::{Path, PathBuf};

fn seed_text() -> String {
    let shared = match std::env::var_os("PORTWAY_SHARED") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    let p = shared.join("seeds/gost-port-forwarding.txt");
    std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!("the seed document is missing: {} ({e}); set PORTWAY_SHARED to the folder holding seeds/", p.display())
    })
}

/// One command of the guide and the YAML printed right after it (if any).
#[derive(Debug, Clone)]
struct Pair {
    /// 1-based line of the command in the seed.
    line: usize,
    cmd: String,
    yaml: Option<String>,
}

/// A YAML line of the guide: indented, a list item, or `key:` at the margin.
fn is_yaml_line(l: &str) -> bool {
    if l.trim().is_empty() {
        return false;
    }
    if l.starts_with(' ') || l.starts_with('-') {
        return true;
    }
    match l.split_once(':') {
        Some((k, rest)) => {
            !k.is_empty()
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
                && (rest.is_empty() || rest.starts_with(' '))
        }
        None => false,
    }
}

/// Finds every `gost …` line (also the indented ones in bullet lists) and the YAML
/// block after it: from the next line up to the first line that is not YAML (the
/// guide separates blocks from prose by a blank line).
fn pairs(seed: &str) -> Vec<Pair> {
    let lines: Vec<&str> = seed.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if !l.trim_start().starts_with("gost ") {
            continue;
        }
        let mut j = i + 1;
        let mut block = Vec::new();
        while j < lines.len() && is_yaml_line(lines[j]) && !lines[j].trim_start().starts_with("gost ") {
            block.push(lines[j]);
            j += 1;
        }
        let yaml = if block.is_empty() { None } else { Some(block.join("\n") + "\n") };
        out.push(Pair { line: i + 1, cmd: l.trim().to_string(), yaml });
    }
    out
}

/// Addresses are rewritten to loopback before anything uses them.
fn loopback(s: &str) -> String {
    s.replace("192.168.1.", "127.0.0.")
}

fn build(pair: &Pair) -> Config {
    let cmd = loopback(&pair.cmd);
    let args = parse_gost_line(&cmd).unwrap_or_else(|e| panic!("seed line {}: {e}", pair.line));
    build_from_cmd(&args.services, &args.nodes).unwrap_or_else(|e| panic!("seed line {}: {cmd}: {e}", pair.line))
}

/// Our `-O yaml`, loaded back; it must be the config we built.
fn ours_via_yaml(pair: &Pair) -> Config {
    let built = build(pair);
    let yaml = built.to_yaml();
    let loaded = load_str("ours.yaml", &yaml).unwrap_or_else(|e| panic!("seed line {}: our YAML: {e}\n{yaml}", pair.line));
    assert!(loaded.warnings.is_empty(), "seed line {}: our own YAML warns: {:?}", pair.line, loaded.warnings);
    assert_eq!(loaded.config, built, "seed line {}: -O yaml does not load back to the same config", pair.line);
    loaded.config
}

fn seed_config(pair: &Pair) -> Config {
    let yaml = loopback(pair.yaml.as_deref().expect("a pair with YAML"));
    let loaded = load_str(&format!("seed line {}", pair.line + 1), &yaml)
        .unwrap_or_else(|e| panic!("seed line {}: the guide's YAML does not load: {e}\n{yaml}", pair.line));
    assert!(loaded.warnings.is_empty(), "seed line {}: the guide's YAML warns: {:?}", pair.line, loaded.warnings);
    loaded.config
}

/// Metadata values compared as text: CLI query values are strings (`-O yaml` prints
/// `keepAlive: "true"`), the docs write YAML scalars (`keepAlive: true`); GOST reads
/// both the same way (gost-compat.md §2.2, §2.4).
fn stringify(md: &mut Metadata) {
    for v in md.0.values_mut() {
        let s = match v {
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            _ => continue,
        };
        *v = Value::String(s);
    }
}

fn hostname(addr: &str) -> &str {
    match addr.rfind(':') {
        Some(i) => addr[..i].trim_start_matches('[').trim_end_matches(']'),
        None => addr,
    }
}

/// The normalisation both sides go through before comparing (gost-compat.md §2.2):
/// 1. metadata values as text (above);
/// 2. the CLI copies query parameters into handler, listener *and* service metadata
///    while the docs show only the listener's: listener metadata is compared exactly,
///    and handler/service metadata may equal the listener's (then it is dropped);
/// 3. the CLI sets `dialer.tls.serverName` to the node host (the docs omit it): a tls
///    block holding only that is dropped.
fn normalise(c: &mut Config) {
    for s in &mut c.services {
        stringify(&mut s.metadata);
        stringify(&mut s.handler.metadata);
        stringify(&mut s.listener.metadata);
        if !s.handler.metadata.is_empty() && s.handler.metadata == s.listener.metadata {
            s.handler.metadata = Metadata::default();
        }
        if !s.metadata.is_empty() && s.metadata == s.listener.metadata {
            s.metadata = Metadata::default();
        }
    }
    for ch in &mut c.chains {
        for hop in &mut ch.hops {
            for n in &mut hop.nodes {
                let host = hostname(&n.addr).to_string();
                if let Some(d) = n.dialer.as_mut() {
                    let only_server_name = d.tls.as_ref().is_some_and(|t| {
                        t.server_name == host
                            && t.cert_file.is_empty()
                            && t.key_file.is_empty()
                            && t.ca_file.is_empty()
                            && !t.secure
                            && t.extra.is_empty()
                    });
                    if only_server_name {
                        d.tls = None;
                    }
                }
            }
        }
    }
}

/// The guide's known errata (gost-compat.md §2.2 "Examples" and §8 "Known docs
/// errata"), fixed on the guide's side before comparing. Each must still be present
/// in the seed: if the seed is corrected, this test says so.
fn apply_errata(pair: &Pair, seed: &mut Config) -> Option<&'static str> {
    if pair.cmd == "gost -L tls://:8443/192.168.1.1:80" {
        // §2.2/§8: "server-side forwarding server YAML says `addr: :8080` for
        // `tls://:8443`" — a docs typo; the service listens on :8443.
        let s = &mut seed.services[0];
        assert_eq!(s.addr, ":8080", "seed line {}: erratum gone? the guide now says {}", pair.line, s.addr);
        s.addr = ":8443".into();
        return Some("server-side forwarding server: addr :8080 for tls://:8443");
    }
    if pair.cmd == "gost -L=tcp://:8080 -F forward+tls://:8443" {
        // §2.2/§8: "client YAML puts the chain on the `tcp` listener" — a tcp listener
        // ignores its chain; GOST's CLI (and Portway) put it on the handler.
        let s = &mut seed.services[0];
        assert_eq!(s.listener.chain, "chain-0", "seed line {}: erratum gone?", pair.line);
        assert!(s.handler.chain.is_empty());
        s.handler.chain = std::mem::take(&mut s.listener.chain);
        return Some("server-side forwarding client: chain on the tcp listener");
    }
    None
}

#[test]
fn the_seed_holds_the_commands_we_expect() {
    let all = pairs(&seed_text());
    let with_yaml = all.iter().filter(|p| p.yaml.is_some()).count();
    assert_eq!(all.len(), 18, "gost commands found in the seed: {all:#?}");
    assert_eq!(with_yaml, 14, "commands followed by YAML: {all:#?}");
    // Every YAML block starts at `services:` and is a whole document.
    for p in all.iter().filter(|p| p.yaml.is_some()) {
        let y = p.yaml.as_deref().unwrap_or_default();
        assert!(y.starts_with("services:\n"), "seed line {}: block starts {:?}", p.line, y.lines().next());
    }
}

#[test]
fn every_seed_command_gives_the_yaml_the_guide_shows() {
    let mut compared = 0;
    let mut errata = Vec::new();
    for pair in pairs(&seed_text()).iter().filter(|p| p.yaml.is_some()) {
        let mut ours = ours_via_yaml(pair);
        let mut seed = seed_config(pair);
        if let Some(e) = apply_errata(pair, &mut seed) {
            errata.push(e);
        }
        normalise(&mut ours);
        normalise(&mut seed);
        assert_eq!(ours, seed, "seed line {}: {}\nours:\n{}\nguide:\n{}", pair.line, pair.cmd, ours.to_yaml(), seed.to_yaml());
        compared += 1;
    }
    assert_eq!(compared, 14);
    assert_eq!(errata.len(), 2, "both documented errata were met: {errata:?}");
}

/// What the normalisation hides is really there in our output, as gost-compat.md §2.2
/// says GOST prints it (so the normalisation cannot mask a missing feature).
#[test]
fn cli_output_carries_what_the_docs_leave_out() {
    let all = pairs(&seed_text());
    let find = |prefix: &str| {
        all.iter().find(|p| p.cmd.starts_with(prefix)).unwrap_or_else(|| panic!("no seed command starts with {prefix:?}"))
    };
    let udp = build(find("gost -L udp://:10053/"));
    let s = &udp.services[0];
    for md in [&s.handler.metadata, &s.listener.metadata, &s.metadata] {
        assert_eq!(md.0.get("keepAlive"), Some(&Value::String("true".into())), "{md:?}");
        assert_eq!(md.0.get("ttl"), Some(&Value::String("5s".into())), "{md:?}");
    }
    let ssh = build(find("gost -L=tcp://:8080/192.168.1.1:80 -F sshd://"));
    let d = ssh.chains[0].hops[0].nodes[0].dialer.as_ref().expect("a dialer");
    assert_eq!(d.tls.as_ref().map(|t| t.server_name.as_str()), Some("127.0.0.2"));
    assert_eq!(d.auth.as_ref().map(|a| a.password.as_str()), Some("pass"));
    let client = build(find("gost -L=tcp://:8080 -F forward+tls://:8443"));
    assert!(client.chains[0].hops[0].nodes[0].dialer.as_ref().is_some_and(|d| d.tls.is_none()), "no host, no serverName");
    assert_eq!(client.services[0].handler.chain, "chain-0");
    assert!(client.services[0].forwarder.is_none());
}

/// Our plan (what Portway would run) agrees with the guide's YAML for each command:
/// local TCP/UDP forwarding runs; the rest is refused naming the service.
#[test]
fn seed_commands_plan_like_the_guide_yaml() {
    let mut runs = Vec::new();
    for pair in pairs(&seed_text()).iter().filter(|p| p.yaml.is_some()) {
        let ours = ours_via_yaml(pair);
        let mut seed = seed_config(pair);
        apply_errata(pair, &mut seed);
        for (a, b) in ours.services.iter().zip(&seed.services) {
            let (pa, pb) = (plan_service(&ours, a), plan_service(&seed, b));
            assert_eq!(pa.is_ok(), pb.is_ok(), "seed line {}: ours {pa:?} vs guide {pb:?}", pair.line);
            match pa {
                Ok(_) => runs.push(pair.line),
                Err(e) => assert!(e.contains(&format!("{:?}", a.name)), "seed line {}: {e}", pair.line),
            }
        }
    }
    // Every command of the guide: local TCP/UDP forwarding (one and several
    // targets), through a socks5 hop and an SSH hop, Portway's SSH server, rtcp
    // and rudp without and with a chain (socks5, SSH), and server-side forwarding.
    assert_eq!(runs, [13, 30, 57, 85, 112, 160, 190, 206, 223, 248, 275, 323, 359, 374], "seed commands Portway runs today");
}

/// The four commands the guide gives without YAML (remote ends of a chain): each is
/// built and checked on what it says.
#[test]
fn seed_commands_without_yaml_build_what_they_say() {
    let all = pairs(&seed_text());
    let bare: Vec<&Pair> = all.iter().filter(|p| p.yaml.is_none()).collect();
    let cmds: Vec<&str> = bare.iter().map(|p| p.cmd.as_str()).collect();
    assert_eq!(
        cmds,
        [
            "gost -L http://:8080?udp=true",
            "gost -L socks5://:1080?udp=true",
            "gost -L socks5://:1080?bind=true",
            // Erratum (gost-compat.md §8): the guide means the *relay* remote end,
            // `relay://:8421?bind=true`; as printed it is a second socks5 server.
            "gost -L socks5://:8421?bind=true",
        ]
    );
    let want = [("http", ":8080", "udp"), ("socks5", ":1080", "udp"), ("socks5", ":1080", "bind"), ("socks5", ":8421", "bind")];
    for (p, (handler, addr, key)) in bare.iter().zip(want) {
        let c = build(p);
        let s = &c.services[0];
        assert_eq!((s.handler.kind.as_str(), s.listener.kind.as_str(), s.addr.as_str()), (handler, "tcp", addr), "{}", p.cmd);
        assert_eq!(s.handler.metadata.get_bool(&[key]), Ok(Some(true)), "{}", p.cmd);
        assert!(s.forwarder.is_none() && c.chains.is_empty(), "{}", p.cmd);
        let plan = plan_service(&c, s).unwrap_or_else(|e| panic!("{}: {e}", p.cmd));
        assert_eq!(plan.handler, handler);
        assert!(plan.is_proxy() && plan.targets.is_empty(), "{}", p.cmd);
    }
}

#[test]
fn seed_block_extraction_stops_at_prose() {
    let text = "intro\n\ngost -L tcp://:1/a:2\nservices:\n- name: x\n  addr: :1\nMap the port.\n  gost -L socks5://:1080\n  \nafter\n";
    let p = pairs(text);
    assert_eq!(p.len(), 2);
    assert_eq!(p[0].yaml.as_deref(), Some("services:\n- name: x\n  addr: :1\n"));
    assert_eq!(p[0].line, 3);
    assert!(p[1].yaml.is_none());
}
