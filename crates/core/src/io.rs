//! Moving bytes between two sockets while counting them.
//!
//! Buffers are taken only while data is flowing and dropped as soon as a socket has
//! nothing more to read, so an idle connection holds no buffer at all (fwdbench's
//! memory test holds thousands of them open).

use crate::conn::{Conn, Pre};
use crate::stats::Meter;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::net::TcpStream;

const BUF: usize = 64 * 1024;

/// Which way bytes go, for counting.
#[derive(Clone, Copy)]
enum Dir {
    /// client → target
    In,
    /// target → client
    Out,
}

/// Counts directions that reached EOF. The second one needs no shutdown(2): both
/// sockets are closed right after, which sends the FIN anyway (one syscall less
/// per connection).
fn eof(dst: &TcpStream, ended: &std::sync::atomic::AtomicU8) {
    if ended.fetch_add(1, Relaxed) == 0 {
        shutdown_write(dst);
    }
}

fn shutdown_write(s: &TcpStream) {
    // SAFETY: shutdown(2) on a descriptor we own; errors (already closed) are harmless.
    unsafe {
        libc::shutdown(s.as_raw_fd(), libc::SHUT_WR);
    }
}

/// Waits until `s` has something to read. `TcpStream::readable` parks a waiter
/// node (160 bytes) in the awaiting future, and so in every connection's task;
/// this uses the socket's own reader waker slot instead, which is enough as one
/// future reads each socket here.
fn read_ready(s: &TcpStream) -> impl Future<Output = io::Result<()>> + '_ {
    std::future::poll_fn(move |cx| s.poll_read_ready(cx))
}

/// `read_ready` for writing: one future writes each socket here.
fn write_ready(s: &TcpStream) -> impl Future<Output = io::Result<()>> + '_ {
    std::future::poll_fn(move |cx| s.poll_write_ready(cx))
}

async fn write_all(dst: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        write_ready(dst).await?;
        match dst.try_write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A kernel pipe for splice(2): bytes move socket → pipe → socket without being
/// copied through user space. Closed on drop.
struct Pipe {
    r: libc::c_int,
    w: libc::c_int,
    /// Bytes in the pipe not yet written out.
    pending: usize,
    cap: usize,
}

impl Pipe {
    fn new() -> io::Result<Pipe> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 fills the two-element array on success.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // A bigger pipe means fewer splice calls per megabyte in bulk mode; pages are
        // only allocated as data passes. Failure just keeps the 64 KiB default.
        // SAFETY: fcntl on the pipe we just created.
        let size = unsafe { libc::fcntl(fds[1], libc::F_SETPIPE_SZ, PIPE_SIZE as libc::c_int) };
        let cap = if size > 0 { size as usize } else { PIPE_CHUNK };
        Ok(Pipe { r: fds[0], w: fds[1], pending: 0, cap })
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        // SAFETY: both descriptors are ours and closed exactly once.
        unsafe {
            libc::close(self.r);
            libc::close(self.w);
        }
    }
}

fn splice(from: libc::c_int, to: libc::c_int, len: usize) -> io::Result<usize> {
    // SAFETY: splice between descriptors we own, no user memory involved.
    let n = unsafe {
        libc::splice(from, std::ptr::null_mut(), to, std::ptr::null_mut(), len, libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK)
    };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
}

const PIPE_CHUNK: usize = 1 << 16;
const PIPE_SIZE: usize = 1 << 20;

/// Bulk mode: splice until EOF. Returns Ok(()) at EOF.
async fn splice_loop(src: &TcpStream, dst: &TcpStream, pipe: &mut Pipe, meter: &Meter, dir: Dir, last: &AtomicU64, ended: &std::sync::atomic::AtomicU8) -> io::Result<()> {
    loop {
        // Fill the pipe from the source.
        let n = loop {
            read_ready(src).await?;
            match src.try_io(tokio::io::Interest::READABLE, || splice(src.as_raw_fd(), pipe.w, pipe.cap)) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            eof(dst, ended);
            return Ok(());
        }
        pipe.pending += n;
        match dir {
            Dir::In => meter.add_in(n as u64),
            Dir::Out => meter.add_out(n as u64),
        }
        last.store(crate::stats::unix_millis(), Relaxed);
        // Drain it into the destination.
        while pipe.pending > 0 {
            write_ready(dst).await?;
            match dst.try_io(tokio::io::Interest::WRITABLE, || splice(pipe.r, dst.as_raw_fd(), pipe.pending)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(m) => pipe.pending -= m,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

thread_local! {
    /// One read buffer per worker thread. A read is written on at once when the
    /// destination can take it (the usual case), so no connection owns a buffer and
    /// nothing is allocated per read; only a write that would block copies the rest
    /// out.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; BUF]);
}

enum Step {
    Eof,
    /// Nothing to read after all (spurious readiness).
    Idle,
    /// `n` bytes read and written.
    Done(usize),
    /// `n` bytes read; `rest` still has to be written.
    Partial(usize, Vec<u8>),
}

/// A read that also tells tokio when the socket is drained: a TCP read that
/// returns less than asked for emptied the receive queue, so readiness is cleared
/// now instead of costing one more `recv` that says EAGAIN. (Tokio keeps the
/// read-closed state across a clear, so a FIN that came with the data is not lost.)
fn recv_drain(src: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let mut short = None;
    let fd = src.as_raw_fd();
    let r = src.try_io(tokio::io::Interest::READABLE, || {
        // SAFETY: recv(2) into a buffer we own, of its length.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        if n > 0 && n < buf.len() {
            short = Some(n);
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    match short {
        Some(n) => Ok(n),
        None => r,
    }
}

fn read_and_write(src: &TcpStream, dst: &TcpStream) -> io::Result<Step> {
    SCRATCH.with(|cell| {
        let mut b = cell.borrow_mut();
        let n = match recv_drain(src, &mut b[..]) {
            Ok(0) => return Ok(Step::Eof),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Step::Idle),
            Err(e) => return Err(e),
        };
        match dst.try_write(&b[..n]) {
            Ok(m) if m == n => Ok(Step::Done(n)),
            Ok(m) => Ok(Step::Partial(n, b[m..n].to_vec())),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Step::Partial(n, b[..n].to_vec())),
            Err(e) => Err(e),
        }
    })
}

async fn copy_one_way(src: &TcpStream, dst: &TcpStream, meter: &Meter, dir: Dir, last: &AtomicU64, ended: &std::sync::atomic::AtomicU8) -> io::Result<()> {
    loop {
        read_ready(src).await?;
        let n = match read_and_write(src, dst)? {
            Step::Eof => {
                eof(dst, ended);
                return Ok(());
            }
            Step::Idle => continue,
            Step::Done(n) => n,
            Step::Partial(n, rest) => {
                write_all(dst, &rest).await?;
                n
            }
        };
        match dir {
            Dir::In => meter.add_in(n as u64),
            Dir::Out => meter.add_out(n as u64),
        }
        last.store(crate::stats::unix_millis(), Relaxed);
        if n == BUF {
            // A full buffer means a bulk transfer: switch this direction to
            // splice(2). Short request/response exchanges never pay for the pipe's
            // two descriptors.
            if let Ok(mut pipe) = Pipe::new() {
                // Boxed: only bulk directions get here, and the splice loop's state
                // would otherwise sit in every connection's task.
                return Box::pin(splice_loop(src, dst, &mut pipe, meter, dir, last, ended)).await;
            }
        }
    }
}

/// Copies both ways until both sides are done, one side fails, or `idle` passes
/// with no bytes either way (`idle` zero = never).
pub async fn pipe(client: &TcpStream, target: &TcpStream, meter: &Meter, idle: Duration) -> io::Result<()> {
    let last = AtomicU64::new(crate::stats::unix_millis());
    let ended = std::sync::atomic::AtomicU8::new(0);
    let up = copy_one_way(client, target, meter, Dir::In, &last, &ended);
    let down = copy_one_way(target, client, meter, Dir::Out, &last, &ended);
    tokio::pin!(up, down);
    both_ways(up, down, &last, idle).await
}

/// `pipe` for any two streams: plain TCP on both sides keeps the splice path;
/// anything wrapped (TLS, a proxy protocol's framing) is copied through a buffer.
pub async fn pipe_conn(client: Conn, target: Conn, meter: &Meter, idle: Duration) -> io::Result<()> {
    // Proxy handshakes leave plain sockets wrapped (bytes read ahead, a relay
    // answer still to come); unwrap them so bulk data can still be spliced.
    let tcp = match (client.into_tcp(), target.into_tcp()) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (a, b) => Err((a.map(|(s, pre)| rewrap(s, pre)).unwrap_or_else(|c| c), b.map(|(s, pre)| rewrap(s, pre)).unwrap_or_else(|c| c))),
    };
    match tcp {
        // The usual case: nothing to pass on first.
        Ok(((a, Pre::None), (b, Pre::None))) => pipe(&a, &b, meter, idle).await,
        // Boxed, as it is rare: its state would otherwise sit in every task.
        Ok(((a, a_pre), (b, b_pre))) => Box::pin(pipe_after_pre(a, a_pre, b, b_pre, meter, idle)).await,
        // Boxed so that plain TCP forwarding's tasks stay small.
        Err((a, b)) => Box::pin(copy_conns(a, b, meter, idle)).await,
    }
}

/// `pipe` once what came before the payload on either socket is dealt with.
async fn pipe_after_pre(a: TcpStream, a_pre: Pre, b: TcpStream, b_pre: Pre, meter: &Meter, idle: Duration) -> io::Result<()> {
    let last = AtomicU64::new(crate::stats::unix_millis());
    let ended = std::sync::atomic::AtomicU8::new(0);
    let up = async {
        pre_step(&a, &b, a_pre, meter, Dir::In).await?;
        copy_one_way(&a, &b, meter, Dir::In, &last, &ended).await
    };
    let down = async {
        pre_step(&b, &a, b_pre, meter, Dir::Out).await?;
        copy_one_way(&b, &a, meter, Dir::Out, &last, &ended).await
    };
    tokio::pin!(up, down);
    both_ways(up, down, &last, idle).await
}

/// The buffered path of `pipe_conn`, for wrapped streams.
async fn copy_conns(a: Conn, b: Conn, meter: &Meter, idle: Duration) -> io::Result<()> {
    let last = AtomicU64::new(crate::stats::unix_millis());
    let (ar, aw) = tokio::io::split(a);
    let (br, bw) = tokio::io::split(b);
    let up = copy_stream(ar, bw, meter, Dir::In, &last);
    let down = copy_stream(br, aw, meter, Dir::Out, &last);
    tokio::pin!(up, down);
    both_ways(up, down, &last, idle).await
}

fn rewrap(s: TcpStream, pre: Pre) -> Conn {
    match pre {
        Pre::None => Conn::Tcp(s),
        Pre::Deliver(b) => Conn::prefixed(b, Conn::Tcp(s)),
        Pre::RelayAnswer(p) => Conn::with_relay_answer(Conn::Tcp(s), Some(p)),
    }
}

/// Runs what must happen on `src` before its payload flows to `dst`.
async fn pre_step(src: &TcpStream, dst: &TcpStream, pre: Pre, meter: &Meter, dir: Dir) -> io::Result<()> {
    match pre {
        Pre::None => Ok(()),
        Pre::Deliver(b) => {
            write_all(dst, &b).await?;
            match dir {
                Dir::In => meter.add_in(b.len() as u64),
                Dir::Out => meter.add_out(b.len() as u64),
            }
            Ok(())
        }
        Pre::RelayAnswer(mut p) => {
            // Read exactly the answer, never into the payload behind it.
            loop {
                let need = p.need().map_err(io::Error::from)?;
                if need == 0 {
                    return p.finish().map_err(io::Error::from);
                }
                read_ready(src).await?;
                let mut tmp = [0u8; 512];
                match src.try_read(&mut tmp[..need.min(512)]) {
                    Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("relay: {} closed without an answer", p.server))),
                    Ok(n) => p.got.extend_from_slice(&tmp[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

/// Buffer per direction for wrapped streams (TLS, smux, SSH channels) while
/// little flows: a connection that sits idle or trickles holds only this.
const STREAM_BUF_SMALL: usize = 4 * 1024;
/// Once a read fills the small buffer the direction is in bulk: four TLS
/// records per write, so a TLS side encrypts and sends them in one vectored
/// write and the plain side reads in a quarter of the calls.
const STREAM_BUF_BULK: usize = 64 * 1024;

async fn copy_stream<R, W>(mut r: R, mut w: W, meter: &Meter, dir: Dir, last: &AtomicU64) -> io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; STREAM_BUF_SMALL];
    loop {
        let n = r.read(&mut buf).await?;
        if n == buf.len() && buf.len() < STREAM_BUF_BULK {
            buf.resize(STREAM_BUF_BULK, 0);
        }
        if n == 0 {
            // Half-close the other side, as GOST does; a peer that cannot (or is
            // gone) just ends here.
            let _ = w.shutdown().await;
            return Ok(());
        }
        w.write_all(&buf[..n]).await?;
        w.flush().await?;
        match dir {
            Dir::In => meter.add_in(n as u64),
            Dir::Out => meter.add_out(n as u64),
        }
        last.store(crate::stats::unix_millis(), Relaxed);
    }
}

/// Drives both directions until both end, or until `idle` passes with no bytes
/// either way (`idle` zero = never). Stops at the first error: a reset on one
/// side must close the other, or the peer waits forever.
///
/// The directions come pinned by the caller. An async fn keeps its by-value
/// arguments in its state and, to pin them, moves them into a second slot; with
/// two copy loops passed by value, every connection's task carried each loop twice.
async fn both_ways<A, B>(mut up: Pin<&mut A>, mut down: Pin<&mut B>, last: &AtomicU64, idle: Duration) -> io::Result<()>
where
    A: Future<Output = io::Result<()>>,
    B: Future<Output = io::Result<()>>,
{
    let (mut up_done, mut down_done) = (false, false);
    // Boxed, and only with an idle limit: a timer is the size of a copy loop.
    let mut wait = (!idle.is_zero()).then(|| Box::pin(tokio::time::sleep(idle)));
    while !(up_done && down_done) {
        tokio::select! {
            r = &mut up, if !up_done => { r?; up_done = true; }
            r = &mut down, if !down_done => { r?; down_done = true; }
            _ = async { if let Some(w) = wait.as_mut() { w.await } }, if wait.is_some() => {
                let since = crate::stats::unix_millis().saturating_sub(last.load(Relaxed));
                if since >= idle.as_millis() as u64 {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, format!("idle for {idle:?}")));
                }
                if let Some(w) = wait.as_mut() {
                    w.as_mut().reset(tokio::time::Instant::now() + idle);
                }
            }
        }
    }
    Ok(())
}

/// Counts what passes through a stream a handler drives itself (plain HTTP
/// proxying): reads are bytes from the client, writes bytes back to it.
pub struct Metered<S> {
    inner: S,
    meter: Meter,
}

impl<S> Metered<S> {
    pub fn new(inner: S, meter: Meter) -> Self {
        Metered { inner, meter }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Metered<S> {
    fn poll_read(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>, buf: &mut tokio::io::ReadBuf<'_>) -> std::task::Poll<io::Result<()>> {
        let me = self.get_mut();
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut me.inner).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before);
        if n > 0 {
            me.meter.add_in(n as u64);
        }
        r
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Metered<S> {
    fn poll_write(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>, buf: &[u8]) -> std::task::Poll<io::Result<usize>> {
        let me = self.get_mut();
        let r = std::pin::Pin::new(&mut me.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = &r {
            me.meter.add_out(*n as u64);
        }
        r
    }
    fn poll_flush(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
