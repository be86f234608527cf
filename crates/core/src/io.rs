//! Moving bytes between two sockets while counting them.
//!
//! Buffers are taken only while data is flowing and dropped as soon as a socket has
//! nothing more to read, so an idle connection holds no buffer at all (fwdbench's
//! memory test holds thousands of them open).

use crate::stats::Meter;
use std::io;
use std::os::fd::AsRawFd;
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

fn shutdown_write(s: &TcpStream) {
    // SAFETY: shutdown(2) on a descriptor we own; errors (already closed) are harmless.
    unsafe {
        libc::shutdown(s.as_raw_fd(), libc::SHUT_WR);
    }
}

async fn write_all(dst: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        dst.writable().await?;
        match dst.try_write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn copy_one_way(src: &TcpStream, dst: &TcpStream, meter: &Meter, dir: Dir, last: &std::sync::atomic::AtomicU64) -> io::Result<()> {
    let mut buf: Option<Vec<u8>> = None;
    loop {
        src.readable().await?;
        let b = buf.get_or_insert_with(|| vec![0u8; BUF]);
        match src.try_read(b) {
            Ok(0) => {
                shutdown_write(dst);
                return Ok(());
            }
            Ok(n) => {
                match dir {
                    Dir::In => meter.add_in(n as u64),
                    Dir::Out => meter.add_out(n as u64),
                }
                last.store(crate::stats::unix_millis(), std::sync::atomic::Ordering::Relaxed);
                write_all(dst, &b[..n]).await?;
                if n < b.len() {
                    // Drained for now: give the memory back while we wait.
                    buf = None;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                buf = None;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Copies both ways until both sides are done, one side fails, or `idle` passes
/// with no bytes either way (`idle` zero = never).
pub async fn pipe(client: &TcpStream, target: &TcpStream, meter: &Meter, idle: Duration) -> io::Result<()> {
    let last = std::sync::atomic::AtomicU64::new(crate::stats::unix_millis());
    let up = copy_one_way(client, target, meter, Dir::In, &last);
    let down = copy_one_way(target, client, meter, Dir::Out, &last);
    let both = async {
        // Finish when both directions end; stop at the first error (a reset on one
        // side must close the other, or the peer waits forever).
        tokio::pin!(up);
        tokio::pin!(down);
        let (mut up_done, mut down_done) = (false, false);
        while !(up_done && down_done) {
            tokio::select! {
                r = &mut up, if !up_done => { r?; up_done = true; }
                r = &mut down, if !down_done => { r?; down_done = true; }
            }
        }
        Ok::<(), io::Error>(())
    };
    if idle.is_zero() {
        return both.await;
    }
    tokio::pin!(both);
    loop {
        let wait = tokio::time::sleep(idle);
        tokio::select! {
            r = &mut both => return r,
            _ = wait => {
                let since = crate::stats::unix_millis().saturating_sub(last.load(std::sync::atomic::Ordering::Relaxed));
                if since >= idle.as_millis() as u64 {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, format!("idle for {}s", idle.as_secs())));
                }
            }
        }
    }
}
