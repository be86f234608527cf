//! Logs through `tracing`, plus a capture layer that keeps the recent lines for the
//! UI (`Engine::recent_logs`) and streams new ones as events. Fields a user filters
//! by are recorded as structured fields: `service`, `client`, `target`, `node`.

use crate::stats::{unix_millis, LogLine};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

const KEEP: usize = 2000;

pub struct LogRing {
    lines: Mutex<Lines>,
    tx: broadcast::Sender<LogLine>,
}

struct Lines {
    kept: VecDeque<LogLine>,
    /// Lines pushed since start: the last kept line's number (the first line is 1).
    pushed: u64,
}

/// The ring's recent lines and a receiver for the ones after them, taken together so
/// that no line is missed or seen twice in between.
pub struct Tail {
    /// The number of `lines[0]` (lines are numbered from 1 in push order; the
    /// receiver's next line is `first + lines.len()`, after a lag of n, n more).
    pub first: u64,
    pub lines: Vec<LogLine>,
    pub rx: broadcast::Receiver<LogLine>,
}

impl LogRing {
    pub fn recent(&self, max: usize) -> Vec<LogLine> {
        let Ok(l) = self.lines.lock() else { return Vec::new() };
        let skip = l.kept.len().saturating_sub(max);
        l.kept.iter().skip(skip).cloned().collect()
    }
    pub fn subscribe(&self) -> broadcast::Receiver<LogLine> {
        self.tx.subscribe()
    }
    /// The last `max` lines numbered after `after` (0: from the start), and what comes next.
    pub fn tail(&self, max: usize, after: u64) -> Tail {
        let l = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        // Subscribing under the lock: push sends under it too, so the receiver starts
        // exactly after the last kept line.
        let rx = self.tx.subscribe();
        let oldest = l.pushed + 1 - l.kept.len() as u64;
        let newer = l.pushed.saturating_sub(after.max(oldest - 1)) as usize;
        let n = newer.min(max);
        let lines: Vec<LogLine> = l.kept.iter().skip(l.kept.len() - n).cloned().collect();
        Tail { first: l.pushed + 1 - n as u64, lines, rx }
    }
    fn push(&self, line: LogLine) {
        let mut l = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if l.kept.len() >= KEEP {
            l.kept.pop_front();
        }
        l.kept.push_back(line.clone());
        l.pushed += 1;
        let _ = self.tx.send(line);
    }
}

pub fn ring() -> &'static LogRing {
    static RING: OnceLock<LogRing> = OnceLock::new();
    RING.get_or_init(|| LogRing { lines: Mutex::new(Lines { kept: VecDeque::with_capacity(256), pushed: 0 }), tx: broadcast::channel(1024).0 })
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

/// `text` with the password of every `scheme://user:password@host` in it replaced by
/// `****`: request lines and URLs a client or a profile wrote may carry one, and
/// no log line may.
pub fn redact_userinfo(text: &str) -> Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail.find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>' | ',') || c.is_whitespace()).unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@').and_then(|at| authority[..at].find(':').map(|colon| (colon, at))) {
            Some((colon, at)) => {
                changed = true;
                out.push_str(&authority[..=colon]);
                out.push_str("****");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    if !changed {
        return Cow::Borrowed(text);
    }
    out.push_str(rest);
    Cow::Owned(out)
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
            // The last guard for the window: the engine's calls already leave passwords out.
            message: redact_userinfo(&c.message).into_owned(),
            fields: c.fields.into_iter().map(|(k, v)| (k, redact_userinfo(&v).into_owned())).collect(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ring_of(n: u64) -> LogRing {
        let r = LogRing { lines: Mutex::new(Lines { kept: VecDeque::new(), pushed: 0 }), tx: broadcast::channel(16).0 };
        for i in 1..=n {
            r.push(LogLine { time: i, level: "info".into(), message: format!("line {i}"), fields: Vec::new() });
        }
        r
    }

    #[test]
    fn tail_numbers_lines_and_continues_without_gap_or_repeat() {
        let r = ring_of(5);
        let t = r.tail(3, 0);
        assert_eq!(t.first, 3);
        assert_eq!(t.lines.iter().map(|l| l.time).collect::<Vec<_>>(), [3, 4, 5]);
        // Only what came after line 4.
        let t2 = r.tail(100, 4);
        assert_eq!((t2.first, t2.lines.len()), (5, 1));
        let mut rx = t.rx;
        r.push(LogLine { time: 6, level: "warn".into(), message: "six".into(), fields: Vec::new() });
        assert_eq!(rx.try_recv().map(|l| l.time).ok(), Some(6));
        assert!(rx.try_recv().is_err());
        // Nothing new after the last line; an empty ring starts at 1.
        assert_eq!(r.tail(10, 6).lines.len(), 0);
        assert_eq!(r.tail(10, 6).first, 7);
        assert_eq!(ring_of(0).tail(10, 0).first, 1);
    }

    #[test]
    fn passwords_in_urls_are_masked() {
        assert_eq!(redact_userinfo("GET ftp://bob:hunter2@10.0.0.1:21/x HTTP/1.1"), "GET ftp://bob:****@10.0.0.1:21/x HTTP/1.1");
        assert_eq!(redact_userinfo("a http://u:p@h, b socks5://x:y:z@[::1]:1080"), "a http://u:****@h, b socks5://x:****@[::1]:1080");
        // No password: unchanged, not copied.
        assert!(matches!(redact_userinfo("http://bob@host/ and user@example.org"), Cow::Borrowed(_)));
        assert!(matches!(redact_userinfo("dial 127.0.0.1:1: connection refused"), Cow::Borrowed(_)));
        assert_eq!(redact_userinfo("http://bob@host/?next=http://a:b@c"), "http://bob@host/?next=http://a:****@c");
    }

    #[test]
    fn tail_never_reaches_past_what_the_ring_keeps() {
        let r = ring_of(KEEP as u64 + 10);
        let t = r.tail(usize::MAX, 0);
        assert_eq!(t.lines.len(), KEEP);
        assert_eq!(t.first, 11);
        assert_eq!(t.lines[0].time, 11);
    }
}
