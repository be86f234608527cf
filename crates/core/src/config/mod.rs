//! GOST v3 configuration: types, loading (YAML/JSON), the command-line URL grammar,
//! saving, and the checks that run before a service starts.

pub mod cmdline;
pub mod duration;
pub mod emit;
pub mod load;
pub mod registry;
pub mod spanned;
pub mod types;
pub mod url;
pub mod validate;

pub use load::{load_file, load_str, LoadError, Loaded, Warning};
pub use types::*;
pub use url::{build_from_cmd, UrlError};

impl Config {
    /// GOST's YAML shape (what `gost -O yaml` prints).
    pub fn to_yaml(&self) -> String {
        match serde_yaml::to_value(self) {
            Ok(v) => emit::to_gost_yaml(&v),
            Err(e) => format!("# cannot serialise: {e}\n"),
        }
    }

    /// GOST's JSON shape (`gost -O json`): durations in nanoseconds, as Go's encoder writes them.
    pub fn to_json(&self) -> String {
        let v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        let v = durations_to_nanos(v);
        serde_json::to_string_pretty(&v).unwrap_or_default()
    }

    pub fn service(&self, name: &str) -> Option<&ServiceConfig> {
        self.services.iter().find(|s| s.name == name)
    }

    pub fn chain(&self, name: &str) -> Option<&ChainConfig> {
        self.chains.iter().find(|c| c.name == name)
    }
}

/// Go's JSON encoder writes `time.Duration` as integer nanoseconds. Only the selector
/// blocks GOST types as durations are converted (`services[].forwarder.selector`,
/// `chains[].selector`, `chains[].hops[].selector`, `hops[].selector`); metadata and
/// kept keys stay as written, even when they are called `selector`.
fn durations_to_nanos(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value as J;
    let J::Object(root) = v else { return v };
    J::Object(
        root.into_iter()
            .map(|(k, v)| {
                let v = match k.as_str() {
                    "services" => each(v, |svc| field(svc, "forwarder", |f| field(f, "selector", selector_nanos))),
                    "chains" => each(v, |ch| field(field(ch, "selector", selector_nanos), "hops", |hops| each(hops, hop_nanos))),
                    "hops" => each(v, hop_nanos),
                    _ => v,
                };
                (k, v)
            })
            .collect(),
    )
}

fn hop_nanos(hop: serde_json::Value) -> serde_json::Value {
    field(hop, "selector", selector_nanos)
}

fn each(v: serde_json::Value, f: impl Fn(serde_json::Value) -> serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Array(a) => serde_json::Value::Array(a.into_iter().map(f).collect()),
        other => other,
    }
}

fn field(v: serde_json::Value, name: &str, f: impl Fn(serde_json::Value) -> serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(mut m) => {
            // In place, so that keys keep GOST's order (serde_json preserves order here).
            if let Some(x) = m.get_mut(name) {
                *x = f(std::mem::take(x));
            }
            serde_json::Value::Object(m)
        }
        other => other,
    }
}

fn selector_nanos(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        J::Object(m) => J::Object(
            m.into_iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("failTimeout", J::String(s)) => {
                        let nv = match duration::parse_go_duration(&s) {
                            Ok(d) => J::Number((d.as_nanos().min(u64::MAX as u128) as u64).into()),
                            Err(_) => J::String(s),
                        };
                        (k, nv)
                    }
                    (_, v) => (k, v),
                })
                .collect(),
        ),
        other => other,
    }
}
