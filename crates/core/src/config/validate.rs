//! Turning one service of a [`Config`] into what the engine runs, or a clear error
//! naming the service and the key at fault. Runs when a service starts, so one bad
//! service never stops the others.

use super::registry::*;
use super::types::*;
use crate::selector::{SelNode, Selector, Strategy};
use std::sync::Arc;
use std::time::Duration;

/// What a service's listener does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    Tcp,
    Udp,
}

/// UDP session options (listener metadata, go-gost/x `listener/udp/metadata.go`).
#[derive(Debug, Clone, PartialEq)]
pub struct UdpOptions {
    pub keep_alive: bool,
    pub ttl: Duration,
    pub read_buffer_size: usize,
    pub read_queue_size: usize,
    pub backlog: usize,
    /// Bytes read per datagram from the target (handler `bufferSize`; GOST's
    /// handler reads 4096, Portway a whole datagram unless told otherwise, so large
    /// DNS answers are not cut).
    pub reply_buffer_size: usize,
}

/// How to reach one chain node and what to ask it: its dialer (transport) and
/// connector (protocol), with their options resolved at plan time so a bad
/// certificate file is reported when the service starts, not per connection.
pub struct NodeOpts {
    /// The node's address, for messages ("http proxy 127.0.0.1:3128 answered 407 …").
    pub addr: String,
    pub connector: String,
    pub dialer: String,
    /// Connector credentials (`socks5://user:pass@…`).
    pub auth: Option<(String, String)>,
    pub connector_md: Metadata,
    pub dialer_md: Metadata,
    /// Client TLS for a `tls` dialer.
    pub tls: Option<(Arc<rustls::ClientConfig>, rustls::pki_types::ServerName<'static>)>,
    /// Client TLS for GOST's SOCKS5 methods 80/82 (`connector.tls`, SNI = the
    /// node's host unless `serverName`); `None` for other connectors and with
    /// `notls=true`.
    pub socks5_tls: Option<(Arc<rustls::ClientConfig>, rustls::pki_types::ServerName<'static>)>,
    /// The Shadowsocks cipher of an `ssu` connector (auth = method:password),
    /// derived once here rather than per session.
    pub ss_cipher: Option<crate::codec::ss::SsCipher>,
    /// SSH client settings for an `sshd` dialer (GOST puts `user:pass@` there).
    pub ssh: Option<crate::ssh::client::SshClientConfig>,
    /// smux settings for a multiplexed BIND through this node (connector `mux.*`).
    pub mux: crate::mux::MuxConfig,
}

impl std::fmt::Debug for NodeOpts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeOpts")
            .field("connector", &self.connector)
            .field("dialer", &self.dialer)
            .field("user", &self.auth.as_ref().map(|a| a.0.as_str()))
            .finish()
    }
}

/// A hop of a resolved chain.
#[derive(Debug)]
pub struct HopPlan {
    pub name: String,
    pub selector: Selector,
    pub nodes: Vec<SelNode>,
    /// How to reach each node (same order as `nodes`).
    pub opts: Vec<NodeOpts>,
}

impl HopPlan {
    /// Connector and dialer type per node.
    pub fn kinds(&self) -> Vec<(String, String)> {
        self.opts.iter().map(|o| (o.connector.clone(), o.dialer.clone())).collect()
    }
}

#[derive(Debug)]
pub struct ChainPlan {
    pub name: String,
    pub hops: Vec<HopPlan>,
}

/// A service, checked and ready to run.
#[derive(Debug)]
pub struct ServicePlan {
    pub name: String,
    pub addr: String,
    pub network: Network,
    pub handler: String,
    pub listener: String,
    pub selector: Selector,
    pub targets: Vec<SelNode>,
    pub chain: Option<Arc<ChainPlan>>,
    pub udp: UdpOptions,
    pub dial_timeout: Duration,
    /// Close a connection that moves no bytes either way for this long (0 = never, GOST's default).
    pub idle_timeout: Duration,
    /// GOST's `handler.retries`: extra routing attempts when a dial fails. Each
    /// attempt re-selects the chain's nodes; the target stays the one picked.
    pub retries: u32,
    /// Server TLS for a `tls` listener.
    pub tls_server: Option<Arc<rustls::ServerConfig>>,
    /// Server TLS for GOST's SOCKS5 methods 80/82 (`handler.tls`, else the
    /// default self-signed certificate), made once per service; `None` for
    /// other handlers and with `notls=true`.
    pub socks5_tls: Option<Arc<rustls::ServerConfig>>,
    /// Who may use a proxy handler; `None` lets everyone in (GOST without auth).
    pub auther: Option<Arc<crate::auth::Auther>>,
    /// Handler options the proxy handlers read (`udp`, `bind`, `nodelay`, …).
    pub handler_md: Metadata,
    /// How long a client may take over its TLS handshake and proxy request
    /// (handler `readTimeout`, GOST's default 15 s).
    pub read_timeout: Duration,
    /// The Shadowsocks cipher of an `ssu` service (handler auth = method:password).
    pub ss_cipher: Option<crate::codec::ss::SsCipher>,
    /// The SSH server of an `sshd` service.
    pub ssh_server: Option<Arc<crate::ssh::server::SshServerConfig>>,
    /// Remote forwarding (`rtcp`/`rudp` with `listener.chain`): the chain whose
    /// last node opens the port; `chain` then only dials the targets.
    pub bind_chain: Option<Arc<ChainPlan>>,
    /// smux settings of the multiplexed BINDs this handler serves (handler `mux.*`).
    pub mux: crate::mux::MuxConfig,
}

impl ServicePlan {
    /// Whether the handler takes its target from the client's request (a proxy)
    /// rather than from the forwarder.
    pub fn is_proxy(&self) -> bool {
        is_proxy_handler(&self.handler)
    }
}

/// Handlers that learn the target from the client's request. `relay` with a
/// forwarder ignores the request's address (GOST's forward mode).
pub fn is_proxy_handler(h: &str) -> bool {
    matches!(h, "socks5" | "socks" | "socks4" | "socks4a" | "http" | "relay" | "auto" | "ssu" | "sshd")
}

impl ServicePlan {
    /// Whether any selector on this service's path uses the client IP (`hash`).
    pub fn wants_hash_key(&self) -> bool {
        self.selector.strategy == crate::selector::Strategy::Hash
            || self.chain.as_ref().is_some_and(|c| c.hops.iter().any(|h| h.selector.strategy == crate::selector::Strategy::Hash))
    }
}

fn md_err(service: &str, where_: &str, e: String) -> String {
    format!("service {service:?}: {where_}.{e}")
}

/// The selector a forwarder or hop runs. No selector block means GOST's defaults
/// (round, 1, 10s).
pub fn selector_from(cfg: Option<&SelectorConfig>) -> Selector {
    match cfg {
        None => Selector::new(Strategy::Round, 1, Duration::from_secs(10)),
        // An unknown name was warned about when the profile was read.
        Some(s) => Selector::new(Strategy::gost(&s.strategy), s.max_fails, s.fail_timeout),
    }
}

fn sel_node(name: &str, addr: &str, md: &Metadata, ctx: &str) -> Result<SelNode, String> {
    let mut n = SelNode::new(name, addr);
    let e = |m: String| format!("{ctx}.{m}");
    if let Some(w) = md.get_int(&["weight"]).map_err(e)? {
        n.weight = w.clamp(1, u32::MAX as i64) as u32;
    }
    n.backup = md.get_bool(&["backup"]).map_err(e)?.unwrap_or(false);
    if let Some(mf) = md.get_int(&["maxFails"]).map_err(e)? {
        n.max_fails = mf.clamp(0, u32::MAX as i64) as u32;
    }
    if let Some(ft) = md.get_duration(&["failTimeout"]).map_err(e)? {
        n.fail_timeout = ft;
    }
    Ok(n)
}

/// Checks that an address is `host:port` with a usable port (`:0` allowed only
/// where GOST allows it).
pub fn check_addr(addr: &str, what: &str) -> Result<(), String> {
    if addr.contains("${") || addr.starts_with('$') {
        return Err(format!("{what} {addr:?} holds an unexpanded placeholder (GOST does not expand environment variables in config files; put the real address there)"));
    }
    let (host, port) = split_host_port(addr).ok_or_else(|| format!("{what} {addr:?} is not host:port"))?;
    if host.contains(' ') {
        return Err(format!("{what} {addr:?}: invalid host"));
    }
    port.parse::<u16>().map_err(|_| format!("{what} {addr:?}: port {port:?} is not a number from 0 to 65535"))?;
    Ok(())
}

/// Go's `net.SplitHostPort`: `host:port`, `[v6]:port`, `:port`.
pub fn split_host_port(addr: &str) -> Option<(&str, &str)> {
    if let Some(rest) = addr.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &rest[..end];
        let port = rest[end + 1..].strip_prefix(':')?;
        return Some((host, port));
    }
    let i = addr.rfind(':')?;
    let host = &addr[..i];
    if host.contains(':') {
        return None; // bare IPv6 without brackets
    }
    Some((host, &addr[i + 1..]))
}

fn udp_options(l: &ListenerConfig, h: &HandlerConfig, rudp: bool, svc: &str) -> Result<UdpOptions, String> {
    let md = &l.metadata;
    let e = |m: String| md_err(svc, "listener.metadata", m.trim_start_matches("metadata.").to_string());
    let keep_alive = md.get_bool(&["keepAlive", "keepalive"]).map_err(e)?.unwrap_or(false);
    let ttl = md.get_duration(&["ttl", "keepalive.ttl"]).map_err(e)?.filter(|d| !d.is_zero()).unwrap_or(Duration::from_secs(5));
    let (rb, rq) = if rudp { (8192, 1024) } else { (4096, 128) };
    let read_buffer_size = md.get_int(&["readBufferSize", "udp.bufferSize", "udpBufferSize"]).map_err(e)?.filter(|v| *v > 0).unwrap_or(rb);
    let read_queue_size = md.get_int(&["readQueueSize", "recvQueueSize"]).map_err(e)?.filter(|v| *v > 0).unwrap_or(rq);
    let backlog = md.get_int(&["backlog"]).map_err(e)?.filter(|v| *v > 0).unwrap_or(128);
    if read_buffer_size > 65535 + 1 {
        return Err(format!("service {svc:?}: listener.metadata.readBufferSize {read_buffer_size} is larger than a UDP datagram can be (65535)"));
    }
    let he = |m: String| md_err(svc, "handler.metadata", m.trim_start_matches("metadata.").to_string());
    let reply = h.metadata.get_int(&["bufferSize", "readBufferSize", "udp.bufferSize", "udpBufferSize"]).map_err(he)?.filter(|v| *v > 0).unwrap_or(65535);
    Ok(UdpOptions {
        reply_buffer_size: reply.clamp(1, 65535) as usize,
        keep_alive,
        ttl,
        read_buffer_size: read_buffer_size as usize,
        read_queue_size: read_queue_size.min(1 << 20) as usize,
        backlog: backlog.min(1 << 20) as usize,
    })
}

/// Resolves a chain by name, following hops that only name a top-level hop.
pub fn resolve_chain(cfg: &Config, name: &str, ctx: &str) -> Result<ChainPlan, String> {
    let chain = cfg.chain(name).ok_or_else(|| {
        let known: Vec<_> = cfg.chains.iter().map(|c| c.name.as_str()).collect();
        format!("{ctx}: no chain named {name:?} (chains in this profile: {})", if known.is_empty() { "none".to_string() } else { known.join(", ") })
    })?;
    if chain.hops.is_empty() {
        return Err(format!("chain {name:?} has no hops"));
    }
    let mut hops = Vec::new();
    for (hi, hop) in chain.hops.iter().enumerate() {
        let hctx = format!("chain {name:?} hop {}", if hop.name.is_empty() { hi.to_string() } else { format!("{:?}", hop.name) });
        let hop_cfg = if hop.nodes.is_empty() {
            cfg.hops.iter().find(|h| h.name == hop.name).ok_or_else(|| format!("{hctx}: has no nodes and no top-level hop has that name"))?
        } else {
            hop
        };
        if hop_cfg.nodes.is_empty() {
            return Err(format!("{hctx}: has no nodes"));
        }
        let selector = selector_from(hop_cfg.selector.as_ref());
        let mut nodes = Vec::new();
        let mut opts = Vec::new();
        for (ni, n) in hop_cfg.nodes.iter().enumerate() {
            let nname = if n.name.is_empty() { format!("node-{ni}") } else { n.name.clone() };
            let nctx = format!("{hctx} node {nname:?}");
            let connector = n.connector.as_ref().map(|c| c.kind.clone()).filter(|k| !k.is_empty()).unwrap_or_else(|| "http".into());
            let dialer = n.dialer.as_ref().map(|d| d.kind.clone()).filter(|k| !k.is_empty()).unwrap_or_else(|| "tcp".into());
            check_type(GOST_CONNECTORS, PORTWAY_CONNECTORS, "connector", &connector, &nctx)?;
            check_type(GOST_DIALERS, PORTWAY_DIALERS, "dialer", &dialer, &nctx)?;
            check_addr(&n.addr, &format!("{nctx}: addr"))?;
            nodes.push(sel_node(&nname, &n.addr, &n.metadata, &nctx)?);
            opts.push(node_opts(n, connector, dialer, &nctx)?);
        }
        hops.push(HopPlan { name: hop_cfg.name.clone(), selector, nodes, opts });
    }
    Ok(ChainPlan { name: name.to_string(), hops })
}

/// GOST's socks5 connector always has a TLS config for methods 80/82 (from
/// `connector.tls` only, go-gost/x `config/parsing/node/parse.go`), unless its
/// metadata says `notls` (`connector/socks/v5/metadata.go`).
fn socks5_client_tls(connector: &str, c: &ConnectorConfig, addr: &str, ctx: &str) -> Result<Option<(Arc<rustls::ClientConfig>, rustls::pki_types::ServerName<'static>)>, String> {
    if !matches!(connector, "socks5" | "socks") {
        return Ok(None);
    }
    let notls = c.metadata.get_bool(&["notls"]).map_err(|e| format!("{ctx}: connector.{e}"))?.unwrap_or(false);
    if notls {
        return Ok(None);
    }
    crate::tls::client_config(c.tls.as_ref(), addr).map(Some).map_err(|e| format!("{ctx}: connector.{e}"))
}

fn node_opts(n: &NodeConfig, connector: String, dialer: String, ctx: &str) -> Result<NodeOpts, String> {
    let c = n.connector.clone().unwrap_or_default();
    let d = n.dialer.clone().unwrap_or_default();
    let auth = c.auth.as_ref().filter(|a| !a.username.is_empty() || !a.password.is_empty()).map(|a| (a.username.clone(), a.password.clone()));
    let tls = if dialer == "tls" {
        // GOST reads a node's client TLS from the dialer, falling back to the node.
        let cfg = d.tls.as_ref().or(c.tls.as_ref());
        Some(crate::tls::client_config(cfg, &n.addr).map_err(|e| format!("{ctx}: dialer.{e}"))?)
    } else {
        None
    };
    if dialer == "udp" && connector != "ssu" {
        return Err(format!("{ctx}: dialer \"udp\" only carries the ssu connector in Portway (GOST's datagram transports for {connector} are not implemented)"));
    }
    let ss_cipher = if connector == "ssu" {
        if dialer != "udp" && !matches!(dialer.as_str(), "tcp" | "tls") {
            return Err(format!("{ctx}: ssu over dialer {dialer:?} is not implemented in Portway yet"));
        }
        let (m, p) = auth.clone().unwrap_or_default();
        let key = c.metadata.get_string(&["key"]);
        crate::codec::ss::SsCipher::new(&m, &p, key.as_deref().map(str::as_bytes)).map_err(|e| format!("{ctx}: connector.auth: {e}"))?
    } else {
        None
    };
    let ssh = if dialer == "sshd" || connector == "sshd" {
        if dialer != connector {
            return Err(format!("{ctx}: an sshd node needs both connector and dialer sshd (GOST: the dialer opens the SSH session, the connector its channels)"));
        }
        let dauth = d.auth.as_ref().or(c.auth.as_ref()).map(|a| (a.username.clone(), a.password.clone()));
        let mut md = n.metadata.clone();
        for (k, v) in d.metadata.0.iter().chain(c.metadata.0.iter()) {
            md.insert(k.clone(), v.clone());
        }
        Some(crate::ssh::client::SshClientConfig::from_metadata(dauth, &md).map_err(|e| format!("{ctx}: {e}"))?)
    } else {
        None
    };
    let mux = mux_config(&connector, &c.metadata).map_err(|e| format!("{ctx}: connector.{e}"))?;
    let socks5_tls = socks5_client_tls(&connector, &c, &n.addr, ctx)?;
    Ok(NodeOpts { addr: n.addr.clone(), connector, dialer, auth, ss_cipher, ssh, connector_md: c.metadata, dialer_md: d.metadata, tls, mux, socks5_tls })
}

/// The `mux.*` keys of a connector or handler that multiplexes BIND (GOST reads
/// them in socks5 and relay only; elsewhere they mean nothing and are left alone).
fn mux_config(kind: &str, md: &Metadata) -> Result<crate::mux::MuxConfig, String> {
    if matches!(kind, "socks5" | "socks" | "relay" | "auto") {
        crate::mux::MuxConfig::from_metadata(md).map_err(|e| e.to_string())
    } else {
        Ok(crate::mux::MuxConfig::default())
    }
}

fn check_type(gost: &[&str], ours: &[&str], what: &str, kind: &str, ctx: &str) -> Result<(), String> {
    if ours.contains(&kind) {
        return Ok(());
    }
    if gost.contains(&kind) {
        return Err(format!("{ctx}: {what} type {kind:?} is not implemented in Portway yet (it runs {what}s: {})", ours.join(", ")));
    }
    Err(format!("{ctx}: unknown {what} type {kind:?} (GOST has no such {what} either)"))
}

/// Builds the plan for one service of `cfg`.
pub fn plan_service(cfg: &Config, s: &ServiceConfig) -> Result<ServicePlan, String> {
    let ctx = format!("service {:?}", s.name);
    let handler = if s.handler.kind.is_empty() { "auto".to_string() } else { s.handler.kind.clone() };
    let listener = if s.listener.kind.is_empty() { "tcp".to_string() } else { s.listener.kind.clone() };
    check_type(GOST_HANDLERS, PORTWAY_HANDLERS, "handler", &handler, &ctx)?;
    check_type(GOST_LISTENERS, PORTWAY_LISTENERS, "listener", &listener, &ctx)?;
    refuse_silent_changes(s, &ctx)?;
    let network = match listener.as_str() {
        "udp" | "rudp" => Network::Udp,
        _ => Network::Tcp,
    };
    match (network, handler.as_str()) {
        (Network::Udp, "tcp" | "rtcp") | (Network::Tcp, "udp" | "rudp") => {
            return Err(format!("{ctx}: handler {handler:?} does not go with listener {listener:?} (a {} listener needs a {} handler)",
                listener, if network == Network::Udp { "udp" } else { "tcp" }));
        }
        _ => {}
    }
    if s.addr.is_empty() {
        return Err(format!("{ctx}: addr is empty (expected a listen address like \":8080\")"));
    }
    if super::url::addr_port_range(&s.addr).len() > 1 {
        return Err(format!("{ctx}: addr {:?} is a port range, which only the command line accepts; write one service per port", s.addr));
    }
    check_addr(&s.addr, &format!("{ctx}: addr"))?;
    let bind_chain = if matches!(listener.as_str(), "rtcp" | "rudp") && !s.listener.chain.is_empty() {
        let c = resolve_chain(cfg, &s.listener.chain, "listener.chain").map_err(|e| format!("{ctx}: {e}"))?;
        if let Some(last) = c.hops.last() {
            for o in &last.opts {
                // GOST: connectors that cannot bind make the listener fail with "bind unsupported".
                let can_bind = matches!(o.connector.as_str(), "socks5" | "socks" | "relay") || (o.connector == "sshd" && listener == "rtcp" && c.hops.len() == 1);
                if !can_bind {
                    return Err(format!(
                        "{ctx}: remote forwarding needs the chain's last node to open the port: connector {:?} of {:?} cannot (use socks5 or relay with bind=true on the server, or an sshd hop for rtcp)",
                        o.connector, o.addr
                    ));
                }
            }
        }
        Some(Arc::new(c))
    } else {
        None
    };
    let chain_name = if !s.handler.chain.is_empty() || bind_chain.is_some() { &s.handler.chain } else { &s.listener.chain };
    let chain = if chain_name.is_empty() {
        None
    } else {
        if s.handler.chain.is_empty() && !matches!(listener.as_str(), "rtcp" | "rudp") {
            // GOST ignores a chain on a tcp/udp listener (docs erratum); Portway follows GOST.
            None
        } else {
            let key = if s.handler.chain.is_empty() { "listener.chain" } else { "handler.chain" };
            Some(Arc::new(resolve_chain(cfg, chain_name, key).map_err(|e| format!("{ctx}: {e}"))?))
        }
    };
    let (selector, mut targets) = match &s.forwarder {
        None => (selector_from(None), Vec::new()),
        Some(f) => {
            let fctx = format!("{ctx}: forwarder");
            // Targets are the forwarder's own nodes, or those of the top-level hop it names.
            let nodes_src: Vec<(&str, &str, &Metadata)> = if f.nodes.is_empty() && !f.hop.is_empty() {
                let hop = cfg.hops.iter().find(|h| h.name == f.hop).ok_or_else(|| format!("{fctx}.hop: no top-level hop named {:?}", f.hop))?;
                hop.nodes.iter().map(|n| (n.name.as_str(), n.addr.as_str(), &n.metadata)).collect()
            } else {
                f.nodes.iter().map(|n| (n.name.as_str(), n.addr.as_str(), &n.metadata)).collect()
            };
            let mut t = Vec::new();
            for (i, (name, addr, md)) in nodes_src.into_iter().enumerate() {
                let name = if name.is_empty() { format!("target-{i}") } else { name.to_string() };
                let a = if split_host_port(addr).is_none() { format!("{addr}:0") } else { addr.to_string() };
                check_addr(&a, &format!("{fctx} node {name:?}: addr"))?;
                t.push(sel_node(&name, &a, md, &format!("{fctx} node {name:?}: metadata"))?);
            }
            (selector_from(f.selector.as_ref()), t)
        }
    };
    if targets.is_empty() && !is_proxy_handler(&handler) {
        if chain.is_none() && bind_chain.is_some() {
            return Err(format!("{ctx}: remote forwarding needs a target for the connections it receives (e.g. -L rtcp://:8080/127.0.0.1:80)"));
        }
        if chain.is_none() {
            return Err(format!("{ctx}: no forwarding target (add forwarder.nodes, e.g. -L tcp://:8080/127.0.0.1:80); only a chain ending in a forward connector may omit it"));
        }
        // GOST: no target → ":0", meaningful with a forward connector at the end of the chain.
        targets.push(SelNode::new("target-0", ":0"));
    }
    for t in &targets {
        if t.addr.ends_with(":0") && chain.is_none() {
            return Err(format!("{ctx}: target {:?} has no port", t.addr));
        }
    }
    let udp = udp_options(&s.listener, &s.handler, listener == "rudp", &s.name)?;
    let hmd = &s.handler.metadata;
    let e = |m: String| md_err(&s.name, "handler.metadata", m.trim_start_matches("metadata.").to_string());
    let dial_timeout = hmd.get_duration(&["dialTimeout", "timeout"]).map_err(e)?.filter(|d| !d.is_zero()).unwrap_or(Duration::from_secs(10));
    let idle_timeout = hmd.get_duration(&["idleTimeout"]).map_err(e)?.unwrap_or(Duration::ZERO);
    let tls_server = if listener == "tls" {
        Some(crate::tls::server_config(s.listener.tls.as_ref()).map_err(|e| format!("{ctx}: listener.{e}"))?)
    } else {
        None
    };
    // GOST's socks5 handler (and auto, which hands SOCKS5 to it) gets
    // `handler.tls` or the default certificate (go-gost/x
    // `config/parsing/service/parse.go`), unless `notls`
    // (`handler/socks/v5/metadata.go`).
    let socks5_tls = if matches!(handler.as_str(), "socks5" | "socks" | "auto") && !hmd.get_bool(&["notls"]).map_err(e)?.unwrap_or(false) {
        Some(crate::tls::server_config(s.handler.tls.as_ref()).map_err(|e| format!("{ctx}: handler.{e}"))?)
    } else {
        None
    };
    // An ssu service's `auth` is its cipher, not a user list.
    let (auther, ss_cipher) = if handler == "ssu" {
        let a = s.handler.auth.clone().unwrap_or_default();
        let key = s.handler.metadata.get_string(&["key"]);
        let c = crate::codec::ss::SsCipher::new(&a.username, &a.password, key.as_deref().map(str::as_bytes)).map_err(|e| format!("{ctx}: handler.auth: {e}"))?;
        (None, c)
    } else {
        (auther_for(cfg, s, &ctx)?, None)
    };
    let ssh_server = if handler == "sshd" || listener == "sshd" {
        if handler != listener {
            return Err(format!("{ctx}: an sshd service needs both handler and listener sshd"));
        }
        Some(Arc::new(ssh_server_config(s, auther.clone(), &ctx)?))
    } else {
        None
    };
    let read_timeout = hmd.get_duration(&["readTimeout"]).map_err(e)?.filter(|d| !d.is_zero()).unwrap_or(Duration::from_secs(15));
    let mux = mux_config(&handler, hmd).map_err(e)?;
    if auther.is_some() && !is_proxy_handler(&handler) {
        // GOST ignores auth on a forwarding handler too; say so rather than let the
        // user believe the port is protected.
        tracing::warn!(service = %s.name, "handler.auth has no effect on a {handler:?} handler (it forwards without asking who connects)");
    }
    Ok(ServicePlan {
        name: s.name.clone(),
        addr: s.addr.clone(),
        network,
        handler,
        listener,
        selector,
        targets,
        chain,
        udp,
        dial_timeout,
        idle_timeout,
        retries: s.handler.retries.clamp(0, 10) as u32,
        tls_server,
        socks5_tls,
        auther,
        handler_md: s.handler.metadata.clone(),
        read_timeout,
        ss_cipher,
        bind_chain,
        ssh_server,
        mux,
    })
}

/// The users a service accepts: `handler.auth`, `handler.auths`, and the named
/// top-level `authers` its handler lists (inline `auths` and a users `file`),
/// all merged as GOST's auther group does (any one that accepts lets the client in).
fn auther_for(cfg: &Config, s: &ServiceConfig, ctx: &str) -> Result<Option<Arc<crate::auth::Auther>>, String> {
    let mut a = crate::auth::Auther::new();
    let mut any = false;
    for au in s.handler.auth.iter().chain(s.handler.auths.iter()).chain(s.listener.auth.iter()) {
        if !au.username.is_empty() {
            a.add(au.username.clone(), au.password.clone());
            any = true;
        }
    }
    let mut names: Vec<&str> = s.handler.authers.iter().map(String::as_str).collect();
    if !s.handler.auther.is_empty() {
        names.push(&s.handler.auther);
    }
    for name in names {
        load_named_auther(cfg, name, &mut a).map_err(|e| format!("{ctx}: handler.auther {name:?}: {e}"))?;
        any = true;
    }
    if !any {
        return Ok(None);
    }
    Ok(Some(Arc::new(a)))
}

fn load_named_auther(cfg: &Config, name: &str, a: &mut crate::auth::Auther) -> Result<(), String> {
    let list = cfg.extra.iter().find(|(k, _)| k.eq_ignore_ascii_case("authers")).map(|(_, v)| v);
    let found = list.and_then(|v| v.as_sequence()).and_then(|seq| {
        seq.iter().find(|item| yaml_str(item, "name").as_deref() == Some(name))
    });
    let Some(item) = found else {
        return Err("no top-level auther has that name".into());
    };
    if let Some(auths) = yaml_get(item, "auths").and_then(|v| v.as_sequence()) {
        for au in auths {
            let user = yaml_str(au, "username").unwrap_or_default();
            if user.is_empty() {
                return Err("an entry of auths has no username".into());
            }
            a.add(user, yaml_str(au, "password").unwrap_or_default());
        }
    }
    if let Some(file) = yaml_get(item, "file") {
        let path = yaml_str(file, "path").unwrap_or_default();
        if path.is_empty() {
            return Err("file has no path".into());
        }
        let text = std::fs::read_to_string(&path).map_err(|e| format!("users file {path:?}: {}", crate::service::io_msg(&e)))?;
        a.parse_users_file(&text);
    }
    Ok(())
}

fn yaml_get<'a>(v: &'a serde_yaml::Value, key: &str) -> Option<&'a serde_yaml::Value> {
    v.as_mapping()?.iter().find(|(k, _)| k.as_str().is_some_and(|k| k.eq_ignore_ascii_case(key))).map(|(_, v)| v)
}

fn yaml_str(v: &serde_yaml::Value, key: &str) -> Option<String> {
    match yaml_get(v, key)? {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        serde_yaml::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Options that change where traffic goes or who may connect. Ignoring them would
/// run the service in a way its author did not intend (an access list that lets
/// everyone in, host routing that round-robins instead), so the service is refused
/// until Portway implements them. Options that only tune (limiters, logging) are
/// warned about at load time instead.
fn refuse_silent_changes(s: &ServiceConfig, ctx: &str) -> Result<(), String> {
    for key in ["admission", "admissions"] {
        if s.extra.keys().any(|k| k.eq_ignore_ascii_case(key)) {
            return Err(format!("{ctx}: `{key}` (client access control) is not implemented in Portway yet; refusing to run the service without it"));
        }
    }
    for (what, md) in [("handler", &s.handler.metadata), ("listener", &s.listener.metadata), ("service", &s.metadata)] {
        if md.get_bool(&["sniffing"]).unwrap_or(None) == Some(true) {
            return Err(format!("{ctx}: {what}.metadata.sniffing (routing by TLS SNI / HTTP Host) is not implemented in Portway yet"));
        }
    }
    if let Some(f) = &s.forwarder {
        for n in &f.nodes {
            for key in ["host", "filter", "matcher", "protocol", "path"] {
                if n.extra.keys().any(|k| k.eq_ignore_ascii_case(key)) {
                    return Err(format!("{ctx}: forwarder node {:?} uses `{key}` (per-request routing) which is not implemented in Portway yet", n.name));
                }
            }
        }
    }
    Ok(())
}

/// Portway's SSH server for an `sshd` service: the host key from
/// `privateKeyFile`, else one generated once and kept in Portway's config dir;
/// password users from the service's auth; public keys from `authorizedKeys`.
fn ssh_server_config(s: &ServiceConfig, auther: Option<Arc<crate::auth::Auther>>, ctx: &str) -> Result<crate::ssh::server::SshServerConfig, String> {
    let md = |k: &[&str]| s.listener.metadata.get_string(k).or_else(|| s.handler.metadata.get_string(k)).filter(|v| !v.is_empty());
    let key_path = match md(&["privateKeyFile"]) {
        Some(p) => std::path::PathBuf::from(p),
        None => crate::store::config_dir().map_err(|e| format!("{ctx}: {e}"))?.join("sshd_host_ed25519_key"),
    };
    let host_key = crate::ssh::server::load_or_generate_host_key(&key_path).map_err(|e| format!("{ctx}: host key: {e}"))?;
    let authorized_keys = match md(&["authorizedKeys"]) {
        Some(p) => crate::ssh::server::load_authorized_keys(std::path::Path::new(&p)).map_err(|e| format!("{ctx}: authorizedKeys: {e}"))?,
        None => Vec::new(),
    };
    Ok(crate::ssh::server::SshServerConfig { host_key, auther, authorized_keys })
}
