//! Portway's desktop app: a Tauri 2 window over the engine. The engine runs in
//! this process on its own tokio runtime (see [`backend::Backend`]); the webview
//! only sends typed commands and receives a stats stream.

pub mod backend;
pub mod chains;
pub mod commands;
pub mod conns;
pub mod desktop;
mod launch;
mod tray;
pub mod logs;

use portway_core::store::ProfileStore;
use std::sync::Arc;

pub fn run() {
    let _ = commands::STARTED.set(std::time::Instant::now());
    let launch = match launch::parse(std::env::args().skip(1)) {
        Ok(l) => l,
        Err((text, code)) => {
            print!("{text}");
            std::process::exit(code);
        }
    };
    portway_core::logging::init(0);
    if !launch.ignored.is_empty() {
        tracing::info!("ignoring arguments {:?} (see portway-app --help)", launch.ignored);
    }
    let _ = portway_core::sys::raise_nofile_limit();
    // Blank windows on some GPUs with WebKitGTK's DMA-BUF renderer: off unless the
    // user chose otherwise.
    if std::env::var_os("WEBKIT_DISABLE_DMABUF_RENDERER").is_none() {
        std::env::set_var("WEBKIT_DISABLE_DMABUF_RENDERER", "1");
    }
    let backend = match ProfileStore::open_default().map_err(|e| e.to_string()).and_then(|s| backend::Backend::open(s).map_err(|e| e.message)) {
        Ok(b) => Arc::new(b),
        Err(e) => {
            eprintln!("portway-app: {e}");
            std::process::exit(1);
        }
    };
    let for_exit = backend.clone();
    let result = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            // A second launch focuses the window we have.
            tray::show_window(app);
        }))
        // Whether the window is shown is ours to decide (start minimised, close to
        // tray), not a leftover of the last session.
        .plugin(tauri_plugin_window_state::Builder::default().with_state_flags(tauri_plugin_window_state::StateFlags::all() - tauri_plugin_window_state::StateFlags::VISIBLE).build())
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_autostart::Builder::new().app_name("portway").build())
        .plugin(tauri_plugin_notification::init())
        .manage(backend)
        .setup(move |app| {
            // Plugins are set up by now: a second launch has handed its arguments
            // to the first Portway and exited in the single-instance plugin.
            tauri::Manager::state::<commands::Shared>(app).start_rules();
            tray::setup(app.handle(), launch.show);
            Ok(())
        })
        .on_window_event(|window, event| {
            if let tauri::WindowEvent::CloseRequested { api, .. } = event {
                tray::on_close_requested(window, api);
            }
        })
        .invoke_handler(tauri::generate_handler![
            commands::app_snapshot,
            commands::rule_save,
            commands::rule_delete,
            commands::rule_set_enabled,
            commands::rule_preview,
            commands::profile_switch,
            commands::profile_create,
            commands::profile_import_preview,
            commands::profile_import,
            commands::stats_subscribe,
            commands::profile_duplicate,
            commands::profile_rename,
            commands::profile_delete,
            commands::profile_export,
            commands::profile_export_to,
            desktop::desktop_state,
            desktop::desktop_settings_set,
            logs::logs_subscribe,
            logs::logs_unsubscribe,
            conns::conns_subscribe,
            conns::conns_unsubscribe,
            conns::conn_close,
            conns::conns_close,
            chains::chains_list,
            chains::chain_save,
            chains::chain_delete,
            chains::chain_duplicate,
            chains::chain_probe,
        ])
        .build(tauri::generate_context!());
    match result {
        // The event loop may end the process itself: shut the engine down on its
        // way out (Quit in the tray, the last window closed).
        Ok(app) => app.run(move |_, event| {
            if let tauri::RunEvent::Exit = event {
                for_exit.shutdown();
            }
        }),
        Err(e) => {
            eprintln!("portway-app: {e}");
            std::process::exit(1);
        }
    }
}
