//! Running services: a listener plus the local forwarding handler (GOST's `tcp`,
//! `udp`, `forward` handlers, and `rtcp`/`rudp` without a chain, which GOST runs
//! as local forwarding too).

pub mod proxy;
pub mod rtcp;
pub mod tcp;
pub mod udp;

use crate::config::validate::ServicePlan;
use crate::stats::{unix_millis, ConnCounters, ConnEntry, ConnRegistry, Event, Meter, ServiceCounters};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// What a running service shares with the engine.
pub struct Ctx {
    pub plan: Arc<ServicePlan>,
    /// `plan.name`, shared by every connection the service lists.
    pub name: Arc<str>,
    pub counters: Arc<ServiceCounters>,
    pub conns: Arc<ConnRegistry>,
    pub events: broadcast::Sender<Event>,
    pub cancel: CancellationToken,
}

/// Where to bind for a GOST listen address. `:port` and `[::]:port` are dual-stack;
/// any other form is IPv4-only unless it is an IPv6 literal (go-gost/x
/// `internal/net` `IsIPv4`).
pub async fn bind_addrs(addr: &str) -> io::Result<Vec<SocketAddr>> {
    let (host, port) = crate::config::validate::split_host_port(addr)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr}: not host:port")))?;
    let port: u16 = port.parse().map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr}: bad port")))?;
    if host.is_empty() {
        return Ok(vec![SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port)]);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.filter(|a| a.is_ipv4()).collect();
    if found.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, format!("{host}: no IPv4 address to listen on")));
    }
    Ok(vec![found[0]])
}

/// Falls back to IPv4 when the machine has no IPv6.
pub fn v4_fallback(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), a.port())
}

/// "address already in use" rather than "Address already in use (os error 98)".
pub fn io_msg(e: &io::Error) -> String {
    // A protocol error carried in an io::Error says more than its kind does
    // ("socks5: authentication failed …", not "permission denied").
    if let Some(inner) = e.get_ref() {
        return inner.to_string();
    }
    match e.kind() {
        io::ErrorKind::AddrInUse => "address already in use".into(),
        io::ErrorKind::AddrNotAvailable => "address not available on this machine".into(),
        io::ErrorKind::PermissionDenied => "permission denied (ports below 1024 need privileges)".into(),
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset => "connection reset by peer".into(),
        io::ErrorKind::TimedOut => {
            let s = e.to_string();
            if s.contains("timed out") { s } else { "timed out".into() }
        }
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_lowercase(),
                None => s,
            }
        }
    }
}

impl Ctx {
    /// Lists a connection or UDP session under `id` (closed through `cancel`),
    /// tells subscribers, and returns the meter its bytes go to.
    pub fn open_conn(&self, id: u64, cancel: &CancellationToken, network: &'static str, client: &str, target: &str, node: &str) -> Meter {
        let counters = Arc::new(ConnCounters::default());
        let entry = ConnEntry {
            service: self.name.clone(),
            network,
            client: client.into(),
            target: target.into(),
            node: node.into(),
            since: unix_millis(),
            counters: counters.clone(),
            cancel: cancel.clone(),
        };
        // The event's copy is made only when someone listens (the app does; the
        // headless engine usually not).
        let opened = (self.events.receiver_count() > 0).then(|| entry.info(id));
        self.conns.insert(id, entry);
        if let Some(conn) = opened {
            let _ = self.events.send(Event::ConnOpened { conn });
        }
        Meter { conn: counters, service: self.counters.clone() }
    }

    /// Takes a connection off the list and reports it closed; as with opening, the
    /// event's copy is made only when someone listens.
    pub fn close_conn(&self, id: u64, error: Option<String>) {
        if let Some(entry) = self.conns.remove(id) {
            if self.events.receiver_count() > 0 {
                let _ = self.events.send(Event::ConnClosed { conn: entry.info(id), error });
            }
        }
    }
}

/// A running service: its task and where it listens.
pub struct Started {
    pub local: Vec<SocketAddr>,
    /// The listener tasks; they end (closing their sockets) once cancelled.
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Whether a warning repeated on a busy path may be logged now: at most once per
/// 5 s per `last` (Unix milliseconds of the last one logged).
pub(crate) fn warn_due(last: &mut u64) -> bool {
    let now = unix_millis();
    if now.saturating_sub(*last) > 5000 {
        *last = now;
        return true;
    }
    false
}

/// An IPv4 client seen through a dual-stack socket, as Go shows it (`127.0.0.1:5000`,
/// not `[::ffff:127.0.0.1]:5000`): sessions, hashes and logs use this form.
pub fn canon(a: SocketAddr) -> SocketAddr {
    if let SocketAddr::V6(v6) = a {
        if let Some(v4) = v6.ip().to_ipv4_mapped() {
            return SocketAddr::new(IpAddr::V4(v4), a.port());
        }
    }
    a
}
