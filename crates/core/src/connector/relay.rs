//! Relay client (go-gost/x `connector/relay/connector.go`, `conn.go`): asks a
//! relay server to CONNECT to a target over TCP or UDP.
//!
//! Timing, which is what makes relay interoperate:
//! * `nodelay = false` (GOST's default): nothing is sent by [`connect`]; the
//!   request goes out in the same write as the first payload bytes. The response
//!   is read in front of the first payload read. A relay server with
//!   `nodelay = false` only sends its response in front of the target's first
//!   bytes, so waiting for it before sending client data would deadlock on any
//!   client-first protocol (HTTP, TLS): this stream never does that.
//! * `nodelay = true`: the request is written by [`connect`] at once. GOST's
//!   connector then also waits for the response inside `Connect`; Portway still
//!   reads it lazily, on the first read. The bytes on the wire are the same, and
//!   an eager wait would hang against a lazy GOST server with a client-first
//!   target (server waits for target bytes, target for the client's, client for
//!   the response). Callers that want the answer up front call
//!   [`RelayStream::handshake`].
//! * A server-first target (SSH banner, SMTP, MySQL) behind a `nodelay = false`
//!   client hangs exactly as it does with GOST: the request waits for the first
//!   client bytes, which never come, so the server never dials. The remedy is
//!   GOST's: `nodelay=true` on the relay node.

use crate::codec::addr::Addr;
use crate::codec::relay::{
    encode_datagram, message_len, status_text, CodecError, Network, RelayError, Request, Response, HEADER_LEN, STATUS_OK,
};
use crate::connector::bind::{Dialect, MuxListener};
use crate::mux::MuxConfig;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Payload bytes taken into the first write along with the request; a larger
/// first write goes out in the next call.
const MAX_COALESCE: usize = 64 * 1024;

#[derive(Clone, Default)]
pub struct ConnectorOptions {
    /// `(user, password)` sent as the UserAuth feature.
    pub auth: Option<(String, String)>,
    pub nodelay: bool,
    /// How errors name the relay node, e.g. `127.0.0.1:8420`.
    pub server: String,
}

impl std::fmt::Debug for ConnectorOptions {
    // Never print the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorOptions")
            .field("user", &self.auth.as_ref().map(|(u, _)| u))
            .field("nodelay", &self.nodelay)
            .field("server", &self.server)
            .finish()
    }
}

/// Asks the relay server at the other end of `stream` for `target`. See the
/// module notes for when the request and the response actually travel.
pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    target: &Addr,
    network: Network,
    opts: &ConnectorOptions,
) -> Result<RelayStream<S>, RelayError> {
    let auth = opts.auth.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
    let mut req = Vec::new();
    Request::connect(target, network, auth).encode(&mut req).map_err(RelayError::Encode)?;
    let server = if opts.server.is_empty() { "relay server".to_string() } else { opts.server.clone() };
    let front = if opts.nodelay {
        stream.write_all(&req).await?;
        stream.flush().await?;
        WriteFront::clear()
    } else {
        WriteFront::waiting(req)
    };
    Ok(RelayStream { inner: stream, front, resp: ResponseState::Reading(Vec::new()), server })
}

/// Bytes that must reach the peer in front of the first payload: the client's
/// request, or the server's response. Shared by both sides.
#[derive(Debug)]
pub(crate) enum WriteFront {
    /// Held until payload arrives to go with them (GOST writes both at once).
    Waiting(Vec<u8>),
    /// Accepted from the caller, not yet all written.
    Sending(Vec<u8>, usize),
    Clear,
}

impl WriteFront {
    pub(crate) fn waiting(bytes: Vec<u8>) -> WriteFront {
        WriteFront::Waiting(bytes)
    }

    pub(crate) fn clear() -> WriteFront {
        WriteFront::Clear
    }

    /// Sends the held bytes without payload from now on.
    pub(crate) fn release(&mut self) {
        if let WriteFront::Waiting(v) = self {
            *self = WriteFront::Sending(std::mem::take(v), 0);
        }
    }

    pub(crate) fn is_sending(&self) -> bool {
        matches!(self, WriteFront::Sending(..))
    }

    /// Writes what was accepted but not yet written.
    pub(crate) fn poll_drain<W: AsyncWrite + Unpin>(
        &mut self,
        w: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while let WriteFront::Sending(buf, pos) = self {
            let Some(rest) = buf.get(*pos..).filter(|r| !r.is_empty()) else {
                *self = WriteFront::Clear;
                break;
            };
            let n = ready!(Pin::new(&mut *w).poll_write(cx, rest))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *pos += n;
        }
        Poll::Ready(Ok(()))
    }

    /// A payload write. On the first one the payload is appended to the held
    /// bytes and reported as written at once, like a buffered writer; the rest
    /// goes out on the next write, flush, shutdown or (client) read. Reporting
    /// `Pending` after taking the bytes would break the contract that a pending
    /// write wrote nothing.
    pub(crate) fn poll_write<W: AsyncWrite + Unpin>(
        &mut self,
        w: &mut W,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let WriteFront::Waiting(held) = self {
            if buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            let n = buf.len().min(MAX_COALESCE);
            let mut out = std::mem::take(held);
            out.extend_from_slice(&buf[..n]);
            *self = WriteFront::Sending(out, 0);
            if let Poll::Ready(Err(e)) = self.poll_drain(w, cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(n));
        }
        ready!(self.poll_drain(w, cx))?;
        Pin::new(w).poll_write(cx, buf)
    }
}

/// A relay response not yet (fully) read: the bytes so far and the server's name
/// for errors.
#[derive(Debug)]
pub struct PendingResponse {
    pub got: Vec<u8>,
    pub server: String,
}

impl PendingResponse {
    /// How many more bytes the response needs, or the error it already is.
    pub fn need(&self) -> Result<usize, RelayError> {
        match message_len(&self.got) {
            Err(e) => Err(RelayError::BadResponse { server: self.server.clone(), source: e }),
            Ok(None) => Ok(HEADER_LEN - self.got.len()),
            Ok(Some(total)) => Ok(total - self.got.len()),
        }
    }

    /// Checks a complete response: OK, or the error naming the server and status.
    pub fn finish(&self) -> Result<(), RelayError> {
        match Response::decode(&self.got) {
            Ok(Some((r, _))) if r.status == STATUS_OK => Ok(()),
            Ok(Some((r, _))) => Err(RelayError::Refused { server: self.server.clone(), status: r.status }),
            Ok(None) => Err(RelayError::NoResponse { server: self.server.clone() }),
            Err(e) => Err(RelayError::BadResponse { server: self.server.clone(), source: e }),
        }
    }
}

#[derive(Debug)]
enum ResponseState {
    /// The bytes of the response read so far.
    Reading(Vec<u8>),
    Established,
    Refused(u8),
    Malformed(CodecError),
    Closed,
}

/// A relay CONNECT in progress or established: payload in both directions, with
/// the request and the response handled in front of it.
#[derive(Debug)]
pub struct RelayStream<S> {
    inner: S,
    front: WriteFront,
    resp: ResponseState,
    server: String,
}

impl<S: AsyncRead + AsyncWrite + Unpin> RelayStream<S> {
    /// Sends the request now if it is still held and waits for the server's
    /// answer. Only for a caller that wants the outcome before any payload: the
    /// request then goes out on its own, and against a `nodelay=false` server the
    /// answer only comes once the target has said something.
    pub async fn handshake(&mut self) -> Result<(), RelayError> {
        self.front.release();
        std::future::poll_fn(|cx| self.front.poll_drain(&mut self.inner, cx)).await?;
        self.inner.flush().await?;
        std::future::poll_fn(|cx| self.poll_response(cx)).await
    }

    /// True once the server answered OK.
    pub fn is_established(&self) -> bool {
        matches!(self.resp, ResponseState::Established)
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The bare stream once the request is out, with what is left of the
    /// response still to read (`None` when it was read and was OK). The data
    /// path uses this to pipe plain TCP (splice) and check the answer itself.
    /// Gives the stream back unchanged while the request is still held or the
    /// answer was a refusal.
    pub fn into_parts(self) -> Result<(S, Option<PendingResponse>), Self> {
        if !matches!(self.front, WriteFront::Clear) {
            return Err(self);
        }
        match self.resp {
            ResponseState::Established => Ok((self.inner, None)),
            ResponseState::Reading(got) => Ok((self.inner, Some(PendingResponse { got, server: self.server }))),
            _ => Err(self),
        }
    }

    /// Reads the response byte by byte count, never past it: whatever follows is
    /// payload and stays in the stream.
    fn poll_response(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), RelayError>> {
        loop {
            let got = match &mut self.resp {
                ResponseState::Established => return Poll::Ready(Ok(())),
                ResponseState::Refused(status) => {
                    return Poll::Ready(Err(RelayError::Refused { server: self.server.clone(), status: *status }))
                }
                ResponseState::Malformed(e) => {
                    return Poll::Ready(Err(RelayError::BadResponse { server: self.server.clone(), source: e.clone() }))
                }
                ResponseState::Closed => {
                    return Poll::Ready(Err(RelayError::NoResponse { server: self.server.clone() }))
                }
                ResponseState::Reading(got) => got,
            };
            let need = match message_len(got) {
                Err(e) => {
                    self.resp = ResponseState::Malformed(e);
                    continue;
                }
                Ok(None) => HEADER_LEN - got.len(),
                Ok(Some(total)) => total - got.len(),
            };
            if need == 0 {
                self.resp = match Response::decode(got) {
                    Ok(Some((r, _))) if r.status == STATUS_OK => ResponseState::Established,
                    Ok(Some((r, _))) => ResponseState::Refused(r.status),
                    Ok(None) => ResponseState::Closed,
                    Err(e) => ResponseState::Malformed(e),
                };
                continue;
            }
            let mut tmp = [0u8; 512];
            let mut rb = ReadBuf::new(&mut tmp[..need.min(512)]);
            ready!(Pin::new(&mut self.inner).poll_read(cx, &mut rb))?;
            if rb.filled().is_empty() {
                self.resp = ResponseState::Closed;
                continue;
            }
            got.extend_from_slice(rb.filled());
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RelayStream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        // No answer can come before the whole request is out, and a caller that
        // wrote and now only reads would otherwise never push the rest.
        if me.front.is_sending() {
            ready!(me.front.poll_drain(&mut me.inner, cx))?;
        }
        if !me.is_established() {
            ready!(me.poll_response(cx)).map_err(io::Error::from)?;
        }
        Pin::new(&mut me.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RelayStream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        me.front.poll_write(&mut me.inner, cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        ready!(me.front.poll_drain(&mut me.inner, cx))?;
        Pin::new(&mut me.inner).poll_flush(cx)
    }

    /// A request still waiting for payload is dropped, as GOST does: a client
    /// that connects and leaves without a byte never makes the server dial.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        ready!(me.front.poll_drain(&mut me.inner, cx))?;
        Pin::new(&mut me.inner).poll_shutdown(cx)
    }
}

/// Asks the relay server to listen on TCP `addr` (GOST's rtcp through a relay
/// hop). The request goes out at once and the answer is awaited: nothing else
/// can travel before it. Returns the address the server reports and the
/// listener of the smux session `control` becomes (relay BIND always
/// multiplexes). `0.0.0.0:port` is sent as ATYP 1, which every GOST server
/// reads; a stable GOST client's empty-domain form is only accepted, not sent.
pub async fn bind_tcp<S>(mut control: S, addr: &Addr, opts: &ConnectorOptions, mux: MuxConfig) -> Result<(Addr, MuxListener), RelayError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let bound = bind_request(&mut control, addr, Network::Tcp, opts).await?;
    Ok((bound.clone(), MuxListener::new(control, bound, Dialect::Relay, mux)))
}

/// Asks the relay server to listen on UDP `addr` (rudp, CMD `82`). From then
/// on `control` carries UDP-over-stream frames ([`crate::framed::tun_split`]):
/// from the server a datagram and the peer that sent it, to the server a
/// datagram and the peer to send it to.
pub async fn bind_udp<S>(control: &mut S, addr: &Addr, opts: &ConnectorOptions) -> Result<Addr, RelayError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    bind_request(control, addr, Network::Udp, opts).await
}

async fn bind_request<S>(s: &mut S, addr: &Addr, network: Network, opts: &ConnectorOptions) -> Result<Addr, RelayError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let auth = opts.auth.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
    let mut req = Vec::new();
    Request::bind(addr, network, auth).encode(&mut req).map_err(RelayError::Encode)?;
    s.write_all(&req).await?;
    s.flush().await?;
    let server = if opts.server.is_empty() { "relay server".to_string() } else { opts.server.clone() };
    let resp = read_response(s, &server).await?;
    if resp.status != STATUS_OK {
        return Err(RelayError::Refused { server, status: resp.status });
    }
    resp.addr().cloned().ok_or(RelayError::NoBoundAddr { server })
}

/// Reads exactly one response, nothing behind it.
async fn read_response<S: AsyncRead + Unpin + ?Sized>(s: &mut S, server: &str) -> Result<Response, RelayError> {
    let mut buf = vec![0u8; HEADER_LEN];
    let eof = |e: io::Error| match e.kind() {
        io::ErrorKind::UnexpectedEof => RelayError::NoResponse { server: server.to_string() },
        _ => RelayError::Io(e),
    };
    s.read_exact(&mut buf[..1]).await.map_err(eof)?;
    let bad = |e| RelayError::BadResponse { server: server.to_string(), source: e };
    message_len(&buf[..1]).map_err(bad)?;
    s.read_exact(&mut buf[1..]).await.map_err(eof)?;
    let total = message_len(&buf).map_err(bad)?.unwrap_or(HEADER_LEN);
    buf.resize(total, 0);
    s.read_exact(&mut buf[HEADER_LEN..]).await.map_err(eof)?;
    match Response::decode(&buf).map_err(bad)? {
        Some((r, _)) => Ok(r),
        None => Err(RelayError::NoResponse { server: server.to_string() }),
    }
}

/// The relay response at the start of each BIND stream: `01 00 FLEN [Addr peer]`.
pub(crate) async fn read_peer_response<S: AsyncRead + Unpin + ?Sized>(s: &mut S) -> Result<Addr, RelayError> {
    let r = read_response(s, "relay server").await.map_err(|e| RelayError::BadPeerHeader(e.to_string()))?;
    if r.status != STATUS_OK {
        return Err(RelayError::BadPeerHeader(format!("status {}", status_text(r.status))));
    }
    r.addr().cloned().ok_or_else(|| RelayError::BadPeerHeader("no Addr feature".into()))
}

/// Sends one datagram over a relay UDP stream as a `LEN | payload` frame, in one
/// write so that the first one travels with a held request (§5.8 E).
pub async fn send_datagram<W: AsyncWrite + Unpin + ?Sized>(w: &mut W, payload: &[u8]) -> Result<(), RelayError> {
    let mut frame = Vec::with_capacity(2 + payload.len());
    encode_datagram(payload, &mut frame).map_err(RelayError::Encode)?;
    w.write_all(&frame).await.map_err(RelayError::from_io)?;
    w.flush().await.map_err(RelayError::from_io)
}

/// Reads one `LEN | payload` frame into `buf` (resized to the payload).
/// `Ok(None)`: the peer closed cleanly between frames.
pub async fn recv_datagram<R: AsyncRead + Unpin + ?Sized>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> Result<Option<usize>, RelayError> {
    let mut len = [0u8; 2];
    let first = r.read(&mut len).await.map_err(RelayError::from_io)?;
    if first == 0 {
        return Ok(None);
    }
    if first == 1 {
        r.read_exact(&mut len[1..]).await.map_err(RelayError::from_io)?;
    }
    let n = u16::from_be_bytes(len) as usize;
    buf.resize(n, 0);
    r.read_exact(buf).await.map_err(RelayError::from_io)?;
    Ok(Some(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Records every write call separately, to see what travels together.
    #[derive(Clone, Default)]
    struct Recorder {
        writes: Arc<Mutex<Vec<Vec<u8>>>>,
        to_read: Arc<Mutex<Vec<u8>>>,
    }

    impl AsyncWrite for Recorder {
        fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            self.writes.lock().unwrap().push(buf.to_vec());
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncRead for Recorder {
        fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            let mut src = self.to_read.lock().unwrap();
            let n = src.len().min(buf.remaining());
            buf.put_slice(&src[..n]);
            src.drain(..n);
            Poll::Ready(Ok(()))
        }
    }

    fn opts(nodelay: bool) -> ConnectorOptions {
        ConnectorOptions { auth: None, nodelay, server: "127.0.0.1:8420".into() }
    }

    const REQ: &[u8] = &[1, 1, 0, 10, 2, 0, 7, 1, 192, 168, 1, 1, 0, 80];

    #[tokio::test]
    async fn lazy_request_travels_in_the_first_payload_write() {
        let rec = Recorder::default();
        let target = Addr::parse("192.168.1.1:80").unwrap();
        let mut s = connect(rec.clone(), &target, Network::Tcp, &opts(false)).await.unwrap();
        assert!(rec.writes.lock().unwrap().is_empty(), "nothing before the first payload");
        s.write_all(b"GET /").await.unwrap();
        s.write_all(b" HTTP/1.1").await.unwrap();
        let w = rec.writes.lock().unwrap().clone();
        assert_eq!(w, vec![[REQ, b"GET /"].concat(), b" HTTP/1.1".to_vec()]);
    }

    #[tokio::test]
    async fn nodelay_request_goes_out_alone_at_connect() {
        let rec = Recorder::default();
        let target = Addr::parse("192.168.1.1:80").unwrap();
        let mut s = connect(rec.clone(), &target, Network::Tcp, &opts(true)).await.unwrap();
        assert_eq!(rec.writes.lock().unwrap().clone(), vec![REQ.to_vec()]);
        s.write_all(b"x").await.unwrap();
        assert_eq!(rec.writes.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn response_is_taken_exactly_and_payload_follows() {
        let rec = Recorder::default();
        rec.to_read.lock().unwrap().extend_from_slice(b"\x01\x00\x00\x05\x04\x00\x02\x00\x00payload");
        let target = Addr::parse("192.168.1.1:80").unwrap();
        let mut s = connect(rec.clone(), &target, Network::Tcp, &opts(true)).await.unwrap();
        let mut got = [0u8; 7];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"payload");
        assert!(s.is_established());
    }

    #[tokio::test]
    async fn refusal_names_server_and_status() {
        let rec = Recorder::default();
        rec.to_read.lock().unwrap().extend_from_slice(&[1, 2, 0, 0]);
        let target = Addr::parse("192.168.1.1:80").unwrap();
        let mut s = connect(rec, &target, Network::Tcp, &opts(false)).await.unwrap();
        s.write_all(b"x").await.unwrap();
        let e = s.read(&mut [0u8; 4]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(RelayError::from_io(e).to_string(), "relay: 127.0.0.1:8420 refused: unauthorized");
    }
}
