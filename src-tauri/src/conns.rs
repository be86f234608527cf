//! The Connections view's backend: a stream of live connections (changes only, with
//! per-connection rates from byte deltas between ticks) that runs only while a
//! window listens, closing connections by id, and the ring of recently closed
//! connections, kept from app start whether or not the view is open.

use crate::backend::{lock, Backend};
use portway_core::stats::{ConnInfo, Event};
use portway_core::Engine;
use portway_ipc::*;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;
use tauri::ipc::Channel;
use tauri::State;
use tokio::runtime::Runtime;
use tokio::sync::{broadcast, oneshot};

/// How many closed connections the app remembers.
pub const RECENT_MAX: usize = 200;

#[derive(Default)]
struct Recent {
    /// (sequence number, entry), oldest first; a stream sends what is newer than
    /// the last number it sent.
    ring: VecDeque<(u64, ClosedConn)>,
    next_seq: u64,
}

/// The app-wide part of the Connections view: the recently closed ring and the
/// running streams (each stopped by dropping its sender).
#[derive(Default)]
pub struct ConnTracker {
    recent: Mutex<Recent>,
    streams: Mutex<HashMap<u64, oneshot::Sender<()>>>,
    next_stream: AtomicU64,
}

fn row_of(c: &ConnInfo, rate_in: u64, rate_out: u64) -> ConnRow {
    ConnRow {
        id: c.id,
        rule: c.service.clone(),
        network: c.network.clone(),
        client: c.client.clone(),
        target: c.target.clone(),
        node: c.node.clone(),
        since: c.since,
        bytes_in: c.bytes_in,
        bytes_out: c.bytes_out,
        rate_in,
        rate_out,
    }
}

impl ConnTracker {
    /// Starts recording closed connections; must run before the engine serves any.
    pub(crate) fn start(rt: &Runtime, engine: &Engine) -> Arc<ConnTracker> {
        let t = Arc::new(ConnTracker::default());
        let mut rx = engine.subscribe();
        let weak: Weak<ConnTracker> = Arc::downgrade(&t);
        rt.spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(Event::ConnClosed { conn, error }) => {
                        let Some(t) = weak.upgrade() else { return };
                        t.record(&conn, error, portway_core::stats::unix_millis());
                    }
                    Ok(_) => {}
                    // A burst of events outran us: the ring misses a few closes,
                    // the live table does not (it samples the registry).
                    Err(broadcast::error::RecvError::Lagged(n)) => tracing::debug!("connections: {n} events skipped"),
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        t
    }

    fn record(&self, c: &ConnInfo, error: Option<String>, closed_at: u64) {
        let entry = ClosedConn { conn: row_of(c, 0, 0), closed_at, duration_ms: closed_at.saturating_sub(c.since), error };
        let mut r = lock(&self.recent);
        let seq = r.next_seq;
        r.next_seq += 1;
        r.ring.push_back((seq, entry));
        while r.ring.len() > RECENT_MAX {
            r.ring.pop_front();
        }
    }

    /// Entries newer than `after` (all with `None`), oldest first, and the number
    /// to pass next time.
    fn closed_since(&self, after: Option<u64>) -> (Vec<ClosedConn>, Option<u64>) {
        let r = lock(&self.recent);
        let items = r.ring.iter().filter(|(s, _)| after.is_none_or(|a| *s > a)).map(|(_, c)| c.clone()).collect();
        let last = r.ring.back().map(|(s, _)| *s).or(after);
        (items, last)
    }
}

/// What a stream remembers between ticks to send only changes.
struct Sampler {
    /// id → (bytes in, bytes out, rate in, rate out) as last sent.
    prev: HashMap<u64, (u64, u64, u64, u64)>,
    prev_at: Option<Instant>,
    closed_seq: Option<u64>,
}

impl Sampler {
    fn frame(&mut self, conns: Vec<ConnInfo>, tracker: &ConnTracker, time: u64) -> ConnsFrame {
        let now = Instant::now();
        let reset = self.prev_at.is_none();
        let dt = self.prev_at.map(|p| now.duration_since(p).as_secs_f64().max(1e-3));
        self.prev_at = Some(now);
        let rate = |delta: u64, dt: f64| (delta as f64 / dt).round() as u64;
        let mut next = HashMap::with_capacity(conns.len());
        let mut upsert = Vec::new();
        let mut update = Vec::new();
        for c in &conns {
            let old = self.prev.get(&c.id).copied();
            // A connection new since the last tick moved all its bytes within it.
            let (pi, po) = old.map(|o| (o.0, o.1)).unwrap_or((0, 0));
            let (ri, ro) = match dt {
                Some(dt) => (rate(c.bytes_in.saturating_sub(pi), dt), rate(c.bytes_out.saturating_sub(po), dt)),
                None => (0, 0),
            };
            let cur = (c.bytes_in, c.bytes_out, ri, ro);
            match old {
                None => upsert.push(row_of(c, ri, ro)),
                Some(o) if o != cur => update.push([c.id, c.bytes_in, c.bytes_out, ri, ro]),
                Some(_) => {}
            }
            next.insert(c.id, cur);
        }
        let removed = self.prev.keys().filter(|id| !next.contains_key(id)).copied().collect();
        self.prev = next;
        let (closed, seq) = tracker.closed_since(self.closed_seq);
        self.closed_seq = seq;
        ConnsFrame { time, reset, upsert, update, removed, closed, live: conns.len() as u64 }
    }
}

impl Backend {
    /// Sends a full frame now, then one frame of changes per stats tick to `send`,
    /// until `send` returns false or [`Backend::conns_unsubscribe`] is called with
    /// the id returned. Nothing is sampled while no stream runs.
    pub fn conns_stream<F: FnMut(ConnsFrame) -> bool + Send + 'static>(&self, mut send: F) -> u64 {
        let id = self.conns.next_stream.fetch_add(1, Relaxed) + 1;
        let (tx, mut stop) = oneshot::channel::<()>();
        lock(&self.conns.streams).insert(id, tx);
        let mut rx = self.engine.subscribe();
        let engine = self.engine.clone();
        let tracker = self.conns.clone();
        self.rt.spawn(async move {
            let mut s = Sampler { prev: HashMap::new(), prev_at: None, closed_seq: None };
            'stream: loop {
                let f = s.frame(engine.connections(), &tracker, portway_core::stats::unix_millis());
                if !send(f) {
                    break;
                }
                loop {
                    tokio::select! {
                        _ = &mut stop => break 'stream,
                        ev = rx.recv() => match ev {
                            Ok(Event::Stats { .. }) | Err(broadcast::error::RecvError::Lagged(_)) => break,
                            Ok(_) => {}
                            Err(broadcast::error::RecvError::Closed) => break 'stream,
                        },
                    }
                }
            }
            lock(&tracker.streams).remove(&id);
        });
        id
    }

    /// Stops a stream (the view closed or the window was hidden).
    pub fn conns_unsubscribe(&self, id: u64) {
        // Dropping the sender wakes the stream, which then ends.
        lock(&self.conns.streams).remove(&id);
    }

    /// How many streams are running (each samples the registry once a tick).
    pub fn conns_streams(&self) -> usize {
        lock(&self.conns.streams).len()
    }

    /// Closes one connection: the client's socket is closed.
    pub fn conn_close(&self, id: u64) -> Result<(), AppError> {
        if self.engine.close_connection(id) {
            Ok(())
        } else {
            Err(AppError::new(ErrorCode::NotFound, format!("connection {id} is no longer open")))
        }
    }

    /// Closes the connections given; returns how many were still open.
    pub fn conns_close(&self, ids: &[u64]) -> u32 {
        ids.iter().filter(|id| self.engine.close_connection(**id)).count() as u32
    }

    /// The recently closed connections, oldest first (at most [`RECENT_MAX`]).
    pub fn conns_recent(&self) -> Vec<ClosedConn> {
        self.conns.closed_since(None).0
    }
}

/// Streams the live connections (changes once per tick) over a channel; returns
/// the stream's id for `conns_unsubscribe`.
#[tauri::command]
pub fn conns_subscribe(b: State<'_, crate::commands::Shared>, on_frame: Channel<ConnsFrame>) -> Result<u64, AppError> {
    Ok(b.conns_stream(move |f| on_frame.send(f).is_ok()))
}

#[tauri::command]
pub fn conns_unsubscribe(b: State<'_, crate::commands::Shared>, id: u64) -> Result<(), AppError> {
    b.conns_unsubscribe(id);
    Ok(())
}

#[tauri::command]
pub fn conn_close(b: State<'_, crate::commands::Shared>, id: u64) -> Result<(), AppError> {
    b.conn_close(id)
}

/// Closes every connection listed (the view's filtered rows); answers how many
/// were still open.
#[tauri::command]
pub fn conns_close(b: State<'_, crate::commands::Shared>, ids: Vec<u64>) -> Result<u32, AppError> {
    Ok(b.conns_close(&ids))
}
