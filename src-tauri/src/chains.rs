//! The Chains view's backend: a profile's chains as form drafts and back, saved
//! atomically and applied as a diff, node health for the stats stream, and the
//! probe that says where a rule's path breaks.
//!
//! A saved draft is applied onto the chain it was read from (hops and nodes are
//! matched by their `origin` index, not rebuilt), so everything the form does not
//! show — TLS files, header maps, hop bypasses, unknown keys — stays as written.

use crate::backend::{store_err, Backend};
use crate::commands::Shared;
use portway_core::config::registry::{PORTWAY_CONNECTORS, PORTWAY_DIALERS};
use portway_core::config::validate::{check_addr, resolve_chain, split_host_port};
use portway_core::config::{AuthConfig, ChainConfig, Config, ConnectorConfig, DialerConfig, HopConfig, Metadata, NodeConfig, SelectorConfig, TlsConfig};
use portway_core::selector::Strategy;
use portway_core::stats::ServiceStats;
use portway_ipc::*;
use serde_yaml::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use tauri::State;

/// The protocols the form offers (GOST connectors Portway runs over a stream).
pub const PROTOCOLS: &[&str] = &["socks5", "http", "relay", "sshd", "forward"];

fn invalid(field: impl Into<String>, message: impl Into<String>) -> AppError {
    AppError { field: Some(field.into()), ..AppError::new(ErrorCode::Invalid, message) }
}

/// A scalar metadata value as the form shows it; `None` for lists and maps.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

fn md_text(md: &Metadata, key: &str) -> Option<String> {
    md.0.get(key).and_then(scalar_text)
}

fn node_tls(n: &NodeConfig) -> Option<&TlsConfig> {
    n.dialer.as_ref().and_then(|d| d.tls.as_ref()).or(n.connector.as_ref().and_then(|c| c.tls.as_ref()))
}

/// The node's free options as `key=value`: connector metadata plainly, node and
/// dialer metadata prefixed unless they repeat the connector's value (GOST's
/// command line writes a query key into all three maps), TLS name and checking.
fn options_of(n: &NodeConfig) -> Vec<NodeOption> {
    let mut out = Vec::new();
    if let Some(t) = node_tls(n) {
        if !t.server_name.is_empty() {
            out.push(NodeOption { key: "serverName".into(), value: t.server_name.clone() });
        }
        if t.secure {
            out.push(NodeOption { key: "secure".into(), value: "true".into() });
        }
    }
    let cmd = n.connector.as_ref().map(|c| c.metadata.clone()).unwrap_or_default();
    for (k, v) in &cmd.0 {
        if let Some(t) = scalar_text(v) {
            out.push(NodeOption { key: k.clone(), value: t });
        }
    }
    let dmd = n.dialer.as_ref().map(|d| d.metadata.clone()).unwrap_or_default();
    for (prefix, md) in [("node.", &n.metadata), ("dialer.", &dmd)] {
        for (k, v) in &md.0 {
            let Some(t) = scalar_text(v) else { continue };
            if md_text(&cmd, k).as_deref() == Some(t.as_str()) {
                continue;
            }
            out.push(NodeOption { key: format!("{prefix}{k}"), value: t });
        }
    }
    out
}

fn protocol_of(n: &NodeConfig) -> String {
    n.connector.as_ref().map(|c| c.kind.clone()).filter(|k| !k.is_empty()).unwrap_or_else(|| "http".into())
}

fn transport_of(n: &NodeConfig) -> String {
    n.dialer.as_ref().map(|d| d.kind.clone()).filter(|k| !k.is_empty()).unwrap_or_else(|| "tcp".into())
}

fn node_draft(n: &NodeConfig, index: usize) -> NodeDraft {
    let transport = transport_of(n);
    // GOST keeps an SSH login on the dialer, everything else's on the connector.
    let auth = if transport == "sshd" { n.dialer.as_ref().and_then(|d| d.auth.as_ref()) } else { None }.or(n.connector.as_ref().and_then(|c| c.auth.as_ref()));
    NodeDraft {
        name: n.name.clone(),
        protocol: protocol_of(n),
        transport,
        addr: n.addr.clone(),
        username: auth.map(|a| a.username.clone()).unwrap_or_default(),
        password: auth.map(|a| a.password.clone()).unwrap_or_default(),
        options: options_of(n),
        origin: Some(index as u32),
    }
}

fn hop_draft(cfg: &Config, h: &HopConfig, index: usize) -> HopDraft {
    let shared = h.nodes.is_empty();
    // A shared hop's selector and nodes are the top-level hop's: show those.
    let src = if shared { cfg.hops.iter().find(|t| t.name == h.name).unwrap_or(h) } else { h };
    let sel = src.selector.clone().unwrap_or_default();
    HopDraft {
        name: h.name.clone(),
        strategy: sel.strategy.clone(),
        max_fails: sel.max_fails.clamp(1, u32::MAX as i64) as u32,
        fail_timeout_secs: sel.fail_timeout.as_secs().clamp(1, u32::MAX as u64) as u32,
        nodes: src.nodes.iter().enumerate().map(|(i, n)| node_draft(n, i)).collect(),
        shared,
        origin: Some(index as u32),
    }
}

fn keys_of(prefix: &str, extra: &BTreeMap<String, Value>, out: &mut Vec<String>) {
    out.extend(extra.keys().map(|k| format!("{prefix}{k}")));
}

/// What the form keeps without showing it, named by where it is.
fn kept_of(c: &ChainConfig) -> Vec<String> {
    let mut out = Vec::new();
    if c.selector.is_some() {
        out.push("selector (of the chain)".into());
    }
    keys_of("metadata.", &c.metadata.0, &mut out);
    keys_of("", &c.extra, &mut out);
    for (hi, h) in c.hops.iter().enumerate() {
        let mut k = Vec::new();
        if h.nodes.is_empty() {
            k.push(format!("nodes of the top-level hop {:?}", h.name));
        }
        keys_of("metadata.", &h.metadata.0, &mut k);
        keys_of("", &h.extra, &mut k);
        if let Some(s) = &h.selector {
            keys_of("selector.", &s.extra, &mut k);
        }
        out.extend(k.into_iter().map(|k| format!("hops.{hi}: {k}")));
        for (ni, n) in h.nodes.iter().enumerate() {
            let mut k = Vec::new();
            keys_of("", &n.extra, &mut k);
            if !n.network.is_empty() {
                k.push("network".into());
            }
            for (name, md) in [("metadata", &n.metadata), ("connector.metadata", &n.connector.as_ref().map(|c| c.metadata.clone()).unwrap_or_default()), ("dialer.metadata", &n.dialer.as_ref().map(|d| d.metadata.clone()).unwrap_or_default())] {
                k.extend(md.0.iter().filter(|(_, v)| scalar_text(v).is_none()).map(|(key, _)| format!("{name}.{key}")));
            }
            if let Some(c) = &n.connector {
                keys_of("connector.", &c.extra, &mut k);
            }
            if let Some(d) = &n.dialer {
                keys_of("dialer.", &d.extra, &mut k);
            }
            if let Some(t) = node_tls(n) {
                for (name, v) in [("certFile", &t.cert_file), ("keyFile", &t.key_file), ("caFile", &t.ca_file)] {
                    if !v.is_empty() {
                        k.push(format!("tls.{name}"));
                    }
                }
                keys_of("tls.", &t.extra, &mut k);
            }
            out.extend(k.into_iter().map(|k| format!("hops.{hi}.nodes.{ni}: {k}")));
        }
    }
    out
}

/// Names of the services that go through chain `name`.
pub fn users_of(cfg: &Config, name: &str) -> Vec<String> {
    cfg.services.iter().filter(|s| s.handler.chain == name || s.listener.chain == name).map(|s| s.name.clone()).collect()
}

/// A profile's chains as the view lists them.
pub fn chain_views(cfg: &Config) -> Vec<ChainView> {
    cfg.chains
        .iter()
        .map(|c| ChainView {
            chain: ChainDraft { name: c.name.clone(), hops: c.hops.iter().enumerate().map(|(i, h)| hop_draft(cfg, h, i)).collect() },
            used_by: users_of(cfg, &c.name),
            kept: kept_of(c),
        })
        .collect()
}

/// The form's checks, naming the field (`hops.1.nodes.0.addr`).
pub fn validate(cfg: &Config, d: &ChainDraft, original: Option<&str>) -> Result<(), AppError> {
    let name = d.name.trim();
    if name.is_empty() {
        return Err(invalid("name", "a chain needs a name"));
    }
    if name != d.name {
        return Err(invalid("name", "no spaces at the start or end of the name"));
    }
    if cfg.chains.iter().any(|c| c.name == d.name && Some(c.name.as_str()) != original) {
        return Err(invalid("name", format!("another chain is already called {:?}", d.name)));
    }
    if d.hops.is_empty() {
        return Err(invalid("hops", "add at least one hop"));
    }
    for (hi, h) in d.hops.iter().enumerate() {
        let hf = format!("hops.{hi}");
        if h.shared {
            continue;
        }
        Strategy::parse(&h.strategy).map_err(|e| invalid(format!("{hf}.strategy"), e))?;
        if h.max_fails == 0 {
            return Err(invalid(format!("{hf}.maxFails"), "at least 1"));
        }
        if h.fail_timeout_secs == 0 {
            return Err(invalid(format!("{hf}.failTimeout"), "at least 1 second"));
        }
        if h.nodes.is_empty() {
            return Err(invalid(format!("{hf}.nodes"), "add at least one node"));
        }
        for (ni, n) in h.nodes.iter().enumerate() {
            let nf = format!("{hf}.nodes.{ni}");
            if n.name.trim().is_empty() {
                return Err(invalid(format!("{nf}.name"), "a node needs a name"));
            }
            if h.nodes.iter().take(ni).any(|o| o.name == n.name) {
                return Err(invalid(format!("{nf}.name"), format!("another node of this hop is already called {:?}", n.name)));
            }
            if !PORTWAY_CONNECTORS.contains(&n.protocol.as_str()) {
                return Err(invalid(format!("{nf}.protocol"), format!("unknown protocol {:?} (use {})", n.protocol, PROTOCOLS.join(", "))));
            }
            if !PORTWAY_DIALERS.contains(&n.transport.as_str()) {
                return Err(invalid(format!("{nf}.transport"), format!("unknown transport {:?} (use tcp or tls)", n.transport)));
            }
            if (n.protocol == "sshd") != (n.transport == "sshd") {
                return Err(invalid(format!("{nf}.transport"), "an sshd node runs over SSH: protocol and transport are both sshd"));
            }
            let port_missing = match split_host_port(&n.addr) {
                Some((_, p)) => p.is_empty() || p == "0",
                None => !n.addr.contains(':') && !n.addr.trim().is_empty(),
            };
            if port_missing {
                return Err(invalid(format!("{nf}.addr"), "address needs a port"));
            }
            check_addr(&n.addr, "address").map_err(|e| invalid(format!("{nf}.addr"), e))?;
            if n.username.is_empty() && !n.password.is_empty() {
                return Err(invalid(format!("{nf}.username"), "a password needs a username"));
            }
            for (oi, o) in n.options.iter().enumerate() {
                let k = o.key.trim();
                if k.is_empty() || k != o.key || k.contains('=') {
                    return Err(invalid(format!("{nf}.options.{oi}"), "an option needs a key (no spaces or '=')"));
                }
                if n.options.iter().take(oi).any(|p| p.key.eq_ignore_ascii_case(k)) {
                    return Err(invalid(format!("{nf}.options.{oi}"), format!("option {k:?} is given twice")));
                }
                if k.eq_ignore_ascii_case("secure") && portway_core::config::parse_go_bool(&o.value).is_none() {
                    return Err(invalid(format!("{nf}.options.{oi}"), "secure is true or false"));
                }
            }
        }
    }
    Ok(())
}

/// `text` as a metadata value, keeping the original's type when it reads the same.
fn md_value(text: &str, old: Option<&Value>) -> Value {
    match old {
        Some(v) if scalar_text(v).as_deref() == Some(text) => v.clone(),
        _ => Value::String(text.to_string()),
    }
}

/// Where an option key goes.
enum Slot<'a> {
    ServerName,
    Secure,
    Node(&'a str),
    Dialer(&'a str),
    Connector(&'a str),
}

fn slot(key: &str) -> Slot<'_> {
    if key.eq_ignore_ascii_case("serverName") {
        Slot::ServerName
    } else if key.eq_ignore_ascii_case("secure") {
        Slot::Secure
    } else if let Some(k) = key.strip_prefix("node.") {
        Slot::Node(k)
    } else if let Some(k) = key.strip_prefix("dialer.") {
        Slot::Dialer(k)
    } else {
        Slot::Connector(key)
    }
}

fn tls_mut(n: &mut NodeConfig) -> &mut TlsConfig {
    let d = n.dialer.get_or_insert_with(DialerConfig::default);
    d.tls.get_or_insert_with(TlsConfig::default)
}

/// Changes the node's options from `old` (what the form was shown) to `new`,
/// touching only the keys that changed.
fn apply_options(n: &mut NodeConfig, old: &[NodeOption], new: &[NodeOption]) {
    let old_of = |k: &str| old.iter().find(|o| o.key == k).map(|o| o.value.clone());
    for o in old {
        if new.iter().any(|x| x.key == o.key) {
            continue;
        }
        match slot(&o.key) {
            Slot::ServerName => {
                for t in [n.dialer.as_mut().and_then(|d| d.tls.as_mut()), n.connector.as_mut().and_then(|c| c.tls.as_mut())].into_iter().flatten() {
                    t.server_name.clear();
                }
            }
            Slot::Secure => {
                for t in [n.dialer.as_mut().and_then(|d| d.tls.as_mut()), n.connector.as_mut().and_then(|c| c.tls.as_mut())].into_iter().flatten() {
                    t.secure = false;
                }
            }
            Slot::Node(k) => {
                n.metadata.0.remove(k);
            }
            Slot::Dialer(k) => {
                if let Some(d) = n.dialer.as_mut() {
                    d.metadata.0.remove(k);
                }
            }
            Slot::Connector(k) => {
                if let Some(c) = n.connector.as_mut() {
                    c.metadata.0.remove(k);
                }
                // The same key folded in from the node's and dialer's maps goes too.
                if md_text(&n.metadata, k).as_deref() == Some(o.value.as_str()) {
                    n.metadata.0.remove(k);
                }
                if let Some(d) = n.dialer.as_mut() {
                    if md_text(&d.metadata, k).as_deref() == Some(o.value.as_str()) {
                        d.metadata.0.remove(k);
                    }
                }
            }
        }
    }
    for o in new {
        let before = old_of(&o.key);
        if before.as_deref() == Some(o.value.as_str()) {
            continue;
        }
        match slot(&o.key) {
            Slot::ServerName => tls_mut(n).server_name = o.value.clone(),
            Slot::Secure => tls_mut(n).secure = portway_core::config::parse_go_bool(&o.value).unwrap_or(false),
            Slot::Node(k) => {
                let v = md_value(&o.value, n.metadata.0.get(k));
                n.metadata.0.insert(k.to_string(), v);
            }
            Slot::Dialer(k) => {
                let d = n.dialer.get_or_insert_with(DialerConfig::default);
                let v = md_value(&o.value, d.metadata.0.get(k));
                d.metadata.0.insert(k.to_string(), v);
            }
            Slot::Connector(k) => {
                let c = n.connector.get_or_insert_with(ConnectorConfig::default);
                let v = md_value(&o.value, c.metadata.0.get(k));
                c.metadata.0.insert(k.to_string(), v);
                if let Some(b) = &before {
                    if md_text(&n.metadata, k).as_deref() == Some(b.as_str()) {
                        n.metadata.0.insert(k.to_string(), Value::String(o.value.clone()));
                    }
                    if let Some(d) = n.dialer.as_mut() {
                        if md_text(&d.metadata, k).as_deref() == Some(b.as_str()) {
                            d.metadata.0.insert(k.to_string(), Value::String(o.value.clone()));
                        }
                    }
                }
            }
        }
    }
    // TLS left with nothing in it is no TLS block at all.
    for t in [n.dialer.as_mut().map(|d| &mut d.tls), n.connector.as_mut().map(|c| &mut c.tls)].into_iter().flatten() {
        if t.as_ref().is_some_and(|x| *x == TlsConfig::default()) {
            *t = None;
        }
    }
}

fn set_auth(slot: &mut Option<AuthConfig>, user: &str, pass: &str) {
    match slot {
        Some(a) => {
            a.username = user.to_string();
            a.password = pass.to_string();
            if a.username.is_empty() && a.password.is_empty() && a.extra.is_empty() {
                *slot = None;
            }
        }
        None if !user.is_empty() || !pass.is_empty() => *slot = Some(AuthConfig { username: user.into(), password: pass.into(), ..Default::default() }),
        None => {}
    }
}

/// The node for `d`, starting from `base` (the node it was read from).
fn node_from_draft(base: Option<&NodeConfig>, d: &NodeDraft) -> NodeConfig {
    let mut n = base.cloned().unwrap_or_default();
    let old = base.map(node_draft_of).unwrap_or_else(|| NodeDraft { name: String::new(), protocol: "http".into(), transport: "tcp".into(), addr: String::new(), username: String::new(), password: String::new(), options: Vec::new(), origin: None });
    n.name = d.name.clone();
    n.addr = d.addr.clone();
    let (had_c, had_d) = (n.connector.is_some(), n.dialer.is_some());
    let c = n.connector.get_or_insert_with(ConnectorConfig::default);
    c.kind = d.protocol.clone();
    let di = n.dialer.get_or_insert_with(DialerConfig::default);
    di.kind = d.transport.clone();
    if d.username != old.username || d.password != old.password || d.transport != old.transport {
        let ssh = d.transport == "sshd";
        let (user, pass) = (d.username.as_str(), d.password.as_str());
        if let Some(c) = n.connector.as_mut() {
            set_auth(&mut c.auth, if ssh { "" } else { user }, if ssh { "" } else { pass });
        }
        if let Some(di) = n.dialer.as_mut() {
            if ssh || di.auth.is_some() {
                set_auth(&mut di.auth, if ssh { user } else { "" }, if ssh { pass } else { "" });
            }
        }
    }
    apply_options(&mut n, &old.options, &d.options);
    // A node the file wrote without connector/dialer blocks keeps GOST's defaults
    // implicit (http over tcp) rather than gaining blocks that say the same.
    if !had_c && n.connector.as_ref().is_some_and(|c| *c == ConnectorConfig { kind: "http".into(), ..Default::default() }) {
        n.connector = None;
    }
    if !had_d && n.dialer.as_ref().is_some_and(|x| *x == DialerConfig { kind: "tcp".into(), ..Default::default() }) {
        n.dialer = None;
    }
    n
}

fn node_draft_of(n: &NodeConfig) -> NodeDraft {
    node_draft(n, 0)
}

fn selector_of(h: &HopDraft, old: Option<&SelectorConfig>) -> Option<SelectorConfig> {
    let default = SelectorConfig::default();
    let sel = SelectorConfig {
        strategy: h.strategy.clone(),
        max_fails: h.max_fails as i64,
        fail_timeout: Duration::from_secs(h.fail_timeout_secs as u64),
        extra: old.map(|s| s.extra.clone()).unwrap_or_default(),
    };
    let is_default = sel.strategy == default.strategy && sel.max_fails == default.max_fails && sel.fail_timeout == default.fail_timeout;
    // Write a selector only when it says something GOST's defaults do not.
    if is_default && old.is_none() {
        None
    } else {
        Some(sel)
    }
}

/// The profile with chain `d` saved (validated first). `original`: the chain's
/// name before this edit, `None` for a new one. A renamed chain's users follow it.
pub fn upsert_chain(cfg: &Config, d: &ChainDraft, original: Option<&str>) -> Result<Config, AppError> {
    validate(cfg, d, original)?;
    let mut out = cfg.clone();
    let at = match original {
        Some(o) => Some(out.chains.iter().position(|c| c.name == o).ok_or_else(|| AppError::new(ErrorCode::NotFound, format!("no chain named {o:?}")))?),
        None => None,
    };
    let base = at.map(|i| out.chains[i].clone()).unwrap_or_default();
    let mut chain = base.clone();
    chain.name = d.name.clone();
    chain.hops = d
        .hops
        .iter()
        .enumerate()
        .map(|(hi, h)| {
            let old = h.origin.and_then(|o| base.hops.get(o as usize));
            let mut hop = old.cloned().unwrap_or_default();
            hop.name = if h.name.trim().is_empty() { format!("hop-{hi}") } else { h.name.clone() };
            if h.shared && old.is_some_and(|o| o.nodes.is_empty()) {
                hop.name = old.map(|o| o.name.clone()).unwrap_or_default();
                return hop;
            }
            hop.selector = selector_of(h, old.and_then(|o| o.selector.as_ref()));
            hop.nodes = h.nodes.iter().map(|n| node_from_draft(n.origin.and_then(|o| old.and_then(|h| h.nodes.get(o as usize))), n)).collect();
            hop
        })
        .collect();
    match at {
        Some(i) => out.chains[i] = chain,
        None => out.chains.push(chain),
    }
    if let Some(o) = original.filter(|o| *o != d.name) {
        for s in &mut out.services {
            for c in [&mut s.handler.chain, &mut s.listener.chain] {
                if c == o {
                    *c = d.name.clone();
                }
            }
        }
    }
    // What the engine would refuse when a rule starts (a TLS file that is not
    // there, SSH options), said now.
    resolve_chain(&out, &d.name, &format!("chain {:?}", d.name)).map_err(|e| AppError { field: Some("chain".into()), ..AppError::new(ErrorCode::Invalid, e) })?;
    Ok(out)
}

/// "web" → "web-2" (or -3 …), not clashing with `taken`.
fn unique_name(base: &str, taken: &[String]) -> String {
    let stem = base.rsplit_once('-').filter(|(_, n)| n.parse::<u32>().is_ok()).map(|(s, _)| s).unwrap_or(base);
    (2..).map(|i| format!("{stem}-{i}")).find(|n| !taken.contains(n)).unwrap_or_else(|| format!("{base}-copy"))
}

/// Per chain, its nodes' health merged over the services that use it (the worst
/// of them: most consecutive failures, latest dead-until).
pub fn chain_health(services: &[ServiceStats]) -> Vec<ChainHealth> {
    let mut out: Vec<ChainHealth> = Vec::new();
    for s in services {
        for (hi, h) in s.hops.iter().enumerate() {
            let ci = match out.iter().position(|c| c.chain == h.chain) {
                Some(i) => i,
                None => {
                    out.push(ChainHealth { chain: h.chain.clone(), hops: Vec::new() });
                    out.len() - 1
                }
            };
            let hops = &mut out[ci].hops;
            if hops.len() <= hi {
                hops.push(HopHealthView { hop: h.hop.clone(), nodes: Vec::new() });
            }
            let nodes = &mut hops[hi].nodes;
            for (ni, n) in h.nodes.iter().enumerate() {
                let len = nodes.len();
                match nodes.get_mut(ni) {
                    Some(m) if m.name == n.name && m.addr == n.addr => {
                        m.fails = m.fails.max(n.fails);
                        m.total_failures += n.total_failures;
                        m.successes += n.successes;
                        m.dead_until = m.dead_until.max(n.dead_until);
                    }
                    None if len == ni => nodes.push(NodeHealthView {
                        name: n.name.clone(),
                        addr: n.addr.clone(),
                        fails: n.fails,
                        total_failures: n.total_failures,
                        successes: n.successes,
                        dead_until: n.dead_until,
                    }),
                    _ => {}
                }
            }
        }
    }
    out
}

impl Backend {
    /// The active profile's chains, as saved.
    pub fn chains_list(&self) -> Result<Vec<ChainView>, AppError> {
        let (_, loaded) = self.load_active()?;
        Ok(chain_views(&loaded.config))
    }

    /// Validates, writes the profile atomically and applies it as a diff: only the
    /// rules using the chain restart.
    pub fn chain_save(&self, draft: ChainDraft, original: Option<String>) -> Result<AppSnapshot, AppError> {
        let (name, loaded) = self.load_active()?;
        let cfg = upsert_chain(&loaded.config, &draft, original.as_deref())?;
        self.store.save(&name, &cfg).map_err(store_err)?;
        tracing::info!(profile = %name, chain = %draft.name, "chain saved");
        self.apply(&name, cfg)?;
        self.snapshot()
    }

    /// Deletes a chain no service uses; otherwise says which rules use it.
    pub fn chain_delete(&self, chain: &str) -> Result<AppSnapshot, AppError> {
        let (name, loaded) = self.load_active()?;
        let mut cfg = loaded.config;
        if cfg.chain(chain).is_none() {
            return Err(AppError::new(ErrorCode::NotFound, format!("no chain named {chain:?}")));
        }
        let users = users_of(&cfg, chain);
        if !users.is_empty() {
            let list = users.iter().map(|u| format!("{u:?}")).collect::<Vec<_>>().join(", ");
            let what = if users.len() == 1 { "rule" } else { "rules" };
            return Err(AppError { rule: users.first().cloned(), ..AppError::new(ErrorCode::Invalid, format!("chain {chain:?} is used by {what} {list}: pick another chain for {} first", if users.len() == 1 { "it" } else { "them" })) });
        }
        cfg.chains.retain(|c| c.name != chain);
        self.store.save(&name, &cfg).map_err(store_err)?;
        self.apply(&name, cfg)?;
        self.snapshot()
    }

    /// Copies a chain (every key of it) under a free name.
    pub fn chain_duplicate(&self, chain: &str) -> Result<AppSnapshot, AppError> {
        let (name, loaded) = self.load_active()?;
        let mut cfg = loaded.config;
        let mut copy = cfg.chain(chain).cloned().ok_or_else(|| AppError::new(ErrorCode::NotFound, format!("no chain named {chain:?}")))?;
        let taken: Vec<String> = cfg.chains.iter().map(|c| c.name.clone()).collect();
        copy.name = unique_name(chain, &taken);
        cfg.chains.push(copy);
        self.store.save(&name, &cfg).map_err(store_err)?;
        self.apply(&name, cfg)?;
        self.snapshot()
    }

    /// Dials through `rule`'s chain as a connection would (to each of its
    /// targets) and reports each hop's result and time.
    pub fn chain_probe(&self, rule: &str) -> Result<ProbeView, AppError> {
        let cfg = self.engine.config();
        let svc = cfg.service(rule).ok_or_else(|| AppError { rule: Some(rule.into()), ..AppError::new(ErrorCode::NotFound, format!("no rule named {rule:?}")) })?;
        let chain = if svc.handler.chain.is_empty() { svc.listener.chain.clone() } else { svc.handler.chain.clone() };
        let n_hops = cfg.chain(&chain).map(|c| c.hops.len()).unwrap_or(0);
        let e = self.engine.clone();
        let r = rule.to_string();
        let report = self
            .rt
            .block_on(async move { e.probe(&r, None).await })
            .map_err(|err| AppError { rule: Some(rule.into()), ..AppError::new(ErrorCode::NotFound, err.to_string()) })?;
        let hops = report
            .hops
            .into_iter()
            .enumerate()
            .map(|(i, h)| ProbeHop { index: (i < n_hops).then_some(i as u32), hop: h.hop, node: h.node, addr: h.addr, ms: h.ms, error: h.error })
            .collect();
        if !report.ok {
            // Never the password: the engine's messages name nodes by address.
            tracing::info!(rule = %rule, "probe failed: {}", report.error.as_deref().unwrap_or(""));
        }
        let targets = report.targets.into_iter().map(|t| ProbeTarget { target: t.target, ok: t.ok, ms: t.ms, error: t.error }).collect();
        Ok(ProbeView { rule: report.service, chain, target: report.target, ok: report.ok, ms: report.ms, hops, error: report.error, targets })
    }
}

async fn run<T: Send + 'static>(b: &Shared, f: impl FnOnce(&Backend) -> Result<T, AppError> + Send + 'static) -> Result<T, AppError> {
    let b = b.clone();
    tauri::async_runtime::spawn_blocking(move || f(&b)).await.map_err(|e| AppError::new(ErrorCode::Engine, format!("internal error: {e}")))?
}

#[tauri::command]
pub async fn chains_list(b: State<'_, Shared>) -> Result<Vec<ChainView>, AppError> {
    run(&b, |b| b.chains_list()).await
}

#[tauri::command]
pub async fn chain_save(b: State<'_, Shared>, draft: ChainDraft, original: Option<String>) -> Result<AppSnapshot, AppError> {
    run(&b, move |b| b.chain_save(draft, original)).await
}

#[tauri::command]
pub async fn chain_delete(b: State<'_, Shared>, name: String) -> Result<AppSnapshot, AppError> {
    run(&b, move |b| b.chain_delete(&name)).await
}

#[tauri::command]
pub async fn chain_duplicate(b: State<'_, Shared>, name: String) -> Result<AppSnapshot, AppError> {
    run(&b, move |b| b.chain_duplicate(&name)).await
}

#[tauri::command]
pub async fn chain_probe(b: State<'_, Shared>, rule: String) -> Result<ProbeView, AppError> {
    run(&b, move |b| b.chain_probe(&rule)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use portway_core::config::load_str;

    fn cfg(y: &str) -> Config {
        load_str("t.yaml", y).expect("loads").config
    }

    #[test]
    fn unique_names_count_up() {
        assert_eq!(unique_name("c", &["c".into(), "c-2".into()]), "c-3");
        assert_eq!(unique_name("c-2", &["c".into(), "c-2".into()]), "c-3");
    }

    #[test]
    fn options_fold_the_command_lines_triple_keys() {
        let c = cfg("chains:\n- name: c\n  hops:\n  - name: h\n    nodes:\n    - name: n\n      addr: 1.2.3.4:1080\n      connector: {type: socks5, metadata: {udp: 'true'}}\n      dialer: {type: tcp, metadata: {udp: 'true'}}\n      metadata: {udp: 'true', weight: 2}\n");
        let d = node_draft(&c.chains[0].hops[0].nodes[0], 0);
        assert_eq!(d.options, vec![NodeOption { key: "udp".into(), value: "true".into() }, NodeOption { key: "node.weight".into(), value: "2".into() }]);
        let mut e = d.clone();
        e.options.retain(|o| o.key != "udp");
        let n = node_from_draft(Some(&c.chains[0].hops[0].nodes[0]), &e);
        assert!(n.metadata.get(&["udp"]).is_none() && n.dialer.as_ref().is_some_and(|d| d.metadata.is_empty()));
        assert_eq!(n.metadata.get_int(&["weight"]).ok().flatten(), Some(2), "the number stays a number");
    }
}
