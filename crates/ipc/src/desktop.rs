//! The desktop side of the app: the Settings view's preferences and the tray's menu.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// The preferences themselves live in the core's settings file, so that they load
/// with (and are written atomically beside) the rest of the settings.
pub use portway_core::store::{DesktopSettings, LogLevel, Theme, STATS_INTERVAL_MS};

/// What the Settings view shows: the saved preferences and what this desktop offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct DesktopState {
    pub settings: DesktopSettings,
    /// Whether a system tray host was found. Without one, closing the window quits
    /// and "start minimised" is not applied: the window must never vanish unreachably.
    pub tray_available: bool,
    /// Why there is no tray (no StatusNotifier host, no session bus …), for the log
    /// and the curious; the view says it in plain words.
    pub tray_problem: Option<String>,
}

/// Which of the tray's three icons shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TrayIconKind {
    /// No rule running.
    Idle,
    /// Rules running, none failing.
    Running,
    /// At least one rule failing.
    Failing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TrayItemKind {
    /// A plain entry that does something.
    Action,
    /// An entry with a check mark.
    Check,
    /// A heading or note that does nothing (disabled).
    Label,
    Separator,
    Submenu,
}

/// One menu entry. `id` is what `Backend::tray_activate` takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrayItem {
    pub id: String,
    pub label: String,
    pub kind: TrayItemKind,
    pub checked: bool,
    pub enabled: bool,
    /// A submenu's entries.
    pub children: Vec<TrayItem>,
}

/// The tray as data: the glue renders it, tests read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrayModel {
    pub icon: TrayIconKind,
    /// "Portway: 3 running, 1 failing, 2 off".
    pub tooltip: String,
    pub items: Vec<TrayItem>,
}
