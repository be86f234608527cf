//! Every real-world GOST file in `../shared/corpus/gost-configs/` (README "Tests"): each
//! either loads — and then every service plans or is refused naming the service, and
//! the config survives `-O yaml` / `-O json` and back unchanged — or is refused with a
//! message naming the line, key or type at fault. The same for every command line in
//! `cmdlines.txt`. Outcomes are pinned per file, so a regression either way fails.
//!
//! The corpus is read in place (never copied into the repository). It lives beside the
//! repository (`$PORTWAY_SHARED` overrides the folder holding `corpus/`); when it is
//! missing this test fails rather than skipping.

mod gost_cmdline;

use gost_cmdline::parse_gost_line;
use portway_core::config::validate::plan_service;
use portway_core::config::{build_from_cmd, load_str, Config, LoadError, Loaded};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn shared_dir() -> PathBuf {
    match std::env::var_os("PORTWAY_SHARED") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

fn corpus_dir() -> PathBuf {
    let d = shared_dir().join("corpus/gost-configs");
    assert!(
        d.join("SOURCES.md").is_file(),
        "the GOST corpus is missing: expected {} (set PORTWAY_SHARED to the folder that holds corpus/); \
         this test does not skip",
        d.display()
    );
    d
}

/// What a corpus file must do.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Loads; each listed text must appear in some warning's `path: message`.
    Load { warns: &'static [&'static str] },
    /// Is refused on this line, and the error's text holds each listed fragment.
    Refuse { line: usize, says: &'static [&'static str] },
}
use Expect::*;

/// Outcome per file, checked against SOURCES.md's "Parses?" column and notes. Every
/// file SOURCES says GOST parses loads here; the refused ones are the files SOURCES
/// marks PARSE ERROR, the FRAGMENT (a bare list GOST cannot read either) and the v2 files.
const EXPECTED: &[(&str, Expect)] = &[
    ("chengbo-tls-terminating-tcp-forward-and-https-proxy.yaml", Load { warns: &["authers"] }),
    ("chineseholmes-socks5-ws-hop-bypasses.yml", Load { warns: &["chains[0].hops[0].bypasses", "bypasses"] }),
    // `matchers:` given as a bare multi-line scalar: the error names the key it is under.
    ("cn-domain-list-https-proxy-bypass-files-MALFORMED.yml", Refuse { line: 28, says: &["bypasses[2].matchers", "YAML"] }),
    ("deyroute-hub-relay-wss-bind-flowstyle.yaml", Load { warns: &["services[0].bypass", "listener.tls.options", "log"] }),
    ("deyroute-node-rtcp-rudp-via-relay-wss-flowstyle.yaml", Load { warns: &["dialer.tls.options"] }),
    ("docs-relay-bind-server.yaml", Load { warns: &[] }),
    ("docs-rtcp-rudp-via-relay-client.yaml", Load { warns: &[] }),
    ("e7h4n-http2-proxy-unreferenced-chain-hop-bypass.yaml", Load { warns: &["chains[0].hops[0].bypass"] }),
    ("fly-easytier-trojan-ws.yaml", Load { warns: &[] }),
    ("frankliang-tcp-udp-forward-template.yml", Load { warns: &[] }),
    ("fulltclash-tun-authers.yml", Load { warns: &["authers"] }),
    ("gobyedpi-http-direct-connector.yml", Load { warns: &["dialer.tls.insecure", "api"] }),
    ("gost-eg-http-upstream-pool.yaml", Load { warns: &["handler.readTimeout", "handler.idleTimeout"] }),
    ("gost-relay-panel-sni-sniffing-matcher.yml", Load { warns: &["nodes[0].matcher", "nodes[0].filter"] }),
    ("gost2warp-auto-handler-auther-file-rand.yaml", Load { warns: &["chains[0].selector"] }),
    ("issue1031-auto-handler-routes-INVALID.yaml", Load { warns: &["services[0].handler.routes"] }),
    // A bare service entry with no `services:` root.
    ("issue13-udp-forward-via-chain-targets-FRAGMENT.yaml", Refuse { line: 1, says: &["service entry", "services:"] }),
    ("issue184-ss-to-local-socks5-chain-MISPLACED-chain.yaml", Load { warns: &["services[0].handler.auth.chain"] }),
    ("issue219-relay-tls-server-forwarder.yaml", Load { warns: &[] }),
    ("issue219-tcp-udp-same-port-via-relay-tls-client.yaml", Load { warns: &[] }),
    ("issue24-socks5-udp-TRUNCATED.json", Refuse { line: 22, says: &["JSON"] }),
    ("issue247-socks5-limiter-chain.yaml", Load { warns: &["services[0].limiter", "limiters"] }),
    ("issue351-socks5-auther.yml", Load { warns: &["authers"] }),
    ("issue429-tunnel-dtls-client-MISINDENTED.yaml", Load { warns: &["chains[0].hops[0].nodes[0].connector.dialer"] }),
    ("issue429-tunnel-dtls-server.yaml", Load { warns: &["ingresses"] }),
    ("issue447-kcp-sniffing-forwarder-relay-wss.yaml", Load { warns: &["services[0].forwarder.nodes[0].host"] }),
    ("issue6-socks5-relay-wss-resolver.yaml", Load { warns: &["services[0].handler.resolver", "nodes[0].resolver"] }),
    // Named TRUNCATED, but SOURCES says its end was reconstructed and it parses: it is
    // valid GOST JSON and must load (hop given by name, defined in top-level `hops:`).
    ("issue733-socks5-fifo-failover-toplevel-hops-TRUNCATED.json", Load { warns: &[] }),
    ("issue739-http-chain-corporate-proxy-wss-INVALID.yaml", Load { warns: &["chains[0].hops[1].nodes[0].connector.ws"] }),
    ("issue815-rtcp-loopback-via-sshd-chain-backup.yaml", Load { warns: &[] }),
    ("issue823-socks5-forwarder-transport-INVALID.yaml", Load { warns: &["services[0].forwarder.nodes[0].transport"] }),
    ("issue89-dns-proxy-forwarder.yaml", Load { warns: &[] }),
    ("issue992-socks5-ws-multiport-TRUNCATED.yaml", Load { warns: &[] }),
    ("lework-sniffing-tcp-forward-node-host.yaml", Load { warns: &["services[0].forwarder.nodes[3].host"] }),
    (
        "meme2046-udp-ipv6-forwarders-plural-INVALID-KEY.yaml",
        Load { warns: &["services[0].forwarders", "services[3].forwarders"] },
    ),
    ("nexora-foreign-rtcp-via-relay-RENDERED.yaml", Load { warns: &[] }),
    ("nexora-iran-relay-server-RENDERED.yaml", Load { warns: &[] }),
    // A Nix template (`"${config.sops.placeholder."x"}"`), not YAML until rendered;
    // SOURCES: PARSE ERROR. The error names the key whose value breaks.
    (
        "nixos-sops-rtcp-rudp-via-tunnel-filter-host.yaml",
        Refuse { line: 52, says: &["YAML", "chains[0].hops[0].nodes[0].connector.auth.username"] },
    ),
    ("nwcd-gost-proxy-http-auths-api.yaml", Load { warns: &["handler.auths", "handler.keepalive", "handler.readTimeout"] }),
    ("perryyeh-empty-services-api-only.json", Load { warns: &["api"] }),
    ("perryyeh-tcp-forward-ui-export-status.yaml", Load { warns: &["services[0].status: runtime status"] }),
    ("pku-vpn-proxy-socks5-log.yml", Load { warns: &["log"] }),
    ("proxy-validator-socks5-rotating-52-nodes.yaml", Load { warns: &[] }),
    ("undermuz-http-over-tls-listener-first.yml", Load { warns: &[] }),
    ("undermuz-socks5-auth-4space.yml", Load { warns: &[] }),
    (
        "upstream-gost-yml-full-reference.yml",
        Load { warns: &["services[0].admission", "hops[0].bypass", "profiling", "metrics"] },
    ),
    ("vorker-relay-ws-ingress.yaml", Load { warns: &["ingresses"] }),
    ("vproxy-socks5-chain-rand.yaml", Load { warns: &["chains[0].selector"] }),
    ("warp-proxy-envvars-resolver.yaml", Load { warns: &["resolvers", "nodes[0].resolver"] }),
    // Invalid JSON (a full-width comma) that is also v2: the JSON error, with its line,
    // also says what the file is.
    ("v2-legacy/issue422-v2-routes-socks5-tls.json", Refuse { line: 10, says: &["JSON", "GOST v2"] }),
    ("v2-legacy/kagamigawa-v2-routes-ws-mwss.json", Refuse { line: 1, says: &["GOST v2", "ServeNodes"] }),
    ("v2-legacy/xiaomingplus-v2-servenodes-http2.json", Refuse { line: 1, says: &["GOST v2", "ServeNodes"] }),
];

/// Services of the corpus that Portway can run today (all others are refused at plan
/// time with a message naming the service). Update when Portway learns a new type.
// The two sniffing/host-routing forwarders (gost-relay-panel, lework) are refused at
// plan time on purpose: running them without SNI/Host routing would round-robin over
// unrelated targets. `sniffing_services_are_refused_not_misrouted` checks the message.
const PLANNED_OK: &[(&str, &str)] = &[
    ("docs-relay-bind-server.yaml", "service-0"),
    ("docs-rtcp-rudp-via-relay-client.yaml", "service-0"),
    ("docs-rtcp-rudp-via-relay-client.yaml", "service-1"),
    ("gost-eg-http-upstream-pool.yaml", "eg-proxy"),
    ("issue219-relay-tls-server-forwarder.yaml", "service-0"),
    ("issue219-tcp-udp-same-port-via-relay-tls-client.yaml", "service-0"),
    ("issue219-tcp-udp-same-port-via-relay-tls-client.yaml", "service-1"),
    ("issue351-socks5-auther.yml", "service-0"),
    ("issue733-socks5-fifo-failover-toplevel-hops-TRUNCATED.json", "proxy"),
    // `ws: true` sits in the connector, where GOST ignores it too: a plain http hop.
    ("issue739-http-chain-corporate-proxy-wss-INVALID.yaml", "local_chained_http_proxy"),
    ("nexora-foreign-rtcp-via-relay-RENDERED.yaml", "fwd0"),
    ("nexora-foreign-rtcp-via-relay-RENDERED.yaml", "fwd1"),
    ("nexora-iran-relay-server-RENDERED.yaml", "bridge"),
    ("nwcd-gost-proxy-http-auths-api.yaml", "http-proxy"),
    ("perryyeh-tcp-forward-ui-export-status.yaml", "nas 15001"),
    ("pku-vpn-proxy-socks5-log.yml", "socks5"),
    ("proxy-validator-socks5-rotating-52-nodes.yaml", "rotating"),
    ("undermuz-socks5-auth-4space.yml", "service-1"),
    ("vproxy-socks5-chain-rand.yaml", "socks-proxy"),
];

/// Config files of the corpus, relative to it (`v2-legacy/x.json`), sorted.
fn corpus_files() -> Vec<String> {
    let dir = corpus_dir();
    let mut out = Vec::new();
    for sub in ["", "v2-legacy"] {
        let d = if sub.is_empty() { dir.clone() } else { dir.join(sub) };
        let rd = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("cannot list {}: {e}", d.display()));
        for entry in rd {
            let entry = entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", d.display()));
            let p = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if p.is_dir() || name == "SOURCES.md" || name == "cmdlines.txt" {
                continue;
            }
            out.push(if sub.is_empty() { name } else { format!("{sub}/{name}") });
        }
    }
    out.sort();
    out
}

fn read(rel: &str) -> String {
    let p = corpus_dir().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// `load_str` under `catch_unwind`: a panic is a test failure naming the file.
fn load_guarded(name: &str, text: &str) -> Result<Loaded, LoadError> {
    match catch_unwind(AssertUnwindSafe(|| load_str(name, text))) {
        Ok(r) => r,
        Err(_) => panic!("{name}: load_str panicked"),
    }
}

/// Plans every service (under `catch_unwind`); each must plan or be refused with a
/// message naming it. Returns the names of those that planned.
fn plan_all(what: &str, cfg: &Config) -> Vec<String> {
    let mut ok = Vec::new();
    for s in &cfg.services {
        match catch_unwind(AssertUnwindSafe(|| plan_service(cfg, s))) {
            Err(_) => panic!("{what}: plan_service panicked on service {:?}", s.name),
            Ok(Ok(_)) => ok.push(s.name.clone()),
            Ok(Err(e)) => assert!(
                e.contains(&format!("{:?}", s.name)),
                "{what}: refusing service {:?} must name it; got: {e}",
                s.name
            ),
        }
    }
    ok
}

/// `-O yaml` then load, and `-O json` then load, give back the same config.
fn assert_round_trips(what: &str, cfg: &Config) {
    let yaml = cfg.to_yaml();
    let back = load_guarded(&format!("{what} (as yaml).yaml"), &yaml)
        .unwrap_or_else(|e| panic!("{what}: our own YAML does not load: {e}\n{yaml}"));
    assert_eq!(&back.config, cfg, "{what}: YAML round trip changed the config\n{yaml}");
    let json = cfg.to_json();
    let back = load_guarded(&format!("{what} (as json).json"), &json)
        .unwrap_or_else(|e| panic!("{what}: our own JSON does not load: {e}\n{json}"));
    assert_eq!(&back.config, cfg, "{what}: JSON round trip changed the config\n{json}");
}

#[test]
fn every_corpus_file_has_a_pinned_outcome() {
    let files = corpus_files();
    let pinned: Vec<String> = EXPECTED.iter().map(|(f, _)| f.to_string()).collect();
    let unpinned: Vec<_> = files.iter().filter(|f| !pinned.contains(f)).collect();
    let missing: Vec<_> = pinned.iter().filter(|f| !files.contains(f)).collect();
    assert!(unpinned.is_empty(), "corpus files with no expected outcome in EXPECTED: {unpinned:?}");
    assert!(missing.is_empty(), "EXPECTED names files the corpus does not have: {missing:?}");
    // SOURCES.md: 49 v3 files + 3 v2-legacy.
    assert_eq!(files.len(), 52, "{files:?}");
}

#[test]
fn corpus_files_load_or_are_refused_as_pinned() {
    let (mut loaded, mut refused, mut planned) = (0, 0, Vec::new());
    let mut failures = Vec::new();
    for (rel, expect) in EXPECTED {
        let text = read(rel);
        let result = load_guarded(rel, &text);
        match (expect, result) {
            (Load { warns }, Ok(l)) => {
                loaded += 1;
                let rendered: Vec<String> = l.warnings.iter().map(|w| format!("{}: {}", w.path, w.message)).collect();
                for want in *warns {
                    if !rendered.iter().any(|w| w.contains(want)) {
                        failures.push(format!("{rel}: no warning mentions {want:?}; warnings: {rendered:#?}"));
                    }
                }
                for w in &l.warnings {
                    if w.line == 0 && !rel.ends_with(".json") {
                        failures.push(format!("{rel}: warning without a line: {w}"));
                    }
                }
                for name in plan_all(rel, &l.config) {
                    planned.push((rel.to_string(), name));
                }
                assert_round_trips(rel, &l.config);
            }
            (Refuse { line, says }, Err(e)) => {
                refused += 1;
                let text = e.to_string();
                if e.line != *line {
                    failures.push(format!("{rel}: refused on line {} (expected {line}): {text}", e.line));
                }
                if !text.starts_with(rel) {
                    failures.push(format!("{rel}: the error does not start with the file name: {text}"));
                }
                for want in *says {
                    if !text.contains(want) {
                        failures.push(format!("{rel}: the error does not mention {want:?}: {text}"));
                    }
                }
            }
            (Load { .. }, Err(e)) => failures.push(format!("{rel}: should load, but: {e}")),
            (Refuse { .. }, Ok(l)) => {
                failures.push(format!("{rel}: should be refused, but loaded ({} services)", l.config.services.len()))
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!((loaded, refused), (45, 7), "configs loaded / refused");
    let want: Vec<(String, String)> = PLANNED_OK.iter().map(|(f, s)| (f.to_string(), s.to_string())).collect();
    assert_eq!(planned, want, "services of the corpus that plan (run) today");
}

/// The naming rules of the corpus README/SOURCES, checked on top of the table so that
/// a mislabelled table entry cannot hide a regression.
#[test]
fn corpus_naming_rules_hold() {
    for rel in corpus_files() {
        let text = read(&rel);
        let r = load_guarded(&rel, &text);
        let name = rel.rsplit('/').next().unwrap_or(&rel);
        // issue733: TRUNCATED in the issue, reconstructed into valid JSON (SOURCES: ok).
        let must_refuse = rel.starts_with("v2-legacy/")
            || name.contains("-MALFORMED")
            || name.contains("-FRAGMENT")
            || (name.ends_with("-TRUNCATED.json") && !name.starts_with("issue733-"));
        if must_refuse {
            let e = match &r {
                Err(e) => e,
                Ok(_) => panic!("{rel} must be refused"),
            };
            assert!(e.line > 0, "{rel}: the refusal names no line: {e}");
            if rel.starts_with("v2-legacy/") {
                assert!(e.to_string().contains("GOST v2"), "{rel}: must say it is a GOST v2 file: {e}");
            }
            if name.contains("-FRAGMENT") {
                assert!(e.to_string().contains("looks like a single service entry"), "{rel}: {e}");
            }
            if name.ends_with(".json") && e.message.starts_with("invalid JSON") {
                assert!(e.line > 0, "{rel}: a JSON syntax error must carry its line: {e}");
            }
        }
        let warn_key = if name.contains("-INVALID-KEY") {
            Some("forwarders")
        } else if name.contains("-MISINDENTED") {
            Some("connector.dialer")
        } else if name.starts_with("issue823-") {
            Some("transport")
        } else if name.starts_with("issue739-") {
            Some("connector.ws")
        } else if name.starts_with("perryyeh-tcp-forward-ui-export-status") {
            Some("status")
        } else {
            None
        };
        if let Some(key) = warn_key {
            let l = r.unwrap_or_else(|e| panic!("{rel} must load (with warnings): {e}"));
            let hit = l.warnings.iter().find(|w| w.path.ends_with(key));
            let w = hit.unwrap_or_else(|| panic!("{rel}: no warning names `{key}`: {:#?}", l.warnings));
            assert!(w.line > 0, "{rel}: the warning about {key} has no line: {w}");
        }
    }
}

/// GOST-known keys Portway does not run are reported differently from keys GOST
/// does not know either (a typo or wrong indentation), in the real files.
#[test]
fn corpus_warnings_tell_unimplemented_from_unknown() {
    let l = load_guarded("upstream", &read("upstream-gost-yml-full-reference.yml")).expect("the reference file loads");
    let bypass = l.warnings.iter().find(|w| w.path == "services[0].bypass").expect("bypass is reported");
    assert!(bypass.message.contains("does not implement yet"), "{bypass}");
    let l = load_guarded("meme", &read("meme2046-udp-ipv6-forwarders-plural-INVALID-KEY.yaml")).expect("loads");
    let fw = l.warnings.iter().find(|w| w.path == "services[0].forwarders").expect("forwarders is reported");
    assert!(fw.message.contains("unknown key"), "{fw}");
    assert_eq!(fw.line, 10, "{fw}");
    assert_ne!(bypass.message, fw.message);
    // The unknown key is kept (round trip) but gives the service no target.
    let svc = &l.config.services[0];
    assert!(svc.extra.contains_key("forwarders"));
    let e = plan_service(&l.config, svc).expect_err("no target");
    assert!(e.contains("\"server-main\"") && e.contains("no forwarding target"), "{e}");
}

/// Lines of `cmdlines.txt` that GOST itself refuses: a `-F` URL is parsed with Go's
/// `url.Parse`, which rejects a non-numeric port (`%SS_REMOTE_PORT%`, `${server_port}`).
const CMDLINES_REFUSED: &[(usize, &str)] = &[
    (28, "invalid port \":%SS_REMOTE_PORT%\" after host"),
    (50, "invalid port \":${server_port}\" after host"),
];

#[test]
fn every_corpus_command_line_builds_or_is_refused_naming_the_url() {
    let path = corpus_dir().join("cmdlines.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 102, "SOURCES.md lists 102 command lines");
    let (mut built, mut services) = (0, 0);
    let (mut refused, mut untokenized) = (Vec::new(), Vec::new());
    let mut failures = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        let args = match parse_gost_line(line) {
            Ok(a) => a,
            Err(e) => {
                // An allowed outcome (broken shell quoting), as long as it says so.
                if !e.contains("cannot tokenize") {
                    failures.push(format!("line {n}: not a gost command line: {e}"));
                }
                untokenized.push(n);
                continue;
            }
        };
        let r = catch_unwind(AssertUnwindSafe(|| build_from_cmd(&args.services, &args.nodes)));
        let r = r.unwrap_or_else(|_| panic!("line {n}: build_from_cmd panicked on {line:?}"));
        match r {
            Ok(cfg) => {
                built += 1;
                services += cfg.services.len();
                assert_round_trips(&format!("cmdlines.txt line {n}"), &cfg);
                plan_all(&format!("cmdlines.txt line {n}"), &cfg);
            }
            Err(e) => {
                let named = args.services.contains(&e.arg) || args.nodes.contains(&e.arg);
                if !named || !e.to_string().contains(&e.arg) {
                    failures.push(format!("line {n}: the error does not name the URL at fault: {e}"));
                }
                refused.push((n, e.to_string()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(untokenized.is_empty(), "every corpus line has sound shell quoting; these do not tokenize: {untokenized:?}");
    assert_eq!(built, 100, "command lines that build; refused: {refused:#?}");
    assert_eq!(refused.len(), CMDLINES_REFUSED.len(), "{refused:#?}");
    for ((n, msg), (want_n, want)) in refused.iter().zip(CMDLINES_REFUSED) {
        assert_eq!(n, want_n, "{msg}");
        assert!(msg.contains(want), "line {n}: {msg}");
    }
    // Port ranges are absent from the corpus, so one service per -L.
    assert_eq!(services, 109, "services built from the corpus command lines");
}

/// A few corpus command lines whose GOST reading is easy to get wrong.
#[test]
fn corpus_command_lines_read_as_gost_reads_them() {
    let text = std::fs::read_to_string(corpus_dir().join("cmdlines.txt")).expect("cmdlines.txt is readable");
    let lines: Vec<&str> = text.lines().collect();
    let build = |n: usize| {
        let a = parse_gost_line(lines[n - 1]).unwrap_or_else(|e| panic!("line {n}: {e}"));
        build_from_cmd(&a.services, &a.nodes).unwrap_or_else(|e| panic!("line {n}: {e}"))
    };
    // 44: a password holding '@' — the last '@' ends the userinfo.
    let c = build(44);
    let ss = &c.services[2];
    let auth = ss.handler.auth.as_ref().expect("userinfo becomes handler.auth");
    assert_eq!((auth.username.as_str(), auth.password.as_str()), ("aes-256-gcm", "PASS@WORD"));
    assert_eq!(ss.addr, ":5188");
    // 56: v2-style snake_case selector keys still build a hop selector; 305 is seconds.
    let c = build(56);
    let sel = c.chains[0].hops[0].selector.as_ref().expect("selector from the query");
    assert_eq!((sel.strategy.as_str(), sel.max_fails), ("fifo", 1));
    assert_eq!(sel.fail_timeout, std::time::Duration::from_secs(305));
    // 61: ?auth= is base64 user:pass.
    let c = build(61);
    let auth = c.services[0].handler.auth.as_ref().expect("auth from ?auth=");
    assert_eq!((auth.username.as_str(), auth.password.as_str()), ("admin", "123456"));
    // 12: rtcp is absent; tcp with a chain gets it on the handler, and -O yaml is ignored.
    let c = build(12);
    assert_eq!(c.services.len(), 2);
    assert!(c.services.iter().all(|s| s.handler.chain == "chain-0"));
    let dialer = c.chains[0].hops[0].nodes[0].dialer.as_ref().expect("dialer");
    assert_eq!(dialer.kind, "tls");
    assert_eq!(dialer.tls.as_ref().map(|t| t.server_name.as_str()), Some("SERVERIP"));
    // 58: rtcp/rudp take the chain on the listener.
    let c = build(58);
    assert!(c.services.iter().all(|s| s.listener.chain == "chain-0" && s.handler.chain.is_empty()));
    // 6 and 29: no -L or -F at all gives an empty config.
    assert_eq!(build(6), Config::default());
    assert_eq!(build(29), Config::default());
}

#[test]
fn sniffing_services_are_refused_not_misrouted() {
    for (file, service, word) in [
        ("gost-relay-panel-sni-sniffing-matcher.yml", "cloudflare-443", "sniffing"),
        ("lework-sniffing-tcp-forward-node-host.yaml", "https", "sniffing"),
    ] {
        let path = corpus_dir().join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let loaded = portway_core::config::load_str(file, &text).unwrap_or_else(|e| panic!("{e}"));
        let svc = loaded.config.service(service).unwrap_or_else(|| panic!("{file}: no service {service}"));
        let err = portway_core::config::validate::plan_service(&loaded.config, svc).expect_err("must be refused");
        assert!(err.contains(service) && err.contains(word) && err.contains("not implemented"), "{file}: {err}");
    }
}
