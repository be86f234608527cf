//! Node selection with GOST's semantics (go-gost/x `selector/`, `hop/hop.go`,
//! go-gost/core `selector.go`): filters first (failed nodes, then backups), then a
//! strategy (`round`, `rand`, `fifo`, `hash`) over what is left.
//!
//! Health is atomics only, so marking a node from a data-path task never takes a lock.

use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    Round,
    Rand,
    Fifo,
    Hash,
}

impl Strategy {
    /// GOST's names. `Err` names the unknown one: the editors refuse it, and a
    /// loaded profile or command line runs it as [`Strategy::gost`] does.
    pub fn parse(s: &str) -> Result<Strategy, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "round" | "rr" => Ok(Strategy::Round),
            "rand" | "random" => Ok(Strategy::Rand),
            "fifo" | "ha" => Ok(Strategy::Fifo),
            "hash" => Ok(Strategy::Hash),
            other => Err(format!(
                "unknown selector strategy {other:?} (GOST knows round, rand, fifo, hash)"
            )),
        }
    }

    /// What runs for a strategy name: round-robin for one Portway does not know,
    /// as GOST does for a name it does not know (`config/parsing/selector/parse.go`)
    /// — a typo, or GOST master's newer `lowest` and `parallel`. The loader warns
    /// about such a name; the service still starts.
    pub fn gost(s: &str) -> Strategy {
        Strategy::parse(s).unwrap_or(Strategy::Round)
    }
}

/// The warning for a selector strategy run as round-robin (GOST would say
/// nothing), or `None` for a known name.
pub fn unknown_strategy_warning(strategy: &str) -> Option<String> {
    Strategy::parse(strategy)
        .err()
        .map(|e| format!("{e}; Portway runs it as round-robin, as GOST does with a name it does not know"))
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// GOST's fail marker: a count and the Unix second of the last failure.
#[derive(Debug, Default)]
pub struct Marker {
    count: AtomicU32,
    last_fail: AtomicI64,
    /// Successful dials, for the UI.
    pub successes: AtomicU64,
    /// All failures ever, for the UI (count resets on success).
    pub total_failures: AtomicU64,
}

impl Marker {
    pub fn mark(&self) {
        self.count.fetch_add(1, Relaxed);
        self.total_failures.fetch_add(1, Relaxed);
        self.last_fail.store(now_secs(), Relaxed);
    }
    pub fn reset(&self) {
        self.count.store(0, Relaxed);
        self.successes.fetch_add(1, Relaxed);
    }
    pub fn count(&self) -> u32 {
        self.count.load(Relaxed)
    }
    pub fn last_fail(&self) -> i64 {
        self.last_fail.load(Relaxed)
    }
}

/// A candidate for selection: a forwarder target or a chain node.
#[derive(Debug)]
pub struct SelNode {
    pub name: String,
    pub addr: String,
    pub weight: u32,
    pub backup: bool,
    /// Per-node overrides (node metadata `maxFails` / `failTimeout`); 0 = hop's.
    pub max_fails: u32,
    pub fail_timeout: Duration,
    pub marker: Marker,
}

impl SelNode {
    pub fn new(name: impl Into<String>, addr: impl Into<String>) -> SelNode {
        SelNode {
            name: name.into(),
            addr: addr.into(),
            weight: 1,
            backup: false,
            max_fails: 0,
            fail_timeout: Duration::ZERO,
            marker: Marker::default(),
        }
    }
}

#[derive(Debug)]
pub struct Selector {
    pub strategy: Strategy,
    pub max_fails: u32,
    pub fail_timeout: Duration,
    counter: AtomicU64,
}

/// A node's health as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NodeHealth {
    pub name: String,
    pub addr: String,
    /// Consecutive failures (reset by a success).
    pub fails: u32,
    pub total_failures: u64,
    pub successes: u64,
    /// Unix seconds until which the node is skipped; `None` when it is eligible.
    pub dead_until: Option<i64>,
}

impl Selector {
    pub fn new(strategy: Strategy, max_fails: i64, fail_timeout: Duration) -> Selector {
        Selector {
            strategy,
            // GOST: values <= 0 fall back to 1 / 10s.
            max_fails: if max_fails <= 0 { 1 } else { max_fails.min(u32::MAX as i64) as u32 },
            fail_timeout: if fail_timeout.is_zero() { Duration::from_secs(10) } else { fail_timeout },
            counter: AtomicU64::new(0),
        }
    }

    fn limits(&self, n: &SelNode) -> (u32, i64) {
        let mf = if n.max_fails > 0 { n.max_fails } else { self.max_fails };
        let ft = if n.fail_timeout.is_zero() { self.fail_timeout } else { n.fail_timeout };
        (mf, ft.as_secs() as i64)
    }

    /// GOST's FailFilter test: `count >= maxFails && now - lastFail < failTimeout`
    /// (whole seconds, as the marker stores Unix seconds).
    pub fn is_failed(&self, n: &SelNode, now: i64) -> bool {
        let (mf, ft) = self.limits(n);
        n.marker.count() >= mf && now - n.marker.last_fail() < ft
    }

    pub fn health(&self, n: &SelNode) -> NodeHealth {
        let now = now_secs();
        let (_, ft) = self.limits(n);
        NodeHealth {
            name: n.name.clone(),
            addr: n.addr.clone(),
            fails: n.marker.count(),
            total_failures: n.marker.total_failures.load(Relaxed),
            successes: n.marker.successes.load(Relaxed),
            dead_until: if self.is_failed(n, now) { Some(n.marker.last_fail() + ft) } else { None },
        }
    }

    /// Picks a node index, or `None` when every node is failed (GOST v3.2.6: the
    /// connection is refused with "node not available").
    /// `hash_key` is the client IP for the `hash` strategy.
    pub fn select(&self, nodes: &[SelNode], hash_key: Option<&str>) -> Option<usize> {
        match nodes.len() {
            0 => return None,
            // GOST's hop returns a sole node without filtering: a single target is always tried.
            1 => return Some(0),
            _ => {}
        }
        let now = now_secs();
        let mut cand: Vec<usize> = (0..nodes.len()).filter(|&i| !self.is_failed(&nodes[i], now)).collect();
        // BackupFilter: backups only when nothing else is left.
        if cand.iter().any(|&i| !nodes[i].backup) {
            cand.retain(|&i| !nodes[i].backup);
        }
        if cand.is_empty() {
            return None;
        }
        let pick = match self.strategy {
            Strategy::Round => {
                let c = self.counter.fetch_add(1, Relaxed);
                cand[(c % cand.len() as u64) as usize]
            }
            Strategy::Fifo => cand[0],
            Strategy::Rand => weighted_random(nodes, &cand),
            Strategy::Hash => match hash_key {
                Some(k) => cand[(crc32fast::hash(k.as_bytes()) as usize) % cand.len()],
                None => weighted_random(nodes, &cand),
            },
        };
        Some(pick)
    }
}

fn weighted_random(nodes: &[SelNode], cand: &[usize]) -> usize {
    let total: u64 = cand.iter().map(|&i| nodes[i].weight.max(1) as u64).sum();
    let mut r = rand::random_range(0..total.max(1));
    for &i in cand {
        let w = nodes[i].weight.max(1) as u64;
        if r < w {
            return i;
        }
        r -= w;
    }
    cand[cand.len() - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: usize) -> Vec<SelNode> {
        (0..n).map(|i| SelNode::new(format!("target-{i}"), format!("127.0.0.1:{}", 1000 + i))).collect()
    }

    #[test]
    fn round_robin_cycles_and_skips_failed() {
        let ns = nodes(3);
        let s = Selector::new(Strategy::Round, 1, Duration::from_secs(30));
        let picks: Vec<_> = (0..6).map(|_| s.select(&ns, None).unwrap()).collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2]);
        ns[1].marker.mark();
        for _ in 0..10 {
            assert_ne!(s.select(&ns, None), Some(1));
        }
        ns[1].marker.reset();
        assert!((0..6).any(|_| s.select(&ns, None) == Some(1)));
    }

    #[test]
    fn max_fails_counts_before_skipping() {
        let ns = nodes(2);
        let s = Selector::new(Strategy::Fifo, 3, Duration::from_secs(30));
        ns[0].marker.mark();
        ns[0].marker.mark();
        assert_eq!(s.select(&ns, None), Some(0));
        ns[0].marker.mark();
        assert_eq!(s.select(&ns, None), Some(1));
    }

    #[test]
    fn fail_timeout_expires() {
        let ns = nodes(2);
        let s = Selector::new(Strategy::Fifo, 1, Duration::from_secs(30));
        ns[0].marker.mark();
        assert_eq!(s.select(&ns, None), Some(1));
        // Pretend the failure happened 31 s ago.
        ns[0].marker.last_fail.store(now_secs() - 31, Relaxed);
        assert_eq!(s.select(&ns, None), Some(0));
    }

    #[test]
    fn all_failed_gives_none_but_single_node_is_always_tried() {
        let ns = nodes(2);
        let s = Selector::new(Strategy::Round, 1, Duration::from_secs(30));
        ns[0].marker.mark();
        ns[1].marker.mark();
        assert_eq!(s.select(&ns, None), None);
        let one = nodes(1);
        one[0].marker.mark();
        assert_eq!(s.select(&one, None), Some(0));
    }

    #[test]
    fn hash_is_sticky_per_client() {
        let ns = nodes(4);
        let s = Selector::new(Strategy::Hash, 1, Duration::from_secs(30));
        let a = s.select(&ns, Some("127.0.0.7")).unwrap();
        for _ in 0..20 {
            assert_eq!(s.select(&ns, Some("127.0.0.7")), Some(a));
        }
        let distinct: std::collections::HashSet<_> =
            (0..50).map(|i| s.select(&ns, Some(&format!("10.0.0.{i}"))).unwrap()).collect();
        assert!(distinct.len() > 1);
    }

    #[test]
    fn rand_respects_weights_and_backup() {
        let mut ns = nodes(3);
        ns[0].weight = 9;
        ns[2].backup = true;
        let s = Selector::new(Strategy::Rand, 1, Duration::from_secs(30));
        let mut counts = [0; 3];
        for _ in 0..2000 {
            counts[s.select(&ns, None).unwrap()] += 1;
        }
        assert_eq!(counts[2], 0, "backup used while primaries are up");
        assert!(counts[0] > counts[1] * 4, "{counts:?}");
        ns[0].marker.mark();
        ns[1].marker.mark();
        assert_eq!(s.select(&ns, None), Some(2));
    }

    #[test]
    fn strategy_names() {
        assert_eq!(Strategy::parse("rr").unwrap(), Strategy::Round);
        assert_eq!(Strategy::parse("random").unwrap(), Strategy::Rand);
        assert_eq!(Strategy::parse("ha").unwrap(), Strategy::Fifo);
        assert!(Strategy::parse("round-robin").unwrap_err().contains("round-robin"));
    }
}
