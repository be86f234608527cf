//! An xtaci/smux session (protocol v1, GOST's default, or v2 with per-stream
//! flow control) over any byte stream: open and accept streams, each an
//! `AsyncRead + AsyncWrite` that can be piped like a socket. The frames are
//! `codec::smux`; the settings come from GOST's `mux.*` metadata
//! ([`MuxConfig::from_metadata`], go-gost/x `internal/util/mux/mux.go`).
//!
//! Behaviour that matters for interop with GOST (xtaci/smux v1.5.x `session.go`,
//! `stream.go`, `mux.go`):
//! * Stream ids: the session that opens streams as the smux *client* uses odd ids
//!   from 3 (xtaci starts its counter at 1 and adds 2 before each open), the
//!   *server* even ids from 2.
//! * Keepalive: a NOP every 10 s; the session dies after 30 s in which nothing
//!   arrived, except while reading is paused for want of buffer space.
//!   `mux.keepaliveDisabled` turns off both, as in xtaci.
//! * No half-close: FIN ends the stream. After the peer's FIN, reads drain what
//!   arrived and then see EOF, and writes fail (xtaci answers `io.EOF`). After our
//!   own FIN (`shutdown`), reads go on until the peer's FIN, which a GOST peer
//!   sends as soon as its read sees ours.
//! * v1 has no flow control. Memory stays bounded the way xtaci bounds it: the
//!   session stops reading the underlying stream while the stream a frame is for
//!   holds `max_stream_buffer` unread bytes or all streams together hold
//!   `max_session_buffer`. One stream nobody reads therefore stalls the others,
//!   exactly as it does in Go.
//! * v2 adds UPD frames. A stream's reader reports `consumed | window` (its total
//!   bytes read, wrapping at 2^32, and `max_stream_buffer`) on its first read and
//!   whenever another half window was read since the last report; a writer keeps
//!   at most `window - (written - consumed)` bytes in flight, starting from
//!   xtaci's 256 KiB guess until the first UPD arrives, and waits otherwise. So a
//!   stream nobody reads stops only its own writer. The read loop no longer pauses
//!   for one full stream; it still pauses when all streams together hold
//!   `max_session_buffer`, as xtaci's token bucket does. xtaci trusts the peer to
//!   keep to the window; here a peer that leaves more unread bytes on a stream
//!   than it may ever have in flight (the larger of the window and 256 KiB) plus
//!   one frame ends the session with an error naming the stream.
//! * Data for a stream that is gone is dropped; a SYN for an id in use is ignored;
//!   a frame of another version or an unknown command ends the session.

use crate::codec::smux::{self, Frame, SmuxError, CMD_FIN, CMD_NOP, CMD_PSH, CMD_SYN};
use crate::config::types::Metadata;
use bytes::{Buf, Bytes, BytesMut};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::{CancellationToken, PollSemaphore};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MuxConfig {
    /// smux protocol version, 1 or 2 (`mux.version`); both ends must agree.
    pub version: u8,
    /// No NOPs sent and no keepalive timeout (`mux.keepaliveDisabled`).
    pub keepalive_disabled: bool,
    pub keepalive_interval: Duration,
    /// The session dies when nothing arrived for this long.
    pub keepalive_timeout: Duration,
    /// Largest PSH payload we send (`mux.maxFrameSize`).
    pub max_frame_size: usize,
    /// v1: unread bytes one stream may hold before reading pauses. v2: the
    /// window this side advertises for each stream (`mux.maxStreamBuffer`).
    pub max_stream_buffer: usize,
    /// Unread bytes all streams together may hold (`mux.maxReceiveBuffer`).
    pub max_session_buffer: usize,
}

impl Default for MuxConfig {
    /// xtaci/smux v1.5.x `DefaultConfig`, which GOST starts from.
    fn default() -> Self {
        MuxConfig {
            version: smux::VERSION_1,
            keepalive_disabled: false,
            keepalive_interval: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(30),
            max_frame_size: 32 * 1024,
            max_stream_buffer: 64 * 1024,
            max_session_buffer: 4 * 1024 * 1024,
        }
    }
}

/// A `mux.*` value GOST (or xtaci's `VerifyConfig`) would not run with. Each
/// message starts with the key, like the other metadata errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MuxConfigError {
    /// A value of the wrong type (the metadata helper's text, naming the key).
    #[error("{0}")]
    Value(String),
    #[error("metadata.mux.version: {0} is not an smux protocol version (1 or 2; both ends must use the same)")]
    Version(i64),
    #[error("metadata.mux.type: {0:?} is not implemented in Portway (it multiplexes with smux only)")]
    Type(String),
    #[error("metadata.mux.keepaliveTimeout: {timeout:?} is shorter than mux.keepaliveInterval {interval:?} (the timeout must be at least the interval)")]
    KeepaliveTimeout { timeout: Duration, interval: Duration },
    #[error("metadata.mux.maxFrameSize: {0} is larger than 65535 (an smux frame length is 16 bits)")]
    FrameSize(i64),
    #[error("metadata.mux.maxReceiveBuffer: {0} is larger than 2147483647")]
    ReceiveBuffer(i64),
    #[error("metadata.mux.maxStreamBuffer: {stream} is larger than mux.maxReceiveBuffer ({session})")]
    StreamBuffer { stream: i64, session: i64 },
}

impl From<MuxConfigError> for io::Error {
    fn from(e: MuxConfigError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

impl MuxConfig {
    /// GOST's `mux.*` keys (handler metadata on the server, connector metadata
    /// on the client). As in go-gost/x, a missing, zero or negative value keeps
    /// xtaci's default; what remains must pass xtaci's `VerifyConfig`. Unlike
    /// GOST, a value that is not a number is an error rather than a silent 0.
    pub fn from_metadata(md: &Metadata) -> Result<MuxConfig, MuxConfigError> {
        let d = MuxConfig::default();
        if let Some(t) = md.get_string(&["mux.type"]) {
            if !t.is_empty() && !t.eq_ignore_ascii_case("smux") {
                return Err(MuxConfigError::Type(t));
            }
        }
        let version = match positive_int(md, "mux.version")? {
            None => d.version,
            Some(v @ 1..=2) => v as u8,
            Some(v) => return Err(MuxConfigError::Version(v)),
        };
        let keepalive_disabled = md.get_bool(&["mux.keepaliveDisabled"]).map_err(MuxConfigError::Value)?.unwrap_or(false);
        let keepalive_interval = positive_duration(md, "mux.keepaliveInterval")?.unwrap_or(d.keepalive_interval);
        let keepalive_timeout = positive_duration(md, "mux.keepaliveTimeout")?.unwrap_or(d.keepalive_timeout);
        if !keepalive_disabled && keepalive_timeout < keepalive_interval {
            return Err(MuxConfigError::KeepaliveTimeout { timeout: keepalive_timeout, interval: keepalive_interval });
        }
        let frame = positive_int(md, "mux.maxFrameSize")?.unwrap_or(d.max_frame_size as i64);
        if frame > smux::MAX_PAYLOAD as i64 {
            return Err(MuxConfigError::FrameSize(frame));
        }
        let session = positive_int(md, "mux.maxReceiveBuffer")?.unwrap_or(d.max_session_buffer as i64);
        // xtaci keeps it in an int32 token bucket.
        if session > i32::MAX as i64 {
            return Err(MuxConfigError::ReceiveBuffer(session));
        }
        let stream = positive_int(md, "mux.maxStreamBuffer")?.unwrap_or(d.max_stream_buffer as i64);
        if stream > session {
            return Err(MuxConfigError::StreamBuffer { stream, session });
        }
        Ok(MuxConfig {
            version,
            keepalive_disabled,
            keepalive_interval,
            keepalive_timeout,
            // All three are within 1..=i32::MAX here.
            max_frame_size: frame as usize,
            max_stream_buffer: stream as usize,
            max_session_buffer: session as usize,
        })
    }

    /// Unread bytes a v2 peer that keeps to the window can leave on one stream,
    /// plus one frame of slack: beyond it the peer is broken or hostile.
    fn window_limit(&self) -> usize {
        self.max_stream_buffer.max(smux::INITIAL_PEER_WINDOW as usize) + smux::MAX_PAYLOAD
    }
}

fn positive_int(md: &Metadata, key: &str) -> Result<Option<i64>, MuxConfigError> {
    Ok(md.get_int(&[key]).map_err(MuxConfigError::Value)?.filter(|v| *v > 0))
}

fn positive_duration(md: &Metadata, key: &str) -> Result<Option<Duration>, MuxConfigError> {
    Ok(md.get_duration(&[key]).map_err(MuxConfigError::Value)?.filter(|d| !d.is_zero()))
}

/// Frames that may wait in the send queue, so a writer faster than the
/// connection is paused instead of filling memory.
const SEND_QUEUE_FRAMES: usize = 64;
/// Streams the peer opened that nobody accepted yet (xtaci's backlog).
const ACCEPT_BACKLOG: usize = 1024;
const READ_CHUNK: usize = 64 * 1024;
/// Payloads from this size on are queued as slices of the read buffer (a 64 KiB
/// buffer then holds at most a few of them); smaller ones are copied.
const ZERO_COPY_MIN: usize = 8 * 1024;
/// SYN/FIN/UPD frames waiting to be written. Data frames are bounded by the send
/// credits; these are not, so a peer that opens streams (which we close) while
/// never reading our answers is cut off here instead of growing the queue.
const MAX_CONTROL_QUEUE: usize = 4096;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Out {
    bytes: Vec<u8>,
    control: bool,
    /// Returned to the send queue's budget once the frame is written.
    _credit: Option<OwnedSemaphorePermit>,
}

struct StreamState {
    chunks: VecDeque<Bytes>,
    /// Bytes of the front chunk already read.
    head: usize,
    buffered: usize,
    fin: bool,
    waker: Option<Waker>,
    /// v2 receive side: bytes read in all, and since the last UPD.
    num_read: u32,
    unreported: u32,
    /// v2 send side: bytes sent in all, and the peer's last `consumed | window`.
    /// All three wrap at 2^32 like xtaci's counters.
    num_written: u32,
    peer_consumed: u32,
    peer_window: u32,
    write_waker: Option<Waker>,
}

impl Default for StreamState {
    fn default() -> Self {
        StreamState {
            chunks: VecDeque::new(),
            head: 0,
            buffered: 0,
            fin: false,
            waker: None,
            num_read: 0,
            unreported: 0,
            num_written: 0,
            peer_consumed: 0,
            peer_window: smux::INITIAL_PEER_WINDOW,
            write_waker: None,
        }
    }
}

#[derive(Default)]
struct Slot {
    st: Mutex<StreamState>,
}

impl Slot {
    /// Wakes the reader and the writer, for events both must see (FIN, the end).
    fn wake(&self) {
        let (r, w) = {
            let mut st = lock(&self.st);
            (st.waker.take(), st.write_waker.take())
        };
        for waker in [r, w].into_iter().flatten() {
            waker.wake();
        }
    }
}

struct Shared {
    cfg: MuxConfig,
    streams: Mutex<HashMap<u32, Arc<Slot>>>,
    next_id: Mutex<u32>,
    buffered: AtomicUsize,
    /// Wakes the reader when a stream's buffer shrank.
    space: Notify,
    out: mpsc::UnboundedSender<Out>,
    control_queued: AtomicUsize,
    credits: Arc<Semaphore>,
    cancel: CancellationToken,
    reason: Mutex<Option<String>>,
}

impl Shared {
    fn kill(&self, reason: String) {
        {
            let mut r = lock(&self.reason);
            if r.is_none() {
                *r = Some(reason);
            }
        }
        self.cancel.cancel();
        self.credits.close();
        let slots: Vec<Arc<Slot>> = lock(&self.streams).values().cloned().collect();
        for s in slots {
            s.wake();
        }
        self.space.notify_one();
    }

    fn closed_error(&self) -> io::Error {
        let why = lock(&self.reason).clone().unwrap_or_else(|| "closed".into());
        SmuxError::Closed(why).into()
    }

    fn is_v2(&self) -> bool {
        self.cfg.version == smux::VERSION_2
    }

    fn send_frame(&self, cmd: u8, sid: u32) {
        let mut bytes = Vec::with_capacity(smux::HEADER_LEN);
        if smux::encode(self.cfg.version, cmd, sid, &[], &mut bytes).is_err() {
            return;
        }
        self.send_control(bytes);
    }

    fn send_upd(&self, sid: u32, consumed: u32) {
        let mut bytes = Vec::with_capacity(smux::HEADER_LEN + smux::UPD_LEN);
        // The window fits: `from_metadata` keeps it at most i32::MAX.
        let window = u32::try_from(self.cfg.max_stream_buffer).unwrap_or(u32::MAX);
        smux::encode_upd(self.cfg.version, sid, consumed, window, &mut bytes);
        self.send_control(bytes);
    }

    fn send_control(&self, bytes: Vec<u8>) {
        if self.control_queued.fetch_add(1, Ordering::AcqRel) >= MAX_CONTROL_QUEUE {
            self.kill("the peer opens and closes streams but does not read what this side sends".into());
            return;
        }
        // A closed queue means the session is gone, and the frame with it.
        let _ = self.out.send(Out { bytes, control: true, _credit: None });
    }
}

/// One smux session. Dropping it (or `close`) ends the session and every stream.
pub struct MuxSession {
    sh: Arc<Shared>,
    accept_rx: tokio::sync::Mutex<mpsc::Receiver<MuxStream>>,
}

impl std::fmt::Debug for MuxSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MuxSession").field("streams", &self.num_streams()).field("closed", &self.is_closed()).finish()
    }
}

impl MuxSession {
    /// The side that opens streams with odd ids (GOST: the BIND server).
    pub fn client<S>(io: S, cfg: MuxConfig) -> MuxSession
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        Self::start(io, cfg, 1)
    }

    /// The side that accepts them (GOST: the client that asked for the BIND).
    pub fn server<S>(io: S, cfg: MuxConfig) -> MuxSession
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        Self::start(io, cfg, 0)
    }

    fn start<S>(io: S, cfg: MuxConfig, first_id: u32) -> MuxSession
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let (accept_tx, accept_rx) = mpsc::channel(ACCEPT_BACKLOG);
        let sh = Arc::new(Shared {
            cfg,
            streams: Mutex::new(HashMap::new()),
            next_id: Mutex::new(first_id),
            buffered: AtomicUsize::new(0),
            space: Notify::new(),
            out: out_tx,
            control_queued: AtomicUsize::new(0),
            credits: Arc::new(Semaphore::new(SEND_QUEUE_FRAMES)),
            cancel: CancellationToken::new(),
            reason: Mutex::new(None),
        });
        let (rd, wr) = tokio::io::split(io);
        let reader_sh = sh.clone();
        tokio::spawn(async move {
            let cancel = reader_sh.cancel.clone();
            let why = tokio::select! {
                _ = cancel.cancelled() => return,
                r = read_loop(rd, &reader_sh, accept_tx) => match r {
                    Ok(()) => "the peer closed the connection".to_string(),
                    Err(e) => e.to_string(),
                },
            };
            tracing::debug!("smux session ends: {why}");
            reader_sh.kill(why);
        });
        let writer_sh = sh.clone();
        tokio::spawn(async move {
            let cancel = writer_sh.cancel.clone();
            let cfg = writer_sh.cfg.clone();
            // The writer must not keep the session alive on its own.
            let weak = Arc::downgrade(&writer_sh);
            drop(writer_sh);
            let r = tokio::select! {
                _ = cancel.cancelled() => return,
                r = write_loop(wr, out_rx, &cfg, &weak) => r,
            };
            if let Some(sh) = weak.upgrade() {
                sh.kill(match r {
                    Ok(()) => "closed".into(),
                    Err(e) => format!("cannot write to the connection: {e}"),
                });
            }
        });
        MuxSession { sh, accept_rx: tokio::sync::Mutex::new(accept_rx) }
    }

    /// Opens a stream (sends SYN). Fails once the session is closed.
    pub fn open(&self) -> Result<MuxStream, SmuxError> {
        if self.sh.cancel.is_cancelled() {
            return Err(SmuxError::Closed(self.close_reason().unwrap_or_default()));
        }
        let sid = {
            let mut next = lock(&self.sh.next_id);
            let Some(sid) = next.checked_add(2) else { return Err(SmuxError::GoAway) };
            *next = sid;
            sid
        };
        let slot = Arc::new(Slot::default());
        lock(&self.sh.streams).insert(sid, slot.clone());
        self.sh.send_frame(CMD_SYN, sid);
        Ok(MuxStream::new(sid, slot, self.sh.clone()))
    }

    /// The next stream the peer opened; `None` once the session ended.
    pub async fn accept(&self) -> Option<MuxStream> {
        let mut rx = self.accept_rx.lock().await;
        // Streams that arrived before the end still hold their data.
        tokio::select! {
            biased;
            s = rx.recv() => s,
            _ = self.sh.cancel.cancelled() => None,
        }
    }

    pub fn close(&self) {
        self.sh.kill("closed locally".into());
    }

    pub fn is_closed(&self) -> bool {
        self.sh.cancel.is_cancelled()
    }

    /// Waits until the session ended, for whatever reason.
    pub async fn closed(&self) {
        self.sh.cancel.cancelled().await
    }

    /// Why the session ended, once it has.
    pub fn close_reason(&self) -> Option<String> {
        lock(&self.sh.reason).clone()
    }

    pub fn num_streams(&self) -> usize {
        lock(&self.sh.streams).len()
    }

    pub fn config(&self) -> &MuxConfig {
        &self.sh.cfg
    }
}

impl Drop for MuxSession {
    fn drop(&mut self) {
        self.sh.kill("closed locally".into());
    }
}

/// Reads frames until the peer closes (`Ok`) or breaks the protocol.
async fn read_loop<R>(mut rd: R, sh: &Arc<Shared>, accept_tx: mpsc::Sender<MuxStream>) -> Result<(), SmuxError>
where
    R: AsyncRead + Unpin,
{
    let version = sh.cfg.version;
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        loop {
            let psh = match smux::decode(&buf, version)? {
                None => break,
                Some((Frame::Psh(sid, data), used)) if !data.is_empty() => (sid, data.len(), used),
                Some((frame, used)) => {
                    handle_frame(frame, sh, &accept_tx).await?;
                    buf.advance(used);
                    continue;
                }
            };
            let (sid, len, used) = psh;
            let mut frame = buf.split_to(used);
            let body = frame.split_off(smux::HEADER_LEN.min(frame.len()));
            // Bulk payloads are handed over without a copy, as slices of the read
            // buffer. Small ones are copied: a slice keeps its whole read buffer
            // alive, and a peer spraying 1-byte frames at a stream nobody reads
            // must not pin 64 KiB per byte.
            let payload = if len >= ZERO_COPY_MIN { body.freeze() } else { Bytes::copy_from_slice(&body) };
            push(sh, sid, payload).await?;
        }
        buf.reserve(READ_CHUNK);
        let n = if sh.cfg.keepalive_disabled {
            rd.read_buf(&mut buf).await?
        } else {
            match tokio::time::timeout(sh.cfg.keepalive_timeout, rd.read_buf(&mut buf)).await {
                Err(_) => return Err(SmuxError::KeepaliveTimeout(sh.cfg.keepalive_timeout)),
                Ok(r) => r?,
            }
        };
        if n == 0 {
            if buf.is_empty() {
                return Ok(());
            }
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the peer closed the connection in the middle of a frame").into());
        }
    }
}

async fn handle_frame(frame: Frame<'_>, sh: &Arc<Shared>, accept_tx: &mpsc::Sender<MuxStream>) -> Result<(), SmuxError> {
    match frame {
        Frame::Syn(sid) => {
            let slot = {
                let mut m = lock(&sh.streams);
                if m.contains_key(&sid) {
                    return Ok(());
                }
                let slot = Arc::new(Slot::default());
                m.insert(sid, slot.clone());
                slot
            };
            // Waiting here when the backlog is full pauses reading, as in xtaci.
            let _ = accept_tx.send(MuxStream::new(sid, slot, sh.clone())).await;
        }
        Frame::Fin(sid) => {
            let slot = lock(&sh.streams).get(&sid).cloned();
            if let Some(slot) = slot {
                lock(&slot.st).fin = true;
                slot.wake();
            }
        }
        Frame::Psh(sid, data) if !data.is_empty() => push(sh, sid, Bytes::copy_from_slice(data)).await?,
        // A v1 session reads and ignores UPD, as xtaci's v1 writer does.
        Frame::Upd { sid, consumed, window } if sh.is_v2() => window_update(sh, sid, consumed, window),
        Frame::Psh(..) | Frame::Nop(_) | Frame::Upd { .. } => {}
    }
    Ok(())
}

/// The peer read up to `consumed` of what we sent on `sid`: its writer may go on.
fn window_update(sh: &Shared, sid: u32, consumed: u32, window: u32) {
    let Some(slot) = lock(&sh.streams).get(&sid).cloned() else { return };
    let w = {
        let mut st = lock(&slot.st);
        st.peer_consumed = consumed;
        st.peer_window = window;
        st.write_waker.take()
    };
    if let Some(w) = w {
        w.wake();
    }
}

/// Hands a payload to its stream once the buffers have room. In v2 a single
/// stream never makes reading wait (its window bounds it); a peer that
/// overruns the window ends the session instead.
async fn push(sh: &Arc<Shared>, sid: u32, data: Bytes) -> Result<(), SmuxError> {
    let v2 = sh.is_v2();
    loop {
        let notified = sh.space.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let Some(slot) = lock(&sh.streams).get(&sid).cloned() else { return Ok(()) };
        {
            let mut st = lock(&slot.st);
            let n = data.len();
            if v2 && st.buffered + n > sh.cfg.window_limit() {
                return Err(SmuxError::WindowExceeded { sid, unread: st.buffered + n, window: sh.cfg.max_stream_buffer });
            }
            let session_full = sh.buffered.load(Ordering::Acquire) >= sh.cfg.max_session_buffer;
            let stream_full = !v2 && st.buffered >= sh.cfg.max_stream_buffer;
            if !stream_full && !session_full {
                st.chunks.push_back(data);
                st.buffered += n;
                sh.buffered.fetch_add(n, Ordering::AcqRel);
                let w = st.waker.take();
                drop(st);
                if let Some(w) = w {
                    w.wake();
                }
                return Ok(());
            }
        }
        if sh.cancel.is_cancelled() {
            return Ok(());
        }
        notified.await;
    }
}

async fn write_loop<W>(mut wr: W, mut rx: mpsc::UnboundedReceiver<Out>, cfg: &MuxConfig, sh: &std::sync::Weak<Shared>) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let written = |m: Out| {
        if m.control {
            if let Some(sh) = sh.upgrade() {
                sh.control_queued.fetch_sub(1, Ordering::AcqRel);
            }
        }
    };
    let mut nop = Vec::with_capacity(smux::HEADER_LEN);
    smux::encode(cfg.version, CMD_NOP, 0, &[], &mut nop).map_err(io::Error::from)?;
    // A zero period would make the interval panic; it means "no keepalive".
    let keepalive = !cfg.keepalive_disabled && !cfg.keepalive_interval.is_zero();
    let period = if keepalive { cfg.keepalive_interval } else { Duration::from_secs(3600) };
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            m = rx.recv() => {
                let Some(m) = m else { return Ok(()) };
                wr.write_all(&m.bytes).await?;
                written(m);
                // Whatever queued meanwhile goes out before one flush.
                while let Ok(m) = rx.try_recv() {
                    wr.write_all(&m.bytes).await?;
                    written(m);
                }
                wr.flush().await?;
            }
            _ = tick.tick(), if keepalive => {
                wr.write_all(&nop).await?;
                wr.flush().await?;
            }
        }
    }
}

/// One stream of a session: bytes in both directions, FIN on shutdown or drop.
pub struct MuxStream {
    id: u32,
    slot: Arc<Slot>,
    sh: Arc<Shared>,
    credits: PollSemaphore,
    fin_sent: bool,
}

impl std::fmt::Debug for MuxStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MuxStream").field("id", &self.id).finish()
    }
}

impl MuxStream {
    fn new(id: u32, slot: Arc<Slot>, sh: Arc<Shared>) -> MuxStream {
        let credits = PollSemaphore::new(sh.credits.clone());
        MuxStream { id, slot, sh, credits, fin_sent: false }
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    fn send_fin(&mut self) {
        if !self.fin_sent {
            self.fin_sent = true;
            self.sh.send_frame(CMD_FIN, self.id);
        }
    }

    /// How many bytes v2 flow control lets this stream send now, or `Pending`
    /// (with the writer's waker kept for the next UPD, FIN or the end).
    fn poll_window(&self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut st = lock(&self.slot.st);
        if st.fin {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "smux: the peer closed the stream")));
        }
        if !self.sh.is_v2() {
            return Poll::Ready(Ok(usize::MAX));
        }
        // Wrapping difference read as signed, as xtaci does: a peer claiming to
        // have read more than was sent is out of step.
        let inflight = st.num_written.wrapping_sub(st.peer_consumed) as i32;
        if inflight < 0 {
            return Poll::Ready(Err(SmuxError::Overacknowledged(self.id).into()));
        }
        let room = i64::from(st.peer_window) - i64::from(inflight);
        if room > 0 {
            return Poll::Ready(Ok(usize::try_from(room).unwrap_or(usize::MAX)));
        }
        st.write_waker = Some(cx.waker().clone());
        drop(st);
        // Checked after the waker is in place, so an end in between is not missed.
        if self.sh.cancel.is_cancelled() {
            return Poll::Ready(Err(self.sh.closed_error()));
        }
        Poll::Pending
    }

    /// Counts what was read and, in v2, tells the peer once enough was
    /// (xtaci's rule: on the first read, then each half window).
    fn consumed(&self, st: &mut StreamState, n: usize) -> Option<u32> {
        if !self.sh.is_v2() || n == 0 {
            return None;
        }
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        st.num_read = st.num_read.wrapping_add(n);
        st.unreported = st.unreported.saturating_add(n);
        let half = u32::try_from(self.sh.cfg.max_stream_buffer / 2).unwrap_or(u32::MAX);
        if st.unreported >= half || st.num_read == n {
            st.unreported = 0;
            return Some(st.num_read);
        }
        None
    }
}

impl AsyncRead for MuxStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        let mut st = lock(&me.slot.st);
        if st.buffered > 0 {
            let mut n = 0;
            while buf.remaining() > 0 {
                let head = st.head;
                let Some(front) = st.chunks.front() else { break };
                let avail = front.get(head..).unwrap_or_default();
                let take = avail.len().min(buf.remaining());
                buf.put_slice(&avail[..take]);
                n += take;
                if take == avail.len() {
                    st.chunks.pop_front();
                    st.head = 0;
                } else {
                    st.head += take;
                }
            }
            st.buffered -= n;
            let report = me.consumed(&mut st, n);
            drop(st);
            me.sh.buffered.fetch_sub(n, Ordering::AcqRel);
            me.sh.space.notify_one();
            if let Some(consumed) = report {
                me.sh.send_upd(me.id, consumed);
            }
            return Poll::Ready(Ok(()));
        }
        if st.fin {
            return Poll::Ready(Ok(()));
        }
        if me.sh.cancel.is_cancelled() {
            return Poll::Ready(Err(me.sh.closed_error()));
        }
        st.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl AsyncWrite for MuxStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if me.fin_sent {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "smux: write after the stream was shut down")));
        }
        let room = std::task::ready!(me.poll_window(cx))?;
        let Some(credit) = std::task::ready!(me.credits.poll_acquire(cx)) else {
            return Poll::Ready(Err(me.sh.closed_error()));
        };
        let n = buf.len().min(me.sh.cfg.max_frame_size).min(smux::MAX_PAYLOAD).min(room);
        let mut bytes = Vec::with_capacity(smux::HEADER_LEN + n);
        smux::encode(me.sh.cfg.version, CMD_PSH, me.id, &buf[..n], &mut bytes).map_err(io::Error::from)?;
        if me.sh.is_v2() {
            // Counted before the frame can leave: an UPD covering it may come
            // back before this function would get to count it afterwards.
            // n ≤ 65535, so the cast is exact.
            let mut st = lock(&me.slot.st);
            st.num_written = st.num_written.wrapping_add(n as u32);
        }
        if me.sh.out.send(Out { bytes, control: false, _credit: Some(credit) }).is_err() {
            return Poll::Ready(Err(me.sh.closed_error()));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().send_fin();
        Poll::Ready(Ok(()))
    }
}

impl Drop for MuxStream {
    fn drop(&mut self) {
        self.send_fin();
        let removed = {
            let mut m = lock(&self.sh.streams);
            match m.get(&self.id) {
                Some(s) if Arc::ptr_eq(s, &self.slot) => m.remove(&self.id),
                _ => None,
            }
        };
        if removed.is_some() {
            let mut st = lock(&self.slot.st);
            let n = std::mem::take(&mut st.buffered);
            st.chunks.clear();
            drop(st);
            self.sh.buffered.fetch_sub(n, Ordering::AcqRel);
            self.sh.space.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    const T: Duration = Duration::from_secs(5);

    async fn t<F: std::future::Future>(f: F) -> F::Output {
        tokio::time::timeout(T, f).await.expect("timed out")
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// What a GOST BIND server does on the wire for one peer (§5.8 C), checked
    /// byte for byte from the other end.
    #[tokio::test]
    async fn client_role_writes_example_c() {
        let (a, mut raw) = duplex(1 << 16);
        let sess = MuxSession::client(a, MuxConfig::default());
        let mut s = sess.open().unwrap();
        assert_eq!(s.id(), 3);
        s.write_all(&hex("05 00 00 01 CB007109 9C40")).await.unwrap();
        s.shutdown().await.unwrap();
        let want = hex("01 00 0000 03000000  01 02 0A00 03000000 05 00 00 01 CB007109 9C40  01 01 0000 03000000");
        let mut got = vec![0u8; want.len()];
        t(raw.read_exact(&mut got)).await.unwrap();
        assert_eq!(got, want);
        assert_eq!(sess.open().unwrap().id(), 5);
    }

    #[tokio::test]
    async fn server_role_accepts_reads_split_frames_and_opens_even_ids() {
        let (a, mut raw) = duplex(1 << 16);
        let sess = MuxSession::server(a, MuxConfig::default());
        let wire = hex("01 00 0000 03000000  01 02 0500 03000000 68656c6c6f  01 01 0000 03000000");
        // One byte per write: every frame arrives split at every position.
        let feeder = tokio::spawn(async move {
            for b in wire {
                raw.write_all(&[b]).await.unwrap();
                tokio::task::yield_now().await;
            }
            raw
        });
        let mut s = t(sess.accept()).await.unwrap();
        assert_eq!(s.id(), 3);
        let mut got = Vec::new();
        t(s.read_to_end(&mut got)).await.unwrap();
        assert_eq!(got, b"hello");
        assert!(s.write_all(b"x").await.is_err(), "no writes after the peer's FIN");
        let mut raw = feeder.await.unwrap();
        let mine = sess.open().unwrap();
        assert_eq!(mine.id(), 2);
        let mut syn = [0u8; 8];
        t(raw.read_exact(&mut syn)).await.unwrap();
        assert_eq!(syn.to_vec(), hex("01 00 0000 02000000"));
    }

    async fn expect_dead(bytes: &str, reason_has: &str) {
        let (a, mut raw) = duplex(1 << 16);
        let sess = MuxSession::server(a, MuxConfig::default());
        raw.write_all(&hex(bytes)).await.unwrap();
        raw.shutdown().await.unwrap();
        assert!(t(sess.accept()).await.is_none());
        t(sess.closed()).await;
        let why = sess.close_reason().unwrap();
        assert!(why.contains(reason_has), "{why}");
        // The connection is given up: the peer sees EOF.
        let mut rest = Vec::new();
        t(raw.read_to_end(&mut rest)).await.unwrap();
    }

    #[tokio::test]
    async fn protocol_errors_end_the_session() {
        expect_dead("02 03 0000 00000000", "version 2").await;
        expect_dead("01 07 0000 00000000", "unknown frame command 0x07").await;
        expect_dead("48 54 54 50 2f 31 2e 31", "version 72").await;
        // A PSH claiming 65535 bytes, then EOF: an error, no huge wait or panic.
        expect_dead("01 02 FFFF 03000000 00", "middle of a frame").await;
    }

    #[tokio::test]
    async fn keepalive_nop_and_timeout() {
        let cfg = MuxConfig { keepalive_interval: Duration::from_millis(50), keepalive_timeout: Duration::from_millis(300), ..Default::default() };
        let (a, mut raw) = duplex(1 << 16);
        let sess = MuxSession::server(a, cfg);
        let mut nop = [0u8; 8];
        t(raw.read_exact(&mut nop)).await.unwrap();
        assert_eq!(nop.to_vec(), hex("01 03 0000 00000000"));
        t(sess.closed()).await;
        assert!(sess.close_reason().unwrap().contains("keepalive timeout"));
    }

    #[tokio::test]
    async fn a_full_stream_pauses_reading_and_resumes() {
        let cfg = MuxConfig { max_stream_buffer: 1000, ..Default::default() };
        let (a, b) = duplex(4096);
        let srv = MuxSession::server(a, cfg.clone());
        let cli = MuxSession::client(b, cfg);
        let mut w = cli.open().unwrap();
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let p2 = payload.clone();
        let writer = tokio::spawn(async move {
            w.write_all(&p2).await.unwrap();
            w.shutdown().await.unwrap();
            w
        });
        let mut r = t(srv.accept()).await.unwrap();
        // Nobody reads for a while: the session must not buffer it all.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(srv.sh.buffered.load(Ordering::Acquire) < 1000 + 32 * 1024 + 1);
        let mut got = Vec::new();
        t(r.read_to_end(&mut got)).await.unwrap();
        assert_eq!(got, payload);
        let _w = t(writer).await.unwrap();
    }

    #[tokio::test]
    async fn a_peer_that_never_reads_cannot_grow_the_control_queue() {
        let (a, mut raw) = duplex(64);
        let sess = Arc::new(MuxSession::client(a, MuxConfig::default()));
        let s2 = sess.clone();
        let closer = tokio::spawn(async move {
            while let Some(st) = s2.accept().await {
                drop(st);
            }
        });
        let mut syns = Vec::new();
        for sid in 0..(MAX_CONTROL_QUEUE as u32 + 200) {
            smux::encode(1, CMD_SYN, 2 + 2 * sid, &[], &mut syns).unwrap();
        }
        // Written, never reading a byte of the answers.
        let _ = t(async {
            tokio::select! {
                _ = raw.write_all(&syns) => {}
                _ = sess.closed() => {}
            }
        })
        .await;
        t(sess.closed()).await;
        assert!(sess.close_reason().unwrap().contains("does not read"), "{:?}", sess.close_reason());
        t(closer).await.unwrap();
    }

    #[tokio::test]
    async fn session_end_fails_streams_and_opens() {
        let (a, b) = duplex(4096);
        let srv = MuxSession::server(a, MuxConfig::default());
        let cli = MuxSession::client(b, MuxConfig::default());
        let _w = cli.open().unwrap();
        let mut r = t(srv.accept()).await.unwrap();
        drop(cli);
        let mut x = [0u8; 1];
        let e = t(r.read(&mut x)).await.unwrap_err();
        assert!(e.to_string().contains("session closed"), "{e}");
        assert!(srv.open().is_err());
        assert!(t(srv.accept()).await.is_none());
    }

    fn md(pairs: &[(&str, &str)]) -> Metadata {
        let mut m = Metadata::default();
        for (k, v) in pairs {
            m.insert(*k, serde_yaml::Value::String((*v).into()));
        }
        m
    }

    #[test]
    fn from_metadata_reads_gosts_keys_with_xtacis_defaults_and_checks() {
        let d = MuxConfig::from_metadata(&Metadata::default()).unwrap();
        assert_eq!(d, MuxConfig::default());
        assert_eq!((d.version, d.max_frame_size, d.max_stream_buffer, d.max_session_buffer), (1, 32768, 65536, 4194304));
        assert_eq!((d.keepalive_interval, d.keepalive_timeout, d.keepalive_disabled), (Duration::from_secs(10), Duration::from_secs(30), false));

        let c = MuxConfig::from_metadata(&md(&[
            ("mux.version", "2"),
            ("mux.keepaliveInterval", "2s"),
            ("mux.keepaliveTimeout", "5"),
            ("mux.maxFrameSize", "65535"),
            ("mux.maxReceiveBuffer", "1048576"),
            ("MUX.maxstreambuffer", "131072"),
            ("mux.type", "smux"),
        ]))
        .unwrap();
        assert_eq!((c.version, c.keepalive_interval, c.keepalive_timeout), (2, Duration::from_secs(2), Duration::from_secs(5)));
        assert_eq!((c.max_frame_size, c.max_session_buffer, c.max_stream_buffer), (65535, 1048576, 131072));

        // Zero or negative means "default" in GOST, not an error.
        let z = MuxConfig::from_metadata(&md(&[("mux.version", "0"), ("mux.maxFrameSize", "-5"), ("mux.keepaliveInterval", "0s")])).unwrap();
        assert_eq!(z, MuxConfig::default());
        // With keepalive off, xtaci skips the interval/timeout check.
        let k = MuxConfig::from_metadata(&md(&[("mux.keepaliveDisabled", "true"), ("mux.keepaliveInterval", "1m")])).unwrap();
        assert!(k.keepalive_disabled);

        let err = |pairs: &[(&str, &str)]| MuxConfig::from_metadata(&md(pairs)).unwrap_err().to_string();
        assert_eq!(err(&[("mux.version", "3")]), "metadata.mux.version: 3 is not an smux protocol version (1 or 2; both ends must use the same)");
        assert_eq!(err(&[("mux.version", "two")]), "metadata.mux.version: \"two\" is not an integer");
        assert_eq!(err(&[("mux.maxFrameSize", "65536")]), "metadata.mux.maxFrameSize: 65536 is larger than 65535 (an smux frame length is 16 bits)");
        assert_eq!(
            err(&[("mux.keepaliveInterval", "1m")]),
            "metadata.mux.keepaliveTimeout: 30s is shorter than mux.keepaliveInterval 60s (the timeout must be at least the interval)"
        );
        assert_eq!(err(&[("mux.maxStreamBuffer", "8388608")]), "metadata.mux.maxStreamBuffer: 8388608 is larger than mux.maxReceiveBuffer (4194304)");
        assert_eq!(err(&[("mux.maxReceiveBuffer", "4294967296"), ("mux.maxStreamBuffer", "1")]), "metadata.mux.maxReceiveBuffer: 4294967296 is larger than 2147483647");
        assert!(err(&[("mux.keepaliveTimeout", "soon")]).starts_with("metadata.mux.keepaliveTimeout: "));
        assert!(err(&[("mux.keepaliveDisabled", "maybe")]).starts_with("metadata.mux.keepaliveDisabled: "));
        assert_eq!(err(&[("mux.type", "yamux")]), "metadata.mux.type: \"yamux\" is not implemented in Portway (it multiplexes with smux only)");
    }

    fn v2(window: usize) -> MuxConfig {
        MuxConfig { version: smux::VERSION_2, max_stream_buffer: window, ..Default::default() }
    }

    /// Reads whole frames off a raw peer connection: (cmd, sid, payload).
    async fn frame<R: AsyncRead + Unpin>(r: &mut R) -> (u8, u32, Vec<u8>) {
        let mut h = [0u8; 8];
        t(r.read_exact(&mut h)).await.unwrap();
        let len = match h[1] {
            CMD_PSH => u16::from_le_bytes([h[2], h[3]]) as usize,
            smux::CMD_UPD => smux::UPD_LEN,
            _ => 0,
        };
        let mut body = vec![0u8; len];
        t(r.read_exact(&mut body)).await.unwrap();
        (h[1], u32::from_le_bytes([h[4], h[5], h[6], h[7]]), body)
    }

    /// xtaci's reader rule: UPD on the first read, then whenever half the
    /// window was read since the last one; bytes as xtaci lays them out.
    #[tokio::test]
    async fn v2_reader_reports_first_read_and_every_half_window() {
        let (a, mut raw) = duplex(1 << 16);
        let sess = MuxSession::server(a, v2(1000));
        let mut wire = hex("02 00 0000 03000000");
        smux::encode(2, CMD_PSH, 3, &[7u8; 700], &mut wire).unwrap();
        raw.write_all(&wire).await.unwrap();
        let mut s = t(sess.accept()).await.unwrap();
        let mut b = vec![0u8; 100];
        t(s.read_exact(&mut b)).await.unwrap();
        let mut upd = [0u8; 16];
        t(raw.read_exact(&mut upd)).await.unwrap();
        assert_eq!(upd.to_vec(), hex("02 04 0800 03000000 64000000 E8030000"));
        // 400 more: 400 < 500 since the last report, nothing sent. 100 more: 500.
        let mut b = vec![0u8; 400];
        t(s.read_exact(&mut b)).await.unwrap();
        let mut b = vec![0u8; 100];
        t(s.read_exact(&mut b)).await.unwrap();
        t(raw.read_exact(&mut upd)).await.unwrap();
        assert_eq!(upd.to_vec(), hex("02 04 0800 03000000 58020000 E8030000"), "consumed 600, no UPD in between");
    }

    /// The writer never has more in flight than the last UPD allows, starting
    /// from xtaci's 256 KiB guess; the raw peer checks every byte it gets.
    #[tokio::test]
    async fn v2_writer_keeps_to_the_window_it_is_given() {
        let (a, raw) = duplex(1 << 16);
        let (mut rr, mut rw) = tokio::io::split(raw);
        let sess = MuxSession::client(a, v2(65536));
        let mut s = sess.open().unwrap();
        let total = 600_000usize;
        let payload: Vec<u8> = (0..total).map(|i| (i % 253) as u8).collect();
        let p2 = payload.clone();
        let writer = tokio::spawn(async move {
            s.write_all(&p2).await.unwrap();
            s.shutdown().await.unwrap();
            s
        });
        assert_eq!(frame(&mut rr).await.0, CMD_SYN);
        let (mut got, mut allowed) = (Vec::new(), smux::INITIAL_PEER_WINDOW as usize);
        let mut reported = 0usize;
        loop {
            let (cmd, sid, body) = frame(&mut rr).await;
            assert_eq!(sid, 3);
            if cmd == CMD_FIN {
                break;
            }
            assert_eq!(cmd, CMD_PSH);
            got.extend_from_slice(&body);
            assert!(got.len() <= allowed, "{} bytes sent, {allowed} allowed", got.len());
            // Consume in 20000-byte steps and grant a 30000-byte window. What the
            // writer sent under an earlier, larger allowance may still be on its
            // way, so the bound is the largest one granted so far.
            if got.len() - reported >= 20_000 || got.len() == allowed {
                reported = got.len();
                allowed = allowed.max(reported + 30_000);
                let mut u = Vec::new();
                smux::encode_upd(2, 3, reported as u32, 30_000, &mut u);
                t(rw.write_all(&u)).await.unwrap();
            }
        }
        assert_eq!(got, payload);
        let _s = t(writer).await.unwrap();
    }

    #[tokio::test]
    async fn v2_peer_acknowledging_unsent_bytes_fails_the_write() {
        let (a, mut raw) = duplex(1 << 16);
        let sess = MuxSession::client(a, v2(65536));
        let mut s = sess.open().unwrap();
        let mut syn = [0u8; 8];
        t(raw.read_exact(&mut syn)).await.unwrap();
        let mut u = Vec::new();
        smux::encode_upd(2, 3, 100, 65536, &mut u);
        raw.write_all(&u).await.unwrap();
        // The UPD is applied by the session's reader; wait until it shows.
        let e = t(async {
            loop {
                match s.write(b"x").await {
                    Ok(_) => tokio::task::yield_now().await,
                    Err(e) => break e,
                }
            }
        })
        .await;
        assert!(e.to_string().contains("acknowledged more bytes on stream 3 than were sent"), "{e}");
    }

    #[tokio::test]
    async fn keepalive_disabled_sends_no_nop_and_never_times_out() {
        let cfg = MuxConfig { keepalive_disabled: true, keepalive_interval: Duration::from_millis(20), keepalive_timeout: Duration::from_millis(50), ..Default::default() };
        let (a, mut raw) = duplex(1 << 16);
        let sess = MuxSession::server(a, cfg);
        let mut x = [0u8; 1];
        // Several intervals and timeouts pass in silence.
        assert!(tokio::time::timeout(Duration::from_millis(300), raw.read(&mut x)).await.is_err(), "no NOP expected");
        assert!(!sess.is_closed(), "{:?}", sess.close_reason());
    }

    async fn tcp_pair() -> (tokio::net::TcpStream, tokio::net::TcpStream) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (c, s) = tokio::join!(tokio::net::TcpStream::connect(addr), l.accept());
        (c.unwrap(), s.unwrap().0)
    }

    fn pattern(seed: u32, len: usize) -> Vec<u8> {
        (0..len).map(|i| ((i as u32).wrapping_mul(31).wrapping_add(seed * 7) % 251) as u8).collect()
    }

    /// 8 streams × 4 MB each way at once through a 64 KiB window over TCP.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn v2_eight_streams_of_4mb_each_way_over_tcp() {
        const LEN: usize = 4 * 1024 * 1024;
        let (c, s) = tcp_pair().await;
        let cli = MuxSession::client(c, v2(64 * 1024));
        let srv = Arc::new(MuxSession::server(s, v2(64 * 1024)));
        // The server echoes every stream back.
        let echo = {
            let srv = srv.clone();
            tokio::spawn(async move {
                let mut tasks = Vec::new();
                for _ in 0..8 {
                    let st = srv.accept().await.unwrap();
                    // smux has no half-close: the client sends FIN only once it
                    // has everything back, and that FIN ends the copy.
                    tasks.push(tokio::spawn(async move {
                        let (mut r, mut w) = tokio::io::split(st);
                        let n = tokio::io::copy(&mut r, &mut w).await.unwrap();
                        assert_eq!(n, LEN as u64);
                    }));
                }
                tasks
            })
        };
        let mut jobs = Vec::new();
        for i in 0..8u32 {
            let st = cli.open().unwrap();
            jobs.push(tokio::spawn(async move {
                let data = pattern(i, LEN);
                let (mut r, mut w) = tokio::io::split(st);
                let d2 = data.clone();
                let wr = tokio::spawn(async move {
                    w.write_all(&d2).await.unwrap();
                    w
                });
                let mut got = Vec::with_capacity(LEN);
                let mut buf = vec![0u8; 64 * 1024];
                while got.len() < LEN {
                    let n = r.read(&mut buf).await.unwrap();
                    assert!(n > 0, "stream {i} ended after {} bytes", got.len());
                    got.extend_from_slice(&buf[..n]);
                }
                let w = wr.await.unwrap();
                assert!(got == data, "stream {i}: bytes differ");
                drop((r, w));
            }));
        }
        tokio::time::timeout(Duration::from_secs(30), async {
            for j in jobs {
                j.await.unwrap();
            }
        })
        .await
        .expect("8 × 4 MB did not get through within 30 s");
        for tk in t(echo).await.unwrap() {
            t(tk).await.unwrap();
        }
        assert!(!cli.is_closed() && !srv.is_closed(), "{:?} {:?}", cli.close_reason(), srv.close_reason());
    }

    /// The point of v2: a stream nobody reads stops only its own writer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn v2_unread_stream_blocks_only_its_own_writer() {
        let (c, s) = tcp_pair().await;
        let cli = MuxSession::client(c, v2(64 * 1024));
        let srv = MuxSession::server(s, v2(64 * 1024));
        let sent = Arc::new(AtomicUsize::new(0));
        let mut stuck = cli.open().unwrap();
        let stuck_data = pattern(1, 2 * 1024 * 1024);
        let (sent2, d2) = (sent.clone(), stuck_data.clone());
        let stuck_writer = tokio::spawn(async move {
            for chunk in d2.chunks(4096) {
                stuck.write_all(chunk).await.unwrap();
                sent2.fetch_add(chunk.len(), Ordering::AcqRel);
            }
            stuck
        });
        let mut idle = t(srv.accept()).await.unwrap();
        // A second stream moves 3 MB (12× the initial window) while the first is stuck.
        let mut free = cli.open().unwrap();
        let free_data = pattern(2, 3 * 1024 * 1024);
        let f2 = free_data.clone();
        let free_writer = tokio::spawn(async move {
            free.write_all(&f2).await.unwrap();
            free.shutdown().await.unwrap();
            free
        });
        let mut other = t(srv.accept()).await.unwrap();
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(15), other.read_to_end(&mut got)).await.expect("the free stream stalled").unwrap();
        assert!(got == free_data, "free stream bytes differ");
        let _f = t(free_writer).await.unwrap();
        // The unread stream's writer stopped at the window xtaci starts with.
        let stuck_sent = sent.load(Ordering::Acquire);
        assert!(stuck_sent <= smux::INITIAL_PEER_WINDOW as usize, "{stuck_sent} bytes sent to a stream nobody reads");
        assert!(!stuck_writer.is_finished());
        assert!(srv.sh.buffered.load(Ordering::Acquire) <= smux::INITIAL_PEER_WINDOW as usize);
        // Reading it now lets everything through.
        let mut got = vec![0u8; stuck_data.len()];
        tokio::time::timeout(Duration::from_secs(15), idle.read_exact(&mut got)).await.expect("the stuck stream never resumed").unwrap();
        assert!(got == stuck_data, "stuck stream bytes differ");
        let _s = t(stuck_writer).await.unwrap();
    }

    /// A peer that ignores the window cannot make this side buffer without
    /// limit: past the window (and xtaci's 256 KiB start) plus a frame, the
    /// session ends and says why.
    #[tokio::test]
    async fn v2_peer_overrunning_the_window_ends_the_session() {
        let (c, s) = tcp_pair().await;
        let sess = MuxSession::server(s, v2(64 * 1024));
        let (mut rr, mut rw) = c.into_split();
        // Drain whatever the session writes so only the window can stop it.
        let drain = tokio::spawn(async move {
            let mut sink = Vec::new();
            let _ = rr.read_to_end(&mut sink).await;
        });
        let feeder = tokio::spawn(async move {
            let mut wire = hex("02 00 0000 03000000");
            for _ in 0..16 {
                smux::encode(2, CMD_PSH, 3, &[0u8; 32 * 1024], &mut wire).unwrap();
            }
            // The session may end while this is still being written.
            let _ = rw.write_all(&wire).await;
            rw
        });
        let _unread = t(sess.accept()).await.unwrap();
        t(sess.closed()).await;
        let why = sess.close_reason().unwrap();
        assert!(why.contains("stream 3") && why.contains("more than the window of 65536") && why.contains("ignores flow control"), "{why}");
        assert!(sess.sh.buffered.load(Ordering::Acquire) <= sess.sh.cfg.window_limit());
        drop(t(feeder).await.unwrap());
        t(drain).await.unwrap();
    }

    #[tokio::test]
    async fn mismatched_versions_end_the_session_naming_both() {
        let (c, s) = tcp_pair().await;
        let cli = MuxSession::client(c, MuxConfig::default());
        let srv = MuxSession::server(s, v2(64 * 1024));
        let mut st = cli.open().unwrap();
        st.write_all(b"hello").await.unwrap();
        t(srv.closed()).await;
        let why = srv.close_reason().unwrap();
        assert_eq!(why, "smux: peer speaks protocol version 1, this side version 2 (mux.version must match on both ends)");
        // The v1 side sees the connection go.
        t(cli.closed()).await;
    }
}
