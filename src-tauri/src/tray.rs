//! The Tauri glue of the desktop features: renders [`desktop::tray_model`] as a
//! tray icon and menu, runs [`Backend::tray_activate`] for its entries, keeps the
//! tray and the window in step, hides the window on close when there is a tray,
//! and shows notifications. Nothing here may stop the app: a tray that cannot be
//! built is logged and the app goes on without it.

use crate::backend::{lock, Backend};
use crate::commands::Shared;
use crate::desktop::{self, NoticeGate, TrayAction, SNAPSHOT_CHANGED, WINDOW_CHANGED};
use portway_core::stats::Event;
use portway_ipc::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, IsMenuItem, Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Emitter, Listener, Manager, Runtime, Wry};
use tauri_plugin_notification::NotificationExt as _;
use tokio::sync::{broadcast, mpsc};

const TRAY_ID: &str = "portway";

/// The desktop state the commands and window events need.
pub struct Desktop {
    /// Why there is no usable tray, shown in Settings.
    tray_problem: Mutex<Option<String>>,
    /// Whether a tray host is on the bus now (it can come and go after start).
    host: AtomicBool,
    tray: Mutex<Option<TrayIcon<Wry>>>,
    /// The model the tray shows, to skip rebuilding an unchanged menu.
    shown: Mutex<Option<TrayModel>>,
    poke: mpsc::Sender<()>,
}

impl Desktop {
    /// A tray the user can see: built, and a host on the bus to show it.
    pub fn tray_available(&self) -> bool {
        self.host.load(Ordering::SeqCst) && lock(&self.tray).is_some()
    }

    /// Asks the tray to follow a change (coalesced).
    pub fn poke(&self) {
        let _ = self.poke.try_send(());
    }

    pub fn state(&self, settings: DesktopSettings) -> DesktopState {
        DesktopState { settings, tray_available: self.tray_available(), tray_problem: lock(&self.tray_problem).clone() }
    }
}

fn icon(kind: TrayIconKind) -> Image<'static> {
    match kind {
        TrayIconKind::Idle => tauri::include_image!("../icons/tray-idle.png"),
        TrayIconKind::Running => tauri::include_image!("../icons/tray-running.png"),
        TrayIconKind::Failing => tauri::include_image!("../icons/tray-failing.png"),
    }
}

enum Built {
    Check(CheckMenuItem<Wry>),
    Item(MenuItem<Wry>),
    Sep(PredefinedMenuItem<Wry>),
    Sub(Submenu<Wry>),
}

impl Built {
    fn as_item(&self) -> &dyn IsMenuItem<Wry> {
        match self {
            Built::Check(i) => i,
            Built::Item(i) => i,
            Built::Sep(i) => i,
            Built::Sub(i) => i,
        }
    }
}

fn build_item(app: &AppHandle, it: &TrayItem) -> tauri::Result<Built> {
    Ok(match it.kind {
        TrayItemKind::Check => Built::Check(CheckMenuItem::with_id(app, &it.id, &it.label, it.enabled, it.checked, None::<&str>)?),
        TrayItemKind::Action | TrayItemKind::Label => Built::Item(MenuItem::with_id(app, &it.id, &it.label, it.enabled, None::<&str>)?),
        TrayItemKind::Separator => Built::Sep(PredefinedMenuItem::separator(app)?),
        TrayItemKind::Submenu => {
            let children = it.children.iter().map(|c| build_item(app, c)).collect::<tauri::Result<Vec<_>>>()?;
            let refs: Vec<&dyn IsMenuItem<Wry>> = children.iter().map(Built::as_item).collect();
            Built::Sub(Submenu::with_id_and_items(app, &it.id, &it.label, it.enabled, &refs)?)
        }
    })
}

fn build_menu(app: &AppHandle, model: &TrayModel) -> tauri::Result<Menu<Wry>> {
    let items = model.items.iter().map(|i| build_item(app, i)).collect::<tauri::Result<Vec<_>>>()?;
    let refs: Vec<&dyn IsMenuItem<Wry>> = items.iter().map(Built::as_item).collect();
    Menu::with_items(app, &refs)
}

fn render(tray: &TrayIcon<Wry>, app: &AppHandle, model: &TrayModel) -> tauri::Result<()> {
    tray.set_menu(Some(build_menu(app, model)?))?;
    tray.set_icon(Some(icon(model.icon)))?;
    // AppIndicator shows no tooltips; the title is the closest it has, but it puts
    // text beside the icon in most panels, so only the tooltip is set.
    tray.set_tooltip(Some(&model.tooltip))
}

fn create_tray(app: &AppHandle, model: &TrayModel) -> tauri::Result<TrayIcon<Wry>> {
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon(model.icon))
        .tooltip(&model.tooltip)
        .menu(&build_menu(app, model)?)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, ev| activate(app, ev.id().as_ref()))
        .build(app)
}

pub fn show_window(app: &AppHandle) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.unminimize();
        let _ = w.show();
        let _ = w.set_focus();
    }
}

/// A tray entry was chosen: runs its action off the UI thread (a profile switch
/// waits for listeners to close), then brings the tray and the window up to date.
fn activate(app: &AppHandle, id: &str) {
    let app = app.clone();
    let id = id.to_string();
    tauri::async_runtime::spawn_blocking(move || {
        let backend = app.state::<Shared>().inner().clone();
        match backend.tray_activate(&id) {
            Ok(TrayAction::Changed) => {
                refresh(&app, &backend);
                let _ = app.emit(SNAPSHOT_CHANGED, ());
            }
            Ok(TrayAction::ShowWindow) => show_window(&app),
            Ok(TrayAction::Quit) => app.exit(0),
            Err(e) => {
                tracing::warn!(entry = %id, "tray: {}", e.message);
                // The menu toggled its own check mark: put back what is true.
                refresh_forced(&app, &backend);
                notify(&app, "Portway", &e.message);
            }
        }
    });
}

fn refresh_forced(app: &AppHandle, backend: &Backend) {
    if let Some(d) = app.try_state::<Desktop>() {
        *lock(&d.shown) = None;
    }
    refresh(app, backend);
}

/// Renders the current state in the tray when it differs from what is shown.
fn refresh(app: &AppHandle, backend: &Backend) {
    let Some(d) = app.try_state::<Desktop>() else { return };
    let Some(tray) = lock(&d.tray).clone() else { return };
    let model = match backend.tray() {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!("tray: {}", e.message);
            return;
        }
    };
    let mut shown = lock(&d.shown);
    if shown.as_ref() == Some(&model) {
        return;
    }
    match render(&tray, app, &model) {
        Ok(()) => *shown = Some(model),
        Err(e) => tracing::warn!("tray: cannot update: {e}"),
    }
}

fn notify(app: &AppHandle, title: &str, body: &str) {
    if let Err(e) = app.notification().builder().title(title).body(body).show() {
        tracing::warn!("notification not shown: {e}");
    }
}

/// Builds the tray for the current state. A missing libappindicator panics inside
/// the tray crate: a tray is not worth the app, so that is an error here.
fn build_tray(app: &AppHandle, backend: &Backend) -> Result<(TrayIcon<Wry>, TrayModel), String> {
    let model = backend.tray().map_err(|e| e.message)?;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| create_tray(app, &model)))
        .map_err(|_| "the tray library is missing (libayatana-appindicator3)".to_string())?
        .map(|t| (t, model))
        .map_err(|e| e.to_string())
}

/// Follows the tray host after start: a panel that starts after Portway gets the
/// tray; one that goes away while the window is hidden brings the window back,
/// since nothing else could. Settings shows which is the case.
fn follow_tray_host(app: &AppHandle) {
    let handle = app.clone();
    let spawned = std::thread::Builder::new().name("tray-host".into()).spawn(move || {
        let r = desktop::watch_tray_host(|present| on_tray_host(&handle, present));
        if let Err(why) = r {
            tracing::debug!("not following the tray host: {why}");
        }
    });
    if let Err(e) = spawned {
        tracing::warn!("not following the tray host: {e}");
    }
}

fn on_tray_host(app: &AppHandle, present: bool) {
    let Some(d) = app.try_state::<Desktop>() else { return };
    if d.host.swap(present, Ordering::SeqCst) == present {
        return;
    }
    if present {
        tracing::info!("a system tray appeared");
        if lock(&d.tray).is_none() {
            // Menus and the indicator belong to the GTK thread.
            let handle = app.clone();
            let r = app.run_on_main_thread(move || {
                let Some(d) = handle.try_state::<Desktop>() else { return };
                let backend = handle.state::<Shared>().inner().clone();
                match build_tray(&handle, &backend) {
                    Ok((t, m)) => {
                        *lock(&d.tray) = Some(t);
                        *lock(&d.shown) = Some(m);
                        *lock(&d.tray_problem) = None;
                    }
                    Err(why) => {
                        tracing::warn!("no system tray: {why}");
                        *lock(&d.tray_problem) = Some(why);
                    }
                }
                let _ = handle.emit(SNAPSHOT_CHANGED, ());
            });
            if let Err(e) = r {
                tracing::warn!("tray: {e}");
            }
            return;
        }
        *lock(&d.tray_problem) = None;
    } else {
        tracing::warn!("the system tray went away");
        *lock(&d.tray_problem) = Some("the system tray went away (its panel stopped); closing the window quits Portway until it is back".into());
        show_window(app);
    }
    let _ = app.emit(SNAPSHOT_CHANGED, ());
}

/// Sets up the tray (when a host exists), the close-to-tray and start-minimised
/// behaviour (`show`: the command line's `--show` overrides it), autostart, and
/// the task that follows the engine. Never fails.
pub fn setup(app: &AppHandle, show: bool) {
    let backend = app.state::<Shared>().inner().clone();
    let settings = backend.desktop_settings().unwrap_or_else(|e| {
        tracing::warn!("desktop settings unreadable, using defaults: {}", e.message);
        DesktopSettings::default()
    });
    backend.apply_desktop_settings(&settings);

    let (poke, poked) = mpsc::channel(8);
    let (tray, tray_problem) = match desktop::tray_host() {
        Err(why) => {
            tracing::info!("no system tray: {why}");
            (None, Some(why))
        }
        Ok(()) => match build_tray(app, &backend) {
            Ok(t) => (Some(t), None),
            Err(why) => {
                tracing::warn!("no system tray: {why}");
                (None, Some(why))
            }
        },
    };
    let (tray, shown) = match tray {
        Some((t, m)) => (Some(t), Some(m)),
        None => (None, None),
    };
    let has_tray = tray.is_some();
    app.manage(Desktop { tray_problem: Mutex::new(tray_problem), host: AtomicBool::new(has_tray), tray: Mutex::new(tray), shown: Mutex::new(shown), poke });
    follow_tray_host(app);

    if settings.start_minimized && has_tray && !show {
        if let Some(w) = app.get_webview_window("main") {
            let _ = w.hide();
        }
    }
    sync_autostart(app, settings.start_at_login);

    let handle = app.clone();
    app.listen_any(WINDOW_CHANGED, move |_| {
        if let Some(d) = handle.try_state::<Desktop>() {
            d.poke();
        }
    });
    follow_engine(app.clone(), backend, poked);
}

/// Makes the login entry match the setting (it also points it at this binary).
fn sync_autostart(app: &AppHandle, on: bool) {
    let Some(al) = app.try_state::<tauri_plugin_autostart::AutoLaunchManager>() else { return };
    let now = al.is_enabled().unwrap_or(false);
    let r = if on { al.enable() } else if now { al.disable() } else { Ok(()) };
    if let Err(e) = r {
        tracing::warn!("start at login: {e}");
    }
}

/// Follows the engine's rule states (notifications; the tray; the window) and the
/// window's changes (the tray). Bursts (a profile switch sends two events per
/// rule) are coalesced into one update.
fn follow_engine(app: AppHandle, backend: Shared, mut poked: mpsc::Receiver<()>) {
    let mut events = backend.engine().subscribe();
    let b = backend.clone();
    backend.runtime().spawn(async move {
        let mut gate = NoticeGate::default();
        loop {
            let mut engine_changed = false;
            tokio::select! {
                ev = events.recv() => match ev {
                    Ok(Event::ServiceState { service, state }) => {
                        engine_changed = true;
                        let on = b.desktop_settings().map(|s| s.notifications).unwrap_or(false);
                        if let Some(kind) = gate.on_state(on, &service, &state, Instant::now()) {
                            let (title, body) = desktop::notice_text(&service, &kind);
                            notify(&app, &title, &body);
                        }
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                p = poked.recv() => if p.is_none() { return },
            }
            // Let the burst finish, then render once.
            tokio::time::sleep(Duration::from_millis(150)).await;
            while poked.try_recv().is_ok() {}
            let (app2, b2) = (app.clone(), b.clone());
            let _ = tokio::task::spawn_blocking(move || refresh(&app2, &b2)).await;
            if engine_changed {
                let _ = app.emit(SNAPSHOT_CHANGED, ());
            }
        }
    });
}

/// The window's close button: hides the window when there is a tray and the user
/// wants that; otherwise the window closes and the app quits.
pub fn on_close_requested<R: Runtime>(window: &tauri::Window<R>, api: &tauri::CloseRequestApi) {
    let app = window.app_handle();
    let Some(d) = app.try_state::<Desktop>() else { return };
    if !d.tray_available() {
        return;
    }
    let close_to_tray = app.try_state::<Shared>().and_then(|b| b.desktop_settings().ok()).map(|s| s.close_to_tray).unwrap_or(false);
    if close_to_tray {
        api.prevent_close();
        let _ = window.hide();
    }
}

/// Applies a settings change made in the window: the login entry first (so a
/// failure there changes nothing), then the backend's part.
pub fn set_settings(app: &AppHandle, backend: &Backend, new: DesktopSettings) -> Result<DesktopState, AppError> {
    let old = backend.desktop_settings()?;
    if old.start_at_login != new.start_at_login {
        if let Some(al) = app.try_state::<tauri_plugin_autostart::AutoLaunchManager>() {
            let r = if new.start_at_login { al.enable() } else { al.disable() };
            r.map_err(|e| AppError { field: Some("startAtLogin".into()), retryable: true, ..AppError::new(ErrorCode::Storage, format!("cannot change the login entry: {e}")) })?;
        }
    }
    let saved = backend.desktop_settings_set(new)?;
    Ok(state_of(app, saved))
}

/// The Settings view's state. Before `setup` has run there is no tray yet.
pub fn state_of(app: &AppHandle, settings: DesktopSettings) -> DesktopState {
    match app.try_state::<Desktop>() {
        Some(d) => d.state(settings),
        None => DesktopState { settings, tray_available: false, tray_problem: Some("the tray is not set up yet".into()) },
    }
}
