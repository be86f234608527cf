//! The engine: runs the services of a [`Config`] and reports on them. The desktop
//! app and the `portway` CLI both drive it through this API.
//!
//! `apply` diffs a whole config against what runs (rathole's config watcher does the
//! same per service): services whose configuration — including the chain they use —
//! is unchanged keep running and keep their connections; changed ones restart;
//! removed ones stop. One service failing (a port in use, an unimplemented type)
//! never stops the others.

use crate::config::validate::{plan_service, Network, ServicePlan};
use crate::config::{Config, ServiceConfig};
use crate::service::{self, Ctx};
use crate::stats::*;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "code", rename_all = "camelCase")]
pub enum EngineError {
    #[error("no service named {name:?}")]
    NoSuchService { name: String },
}

/// One service as the UI lists it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServiceStatus {
    pub name: String,
    /// The configured listen address (`:8080`).
    pub addr: String,
    pub handler: String,
    pub listener: String,
    #[serde(flatten)]
    pub state: ServiceState,
    /// Where it actually listens (after resolving `:8080`, port 0 …).
    pub listening: Vec<SocketAddr>,
    pub targets: Vec<String>,
    pub enabled: bool,
}

/// Probes a service of `config` without starting anything (`portway probe`).
pub async fn probe_config(config: &Config, service: &str, target: Option<&str>) -> Result<ProbeReport, EngineError> {
    let svc = config.service(service).ok_or_else(|| EngineError::NoSuchService { name: service.into() })?;
    Ok(probe_plan(service, plan_service(config, svc).map(Arc::new), target).await)
}

/// Most targets one probe dials; a rule with more lists the rest as not tried.
const PROBE_MAX_TARGETS: usize = 16;

async fn probe_plan(service: &str, plan: Result<Arc<ServicePlan>, String>, target: Option<&str>) -> ProbeReport {
    let report = |target: Option<&str>, ms, hops, error| ProbeReport::route(service, target.unwrap_or_default(), ms, hops, error);
    let plan = match plan {
        Ok(p) => p,
        Err(e) => return report(target, 0, Vec::new(), Some(e)),
    };
    let network = match plan.network {
        Network::Tcp => crate::chain::Network::Tcp,
        Network::Udp => crate::chain::Network::Udp,
    };
    // A remote rule breaks first where its port is opened: walk that chain's hops
    // (the last node listens for us), then dial the targets as its connections would.
    if let Some(bind) = plan.bind_chain.as_deref() {
        let (ms, mut hops, error) = timed_route(Some(bind), crate::chain::Network::Tcp, None, plan.dial_timeout).await;
        if error.is_some() {
            return report(target, ms, hops, error);
        }
        let mut rest = probe_targets(service, &plan, network, target).await;
        hops.append(&mut rest.hops);
        rest.hops = hops;
        rest.ms += ms;
        return rest;
    }
    if plan.chain.is_none() && network == crate::chain::Network::Udp {
        return report(target, 0, Vec::new(), Some("a UDP target without a chain cannot be probed: UDP has no handshake to test".into()));
    }
    probe_targets(service, &plan, network, target).await
}

/// One dial through `chain` (directly to `target` without one), timed:
/// milliseconds, each hop reached, and why it failed.
async fn timed_route(chain: Option<&crate::config::validate::ChainPlan>, network: crate::chain::Network, target: Option<&str>, timeout: Duration) -> (u64, Vec<crate::chain::HopResult>, Option<String>) {
    let t0 = std::time::Instant::now();
    let r = crate::chain::dial_route(chain, network, target, timeout, None).await;
    let ms = t0.elapsed().as_millis() as u64;
    match r {
        Ok((_conn, route)) => (ms, route.hops, None),
        Err((e, route)) => (ms, route.hops, Some(e)),
    }
}

/// Dials `target`, or every forwarding target of the rule (each through the
/// chain, at the same time), so a dead second backend shows before the selector
/// needs it. The report's route is the first failure's, else the first target's.
async fn probe_targets(service: &str, plan: &Arc<ServicePlan>, network: crate::chain::Network, target: Option<&str>) -> ProbeReport {
    let targets: Vec<String> = match target {
        Some(t) if !t.is_empty() => vec![t.to_string()],
        _ => {
            let mut all: Vec<String> = Vec::new();
            for t in plan.targets.iter().filter(|t| !t.addr.ends_with(":0") || plan.chain.is_some()) {
                if !all.contains(&t.addr) {
                    all.push(t.addr.clone());
                }
            }
            all
        }
    };
    // A proxy service has no targets of its own: probe its hops only.
    if targets.is_empty() {
        let (ms, hops, error) = timed_route(plan.chain.as_deref(), network, None, plan.dial_timeout).await;
        return ProbeReport::route(service, "", ms, hops, error);
    }
    let tried = targets.len().min(PROBE_MAX_TARGETS);
    let mut set = tokio::task::JoinSet::new();
    for (i, t) in targets[..tried].iter().enumerate() {
        let (plan, t) = (plan.clone(), t.clone());
        set.spawn(async move { (i, timed_route(plan.chain.as_deref(), network, Some(&t), plan.dial_timeout).await) });
    }
    let mut found = vec![None; tried];
    while let Some(r) = set.join_next().await {
        // A dial that panicked is a bug elsewhere; its target is simply missing here.
        if let Ok((i, r)) = r {
            found[i] = Some(r);
        }
    }
    let results: Vec<_> = targets.iter().zip(found).filter_map(|(t, r)| r.map(|(ms, hops, e)| (t.clone(), ms, hops, e))).collect();
    let mut per_target: Vec<TargetProbe> = results.iter().map(|(t, ms, _, e)| TargetProbe { target: t.clone(), ok: e.is_none(), ms: *ms, error: e.clone() }).collect();
    for t in &targets[tried..] {
        per_target.push(TargetProbe { target: t.clone(), ok: false, ms: 0, error: Some(format!("not tried: a probe dials at most {PROBE_MAX_TARGETS} targets")) });
    }
    let main = results.iter().position(|r| r.3.is_some()).unwrap_or(0);
    let Some((t, ms, hops, error)) = results.into_iter().nth(main) else {
        return ProbeReport { targets: per_target, ..ProbeReport::route(service, "", 0, Vec::new(), Some("nothing to probe".into())) };
    };
    // One target is the whole story; several are listed only when there are several.
    let targets = if per_target.len() > 1 { per_target } else { Vec::new() };
    let ok = error.is_none() && targets.iter().all(|x| x.ok);
    ProbeReport { ok, targets, ..ProbeReport::route(service, &t, ms, hops, error) }
}

impl ProbeReport {
    /// One route's result, with no per-target list.
    fn route(service: &str, target: &str, ms: u64, hops: Vec<crate::chain::HopResult>, error: Option<String>) -> ProbeReport {
        ProbeReport { service: service.into(), target: target.into(), ok: error.is_none(), ms, hops, error, targets: Vec::new() }
    }
}

/// One forwarding target as the probe found it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TargetProbe {
    pub target: String,
    pub ok: bool,
    pub ms: u64,
    pub error: Option<String>,
}

/// What [`Engine::probe`] found.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProbeReport {
    pub service: String,
    /// The address asked for through the chain; empty when only the hops were tried.
    pub target: String,
    pub ok: bool,
    /// Milliseconds for the whole route.
    pub ms: u64,
    /// Each hop reached, the failing one last (its `error` set).
    pub hops: Vec<crate::chain::HopResult>,
    pub error: Option<String>,
    /// Every target's result when the rule has several (the route above is the
    /// first failing one's); empty for a single target.
    pub targets: Vec<TargetProbe>,
}

/// What `apply` did.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ApplyReport {
    pub started: Vec<String>,
    pub restarted: Vec<String>,
    pub stopped: Vec<String>,
    pub unchanged: Vec<String>,
    /// (service, error)
    pub failed: Vec<(String, String)>,
}

struct Svc {
    cfg: ServiceConfig,
    fingerprint: String,
    state: ServiceState,
    cancel: Option<CancellationToken>,
    counters: Arc<ServiceCounters>,
    plan: Option<Arc<ServicePlan>>,
    listening: Vec<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

impl Svc {
    /// Cancels the service; returns its listener tasks to wait for, so that its
    /// port is free before anything binds it again.
    fn halt(&mut self) -> Vec<JoinHandle<()>> {
        if let Some(c) = self.cancel.take() {
            c.cancel();
        }
        std::mem::take(&mut self.tasks)
    }
}

/// Waits (bounded) for stopped listeners to close their sockets.
async fn join_all(tasks: Vec<JoinHandle<()>>) {
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
    }
}

struct State {
    config: Config,
    order: Vec<String>,
    services: HashMap<String, Svc>,
    disabled: BTreeSet<String>,
}

struct Inner {
    state: Mutex<State>,
    apply_lock: tokio::sync::Mutex<()>,
    events: broadcast::Sender<Event>,
    conns: Arc<ConnRegistry>,
    last_stats: Mutex<Vec<ServiceStats>>,
    shutdown: CancellationToken,
    /// The stats period; the ticker re-arms when it changes.
    tick: tokio::sync::watch::Sender<Duration>,
}

/// Cheap to clone; all clones drive the same engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere must not take the engine down with it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What identifies a service's configuration: the service plus the chain and
/// top-level hops it may use.
fn fingerprint(cfg: &Config, s: &ServiceConfig) -> String {
    let mut fp = serde_yaml::to_string(s).unwrap_or_default();
    for name in [&s.handler.chain, &s.listener.chain] {
        if let Some(c) = cfg.chain(name) {
            fp.push_str(&serde_yaml::to_string(c).unwrap_or_default());
        }
    }
    if !cfg.hops.is_empty() {
        fp.push_str(&serde_yaml::to_string(&cfg.hops).unwrap_or_default());
    }
    fp
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

impl Engine {
    /// Creates an engine. Must be called inside a tokio runtime: the stats ticker
    /// and the log forwarder run on it.
    pub fn new() -> Engine {
        Engine::with_tick(Duration::from_secs(1))
    }

    pub fn with_tick(tick: Duration) -> Engine {
        let (events, _) = broadcast::channel(4096);
        let inner = Arc::new(Inner {
            state: Mutex::new(State { config: Config::default(), order: Vec::new(), services: HashMap::new(), disabled: BTreeSet::new() }),
            apply_lock: tokio::sync::Mutex::new(()),
            events,
            conns: Arc::new(ConnRegistry::default()),
            last_stats: Mutex::new(Vec::new()),
            shutdown: CancellationToken::new(),
            tick: tokio::sync::watch::channel(tick).0,
        });
        tokio::spawn(stats_ticker(Arc::downgrade(&inner), inner.tick.subscribe(), inner.shutdown.clone()));
        tokio::spawn(log_forwarder(Arc::downgrade(&inner), inner.shutdown.clone()));
        Engine { inner }
    }

    /// Changes how often `Event::Stats` is sent (the user's stats interval). Takes
    /// effect at once; rates stay per second whatever the period.
    pub fn set_tick(&self, tick: Duration) {
        self.inner.tick.send_replace(tick.max(Duration::from_millis(10)));
    }

    pub fn tick(&self) -> Duration {
        *self.inner.tick.borrow()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// The config last applied.
    pub fn config(&self) -> Config {
        lock(&self.inner.state).config.clone()
    }

    /// Services switched off by the user; they are not started by `apply`.
    pub fn set_disabled(&self, names: impl IntoIterator<Item = String>) {
        lock(&self.inner.state).disabled = names.into_iter().collect();
    }

    pub fn disabled(&self) -> Vec<String> {
        lock(&self.inner.state).disabled.iter().cloned().collect()
    }

    /// Makes the running services match `config`.
    pub async fn apply(&self, config: Config) -> ApplyReport {
        let _g = self.inner.apply_lock.lock().await;
        let mut report = ApplyReport::default();
        let mut to_start: Vec<(String, bool)> = Vec::new();
        let mut halted = Vec::new();
        {
            let mut st = lock(&self.inner.state);
            let new_names: Vec<String> = config.services.iter().map(|s| s.name.clone()).collect();
            // Stop removed services.
            let old: Vec<String> = st.order.clone();
            for name in old {
                if !new_names.contains(&name) {
                    if let Some(mut svc) = st.services.remove(&name) {
                        halted.extend(svc.halt());
                        report.stopped.push(name.clone());
                        info!(service = %name, "stopped (removed from the profile)");
                    }
                }
            }
            for s in &config.services {
                let fp = fingerprint(&config, s);
                let disabled = st.disabled.contains(&s.name);
                match st.services.get_mut(&s.name) {
                    Some(svc) if svc.fingerprint == fp && (matches!(svc.state, ServiceState::Running) || (disabled && svc.state == ServiceState::Disabled)) => {
                        report.unchanged.push(s.name.clone());
                    }
                    Some(svc) => {
                        halted.extend(svc.halt());
                        let was_running = matches!(svc.state, ServiceState::Running);
                        svc.cfg = s.clone();
                        svc.fingerprint = fp;
                        svc.plan = None;
                        svc.listening.clear();
                        svc.state = ServiceState::Stopped;
                        to_start.push((s.name.clone(), was_running));
                    }
                    None => {
                        st.services.insert(
                            s.name.clone(),
                            Svc {
                                cfg: s.clone(),
                                fingerprint: fp,
                                state: ServiceState::Stopped,
                                cancel: None,
                                counters: Arc::new(ServiceCounters::default()),
                                plan: None,
                                listening: Vec::new(),
                                tasks: Vec::new(),
                            },
                        );
                        to_start.push((s.name.clone(), false));
                    }
                }
            }
            st.order = new_names;
            st.config = config;
        }
        join_all(halted).await;
        for (name, restart) in to_start {
            match self.start_locked(&name).await {
                Ok(ServiceState::Failed { error }) => report.failed.push((name, error)),
                _ if restart => report.restarted.push(name),
                _ => report.started.push(name),
            }
        }
        report
    }

    /// Dials through a service's chain as a connection would, and reports each
    /// hop's result and time: "hop 2 (127.0.0.12:1080) refused: authentication
    /// failed" instead of "it doesn't work". `target` defaults to the service's
    /// forwarding targets (all of them, at once); a proxy service without one
    /// probes its hops only; a remote rule first walks the chain that opens its port.
    /// A running service's node health is updated as by real traffic.
    pub async fn probe(&self, service: &str, target: Option<&str>) -> Result<ProbeReport, EngineError> {
        let plan = {
            let st = lock(&self.inner.state);
            let svc = st.services.get(service).ok_or_else(|| EngineError::NoSuchService { name: service.into() })?;
            match &svc.plan {
                Some(p) => Ok(p.clone()),
                None => plan_service(&st.config, &svc.cfg).map(Arc::new),
            }
        };
        Ok(probe_plan(service, plan, target).await)
    }

    /// Starts one service of the applied config (unless disabled).
    async fn start_locked(&self, name: &str) -> Result<ServiceState, EngineError> {
        let (plan_res, counters, disabled) = {
            let st = lock(&self.inner.state);
            let svc = st.services.get(name).ok_or_else(|| EngineError::NoSuchService { name: name.into() })?;
            if matches!(svc.state, ServiceState::Running) {
                return Ok(ServiceState::Running);
            }
            (plan_service(&st.config, &svc.cfg), svc.counters.clone(), st.disabled.contains(name))
        };
        if disabled {
            return Ok(self.set_state(name, ServiceState::Disabled, None, None, None).0);
        }
        let plan = match plan_res {
            Ok(p) => Arc::new(p),
            Err(e) => {
                error!(service = %name, "{e}");
                return Ok(self.set_state(name, ServiceState::Failed { error: e }, None, None, None).0);
            }
        };
        let cancel = self.inner.shutdown.child_token();
        let ctx = Ctx {
            name: plan.name.as_str().into(),
            plan: plan.clone(),
            counters,
            conns: self.inner.conns.clone(),
            events: self.inner.events.clone(),
            cancel: cancel.clone(),
        };
        let started = match plan.network {
            Network::Tcp | Network::Udp if plan.bind_chain.is_some() => service::rtcp::start(ctx).await,
            Network::Tcp => service::tcp::start(ctx).await,
            Network::Udp => service::udp::start(ctx).await,
        };
        match started {
            Ok(s) => {
                let targets: Vec<&str> = plan.targets.iter().map(|t| t.addr.as_str()).collect();
                match &plan.bind_chain {
                    Some(c) => info!(service = %name, "{} {} opens on the last hop of chain {:?} → {}", plan.listener, plan.addr, c.name, targets.join(", ")),
                    None => info!(service = %name, "{} listening on {} → {}", plan.listener, fmt_addrs(&s.local), targets.join(", ")),
                }
                Ok(self.set_state(name, ServiceState::Running, Some(cancel), Some(plan), Some(s)).0)
            }
            Err(e) => {
                cancel.cancel();
                error!(service = %name, "{e}");
                Ok(self.set_state(name, ServiceState::Failed { error: e }, None, Some(plan), None).0)
            }
        }
    }

    fn set_state(&self, name: &str, state: ServiceState, cancel: Option<CancellationToken>, plan: Option<Arc<ServicePlan>>, started: Option<service::Started>) -> (ServiceState, Vec<JoinHandle<()>>) {
        let (listening, tasks) = match started {
            Some(s) => (s.local, s.tasks),
            None => (Vec::new(), Vec::new()),
        };
        let mut old = Vec::new();
        {
            let mut st = lock(&self.inner.state);
            if let Some(svc) = st.services.get_mut(name) {
                old = svc.halt();
                svc.state = state.clone();
                svc.cancel = cancel;
                svc.plan = plan;
                svc.listening = listening;
                svc.tasks = tasks;
            } else if let Some(c) = cancel {
                // Removed while starting.
                c.cancel();
            }
        }
        let _ = self.inner.events.send(Event::ServiceState { service: name.into(), state: state.clone() });
        (state, old)
    }

    /// Switches a service on or off (the per-rule toggle). Off closes its listener
    /// and its connections.
    pub async fn set_enabled(&self, name: &str, enabled: bool) -> Result<ServiceStatus, EngineError> {
        let _g = self.inner.apply_lock.lock().await;
        {
            let mut st = lock(&self.inner.state);
            if !st.services.contains_key(name) {
                return Err(EngineError::NoSuchService { name: name.into() });
            }
            if enabled {
                st.disabled.remove(name);
            } else {
                st.disabled.insert(name.to_string());
            }
        }
        if enabled {
            let stopped = {
                let st = lock(&self.inner.state);
                st.services.get(name).map(|s| !matches!(s.state, ServiceState::Running)).unwrap_or(false)
            };
            if stopped {
                self.start_locked(name).await?;
            }
        } else {
            let (_, old) = self.set_state(name, ServiceState::Disabled, None, None, None);
            join_all(old).await;
            info!(service = %name, "switched off");
        }
        self.service_status(name).ok_or_else(|| EngineError::NoSuchService { name: name.into() })
    }

    /// Stops a service without changing whether it is enabled (it starts again on
    /// the next `apply` or `start`).
    pub async fn stop(&self, name: &str) -> Result<ServiceStatus, EngineError> {
        let _g = self.inner.apply_lock.lock().await;
        if !lock(&self.inner.state).services.contains_key(name) {
            return Err(EngineError::NoSuchService { name: name.into() });
        }
        let (_, old) = self.set_state(name, ServiceState::Stopped, None, None, None);
        join_all(old).await;
        self.service_status(name).ok_or_else(|| EngineError::NoSuchService { name: name.into() })
    }

    /// Starts (or retries) one service.
    pub async fn start(&self, name: &str) -> Result<ServiceStatus, EngineError> {
        let _g = self.inner.apply_lock.lock().await;
        self.start_locked(name).await?;
        self.service_status(name).ok_or_else(|| EngineError::NoSuchService { name: name.into() })
    }

    pub fn service_status(&self, name: &str) -> Option<ServiceStatus> {
        self.status().into_iter().find(|s| s.name == name)
    }

    pub fn status(&self) -> Vec<ServiceStatus> {
        let st = lock(&self.inner.state);
        st.order
            .iter()
            .filter_map(|n| st.services.get(n).map(|s| (n, s)))
            .map(|(n, s)| ServiceStatus {
                name: n.clone(),
                addr: s.cfg.addr.clone(),
                handler: s.cfg.handler.kind.clone(),
                listener: s.cfg.listener.kind.clone(),
                state: s.state.clone(),
                listening: s.listening.clone(),
                targets: s.cfg.forwarder.as_ref().map(|f| f.nodes.iter().map(|n| n.addr.clone()).collect()).unwrap_or_default(),
                enabled: !st.disabled.contains(n),
            })
            .collect()
    }

    pub fn connections(&self) -> Vec<ConnInfo> {
        self.inner.conns.list()
    }

    pub fn close_connection(&self, id: u64) -> bool {
        self.inner.conns.close(id)
    }

    /// The last stats tick.
    pub fn stats(&self) -> Vec<ServiceStats> {
        lock(&self.inner.last_stats).clone()
    }

    /// Counters sampled now (rates from the last tick).
    pub fn stats_now(&self) -> Vec<ServiceStats> {
        let st = lock(&self.inner.state);
        let last = lock(&self.inner.last_stats).clone();
        st.order
            .iter()
            .filter_map(|n| st.services.get(n).map(|s| (n, s)))
            .map(|(n, s)| {
                let prev = last.iter().find(|p| &p.service == n);
                sample(n, s, prev.map(|p| (p.rate_in, p.rate_out)).unwrap_or((0, 0)))
            })
            .collect()
    }

    pub fn recent_logs(&self, max: usize) -> Vec<LogLine> {
        crate::logging::ring().recent(max)
    }

    /// Stops every service and the background tasks.
    pub async fn shutdown(&self) {
        let _g = self.inner.apply_lock.lock().await;
        let names: Vec<String> = lock(&self.inner.state).order.clone();
        let mut old = Vec::new();
        for n in names {
            old.extend(self.set_state(&n, ServiceState::Stopped, None, None, None).1);
        }
        join_all(old).await;
        self.inner.shutdown.cancel();
    }
}

fn fmt_addrs(a: &[SocketAddr]) -> String {
    a.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")
}

fn sample(name: &str, s: &Svc, rates: (u64, u64)) -> ServiceStats {
    let c = &s.counters;
    ServiceStats {
        service: name.to_string(),
        active: c.active.load(Relaxed),
        total: c.total.load(Relaxed),
        bytes_in: c.bytes_in.load(Relaxed),
        bytes_out: c.bytes_out.load(Relaxed),
        rate_in: rates.0,
        rate_out: rates.1,
        errors: c.errors.load(Relaxed),
        last_error: c.last_error(),
        nodes: s.plan.as_ref().map(|p| p.targets.iter().map(|t| p.selector.health(t)).collect()).unwrap_or_default(),
        hops: s.plan.as_ref().map(|p| hop_health(p)).unwrap_or_default(),
    }
}

/// Node health of every chain a service uses: the one it dials through and, for
/// a remote rule, the one whose last node opens its port.
fn hop_health(p: &ServicePlan) -> Vec<crate::stats::HopHealth> {
    let mut out = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for c in [p.bind_chain.as_deref(), p.chain.as_deref()].into_iter().flatten() {
        if seen.contains(&c.name.as_str()) {
            continue;
        }
        seen.push(&c.name);
        out.extend(c.hops.iter().map(|h| crate::stats::HopHealth { chain: c.name.clone(), hop: h.name.clone(), nodes: h.nodes.iter().map(|n| h.selector.health(n)).collect() }));
    }
    out
}

async fn stats_ticker(inner: Weak<Inner>, mut tick: tokio::sync::watch::Receiver<Duration>, stop: CancellationToken) {
    let every = |d: Duration| {
        let mut iv = tokio::time::interval(d);
        iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        iv
    };
    let mut iv = every(*tick.borrow_and_update());
    let mut prev: HashMap<String, (u64, u64)> = HashMap::new();
    let mut prev_t = Instant::now();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = iv.tick() => {}
            changed = tick.changed() => {
                if changed.is_err() {
                    return;
                }
                let d = *tick.borrow_and_update();
                iv = every(d);
                // The new interval's first tick is immediate: skip it so a change does
                // not send an extra frame.
                iv.reset();
                continue;
            }
        }
        let Some(inner) = inner.upgrade() else { return };
        let now = Instant::now();
        let dt = now.duration_since(prev_t).as_secs_f64().max(1e-3);
        prev_t = now;
        let services: Vec<ServiceStats> = {
            let st = lock(&inner.state);
            st.order
                .iter()
                .filter_map(|n| st.services.get(n).map(|s| (n, s)))
                .map(|(n, s)| {
                    let mut x = sample(n, s, (0, 0));
                    let (pi, po) = prev.get(n).copied().unwrap_or((x.bytes_in, x.bytes_out));
                    x.rate_in = ((x.bytes_in.saturating_sub(pi)) as f64 / dt) as u64;
                    x.rate_out = ((x.bytes_out.saturating_sub(po)) as f64 / dt) as u64;
                    prev.insert(n.clone(), (x.bytes_in, x.bytes_out));
                    x
                })
                .collect()
        };
        prev.retain(|k, _| services.iter().any(|s| &s.service == k));
        *lock(&inner.last_stats) = services.clone();
        let _ = inner.events.send(Event::Stats { time: unix_millis(), services });
    }
}

async fn log_forwarder(inner: Weak<Inner>, stop: CancellationToken) {
    let mut rx = crate::logging::ring().subscribe();
    loop {
        let line = tokio::select! {
            _ = stop.cancelled() => return,
            r = rx.recv() => match r {
                Ok(l) => l,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            },
        };
        let Some(inner) = inner.upgrade() else { return };
        let _ = inner.events.send(Event::Log { line });
    }
}
