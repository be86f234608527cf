//! The Logs view: the engine's log lines, streamed in batches.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

pub use portway_core::store::LogLevel;

/// A structured field of a log line (`client`, `target`, `node` …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct LogField {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct LogEntry {
    /// The line's number since the app started (1, 2, …): gaps mean lines not kept.
    #[ts(type = "number")]
    pub seq: u64,
    /// Unix milliseconds.
    #[ts(type = "number")]
    pub time: u64,
    pub level: LogLevel,
    /// The rule (service) the line concerns, when it concerns one.
    pub rule: Option<String>,
    pub message: String,
    /// The other structured fields, in the order the engine wrote them.
    pub fields: Vec<LogField>,
}

/// Lines sent together (at most four batches a second). Lines that came and went
/// too fast to be sent leave a gap in `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct LogBatch {
    pub lines: Vec<LogEntry>,
}
