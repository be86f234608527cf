//! Async reads and writes on top of the pure codecs: one handshake message read
//! without over-reading, and GOST's UDP-over-stream frames (`codec::udptun`).

use crate::codec::addr::Addr;
use crate::codec::socks5::Decoded;
use crate::codec::udptun::{self, UdpTunError, MAX_FRAME_LEN};
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Why reading a handshake message stopped.
#[derive(Debug)]
pub enum ReadError<E> {
    Io(io::Error),
    /// EOF before the message was complete.
    Closed,
    /// More than `max` bytes without a complete message.
    Oversized,
    Decode(E),
}

/// Reads exactly one message: asks the decoder how many bytes it still needs and
/// reads that many, so bytes the peer sent after the message stay in the stream.
/// `max` bounds the message whatever the decoder says.
pub async fn read_message<S, T, E>(
    s: &mut S,
    max: usize,
    decode: impl Fn(&[u8]) -> Result<Decoded<T>, E>,
) -> Result<T, ReadError<E>>
where
    S: AsyncRead + Unpin + ?Sized,
{
    let mut buf = Vec::with_capacity(16);
    loop {
        let need = match decode(&buf).map_err(ReadError::Decode)? {
            Decoded::Done(v, _) => return Ok(v),
            Decoded::Need(n) => n.max(1),
        };
        let at = buf.len();
        if at + need > max {
            return Err(ReadError::Oversized);
        }
        buf.resize(at + need, 0);
        let mut got = at;
        while got < buf.len() {
            let n = s.read(&mut buf[got..]).await.map_err(ReadError::Io)?;
            if n == 0 {
                return Err(ReadError::Closed);
            }
            got += n;
        }
    }
}

/// Buffer for `read_frame`: keeps bytes that arrived after a frame for the next call.
pub struct FrameBuf {
    data: Vec<u8>,
    /// Bytes at the front that belong to the frame returned last time.
    consumed: usize,
}

impl Default for FrameBuf {
    fn default() -> Self {
        FrameBuf::new()
    }
}

impl FrameBuf {
    pub fn new() -> FrameBuf {
        FrameBuf { data: Vec::with_capacity(4096), consumed: 0 }
    }
}

const READ_CHUNK: usize = 16 * 1024;

/// Reads the next UDP-over-stream frame: `Ok(None)` at a clean EOF between frames,
/// an error for EOF inside a frame. Frames with an empty payload (RSV=0 from a
/// GOST writer) are skipped, since an empty datagram cannot be told apart on a
/// stream. The payload borrows `buf` until the next call.
pub async fn read_frame<'b, S>(s: &mut S, buf: &'b mut FrameBuf) -> Result<Option<(Addr, &'b [u8])>, UdpTunError>
where
    S: AsyncRead + Unpin + ?Sized,
{
    buf.data.drain(..buf.consumed.min(buf.data.len()));
    buf.consumed = 0;
    loop {
        if let Some((addr, range, used)) = udptun::decode(&buf.data)? {
            if range.is_empty() {
                buf.data.drain(..used);
                continue;
            }
            buf.consumed = used;
            let payload = buf.data.get(range).unwrap_or_default();
            return Ok(Some((addr, payload)));
        }
        if buf.data.len() >= MAX_FRAME_LEN {
            // Cannot happen with a valid length field; guards the buffer anyway.
            return Err(UdpTunError::TooLarge(buf.data.len()));
        }
        let at = buf.data.len();
        let room = READ_CHUNK.min(MAX_FRAME_LEN - at);
        buf.data.resize(at + room, 0);
        let n = s.read(&mut buf.data[at..]).await;
        buf.data.truncate(at + *n.as_ref().unwrap_or(&0));
        match n? {
            0 if at == 0 => return Ok(None),
            0 => return Err(UdpTunError::Truncated),
            _ => {}
        }
    }
}

/// Writes one frame in a single write. An empty payload is refused
/// (`UdpTunError::EmptyPayload`): the caller drops it.
pub async fn write_frame<S>(s: &mut S, addr: &Addr, payload: &[u8]) -> Result<(), UdpTunError>
where
    S: AsyncWrite + Unpin + ?Sized,
{
    let mut out = Vec::with_capacity(3 + addr.encoded_len() + payload.len());
    udptun::encode(addr, payload, &mut out)?;
    s.write_all(&out).await?;
    s.flush().await?;
    Ok(())
}

/// The receiving half of a UDP-over-stream tunnel: datagrams with the address
/// each frame carries.
pub struct TunRecv<R> {
    r: R,
    buf: FrameBuf,
}

impl<R: AsyncRead + Unpin> TunRecv<R> {
    pub fn new(r: R) -> TunRecv<R> {
        TunRecv { r, buf: FrameBuf::new() }
    }

    /// The next datagram; `Ok(None)` when the other side closed the stream.
    pub async fn recv(&mut self) -> Result<Option<(Addr, &[u8])>, UdpTunError> {
        read_frame(&mut self.r, &mut self.buf).await
    }
}

/// The sending half: one frame per datagram.
pub struct TunSend<W> {
    w: W,
}

impl<W: AsyncWrite + Unpin> TunSend<W> {
    pub fn new(w: W) -> TunSend<W> {
        TunSend { w }
    }

    /// An empty payload cannot travel and is refused (`EmptyPayload`).
    pub async fn send(&mut self, addr: &Addr, payload: &[u8]) -> Result<(), UdpTunError> {
        write_frame(&mut self.w, addr, payload).await
    }
}

/// Splits a stream that carries UDP-over-stream frames (a UDP-TUN bind or a
/// relay UDP bind) so one task can receive while another sends.
pub fn tun_split<S: AsyncRead + AsyncWrite>(s: S) -> (TunRecv<tokio::io::ReadHalf<S>>, TunSend<tokio::io::WriteHalf<S>>) {
    let (r, w) = tokio::io::split(s);
    (TunRecv::new(r), TunSend::new(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_through_a_pipe_in_small_pieces() {
        let (mut a, mut b) = tokio::io::duplex(7);
        let w = tokio::spawn(async move {
            for i in 0..50u8 {
                let addr = Addr::parse(&format!("10.0.0.{i}:{}", 1000 + i as u16)).unwrap();
                write_frame(&mut a, &addr, &vec![i; 1 + i as usize * 40]).await.unwrap();
            }
            // GOST's header-only frame for an empty datagram, then one more.
            a.write_all(&[0, 0, 0xFF, 1, 1, 2, 3, 4, 0, 5]).await.unwrap();
            write_frame(&mut a, &Addr::parse("[::1]:7").unwrap(), b"last").await.unwrap();
        });
        let mut fb = FrameBuf::new();
        for i in 0..50u8 {
            let (addr, p) = read_frame(&mut b, &mut fb).await.unwrap().unwrap();
            assert_eq!(addr.to_string(), format!("10.0.0.{i}:{}", 1000 + i as u16));
            assert_eq!(p, &vec![i; 1 + i as usize * 40][..]);
        }
        let (addr, p) = read_frame(&mut b, &mut fb).await.unwrap().unwrap();
        assert_eq!((addr.to_string().as_str(), p), ("[::1]:7", &b"last"[..]));
        w.await.unwrap();
        assert!(read_frame(&mut b, &mut fb).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn eof_inside_a_frame_is_an_error() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[0, 10, 0xFF, 1, 1, 2, 3, 4, 0, 5, b'x']).await.unwrap();
        drop(a);
        let e = read_frame(&mut b, &mut FrameBuf::new()).await.unwrap_err();
        assert!(matches!(e, UdpTunError::Truncated), "{e}");
    }

    #[tokio::test]
    async fn read_message_leaves_following_bytes() {
        use crate::codec::socks5::decode_method_choice;
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[5, 0, b'h', b'i']).await.unwrap();
        let m = read_message(&mut b, 2, decode_method_choice).await.unwrap();
        assert_eq!(m, 0);
        let mut rest = [0u8; 2];
        b.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"hi");
        drop(a);
        assert!(matches!(read_message(&mut b, 2, decode_method_choice).await, Err(ReadError::Closed)));
    }
}
