//! Serde types mirroring GOST v3's configuration schema (go-gost/x `config/config.go`)
//! as port forwarding uses it. Field order follows GOST's structs so that `-O yaml`
//! prints keys in the order GOST prints them. Keys Portway does not model are kept in
//! `extra` so that load → save loses nothing.

use super::duration::{format_go_duration, parse_go_duration};
use serde::{Serialize, Serializer};
use serde_yaml::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Free-form keys (GOST `metadata:` blocks and unmodelled keys). Sorted on output,
/// as yaml.v3 sorts map keys.
pub type Extra = BTreeMap<String, Value>;

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(n: &i64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Config {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub chains: Vec<ChainConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hops: Vec<HopConfig>,
    /// Top-level sections GOST has and Portway does not run yet (authers, bypasses,
    /// resolvers, hosts, limiters, api, log, …), kept verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServiceConfig {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub addr: String,
    #[serde(skip_serializing_if = "HandlerConfig::is_unset")]
    pub handler: HandlerConfig,
    #[serde(skip_serializing_if = "ListenerConfig::is_unset")]
    pub listener: ListenerConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwarder: Option<ForwarderConfig>,
    #[serde(skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HandlerConfig {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub retries: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub chain: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub auther: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub authers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthConfig>,
    /// Not a GOST v3 handler key, but common in user files (a list of users);
    /// modelled so that issue 5's auth can use it, warned about meanwhile.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub auths: Vec<AuthConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    #[serde(skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ListenerConfig {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub chain: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub auther: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub authers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    #[serde(skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ForwarderConfig {
    /// Name of a top-level hop to take the nodes from (GOST's `hop`, alias `name`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hop: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<SelectorConfig>,
    pub nodes: Vec<ForwardNodeConfig>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ForwardNodeConfig {
    pub name: String,
    pub addr: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub network: String,
    #[serde(skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SelectorConfig {
    pub strategy: String,
    #[serde(rename = "maxFails")]
    pub max_fails: i64,
    #[serde(rename = "failTimeout", serialize_with = "ser_duration")]
    pub fail_timeout: Duration,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Default for SelectorConfig {
    fn default() -> Self {
        // GOST's defaults when a YAML file has no selector (selector/selector.go).
        SelectorConfig {
            strategy: "round".into(),
            max_fails: 1,
            fail_timeout: Duration::from_secs(10),
            extra: Extra::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChainConfig {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<SelectorConfig>,
    pub hops: Vec<HopConfig>,
    #[serde(skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HopConfig {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<SelectorConfig>,
    /// Nodes are empty when the hop only names a top-level hop.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeConfig>,
    #[serde(skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NodeConfig {
    pub name: String,
    pub addr: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub network: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector: Option<ConnectorConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dialer: Option<DialerConfig>,
    #[serde(skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ConnectorConfig {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    #[serde(skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DialerConfig {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    #[serde(skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Credentials. `Debug` never prints the password (logs and panics must not leak it).
#[derive(Clone, Default, PartialEq, Serialize)]
pub struct AuthConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password: String,
    #[serde(flatten)]
    pub extra: Extra,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("username", &self.username)
            .field("password", &if self.password.is_empty() { "" } else { "********" })
            .finish()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TlsConfig {
    #[serde(rename = "certFile", skip_serializing_if = "String::is_empty")]
    pub cert_file: String,
    #[serde(rename = "keyFile", skip_serializing_if = "String::is_empty")]
    pub key_file: String,
    #[serde(rename = "caFile", skip_serializing_if = "String::is_empty")]
    pub ca_file: String,
    #[serde(skip_serializing_if = "is_false")]
    pub secure: bool,
    #[serde(rename = "serverName", skip_serializing_if = "String::is_empty")]
    pub server_name: String,
    #[serde(flatten)]
    pub extra: Extra,
}

impl HandlerConfig {
    /// Absent from the file (GOST keeps a nil pointer and prints nothing).
    pub fn is_unset(&self) -> bool {
        *self == HandlerConfig::default()
    }
}

impl ListenerConfig {
    pub fn is_unset(&self) -> bool {
        *self == ListenerConfig::default()
    }
}

fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_go_duration(*d))
}

/// A GOST `metadata:` map. Keys keep the spelling the user wrote (and are printed
/// sorted), but lookups ignore case, as GOST lowercases metadata keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Metadata(pub BTreeMap<String, Value>);

impl Metadata {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn insert(&mut self, k: impl Into<String>, v: Value) {
        self.0.insert(k.into(), v);
    }
    /// First key (in `names` order) present, compared case-insensitively.
    pub fn get(&self, names: &[&str]) -> Option<(&str, &Value)> {
        for want in names {
            for (k, v) in &self.0 {
                if k.eq_ignore_ascii_case(want) {
                    return Some((k.as_str(), v));
                }
            }
        }
        None
    }
    pub fn contains(&self, names: &[&str]) -> bool {
        self.get(names).is_some()
    }
    pub fn remove(&mut self, name: &str) -> Option<Value> {
        let key = self.0.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()?;
        self.0.remove(&key)
    }

    /// GOST `GetBool`: a bool, a non-zero int, or a string `strconv.ParseBool` accepts.
    pub fn get_bool(&self, names: &[&str]) -> Result<Option<bool>, String> {
        let Some((k, v)) = self.get(names) else { return Ok(None) };
        match v {
            Value::Bool(b) => Ok(Some(*b)),
            Value::Number(n) => Ok(Some(n.as_f64().unwrap_or(0.0) != 0.0)),
            Value::String(s) => parse_go_bool(s)
                .map(Some)
                .ok_or_else(|| format!("metadata.{k}: {s:?} is not a boolean (true/false/1/0)")),
            Value::Null => Ok(None),
            other => Err(format!("metadata.{k}: expected a boolean, found {}", kind_of(other))),
        }
    }

    /// GOST `GetInt`: an int, a numeric string, or a bool (1/0).
    pub fn get_int(&self, names: &[&str]) -> Result<Option<i64>, String> {
        let Some((k, v)) = self.get(names) else { return Ok(None) };
        match v {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .map(Some)
                .ok_or_else(|| format!("metadata.{k}: {n} is not an integer")),
            Value::Bool(b) => Ok(Some(*b as i64)),
            Value::String(s) => s
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| format!("metadata.{k}: {s:?} is not an integer")),
            Value::Null => Ok(None),
            other => Err(format!("metadata.{k}: expected an integer, found {}", kind_of(other))),
        }
    }

    /// GOST `GetDuration`: an int is seconds, a string is Go duration syntax or a
    /// number of seconds.
    pub fn get_duration(&self, names: &[&str]) -> Result<Option<Duration>, String> {
        let Some((k, v)) = self.get(names) else { return Ok(None) };
        match v {
            Value::Number(n) => {
                let secs = n.as_f64().unwrap_or(0.0);
                Ok(Some(if secs > 0.0 { Duration::from_secs_f64(secs) } else { Duration::ZERO }))
            }
            Value::String(s) => {
                if let Ok(secs) = s.trim().parse::<f64>() {
                    return Ok(Some(if secs > 0.0 { Duration::from_secs_f64(secs) } else { Duration::ZERO }));
                }
                parse_go_duration(s).map(Some).map_err(|e| format!("metadata.{k}: {e}"))
            }
            Value::Null => Ok(None),
            other => Err(format!("metadata.{k}: expected a duration, found {}", kind_of(other))),
        }
    }

    /// A map of strings (GOST's `header` option), keys in file order.
    pub fn get_string_map(&self, names: &[&str]) -> Vec<(String, String)> {
        let Some((_, Value::Mapping(m))) = self.get(names) else { return Vec::new() };
        m.iter()
            .filter_map(|(k, v)| {
                let k = k.as_str()?.to_string();
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return None,
                };
                Some((k, v))
            })
            .collect()
    }

    pub fn get_string(&self, names: &[&str]) -> Option<String> {
        let (_, v) = self.get(names)?;
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

pub fn parse_go_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}
