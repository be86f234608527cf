//! The Chains view: a chain as the form edits it, what the view lists, the live
//! health of each node (carried in the stats stream) and the probe's answer.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// One free option of a node, as `key=value` (GOST's `-F …?key=value`). Plain
/// keys are the protocol's (connector metadata); `node.k` and `dialer.k` go to
/// those maps; `serverName` and `secure` are the transport's TLS settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct NodeOption {
    pub key: String,
    pub value: String,
}

/// A node of a hop.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct NodeDraft {
    pub name: String,
    /// socks5 | http | relay | sshd | forward (GOST's connector).
    pub protocol: String,
    /// tcp | tls (GOST's dialer); sshd for an sshd node.
    pub transport: String,
    /// host:port
    pub addr: String,
    pub username: String,
    pub password: String,
    pub options: Vec<NodeOption>,
    /// Index of the node (in the hop this draft was read from) the saved node starts
    /// from, so keys the form does not show survive; null for a new node.
    pub origin: Option<u32>,
}

// Logs and panics must never print a password.
impl std::fmt::Debug for NodeDraft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeDraft")
            .field("name", &self.name)
            .field("protocol", &self.protocol)
            .field("transport", &self.transport)
            .field("addr", &self.addr)
            .field("username", &self.username)
            .field("password", &if self.password.is_empty() { "" } else { "********" })
            .field("options", &self.options)
            .field("origin", &self.origin)
            .finish()
    }
}

/// A hop: its nodes and the selector that picks one per connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct HopDraft {
    pub name: String,
    /// round | rand | fifo | hash
    pub strategy: String,
    pub max_fails: u32,
    pub fail_timeout_secs: u32,
    pub nodes: Vec<NodeDraft>,
    /// The hop only names a top-level hop of the profile (its nodes live there):
    /// shown read-only, saved as written.
    pub shared: bool,
    /// Index of the hop (in the chain this draft was read from) the saved hop
    /// starts from; null for a new hop.
    pub origin: Option<u32>,
}

/// A chain: ordered hops, from you to the last one before the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct ChainDraft {
    pub name: String,
    pub hops: Vec<HopDraft>,
}

/// A chain in the Chains view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct ChainView {
    pub chain: ChainDraft,
    /// Services of the profile that go through it (rules and others).
    pub used_by: Vec<String>,
    /// Settings the form does not show and keeps as written
    /// (`hops.0.nodes.1: connector.metadata.header`).
    pub kept: Vec<String>,
}

/// A node's health as the selector sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct NodeHealthView {
    pub name: String,
    pub addr: String,
    /// Consecutive failures (a success resets them).
    pub fails: u32,
    #[ts(type = "number")]
    pub total_failures: u64,
    #[ts(type = "number")]
    pub successes: u64,
    /// Unix seconds until which the node is skipped; null while it is eligible.
    #[ts(type = "number | null")]
    pub dead_until: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct HopHealthView {
    pub hop: String,
    pub nodes: Vec<NodeHealthView>,
}

/// The health of one chain's nodes, merged over the running rules that use it
/// (each rule keeps its own failure counts: the worst one is shown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct ChainHealth {
    pub chain: String,
    /// In the chain's hop order.
    pub hops: Vec<HopHealthView>,
}

/// One step of a probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct ProbeHop {
    /// Index of the chain's hop; null for the last step to the target.
    pub index: Option<u32>,
    pub hop: String,
    pub node: String,
    pub addr: String,
    #[ts(type = "number")]
    pub ms: u64,
    /// Why this step failed; null when it succeeded.
    pub error: Option<String>,
}

/// What a probe of a rule's path found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct ProbeView {
    pub rule: String,
    /// The rule's chain ("" without one).
    pub chain: String,
    /// The address asked for through the chain ("" when only the hops were tried).
    pub target: String,
    pub ok: bool,
    /// The whole route, in milliseconds.
    #[ts(type = "number")]
    pub ms: u64,
    /// Each step reached, the failing one last.
    pub hops: Vec<ProbeHop>,
    pub error: Option<String>,
    /// Every target's result when the rule has several (the steps above are the
    /// first failing target's); empty for one target.
    pub targets: Vec<ProbeTarget>,
}

/// One of a rule's targets as the probe found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct ProbeTarget {
    pub target: String,
    pub ok: bool,
    #[ts(type = "number")]
    pub ms: u64,
    pub error: Option<String>,
}
