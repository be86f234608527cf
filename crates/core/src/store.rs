//! Profiles on disk: each profile is a GOST v3 YAML file in the platform config
//! directory (`~/.config/portway/profiles/NAME.yaml` on Linux), so exporting is a
//! copy and GOST runs it as is. What GOST's schema has no place for (which profile
//! is active, which rules are switched off) lives in `settings.json` beside them.
//!
//! Every write goes to a temporary file that is fsynced and renamed over the old
//! one, so a crash leaves either the old or the new file. A file that does not
//! parse is reported with its line and never overwritten.

use crate::config::{load_str, Config, LoadError, Loaded};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Load(#[from] LoadError),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("no profile named {0:?}")]
    NoSuchProfile(String),
    #[error("a profile named {0:?} already exists")]
    Exists(String),
    #[error("invalid profile name {0:?}: use letters, digits, spaces, '-', '_' or '.' (not starting with '.')")]
    BadName(String),
    #[error("{path}: settings file is corrupt ({message}); not overwritten — fix or delete it")]
    CorruptSettings { path: String, message: String },
    #[error("profile {name:?} on disk does not parse ({error}); not overwritten — fix, rename or delete it first")]
    CorruptProfile { name: String, error: String },
}

/// State GOST's schema has no place for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_profile: Option<String>,
    /// Per profile, the services switched off.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub disabled: BTreeMap<String, Vec<String>>,
    /// The desktop app's preferences (tray, theme, …); files written before they
    /// existed load with the defaults.
    #[serde(default)]
    pub desktop: DesktopSettings,
}

/// The window's colours: the system's (prefers-color-scheme) or fixed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub enum Theme {
    #[default]
    System,
    Light,
    Dark,
}

/// How much the engine logs (and the Logs view can show); most severe first, so
/// `a <= b` means "a is at least as severe as b".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// The level as `tracing` names it (`WARN`, `info` …); unknown names read as info.
    pub fn parse(s: &str) -> LogLevel {
        match s.to_ascii_lowercase().as_str() {
            "error" => LogLevel::Error,
            "warn" | "warning" => LogLevel::Warn,
            "debug" => LogLevel::Debug,
            "trace" => LogLevel::Trace,
            _ => LogLevel::Info,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// The stats interval's bounds, in milliseconds.
pub const STATS_INTERVAL_MS: std::ops::RangeInclusive<u64> = 250..=10_000;

/// The desktop app's preferences, in `settings.json` under `desktop`. Each field
/// has a default, so a file that lacks some (older, or edited by hand) loads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
pub struct DesktopSettings {
    /// Closing the window hides it and keeps the rules running (when there is a tray).
    pub close_to_tray: bool,
    /// Start with the window hidden (when there is a tray).
    pub start_minimized: bool,
    /// Start when the user logs in.
    pub start_at_login: bool,
    pub theme: Theme,
    /// The engine's stats period, 250 ms to 10 s.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub stats_interval_ms: u64,
    pub log_level: LogLevel,
    /// A desktop notification when a rule fails or recovers.
    pub notifications: bool,
}

impl Default for DesktopSettings {
    fn default() -> Self {
        DesktopSettings {
            close_to_tray: true,
            start_minimized: false,
            start_at_login: false,
            theme: Theme::System,
            stats_interval_ms: 1000,
            log_level: LogLevel::Info,
            notifications: true,
        }
    }
}

impl DesktopSettings {
    /// The stats interval within its bounds (a hand-edited file may hold anything).
    pub fn stats_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.stats_interval_ms.clamp(*STATS_INTERVAL_MS.start(), *STATS_INTERVAL_MS.end()))
    }
}

pub struct ProfileStore {
    root: PathBuf,
    /// Serialises read-modify-write of the settings file: commands run on several
    /// threads, and two concurrent updates must not lose one another.
    settings_lock: std::sync::Mutex<()>,
}

fn io_err(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io { path: path.display().to_string(), source }
}

/// Writes `data` to `path` atomically: temp file in the same folder, fsync, rename,
/// fsync the folder.
pub fn atomic_write(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '));
    if ok { Ok(()) } else { Err(StoreError::BadName(name.to_string())) }
}

impl ProfileStore {
    /// The store in the platform config dir, or `$PORTWAY_CONFIG_DIR` when set.
    pub fn open_default() -> Result<ProfileStore, StoreError> {
        config_dir().map(ProfileStore::open)
    }
}

/// Portway's config dir (profiles, settings, the sshd host key): the platform's,
/// or `$PORTWAY_CONFIG_DIR` when set.
pub fn config_dir() -> Result<PathBuf, StoreError> {
    {
        if let Some(d) = std::env::var_os("PORTWAY_CONFIG_DIR") {
            return Ok(PathBuf::from(d));
        }
        let dirs = directories::ProjectDirs::from("", "", "portway").ok_or_else(|| StoreError::Io {
            path: "~".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no home directory to keep profiles in"),
        })?;
        Ok(dirs.config_dir().to_path_buf())
    }
}

impl ProfileStore {
    pub fn open(root: PathBuf) -> ProfileStore {
        ProfileStore { root, settings_lock: std::sync::Mutex::new(()) }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn profiles_dir(&self) -> PathBuf {
        self.root.join("profiles")
    }

    pub fn profile_path(&self, name: &str) -> PathBuf {
        self.profiles_dir().join(format!("{name}.yaml"))
    }

    fn settings_path(&self) -> PathBuf {
        self.root.join("settings.json")
    }

    /// Profile names, sorted.
    pub fn list(&self) -> Result<Vec<String>, StoreError> {
        let dir = self.profiles_dir();
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&dir, e)),
        };
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| !n.starts_with('.'))
            .filter_map(|n| n.strip_suffix(".yaml").map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    pub fn exists(&self, name: &str) -> bool {
        self.profile_path(name).exists()
    }

    pub fn load(&self, name: &str) -> Result<Loaded, StoreError> {
        check_name(name)?;
        let path = self.profile_path(name);
        let src = match std::fs::read_to_string(&path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StoreError::NoSuchProfile(name.into())),
            Err(e) => return Err(io_err(&path, e)),
        };
        Ok(load_str(&path.display().to_string(), &src)?)
    }

    /// The profile file's text, as saved (export, duplicate).
    pub fn read_text(&self, name: &str) -> Result<String, StoreError> {
        check_name(name)?;
        let path = self.profile_path(name);
        match std::fs::read_to_string(&path) {
            Ok(s) => Ok(s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NoSuchProfile(name.into())),
            Err(e) => Err(io_err(&path, e)),
        }
    }

    /// Saves atomically. Refuses to replace a file that does not parse (it may hold
    /// hand edits worth keeping).
    pub fn save(&self, name: &str, config: &Config) -> Result<(), StoreError> {
        check_name(name)?;
        let path = self.profile_path(name);
        if let Ok(src) = std::fs::read_to_string(&path) {
            if let Err(e) = load_str(&path.display().to_string(), &src) {
                return Err(StoreError::CorruptProfile { name: name.into(), error: e.to_string() });
            }
        }
        atomic_write(&path, config.to_yaml().as_bytes()).map_err(|e| io_err(&path, e))
    }

    /// Saves a profile as raw text (import of a file as it is), after checking it parses.
    pub fn save_text(&self, name: &str, text: &str) -> Result<Loaded, StoreError> {
        check_name(name)?;
        let path = self.profile_path(name);
        let loaded = load_str(&path.display().to_string(), text)?;
        atomic_write(&path, text.as_bytes()).map_err(|e| io_err(&path, e))?;
        Ok(loaded)
    }

    pub fn rename(&self, from: &str, to: &str) -> Result<(), StoreError> {
        check_name(from)?;
        check_name(to)?;
        let (a, b) = (self.profile_path(from), self.profile_path(to));
        if !a.exists() {
            return Err(StoreError::NoSuchProfile(from.into()));
        }
        if b.exists() {
            return Err(StoreError::Exists(to.into()));
        }
        std::fs::rename(&a, &b).map_err(|e| io_err(&a, e))?;
        self.update_settings(|s| {
            if s.active_profile.as_deref() == Some(from) {
                s.active_profile = Some(to.into());
            }
            if let Some(d) = s.disabled.remove(from) {
                s.disabled.insert(to.into(), d);
            }
        })
    }

    pub fn delete(&self, name: &str) -> Result<(), StoreError> {
        check_name(name)?;
        let p = self.profile_path(name);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StoreError::NoSuchProfile(name.into())),
            Err(e) => return Err(io_err(&p, e)),
        }
        self.update_settings(|s| {
            if s.active_profile.as_deref() == Some(name) {
                s.active_profile = None;
            }
            s.disabled.remove(name);
        })
    }

    /// Settings; a missing file is the default, a corrupt one an error (never replaced).
    pub fn settings(&self) -> Result<Settings, StoreError> {
        let p = self.settings_path();
        match std::fs::read_to_string(&p) {
            Ok(s) => serde_json::from_str(&s).map_err(|e| StoreError::CorruptSettings { path: p.display().to_string(), message: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(e) => Err(io_err(&p, e)),
        }
    }

    pub fn save_settings(&self, s: &Settings) -> Result<(), StoreError> {
        let p = self.settings_path();
        // Reading first makes a corrupt file an error instead of silently replacing it.
        if p.exists() {
            self.settings()?;
        }
        let data = serde_json::to_vec_pretty(s).map_err(|e| io_err(&p, std::io::Error::other(e)))?;
        atomic_write(&p, &data).map_err(|e| io_err(&p, e))
    }

    /// Reads the settings, lets `f` change them and writes them back atomically,
    /// one update at a time.
    pub fn update_settings<T>(&self, f: impl FnOnce(&mut Settings) -> T) -> Result<T, StoreError> {
        let _g = self.settings_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut s = self.settings()?;
        let out = f(&mut s);
        self.save_settings(&s)?;
        Ok(out)
    }

    pub fn set_active(&self, name: &str) -> Result<(), StoreError> {
        if !self.exists(name) {
            return Err(StoreError::NoSuchProfile(name.into()));
        }
        self.update_settings(|s| s.active_profile = Some(name.into()))
    }

    pub fn set_service_enabled(&self, profile: &str, service: &str, enabled: bool) -> Result<(), StoreError> {
        self.update_settings(|s| {
            let list = s.disabled.entry(profile.to_string()).or_default();
            list.retain(|n| n != service);
            if !enabled {
                list.push(service.to_string());
            }
            if list.is_empty() {
                s.disabled.remove(profile);
            }
        })
    }

    /// Saves the desktop preferences, leaving the rest of the settings as they are.
    pub fn set_desktop(&self, desktop: &DesktopSettings) -> Result<(), StoreError> {
        self.update_settings(|s| s.desktop = desktop.clone())
    }
}

/// The profile written on first run when no profile exists (CLI and app alike).
pub const DEFAULT_PROFILE: &str = include_str!("default-profile.yaml");
