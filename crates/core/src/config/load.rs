//! Reading GOST v3 configuration files (YAML or JSON) into [`Config`], the way GOST's
//! viper/mapstructure loader does (go-gost/x `config/config.go`): keys match
//! case-insensitively, scalars are weakly typed (`123456` is a fine password,
//! `"true"` a fine bool). Unlike GOST, nothing is dropped silently: every key Portway
//! does not act on becomes a [`Warning`] naming it, and every error names the file,
//! line and key.

use super::spanned::{self, SKind, SNode};
use super::types::*;
use super::duration::parse_go_duration;
use std::fmt;
use std::time::Duration;

/// Something in a config file Portway will not act on. The file still loads.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    /// Key path, e.g. `services[0].bypass`.
    pub path: String,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: {}: {}", self.line, self.path, self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why a config file could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct LoadError {
    pub file: String,
    /// 1-based; 0 when unknown.
    pub line: usize,
    /// 1-based; 0 when unknown (then only the line is printed).
    pub col: usize,
    /// Key path at fault (for a syntax error: where the parser was), empty at the top.
    pub path: String,
    pub message: String,
}

impl LoadError {
    fn render(&self) -> String {
        let mut s = self.file.clone();
        if self.line > 0 {
            s.push_str(&format!(":{}", self.line));
            if self.col > 0 {
                s.push_str(&format!(":{}", self.col));
            }
        }
        s.push_str(": ");
        if !self.path.is_empty() {
            s.push_str(&self.path);
            s.push_str(": ");
        }
        s.push_str(&self.message);
        s
    }
}

/// A successfully loaded file and what Portway will not act on in it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

impl Format {
    /// GOST picks the format from the file's extension (viper), so a `.yaml` file
    /// written in flow style (`{services: [...]}`) is YAML; only without a known
    /// extension (stdin, inline `-C '{...}'`) does content starting with `{` mean JSON.
    pub fn guess(file: &str, src: &str) -> Format {
        let lower = file.to_ascii_lowercase();
        if lower.ends_with(".json") {
            Format::Json
        } else if lower.ends_with(".yaml") || lower.ends_with(".yml") {
            Format::Yaml
        } else if src.trim_start().starts_with('{') {
            Format::Json
        } else {
            Format::Yaml
        }
    }
}

/// GOST v2 (`gost.json` of ginuerzh/gost) top-level keys; Go's JSON decoder matched
/// them case-insensitively.
const V2_KEYS: &[&str] = &["ServeNodes", "ChainNodes", "Routes"];
const V2_MESSAGE: &str = "this is a GOST v2 config (ServeNodes/ChainNodes/Routes); Portway reads GOST v3 — pass each ServeNodes entry as -L and each ChainNodes entry as -F, or convert it to v3 `services:`";

/// Loads a config from text. `file` is only used in messages.
pub fn load_str(file: &str, src: &str) -> Result<Loaded, LoadError> {
    // A UTF-8 byte order mark (Windows editors write one): yaml.v3 skips it; so do we,
    // for JSON too, rather than read `\u{feff}services` as an unknown key.
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let format = Format::guess(file, src);
    let mut root = match format {
        Format::Json => match serde_json::from_str::<serde_json::Value>(src) {
            Err(e) => {
                // A v2 file is often broken JSON too (issue 422's full-width comma):
                // say what it is as well as where it breaks.
                let lower = src.to_ascii_lowercase();
                let v2 = V2_KEYS.iter().any(|k| lower.contains(&format!("\"{}\"", k.to_ascii_lowercase())));
                return Err(LoadError {
                    file: file.into(),
                    line: e.line(),
                    col: e.column(),
                    path: String::new(),
                    message: format!(
                        "invalid JSON: {}{}",
                        strip_json_pos(&e.to_string()),
                        if v2 { format!(" (besides, {V2_MESSAGE})") } else { String::new() }
                    ),
                });
            }
            // Prefer the YAML parser for JSON too: it knows line numbers.
            Ok(v) => spanned::parse(src).unwrap_or_else(|_| SNode::from_json(&v)),
        },
        Format::Yaml => spanned::parse(src).map_err(|e| LoadError {
            file: file.into(),
            line: e.line,
            col: e.col,
            path: e.path,
            message: format!("invalid YAML: {}", e.message),
        })?,
    };
    let mut cx = Cx { file, warnings: Vec::new() };
    cx.dedupe(&mut root, "", format == Format::Json)?;
    let config = cx.root(&root)?;
    Ok(Loaded { config, warnings: cx.warnings })
}

/// Loads a config file from disk.
pub fn load_file(path: &std::path::Path) -> Result<Loaded, LoadError> {
    let name = path.display().to_string();
    let src = std::fs::read_to_string(path).map_err(|e| LoadError {
        file: name.clone(),
        line: 0,
        col: 0,
        path: String::new(),
        message: format!("cannot read: {e}"),
    })?;
    load_str(&name, &src)
}

/// Go's `strconv.ParseInt(s, 0, 64)`, which GOST's decoder applies to a string put
/// where an integer belongs: sign, `0x`/`0o`/`0b` prefixes, a leading `0` for
/// octal, `_` between digits. An empty string is 0.
pub(crate) fn go_parse_int(s: &str) -> Option<i64> {
    let t = s.trim();
    if t.is_empty() {
        return Some(0);
    }
    let (neg, body) = match t.as_bytes()[0] {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string())
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string())
    } else {
        (10, lower.clone())
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
        return None;
    }
    let digits = digits.replace('_', "");
    let v = i64::from_str_radix(&digits, radix).ok()?;
    Some(if neg { -v } else { v })
}

fn strip_json_pos(s: &str) -> String {
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s.to_string(),
    }
}

struct Cx<'f> {
    file: &'f str,
    warnings: Vec<Warning>,
}

/// A mapping being read: keys are taken as they are recognised; what is left
/// becomes `extra` plus a warning.
struct Obj<'n> {
    path: String,
    entries: Vec<(&'n str, usize, &'n SNode, bool)>,
}

impl<'n> Obj<'n> {
    fn take(&mut self, names: &[&str]) -> Option<(&'n SNode, String)> {
        for want in names {
            for e in self.entries.iter_mut() {
                if !e.3 && e.0.eq_ignore_ascii_case(want) {
                    e.3 = true;
                    return Some((e.2, format!("{}.{}", self.path, e.0)));
                }
            }
        }
        None
    }
}

/// GOST keys, per object, that Portway reads but does not act on yet.
fn known_unimplemented(kind: &str, key: &str) -> Option<&'static str> {
    let k = key.to_ascii_lowercase();
    let list: &[&str] = match kind {
        "root" => &[
            "admissions", "bypasses", "resolvers", "hosts", "ingresses", "routers", "sds",
            "recorders", "limiters", "climiters", "rlimiters", "observers", "loggers", "tls", "log",
            "profiling", "api", "metrics",
        ],
        "service" => &[
            "interface", "sockopts", "admission", "admissions", "bypass", "bypasses", "resolver", "hosts",
            "limiter", "climiter", "rlimiter", "logger", "loggers", "observer", "recorders",
        ],
        "handler" => &["chaingroup", "limiter", "observer"],
        "listener" => &["chaingroup"],
        "forwarder" => &[],
        "selector" => &["maxlatency"],
        "fnode" => &["bypass", "bypasses", "protocol", "host", "path", "auth", "filter", "matcher", "http", "tls"],
        "chain" => &[],
        "hop" => &["interface", "sockopts", "bypass", "bypasses", "resolver", "hosts", "reload", "file", "redis", "http", "plugin"],
        "node" => &[
            "host", "protocol", "path", "bypass", "bypasses", "resolver", "hosts", "interface", "netns", "sockopts",
            "filter", "matcher", "http", "tls", "auth",
        ],
        "tls" => &["commonname", "organization", "validity", "options"],
        _ => &[],
    };
    if list.contains(&k.as_str()) {
        return Some("a GOST option Portway does not implement yet; kept in the profile, no effect");
    }
    if kind == "service" && k == "status" {
        return Some("runtime status written by GOST's web API; kept in the profile, ignored");
    }
    None
}

type R<T> = Result<T, LoadError>;

impl<'f> Cx<'f> {
    fn err(&self, n: &SNode, path: &str, msg: impl Into<String>) -> LoadError {
        LoadError { file: self.file.into(), line: n.line, col: n.col, path: path.into(), message: msg.into() }
    }

    fn warn(&mut self, line: usize, path: String, msg: impl Into<String>) {
        self.warnings.push(Warning { path, line, message: msg.into() });
    }

    fn obj<'n>(&self, n: &'n SNode, path: &str) -> R<Obj<'n>> {
        match &n.kind {
            SKind::Map(entries) => Ok(Obj {
                path: path.to_string(),
                entries: entries.iter().map(|(k, l, v)| (k.as_str(), *l, v, false)).collect(),
            }),
            SKind::Null => Ok(Obj { path: path.to_string(), entries: Vec::new() }),
            _ => Err(self.err(n, path, format!("expected a mapping, found {}", n.describe()))),
        }
    }

    /// Leftover keys: kept in `extra`, each with a warning that says why it does nothing.
    fn rest(&mut self, o: Obj<'_>, kind: &str) -> Extra {
        let mut extra = Extra::new();
        for (k, line, v, used) in &o.entries {
            if *used {
                continue;
            }
            let path = format!("{}.{}", o.path, k).trim_start_matches('.').to_string();
            // `name:` and `Name:` in one mapping: GOST matches keys case-insensitively,
            // so the second is the same key again, not an unknown one.
            let twin = o.entries.iter().find(|e| e.3 && e.0 != *k && e.0.eq_ignore_ascii_case(k));
            let msg = match twin {
                Some(t) => format!(
                    "repeats `{}` of line {} (GOST matches keys case-insensitively); this one is ignored, kept in the profile",
                    t.0, t.1
                ),
                None => known_unimplemented(kind, k)
                    .unwrap_or(
                        "unknown key (GOST ignores it too); kept in the profile, no effect — check the spelling and indentation",
                    )
                    .to_string(),
            };
            self.warn(*line, path, msg);
            extra.insert(k.to_string(), v.to_value());
        }
        extra
    }

    /// Repeated keys in one mapping. yaml.v3 (GOST's YAML reader) refuses them, so a
    /// YAML file is refused too; Go's JSON decoder keeps the last one, so JSON loads
    /// with a warning. Keys differing only in case are left to `Obj::take`.
    fn dedupe(&mut self, n: &mut SNode, path: &str, json: bool) -> R<()> {
        match &mut n.kind {
            SKind::Map(entries) => {
                let mut out: Vec<(String, usize, SNode)> = Vec::with_capacity(entries.len());
                for e in entries.drain(..) {
                    let kpath = format!("{path}.{}", e.0).trim_start_matches('.').to_string();
                    match out.iter_mut().find(|p| p.0 == e.0) {
                        Some(prev) if json => {
                            self.warn(e.1, kpath, format!("repeated key (also on line {}); the last one wins, as in GOST", prev.1));
                            *prev = e;
                        }
                        Some(prev) => {
                            return Err(LoadError {
                                file: self.file.into(),
                                line: e.1,
                                col: 0,
                                path: kpath,
                                message: format!("key {:?} is already defined on line {} (GOST refuses a repeated key too)", e.0, prev.1),
                            });
                        }
                        None => out.push(e),
                    }
                }
                *entries = out;
                for (k, _, v) in entries.iter_mut() {
                    let kpath = format!("{path}.{k}").trim_start_matches('.').to_string();
                    self.dedupe(v, &kpath, json)?;
                }
            }
            SKind::Seq(items) => {
                for (i, it) in items.iter_mut().enumerate() {
                    self.dedupe(it, &format!("{path}[{i}]"), json)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A string field, weakly typed as GOST's decoder (mapstructure) does: numbers
    /// print as written, and a boolean becomes "1" or "0" (said in a warning, since
    /// `password: true` meaning "1" surprises everyone).
    fn string(&mut self, n: &SNode, path: &str) -> R<String> {
        match &n.kind {
            SKind::Str(s) => Ok(s.clone()),
            SKind::Null => Ok(String::new()),
            SKind::Int(i) => Ok(i.to_string()),
            SKind::Float(f) => Ok(f.to_string()),
            SKind::Bool(b) => {
                let v = if *b { "1" } else { "0" };
                self.warn(n.line, path.to_string(), format!("the boolean {b} is read as the text \"{v}\" (as GOST reads it); quote it (\"{b}\") if you meant the word"));
                Ok(v.to_string())
            }
            _ => Err(self.err(n, path, format!("expected a string, found {}", n.describe()))),
        }
    }

    /// An integer field: an int, a float (truncated, as GOST does), a boolean (1/0),
    /// or a string in Go's integer syntax (`"3"`, `"0x10"`; `""` is 0).
    fn int(&mut self, n: &SNode, path: &str) -> R<i64> {
        match &n.kind {
            SKind::Int(i) => Ok(*i),
            SKind::Null => Ok(0),
            SKind::Bool(b) => Ok(*b as i64),
            SKind::Float(f) if f.is_finite() => {
                if f.fract() != 0.0 {
                    self.warn(n.line, path.to_string(), format!("{f} is not a whole number; GOST truncates it to {}", f.trunc()));
                }
                Ok(*f as i64)
            }
            SKind::Str(s) => {
                go_parse_int(s).ok_or_else(|| self.err(n, path, format!("expected an integer, found {s:?}")))
            }
            _ => Err(self.err(n, path, format!("expected an integer, found {}", n.describe()))),
        }
    }

    /// A boolean field: a bool, a number (non-zero is true), or a string Go's
    /// `strconv.ParseBool` accepts (`""` is false).
    fn boolean(&self, n: &SNode, path: &str) -> R<bool> {
        match &n.kind {
            SKind::Bool(b) => Ok(*b),
            SKind::Null => Ok(false),
            SKind::Int(i) => Ok(*i != 0),
            SKind::Float(f) => Ok(*f != 0.0),
            SKind::Str(s) if s.is_empty() => Ok(false),
            SKind::Str(s) => parse_go_bool(s)
                .ok_or_else(|| self.err(n, path, format!("expected true or false, found {s:?}"))),
            _ => Err(self.err(n, path, format!("expected true or false, found {}", n.describe()))),
        }
    }

    /// A `time.Duration` field: a string is Go syntax; a bare number is nanoseconds,
    /// as in GOST (JSON written by `gost -O json` relies on that).
    fn duration(&mut self, n: &SNode, path: &str) -> R<Duration> {
        match &n.kind {
            SKind::Str(s) => parse_go_duration(s).map_err(|e| self.err(n, path, e)),
            SKind::Null => Ok(Duration::ZERO),
            SKind::Int(_) | SKind::Float(_) => {
                // A float is truncated to whole nanoseconds, as GOST's decoder does.
                let i = match n.kind {
                    SKind::Int(i) => i,
                    SKind::Float(f) if f.is_finite() => f as i64,
                    _ => return Err(self.err(n, path, "expected a duration like \"30s\", found a number that is not finite")),
                };
                let d = Duration::from_nanos(i.max(0) as u64);
                if i > 0 && i < 1_000_000 {
                    self.warn(
                        n.line,
                        path.to_string(),
                        format!("{i} is {i} nanoseconds (GOST reads a bare number as nanoseconds); write \"{i}s\" for seconds"),
                    );
                }
                Ok(d)
            }
            _ => Err(self.err(n, path, format!("expected a duration like \"30s\", found {}", n.describe()))),
        }
    }

    fn metadata(&self, n: &SNode, path: &str) -> R<Metadata> {
        let mut md = Metadata::default();
        match &n.kind {
            SKind::Map(entries) => {
                for (k, _, v) in entries {
                    md.insert(k.clone(), v.to_value());
                }
                Ok(md)
            }
            SKind::Null => Ok(md),
            _ => Err(self.err(n, path, format!("expected a mapping of options, found {}", n.describe()))),
        }
    }

    /// A list field. Like GOST's decoder, a single mapping is read as a list of one
    /// (with a warning: usually a forgotten `- `), an empty mapping as an empty list,
    /// and a scalar as a list of one (whose item then has to fit).
    fn list<'n>(&mut self, n: &'n SNode, path: &str) -> R<Vec<(&'n SNode, String)>> {
        match &n.kind {
            SKind::Seq(items) => Ok(items.iter().enumerate().map(|(i, it)| (it, format!("{path}[{i}]"))).collect()),
            SKind::Null => Ok(Vec::new()),
            SKind::Map(e) if e.is_empty() => Ok(Vec::new()),
            SKind::Map(_) => {
                self.warn(
                    n.line,
                    path.to_string(),
                    "expected a list, found a single mapping; read as a list of one item (as GOST does) — write `- ` before its first key",
                );
                Ok(vec![(n, format!("{path}[0]"))])
            }
            _ => Ok(vec![(n, format!("{path}[0]"))]),
        }
    }

    fn root(&mut self, n: &SNode) -> R<Config> {
        match &n.kind {
            SKind::Null => return Ok(Config::default()),
            SKind::Seq(items) => {
                let hint = match items.first().map(|i| &i.kind) {
                    Some(SKind::Map(e)) if e.iter().any(|(k, _, _)| k.eq_ignore_ascii_case("addr") || k.eq_ignore_ascii_case("handler")) => {
                        " — this looks like a single service entry: put it under a top-level `services:` key"
                    }
                    _ => "",
                };
                return Err(self.err(n, "", format!("the file is a list, but a GOST config is a mapping with services:, chains: …{hint}")));
            }
            SKind::Map(entries) => {
                let v2 = entries.iter().any(|(k, _, _)| V2_KEYS.iter().any(|v| k.eq_ignore_ascii_case(v)));
                let v3 = entries.iter().any(|(k, _, _)| k.eq_ignore_ascii_case("services") || k.eq_ignore_ascii_case("chains"));
                if v2 && !v3 {
                    return Err(self.err(n, "", V2_MESSAGE));
                }
            }
            _ => return Err(self.err(n, "", format!("expected a GOST config (a mapping with services:, chains: …), found {}", n.describe()))),
        }
        let mut o = self.obj(n, "")?;
        o.path = String::new();
        let mut cfg = Config::default();
        if let Some((v, p)) = o.take(&["services"]) {
            for (it, ip) in self.list(v, p.trim_start_matches('.'))? {
                cfg.services.push(self.service(it, &ip)?);
            }
        }
        if let Some((v, p)) = o.take(&["chains"]) {
            for (it, ip) in self.list(v, p.trim_start_matches('.'))? {
                cfg.chains.push(self.chain(it, &ip)?);
            }
        }
        if let Some((v, p)) = o.take(&["hops"]) {
            for (it, ip) in self.list(v, p.trim_start_matches('.'))? {
                cfg.hops.push(self.hop(it, &ip)?);
            }
        }
        cfg.extra = self.rest(o, "root");
        Ok(cfg)
    }

    fn service(&mut self, n: &SNode, path: &str) -> R<ServiceConfig> {
        let mut o = self.obj(n, path)?;
        let mut s = ServiceConfig::default();
        if let Some((v, p)) = o.take(&["name"]) {
            s.name = self.string(v, &p)?;
        }
        if s.name.is_empty() {
            return Err(self.err(n, path, "service has no name (GOST requires `name:` on every service)"));
        }
        if let Some((v, p)) = o.take(&["addr"]) {
            s.addr = self.string(v, &p)?;
        }
        if let Some((v, p)) = o.take(&["handler"]) {
            s.handler = self.handler(v, &p)?;
        }
        if let Some((v, p)) = o.take(&["listener"]) {
            s.listener = self.listener(v, &p)?;
        }
        if let Some((v, p)) = o.take(&["forwarder"]) {
            s.forwarder = Some(self.forwarder(v, &p)?);
        }
        if let Some((v, p)) = o.take(&["metadata"]) {
            s.metadata = self.metadata(v, &p)?;
        }
        s.extra = self.rest(o, "service");
        Ok(s)
    }

    fn auth(&mut self, n: &SNode, path: &str) -> R<AuthConfig> {
        let mut o = self.obj(n, path)?;
        let mut a = AuthConfig::default();
        if let Some((v, p)) = o.take(&["username"]) {
            a.username = self.string(v, &p)?;
        }
        if let Some((v, p)) = o.take(&["password"]) {
            a.password = self.string(v, &p)?;
        }
        a.extra = self.rest(o, "auth");
        Ok(a)
    }

    fn tls(&mut self, n: &SNode, path: &str) -> R<TlsConfig> {
        let mut o = self.obj(n, path)?;
        let mut t = TlsConfig::default();
        if let Some((v, p)) = o.take(&["certFile"]) {
            t.cert_file = self.string(v, &p)?;
        }
        if let Some((v, p)) = o.take(&["keyFile"]) {
            t.key_file = self.string(v, &p)?;
        }
        if let Some((v, p)) = o.take(&["caFile"]) {
            t.ca_file = self.string(v, &p)?;
        }
        if let Some((v, p)) = o.take(&["secure"]) {
            t.secure = self.boolean(v, &p)?;
        }
        if let Some((v, p)) = o.take(&["serverName"]) {
            t.server_name = self.string(v, &p)?;
        }
        t.extra = self.rest(o, "tls");
        Ok(t)
    }

    /// A list of names (`authers:`). GOST's decoder also takes one string, split on
    /// commas (`authers: "a,b"`).
    fn names(&mut self, n: &SNode, path: &str) -> R<Vec<String>> {
        if let SKind::Str(s) = &n.kind {
            return Ok(if s.is_empty() { Vec::new() } else { s.split(',').map(str::to_string).collect() });
        }
        let mut out = Vec::new();
        for (it, ip) in self.list(n, path)? {
            out.push(self.string(it, &ip)?);
        }
        Ok(out)
    }

    fn handler(&mut self, n: &SNode, path: &str) -> R<HandlerConfig> {
        let mut o = self.obj(n, path)?;
        let mut h = HandlerConfig::default();
        if let Some((v, p)) = o.take(&["type"]) {
            h.kind = self.string(v, &p)?;
        }
        if let Some((v, p)) = o.take(&["retries"]) {
            h.retries = self.int(v, &p)?;
        }
        if let Some((v, p)) = o.take(&["chain"]) {
            h.chain = self.string(v, &p)?;
        }
        if let Some((v, p)) = o.take(&["auther"]) {
            h.auther = self.string(v, &p)?;
        }
        if let Some((v, p)) = o.take(&["authers"]) {
            h.authers = self.names(v, &p)?;
        }
        if let Some((v, p)) = o.take(&["auth"]) {
            h.auth = Some(self.auth(v, &p)?);
        }
        if let Some((v, p)) = o.take(&["auths"]) {
            self.warn(v.line, p.clone(), "not a GOST v3 handler key (GOST ignores it; use an auther); Portway keeps it");
            for (it, ip) in self.list(v, &p)? {
                h.auths.push(self.auth(it, &ip)?);
            }
        }
        if let Some((v, p)) = o.take(&["tls"]) {
            h.tls = Some(self.tls(v, &p)?);
        }
        if let Some((v, p)) = o.take(&["metadata"]) {
            h.metadata = self.metadata(v, &p)?;
        }
        h.extra = self.rest(o, "handler");
        Ok(h)
    }

    fn listener(&mut self, n: &SNode, path: &str) -> R<ListenerConfig> {
        let mut o = self.obj(n, path)?;
        let mut l = ListenerConfig::default();
        if let Some((v, p)) = o.take(&["type"]) {
            l.kind = self.string(v, &p)?;
        }
        if let Some((v, p)) = o.take(&["chain"]) {
            l.chain = self.string(v, &p)?;
        }
        if let Some((v, p)) = o.take(&["auther"]) {
            l.auther = self.string(v, &p)?;
        }
        if let Some((v, p)) = o.take(&["authers"]) {
            l.authers = self.names(v, &p)?;
        }
        if let Some((v, p)) = o.take(&["auth"]) {
            l.auth = Some(self.auth(v, &p)?);
        }
        if let Some((v, p)) = o.take(&["tls"]) {
            l.tls = Some(self.tls(v, &p)?);
        }
        if let Some((v, p)) = o.take(&["metadata"]) {
            l.metadata = self.metadata(v, &p)?;
        }
        l.extra = self.rest(o, "listener");
        Ok(l)
    }

    fn selector(&mut self, n: &SNode, path: &str) -> R<SelectorConfig> {
        let mut o = self.obj(n, path)?;
        let mut s = SelectorConfig { strategy: String::new(), max_fails: 0, fail_timeout: Duration::ZERO, extra: Extra::new() };
        if let Some((v, p)) = o.take(&["strategy"]) {
            s.strategy = self.string(v, &p)?;
            if let Some(msg) = crate::selector::unknown_strategy_warning(&s.strategy) {
                self.warn(v.line, p, msg);
            }
        }
        if let Some((v, p)) = o.take(&["maxFails"]) {
            s.max_fails = self.int(v, &p)?;
        }
        if let Some((v, p)) = o.take(&["failTimeout"]) {
            s.fail_timeout = self.duration(v, &p)?;
        }
        s.extra = self.rest(o, "selector");
        Ok(s)
    }

    fn forwarder(&mut self, n: &SNode, path: &str) -> R<ForwarderConfig> {
        let mut o = self.obj(n, path)?;
        let mut f = ForwarderConfig::default();
        if let Some((v, p)) = o.take(&["hop", "name"]) {
            f.hop = self.string(v, &p)?;
        }
        if let Some((v, p)) = o.take(&["selector"]) {
            f.selector = Some(self.selector(v, &p)?);
        }
        if let Some((v, p)) = o.take(&["nodes"]) {
            for (it, ip) in self.list(v, &p)? {
                f.nodes.push(self.forward_node(it, &ip)?);
            }
        }
        if let Some((v, p)) = o.take(&["targets"]) {
            // GOST 3.0 betas wrote `targets: [addr, …]`; current GOST ignores it and
            // the service ends up with no target. Read it rather than drop it.
            self.warn(v.line, p.clone(), "`targets:` is GOST 3.0-beta syntax that current GOST ignores; Portway reads it as `nodes:` (save writes `nodes:`)");
            for (it, ip) in self.list(v, &p)? {
                let addr = self.string(it, &ip)?;
                let name = format!("target-{}", f.nodes.len());
                f.nodes.push(ForwardNodeConfig { name, addr, ..Default::default() });
            }
        }
        f.extra = self.rest(o, "forwarder");
        Ok(f)
    }

    fn forward_node(&mut self, n: &SNode, path: &str) -> R<ForwardNodeConfig> {
        if let SKind::Str(s) = &n.kind {
            return Err(self.err(n, path, format!("expected a node mapping like `{{name: target-0, addr: {s}}}`, found a plain string")));
        }
        let mut o = self.obj(n, path)?;
        let mut f = ForwardNodeConfig::default();
        if let Some((v, p)) = o.take(&["name"]) {
            f.name = self.string(v, &p)?;
        }
        if let Some((v, p)) = o.take(&["addr"]) {
            f.addr = self.string(v, &p)?;
        }
        if let Some((v, p)) = o.take(&["network"]) {
            f.network = self.string(v, &p)?;
        }
        if let Some((v, p)) = o.take(&["metadata"]) {
            f.metadata = self.metadata(v, &p)?;
        }
        f.extra = self.rest(o, "fnode");
        Ok(f)
    }

    fn chain(&mut self, n: &SNode, path: &str) -> R<ChainConfig> {
        let mut o = self.obj(n, path)?;
        let mut c = ChainConfig::default();
        if let Some((v, p)) = o.take(&["name"]) {
            c.name = self.string(v, &p)?;
        }
        if c.name.is_empty() {
            return Err(self.err(n, path, "chain has no name"));
        }
        if let Some((v, p)) = o.take(&["selector"]) {
            self.warn(v.line, p.clone(), "a selector on a chain is ignored by GOST (it belongs on each hop); kept");
            c.selector = Some(self.selector(v, &p)?);
        }
        if let Some((v, p)) = o.take(&["hops"]) {
            for (it, ip) in self.list(v, &p)? {
                c.hops.push(self.hop(it, &ip)?);
            }
        }
        if let Some((v, p)) = o.take(&["metadata"]) {
            c.metadata = self.metadata(v, &p)?;
        }
        c.extra = self.rest(o, "chain");
        Ok(c)
    }

    fn hop(&mut self, n: &SNode, path: &str) -> R<HopConfig> {
        let mut o = self.obj(n, path)?;
        let mut h = HopConfig::default();
        if let Some((v, p)) = o.take(&["name"]) {
            h.name = self.string(v, &p)?;
        }
        if let Some((v, p)) = o.take(&["selector"]) {
            h.selector = Some(self.selector(v, &p)?);
        }
        if let Some((v, p)) = o.take(&["nodes"]) {
            for (it, ip) in self.list(v, &p)? {
                h.nodes.push(self.node(it, &ip)?);
            }
        }
        if let Some((v, p)) = o.take(&["metadata"]) {
            h.metadata = self.metadata(v, &p)?;
        }
        h.extra = self.rest(o, "hop");
        Ok(h)
    }

    fn node(&mut self, n: &SNode, path: &str) -> R<NodeConfig> {
        let mut o = self.obj(n, path)?;
        let mut c = NodeConfig::default();
        if let Some((v, p)) = o.take(&["name"]) {
            c.name = self.string(v, &p)?;
        }
        if let Some((v, p)) = o.take(&["addr"]) {
            c.addr = self.string(v, &p)?;
        }
        if let Some((v, p)) = o.take(&["network"]) {
            c.network = self.string(v, &p)?;
        }
        if let Some((v, p)) = o.take(&["connector"]) {
            let mut co = self.obj(v, &p)?;
            let mut cc = ConnectorConfig::default();
            if let Some((v, p)) = co.take(&["type"]) {
                cc.kind = self.string(v, &p)?;
            }
            if let Some((v, p)) = co.take(&["auth"]) {
                cc.auth = Some(self.auth(v, &p)?);
            }
            if let Some((v, p)) = co.take(&["tls"]) {
                cc.tls = Some(self.tls(v, &p)?);
            }
            if let Some((v, p)) = co.take(&["metadata"]) {
                cc.metadata = self.metadata(v, &p)?;
            }
            cc.extra = self.rest(co, "connector");
            c.connector = Some(cc);
        }
        if let Some((v, p)) = o.take(&["dialer"]) {
            let mut d = self.obj(v, &p)?;
            let mut dc = DialerConfig::default();
            if let Some((v, p)) = d.take(&["type"]) {
                dc.kind = self.string(v, &p)?;
            }
            if let Some((v, p)) = d.take(&["auth"]) {
                dc.auth = Some(self.auth(v, &p)?);
            }
            if let Some((v, p)) = d.take(&["tls"]) {
                dc.tls = Some(self.tls(v, &p)?);
            }
            if let Some((v, p)) = d.take(&["metadata"]) {
                dc.metadata = self.metadata(v, &p)?;
            }
            dc.extra = self.rest(d, "dialer");
            c.dialer = Some(dc);
        }
        if let Some((v, p)) = o.take(&["metadata"]) {
            c.metadata = self.metadata(v, &p)?;
        }
        c.extra = self.rest(o, "node");
        Ok(c)
    }
}
