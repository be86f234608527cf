//! Counters, the live connection registry and the event stream.
//!
//! The data path only does relaxed atomic adds on counters it already holds an `Arc`
//! to; the registry's lock is taken when a connection opens or closes, never per
//! byte. Once a second the engine samples everything into one [`Event::Stats`].

use crate::selector::NodeHealth;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// Per-service totals. `bytes_in` is what clients sent (towards the target),
/// `bytes_out` what went back to clients.
#[derive(Debug, Default)]
pub struct ServiceCounters {
    pub active: AtomicU64,
    pub total: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub errors: AtomicU64,
    /// The latest error (unix ms, message), shown with the rule while it keeps
    /// running: "hop-1 node a (127.0.0.1:1080): authentication failed".
    pub last_error: Mutex<Option<(u64, String)>>,
}

impl ServiceCounters {
    /// Counts an error and keeps its message as the latest one.
    pub fn fail(&self, msg: impl Into<String>) {
        self.errors.fetch_add(1, Relaxed);
        let mut g = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
        *g = Some((unix_millis(), msg.into()));
    }

    pub fn last_error(&self) -> Option<(u64, String)> {
        self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Per-connection byte counters, shared between the data path and the registry.
#[derive(Debug, Default)]
pub struct ConnCounters {
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
}

/// Adds to the connection and its service at once.
#[derive(Debug, Clone)]
pub struct Meter {
    pub conn: Arc<ConnCounters>,
    pub service: Arc<ServiceCounters>,
}

impl Meter {
    #[inline]
    pub fn add_in(&self, n: u64) {
        self.conn.bytes_in.fetch_add(n, Relaxed);
        self.service.bytes_in.fetch_add(n, Relaxed);
    }
    #[inline]
    pub fn add_out(&self, n: u64) {
        self.conn.bytes_out.fetch_add(n, Relaxed);
        self.service.bytes_out.fetch_add(n, Relaxed);
    }
}

pub fn unix_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// One live connection (or UDP session) as the UI lists it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConnInfo {
    pub id: u64,
    pub service: String,
    pub network: String,
    pub client: String,
    /// The forwarding target chosen for it.
    pub target: String,
    /// Name of the target node (e.g. `target-1`).
    pub node: String,
    /// Unix milliseconds.
    pub since: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// One listed connection, kept compact because every open connection holds one:
/// the service name is shared, the network is a constant, and the strings are
/// boxed (no spare capacity). [`ConnInfo`] is built from it only when asked for.
pub struct ConnEntry {
    pub service: Arc<str>,
    pub network: &'static str,
    pub client: Box<str>,
    pub target: Box<str>,
    pub node: Box<str>,
    /// Unix milliseconds.
    pub since: u64,
    pub counters: Arc<ConnCounters>,
    pub cancel: CancellationToken,
}

impl ConnEntry {
    pub fn info(&self, id: u64) -> ConnInfo {
        ConnInfo {
            id,
            service: self.service.to_string(),
            network: self.network.to_string(),
            client: self.client.to_string(),
            target: self.target.to_string(),
            node: self.node.to_string(),
            since: self.since,
            bytes_in: self.counters.bytes_in.load(Relaxed),
            bytes_out: self.counters.bytes_out.load(Relaxed),
        }
    }
}

/// Live connections by id.
#[derive(Default)]
pub struct ConnRegistry {
    next_id: AtomicU64,
    map: Mutex<HashMap<u64, ConnEntry>>,
}

impl ConnRegistry {
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Relaxed) + 1
    }

    pub fn insert(&self, id: u64, entry: ConnEntry) {
        if let Ok(mut m) = self.map.lock() {
            m.insert(id, entry);
        }
    }

    /// Takes a connection off the list; [`ConnEntry::info`] gives what it showed last.
    pub fn remove(&self, id: u64) -> Option<ConnEntry> {
        self.map.lock().ok()?.remove(&id)
    }

    pub fn list(&self) -> Vec<ConnInfo> {
        let Ok(m) = self.map.lock() else { return Vec::new() };
        let mut v: Vec<ConnInfo> = m.iter().map(|(id, e)| e.info(*id)).collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// Asks a connection to close; `false` if there is no such id.
    pub fn close(&self, id: u64) -> bool {
        match self.map.lock() {
            Ok(m) => match m.get(&id) {
                Some(e) => {
                    e.cancel.cancel();
                    true
                }
                None => false,
            },
            Err(_) => false,
        }
    }

    pub fn count(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }
}

/// The state of one service as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum ServiceState {
    Running,
    Stopped,
    /// Switched off by the user (settings), not started.
    Disabled,
    Failed { error: String },
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServiceStats {
    pub service: String,
    pub active: u64,
    pub total: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Bytes per second over the last tick.
    pub rate_in: u64,
    pub rate_out: u64,
    pub errors: u64,
    /// The latest error while running: (unix ms, message).
    pub last_error: Option<(u64, String)>,
    /// The forwarder's targets.
    pub nodes: Vec<NodeHealth>,
    /// The chain's hops with their nodes' health (empty without a chain).
    pub hops: Vec<HopHealth>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HopHealth {
    pub chain: String,
    pub hop: String,
    pub nodes: Vec<NodeHealth>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LogLine {
    /// Unix milliseconds.
    pub time: u64,
    pub level: String,
    pub message: String,
    /// Structured fields (service, client, target, node …).
    pub fields: Vec<(String, String)>,
}

/// What the engine tells its subscribers.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Event {
    ServiceState { service: String, state: ServiceState },
    ConnOpened { conn: ConnInfo },
    ConnClosed { conn: ConnInfo, error: Option<String> },
    Stats { time: u64, services: Vec<ServiceStats> },
    Log { line: LogLine },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_connection_stays_small_and_shows_what_it_was_given() {
        // Every open connection holds one entry, so it counts in fwdbench's memory per
        // idle connection. Holding a ConnInfo (five Strings) made it 168 bytes plus
        // five allocations; the compact entry is 104 plus three short ones.
        assert!(std::mem::size_of::<ConnEntry>() <= 112, "ConnEntry is {} bytes", std::mem::size_of::<ConnEntry>());
        let reg = ConnRegistry::default();
        let counters = Arc::new(ConnCounters::default());
        let id = reg.next_id();
        reg.insert(
            id,
            ConnEntry {
                service: "svc".into(),
                network: "tcp",
                client: "127.0.0.1:5000".into(),
                target: "127.0.0.1:80".into(),
                node: "target-0".into(),
                since: 7,
                counters: counters.clone(),
                cancel: CancellationToken::new(),
            },
        );
        counters.bytes_in.fetch_add(3, Relaxed);
        counters.bytes_out.fetch_add(5, Relaxed);
        let want = ConnInfo {
            id,
            service: "svc".into(),
            network: "tcp".into(),
            client: "127.0.0.1:5000".into(),
            target: "127.0.0.1:80".into(),
            node: "target-0".into(),
            since: 7,
            bytes_in: 3,
            bytes_out: 5,
        };
        assert_eq!(reg.list(), vec![want.clone()]);
        assert_eq!(reg.remove(id).map(|e| e.info(id)), Some(want));
        assert_eq!(reg.count(), 0);
    }
}
