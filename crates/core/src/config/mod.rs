//! GOST v3 configuration: types, loading (YAML/JSON), the command-line URL grammar,
//! saving, and the checks that run before a service starts.

pub mod duration;
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
        serde_yaml::to_string(self).unwrap_or_else(|e| format!("# cannot serialise: {e}\n"))
    }

    /// GOST's JSON shape (`gost -O json`): durations in nanoseconds, as Go's encoder writes them.
    pub fn to_json(&self) -> String {
        let v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        let v = durations_to_nanos(v, None);
        serde_json::to_string_pretty(&v).unwrap_or_default()
    }

    pub fn service(&self, name: &str) -> Option<&ServiceConfig> {
        self.services.iter().find(|s| s.name == name)
    }

    pub fn chain(&self, name: &str) -> Option<&ChainConfig> {
        self.chains.iter().find(|c| c.name == name)
    }
}

fn durations_to_nanos(v: serde_json::Value, key: Option<&str>) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        // Only the selector's failTimeout is a time.Duration; metadata stays as written.
        J::Object(m) if key == Some("selector") => J::Object(
            m.into_iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("failTimeout", J::String(s)) => {
                        let nv = match duration::parse_go_duration(&s) {
                            Ok(d) => J::Number((d.as_nanos() as u64).into()),
                            Err(_) => J::String(s),
                        };
                        (k, nv)
                    }
                    (_, v) => (k, v),
                })
                .collect(),
        ),
        J::Object(m) => J::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let nv = durations_to_nanos(v, Some(&k));
                    (k, nv)
                })
                .collect(),
        ),
        J::Array(a) => J::Array(a.into_iter().map(|v| durations_to_nanos(v, None)).collect()),
        other => other,
    }
}
