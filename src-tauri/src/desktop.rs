//! The desktop side without a display: the tray's menu as data ([`tray_model`]),
//! what each entry does ([`Backend::tray_activate`]), the desktop preferences, and
//! when to notify ([`notice_for`]). `tray.rs` only renders and wires these up, so
//! all of it is testable with a real engine and no window.

use crate::backend::{lock, store_err, Backend};
use portway_core::stats::ServiceState;
use portway_ipc::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// App → window: the state changed outside the window (tray, engine); re-read it.
pub const SNAPSHOT_CHANGED: &str = "snapshot-changed";
/// Window → app: a command changed the state; the tray follows.
pub const WINDOW_CHANGED: &str = "window-changed";

pub const RULE_PREFIX: &str = "rule:";
pub const PROFILE_PREFIX: &str = "profile:";
pub const STOP_ALL: &str = "stop-all";
pub const OPEN: &str = "open";
pub const QUIT: &str = "quit";

/// What the glue does after an entry was activated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayAction {
    /// The engine or the profile changed: rebuild the tray, tell the window.
    Changed,
    ShowWindow,
    Quit,
}

fn item(id: impl Into<String>, label: impl Into<String>, kind: TrayItemKind) -> TrayItem {
    TrayItem { id: id.into(), label: label.into(), kind, checked: false, enabled: true, children: Vec::new() }
}

fn label(id: &str, text: impl Into<String>) -> TrayItem {
    TrayItem { enabled: false, ..item(id, text, TrayItemKind::Label) }
}

fn separator(n: usize) -> TrayItem {
    TrayItem { enabled: false, ..item(format!("sep-{n}"), "", TrayItemKind::Separator) }
}

/// The tray for `snap`: one check entry per rule of the active profile (checked =
/// switched on), the profiles as a radio-like submenu, Stop all, Open, Quit.
pub fn tray_model(snap: &AppSnapshot) -> TrayModel {
    let count = |s: RuleState| snap.rules.iter().filter(|r| r.state == s).count();
    let (running, failing) = (count(RuleState::Running), count(RuleState::Failed));
    let off = snap.rules.len() - running - failing;
    let icon = if failing > 0 {
        TrayIconKind::Failing
    } else if running > 0 {
        TrayIconKind::Running
    } else {
        TrayIconKind::Idle
    };
    let mut parts = vec![format!("{running} running")];
    if failing > 0 {
        parts.push(format!("{failing} failing"));
    }
    if off > 0 {
        parts.push(format!("{off} off"));
    }
    let tooltip = format!("Portway ({}): {}", snap.active_profile, parts.join(", "));

    let mut items = Vec::new();
    if snap.rules.is_empty() {
        items.push(label("no-rules", "No rules in this profile"));
    }
    for r in &snap.rules {
        let text = match r.state {
            RuleState::Failed => format!("{} (failed)", r.rule.name),
            _ => r.rule.name.clone(),
        };
        items.push(TrayItem { checked: r.enabled, ..item(format!("{RULE_PREFIX}{}", r.rule.name), text, TrayItemKind::Check) });
    }
    items.push(separator(1));
    let profiles = snap
        .profiles
        .iter()
        .map(|p| TrayItem { checked: *p == snap.active_profile, ..item(format!("{PROFILE_PREFIX}{p}"), p.clone(), TrayItemKind::Check) })
        .collect();
    items.push(TrayItem { children: profiles, ..item("profiles", "Profile", TrayItemKind::Submenu) });
    items.push(TrayItem { enabled: snap.rules.iter().any(|r| r.enabled), ..item(STOP_ALL, "Stop all", TrayItemKind::Action) });
    items.push(separator(2));
    items.push(item(OPEN, "Open Portway", TrayItemKind::Action));
    items.push(item(QUIT, "Quit", TrayItemKind::Action));
    TrayModel { icon, tooltip, items }
}

impl Backend {
    /// The tray of the current state.
    pub fn tray(&self) -> Result<TrayModel, AppError> {
        Ok(tray_model(&self.snapshot()?))
    }

    /// Does what the tray entry `id` says: `rule:NAME` switches the rule on or off
    /// (kept in the settings, as the window's switch does), `profile:NAME` makes it
    /// the active profile, `stop-all` switches every rule of the profile off.
    pub fn tray_activate(&self, id: &str) -> Result<TrayAction, AppError> {
        if let Some(rule) = id.strip_prefix(RULE_PREFIX) {
            let enabled = self.engine.service_status(rule).map(|s| s.enabled).ok_or_else(|| AppError { rule: Some(rule.into()), ..AppError::new(ErrorCode::NotFound, format!("no rule named {rule:?}")) })?;
            self.rule_set_enabled(rule, !enabled)?;
            return Ok(TrayAction::Changed);
        }
        if let Some(profile) = id.strip_prefix(PROFILE_PREFIX) {
            if *lock(&self.active) != profile {
                self.profile_switch(profile)?;
            }
            return Ok(TrayAction::Changed);
        }
        match id {
            STOP_ALL => {
                let snap = self.snapshot()?;
                // Every rule is tried; the first failure is reported after.
                let mut first_err = None;
                for r in snap.rules.iter().filter(|r| r.enabled) {
                    if let Err(e) = self.rule_set_enabled(&r.rule.name, false) {
                        tracing::warn!(rule = %r.rule.name, "stop all: {}", e.message);
                        first_err.get_or_insert(e);
                    }
                }
                match first_err {
                    Some(e) => Err(e),
                    None => Ok(TrayAction::Changed),
                }
            }
            OPEN => Ok(TrayAction::ShowWindow),
            QUIT => Ok(TrayAction::Quit),
            _ => Err(AppError::new(ErrorCode::NotFound, format!("no tray entry {id:?}"))),
        }
    }

    /// The saved desktop preferences.
    pub fn desktop_settings(&self) -> Result<DesktopSettings, AppError> {
        Ok(self.store.settings().map_err(store_err)?.desktop)
    }

    /// Checks and saves the preferences (atomically) and applies what the engine
    /// does with them: the stats interval and the log level. The window applies the
    /// theme; the glue the tray and autostart ones.
    pub fn desktop_settings_set(&self, s: DesktopSettings) -> Result<DesktopSettings, AppError> {
        if !STATS_INTERVAL_MS.contains(&s.stats_interval_ms) {
            return Err(AppError {
                field: Some("statsIntervalMs".into()),
                ..AppError::new(ErrorCode::Invalid, format!("the stats interval must be between {} ms and {} s", STATS_INTERVAL_MS.start(), STATS_INTERVAL_MS.end() / 1000))
            });
        }
        self.store.set_desktop(&s).map_err(store_err)?;
        self.apply_desktop_settings(&s);
        Ok(s)
    }

    /// Applies the engine's part of `s` (at start and after a change).
    pub fn apply_desktop_settings(&self, s: &DesktopSettings) {
        self.engine.set_tick(s.stats_interval());
        // Fails only when logging was not set up (tests): nothing to change then.
        if let Err(e) = portway_core::logging::set_level(s.log_level.as_str()) {
            tracing::debug!("log level not applied: {e}");
        }
    }
}

/// At most one notification per rule in this period.
pub const NOTICE_QUIET: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeKind {
    Failed { error: String },
    Recovered,
}

/// Whether a rule's state change deserves a notification: a rule that fails
/// (from any other state), or one that runs again after failing — when
/// notifications are on and the rule has had none for [`NOTICE_QUIET`], so a
/// flapping rule does not flood the desktop. Switching a rule off is the user's
/// own doing and says nothing.
pub fn notice_for(enabled: bool, was_failed: bool, state: &ServiceState, last_notice: Option<Instant>, now: Instant) -> Option<NoticeKind> {
    if !enabled {
        return None;
    }
    let kind = match state {
        ServiceState::Failed { error } if !was_failed => NoticeKind::Failed { error: error.clone() },
        ServiceState::Running if was_failed => NoticeKind::Recovered,
        _ => return None,
    };
    match last_notice {
        Some(t) if now.saturating_duration_since(t) < NOTICE_QUIET => None,
        _ => Some(kind),
    }
}

/// Follows each rule's state through the engine's `ServiceState` events and
/// decides with [`notice_for`].
#[derive(Default)]
pub struct NoticeGate {
    failed: HashMap<String, bool>,
    last: HashMap<String, Instant>,
}

impl NoticeGate {
    pub fn on_state(&mut self, notifications: bool, rule: &str, state: &ServiceState, now: Instant) -> Option<NoticeKind> {
        let was_failed = self.failed.get(rule).copied().unwrap_or(false);
        let notice = notice_for(notifications, was_failed, state, self.last.get(rule).copied(), now);
        // A stop between failure and recovery ends the episode: a later start is not
        // a recovery worth telling.
        self.failed.insert(rule.to_string(), matches!(state, ServiceState::Failed { .. }));
        if notice.is_some() {
            self.last.insert(rule.to_string(), now);
        }
        notice
    }
}

/// The title and body of a notification.
pub fn notice_text(rule: &str, kind: &NoticeKind) -> (String, String) {
    match kind {
        NoticeKind::Failed { error } => (format!("Rule “{rule}” failed"), error.clone()),
        NoticeKind::Recovered => (format!("Rule “{rule}” is running again"), String::new()),
    }
}

/// Whether a system tray host (a StatusNotifierWatcher) is on the session bus.
/// `Err` says why not, for the log.
#[cfg(target_os = "linux")]
pub fn tray_host() -> Result<(), String> {
    let conn = zbus::blocking::Connection::session().map_err(|e| format!("no session D-Bus: {e}"))?;
    let dbus = zbus::blocking::fdo::DBusProxy::new(&conn).map_err(|e| format!("session D-Bus: {e}"))?;
    let name = zbus::names::BusName::try_from(TRAY_WATCHER).map_err(|e| e.to_string())?;
    match dbus.name_has_owner(name) {
        Ok(true) => Ok(()),
        Ok(false) => Err("no StatusNotifierWatcher on the session D-Bus".into()),
        Err(e) => Err(format!("session D-Bus: {e}")),
    }
}

#[cfg(not(target_os = "linux"))]
pub fn tray_host() -> Result<(), String> {
    Ok(())
}

/// Calls `on_change(present)` with whether a tray host is on the session bus: once
/// at the start, then whenever one appears or leaves (a panel started late, or one
/// that crashed). Blocks while the bus connection lives; run it on its own thread.
#[cfg(target_os = "linux")]
pub fn watch_tray_host(mut on_change: impl FnMut(bool)) -> Result<(), String> {
    let conn = zbus::blocking::Connection::session().map_err(|e| format!("no session D-Bus: {e}"))?;
    let dbus = zbus::blocking::fdo::DBusProxy::new(&conn).map_err(|e| format!("session D-Bus: {e}"))?;
    // Subscribe before looking, so a host that appears in between is not missed.
    let changes = dbus.receive_name_owner_changed_with_args(&[(0, TRAY_WATCHER)]).map_err(|e| format!("session D-Bus: {e}"))?;
    let name = zbus::names::BusName::try_from(TRAY_WATCHER).map_err(|e| e.to_string())?;
    on_change(dbus.name_has_owner(name).map_err(|e| format!("session D-Bus: {e}"))?);
    for change in changes {
        if let Ok(args) = change.args() {
            on_change(args.new_owner().is_some());
        }
    }
    Err("the session D-Bus connection closed".into())
}

#[cfg(not(target_os = "linux"))]
pub fn watch_tray_host(_on_change: impl FnMut(bool)) -> Result<(), String> {
    Ok(())
}

/// The D-Bus name a StatusNotifier host (the tray of KDE, GNOME's AppIndicator
/// extension, Xfce, waybar …) owns.
#[cfg(target_os = "linux")]
const TRAY_WATCHER: &str = "org.kde.StatusNotifierWatcher";

/// The Settings view: the saved preferences and whether there is a tray.
#[tauri::command]
pub async fn desktop_state(app: tauri::AppHandle, b: tauri::State<'_, crate::commands::Shared>) -> Result<DesktopState, AppError> {
    let b = b.inner().clone();
    let settings = tauri::async_runtime::spawn_blocking(move || b.desktop_settings()).await.map_err(|e| AppError::new(ErrorCode::Engine, format!("internal error: {e}")))??;
    Ok(crate::tray::state_of(&app, settings))
}

/// Saves and applies the preferences; an error names the field (`statsIntervalMs`,
/// `startAtLogin` …) so the view shows it beside that control.
#[tauri::command]
pub async fn desktop_settings_set(app: tauri::AppHandle, b: tauri::State<'_, crate::commands::Shared>, settings: DesktopSettings) -> Result<DesktopState, AppError> {
    let b = b.inner().clone();
    tauri::async_runtime::spawn_blocking(move || crate::tray::set_settings(&app, &b, settings)).await.map_err(|e| AppError::new(ErrorCode::Engine, format!("internal error: {e}")))?
}
