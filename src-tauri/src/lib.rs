//! Portway's desktop app: a Tauri 2 window over the engine. The engine runs in
//! this process on its own tokio runtime (see [`backend::Backend`]); the webview
//! only sends typed commands and receives a stats stream.

pub mod backend;
pub mod chains;
pub mod commands;
pub mod conns;
pub mod desktop;

use portway_core::store::ProfileStore;
use std::sync::Arc;
use tauri::Manager;

pub fn run() {
    let _ = commands::STARTED.set(std::time::Instant::now());
    portway_core::logging::init(0);
    let _ = portway_core::sys::raise_nofile_limit();
    // Blank windows on some GPUs with WebKitGTK's DMA-BUF renderer: off unless the
    // user chose otherwise.
    if std::env::var_os("WEBKIT_DISABLE_DMABUF_RENDERER").is_none() {
        std::env::set_var("WEBKIT_DISABLE_DMABUF_RENDERER", "1");
    }
    let backend = match ProfileStore::open_default().map_err(|e| e.to_string()).and_then(|s| backend::Backend::start(s).map_err(|e| e.message)) {
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
            if let Some(w) = app.get_webview_window("main") {
                let _ = w.unminimize();
                let _ = w.show();
                let _ = w.set_focus();
            }
        }))
        .plugin(tauri_plugin_window_state::Builder::default().build())
        .plugin(tauri_plugin_dialog::init())
        .manage(backend)
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
            chains::chains_list,
            chains::chain_save,
            chains::chain_delete,
            chains::chain_duplicate,
            chains::chain_probe,
        ])
        .run(tauri::generate_context!());
    for_exit.shutdown();
    if let Err(e) = result {
        eprintln!("portway-app: {e}");
        std::process::exit(1);
    }
}
