//! The window's commands: thin, typed wrappers over [`Backend`]. Each returns an
//! `AppError` (code, message, rule, field) the UI shows next to what caused it.
//! Blocking work runs on a blocking thread, never on the webview's.

use crate::backend::Backend;
use portway_ipc::*;
use std::sync::Arc;
use tauri::ipc::Channel;
use tauri::State;

pub type Shared = Arc<Backend>;

async fn run<T: Send + 'static>(b: &Shared, f: impl FnOnce(&Backend) -> Result<T, AppError> + Send + 'static) -> Result<T, AppError> {
    let b = b.clone();
    tauri::async_runtime::spawn_blocking(move || f(&b)).await.map_err(|e| AppError::new(ErrorCode::Engine, format!("internal error: {e}")))?
}

/// When the process started, for the "first snapshot served" log line (the window
/// renders the rules list from it: our cold-start figure).
pub static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

#[tauri::command]
pub async fn app_snapshot(b: State<'_, Shared>) -> Result<AppSnapshot, AppError> {
    static FIRST: std::sync::Once = std::sync::Once::new();
    let r = run(&b, |b| b.snapshot()).await;
    FIRST.call_once(|| {
        if let Some(t) = STARTED.get() {
            tracing::info!("first snapshot served {} ms after start", t.elapsed().as_millis());
        }
    });
    r
}

#[tauri::command]
pub async fn rule_save(b: State<'_, Shared>, draft: RuleDraft, original: Option<String>) -> Result<AppSnapshot, AppError> {
    run(&b, move |b| b.rule_save(draft, original)).await
}

#[tauri::command]
pub async fn rule_delete(b: State<'_, Shared>, name: String) -> Result<AppSnapshot, AppError> {
    run(&b, move |b| b.rule_delete(&name)).await
}

#[tauri::command]
pub async fn rule_set_enabled(b: State<'_, Shared>, name: String, enabled: bool) -> Result<AppSnapshot, AppError> {
    run(&b, move |b| b.rule_set_enabled(&name, enabled)).await
}

#[tauri::command]
pub async fn rule_preview(b: State<'_, Shared>, draft: RuleDraft) -> Result<RulePreview, AppError> {
    run(&b, move |b| b.rule_preview(draft)).await
}

#[tauri::command]
pub async fn profile_switch(b: State<'_, Shared>, name: String) -> Result<AppSnapshot, AppError> {
    run(&b, move |b| b.profile_switch(&name)).await
}

#[tauri::command]
pub async fn profile_create(b: State<'_, Shared>, name: String) -> Result<AppSnapshot, AppError> {
    run(&b, move |b| b.profile_create(&name)).await
}

#[tauri::command]
pub async fn profile_import_preview(b: State<'_, Shared>, text: String, file_name: Option<String>) -> Result<ImportPreview, AppError> {
    run(&b, move |b| b.profile_import_preview(&text, file_name.as_deref())).await
}

#[tauri::command]
pub async fn profile_import(b: State<'_, Shared>, text: String, file_name: Option<String>, name: String) -> Result<AppSnapshot, AppError> {
    run(&b, move |b| b.profile_import(&text, file_name.as_deref(), &name)).await
}

/// Streams one `StatsFrame` per engine tick over a channel (no polling). The
/// stream ends when the window goes away.
#[tauri::command]
pub fn stats_subscribe(b: State<'_, Shared>, on_frame: Channel<StatsFrame>) -> Result<(), AppError> {
    b.stream_stats(move |f| on_frame.send(f).is_ok());
    Ok(())
}

#[tauri::command]
pub async fn profile_duplicate(b: State<'_, Shared>, name: String, new_name: String) -> Result<AppSnapshot, AppError> {
    run(&b, move |b| b.profile_duplicate(&name, &new_name)).await
}

#[tauri::command]
pub async fn profile_rename(b: State<'_, Shared>, name: String, new_name: String) -> Result<AppSnapshot, AppError> {
    run(&b, move |b| b.profile_rename(&name, &new_name)).await
}

#[tauri::command]
pub async fn profile_delete(b: State<'_, Shared>, name: String) -> Result<AppSnapshot, AppError> {
    run(&b, move |b| b.profile_delete(&name)).await
}

#[tauri::command]
pub async fn profile_export(b: State<'_, Shared>, name: String) -> Result<ProfileExport, AppError> {
    run(&b, move |b| b.profile_export(&name)).await
}

/// Writes the profile to a path the user chose in the save dialog.
#[tauri::command]
pub async fn profile_export_to(b: State<'_, Shared>, name: String, path: String) -> Result<(), AppError> {
    run(&b, move |b| b.profile_export_to(&name, std::path::Path::new(&path))).await
}
