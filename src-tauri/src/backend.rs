//! What the window's commands do, without Tauri: profile store + engine on the
//! app's own tokio runtime. Commands are thin wrappers over these methods, and the
//! tests call them directly with a real engine and real sockets.

use portway_core::config::{build_from_cmd, cmdline, load_str, Config, Loaded};
use portway_core::engine::ServiceStatus;
use portway_core::rule::{rules_of, upsert, Rule};
use portway_core::stats::{Event, ServiceState};
use portway_core::store::{ProfileStore, StoreError, DEFAULT_PROFILE};
use portway_core::Engine;
use portway_ipc::*;
use std::sync::Mutex;
use tokio::runtime::Runtime;
use tokio::sync::broadcast;

pub struct Backend {
    /// The engine's own runtime: forwarding never shares threads with the UI's.
    pub(crate) rt: Runtime,
    pub(crate) engine: Engine,
    pub(crate) store: ProfileStore,
    pub(crate) active: Mutex<String>,
    /// Load warnings of the active profile.
    warnings: Mutex<Vec<String>>,
    /// Recently closed connections and the Connections streams (conns.rs).
    pub(crate) conns: std::sync::Arc<crate::conns::ConnTracker>,
}

pub(crate) fn store_err(e: StoreError) -> AppError {
    match e {
        StoreError::Load(l) => AppError { code: ErrorCode::Parse, message: l.to_string(), rule: None, field: None, retryable: false },
        StoreError::NoSuchProfile(n) => AppError::new(ErrorCode::NotFound, format!("no profile named {n:?}")),
        StoreError::Exists(n) => name_taken(&n),
        StoreError::BadName(_) => AppError { field: Some("name".into()), ..AppError::new(ErrorCode::Invalid, e.to_string()) },
        other => AppError { retryable: true, ..AppError::new(ErrorCode::Storage, other.to_string()) },
    }
}

/// A profile name that is taken, reported on the form's name field.
fn name_taken(name: &str) -> AppError {
    AppError { field: Some("name".into()), ..AppError::new(ErrorCode::AlreadyExists, format!("a profile named {name:?} already exists")) }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A pasted `gost -L … -F …` line (with or without the program name); `None` when
/// the text is not a command line.
fn parse_cmdline(text: &str) -> Option<Result<Config, AppError>> {
    let t = text.trim();
    let looks = t.starts_with("gost") || t.starts_with("./gost") || t.starts_with("portway") || t.starts_with("-L") || t.starts_with("-F");
    if !looks {
        return None;
    }
    let parse = || {
        let a = cmdline::parse_line(t).map_err(|e| AppError::new(ErrorCode::Parse, format!("command line: {e}")))?;
        if !a.configs.is_empty() || a.profile.is_some() || a.output.is_some() {
            return Err(AppError::new(ErrorCode::Parse, "command line: only -L and -F can go into an imported profile (not -C, -O or --profile)"));
        }
        build_from_cmd(&a.services, &a.nodes).map_err(|e| AppError::new(ErrorCode::Parse, e.to_string()))
    };
    Some(parse())
}

pub(crate) fn state_of(s: &ServiceStatus) -> (RuleState, Option<String>) {
    match &s.state {
        ServiceState::Running => (RuleState::Running, None),
        ServiceState::Stopped => (RuleState::Stopped, None),
        ServiceState::Disabled => (RuleState::Disabled, None),
        ServiceState::Failed { error } => (RuleState::Failed, Some(error.clone())),
    }
}

impl Backend {
    /// Opens the store (creating the default profile on first run) and runs the
    /// active profile.
    pub fn start(store: ProfileStore) -> Result<Backend, AppError> {
        let b = Backend::open(store)?;
        b.start_rules();
        Ok(b)
    }

    /// The engine and the store, with no rule started yet: the app starts them
    /// once it knows it is the only Portway of the session, so a second launch
    /// (which only hands its arguments over and exits) never binds a port or
    /// dials a remote server.
    pub fn open(store: ProfileStore) -> Result<Backend, AppError> {
        let rt = tokio::runtime::Builder::new_multi_thread().thread_name("portway-engine").enable_all().build().map_err(|e| AppError::new(ErrorCode::Engine, format!("cannot start the engine: {e}")))?;
        let engine = {
            let _g = rt.enter();
            Engine::new()
        };
        // Before any rule runs, so "recently closed" covers the app's whole life.
        let conns = crate::conns::ConnTracker::start(&rt, &engine);
        let settings = store.settings().map_err(store_err)?;
        let mut active = settings.active_profile.clone().unwrap_or_else(|| "default".into());
        if !store.exists(&active) {
            let names = store.list().map_err(store_err)?;
            match names.first() {
                Some(n) if settings.active_profile.is_none() => active = n.clone(),
                _ => {
                    active = "default".into();
                    if !store.exists("default") {
                        store.save_text("default", DEFAULT_PROFILE).map_err(store_err)?;
                    }
                }
            }
        }
        Ok(Backend { rt, engine, store, active: Mutex::new(active), warnings: Mutex::new(Vec::new()), conns })
    }

    /// Runs the active profile. A profile that does not parse must not keep the
    /// window from opening: the snapshot shows the error, nothing is overwritten.
    pub fn start_rules(&self) {
        let active = lock(&self.active).clone();
        if let Err(e) = self.activate(&active) {
            lock(&self.warnings).push(format!("profile {active:?} could not be loaded: {}", e.message));
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }

    pub(crate) fn load_active(&self) -> Result<(String, Loaded), AppError> {
        let name = lock(&self.active).clone();
        let loaded = self.store.load(&name).map_err(store_err)?;
        Ok((name, loaded))
    }

    /// The rules of `profile` switched off in the settings.
    fn disabled(&self, profile: &str) -> Result<Vec<String>, AppError> {
        let settings = self.store.settings().map_err(store_err)?;
        Ok(settings.disabled.get(profile).cloned().unwrap_or_default())
    }

    /// Runs `cfg` (profile `profile`) as a diff against what runs, keeping the
    /// profile's switched-off rules off.
    pub(crate) fn apply(&self, profile: &str, cfg: Config) -> Result<(), AppError> {
        self.engine.set_disabled(self.disabled(profile)?);
        let e = self.engine.clone();
        self.rt.block_on(async move { e.apply(cfg).await });
        Ok(())
    }

    /// Loads `name`, makes it the active profile and runs it.
    fn activate(&self, name: &str) -> Result<(), AppError> {
        let loaded = self.store.load(name).map_err(store_err)?;
        self.store.set_active(name).map_err(store_err)?;
        *lock(&self.active) = name.to_string();
        *lock(&self.warnings) = loaded.warnings.iter().map(|w| w.to_string()).collect();
        self.apply(name, loaded.config)
    }

    pub fn snapshot(&self) -> Result<AppSnapshot, AppError> {
        let active = lock(&self.active).clone();
        let profiles = self.store.list().map_err(store_err)?;
        let cfg = self.engine.config();
        let (rules, other) = rules_of(&cfg);
        let status = self.engine.status();
        let views = rules
            .into_iter()
            .map(|r| {
                let st = status.iter().find(|s| s.name == r.name);
                let (state, error) = st.map(state_of).unwrap_or((RuleState::Stopped, None));
                RuleView {
                    gost_cmdline: r.gost_cmdline(&cfg),
                    enabled: st.map(|s| s.enabled).unwrap_or(true),
                    state,
                    error,
                    listening: st.map(|s| s.listening.iter().map(|a| a.to_string()).collect()).unwrap_or_default(),
                    rule: r,
                }
            })
            .collect();
        Ok(AppSnapshot {
            profiles,
            active_profile: active,
            rules: views,
            chains: cfg.chains.iter().map(|c| c.name.clone()).collect(),
            other_services: other,
            warnings: lock(&self.warnings).clone(),
        })
    }

    /// Validates, writes the profile atomically, applies it as a diff.
    pub fn rule_save(&self, draft: RuleDraft, original: Option<String>) -> Result<AppSnapshot, AppError> {
        let (name, loaded) = self.load_active()?;
        let rule: Rule = draft;
        let cfg = upsert(&loaded.config, &rule, original.as_deref()).map_err(|e| AppError {
            code: ErrorCode::Invalid,
            message: e.message.clone(),
            rule: Some(rule.name.clone()),
            field: Some(e.field.clone()),
            retryable: false,
        })?;
        self.store.save(&name, &cfg).map_err(store_err)?;
        if let Some(o) = original.filter(|o| *o != rule.name) {
            // A renamed rule keeps its on/off state.
            if self.disabled(&name)?.contains(&o) {
                self.store.set_service_enabled(&name, &o, true).map_err(store_err)?;
                self.store.set_service_enabled(&name, &rule.name, false).map_err(store_err)?;
            }
        }
        self.apply(&name, cfg)?;
        self.snapshot()
    }

    pub fn rule_delete(&self, rule: &str) -> Result<AppSnapshot, AppError> {
        let (name, loaded) = self.load_active()?;
        let mut cfg = loaded.config;
        let before = cfg.services.len();
        cfg.services.retain(|s| s.name != rule);
        if cfg.services.len() == before {
            return Err(AppError { rule: Some(rule.into()), ..AppError::new(ErrorCode::NotFound, format!("no rule named {rule:?}")) });
        }
        self.store.save(&name, &cfg).map_err(store_err)?;
        self.store.set_service_enabled(&name, rule, true).map_err(store_err)?;
        self.apply(&name, cfg)?;
        self.snapshot()
    }

    pub fn rule_set_enabled(&self, rule: &str, enabled: bool) -> Result<AppSnapshot, AppError> {
        let name = lock(&self.active).clone();
        let e = self.engine.clone();
        let r = rule.to_string();
        self.rt
            .block_on(async move { e.set_enabled(&r, enabled).await })
            .map_err(|err| AppError { rule: Some(rule.into()), ..AppError::new(ErrorCode::NotFound, err.to_string()) })?;
        self.store.set_service_enabled(&name, rule, enabled).map_err(store_err)?;
        self.snapshot()
    }

    pub fn rule_preview(&self, draft: RuleDraft) -> Result<RulePreview, AppError> {
        let cfg = self.engine.config();
        let rule: Rule = draft;
        let base = cfg.services.iter().find(|s| s.name == rule.name);
        let svc = rule.to_service(base);
        let mut one = Config { services: vec![svc], ..Default::default() };
        if let Some(c) = cfg.chain(&rule.chain) {
            one.chains.push(c.clone());
        }
        Ok(RulePreview { cmdline: rule.gost_cmdline(&cfg), yaml: one.to_yaml() })
    }

    pub fn profile_switch(&self, name: &str) -> Result<AppSnapshot, AppError> {
        self.activate(name)?;
        self.snapshot()
    }

    pub fn profile_create(&self, name: &str) -> Result<AppSnapshot, AppError> {
        if self.store.exists(name) {
            return Err(name_taken(name));
        }
        self.store.save_text(name, "services: []\n").map_err(store_err)?;
        self.profile_switch(name)
    }

    fn parse_import(&self, text: &str, file_name: Option<&str>) -> Result<(String, Config, Vec<String>), AppError> {
        if let Some(r) = parse_cmdline(text) {
            return r.map(|c| {
                let warnings = portway_core::config::url::cmd_warnings(&c).iter().map(|w| w.to_string()).collect();
                ("cmdline".to_string(), c, warnings)
            });
        }
        let name = file_name.unwrap_or("pasted.yaml");
        let format = if portway_core::config::load::Format::guess(name, text) == portway_core::config::load::Format::Json { "json" } else { "yaml" };
        let loaded = load_str(name, text).map_err(|e| AppError::new(ErrorCode::Parse, e.to_string()))?;
        Ok((format.to_string(), loaded.config, loaded.warnings.iter().map(|w| w.to_string()).collect()))
    }

    pub fn profile_import_preview(&self, text: &str, file_name: Option<&str>) -> Result<ImportPreview, AppError> {
        let (format, cfg, mut warnings) = self.parse_import(text, file_name)?;
        for s in &cfg.services {
            if let Err(e) = portway_core::config::validate::plan_service(&cfg, s) {
                warnings.push(format!("will not run yet: {e}"));
            }
        }
        let (rules, other) = rules_of(&cfg);
        Ok(ImportPreview { format, rules, other_services: other, chains: cfg.chains.iter().map(|c| c.name.clone()).collect(), warnings })
    }

    /// Writes the import as profile `name` (a file verbatim, a command line as GOST
    /// YAML) and switches to it.
    pub fn profile_import(&self, text: &str, file_name: Option<&str>, name: &str) -> Result<AppSnapshot, AppError> {
        if self.store.exists(name) {
            return Err(name_taken(name));
        }
        let (format, cfg, _) = self.parse_import(text, file_name)?;
        if format == "cmdline" {
            self.store.save(name, &cfg).map_err(store_err)?;
        } else {
            self.store.save_text(name, text).map_err(store_err)?;
        }
        self.profile_switch(name)
    }

    pub fn profile_duplicate(&self, name: &str, new_name: &str) -> Result<AppSnapshot, AppError> {
        let text = self.store.read_text(name).map_err(store_err)?;
        if self.store.exists(new_name) {
            return Err(name_taken(new_name));
        }
        self.store.save_text(new_name, &text).map_err(store_err)?;
        self.snapshot()
    }

    /// Renames a profile; the active one stays active under its new name.
    pub fn profile_rename(&self, name: &str, new_name: &str) -> Result<AppSnapshot, AppError> {
        self.store.rename(name, new_name).map_err(|e| {
            let e = store_err(e);
            // Only a bad or taken new name is the name field's fault.
            let field = matches!(e.code, ErrorCode::Invalid | ErrorCode::AlreadyExists).then(|| "name".to_string());
            AppError { field, ..e }
        })?;
        let mut active = lock(&self.active);
        if *active == name {
            *active = new_name.to_string();
        }
        drop(active);
        self.snapshot()
    }

    /// Deletes a profile that is not the active one.
    pub fn profile_delete(&self, name: &str) -> Result<AppSnapshot, AppError> {
        if *lock(&self.active) == name {
            return Err(AppError::new(ErrorCode::Invalid, format!("{name:?} is the active profile: switch to another one before deleting it")));
        }
        self.store.delete(name).map_err(store_err)?;
        self.snapshot()
    }

    pub fn profile_export(&self, name: &str) -> Result<ProfileExport, AppError> {
        let yaml = self.store.read_text(name).map_err(store_err)?;
        let cmdline = load_str(&format!("{name}.yaml"), &yaml).ok().and_then(|l| portway_core::rule::profile_cmdline(&l.config));
        Ok(ProfileExport { name: name.to_string(), yaml, cmdline })
    }

    /// Writes the profile as GOST YAML to `path` (chosen in a save dialog), atomically.
    pub fn profile_export_to(&self, name: &str, path: &std::path::Path) -> Result<(), AppError> {
        // The window may only write GOST profiles, whatever it asks for.
        let ext = path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase());
        if !matches!(ext.as_deref(), Some("yaml") | Some("yml")) || !path.is_absolute() {
            return Err(AppError { field: Some("path".into()), ..AppError::new(ErrorCode::Invalid, format!("{}: export to an absolute path ending in .yaml or .yml", path.display())) });
        }
        let e = self.profile_export(name)?;
        portway_core::store::atomic_write(path, e.yaml.as_bytes()).map_err(|err| AppError { retryable: true, ..AppError::new(ErrorCode::Storage, format!("{}: {err}", path.display())) })
    }

    /// Sends one frame per stats tick to `send` until it returns false.
    pub fn stream_stats<F: FnMut(StatsFrame) -> bool + Send + 'static>(&self, mut send: F) {
        let mut rx = self.engine.subscribe();
        let engine = self.engine.clone();
        self.rt.spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(Event::Stats { time, services }) => {
                        let status = engine.status();
                        let chains = crate::chains::chain_health(&services);
                        let frame = StatsFrame {
                            time,
                            chains,
                            rules: services
                                .into_iter()
                                .map(|s| {
                                    let (state, error) = status.iter().find(|st| st.name == s.service).map(state_of).unwrap_or((RuleState::Stopped, None));
                                    RuleStats {
                                        name: s.service,
                                        active: s.active,
                                        total: s.total,
                                        bytes_in: s.bytes_in,
                                        bytes_out: s.bytes_out,
                                        rate_in: s.rate_in,
                                        rate_out: s.rate_out,
                                        errors: s.errors,
                                        state,
                                        error,
                                        last_error_at: s.last_error.as_ref().map(|e| e.0),
                                        last_error: s.last_error.map(|e| e.1),
                                    }
                                })
                                .collect(),
                        };
                        if !send(frame) {
                            return;
                        }
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return,
                }
            }
        });
    }

    pub fn shutdown(&self) {
        let e = self.engine.clone();
        self.rt.block_on(async move { e.shutdown().await });
    }
}
