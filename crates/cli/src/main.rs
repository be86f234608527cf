//! `portway`: GOST's command line over the Portway engine.

mod args;

use anyhow::{anyhow, bail, Context, Result};
use portway_core::config::{build_from_cmd, load_str, Config, Warning};
use portway_core::stats::ServiceState;
use portway_core::store::ProfileStore;
use portway_core::Engine;
use std::io::{Read, Write};
use std::process::ExitCode;

const DEFAULT_PROFILE: &str = include_str!("default-profile.yaml");

/// Where the config comes from, so SIGHUP can read it again.
enum Source {
    Cmd { configs: Vec<String>, services: Vec<String>, nodes: Vec<String> },
    Profile { store: ProfileStore, name: String },
}

struct Built {
    config: Config,
    warnings: Vec<Warning>,
    disabled: Vec<String>,
    label: String,
}

fn read_config_arg(arg: &str) -> Result<(String, String)> {
    if arg == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("reading the config from stdin")?;
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
                warnings.extend(loaded.warnings.into_iter().map(|mut w| {
                    w.path = format!("{name}: {}", w.path);
                    w
                }));
                merge(&mut config, loaded.config)?;
                labels.push(name);
            }
            let cmd = build_from_cmd(services, nodes).map_err(|e| anyhow!("{e}"))?;
            merge(&mut config, cmd)?;
            if !services.is_empty() {
                labels.push("command line".into());
            }
            Ok(Built { config, warnings, disabled: Vec::new(), label: labels.join(" + ") })
        }
        Source::Profile { store, name } => {
            let loaded = store.load(name).map_err(|e| anyhow!("{e}"))?;
            let settings = store.settings().map_err(|e| anyhow!("{e}"))?;
            Ok(Built {
                config: loaded.config,
                warnings: loaded.warnings,
                disabled: settings.disabled.get(name).cloned().unwrap_or_default(),
                label: format!("profile {name:?} ({})", store.profile_path(name).display()),
            })
        }
    }
}

fn profile_source(name: Option<String>) -> Result<Source> {
    let store = ProfileStore::open_default().map_err(|e| anyhow!("{e}"))?;
    let settings = store.settings().map_err(|e| anyhow!("{e}"))?;
    let explicit = name.is_some();
    let name = name.or(settings.active_profile).unwrap_or_else(|| "default".into());
    if !store.exists(&name) {
        if explicit && name != "default" {
            bail!("no profile named {name:?} in {}", store.root().display());
        }
        store.save_text(&name, DEFAULT_PROFILE).map_err(|e| anyhow!("{e}"))?;
        eprintln!("portway: created profile {name:?} at {}", store.profile_path(&name).display());
    }
    Ok(Source::Profile { store, name })
}

fn print_warnings(w: &[Warning]) {
    for w in w {
        eprintln!("portway: warning: {w}");
    }
}

fn print_status(engine: &Engine) {
    let mut out = std::io::stdout().lock();
    for s in engine.status() {
        let line = match &s.state {
            ServiceState::Running => {
                let at: Vec<String> = s.listening.iter().map(|a| a.to_string()).collect();
                let to = if s.targets.is_empty() { "(target from the chain)".to_string() } else { s.targets.join(", ") };
                format!("{}: {} listening on {} -> {}", s.name, s.listener, at.join(", "), to)
            }
            ServiceState::Failed { error } => format!("{}: failed: {error}", s.name),
            ServiceState::Disabled => format!("{}: switched off", s.name),
            ServiceState::Stopped => format!("{}: stopped", s.name),
        };
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}

fn main() -> ExitCode {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("portway: {e}\nRun 'portway --help' for usage.");
            return ExitCode::from(2);
        }
    };
    if args.help {
        print!("{}", args::USAGE);
        return ExitCode::SUCCESS;
    }
    if args.version {
        println!("portway {} (GOST v3 compatible; {} {})", env!("CARGO_PKG_VERSION"), std::env::consts::OS, std::env::consts::ARCH);
        return ExitCode::SUCCESS;
    }
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("portway: {e:#}");
            ExitCode::from(1)
        }
    }
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
    let built = build(&source)?;
    print_warnings(&built.warnings);
    if let Some(fmt) = &args.output {
        let text = if fmt == "json" { built.config.to_json() + "\n" } else { built.config.to_yaml() };
        print!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    portway_core::logging::init(args.debug);
    match portway_core::sys::raise_nofile_limit() {
        Ok((old, new)) if new > old => tracing::debug!("open files limit raised from {old} to {new}"),
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot raise the open files limit: {e}"),
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    rt.block_on(serve(source, built))
}

async fn serve(source: Source, built: Built) -> Result<ExitCode> {
    use tokio::signal::unix::{signal, SignalKind};
    let engine = Engine::new();
    engine.set_disabled(built.disabled.clone());
    if built.config.services.is_empty() {
        bail!("{}: no services to run", built.label);
    }
    tracing::info!("running {}", built.label);
    let report = engine.apply(built.config).await;
    print_status(&engine);
    if !report.failed.is_empty() && engine.status().iter().all(|s| !matches!(s.state, ServiceState::Running)) {
        engine.shutdown().await;
        bail!("no service could start");
    }
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
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
