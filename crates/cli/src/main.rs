//! `portway`: GOST's command line over the Portway engine.

mod args;

use anyhow::{anyhow, bail, Context, Result};
use portway_core::config::{build_from_cmd, load_str, Config, Warning};
use portway_core::stats::ServiceState;
use portway_core::store::ProfileStore;
use portway_core::Engine;
use std::io::{Read, Write};
use std::process::ExitCode;

use portway_core::store::DEFAULT_PROFILE;

/// Where the config comes from, so SIGHUP can read it again.
enum Source {
    Cmd { configs: Vec<String>, services: Vec<String>, nodes: Vec<String> },
    Profile { store: ProfileStore, name: String },
}

struct Built {
    config: Config,
    /// (file the warning is about, warning)
    warnings: Vec<(String, Warning)>,
    disabled: Vec<String>,
    label: String,
}

/// stdin can be read once: a SIGHUP reload of `-C -` reuses what was read at start
/// (reading it again would give an empty config and stop every service).
static STDIN_CONFIG: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn read_config_arg(arg: &str) -> Result<(String, String)> {
    if arg == "-" {
        let s = match STDIN_CONFIG.get() {
            Some(s) => s.clone(),
            None => {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s).context("reading the config from stdin")?;
                STDIN_CONFIG.get_or_init(|| s).clone()
            }
        };
        let name = if s.trim_start().starts_with('{') { "<stdin>.json" } else { "<stdin>" };
        return Ok((name.to_string(), s));
    }
    if arg.trim_start().starts_with('{') {
        return Ok(("<inline JSON>.json".to_string(), arg.to_string()));
    }
    let text = std::fs::read_to_string(arg).with_context(|| format!("cannot read config file {arg}"))?;
    Ok((arg.to_string(), text))
}

fn merge(into: &mut Config, other: Config) -> Result<()> {
    for s in other.services {
        if into.services.iter().any(|x| x.name == s.name) {
            bail!("duplicate service name {:?} (names must be unique across -C files and -L flags)", s.name);
        }
        into.services.push(s);
    }
    for c in other.chains {
        if into.chains.iter().any(|x| x.name == c.name) {
            bail!("duplicate chain name {:?}", c.name);
        }
        into.chains.push(c);
    }
    into.hops.extend(other.hops);
    for (k, v) in other.extra {
        match (into.extra.get_mut(&k), v) {
            (Some(serde_yaml::Value::Sequence(a)), serde_yaml::Value::Sequence(b)) => a.extend(b),
            (_, v) => {
                into.extra.insert(k, v);
            }
        }
    }
    Ok(())
}

fn build(src: &Source) -> Result<Built> {
    match src {
        Source::Cmd { configs, services, nodes } => {
            let mut config = Config::default();
            let mut warnings = Vec::new();
            let mut labels = Vec::new();
            for c in configs {
                let (name, text) = read_config_arg(c)?;
                let loaded = load_str(&name, &text).map_err(|e| anyhow!("{e}"))?;
                warnings.extend(loaded.warnings.into_iter().map(|w| (name.clone(), w)));
                merge(&mut config, loaded.config)?;
                labels.push(name);
            }
            let cmd = build_from_cmd(services, nodes).map_err(|e| anyhow!("{e}"))?;
            warnings.extend(portway_core::config::url::cmd_warnings(&cmd).into_iter().map(|w| ("command line".to_string(), w)));
            merge(&mut config, cmd)?;
            if !services.is_empty() {
                labels.push("command line".into());
            }
            Ok(Built { config, warnings, disabled: Vec::new(), label: labels.join(" + ") })
        }
        Source::Profile { store, name } => {
            let loaded = store.load(name).map_err(|e| anyhow!("{e}"))?;
            let settings = store.settings().map_err(|e| anyhow!("{e}"))?;
            let file = store.profile_path(name).display().to_string();
            Ok(Built {
                config: loaded.config,
                warnings: loaded.warnings.into_iter().map(|w| (file.clone(), w)).collect(),
                disabled: settings.disabled.get(name).cloned().unwrap_or_default(),
                label: format!("profile {name:?} ({})", store.profile_path(name).display()),
            })
        }
    }
}

fn profile_source(name: Option<String>) -> Result<Source> {
    let store = ProfileStore::open_default().map_err(|e| anyhow!("{e}"))?;
    let settings = store.settings().map_err(|e| anyhow!("{e}"))?;
    let name = match (name, settings.active_profile) {
        (Some(n), _) => {
            if !store.exists(&n) && n != "default" {
                bail!("no profile named {n:?} in {}", store.root().display());
            }
            n
        }
        (None, Some(active)) if !store.exists(&active) => {
            // Never write the default rules under the name of a profile the user had.
            eprintln!(
                "portway: warning: the active profile {active:?} (settings.json) is not in {}; running \"default\"",
                store.root().join("profiles").display()
            );
            "default".to_string()
        }
        (None, active) => active.unwrap_or_else(|| "default".into()),
    };
    if !store.exists(&name) {
        store.save_text(&name, DEFAULT_PROFILE).map_err(|e| anyhow!("{e}"))?;
        eprintln!("portway: created profile {name:?} at {}", store.profile_path(&name).display());
    }
    Ok(Source::Profile { store, name })
}

/// `portway: warning: FILE:LINE: KEY: MESSAGE`, the shape of load errors.
fn print_warnings(w: &[(String, Warning)]) {
    for (file, w) in w {
        let at = if w.line > 0 { format!("{file}:{}", w.line) } else { file.clone() };
        if w.path.is_empty() {
            eprintln!("portway: warning: {at}: {}", w.message);
        } else {
            eprintln!("portway: warning: {at}: {}: {}", w.path, w.message);
        }
    }
}

/// Writes to stdout; a closed pipe (`portway -O yaml | head`) is not an error.
fn print_out(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e).context("writing to stdout"),
    }
}

fn print_status(engine: &Engine) {
    let config = engine.config();
    let mut out = std::io::stdout().lock();
    for s in engine.status() {
        let line = match &s.state {
            ServiceState::Running => {
                let at: Vec<String> = s.listening.iter().map(|a| a.to_string()).collect();
                let to = if !s.targets.is_empty() {
                    s.targets.join(", ")
                } else if portway_core::config::validate::is_proxy_handler(&s.handler) {
                    "(each client names its target)".to_string()
                } else {
                    "(target from the chain)".to_string()
                };
                let svc = config.service(&s.name);
                if let Some(bind) = svc.map(|c| c.listener.chain.as_str()).filter(|c| !c.is_empty() && matches!(s.listener.as_str(), "rtcp" | "rudp")) {
                    // Remote forwarding: the port opens on the chain's last node.
                    let _ = writeln!(out, "service {:?}: {} {} opened on the last hop of chain {bind:?} -> {to}", s.name, s.listener, s.addr);
                    continue;
                }
                // GOST's default listener is tcp.
                let listener = if s.listener.is_empty() { "tcp" } else { s.listener.as_str() };
                let via = match config.service(&s.name).map(|c| c.handler.chain.as_str()) {
                    Some(chain) if !chain.is_empty() => format!(" via chain {chain:?}"),
                    _ => String::new(),
                };
                format!("service {:?}: {listener} listening on {} -> {to}{via}", s.name, at.join(", "))
            }
            ServiceState::Failed { error } => {
                // Validation errors already start with `service "NAME": `; say it once.
                let prefix = format!("service {:?}: ", s.name);
                format!("{prefix}failed: {}", error.strip_prefix(&prefix).unwrap_or(error))
            }
            ServiceState::Disabled => format!("service {:?}: switched off", s.name),
            ServiceState::Stopped => format!("service {:?}: stopped", s.name),
        };
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("probe") {
        return match probe(argv[1..].to_vec()) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("portway probe: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    let args = match args::parse(argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("portway: {e}\nRun 'portway --help' for usage.");
            return ExitCode::from(2);
        }
    };
    if args.help || args.version {
        let text = if args.help {
            args::USAGE.to_string()
        } else {
            format!("portway {} (GOST v3 compatible; {} {})\n", env!("CARGO_PKG_VERSION"), std::env::consts::OS, std::env::consts::ARCH)
        };
        return match print_out(&text) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("portway: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("portway: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `portway probe [SERVICE] [--target HOST:PORT] [-L … -F … | -C FILE | --profile NAME]`:
/// dials through the service's chain without starting it and prints each hop's
/// result. Exit status 0 when the whole route works, 1 when it breaks.
fn probe(argv: Vec<String>) -> Result<ExitCode> {
    let mut service = None;
    let mut target = None;
    let mut json = false;
    let mut rest = Vec::new();
    let mut it = argv.into_iter();
    while let Some(a) = it.next() {
        if a == "--target" || a == "-target" {
            target = Some(it.next().ok_or_else(|| anyhow!("--target needs an address (host:port)"))?);
        } else if let Some(t) = a.strip_prefix("--target=") {
            target = Some(t.to_string());
        } else if a == "--json" {
            json = true;
        } else if !a.starts_with('-') && service.is_none() && !rest.last().is_some_and(|p: &String| p.starts_with('-') && !p.contains('=') && !matches!(p.as_str(), "-D" | "-DD")) {
            service = Some(a);
        } else {
            rest.push(a);
        }
    }
    let args = args::parse(rest).map_err(|e| anyhow!(e))?;
    let source = if args.configs.is_empty() && args.services.is_empty() {
        profile_source(args.profile.clone())?
    } else {
        Source::Cmd { configs: args.configs.clone(), services: args.services.clone(), nodes: args.nodes.clone() }
    };
    let built = build(&source)?;
    print_warnings(&built.warnings);
    let service = match service {
        Some(s) => s,
        None => match built.config.services.as_slice() {
            [only] => only.name.clone(),
            [] => bail!("no service to probe in {}", built.label),
            many => bail!("name the service to probe: {}", many.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")),
        },
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    let report = rt.block_on(portway_core::engine::probe_config(&built.config, &service, target.as_deref())).map_err(|e| anyhow!(e))?;
    if json {
        print_out(&(serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"))?;
    } else {
        let mut out = format!("probe {:?}{}\n", report.service, if report.target.is_empty() { String::new() } else { format!(" → {}", report.target) });
        for (i, h) in report.hops.iter().enumerate() {
            let what = if h.hop == "target" { "target".to_string() } else { format!("hop {} {:?} node {:?}", i + 1, h.hop, h.node) };
            match &h.error {
                None => out.push_str(&format!("  ok      {what} ({}) {} ms\n", h.addr, h.ms)),
                Some(e) => out.push_str(&format!("  FAILED  {what} ({}) after {} ms: {e}\n", h.addr, h.ms)),
            }
        }
        if !report.targets.is_empty() {
            out.push_str("targets:\n");
            for t in &report.targets {
                match &t.error {
                    None => out.push_str(&format!("  ok      {} {} ms\n", t.target, t.ms)),
                    Some(e) => out.push_str(&format!("  FAILED  {} after {} ms: {e}\n", t.target, t.ms)),
                }
            }
        }
        let down = report.targets.iter().filter(|t| !t.ok).count();
        match &report.error {
            None if down > 0 => out.push_str(&format!("failed: {down} of {} targets unreachable\n", report.targets.len())),
            None => out.push_str(&format!("ok: route works ({} ms)\n", report.ms)),
            Some(e) => out.push_str(&format!("failed: {e}\n")),
        }
        print_out(&out)?;
    }
    Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn run(args: args::Args) -> Result<ExitCode> {
    for i in &args.ignored {
        eprintln!("portway: warning: {i}: not supported by Portway, ignored");
    }
    let source = if args.configs.is_empty() && args.services.is_empty() {
        if !args.nodes.is_empty() && args.output.is_none() {
            bail!("-F needs at least one -L service to use the chain");
        }
        if args.nodes.is_empty() || args.profile.is_some() {
            profile_source(args.profile.clone())?
        } else {
            Source::Cmd { configs: Vec::new(), services: Vec::new(), nodes: args.nodes.clone() }
        }
    } else {
        Source::Cmd { configs: args.configs.clone(), services: args.services.clone(), nodes: args.nodes.clone() }
    };
    let mut built = build(&source)?;
    print_warnings(&built.warnings);
    if let Some(fmt) = &args.output {
        if args.debug > 0 {
            // GOST's -D/-DD end up in the printed config as log.level.
            set_log_level(&mut built.config, if args.debug > 1 { "trace" } else { "debug" });
        }
        let text = if fmt == "json" { built.config.to_json() + "\n" } else { built.config.to_yaml() };
        print_out(&text)?;
        return Ok(ExitCode::SUCCESS);
    }
    portway_core::logging::init(args.debug);
    match portway_core::sys::raise_nofile_limit() {
        Ok((old, new)) if new > old => tracing::debug!("open files limit raised from {old} to {new}"),
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot raise the open files limit: {e}"),
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(worker_threads(std::env::var("PORTWAY_WORKERS").ok().as_deref(), std::thread::available_parallelism().map_or(1, |n| n.get())));
    let rt = builder.enable_all().build().context("starting the runtime")?;
    let result = rt.block_on(serve(source, built));
    // Connections still open are dropped now; don't wait on them to exit.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    result
}

/// Forwarding threads: `PORTWAY_WORKERS` when set to a positive number, else one
/// per two cores. Most of a forwarder's work is the kernel's TCP path, run on
/// behalf of both ends of every connection; a thread per core makes sockets
/// and tasks move between cores for little gain. Measured with fwdbench on 2
/// cores (3 rounds): one thread against two gave +9 % new connections per second
/// (-12 % CPU per connection), +11 % bulk at 8 streams, the same at 1 stream
/// and +2 % UDP queries per second.
fn worker_threads(env: Option<&str>, cores: usize) -> usize {
    match env.and_then(|v| v.trim().parse::<usize>().ok()).filter(|n| *n > 0) {
        Some(n) => n,
        None => (cores / 2).max(1),
    }
}

fn set_log_level(config: &mut Config, level: &str) {
    use serde_yaml::{Mapping, Value};
    let log = config.extra.entry("log".to_string()).or_insert_with(|| Value::Mapping(Mapping::new()));
    if !log.is_mapping() {
        *log = Value::Mapping(Mapping::new());
    }
    if let Value::Mapping(m) = log {
        m.insert(Value::from("level"), Value::from(level));
    }
}

async fn serve(source: Source, built: Built) -> Result<ExitCode> {
    use tokio::signal::unix::{signal, SignalKind};
    let engine = Engine::new();
    engine.set_disabled(built.disabled.clone());
    if built.config.services.is_empty() {
        bail!("{}: no services to run", built.label);
    }
    // Handlers go in before anything starts: once a status line is out, a signal
    // must find them (SIGHUP's default action would kill the process).
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    tracing::info!("running {}", built.label);
    let report = engine.apply(built.config).await;
    print_status(&engine);
    if !report.failed.is_empty() && engine.status().iter().all(|s| !matches!(s.state, ServiceState::Running)) {
        engine.shutdown().await;
        bail!("no service could start");
    }
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                match build(&source) {
                    Ok(b) => {
                        print_warnings(&b.warnings);
                        engine.set_disabled(b.disabled.clone());
                        let r = engine.apply(b.config).await;
                        tracing::info!(
                            "reloaded {}: {} started, {} restarted, {} stopped, {} unchanged, {} failed",
                            b.label, r.started.len(), r.restarted.len(), r.stopped.len(), r.unchanged.len(), r.failed.len()
                        );
                        print_status(&engine);
                    }
                    // A bad edit must not take down what runs: keep the old config.
                    Err(e) => tracing::error!("reload failed, keeping the running config: {e:#}"),
                }
            }
        }
    }
    tracing::info!("stopping");
    engine.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::worker_threads;

    #[test]
    fn one_forwarding_thread_per_two_cores_unless_portway_workers_says() {
        assert_eq!([1, 2, 3, 4, 16].map(|c| worker_threads(None, c)), [1, 1, 1, 2, 8]);
        assert_eq!(worker_threads(Some("3"), 2), 3);
        // Not a positive number: the default, not a runtime that cannot start.
        assert_eq!([Some("0"), Some("-1"), Some("many"), Some("")].map(|e| worker_threads(e, 8)), [4; 4]);
    }
}
