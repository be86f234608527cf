//! GOST's command line: `-L` service URLs and `-F` node URLs into a [`Config`], with
//! the rules of go-gost/x `config/cmd/cmd.go` (`BuildConfigFromCmd`): scheme split on
//! `+`, registry fallbacks, targets from the path, port ranges, query keys routed to
//! selector / metadata / auth / tls, and GOST's names (`service-N`, `chain-0`,
//! `hop-N`, `node-N`, `target-N`).

use super::duration::parse_go_duration;
use super::registry::*;
use super::types::*;
use serde_yaml::Value;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{arg}: {message}")]
pub struct UrlError {
    /// The URL as given.
    pub arg: String,
    pub message: String,
}

fn uerr(arg: &str, msg: impl Into<String>) -> UrlError {
    UrlError { arg: arg.to_string(), message: msg.into() }
}

/// The parts of a URL GOST looks at, after Go's `url.Parse`.
#[derive(Debug, Default)]
struct Parsed {
    scheme: String,
    user: Option<(String, Option<String>)>,
    host: String,
    path: String,
    query: Vec<(String, String)>,
}

fn hexval(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decoding as Go's `url.PathUnescape` / `QueryUnescape` (`plus` → space).
fn unescape(s: &str, plus: bool) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let (Some(h), Some(l)) = (b.get(i + 1).and_then(|c| hexval(*c)), b.get(i + 2).and_then(|c| hexval(*c)))
                else {
                    let end = (i + 3).min(b.len());
                    return Err(format!("invalid URL escape {:?}", String::from_utf8_lossy(&b[i..end])));
                };
                out.push(h << 4 | l);
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "URL escape is not valid UTF-8".to_string())
}

/// Go's `url.ParseQuery`: `&`-separated `k=v`, both unescaped; a `;` is an error.
fn parse_query(q: &str, arg: &str) -> Result<Vec<(String, String)>, UrlError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for part in q.split('&') {
        if part.is_empty() {
            continue;
        }
        if part.contains(';') {
            return Err(uerr(arg, format!("invalid semicolon separator in query {part:?}")));
        }
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let k = unescape(k, true).map_err(|e| uerr(arg, e))?;
        let v = unescape(v, true).map_err(|e| uerr(arg, e))?;
        // First value wins, as GOST takes `v[0]`.
        if !out.iter().any(|(ok, _)| ok == &k) {
            out.push((k, v));
        }
    }
    Ok(out)
}

/// Splits `[scheme://][user[:pass]@]host[/path][?query]`. The host is cut out before
/// anything else looks at it, as GOST's `cutHost` does, so `:8000-8003` survives.
fn parse(raw: &str) -> Result<Parsed, UrlError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(uerr(raw, "empty URL"));
    }
    let s = if s.starts_with(':') || !s.contains("://") { format!("auto://{s}") } else { s.to_string() };
    let (scheme, rest) = s.split_once("://").ok_or_else(|| uerr(raw, "missing scheme"))?;
    if scheme.is_empty()
        || !scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        || !scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return Err(uerr(raw, format!("invalid scheme {scheme:?}")));
    }
    let mut p = Parsed { scheme: scheme.to_ascii_lowercase(), ..Default::default() };
    if p.scheme == "https" {
        p.scheme = "http+tls".into();
    }
    let rest = rest.split('#').next().unwrap_or("");
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    let after = &rest[auth_end..];
    let host = match authority.rfind('@') {
        Some(at) => {
            let ui = &authority[..at];
            let (u, pw) = match ui.split_once(':') {
                Some((u, pw)) => (u, Some(pw)),
                None => (ui, None),
            };
            let u = unescape(u, false).map_err(|e| uerr(raw, format!("user name: {e}")))?;
            let pw = match pw {
                Some(pw) => Some(unescape(pw, false).map_err(|e| uerr(raw, format!("password: {e}")))?),
                None => None,
            };
            p.user = Some((u, pw));
            &authority[at + 1..]
        }
        None => authority,
    };
    if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(uerr(raw, format!("invalid character in host {host:?}")));
    }
    p.host = host.to_string();
    let (path, query) = match after.split_once('?') {
        Some((a, q)) => (a, q),
        None => (after, ""),
    };
    p.path = unescape(path, false).map_err(|e| uerr(raw, format!("path: {e}")))?;
    p.query = parse_query(query, raw)?;
    Ok(p)
}

/// Go's `url.Parse` checks on a host (`parseHost` and `unescape` in host mode), which
/// every `-F` URL goes through in GOST (`-L` hosts are cut out before parsing, so a
/// `-L` host is taken verbatim). Returns the unescaped host.
fn go_check_host(host: &str, raw: &str) -> Result<String, UrlError> {
    let port_part = if host.starts_with('[') {
        let i = host.rfind(']').ok_or_else(|| uerr(raw, format!("missing ']' in host {host:?}")))?;
        &host[i + 1..]
    } else {
        host.rfind(':').map(|i| &host[i..]).unwrap_or("")
    };
    let port_ok = port_part.is_empty() || (port_part.starts_with(':') && port_part[1..].bytes().all(|b| b.is_ascii_digit()));
    if !port_ok {
        return Err(uerr(raw, format!("invalid port {port_part:?} after host (expected host:port with a numeric port)")));
    }
    let b = host.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            let (Some(h), Some(_)) = (b.get(i + 1).and_then(|c| hexval(*c)), b.get(i + 2).and_then(|c| hexval(*c))) else {
                let end = (i + 3).min(b.len());
                return Err(uerr(raw, format!("invalid URL escape {:?} in host", String::from_utf8_lossy(&b[i..end]))));
            };
            // RFC 3986: in a host, %-encoding is only for non-ASCII bytes (and %25).
            if h < 8 && &b[i..i + 3] != b"%25" {
                return Err(uerr(raw, format!("invalid URL escape {:?} in host", String::from_utf8_lossy(&b[i..i + 3]))));
            }
            i += 3;
            continue;
        }
        let allowed = c >= 0x80 || c.is_ascii_alphanumeric() || b"-_.~!$&'()*+,;=:[]<>\"".contains(&c);
        if !allowed {
            return Err(uerr(raw, format!("invalid character {:?} in host name", c as char)));
        }
        i += 1;
    }
    unescape(host, false).map_err(|e| uerr(raw, format!("host: {e}")))
}

/// Shadowsocks SIP002 userinfo: one base64 `method:password` (GOST, `ss*` schemes,
/// userinfo without a password).
fn sip002(scheme: &str, user: &Option<(String, Option<String>)>) -> Option<AuthConfig> {
    let (u, None) = user.as_ref()? else { return None };
    if !scheme.starts_with("ss") || u.is_empty() {
        return None;
    }
    let cs = String::from_utf8(b64_decode(u)?).ok()?;
    let (m, p) = cs.split_once(':')?;
    Some(AuthConfig { username: m.into(), password: p.into(), extra: Extra::new() })
}

/// `host:8000-8003` → four addresses; anything else → none (used verbatim).
pub fn addr_port_range(addr: &str) -> Vec<String> {
    let Some(colon) = addr.rfind(':') else { return Vec::new() };
    let (host, port) = (&addr[..colon], &addr[colon + 1..]);
    let Some((a, b)) = port.split_once('-') else {
        return if port.parse::<u16>().is_ok() { vec![addr.to_string()] } else { Vec::new() };
    };
    let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) else { return Vec::new() };
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    (lo..=hi).map(|p| format!("{host}:{p}")).collect()
}

fn hostname(host: &str) -> String {
    // Go's url.Hostname(): strip port and IPv6 brackets.
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("").to_string();
    }
    match host.rfind(':') {
        Some(i) => host[..i].to_string(),
        None => host.to_string(),
    }
}

/// Query values are strings on the command line; GOST keeps them as strings.
type Query = Vec<(String, String)>;

fn qget<'a>(q: &'a Query, names: &[&str]) -> Option<&'a str> {
    for n in names {
        if let Some((_, v)) = q.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)) {
            return Some(v.as_str());
        }
    }
    None
}

fn qdel(q: &mut Query, names: &[&str]) {
    q.retain(|(k, _)| !names.iter().any(|n| k.eq_ignore_ascii_case(n)));
}

fn go_int(v: &str) -> i64 {
    let v = v.trim();
    v.parse::<i64>().ok().or_else(|| super::types::parse_go_bool(v).map(|b| b as i64)).unwrap_or(0)
}

fn go_duration(v: &str) -> Duration {
    let v = v.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return if secs > 0.0 { Duration::from_secs_f64(secs) } else { Duration::ZERO };
    }
    parse_go_duration(v).unwrap_or(Duration::ZERO)
}

/// What a command line's config runs differently from what it says: selector
/// strategies GOST does not know (run as round-robin). A YAML profile gets the
/// same warnings from the loader, with lines.
pub fn cmd_warnings(cfg: &Config) -> Vec<crate::config::Warning> {
    let mut out = Vec::new();
    let mut check = |path: String, sel: Option<&SelectorConfig>| {
        if let Some(message) = sel.and_then(|s| crate::selector::unknown_strategy_warning(&s.strategy)) {
            out.push(crate::config::Warning { path: format!("{path}.strategy"), line: 0, message });
        }
    };
    for (i, s) in cfg.services.iter().enumerate() {
        check(format!("services[{i}].forwarder.selector"), s.forwarder.as_ref().and_then(|f| f.selector.as_ref()));
    }
    for (i, c) in cfg.chains.iter().enumerate() {
        for (j, h) in c.hops.iter().enumerate() {
            check(format!("chains[{i}].hops[{j}].selector"), h.selector.as_ref());
        }
    }
    out
}

/// GOST's `parseSelector`: only when a selector key is present; CLI defaults
/// round / 1 / 30s.
fn parse_selector(q: &mut Query, arg: &str) -> Result<Option<SelectorConfig>, UrlError> {
    let strategy = qget(q, &["strategy"]).unwrap_or("").to_string();
    let max_fails = qget(q, &["maxFails", "max_fails"]).map(go_int).unwrap_or(0);
    let ft_raw = qget(q, &["failTimeout", "fail_timeout"]).map(str::to_string);
    if let Some(ft) = &ft_raw {
        if ft.trim().parse::<f64>().is_err() {
            parse_go_duration(ft).map_err(|e| uerr(arg, format!("failTimeout: {e}")))?;
        }
    }
    let fail_timeout = ft_raw.as_deref().map(go_duration).unwrap_or(Duration::ZERO);
    if strategy.is_empty() && max_fails <= 0 && fail_timeout.is_zero() {
        return Ok(None);
    }
    qdel(q, &["strategy", "maxFails", "max_fails", "failTimeout", "fail_timeout"]);
    Ok(Some(SelectorConfig {
        strategy: if strategy.is_empty() { "round".into() } else { strategy },
        max_fails: if max_fails <= 0 { 1 } else { max_fails },
        fail_timeout: if fail_timeout.is_zero() { Duration::from_secs(30) } else { fail_timeout },
        extra: Extra::new(),
    }))
}

fn decode_auth(s: &str, arg: &str) -> Result<AuthConfig, UrlError> {
    let bytes = b64_decode(s).ok_or_else(|| uerr(arg, "auth: not valid base64 of user:pass"))?;
    let cs = String::from_utf8(bytes).map_err(|_| uerr(arg, "auth: not valid UTF-8"))?;
    let (u, p) = cs.split_once(':').unwrap_or((cs.as_str(), ""));
    Ok(AuthConfig { username: u.into(), password: p.into(), extra: Extra::new() })
}

/// Base64, URL-safe raw or standard with padding (GOST tries both).
fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Builds the config GOST would build from `-L` (services) and `-F` (nodes).
pub fn build_from_cmd(services: &[String], nodes: &[String]) -> Result<Config, UrlError> {
    let mut cfg = Config::default();
    let mut chain: Option<ChainConfig> = None;
    if !nodes.is_empty() {
        chain = Some(ChainConfig { name: "chain-0".into(), ..Default::default() });
    }
    for (i, raw) in nodes.iter().enumerate() {
        let hop = build_hop(raw, i, &mut cfg)?;
        if let Some(c) = chain.as_mut() {
            c.hops.push(hop);
        }
    }
    let mut svcs = Vec::new();
    for raw in services {
        if raw.trim().is_empty() {
            continue;
        }
        svcs.extend(build_services(raw, &mut cfg)?);
    }
    for (i, s) in svcs.iter_mut().enumerate() {
        s.name = format!("service-{i}");
        if let Some(c) = &chain {
            if matches!(s.listener.kind.as_str(), "rtcp" | "rudp" | "runix") {
                s.listener.chain = c.name.clone();
            } else {
                s.handler.chain = c.name.clone();
            }
        }
    }
    cfg.services = svcs;
    if let Some(c) = chain {
        cfg.chains.push(c);
    }
    Ok(cfg)
}

fn str_meta(q: &Query) -> Metadata {
    let mut m = Metadata::default();
    for (k, v) in q {
        // GOST's CLI turns `dns=a,b` into a list (BuildConfigFromCmd).
        let val = if k == "dns" && !v.is_empty() {
            Value::Sequence(v.split(',').map(|s| Value::String(s.to_string())).collect())
        } else {
            Value::String(v.clone())
        };
        m.insert(k.clone(), val);
    }
    m
}

/// Adds a named top-level object (bypass-N, resolver-N …) the way GOST's CLI does.
fn add_top(cfg: &mut Config, section: &str, prefix: &str, body: serde_yaml::Mapping) -> String {
    let list = cfg.extra.entry(section.to_string()).or_insert_with(|| Value::Sequence(Vec::new()));
    let n = match list {
        Value::Sequence(s) => s.len(),
        _ => 0,
    };
    let name = format!("{prefix}-{n}");
    let mut m = serde_yaml::Mapping::new();
    m.insert("name".into(), name.clone().into());
    for (k, v) in body {
        m.insert(k, v);
    }
    if let Value::Sequence(s) = list {
        s.push(Value::Mapping(m));
    }
    name
}

fn matcher_obj(v: &str) -> serde_yaml::Mapping {
    let mut m = serde_yaml::Mapping::new();
    let (white, rest) = match v.strip_prefix('~') {
        Some(r) => (true, r),
        None => (false, v),
    };
    if white {
        m.insert("whitelist".into(), true.into());
    }
    let list: Vec<Value> = rest.split(',').filter(|s| !s.is_empty()).map(|s| s.into()).collect();
    m.insert("matchers".into(), Value::Sequence(list));
    m
}

fn resolver_obj(v: &str, prefer: Option<&str>) -> serde_yaml::Mapping {
    let ns: Vec<Value> = v
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|a| {
            let mut m = serde_yaml::Mapping::new();
            m.insert("addr".into(), a.into());
            if let Some(p) = prefer.filter(|p| !p.is_empty()) {
                m.insert("prefer".into(), p.into());
            }
            Value::Mapping(m)
        })
        .collect();
    let mut m = serde_yaml::Mapping::new();
    m.insert("nameservers".into(), Value::Sequence(ns));
    m
}

fn hosts_obj(v: &str) -> serde_yaml::Mapping {
    let maps: Vec<Value> = v
        .split(',')
        .filter_map(|s| s.split_once(':'))
        .map(|(h, ip)| {
            let mut m = serde_yaml::Mapping::new();
            m.insert("hostname".into(), h.into());
            m.insert("ip".into(), ip.into());
            Value::Mapping(m)
        })
        .collect();
    let mut m = serde_yaml::Mapping::new();
    m.insert("mappings".into(), Value::Sequence(maps));
    m
}

fn build_hop(raw: &str, index: usize, cfg: &mut Config) -> Result<HopConfig, UrlError> {
    let mut p = parse(raw)?;
    p.host = go_check_host(&p.host, raw)?;
    let mut q = p.query.clone();
    let mut hop = HopConfig { name: format!("hop-{index}"), ..Default::default() };
    hop.selector = parse_selector(&mut q, raw)?;
    if let Some(v) = qget(&q, &["bypass"]).filter(|v| !v.is_empty()).map(str::to_string) {
        let name = add_top(cfg, "bypasses", "bypass", matcher_obj(&v));
        hop.extra.insert("bypass".into(), name.into());
        qdel(&mut q, &["bypass"]);
    }
    if let Some(v) = qget(&q, &["resolver"]).filter(|v| !v.is_empty()).map(str::to_string) {
        let name = add_top(cfg, "resolvers", "resolver", resolver_obj(&v, None));
        hop.extra.insert("resolver".into(), name.into());
        qdel(&mut q, &["resolver"]);
    }
    if let Some(v) = qget(&q, &["hosts"]).filter(|v| !v.is_empty()).map(str::to_string) {
        let name = add_top(cfg, "hosts", "hosts", hosts_obj(&v));
        hop.extra.insert("hosts".into(), name.into());
        qdel(&mut q, &["hosts"]);
    }
    for key in ["interface", "so_mark", "proxyProtocol"] {
        if let Some(v) = qget(&q, &[key]).filter(|v| !v.is_empty()).map(str::to_string) {
            qdel(&mut q, &[key]);
            q.push((format!("hop.{key}"), v));
        }
    }
    let mut hop_md = Metadata::default();
    let mut rest = Query::new();
    for (k, v) in q {
        let lk = k.to_ascii_lowercase();
        if lk.starts_with("node.") || lk.starts_with("connector.") || lk.starts_with("dialer.") {
            rest.push((k, v));
            continue;
        }
        if let Some(s) = k.strip_prefix("hop.") {
            hop_md.insert(s.to_string(), Value::String(v));
            continue;
        }
        hop_md.insert(k.clone(), Value::String(v.clone()));
        rest.push((k, v));
    }
    hop.metadata = hop_md;

    let (mut connector, mut dialer) = split_scheme(&p.scheme, raw)?;
    if !is_gost(GOST_CONNECTORS, &connector) {
        connector = "http".into();
    }
    if !is_gost(GOST_DIALERS, &dialer) {
        dialer = if connector == "ssu" { "udp".into() } else { "tcp".into() };
    }
    let mut auth = sip002(&p.scheme, &p.user).or_else(|| {
        p.user.as_ref().map(|(u, pw)| AuthConfig {
            username: u.clone(),
            password: pw.clone().unwrap_or_default(),
            extra: Extra::new(),
        })
    });
    if let Some(a) = qget(&rest, &["auth"]).filter(|a| !a.is_empty()) {
        if auth.is_none() {
            auth = Some(decode_auth(a, raw)?);
        }
    }
    qdel(&mut rest, &["auth"]);
    let mut tls = TlsConfig {
        cert_file: qget(&rest, &["tls.certFile", "certFile", "cert"]).unwrap_or("").into(),
        key_file: qget(&rest, &["tls.keyFile", "keyFile", "key"]).unwrap_or("").into(),
        ca_file: qget(&rest, &["tls.caFile", "caFile", "ca"]).unwrap_or("").into(),
        secure: qget(&rest, &["tls.secure", "secure"]).and_then(super::types::parse_go_bool).unwrap_or(false),
        server_name: qget(&rest, &["tls.servername", "servername"]).unwrap_or("").into(),
        extra: Extra::new(),
    };
    if tls.server_name.is_empty() {
        tls.server_name = hostname(&p.host);
    }
    qdel(
        &mut rest,
        &[
            "tls.certFile", "certFile", "cert", "tls.keyFile", "keyFile", "key", "tls.caFile", "caFile", "ca",
            "tls.secure", "secure", "tls.servername", "serverName",
        ],
    );
    let tls = if !tls.secure && tls.cert_file.is_empty() && tls.ca_file.is_empty() && tls.server_name.is_empty() {
        None
    } else {
        Some(tls)
    };
    let (mut node_md, mut conn_md, mut dial_md) = (Metadata::default(), Metadata::default(), Metadata::default());
    for (k, v) in rest {
        let val = Value::String(v);
        if let Some(s) = k.strip_prefix("node.") {
            node_md.insert(s.to_string(), val);
        } else if let Some(s) = k.strip_prefix("connector.") {
            conn_md.insert(s.to_string(), val);
        } else if let Some(s) = k.strip_prefix("dialer.") {
            dial_md.insert(s.to_string(), val);
        } else {
            conn_md.insert(k.clone(), val.clone());
            dial_md.insert(k.clone(), val.clone());
            node_md.insert(k, val);
        }
    }
    let mut conn = ConnectorConfig { kind: connector, auth: auth.clone(), metadata: conn_md, ..Default::default() };
    let mut dial = DialerConfig { kind: dialer, tls, metadata: dial_md, ..Default::default() };
    if dial.kind == "ssh" || dial.kind == "sshd" {
        conn.auth = None;
        dial.auth = auth;
    }
    for host in p.host.split(',') {
        if host.is_empty() {
            continue;
        }
        // serverName was computed once from the whole host (`url.Hostname()` of
        // `h1:1,h2:2` is `h1:1,h2`), before the split, exactly as GOST does.
        hop.nodes.push(NodeConfig {
            name: format!("node-{}", hop.nodes.len()),
            addr: host.to_string(),
            connector: Some(conn.clone()),
            dialer: Some(dial.clone()),
            metadata: node_md.clone(),
            ..Default::default()
        });
    }
    if hop.nodes.is_empty() {
        return Err(uerr(raw, "no node address (expected host:port)"));
    }
    Ok(hop)
}

fn split_scheme(scheme: &str, raw: &str) -> Result<(String, String), UrlError> {
    let parts: Vec<&str> = scheme.split('+').collect();
    match parts.as_slice() {
        [one] => Ok((one.to_string(), one.to_string())),
        [a, b] => Ok((a.to_string(), b.to_string())),
        // GOST leaves both empty here, which then fall back to auto/tcp (or
        // http/tcp); say so instead of guessing.
        _ => Err(uerr(raw, format!("scheme {scheme:?} has more than two parts (expected protocol+transport)"))),
    }
}

fn build_services(raw: &str, cfg: &mut Config) -> Result<Vec<ServiceConfig>, UrlError> {
    let p = parse(raw)?;
    let (mut handler, mut listener) = split_scheme(&p.scheme, raw)?;
    let addrs = {
        let a = addr_port_range(&p.host);
        if a.is_empty() {
            vec![p.host.clone()]
        } else {
            a
        }
    };
    if !is_gost(GOST_HANDLERS, &handler) {
        handler = "auto".into();
    }
    if !is_gost(GOST_LISTENERS, &listener) {
        listener = if handler == "ssu" { "udp".into() } else { "tcp".into() };
    }
    let mut targets = Vec::new();
    let remotes = p.path.trim_matches('/');
    if !remotes.is_empty() {
        for t in remotes.split(',') {
            let expanded = addr_port_range(t);
            let list = if expanded.is_empty() { vec![t.to_string()] } else { expanded };
            for a in list {
                targets.push(ForwardNodeConfig { name: format!("target-{}", targets.len()), addr: a, ..Default::default() });
            }
        }
        if handler != "relay" {
            if matches!(
                listener.as_str(),
                "tcp" | "udp" | "rtcp" | "rudp" | "tun" | "tap" | "dns" | "unix" | "runix" | "serial"
            ) {
                handler = listener.clone();
            } else {
                handler = "forward".into();
            }
        }
    }
    let mut auth = sip002(&p.scheme, &p.user).or_else(|| {
        p.user.as_ref().map(|(u, pw)| AuthConfig {
            username: u.clone(),
            password: pw.clone().unwrap_or_default(),
            extra: Extra::new(),
        })
    });
    let mut q = p.query.clone();
    if let Some(a) = qget(&q, &["auth"]).filter(|a| !a.is_empty()) {
        if auth.is_none() {
            auth = Some(decode_auth(a, raw)?);
        }
    }
    qdel(&mut q, &["auth"]);
    let tls = TlsConfig {
        cert_file: qget(&q, &["tls.certFile", "certFile", "cert"]).unwrap_or("").into(),
        key_file: qget(&q, &["tls.keyFile", "keyFile", "key"]).unwrap_or("").into(),
        ca_file: qget(&q, &["tls.caFile", "caFile", "ca"]).unwrap_or("").into(),
        ..Default::default()
    };
    qdel(&mut q, &["tls.certFile", "certFile", "cert", "tls.keyFile", "keyFile", "key", "tls.caFile", "caFile", "ca"]);
    let tls = if tls.cert_file.is_empty() { None } else { Some(tls) };
    for key in ["interface", "so_mark", "proxyProtocol", "netns", "netns.out"] {
        if let Some(v) = qget(&q, &[key]).filter(|v| !v.is_empty()).map(str::to_string) {
            qdel(&mut q, &[key]);
            q.push((format!("service.{key}"), v));
        }
    }
    let selector = parse_selector(&mut q, raw)?;
    let (mut svc_md, mut h_md, mut l_md) = (Query::new(), Query::new(), Query::new());
    for (k, v) in q {
        if let Some(s) = k.strip_prefix("service.") {
            svc_md.push((s.to_string(), v));
        } else if let Some(s) = k.strip_prefix("handler.") {
            h_md.push((s.to_string(), v));
        } else if let Some(s) = k.strip_prefix("listener.") {
            l_md.push((s.to_string(), v));
        } else {
            h_md.push((k.clone(), v.clone()));
            l_md.push((k.clone(), v.clone()));
            svc_md.push((k, v));
        }
    }
    // Handler-metadata keys the CLI turns into objects (BuildConfigFromCmd).
    let mut h_cfg = HandlerConfig { kind: handler, auth: auth.clone(), ..Default::default() };
    let mut svc_extra = Extra::new();
    let r = qget(&h_md, &["retries"]).map(go_int).unwrap_or(0);
    if r > 0 {
        h_cfg.retries = r;
        qdel(&mut h_md, &["retries"]);
    }
    if let Some(v) = qget(&h_md, &["admission"]).filter(|v| !v.is_empty()).map(str::to_string) {
        let n = add_top(cfg, "admissions", "admission", matcher_obj(&v));
        svc_extra.insert("admission".into(), n.into());
        qdel(&mut h_md, &["admission"]);
    }
    if let Some(v) = qget(&h_md, &["bypass"]).filter(|v| !v.is_empty()).map(str::to_string) {
        let n = add_top(cfg, "bypasses", "bypass", matcher_obj(&v));
        svc_extra.insert("bypass".into(), n.into());
        qdel(&mut h_md, &["bypass"]);
    }
    if let Some(v) = qget(&h_md, &["resolver"]).filter(|v| !v.is_empty()).map(str::to_string) {
        let prefer = qget(&h_md, &["prefer"]).map(str::to_string);
        let n = add_top(cfg, "resolvers", "resolver", resolver_obj(&v, prefer.as_deref()));
        svc_extra.insert("resolver".into(), n.into());
        qdel(&mut h_md, &["resolver"]);
    }
    if let Some(v) = qget(&h_md, &["hosts"]).filter(|v| !v.is_empty()).map(str::to_string) {
        let n = add_top(cfg, "hosts", "hosts", hosts_obj(&v));
        svc_extra.insert("hosts".into(), n.into());
        qdel(&mut h_md, &["hosts"]);
    }
    let lim: Vec<Option<String>> = ["limiter.in", "limiter.out", "limiter.conn.in", "limiter.conn.out"]
        .iter()
        .map(|k| qget(&h_md, &[k]).filter(|v| !v.is_empty()).map(str::to_string))
        .collect();
    if lim.iter().any(Option::is_some) {
        let g = |i: usize| lim[i].clone().unwrap_or_default();
        let mut limits = Vec::new();
        if lim[0].is_some() || lim[1].is_some() {
            limits.push(Value::String(format!("$ {} {}", g(0), g(1))));
        }
        if lim[2].is_some() || lim[3].is_some() {
            limits.push(Value::String(format!("$$ {} {}", g(2), g(3))));
        }
        let mut m = serde_yaml::Mapping::new();
        m.insert("limits".into(), Value::Sequence(limits));
        let n = add_top(cfg, "limiters", "limiter", m);
        svc_extra.insert("limiter".into(), n.into());
        qdel(&mut h_md, &["limiter.in", "limiter.out", "limiter.conn.in", "limiter.conn.out"]);
    }
    if let Some(c) = qget(&h_md, &["climiter"]).map(go_int).filter(|c| *c > 0) {
        let mut m = serde_yaml::Mapping::new();
        m.insert("limits".into(), Value::Sequence(vec![Value::String(format!("$ {c}"))]));
        let n = add_top(cfg, "climiters", "climiter", m);
        svc_extra.insert("climiter".into(), n.into());
        qdel(&mut h_md, &["climiter"]);
    }
    if let Some(r) = qget(&h_md, &["rlimiter"]).and_then(|v| v.trim().parse::<f64>().ok()).filter(|r| *r > 0.0) {
        let mut m = serde_yaml::Mapping::new();
        m.insert("limits".into(), Value::Sequence(vec![Value::String(format!("$ {r}"))]));
        let n = add_top(cfg, "rlimiters", "rlimiter", m);
        svc_extra.insert("rlimiter".into(), n.into());
        qdel(&mut h_md, &["rlimiter"]);
    }
    h_cfg.metadata = str_meta(&h_md);
    let mut l_cfg = ListenerConfig { kind: listener, tls, metadata: str_meta(&l_md), ..Default::default() };
    if l_cfg.kind == "ssh" || l_cfg.kind == "sshd" {
        h_cfg.auth = None;
        l_cfg.auth = auth;
    }
    let mut out = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let forwarder = if targets.is_empty() {
            None
        } else if addrs.len() == 1 || targets.len() == 1 {
            // One service takes every target; or one target serves every port.
            Some(targets.clone())
        } else {
            targets.get(i).map(|t| vec![t.clone()])
        };
        out.push(ServiceConfig {
            name: String::new(),
            addr: addr.clone(),
            handler: h_cfg.clone(),
            listener: l_cfg.clone(),
            forwarder: forwarder.map(|nodes| ForwarderConfig { selector: selector.clone(), nodes, ..Default::default() }),
            metadata: str_meta(&svc_md),
            extra: svc_extra.clone(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(l: &str) -> ServiceConfig {
        build_from_cmd(&[l.to_string()], &[]).unwrap().services.remove(0)
    }

    #[test]
    fn tcp_single_target() {
        let s = one("tcp://:8080/192.168.1.1:80");
        assert_eq!(s.name, "service-0");
        assert_eq!(s.addr, ":8080");
        assert_eq!(s.handler.kind, "tcp");
        assert_eq!(s.listener.kind, "tcp");
        let f = s.forwarder.unwrap();
        assert_eq!(f.nodes[0].name, "target-0");
        assert_eq!(f.nodes[0].addr, "192.168.1.1:80");
        assert!(f.selector.is_none());
        assert!(s.metadata.is_empty());
    }

    #[test]
    fn selector_from_query_with_cli_defaults() {
        let s = one("tcp://:8080/a:1,b:2?maxFails=3");
        let sel = s.forwarder.unwrap().selector.unwrap();
        assert_eq!(sel.strategy, "round");
        assert_eq!(sel.max_fails, 3);
        assert_eq!(sel.fail_timeout, Duration::from_secs(30));
        assert!(s.handler.metadata.is_empty(), "selector keys are consumed");
    }

    #[test]
    fn unknown_scheme_parts_fall_back_like_gost() {
        assert_eq!(one(":8080").handler.kind, "auto");
        assert_eq!(one("tls://:8443").handler.kind, "auto");
        assert_eq!(one("tls://:8443").listener.kind, "tls");
        let s = one("tls://:8443/127.0.0.1:80");
        assert_eq!((s.handler.kind.as_str(), s.listener.kind.as_str()), ("forward", "tls"));
        let s = one("relay://:8420/127.0.0.1:80");
        assert_eq!(s.handler.kind, "relay");
        let s = one("foo+bar://:1");
        assert_eq!((s.handler.kind.as_str(), s.listener.kind.as_str()), ("auto", "tcp"));
    }

    #[test]
    fn port_ranges_distribute_targets() {
        let c = build_from_cmd(&["tcp://:8000-8003/10.0.0.1:8000-8003".into()], &[]).unwrap();
        assert_eq!(c.services.len(), 4);
        for (i, s) in c.services.iter().enumerate() {
            assert_eq!(s.name, format!("service-{i}"));
            assert_eq!(s.addr, format!(":{}", 8000 + i));
            let n = &s.forwarder.as_ref().unwrap().nodes;
            assert_eq!(n.len(), 1);
            assert_eq!(n[0].addr, format!("10.0.0.1:{}", 8000 + i));
            assert_eq!(n[0].name, format!("target-{i}"));
        }
        let c = build_from_cmd(&["tcp://:8000-8001/10.0.0.1:80".into()], &[]).unwrap();
        assert_eq!(c.services[1].forwarder.as_ref().unwrap().nodes[0].addr, "10.0.0.1:80");
    }

    #[test]
    fn chain_attaches_to_handler_or_listener() {
        let c = build_from_cmd(
            &["tcp://:8080/1.2.3.4:80".into(), "rtcp://:9000/1.2.3.4:22".into()],
            &["socks5://u:p@192.168.1.2:1080".into(), "relay+tls://h1:1,h2:2?strategy=fifo".into()],
        )
        .unwrap();
        assert_eq!(c.services[0].handler.chain, "chain-0");
        assert_eq!(c.services[1].listener.chain, "chain-0");
        assert!(c.services[1].handler.chain.is_empty());
        let ch = &c.chains[0];
        assert_eq!(ch.hops.len(), 2);
        let n0 = &ch.hops[0].nodes[0];
        assert_eq!(n0.name, "node-0");
        assert_eq!(n0.connector.as_ref().unwrap().kind, "socks5");
        assert_eq!(n0.connector.as_ref().unwrap().auth.as_ref().unwrap().password, "p");
        assert_eq!(n0.dialer.as_ref().unwrap().kind, "tcp");
        assert_eq!(n0.dialer.as_ref().unwrap().tls.as_ref().unwrap().server_name, "192.168.1.2");
        let h1 = &ch.hops[1];
        assert_eq!(h1.name, "hop-1");
        assert_eq!(h1.nodes.len(), 2);
        assert_eq!(h1.nodes[1].addr, "h2:2");
        assert_eq!(h1.selector.as_ref().unwrap().strategy, "fifo");
    }

    #[test]
    fn sshd_auth_moves_to_dialer_and_listener() {
        let c = build_from_cmd(&["sshd://user:pass@:22".into()], &["sshd://u:p@h:22".into()]).unwrap();
        let s = &c.services[0];
        assert!(s.handler.auth.is_none());
        assert_eq!(s.listener.auth.as_ref().unwrap().username, "user");
        let n = &c.chains[0].hops[0].nodes[0];
        assert!(n.connector.as_ref().unwrap().auth.is_none());
        assert_eq!(n.dialer.as_ref().unwrap().auth.as_ref().unwrap().password, "p");
    }

    #[test]
    fn forward_tls_client_without_host_has_no_tls_block() {
        let c = build_from_cmd(&["tcp://:8080".into()], &["forward+tls://:8443".into()]).unwrap();
        assert!(c.services[0].forwarder.is_none());
        let n = &c.chains[0].hops[0].nodes[0];
        assert_eq!(n.addr, ":8443");
        assert!(n.dialer.as_ref().unwrap().tls.is_none());
    }

    #[test]
    fn query_values_go_to_all_three_metadata_maps() {
        let s = one("udp://:10053/a:53?keepAlive=true&ttl=5s&listener.backlog=9");
        assert_eq!(s.listener.metadata.get_bool(&["keepalive"]).unwrap(), Some(true));
        assert!(s.handler.metadata.contains(&["ttl"]));
        assert!(s.metadata.contains(&["ttl"]));
        assert_eq!(s.listener.metadata.get_int(&["backlog"]).unwrap(), Some(9));
        assert!(!s.handler.metadata.contains(&["backlog"]));
    }

    #[test]
    fn ipv6_and_userinfo_and_auth_param() {
        let s = one("socks5://[::1]:1080");
        assert_eq!(s.addr, "[::1]:1080");
        let s = one("http://:8080?auth=dXNlcjpwYXNz");
        assert_eq!(s.handler.auth.as_ref().unwrap().username, "user");
        assert_eq!(s.handler.auth.as_ref().unwrap().password, "pass");
        let s = one("http://a%40b:p%3Aw@:8080");
        assert_eq!(s.handler.auth.as_ref().unwrap().username, "a@b");
        assert_eq!(s.handler.auth.as_ref().unwrap().password, "p:w");
    }

    #[test]
    fn malformed_urls_are_named() {
        let e = build_from_cmd(&["tcp://:8080/a:1?x=%zz".into()], &[]).unwrap_err();
        assert!(e.to_string().contains("invalid URL escape"), "{e}");
        let e = build_from_cmd(&["a+b+c://:1".into()], &[]).unwrap_err();
        assert!(e.to_string().contains("more than two parts"), "{e}");
        let e = build_from_cmd(&[], &["socks5://".into()]).unwrap_err();
        assert!(e.to_string().contains("no node address"), "{e}");
        let e = build_from_cmd(&["tcp://:8080/a:1?strategy=round&failTimeout=abc".into()], &[]).unwrap_err();
        assert!(e.to_string().contains("failTimeout"), "{e}");
    }

    #[test]
    fn node_hosts_are_checked_as_go_url_parse_checks_them() {
        // GOST parses -F with url.Parse: a non-numeric port or a stray character is refused.
        let e = build_from_cmd(&[], &["forward+kcp://${server_ip}:${server_port}".into()]).unwrap_err();
        assert!(e.to_string().contains("invalid port \":${server_port}\" after host"), "{e}");
        let e = build_from_cmd(&[], &["wss://u:p@%SS_HOST%:%SS_PORT%".into()]).unwrap_err();
        assert!(e.message.contains("invalid port"), "{e}");
        let e = build_from_cmd(&[], &["socks5://a%41b:1080".into()]).unwrap_err();
        assert!(e.message.contains("invalid URL escape \"%41\""), "{e}");
        let e = build_from_cmd(&[], &["socks5://a{b}:1080".into()]).unwrap_err();
        assert!(e.message.contains("invalid character '{'"), "{e}");
        let e = build_from_cmd(&[], &["socks5://[::1:1080".into()]).unwrap_err();
        assert!(e.message.contains("missing ']'"), "{e}");
        // Go checks only the port after the last ':' (or after ']'), so a host list
        // must end in a port.
        assert!(build_from_cmd(&[], &["relay://a:1,h".into()]).is_err());
        // Fine: non-ASCII and its %-escapes (unescaped), `<>` placeholders, IPv6, no port.
        let c = build_from_cmd(&[], &["relay://<real-ip>:8424,%E4%B8%AD:1,h:2".into()]).unwrap();
        let addrs: Vec<_> = c.chains[0].hops[0].nodes.iter().map(|n| n.addr.as_str()).collect();
        assert_eq!(addrs, ["<real-ip>:8424", "中:1", "h:2"]);
        let c = build_from_cmd(&[], &["relay://[::1]:8420".into(), "socks5://proxy".into()]).unwrap();
        assert_eq!(c.chains[0].hops[0].nodes[0].addr, "[::1]:8420");
        assert_eq!(c.chains[0].hops[1].nodes[0].addr, "proxy");
        // -L hosts are cut out before parsing in GOST, so they are taken verbatim.
        let c = build_from_cmd(&["tcp://:${port}/a:1".into()], &[]).unwrap();
        assert_eq!(c.services[0].addr, ":${port}");
    }

    #[test]
    fn ss_userinfo_may_be_sip002_base64() {
        // base64("aes-256-gcm:secret") without a password part.
        let s = one("ss://YWVzLTI1Ni1nY206c2VjcmV0@:8338");
        let a = s.handler.auth.unwrap();
        assert_eq!((a.username.as_str(), a.password.as_str()), ("aes-256-gcm", "secret"));
        let s = one("ss://aes-256-gcm:pass@:8338");
        assert_eq!(s.handler.auth.unwrap().password, "pass");
        // Only ss* schemes.
        let s = one("socks5://YWVzLTI1Ni1nY206c2VjcmV0@:1080");
        assert_eq!(s.handler.auth.unwrap().username, "YWVzLTI1Ni1nY206c2VjcmV0");
    }

    #[test]
    fn dns_query_value_becomes_a_list() {
        let s = one("dns://:10053?dns=udp://1.1.1.1:53,tcp://8.8.8.8:53");
        let want = Value::Sequence(vec!["udp://1.1.1.1:53".into(), "tcp://8.8.8.8:53".into()]);
        assert_eq!(s.handler.metadata.get(&["dns"]).map(|(_, v)| v), Some(&want));
        assert_eq!(s.metadata.get(&["dns"]).map(|(_, v)| v), Some(&want));
    }

    #[test]
    fn retries_and_limiters_become_objects() {
        let c = build_from_cmd(&["socks5://:1080?retries=2&limiter.in=1MB&bypass=~a.com,b.com".into()], &[]).unwrap();
        let s = &c.services[0];
        assert_eq!(s.handler.retries, 2);
        assert!(!s.handler.metadata.contains(&["retries"]));
        assert!(!s.handler.metadata.contains(&["limiter.in"]));
        assert_eq!(s.extra.get("limiter").unwrap(), &Value::String("limiter-0".into()));
        assert_eq!(s.extra.get("bypass").unwrap(), &Value::String("bypass-0".into()));
        assert!(c.extra.contains_key("limiters"));
    }
}
