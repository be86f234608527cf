//! How GOST v3 files are read (small inline YAML/JSON): errors that name file, line,
//! column and key; GOST's lenient reading (case-insensitive keys, weak typing, YAML
//! anchors and merge keys, nanosecond durations in JSON); warnings for what Portway
//! does not act on; and the checks `plan_service` makes before a service starts.

use portway_core::config::validate::plan_service;
use portway_core::config::{load_str, Config, LoadError, Loaded, ServiceConfig};
use std::time::Duration;

fn load(name: &str, src: &str) -> Loaded {
    load_str(name, src).unwrap_or_else(|e| panic!("{name} should load, but: {e}\n{src}"))
}

fn refuse(name: &str, src: &str) -> LoadError {
    match load_str(name, src) {
        Ok(l) => panic!("{name} should be refused, but loaded: {:#?}", l.config),
        Err(e) => e,
    }
}

/// The one warning whose path is `path`.
fn warning<'a>(l: &'a Loaded, path: &str) -> &'a portway_core::config::Warning {
    let hits: Vec<_> = l.warnings.iter().filter(|w| w.path == path).collect();
    assert_eq!(hits.len(), 1, "expected one warning at {path}, got: {:#?}", l.warnings);
    hits[0]
}

fn service<'a>(c: &'a Config, name: &str) -> &'a ServiceConfig {
    c.service(name).unwrap_or_else(|| panic!("no service {name:?} in {c:#?}"))
}

fn plan_err(c: &Config, name: &str) -> String {
    match plan_service(c, service(c, name)) {
        Ok(p) => panic!("service {name:?} should be refused, but planned: {p:?}"),
        Err(e) => e,
    }
}

const TCP_FWD: &str = "\
services:
- name: web
  addr: 127.0.0.1:8080
  handler:
    type: tcp
  listener:
    type: tcp
  forwarder:
    selector:
      strategy: round
      maxFails: 2
      failTimeout: 30s
    nodes:
    - name: target-0
      addr: 127.0.0.1:80
";

#[test]
fn type_error_names_file_line_column_and_key_path() {
    let src = TCP_FWD.replace("maxFails: 2", "maxFails: lots");
    let e = refuse("bad.yaml", &src);
    assert_eq!((e.file.as_str(), e.line, e.col), ("bad.yaml", 11, 17), "{e}");
    assert_eq!(e.path, "services[0].forwarder.selector.maxFails");
    assert!(
        e.to_string().starts_with("bad.yaml:11:17: services[0].forwarder.selector.maxFails: expected an integer"),
        "{e}"
    );
    assert!(e.message.contains("\"lots\""), "the bad value is quoted: {e}");
}

#[test]
fn shape_errors_name_the_key_path() {
    let e = refuse("h.yaml", "services:\n- name: a\n  handler: [tcp]\n");
    assert_eq!((e.line, e.path.as_str()), (3, "services[0].handler"), "{e}");
    assert!(e.message.contains("expected a mapping, found a list"), "{e}");
    let e = refuse("n.yaml", "services:\n- addr: :80\n");
    assert!(e.to_string().contains("services[0]") && e.message.contains("no name"), "{e}");
    // A plain string where a forwarder node belongs says what to write instead.
    let e = refuse("t.yaml", "services:\n- name: a\n  forwarder:\n    nodes:\n    - 1.2.3.4:80\n");
    assert_eq!((e.line, e.path.as_str()), (5, "services[0].forwarder.nodes[0]"), "{e}");
    assert!(e.message.contains("addr: 1.2.3.4:80"), "{e}");
}

#[test]
fn json_errors_carry_line_and_key_path() {
    let src = "{\n  \"services\": [\n    {\n      \"name\": \"a\",\n      \"handler\": {\"type\": \"tcp\", \"retries\": \"x\"}\n    }\n  ]\n}\n";
    let e = refuse("bad.json", src);
    assert_eq!((e.line, e.path.as_str()), (5, "services[0].handler.retries"), "{e}");
    assert!(e.to_string().starts_with("bad.json:5:"), "{e}");
    let e = refuse("syntax.json", "{\n  \"services\": [\n    {\"name\": \"a\",}\n  ]\n}\n");
    assert!(e.message.starts_with("invalid JSON") && e.line == 3, "{e}");
}

#[test]
fn yaml_syntax_errors_name_the_line_and_the_key_being_read() {
    let e = refuse("s.yaml", "services:\n- name: a\n  addr: :80\n  handler:\n    type: tcp\n   listener: x\n");
    assert!(e.line >= 5 && e.message.starts_with("invalid YAML"), "{e}");
    assert!(e.path.starts_with("services[0]"), "the error says where it is: {e}");
    // matchers given as bare lines instead of a list (the corpus's MALFORMED file).
    let e = refuse("m.yaml", "bypasses:\n- name: x\n  matchers:\n  10.0.0.0/8\n  127.0.0.0/8\n");
    assert_eq!(e.path, "bypasses[0].matchers", "{e}");
    assert!(e.message.contains("indentation"), "the message hints at the fix: {e}");
}

#[test]
fn keys_match_case_insensitively() {
    let odd = "\
Services:
- NAME: web
  Addr: 127.0.0.1:8080
  HANDLER: {Type: tcp}
  listener: {TYPE: tcp}
  Forwarder:
    SELECTOR: {Strategy: round, maxfails: 2, FAILTIMEOUT: 30s}
    Nodes:
    - {Name: target-0, ADDR: 127.0.0.1:80}
";
    let a = load("odd.yaml", odd);
    assert!(a.warnings.is_empty(), "{:?}", a.warnings);
    assert_eq!(a.config, load("tcp.yaml", TCP_FWD).config);
    // Errors keep the user's spelling of the key.
    let e = refuse("odd.yaml", &odd.replace("maxfails: 2", "maxfails: x"));
    assert_eq!(e.path, "Services[0].Forwarder.SELECTOR.maxfails", "{e}");
}

#[test]
fn scalars_are_weakly_typed_like_gost() {
    let src = "\
services:
- name: 7
  addr: :1080
  handler:
    type: socks5
    retries: \"3\"
    auth: {username: 42, password: 123456}
    tls: {secure: \"true\", serverName: 1.5}
  listener:
    type: tcp
    tls: {secure: 1}
  forwarder:
    selector: {strategy: rand, maxFails: \"0x10\", failTimeout: 1m30s}
    nodes: [{name: t, addr: \"127.0.0.1:80\"}]
chains:
- name: c
  hops:
  - name: h
    nodes:
    - name: n
      addr: 127.0.0.1:1
      dialer: {type: tcp, tls: {secure: \"\"}}
";
    let l = load("weak.yaml", src);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let s = &l.config.services[0];
    assert_eq!(s.name, "7");
    assert_eq!(s.handler.retries, 3);
    let auth = s.handler.auth.as_ref().expect("auth");
    assert_eq!((auth.username.as_str(), auth.password.as_str()), ("42", "123456"));
    let tls = s.handler.tls.as_ref().expect("tls");
    assert!(tls.secure);
    assert_eq!(tls.server_name, "1.5");
    assert!(s.listener.tls.as_ref().is_some_and(|t| t.secure));
    let sel = s.forwarder.as_ref().and_then(|f| f.selector.as_ref()).expect("selector");
    assert_eq!((sel.max_fails, sel.fail_timeout), (16, Duration::from_secs(90)));
    let node_tls = l.config.chains[0].hops[0].nodes[0].dialer.as_ref().and_then(|d| d.tls.as_ref()).expect("tls");
    assert!(!node_tls.secure, "an empty string is false");
    // Metadata keeps what was written; it is read with GOST's rules when used.
    let l = load("md.yaml", "services:\n- name: a\n  listener:\n    type: udp\n    metadata: {keepAlive: \"true\", ttl: 5}\n");
    let md = &l.config.services[0].listener.metadata;
    assert_eq!(md.get_bool(&["keepalive"]), Ok(Some(true)));
    assert_eq!(md.get_duration(&["TTL"]), Ok(Some(Duration::from_secs(5))), "an int in metadata is seconds");
}

#[test]
fn a_boolean_where_text_belongs_reads_as_gost_reads_it_with_a_warning() {
    // mapstructure (GOST's decoder) turns true into "1": a password `true` is "1".
    let l = load("b.yaml", "services:\n- name: a\n  handler:\n    type: tcp\n    auth: {username: u, password: true}\n");
    assert_eq!(l.config.services[0].handler.auth.as_ref().map(|a| a.password.as_str()), Some("1"));
    let w = warning(&l, "services[0].handler.auth.password");
    assert_eq!(w.line, 5);
    assert!(w.message.contains("\"1\""), "{w}");
}

#[test]
fn values_that_do_not_fit_are_refused_naming_the_key() {
    let e = refuse("b.yaml", "services:\n- name: a\n  listener: {type: tcp, tls: {secure: maybe}}\n");
    assert_eq!(e.path, "services[0].listener.tls.secure", "{e}");
    assert!(e.message.contains("expected true or false") && e.message.contains("maybe"), "{e}");
    let e = refuse("d.yaml", &TCP_FWD.replace("failTimeout: 30s", "failTimeout: soon"));
    assert_eq!(e.path, "services[0].forwarder.selector.failTimeout", "{e}");
    let e = refuse("d.yaml", &TCP_FWD.replace("failTimeout: 30s", "failTimeout: [1]"));
    assert!(e.message.contains("expected a duration like \"30s\""), "{e}");
}

#[test]
fn unknown_keys_warn_with_path_and_line_and_are_kept() {
    let src = TCP_FWD.replace("  forwarder:\n", "  forwader:\n    typo: 1\n  forwarder:\n");
    let l = load("typo.yaml", &src);
    let w = warning(&l, "services[0].forwader");
    assert_eq!(w.line, 8);
    assert!(w.message.contains("unknown key") && w.message.contains("spelling"), "{w}");
    assert!(w.to_string().starts_with("line 8: services[0].forwader: "), "{w}");
    // Kept: the profile saved back still has it.
    assert!(l.config.services[0].extra.contains_key("forwader"));
    assert!(l.config.to_yaml().contains("forwader:"));
}

#[test]
fn gost_keys_portway_does_not_run_warn_differently_from_unknown_ones() {
    let src = TCP_FWD.replace("  handler:\n", "  bypass: b0\n  bypas: b0\n  handler:\n") + "bypasses:\n- name: b0\n  matchers: [a.com]\n";
    let l = load("known.yaml", &src);
    let known = warning(&l, "services[0].bypass");
    let unknown = warning(&l, "services[0].bypas");
    let top = warning(&l, "bypasses");
    assert!(known.message.contains("does not implement yet"), "{known}");
    assert!(top.message.contains("does not implement yet"), "{top}");
    assert!(unknown.message.contains("unknown key"), "{unknown}");
    assert_ne!(known.message, unknown.message);
    assert_eq!((known.line, unknown.line, top.line), (4, 5, 18));
    // Other GOST node/selector keys are known too (GOST v3 config.go).
    let l = load(
        "node.yaml",
        "chains:\n- name: c\n  hops:\n  - name: h\n    selector: {strategy: round, maxLatency: 1s}\n    nodes:\n    - {name: n, addr: \"a:1\", host: x, path: /p, auth: {username: u}}\n",
    );
    for p in ["chains[0].hops[0].selector.maxLatency", "chains[0].hops[0].nodes[0].host", "chains[0].hops[0].nodes[0].auth"] {
        assert!(warning(&l, p).message.contains("does not implement yet"), "{p}: {:?}", l.warnings);
    }
    // A service's runtime `status:` (written by GOST's web API) is ignored, said so.
    let l = load("status.yaml", "services:\n- name: a\n  status: {state: ready}\n");
    assert!(warning(&l, "services[0].status").message.contains("runtime status"));
}

#[test]
fn empty_files_are_empty_configs() {
    for (name, src) in [("e.yaml", ""), ("c.yaml", "# nothing yet\n\n"), ("ws.yml", "  \n"), ("e.json", "{}"), ("n.yaml", "~\n")] {
        let l = load(name, src);
        assert_eq!(l.config, Config::default(), "{name}");
        assert!(l.warnings.is_empty(), "{name}: {:?}", l.warnings);
    }
    let l = load("s.yaml", "services: []\nchains:\n");
    assert_eq!(l.config, Config::default());
}

#[test]
fn a_bare_number_for_fail_timeout_is_nanoseconds_with_a_warning() {
    let l = load("ns.yaml", &TCP_FWD.replace("failTimeout: 30s", "failTimeout: 30"));
    let sel = l.config.services[0].forwarder.as_ref().and_then(|f| f.selector.as_ref()).expect("selector");
    assert_eq!(sel.fail_timeout, Duration::from_nanos(30));
    let w = warning(&l, "services[0].forwarder.selector.failTimeout");
    assert_eq!(w.line, 12);
    assert!(w.message.contains("nanoseconds") && w.message.contains("\"30s\""), "{w}");
}

#[test]
fn json_with_nanosecond_durations_equals_yaml_with_go_durations() {
    let json = r#"{
  "services": [
    {
      "name": "web",
      "addr": "127.0.0.1:8080",
      "handler": {"type": "tcp"},
      "listener": {"type": "tcp"},
      "forwarder": {
        "selector": {"strategy": "round", "maxFails": 2, "failTimeout": 30000000000},
        "nodes": [{"name": "target-0", "addr": "127.0.0.1:80"}]
      }
    }
  ]
}"#;
    let j = load("gost.json", json);
    assert!(j.warnings.is_empty(), "a large nanosecond count is not warned about: {:?}", j.warnings);
    assert_eq!(j.config, load("gost.yaml", TCP_FWD).config);
    // And -O json writes them back as nanoseconds.
    assert!(j.config.to_json().contains("\"failTimeout\": 30000000000"), "{}", j.config.to_json());
    // Inline JSON (no .json extension) is recognised by its first character.
    assert_eq!(load("-C argument", json).config, j.config);
}

#[test]
fn a_yaml_file_in_flow_style_is_yaml_even_when_it_starts_with_a_brace() {
    // GOST picks the format by extension; `{services: [...]}` is valid YAML, not JSON.
    let src = "{services: [{name: web, addr: \"127.0.0.1:8080\", handler: {type: tcp}, listener: {type: tcp}, forwarder: {selector: {strategy: round, maxFails: 2, failTimeout: 30s}, nodes: [{name: target-0, addr: \"127.0.0.1:80\"}]}}]}\n";
    assert_eq!(load("flow.yaml", src).config, load("tcp.yaml", TCP_FWD).config);
}

#[test]
fn anchors_aliases_and_merge_keys_resolve() {
    let src = "\
services:
- name: a
  addr: :8080
  handler: &h {type: tcp}
  listener: {type: tcp}
  forwarder: &f
    nodes:
    - {name: t, addr: \"127.0.0.1:80\"}
- name: b
  addr: :8081
  handler: *h
  listener: {type: tcp}
  forwarder: *f
- &base
  name: c
  addr: :8082
  handler: {type: udp}
  listener: {type: udp, metadata: {keepAlive: true}}
  forwarder: {nodes: [{name: t, addr: \"127.0.0.1:53\"}]}
- <<: *base
  name: d
  addr: :8083
";
    let l = load("anchors.yaml", src);
    assert!(l.warnings.is_empty(), "no `<<` key left over: {:?}", l.warnings);
    let c = &l.config;
    assert_eq!(service(c, "b").handler, service(c, "a").handler);
    assert_eq!(service(c, "b").forwarder, service(c, "a").forwarder);
    let (base, d) = (service(c, "c"), service(c, "d"));
    assert_eq!((d.addr.as_str(), d.handler.kind.as_str()), (":8083", "udp"), "own keys win over merged ones");
    assert_eq!(d.listener, base.listener);
    assert_eq!(d.forwarder, base.forwarder);
    // A list of merges: the first mapping wins.
    let l = load("m.yaml", "a: &a {type: tcp}\nb: &b {type: udp, chain: c}\nservices:\n- name: s\n  handler: {<<: [*a, *b]}\n");
    let h = &l.config.services[0].handler;
    assert_eq!((h.kind.as_str(), h.chain.as_str()), ("tcp", "c"));
    // An alias to nothing is an error with a line.
    let e = refuse("bad.yaml", "services:\n- name: a\n  handler: *nope\n");
    assert!(e.line == 3 && e.message.contains("unknown anchor"), "{e}");
}

#[test]
fn multi_document_yaml_is_refused() {
    let e = refuse("two.yaml", "services: []\n---\nchains: []\n");
    assert!(e.message.contains("more than one YAML document"), "{e}");
    assert_eq!(e.line, 3, "{e}");
}

#[test]
fn repeated_keys_are_refused_in_yaml_and_last_wins_in_json() {
    // yaml.v3 (GOST's YAML reader) refuses a repeated key.
    let e = refuse("dup.yaml", &TCP_FWD.replace("  listener:\n", "  handler: {type: udp}\n  listener:\n"));
    assert_eq!((e.line, e.path.as_str()), (6, "services[0].handler"), "{e}");
    assert!(e.message.contains("already defined on line 4"), "{e}");
    // Go's JSON decoder keeps the last one; so do we, and say so.
    let l = load("dup.json", "{\"services\": [{\"name\": \"a\", \"handler\": {\"type\": \"tcp\", \"type\": \"udp\"}}]}");
    assert_eq!(l.config.services[0].handler.kind, "udp");
    assert!(warning(&l, "services[0].handler.type").message.contains("last one wins"));
}

#[test]
fn a_single_mapping_where_a_list_belongs_is_read_as_one_item() {
    // GOST's decoder (mapstructure, weakly typed) does this silently; we warn.
    let src = "services:\n  name: a\n  handler: {type: tcp, authers: \"a1,a2\"}\n";
    let l = load("one.yaml", src);
    assert_eq!(l.config.services.len(), 1);
    assert_eq!(l.config.services[0].handler.authers, ["a1", "a2"], "a string of names splits on commas");
    let w = warning(&l, "services");
    assert!(w.message.contains("list of one") && w.line == 2, "{w}");
    assert_eq!(load("e.yaml", "services: {}\n").config, Config::default());
}

#[test]
fn gost_v2_files_are_named_as_such() {
    let e = refuse("v2.json", "{\"ServeNodes\": [\":8080\"]}");
    assert!(e.message.contains("GOST v2") && e.message.contains("-L"), "{e}");
    let e = refuse("v2.json", "{\"serveNodes\": [\":8080\"], \"chainNodes\": []}");
    assert!(e.message.contains("GOST v2"), "Go's JSON decoder ignored key case: {e}");
    let e = refuse("v2.json", "{\n\"Routes\": [ {\"ServeNodes\": [\"a\"]}，{} ]\n}");
    assert!(e.message.starts_with("invalid JSON") && e.message.contains("GOST v2") && e.line == 2, "{e}");
}

#[test]
fn a_list_at_the_top_is_refused_as_a_service_entry_without_services() {
    let e = refuse("frag.yaml", "- name: a\n  addr: :80\n  handler: {type: tcp}\n");
    assert!(e.message.contains("looks like a single service entry") && e.message.contains("services:"), "{e}");
    assert_eq!(e.line, 1);
}

#[test]
fn legacy_forwarder_targets_are_read_as_nodes_with_a_warning() {
    let l = load("t.yaml", "services:\n- name: a\n  forwarder:\n    targets: [\"127.0.0.1:53\", \"127.0.0.2:53\"]\n");
    let f = l.config.services[0].forwarder.as_ref().expect("forwarder");
    let addrs: Vec<_> = f.nodes.iter().map(|n| (n.name.as_str(), n.addr.as_str())).collect();
    assert_eq!(addrs, [("target-0", "127.0.0.1:53"), ("target-1", "127.0.0.2:53")]);
    assert!(warning(&l, "services[0].forwarder.targets").message.contains("nodes:"));
}

const CHAIN_VIA_TOP_LEVEL_HOP: &str = "\
services:
- name: client
  addr: 127.0.0.1:8080
  handler:
    type: tcp
    chain: chain-0
  listener:
    type: tcp
chains:
- name: chain-0
  hops:
  - name: hop-fwd
hops:
- name: hop-fwd
  selector: {strategy: fifo, maxFails: 3, failTimeout: 60s}
  nodes:
  - name: server-a
    addr: 127.0.0.1:8443
    connector: {type: forward}
    dialer: {type: tcp}
  - name: server-b
    addr: 127.0.0.2:8443
    connector: {type: forward}
    dialer: {type: tcp}
";

#[test]
fn a_chain_hop_named_after_a_top_level_hop_resolves_in_the_plan() {
    let l = load("hops.yaml", CHAIN_VIA_TOP_LEVEL_HOP);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let plan = plan_service(&l.config, &l.config.services[0]).unwrap_or_else(|e| panic!("plans: {e}"));
    let chain = plan.chain.as_ref().expect("the handler's chain");
    assert_eq!(chain.name, "chain-0");
    assert_eq!(chain.hops.len(), 1);
    let hop = &chain.hops[0];
    assert_eq!(hop.name, "hop-fwd");
    let nodes: Vec<_> = hop.nodes.iter().map(|n| (n.name.as_str(), n.addr.as_str())).collect();
    assert_eq!(nodes, [("server-a", "127.0.0.1:8443"), ("server-b", "127.0.0.2:8443")]);
    assert_eq!(hop.kinds(), [("forward".to_string(), "tcp".to_string()), ("forward".to_string(), "tcp".to_string())]);
    assert_eq!((hop.selector.max_fails, hop.selector.fail_timeout), (3, Duration::from_secs(60)));
    // No forwarder: the forward connector at the end carries the stream (GOST's ":0").
    assert_eq!(plan.targets.len(), 1);
    assert_eq!(plan.targets[0].addr, ":0");
    // A hop naming no top-level hop is refused, naming the service and the hop.
    let broken = CHAIN_VIA_TOP_LEVEL_HOP.replace("  - name: hop-fwd\nhops:", "  - name: hop-gone\nhops:");
    let l = load("hops.yaml", &broken);
    let e = plan_err(&l.config, "client");
    assert!(e.contains("\"client\"") && e.contains("hop-gone"), "{e}");
}

/// A small config with one service `s` of the given handler and listener.
fn one_service(handler: &str, listener: &str, addr: &str) -> String {
    format!(
        "services:\n- name: s\n  addr: \"{addr}\"\n  handler: {{type: {handler}}}\n  listener: {{type: {listener}}}\n  forwarder:\n    nodes: [{{name: t, addr: \"127.0.0.1:80\"}}]\n"
    )
}

#[test]
fn plan_refuses_an_unknown_handler_type_saying_gost_has_none() {
    let l = load("h.yaml", &one_service("tcpp", "tcp", ":8080"));
    let e = plan_err(&l.config, "s");
    assert!(e.contains("\"s\"") && e.contains("\"tcpp\"") && e.contains("GOST has no such handler"), "{e}");
    // A GOST handler Portway lacks says "not implemented", not "unknown".
    let l = load("h.yaml", &one_service("ss", "tcp", ":1080"));
    let e = plan_err(&l.config, "s");
    assert!(e.contains("not implemented") && !e.contains("GOST has no such"), "{e}");
}

#[test]
fn plan_refuses_a_shadowsocks_connector_naming_the_service() {
    let src = CHAIN_VIA_TOP_LEVEL_HOP.replace("connector: {type: forward}", "connector: {type: ss}");
    let l = load("ss.yaml", &src);
    let e = plan_err(&l.config, "client");
    assert!(e.contains("\"client\""), "names the service: {e}");
    assert!(e.contains("\"ss\"") && e.contains("not implemented in Portway yet"), "{e}");
    assert!(e.contains("server-a"), "names the node: {e}");
}

#[test]
fn an_unknown_strategy_runs_round_robin_as_in_gost_with_a_warning_naming_it() {
    // GOST's parser runs round-robin for a name it does not know, without a word;
    // Portway does the same for a name it does not know (here GOST master's newer
    // `lowest`), and says so.
    let l = load("st.yaml", &TCP_FWD.replace("strategy: round", "strategy: lowest"));
    let w: Vec<String> = l.warnings.iter().map(|w| w.to_string()).collect();
    let line = TCP_FWD.lines().position(|x| x.contains("strategy: round")).map(|i| i + 1).unwrap();
    assert!(
        w.iter().any(|w| w.starts_with(&format!("line {line}: services[0].forwarder.selector.strategy: unknown selector strategy \"lowest\"")) && w.contains("round-robin")),
        "{w:?}"
    );
    let plan = plan_service(&l.config, &l.config.services[0]).expect("runs");
    assert_eq!(plan.selector.strategy, portway_core::selector::Strategy::Round);
    // GOST's aliases are known: no warning.
    for s in ["rr", "random", "ha", "HASH"] {
        let l = load("st.yaml", &TCP_FWD.replace("strategy: round", &format!("strategy: {s}")));
        assert!(l.warnings.is_empty(), "{s}: {:?}", l.warnings);
        assert!(plan_service(&l.config, &l.config.services[0]).is_ok(), "{s}");
    }
}

#[test]
fn plan_refuses_an_env_placeholder_address() {
    let l = load("env.yaml", &one_service("tcp", "tcp", "${LISTEN_ADDR}"));
    let e = plan_err(&l.config, "s");
    assert!(e.contains("\"s\"") && e.contains("${LISTEN_ADDR}") && e.contains("placeholder"), "{e}");
    let l = load("env.yaml", &TCP_FWD.replace("addr: 127.0.0.1:80\n", "addr: $TARGET\n"));
    let e = plan_err(&l.config, "web");
    assert!(e.contains("$TARGET") && e.contains("placeholder") && e.contains("target-0"), "{e}");
}

#[test]
fn plan_refuses_a_port_range_in_a_yaml_address() {
    let l = load("range.yaml", &one_service("tcp", "tcp", ":8000-8003"));
    let e = plan_err(&l.config, "s");
    assert!(e.contains("\"s\"") && e.contains(":8000-8003") && e.contains("port range"), "{e}");
}

#[test]
fn plan_refuses_a_handler_chain_that_names_no_chain() {
    // GOST silently dials directly; Portway refuses (README, "differs on purpose").
    let src = TCP_FWD.replace("    type: tcp\n  listener:", "    type: tcp\n    chain: upstream\n  listener:");
    let l = load("nochain.yaml", &src);
    let e = plan_err(&l.config, "web");
    assert!(e.contains("\"web\"") && e.contains("\"upstream\"") && e.contains("no chain"), "{e}");
}

#[test]
fn plan_refuses_a_tcp_handler_on_a_udp_listener() {
    let l = load("mix.yaml", &one_service("tcp", "udp", ":5353"));
    let e = plan_err(&l.config, "s");
    assert!(e.contains("\"s\"") && e.contains("\"tcp\"") && e.contains("\"udp\""), "{e}");
    let l = load("mix.yaml", &one_service("udp", "tcp", ":5353"));
    assert!(plan_err(&l.config, "s").contains("does not go with"));
}

#[test]
fn a_plain_local_forward_plans() {
    let l = load("ok.yaml", TCP_FWD);
    let p = plan_service(&l.config, &l.config.services[0]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((p.handler.as_str(), p.listener.as_str(), p.addr.as_str()), ("tcp", "tcp", "127.0.0.1:8080"));
    assert_eq!((p.selector.max_fails, p.selector.fail_timeout), (2, Duration::from_secs(30)));
    assert_eq!(p.targets.iter().map(|t| t.addr.as_str()).collect::<Vec<_>>(), ["127.0.0.1:80"]);
    assert!(p.chain.is_none());
}

#[test]
fn a_byte_order_mark_is_skipped() {
    // Windows editors write one; yaml.v3 skips it.
    let l = load("bom.yaml", &format!("\u{feff}{TCP_FWD}"));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(l.config, load("tcp.yaml", TCP_FWD).config);
    assert_eq!(load("bom.json", "\u{feff}{\"services\": []}").config, Config::default());
}

#[test]
fn a_key_repeated_in_another_case_is_reported_as_a_repeat() {
    let l = load("twin.yaml", "services:\n- name: a\n  Name: b\n");
    assert_eq!(l.config.services[0].name, "a");
    let w = warning(&l, "services[0].Name");
    assert!(w.message.contains("repeats `name` of line 2"), "{w}");
}

#[test]
fn json_output_writes_selector_durations_as_nanoseconds_and_nothing_else() {
    let src = TCP_FWD.replace("  listener:\n", "  metadata:\n    selector: {failTimeout: 5s}\n  listener:\n")
        + "chains:\n- name: c\n  hops:\n  - name: h\n    selector: {strategy: round, maxFails: 1, failTimeout: 1m}\n    nodes: [{name: n, addr: \"127.0.0.1:1\"}]\nhops:\n- name: t\n  selector: {strategy: rand, maxFails: 1, failTimeout: 2s}\n  nodes: [{name: n, addr: \"127.0.0.1:2\"}]\n";
    let cfg = load("d.yaml", &src).config;
    let json = cfg.to_json();
    for want in ["\"failTimeout\": 30000000000", "\"failTimeout\": 60000000000", "\"failTimeout\": 2000000000", "\"failTimeout\": \"5s\""] {
        assert!(json.contains(want), "{want} missing in\n{json}");
    }
    // GOST's key order survives (selector before nodes in a forwarder).
    let sel = json.find("\"selector\": {\n          \"strategy\": \"round\",\n          \"maxFails\": 2").expect("forwarder selector");
    assert!(sel < json.find("\"nodes\"").expect("nodes"), "{json}");
    assert_eq!(load("d.json", &json).config, cfg);
}
