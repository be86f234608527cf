//! The Logs view's stream: the engine's recent log lines at once, then new ones in
//! batches (at most four a second) until the window unsubscribes or goes away. A
//! stream exists only while the view is open and the window visible (the view
//! subscribes and unsubscribes), so a hidden window costs nothing here.

use crate::backend::Backend;
use crate::commands::Shared;
use portway_core::logging::{ring, Tail};
use portway_core::stats::LogLine;
use portway_ipc::*;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use tauri::ipc::Channel;
use tauri::State;
use tokio::sync::{broadcast, oneshot};

/// Lines a new stream starts with.
pub const INITIAL_LINES: usize = 500;
/// The shortest time between two batches.
pub const BATCH_EVERY: Duration = Duration::from_millis(250);
/// Lines one batch carries at most (what the view keeps); older ones in a flood are
/// dropped (a gap in the numbers) instead of queued.
const BATCH_MAX: usize = 5000;

/// Running streams by id, each with the sender that stops it.
fn streams() -> std::sync::MutexGuard<'static, HashMap<u64, oneshot::Sender<()>>> {
    static STREAMS: OnceLock<Mutex<HashMap<u64, oneshot::Sender<()>>>> = OnceLock::new();
    crate::backend::lock(STREAMS.get_or_init(Default::default))
}

/// A line as the view shows it: the `service` field becomes the rule.
pub fn entry(seq: u64, line: LogLine) -> LogEntry {
    let mut rule = None;
    let mut fields = Vec::with_capacity(line.fields.len());
    for (name, value) in line.fields {
        if name == "service" {
            if rule.is_none() && !value.is_empty() {
                rule = Some(value);
            }
            continue;
        }
        fields.push(LogField { name, value });
    }
    LogEntry { seq, time: line.time, level: LogLevel::parse(&line.level), rule, message: line.message, fields }
}

impl Backend {
    /// Sends the last [`INITIAL_LINES`] lines (with `after` > 0: every kept line
    /// numbered after it, what a view that was hidden missed) as one batch, then new lines every [`BATCH_EVERY`] while there are any, until `send`
    /// returns false or [`Backend::logs_unsubscribe`]. Returns the stream's id.
    pub fn stream_logs<F: FnMut(LogBatch) -> bool + Send + 'static>(&self, after: u64, send: F) -> u64 {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Relaxed);
        let (stop_tx, stop_rx) = oneshot::channel();
        streams().insert(id, stop_tx);
        let tail = ring().tail(if after == 0 { INITIAL_LINES } else { usize::MAX }, after);
        self.rt.spawn(async move {
            pump(tail, send, stop_rx).await;
            streams().remove(&id);
        });
        id
    }

    /// Stops stream `id`; false when it had already ended.
    pub fn logs_unsubscribe(&self, id: u64) -> bool {
        streams().remove(&id).is_some_and(|stop| stop.send(()).is_ok())
    }

    /// Whether stream `id` still runs.
    pub fn log_stream_running(&self, id: u64) -> bool {
        streams().contains_key(&id)
    }
}

async fn pump<F: FnMut(LogBatch) -> bool>(tail: Tail, mut send: F, mut stop: oneshot::Receiver<()>) {
    let Tail { first, lines, mut rx } = tail;
    let mut next = first;
    let initial = lines
        .into_iter()
        .map(|l| {
            next += 1;
            entry(next - 1, l)
        })
        .collect();
    if !send(LogBatch { lines: initial }) {
        return;
    }
    let mut pending: VecDeque<LogEntry> = VecDeque::new();
    let mut tick = tokio::time::interval(BATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = &mut stop => return,
            r = rx.recv() => match r {
                Ok(l) => {
                    if pending.len() >= BATCH_MAX {
                        pending.pop_front();
                    }
                    pending.push_back(entry(next, l));
                    next += 1;
                }
                Err(broadcast::error::RecvError::Lagged(n)) => next += n,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            // A line after a quiet spell goes out at once; a burst waits for the next tick.
            _ = tick.tick(), if !pending.is_empty() => {
                if !send(LogBatch { lines: pending.drain(..).collect() }) {
                    return;
                }
            }
        }
    }
}

/// Streams the engine's log lines to the Logs view: the recent ones after line
/// `after` (what the view already has), then new ones in batches. Returns the
/// stream's id for `logs_unsubscribe`.
#[tauri::command]
pub fn logs_subscribe(b: State<'_, Shared>, after: Option<u64>, on_batch: Channel<LogBatch>) -> Result<u64, AppError> {
    Ok(b.stream_logs(after.unwrap_or(0), move |batch| on_batch.send(batch).is_ok()))
}

/// Ends a stream (the view closed, or the window was hidden).
#[tauri::command]
pub fn logs_unsubscribe(b: State<'_, Shared>, id: u64) -> Result<bool, AppError> {
    Ok(b.logs_unsubscribe(id))
}
