//! The router: dialing a target directly or through a chain (go-gost/x
//! `chain/route.go`). The first node is reached with its dialer; each later node
//! through the previous node's connector; the last connector connects to the
//! target. Nodes are marked failed or reset as GOST does.
//!
//! Connectors live in [`crate::connector`], dialers in [`crate::dialer`].

use crate::config::validate::ChainPlan;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::{lookup_host, TcpSocket, TcpStream};

pub use crate::conn::Conn;
pub use crate::connector::Network;

/// One step of a dial through a chain, for logs, the connection list and the probe.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HopResult {
    pub hop: String,
    pub node: String,
    pub addr: String,
    /// Milliseconds this step took.
    pub ms: u64,
    /// Why the step failed; `None` when it succeeded.
    pub error: Option<String>,
}

/// Where a dial went.
#[derive(Debug, Clone, Default)]
pub struct Route {
    /// `hop/node@addr` per hop.
    pub path: Vec<String>,
    /// Each hop reached (or the one that failed, last).
    pub hops: Vec<HopResult>,
    /// The last node's connector type (how UDP is framed through it).
    pub last_connector: String,
    /// Index of the node picked in the last hop.
    pub last_node: Option<usize>,
}

/// Resolves `host:port` (an empty host means this machine, as in Go).
pub async fn resolve(addr: &str) -> io::Result<Vec<SocketAddr>> {
    // IP literals (the common case) need no resolver round trip.
    if let Ok(a) = addr.parse::<SocketAddr>() {
        return Ok(vec![a]);
    }
    let a = if addr.starts_with(':') { format!("localhost{addr}") } else { addr.to_string() };
    let v: Vec<SocketAddr> = lookup_host(a.as_str()).await?.collect();
    if v.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, format!("{addr}: no address found")));
    }
    Ok(v)
}

/// TCP connect with a deadline, trying each resolved address in turn.
pub async fn dial_tcp(addr: &str, timeout: Duration) -> io::Result<TcpStream> {
    let fut = async {
        let addrs = resolve(addr).await?;
        let mut last = None;
        for a in addrs {
            let sock = if a.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
            match sock.connect(a).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no address")))
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, format!("connect timed out after {}s", timeout.as_secs_f32()))),
    }
}

/// Dials `target` (GOST's `Router.Dial`), through `chain` when given: the first
/// node is reached with its dialer; each later node through the previous node's
/// connector, then its own dialer's handshake; the last node's connector asks for
/// the target. A node that cannot be reached is marked failed, one that can is
/// reset (go-gost/x `chain/route.go`).
pub async fn dial(chain: Option<&ChainPlan>, target: &str, timeout: Duration, hash_key: Option<&str>) -> Result<(Conn, Route), String> {
    dial_network(chain, Network::Tcp, target, timeout, hash_key).await.map_err(|(e, _)| e)
}

/// `dial` for either network, returning the route so far with a failure too (the
/// probe shows it).
pub async fn dial_network(chain: Option<&ChainPlan>, network: Network, target: &str, timeout: Duration, hash_key: Option<&str>) -> Result<(Conn, Route), (String, Route)> {
    dial_route(chain, network, Some(target), timeout, hash_key).await
}

/// Reaches every hop of `chain` and, when `target` is given, the target through
/// the last one. Without a target (a proxy service probed with no address) the
/// connection ends at the last node.
pub async fn dial_route(chain: Option<&ChainPlan>, network: Network, target: Option<&str>, timeout: Duration, hash_key: Option<&str>) -> Result<(Conn, Route), (String, Route)> {
    let mut route = Route::default();
    let Some(chain) = chain else {
        let Some(target) = target else {
            return Err(("nothing to probe: no chain and no target".to_string(), route));
        };
        let t0 = Instant::now();
        let r = dial_tcp(target, timeout).await;
        let ms = t0.elapsed().as_millis() as u64;
        return match r {
            Ok(s) => {
                route.hops.push(HopResult { hop: "target".into(), node: target.to_string(), addr: target.to_string(), ms, error: None });
                Ok((Conn::Tcp(s), route))
            }
            Err(e) => {
                let msg = crate::service::io_msg(&e);
                route.hops.push(HopResult { hop: "target".into(), node: target.to_string(), addr: target.to_string(), ms, error: Some(msg.clone()) });
                Err((format!("dial {target}: {msg}"), route))
            }
        };
    };
    // Boxed: the hops' connectors and dialers make a state machine of several KiB,
    // which plain forwarding (no chain) should not carry in every connection's task.
    Box::pin(dial_chain(chain, network, target, timeout, hash_key, route)).await
}

async fn dial_chain(chain: &ChainPlan, network: Network, target: Option<&str>, timeout: Duration, hash_key: Option<&str>, mut route: Route) -> Result<(Conn, Route), (String, Route)> {
    let mut conn: Option<Conn> = None;
    let mut prev: Option<&crate::config::validate::NodeOpts> = None;
    for hop in &chain.hops {
        let Some(idx) = hop.selector.select(&hop.nodes, hash_key) else {
            let e = format!("chain {:?} hop {:?}: no node available (all marked failed)", chain.name, hop.name);
            return Err((e, route));
        };
        let node = &hop.nodes[idx];
        let opts = &hop.opts[idx];
        route.path.push(format!("{}/{}@{}", hop.name, node.name, node.addr));
        route.last_node = Some(idx);
        let t0 = Instant::now();
        let step = async {
            match (conn.take(), prev) {
                (None, _) => crate::dialer::dial(opts, &node.addr, timeout).await,
                (Some(c), Some(p)) => {
                    let c = within(timeout, crate::connector::connect(p, c, Network::Tcp, &node.addr)).await?;
                    crate::dialer::handshake(opts, c, &node.addr, timeout).await
                }
                (Some(_), None) => Err(io::Error::other("internal: a connection without a previous node")),
            }
        };
        let r = step.await;
        let ms = t0.elapsed().as_millis() as u64;
        match r {
            Ok(c) => {
                node.marker.reset();
                route.hops.push(HopResult { hop: hop.name.clone(), node: node.name.clone(), addr: node.addr.clone(), ms, error: None });
                conn = Some(c);
                prev = Some(opts);
            }
            Err(e) => {
                node.marker.mark();
                let msg = crate::service::io_msg(&e);
                route.hops.push(HopResult { hop: hop.name.clone(), node: node.name.clone(), addr: node.addr.clone(), ms, error: Some(msg.clone()) });
                return Err((format!("chain {:?} hop {:?} node {:?} ({}): {msg}", chain.name, hop.name, node.name, node.addr), route));
            }
        }
    }
    let (Some(c), Some(last)) = (conn, prev) else {
        return Err(("empty chain".to_string(), route));
    };
    route.last_connector = last.connector.clone();
    let Some(target) = target else {
        return Ok((c, route));
    };
    let t0 = Instant::now();
    match within(timeout, crate::connector::connect(last, c, network, target)).await {
        Ok(c) => Ok((c, route)),
        Err(e) => {
            let msg = crate::service::io_msg(&e);
            let ms = t0.elapsed().as_millis() as u64;
            let (hop, node, addr) = route.hops.last().map(|h| (h.hop.clone(), h.node.clone(), h.addr.clone())).unwrap_or_default();
            if crate::connector::is_target_refusal(&e) {
                route.hops.push(HopResult { hop: "target".into(), node: target.to_string(), addr: target.to_string(), ms, error: Some(msg.clone()) });
                Err((format!("chain {:?}: {} node {node:?} ({addr}) of hop {hop:?} could not reach {target}: {msg}", chain.name, last.connector), route))
            } else {
                // The last node itself turned us away (login, protocol): that hop
                // is where the path breaks.
                if let Some(h) = route.hops.last_mut() {
                    h.error = Some(msg.clone());
                    h.ms += ms;
                }
                Err((format!("chain {:?} hop {hop:?} node {node:?} ({addr}): {msg}", chain.name), route))
            }
        }
    }
}

async fn within<T>(timeout: Duration, f: impl std::future::Future<Output = io::Result<T>>) -> io::Result<T> {
    match tokio::time::timeout(timeout, f).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, format!("timed out after {}s", timeout.as_secs_f32()))),
    }
}

/// `dial_network` with GOST's router retries.
pub async fn dial_retry_network(chain: Option<&ChainPlan>, network: Network, target: &str, timeout: Duration, hash_key: Option<&str>, retries: u32) -> Result<(Conn, Route), String> {
    let mut last = String::new();
    for attempt in 0..=retries {
        match dial_network(chain, network, target, timeout, hash_key).await {
            Ok(x) => return Ok(x),
            Err((e, _)) => {
                if attempt < retries {
                    tracing::debug!(target = %target, "dial attempt {} of {} failed: {e}", attempt + 1, retries + 1);
                }
                last = e;
            }
        }
    }
    Err(last)
}

/// `dial` with GOST's router retries: up to `retries` more attempts, each routing
/// the chain afresh (a failed node is marked, so the selector avoids it next time).
pub async fn dial_retry(chain: Option<&ChainPlan>, target: &str, timeout: Duration, hash_key: Option<&str>, retries: u32) -> Result<(Conn, Route), String> {
    dial_retry_network(chain, Network::Tcp, target, timeout, hash_key, retries).await
}
