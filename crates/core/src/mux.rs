//! An xtaci/smux session (protocol v1, GOST's default) over any byte stream:
//! open and accept streams, each an `AsyncRead + AsyncWrite` that can be piped
//! like a socket. The frames are `codec::smux`.
//!
//! Behaviour that matters for interop with GOST (xtaci/smux v1.5.x `session.go`,
//! `stream.go`, `mux.go`):
//! * Stream ids: the session that opens streams as the smux *client* uses odd ids
//!   from 3 (xtaci starts its counter at 1 and adds 2 before each open), the
//!   *server* even ids from 2.
//! * Keepalive: a NOP every 10 s; the session dies after 30 s in which nothing
//!   arrived, except while reading is paused for want of buffer space.
//! * No half-close: FIN ends the stream. After the peer's FIN, reads drain what
//!   arrived and then see EOF, and writes fail (xtaci answers `io.EOF`). After our
//!   own FIN (`shutdown`), reads go on until the peer's FIN, which a GOST peer
//!   sends as soon as its read sees ours.
//! * v1 has no flow control. Memory stays bounded the way xtaci bounds it: the
//!   session stops reading the underlying stream while the stream a frame is for
//!   holds `max_stream_buffer` unread bytes or all streams together hold
//!   `max_session_buffer`. One stream nobody reads therefore stalls the others,
//!   exactly as it does in Go.
//! * Data for a stream that is gone is dropped; a SYN for an id in use is ignored;
//!   a frame of another version or an unknown command ends the session.
//!
//! Version 2 (window updates) is not implemented: a v2 peer is refused by the
//! version check.

use crate::codec::smux::{self, Frame, SmuxError, CMD_FIN, CMD_NOP, CMD_PSH, CMD_SYN};
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

#[derive(Debug, Clone)]
pub struct MuxConfig {
    pub version: u8,
    pub keepalive_interval: Duration,
    /// The session dies when nothing arrived for this long.
    pub keepalive_timeout: Duration,
    /// Largest PSH payload we send (xtaci's default).
    pub max_frame_size: usize,
    /// Unread bytes one stream may hold before reading pauses.
    pub max_stream_buffer: usize,
    /// Unread bytes all streams together may hold (xtaci `MaxReceiveBuffer`).
    pub max_session_buffer: usize,
}

impl Default for MuxConfig {
    /// xtaci/smux v1.5.x `DefaultConfig`, which GOST uses unchanged.
    fn default() -> Self {
        MuxConfig {
            version: smux::VERSION_1,
            keepalive_interval: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(30),
            max_frame_size: 32 * 1024,
            max_stream_buffer: 256 * 1024,
            max_session_buffer: 4 * 1024 * 1024,
        }
    }
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
/// SYN/FIN frames waiting to be written. Data frames are bounded by the send
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

#[derive(Default)]
struct StreamState {
    chunks: VecDeque<Bytes>,
    /// Bytes of the front chunk already read.
    head: usize,
    buffered: usize,
    fin: bool,
    waker: Option<Waker>,
}

#[derive(Default)]
struct Slot {
    st: Mutex<StreamState>,
}

impl Slot {
    fn wake(&self) {
        if let Some(w) = lock(&self.st).waker.take() {
            w.wake();
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

    fn send_frame(&self, cmd: u8, sid: u32) {
        let mut bytes = Vec::with_capacity(smux::HEADER_LEN);
        if smux::encode(self.cfg.version, cmd, sid, &[], &mut bytes).is_err() {
            return;
        }
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
                    handle_frame(frame, sh, &accept_tx).await;
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
            push(sh, sid, payload).await;
        }
        buf.reserve(READ_CHUNK);
        let n = match tokio::time::timeout(sh.cfg.keepalive_timeout, rd.read_buf(&mut buf)).await {
            Err(_) => return Err(SmuxError::KeepaliveTimeout(sh.cfg.keepalive_timeout)),
            Ok(r) => r?,
        };
        if n == 0 {
            if buf.is_empty() {
                return Ok(());
            }
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the peer closed the connection in the middle of a frame").into());
        }
    }
}

async fn handle_frame(frame: Frame<'_>, sh: &Arc<Shared>, accept_tx: &mpsc::Sender<MuxStream>) {
    match frame {
        Frame::Syn(sid) => {
            let slot = {
                let mut m = lock(&sh.streams);
                if m.contains_key(&sid) {
                    return;
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
        Frame::Psh(sid, data) if !data.is_empty() => push(sh, sid, Bytes::copy_from_slice(data)).await,
        Frame::Psh(..) | Frame::Nop(_) | Frame::Upd { .. } => {}
    }
}

/// Hands a payload to its stream once the buffers have room.
async fn push(sh: &Arc<Shared>, sid: u32, data: Bytes) {
    loop {
        let notified = sh.space.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let Some(slot) = lock(&sh.streams).get(&sid).cloned() else { return };
        {
            let mut st = lock(&slot.st);
            let session_full = sh.buffered.load(Ordering::Acquire) >= sh.cfg.max_session_buffer;
            if st.buffered < sh.cfg.max_stream_buffer && !session_full {
                let n = data.len();
                st.chunks.push_back(data);
                st.buffered += n;
                sh.buffered.fetch_add(n, Ordering::AcqRel);
                let w = st.waker.take();
                drop(st);
                if let Some(w) = w {
                    w.wake();
                }
                return;
            }
        }
        if sh.cancel.is_cancelled() {
            return;
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
    let start = tokio::time::Instant::now() + cfg.keepalive_interval;
    let mut tick = tokio::time::interval_at(start, cfg.keepalive_interval);
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
            _ = tick.tick() => {
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
            drop(st);
            me.sh.buffered.fetch_sub(n, Ordering::AcqRel);
            me.sh.space.notify_one();
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
        if lock(&me.slot.st).fin {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "smux: the peer closed the stream")));
        }
        let Some(credit) = std::task::ready!(me.credits.poll_acquire(cx)) else {
            return Poll::Ready(Err(me.sh.closed_error()));
        };
        let n = buf.len().min(me.sh.cfg.max_frame_size).min(smux::MAX_PAYLOAD);
        let mut bytes = Vec::with_capacity(smux::HEADER_LEN + n);
        smux::encode(me.sh.cfg.version, CMD_PSH, me.id, &buf[..n], &mut bytes).map_err(io::Error::from)?;
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
}
