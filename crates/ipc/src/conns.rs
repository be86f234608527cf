//! The Connections view: live connections as compact rows, sent as changes once per
//! stats tick, and the connections that closed recently.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// One live connection (or UDP session) as the table shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct ConnRow {
    #[ts(type = "number")]
    pub id: u64,
    /// The rule (service) it came in through.
    pub rule: String,
    /// tcp | udp
    pub network: String,
    pub client: String,
    pub target: String,
    /// Name of the target node (`target-1`).
    pub node: String,
    /// When it opened, unix milliseconds.
    #[ts(type = "number")]
    pub since: u64,
    /// Bytes from the client towards the target.
    #[ts(type = "number")]
    pub bytes_in: u64,
    /// Bytes back to the client.
    #[ts(type = "number")]
    pub bytes_out: u64,
    /// Bytes per second between the last two ticks.
    #[ts(type = "number")]
    pub rate_in: u64,
    #[ts(type = "number")]
    pub rate_out: u64,
}

/// A connection that has ended, with its totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct ClosedConn {
    /// Its last numbers (rates are 0).
    pub conn: ConnRow,
    /// Unix milliseconds.
    #[ts(type = "number")]
    pub closed_at: u64,
    #[ts(type = "number")]
    pub duration_ms: u64,
    /// Why it ended, when it ended with an error.
    pub error: Option<String>,
}

/// One tick of the Connections stream. Only what changed since the previous frame
/// is sent, so 1,000 quiet connections cost a few bytes a second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct ConnsFrame {
    /// Unix milliseconds of the sample.
    #[ts(type = "number")]
    pub time: u64,
    /// The receiver drops what it holds first: `upsert` is the whole list and
    /// `closed` the whole recently-closed ring (the first frame of a stream).
    pub reset: bool,
    /// Connections new since the previous frame (all of them on a reset).
    pub upsert: Vec<ConnRow>,
    /// Listed connections whose numbers changed, compactly: `[id, bytesIn,
    /// bytesOut, rateIn, rateOut]` (their names and addresses do not change).
    #[ts(type = "Array<[number, number, number, number, number]>")]
    pub update: Vec<[u64; 5]>,
    /// Ids that are gone since the previous frame.
    #[ts(type = "Array<number>")]
    pub removed: Vec<u64>,
    /// Connections that closed since the previous frame, oldest first.
    pub closed: Vec<ClosedConn>,
    /// Live connections in all.
    #[ts(type = "number")]
    pub live: u64,
}
