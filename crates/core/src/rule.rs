//! A "rule" is what the desktop app edits: one forwarding service in plain terms
//! (kind, listen address, targets, selector, UDP session options, chain). It maps
//! onto a GOST `services` entry and back; mapping an edited rule onto the service
//! it came from keeps every key the form does not show (metadata, extras), so
//! editing in the app never drops what a GOST file said.

use crate::config::validate::{check_addr, split_host_port};
use crate::config::{Config, ForwardNodeConfig, ForwarderConfig, HandlerConfig, ListenerConfig, Metadata, SelectorConfig, ServiceConfig};
use crate::selector::Strategy;
use serde::{Deserialize, Serialize};
use serde_yaml::Value;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export, rename = "RuleKindDto"))]
pub enum RuleKind {
    LocalTcp,
    LocalUdp,
    RemoteTcp,
    RemoteUdp,
    /// The server end of server-side forwarding: a `forward` handler whose
    /// targets the server picks (clients reach it with a `forward` connector).
    ServerSide,
}

impl RuleKind {
    pub fn handler_listener(self) -> (&'static str, &'static str) {
        match self {
            RuleKind::LocalTcp => ("tcp", "tcp"),
            RuleKind::LocalUdp => ("udp", "udp"),
            RuleKind::RemoteTcp => ("rtcp", "rtcp"),
            RuleKind::RemoteUdp => ("rudp", "rudp"),
            RuleKind::ServerSide => ("forward", "tcp"),
        }
    }
    pub fn is_udp(self) -> bool {
        matches!(self, RuleKind::LocalUdp | RuleKind::RemoteUdp)
    }
    fn scheme(self) -> &'static str {
        match self {
            RuleKind::LocalTcp => "tcp",
            RuleKind::LocalUdp => "udp",
            RuleKind::RemoteTcp => "rtcp",
            RuleKind::RemoteUdp => "rudp",
            RuleKind::ServerSide => "forward+tcp",
        }
    }
}

/// One rule as the form shows it (the window's `RuleDraft`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export, rename = "RuleDraft"))]
pub struct Rule {
    pub name: String,
    pub kind: RuleKind,
    pub listen: String,
    pub targets: Vec<String>,
    /// round, rand, fifo or hash.
    pub strategy: String,
    pub max_fails: u32,
    pub fail_timeout_secs: u32,
    /// UDP only.
    pub keep_alive: bool,
    /// UDP only: the idle check period in seconds.
    pub ttl_secs: u32,
    /// Name of a chain of the profile, or empty.
    pub chain: String,
}

/// A form error: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{field}: {message}")]
#[serde(rename_all = "camelCase")]
pub struct RuleError {
    pub field: String,
    pub message: String,
}

fn ferr(field: &str, message: impl Into<String>) -> RuleError {
    RuleError { field: field.into(), message: message.into() }
}

impl Rule {
    /// A new rule with GOST's defaults.
    pub fn new(name: impl Into<String>, kind: RuleKind) -> Rule {
        Rule {
            name: name.into(),
            kind,
            listen: String::new(),
            targets: Vec::new(),
            strategy: "round".into(),
            max_fails: 1,
            fail_timeout_secs: 10,
            keep_alive: false,
            ttl_secs: 5,
            chain: String::new(),
        }
    }

    /// Reads a rule from a service; `None` for services the form cannot show
    /// (proxies, other transports), which stay as they are in the profile.
    pub fn from_service(s: &ServiceConfig) -> Option<Rule> {
        let h = s.handler.kind.as_str();
        let l = if s.listener.kind.is_empty() { "tcp" } else { s.listener.kind.as_str() };
        let kind = match (h, l) {
            ("tcp", "tcp") => RuleKind::LocalTcp,
            ("udp", "udp") => RuleKind::LocalUdp,
            ("rtcp", "rtcp") => RuleKind::RemoteTcp,
            ("rudp", "rudp") => RuleKind::RemoteUdp,
            ("forward", "tcp") => RuleKind::ServerSide,
            _ => return None,
        };
        let mut r = Rule::new(s.name.clone(), kind);
        r.listen = s.addr.clone();
        if let Some(f) = &s.forwarder {
            r.targets = f.nodes.iter().map(|n| n.addr.clone()).collect();
            if let Some(sel) = &f.selector {
                if !sel.strategy.is_empty() {
                    r.strategy = sel.strategy.clone();
                }
                if sel.max_fails > 0 {
                    r.max_fails = sel.max_fails.min(u32::MAX as i64) as u32;
                }
                if !sel.fail_timeout.is_zero() {
                    r.fail_timeout_secs = sel.fail_timeout.as_secs().clamp(1, u32::MAX as u64) as u32;
                }
            }
        }
        let md = &s.listener.metadata;
        r.keep_alive = md.get_bool(&["keepAlive", "keepalive"]).ok().flatten().unwrap_or(false);
        if let Ok(Some(t)) = md.get_duration(&["ttl"]) {
            if !t.is_zero() {
                r.ttl_secs = t.as_secs().clamp(1, u32::MAX as u64) as u32;
            }
        }
        r.chain = if !s.handler.chain.is_empty() { s.handler.chain.clone() } else { s.listener.chain.clone() };
        Some(r)
    }

    /// Checks the form against the profile it goes into. `original` is the name
    /// the rule had before this edit (for the uniqueness check).
    pub fn validate(&self, cfg: &Config, original: Option<&str>) -> Result<(), RuleError> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err(ferr("name", "a rule needs a name"));
        }
        if name != self.name {
            return Err(ferr("name", "no spaces at the start or end of the name"));
        }
        if cfg.services.iter().any(|s| s.name == self.name && Some(s.name.as_str()) != original) {
            return Err(ferr("name", format!("another rule is already called {:?}", self.name)));
        }
        check_addr(&self.listen, "listen address").map_err(|e| ferr("listen", e))?;
        let needs_targets = self.kind != RuleKind::LocalTcp || self.chain.is_empty();
        if self.targets.is_empty() && needs_targets {
            return Err(ferr("targets", "add at least one target (host:port)"));
        }
        for (i, t) in self.targets.iter().enumerate() {
            if split_host_port(t).is_none_or(|(_, p)| p.is_empty()) {
                return Err(ferr(&format!("targets.{i}"), format!("{t:?} is not host:port")));
            }
            check_addr(t, "target").map_err(|e| ferr(&format!("targets.{i}"), e))?;
            if t.ends_with(":0") {
                return Err(ferr(&format!("targets.{i}"), "a target needs a port"));
            }
        }
        Strategy::parse(&self.strategy).map_err(|e| ferr("strategy", e))?;
        if self.max_fails == 0 {
            return Err(ferr("maxFails", "at least 1"));
        }
        if self.fail_timeout_secs == 0 {
            return Err(ferr("failTimeout", "at least 1 second"));
        }
        if self.kind.is_udp() && self.ttl_secs == 0 {
            return Err(ferr("ttl", "at least 1 second"));
        }
        if !self.chain.is_empty() {
            if cfg.chain(&self.chain).is_none() {
                return Err(ferr("chain", format!("the profile has no chain named {:?}", self.chain)));
            }
            if self.kind == RuleKind::ServerSide {
                return Err(ferr("chain", "server-side forwarding receives connections; it does not use a chain"));
            }
        }
        Ok(())
    }

    /// The GOST service for this rule. Keys of `base` (the service being edited)
    /// that the form does not cover are kept.
    pub fn to_service(&self, base: Option<&ServiceConfig>) -> ServiceConfig {
        let mut s = base.cloned().unwrap_or_default();
        let (h, l) = self.kind.handler_listener();
        s.name = self.name.clone();
        s.addr = self.listen.clone();
        if s.handler.kind != h {
            s.handler = HandlerConfig { metadata: s.handler.metadata.clone(), ..Default::default() };
        }
        s.handler.kind = h.into();
        if s.listener.kind != l {
            s.listener = ListenerConfig { metadata: s.listener.metadata.clone(), ..Default::default() };
        }
        s.listener.kind = l.into();
        // A remote listener takes the chain (it listens on the last hop); a local
        // handler dials through it (GOST's CLI does the same).
        let remote = matches!(self.kind, RuleKind::RemoteTcp | RuleKind::RemoteUdp);
        s.handler.chain = if remote { String::new() } else { self.chain.clone() };
        s.listener.chain = if remote { self.chain.clone() } else { String::new() };
        if self.targets.is_empty() {
            s.forwarder = None;
        } else {
            let old = s.forwarder.take().unwrap_or_default();
            let nodes = self
                .targets
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    // Keep per-node settings of a target that is still there.
                    let mut n = old.nodes.iter().find(|n| &n.addr == a).cloned().unwrap_or_default();
                    n.name = format!("target-{i}");
                    n.addr = a.clone();
                    n
                })
                .collect::<Vec<ForwardNodeConfig>>();
            let default = SelectorConfig::default();
            let sel = SelectorConfig {
                strategy: self.strategy.clone(),
                max_fails: self.max_fails as i64,
                fail_timeout: Duration::from_secs(self.fail_timeout_secs as u64),
                extra: old.selector.as_ref().map(|s| s.extra.clone()).unwrap_or_default(),
            };
            // Write a selector only when it says something GOST's defaults do not.
            let selector = if sel.strategy == default.strategy && sel.max_fails == default.max_fails && sel.fail_timeout == default.fail_timeout && old.selector.is_none() {
                None
            } else {
                Some(sel)
            };
            s.forwarder = Some(ForwarderConfig { nodes, selector, ..old });
        }
        set_md(&mut s.listener.metadata, "keepAlive", if self.kind.is_udp() && self.keep_alive { Some(Value::Bool(true)) } else { None });
        set_md(
            &mut s.listener.metadata,
            "ttl",
            if self.kind.is_udp() && self.ttl_secs != 5 { Some(Value::String(format!("{}s", self.ttl_secs))) } else { None },
        );
        s
    }

    /// The equivalent GOST command line, when the profile's chain can be written
    /// as `-F` flags (or there is none).
    pub fn gost_cmdline(&self, cfg: &Config) -> Option<String> {
        let mut q: Vec<String> = Vec::new();
        let default = SelectorConfig::default();
        if self.strategy != default.strategy || self.max_fails as i64 != default.max_fails || self.fail_timeout_secs != 10 {
            q.push(format!("strategy={}", self.strategy));
            q.push(format!("maxFails={}", self.max_fails));
            q.push(format!("failTimeout={}s", self.fail_timeout_secs));
        }
        if self.kind.is_udp() {
            if self.keep_alive {
                q.push("keepAlive=true".into());
            }
            if self.ttl_secs != 5 {
                q.push(format!("ttl={}s", self.ttl_secs));
            }
        }
        let mut l = format!("{}://{}", self.kind.scheme(), self.listen);
        if !self.targets.is_empty() {
            l.push('/');
            l.push_str(&self.targets.join(","));
        }
        if !q.is_empty() {
            l.push('?');
            l.push_str(&q.join("&"));
        }
        let mut cmd = format!("gost -L \"{l}\"");
        if !self.chain.is_empty() {
            let chain = cfg.chain(&self.chain)?;
            for hop in &chain.hops {
                let n = hop.nodes.first()?;
                if hop.nodes.len() > 1 || hop.selector.is_some() {
                    return None;
                }
                let c = n.connector.as_ref().map(|c| c.kind.as_str()).unwrap_or("http");
                let d = n.dialer.as_ref().map(|d| d.kind.as_str()).unwrap_or("tcp");
                // `socks5://` means socks5 over tcp in GOST (socks5 is no dialer): use
                // the short form where GOST's fallback gives the same node.
                let short = d == "tcp" && !crate::config::registry::GOST_DIALERS.contains(&c);
                let scheme = if c == d || short { c.to_string() } else { format!("{c}+{d}") };
                let auth = n.connector.as_ref().and_then(|c| c.auth.as_ref()).or(n.dialer.as_ref().and_then(|d| d.auth.as_ref()));
                let ui = match auth {
                    Some(a) if !a.username.is_empty() => format!("{}:{}@", a.username, a.password),
                    _ => String::new(),
                };
                cmd.push_str(&format!(" -F \"{scheme}://{ui}{}\"", n.addr));
            }
        }
        Some(cmd)
    }
}

fn set_md(md: &mut Metadata, key: &str, v: Option<Value>) {
    // Replace whatever spelling the file used (GOST keys ignore case).
    while md.remove(key).is_some() {}
    if let Some(v) = v {
        md.insert(key, v);
    }
}

/// The rules of a profile, in order, with the services the form cannot show
/// reported by name.
pub fn rules_of(cfg: &Config) -> (Vec<Rule>, Vec<String>) {
    let mut rules = Vec::new();
    let mut other = Vec::new();
    for s in &cfg.services {
        match Rule::from_service(s) {
            Some(r) => rules.push(r),
            None => other.push(s.name.clone()),
        }
    }
    (rules, other)
}

/// Inserts or replaces a rule in a profile (validated first).
pub fn upsert(cfg: &Config, rule: &Rule, original: Option<&str>) -> Result<Config, RuleError> {
    rule.validate(cfg, original)?;
    let mut out = cfg.clone();
    match original.and_then(|o| out.services.iter().position(|s| s.name == o)) {
        Some(i) => {
            let svc = rule.to_service(Some(&out.services[i]));
            out.services[i] = svc;
        }
        None => out.services.push(rule.to_service(None)),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    fn cfg(y: &str) -> Config {
        load_str("t.yaml", y).expect("loads").config
    }

    #[test]
    fn seed_rules_read_back_and_round_trip() {
        let c = cfg("services:\n- name: service-0\n  addr: :10053\n  handler: {type: udp}\n  listener: {type: udp, metadata: {keepAlive: true, ttl: 30s, readBufferSize: 4096}}\n  forwarder:\n    nodes: [{name: target-0, addr: 127.0.0.1:53, metadata: {weight: 3}}, {name: target-1, addr: 127.0.0.2:53}]\n    selector: {strategy: fifo, maxFails: 2, failTimeout: 20s}\n");
        let r = Rule::from_service(&c.services[0]).expect("a rule");
        assert_eq!(r.kind, RuleKind::LocalUdp);
        assert_eq!(r.targets, vec!["127.0.0.1:53", "127.0.0.2:53"]);
        assert_eq!((r.strategy.as_str(), r.max_fails, r.fail_timeout_secs), ("fifo", 2, 20));
        assert!(r.keep_alive);
        assert_eq!(r.ttl_secs, 30);
        // Saving the unchanged rule changes nothing a user wrote.
        let s = r.to_service(Some(&c.services[0]));
        assert_eq!(s.listener.metadata.get_int(&["readBufferSize"]).expect("int"), Some(4096));
        assert_eq!(s.forwarder.as_ref().expect("fwd").nodes[0].metadata.get_int(&["weight"]).expect("int"), Some(3));
        assert_eq!(Rule::from_service(&s), Some(r.clone()));
        assert_eq!(r.gost_cmdline(&c).as_deref(), Some("gost -L \"udp://:10053/127.0.0.1:53,127.0.0.2:53?strategy=fifo&maxFails=2&failTimeout=20s&keepAlive=true&ttl=30s\""));
    }

    #[test]
    fn validation_names_the_field() {
        let c = cfg("services:\n- name: web\n  addr: :80\n  handler: {type: tcp}\n  listener: {type: tcp}\n  forwarder: {nodes: [{name: t, addr: 1.2.3.4:80}]}\n");
        let mut r = Rule::new("web", RuleKind::LocalTcp);
        r.listen = ":8080".into();
        r.targets = vec!["127.0.0.1:80".into()];
        assert_eq!(r.validate(&c, None).expect_err("dup").field, "name");
        assert!(r.validate(&c, Some("web")).is_ok(), "renaming onto itself is fine");
        r.name = "new".into();
        r.listen = "8080".into();
        assert_eq!(r.validate(&c, None).expect_err("listen").field, "listen");
        r.listen = ":8080".into();
        r.targets.push("nohost".into());
        assert_eq!(r.validate(&c, None).expect_err("target").field, "targets.1");
        r.targets.pop();
        r.strategy = "round-robin".into();
        assert_eq!(r.validate(&c, None).expect_err("strategy").field, "strategy");
        r.strategy = "hash".into();
        r.chain = "nope".into();
        assert_eq!(r.validate(&c, None).expect_err("chain").field, "chain");
        r.chain.clear();
        r.targets.clear();
        assert_eq!(r.validate(&c, None).expect_err("targets").field, "targets");
    }

    #[test]
    fn upsert_replaces_in_place_and_keeps_other_services() {
        let c = cfg("services:\n- name: a\n  addr: :1\n  handler: {type: socks5}\n  listener: {type: tcp}\n- name: b\n  addr: :2\n  handler: {type: tcp}\n  listener: {type: tcp}\n  forwarder: {nodes: [{name: t, addr: 1.2.3.4:80}]}\n");
        let (rules, other) = rules_of(&c);
        assert_eq!(other, vec!["a"], "a socks5 proxy is not a forwarding rule");
        let mut r = rules[0].clone();
        r.name = "b2".into();
        r.targets = vec!["127.0.0.1:9".into()];
        let out = upsert(&c, &r, Some("b")).expect("valid");
        assert_eq!(out.services.len(), 2);
        assert_eq!(out.services[1].name, "b2");
        assert_eq!(out.services[0], c.services[0]);
    }
}

/// The whole profile as one `gost` command line, when GOST's CLI can say it: every
/// service is a rule the form shows, and they share one chain (or none) whose hops
/// each have a single node.
pub fn profile_cmdline(cfg: &Config) -> Option<String> {
    let (rules, other) = rules_of(cfg);
    if !other.is_empty() || rules.is_empty() {
        return None;
    }
    let chain = rules[0].chain.clone();
    if rules.iter().any(|r| r.chain != chain) {
        return None;
    }
    let mut parts = vec!["gost".to_string()];
    let mut chain_flags = String::new();
    for (i, r) in rules.iter().enumerate() {
        let one = r.gost_cmdline(cfg)?;
        let rest = one.strip_prefix("gost ")?;
        // `-L "…"` first, then the chain's `-F` flags (the same for every rule).
        let (l, f) = match rest.find(" -F ") {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, ""),
        };
        parts.push(l.to_string());
        if i == 0 {
            chain_flags = f.to_string();
        }
    }
    Some(format!("{}{}", parts.join(" "), chain_flags))
}

#[cfg(test)]
mod profile_tests {
    use super::*;
    use crate::config::{build_from_cmd, load_str};

    #[test]
    fn a_profile_of_rules_is_one_command_line_that_builds_back() {
        let c = build_from_cmd(
            &["tcp://:8080/127.0.0.1:80,127.0.0.2:80?strategy=fifo&maxFails=2&failTimeout=30s".into(), "udp://:10053/127.0.0.1:53?keepAlive=true&ttl=9s".into()],
            &["forward://127.0.0.9:8443".into()],
        )
        .expect("builds");
        let line = profile_cmdline(&c).expect("representable");
        assert_eq!(line, "gost -L \"tcp://:8080/127.0.0.1:80,127.0.0.2:80?strategy=fifo&maxFails=2&failTimeout=30s\" -L \"udp://:10053/127.0.0.1:53?keepAlive=true&ttl=9s\" -F \"forward://127.0.0.9:8443\"");
        let c2 = load_str("x.yaml", "services:\n- name: p\n  addr: :1080\n  handler: {type: socks5}\n  listener: {type: tcp}\n").expect("loads").config;
        assert_eq!(profile_cmdline(&c2), None, "a proxy service is not a forwarding rule");
    }
}
