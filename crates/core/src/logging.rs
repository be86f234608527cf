//! Logs through `tracing`, plus a capture layer that keeps the recent lines for the
//! UI (`Engine::recent_logs`) and streams new ones as events. Fields a user filters
//! by are recorded as structured fields: `service`, `client`, `target`, `node`.

use crate::stats::{unix_millis, LogLine};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

const KEEP: usize = 2000;

pub struct LogRing {
    lines: Mutex<VecDeque<LogLine>>,
    tx: broadcast::Sender<LogLine>,
}

impl LogRing {
    pub fn recent(&self, max: usize) -> Vec<LogLine> {
        let Ok(l) = self.lines.lock() else { return Vec::new() };
        let skip = l.len().saturating_sub(max);
        l.iter().skip(skip).cloned().collect()
    }
    pub fn subscribe(&self) -> broadcast::Receiver<LogLine> {
        self.tx.subscribe()
    }
    fn push(&self, line: LogLine) {
        if let Ok(mut l) = self.lines.lock() {
            if l.len() >= KEEP {
                l.pop_front();
            }
            l.push_back(line.clone());
        }
        let _ = self.tx.send(line);
    }
}

pub fn ring() -> &'static LogRing {
    static RING: OnceLock<LogRing> = OnceLock::new();
    RING.get_or_init(|| LogRing { lines: Mutex::new(VecDeque::with_capacity(256)), tx: broadcast::channel(1024).0 })
}

#[derive(Default)]
struct Collect {
    message: String,
    fields: Vec<(String, String)>,
}

impl Visit for Collect {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            self.fields.push((field.name().to_string(), format!("{value:?}")));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.fields.push((field.name().to_string(), value.to_string()));
        }
    }
}

/// A `tracing` layer that copies events into [`ring()`].
pub struct CaptureLayer;

impl<S: Subscriber> Layer<S> for CaptureLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut c = Collect::default();
        event.record(&mut c);
        ring().push(LogLine {
            time: unix_millis(),
            level: event.metadata().level().to_string().to_ascii_lowercase(),
            message: c.message,
            fields: c.fields,
        });
    }
}

type FilterHandle = tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

/// Set by [`init`]: lets the app change the level while running.
static FILTER: OnceLock<FilterHandle> = OnceLock::new();

fn filter_for(level: &str) -> String {
    format!("{level},portway={level}")
}

/// Changes the level of what is logged (and captured for the UI) while running:
/// `error`, `warn`, `info`, `debug` or `trace`. It replaces a `RUST_LOG` filter
/// too: the user's choice is the later one. Without [`init`] it is an error.
pub fn set_level(level: &str) -> Result<(), String> {
    if !matches!(level, "error" | "warn" | "info" | "debug" | "trace") {
        return Err(format!("unknown log level {level:?}"));
    }
    let handle = FILTER.get().ok_or_else(|| "logging is not set up".to_string())?;
    handle.reload(tracing_subscriber::EnvFilter::new(filter_for(level))).map_err(|e| e.to_string())
}

/// Installs logging to stderr and the capture layer. `verbosity`: 0 info, 1 debug
/// (`-D`), 2 trace (`-DD`). `RUST_LOG` overrides. Safe to call twice.
pub fn init(verbosity: u8) {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::EnvFilter;
    let level = match verbosity {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter_for(level)));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    use std::io::IsTerminal;
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal());
    if tracing_subscriber::registry().with(filter).with(fmt).with(CaptureLayer).try_init().is_ok() {
        let _ = FILTER.set(handle);
    }
}
