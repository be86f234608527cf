//! The types the window and the app exchange. One definition: `ts-rs` writes the
//! TypeScript side into `ui/src/lib/bindings/` (`cargo test -p portway-ipc
//! export_bindings` regenerates them), so the two cannot drift.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

// The Chains view; the Connections and Traffic views; tray, settings, logs and
// notifications.
mod chains;
mod conns;
mod desktop;
mod logs;
pub use chains::*;
pub use conns::*;
pub use desktop::*;
pub use logs::*;

/// A rule as the form edits it: the core's rule type itself, exported to TypeScript
/// under the names the window uses.
pub use portway_core::rule::{Rule as RuleDraft, RuleKind as RuleKindDto};

/// running | stopped | disabled | failed
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub enum RuleState {
    Running,
    Stopped,
    Disabled,
    Failed,
}

/// A rule in the Rules view: the form's fields plus what the engine says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct RuleView {
    pub rule: RuleDraft,
    pub enabled: bool,
    pub state: RuleState,
    /// The engine's message when `state` is failed.
    pub error: Option<String>,
    /// Where it really listens (`127.0.0.1:8080`).
    pub listening: Vec<String>,
    /// `gost -L …` for this rule, when it can be written as one.
    pub gost_cmdline: Option<String>,
}

/// Live numbers for one rule, one frame per stats tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct RuleStats {
    pub name: String,
    #[ts(type = "number")]
    pub active: u64,
    #[ts(type = "number")]
    pub total: u64,
    /// Bytes from clients towards targets.
    #[ts(type = "number")]
    pub bytes_in: u64,
    /// Bytes back to clients.
    #[ts(type = "number")]
    pub bytes_out: u64,
    /// Bytes per second, last tick.
    #[ts(type = "number")]
    pub rate_in: u64,
    #[ts(type = "number")]
    pub rate_out: u64,
    #[ts(type = "number")]
    pub errors: u64,
    /// The engine's state for the rule at this tick (a rule can fail or recover
    /// between snapshots).
    pub state: RuleState,
    /// The engine's message when `state` is failed.
    pub error: Option<String>,
    /// The latest error while running (a refused hop, a failed login …) and when
    /// it happened (unix milliseconds).
    pub last_error: Option<String>,
    #[ts(type = "number | null")]
    pub last_error_at: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct StatsFrame {
    /// Unix milliseconds.
    #[ts(type = "number")]
    pub time: u64,
    pub rules: Vec<RuleStats>,
    /// Node health per chain that a running rule uses (absent from older backends).
    #[serde(default)]
    #[ts(as = "Option<Vec<ChainHealth>>", optional)]
    pub chains: Vec<ChainHealth>,
}

/// Everything the window shows at start and after each change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct AppSnapshot {
    pub profiles: Vec<String>,
    pub active_profile: String,
    pub rules: Vec<RuleView>,
    /// Chains of the active profile (for the rule editor's chain picker).
    pub chains: Vec<String>,
    /// Services of the profile the form cannot show (proxies …); they run as written.
    pub other_services: Vec<String>,
    /// What the loader said about the profile file (unsupported keys …).
    pub warnings: Vec<String>,
}

/// What an import would create, before anything is written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct ImportPreview {
    /// yaml | json | cmdline
    pub format: String,
    pub rules: Vec<RuleDraft>,
    pub other_services: Vec<String>,
    pub chains: Vec<String>,
    /// Every key Portway cannot represent or does not run, named.
    pub warnings: Vec<String>,
}

/// What went wrong, where: commands never return bare strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub enum ErrorCode {
    /// A form field is wrong (see `field`).
    Invalid,
    /// A file or pasted text does not parse (GOST v2 included).
    Parse,
    NotFound,
    AlreadyExists,
    /// Reading or writing the profile store failed.
    Storage,
    /// The engine refused (e.g. a port in use).
    Engine,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("{message}")]
#[ts(export)]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
    /// The rule it concerns.
    pub rule: Option<String>,
    /// The form field it concerns (`listen`, `targets.1`, …).
    pub field: Option<String>,
    /// Whether trying again may help.
    pub retryable: bool,
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> AppError {
        AppError { code, message: message.into(), rule: None, field: None, retryable: false }
    }
}

/// The GOST equivalents of a rule, for the editor to show and copy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct RulePreview {
    /// `gost -L …`, when the rule (and its chain) can be written as a command line.
    pub cmdline: Option<String>,
    /// The rule's `services` entry (and chain) in GOST YAML.
    pub yaml: String,
}

/// A profile as GOST would read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct ProfileExport {
    pub name: String,
    /// The profile file (GOST v3 YAML), as saved.
    pub yaml: String,
    /// `gost -L … -F …` for the whole profile, when GOST's command line can say it.
    pub cmdline: Option<String>,
}
