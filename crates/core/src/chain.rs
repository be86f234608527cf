//! The router: dialing a target directly or through a chain (go-gost/x
//! `chain/route.go`). The first node is reached with its dialer; each later node
//! through the previous node's connector; the last connector connects to the
//! target. Nodes are marked failed or reset as GOST does.
//!
//! Connectors and dialers implemented so far: `forward` (a no-op: the server decides
//! the target) and `direct` connectors, the `tcp` dialer. Protocol connectors
//! (socks5, http, relay, sshd) and the tls dialer come with the chains issue.

use crate::config::validate::ChainPlan;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{lookup_host, TcpSocket, TcpStream};

/// A connected transport. Only plain TCP so far; wrapped transports (TLS, SSH
/// channels) will add variants.
pub enum Conn {
    Tcp(TcpStream),
}

/// Where a dial went, for logs and the connection list.
#[derive(Debug, Clone, Default)]
pub struct Route {
    /// `hop/node@addr` per hop.
    pub path: Vec<String>,
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

/// Dials `target` (GOST's `Router.Dial`), through `chain` when given.
pub async fn dial(chain: Option<&ChainPlan>, target: &str, timeout: Duration, hash_key: Option<&str>) -> Result<(Conn, Route), String> {
    let Some(chain) = chain else {
        return dial_tcp(target, timeout).await.map(|s| (Conn::Tcp(s), Route::default())).map_err(|e| format!("dial {target}: {}", crate::service::io_msg(&e)));
    };
    let mut route = Route::default();
    let mut conn: Option<Conn> = None;
    for hop in &chain.hops {
        let idx = hop.selector.select(&hop.nodes, hash_key).ok_or_else(|| format!("chain {:?} hop {:?}: no node available (all marked failed)", chain.name, hop.name))?;
        let node = &hop.nodes[idx];
        // The connector is `forward` (validated at plan time): nothing to negotiate.
        let (_connector, dialer) = &hop.kinds[idx];
        route.path.push(format!("{}/{}@{}", hop.name, node.name, node.addr));
        let next = match conn.take() {
            None => match dialer.as_str() {
                "tcp" => dial_tcp(&node.addr, timeout).await.map(Conn::Tcp),
                other => Err(io::Error::other(format!("dialer {other:?} not implemented"))),
            },
            // Reaching a later node goes through the previous node's connector; the
            // forward connector passes the stream through unchanged.
            Some(c) => Ok(c),
        };
        match next {
            Ok(c) => {
                node.marker.reset();
                conn = Some(c);
            }
            Err(e) => {
                node.marker.mark();
                return Err(format!("chain {:?} hop {:?} node {:?} ({}): {}", chain.name, hop.name, node.name, node.addr, crate::service::io_msg(&e)));
            }
        }
    }
    conn.map(|c| (c, route)).ok_or_else(|| "empty chain".to_string())
}

/// `dial` with GOST's router retries: up to `retries` more attempts, each routing
/// the chain afresh (a failed node is marked, so the selector avoids it next time).
pub async fn dial_retry(chain: Option<&ChainPlan>, target: &str, timeout: Duration, hash_key: Option<&str>, retries: u32) -> Result<(Conn, Route), String> {
    let mut last = String::new();
    for attempt in 0..=retries {
        match dial(chain, target, timeout, hash_key).await {
            Ok(x) => return Ok(x),
            Err(e) => {
                if attempt < retries {
                    tracing::debug!(target = %target, "dial attempt {} of {} failed: {e}", attempt + 1, retries + 1);
                }
                last = e;
            }
        }
    }
    Err(last)
}
