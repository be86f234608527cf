//! GOST's http connector (go-gost/x `connector/http/connector.go`): asks an
//! HTTP proxy for a tunnel with CONNECT, optionally as a UDP tunnel
//! (`X-Gost-Protocol: udp`, UDP-TUN frames follow — the caller's business).

use crate::codec::http::{encode_connect, parse_response, HttpError, MAX_HEAD};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Node credentials, sent as `Proxy-Authorization: Basic`.
    pub auth: Option<(String, String)>,
    /// The node's `header` metadata (a `User-Agent` here replaces Go's).
    pub headers: Vec<(String, String)>,
    /// Ask for GOST's UDP tunnel instead of a TCP one.
    pub udp: bool,
}

/// Sends CONNECT for `target` through the proxy `proxy` (its address, used in
/// error messages) and reads the answer. Returns the bytes that arrived after
/// the response head: they belong to the tunnel, put them back with
/// `crate::conn::Prefixed`.
pub async fn connect<S>(s: &mut S, proxy: &str, target: &str, opts: &ConnectOptions) -> Result<Vec<u8>, HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let auth = opts.auth.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
    let req = encode_connect(target, auth, &opts.headers, opts.udp);
    s.write_all(&req).await?;
    s.flush().await?;

    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let room = (MAX_HEAD + 1).saturating_sub(buf.len()).min(chunk.len());
        let n = s.read(chunk.get_mut(..room).unwrap_or(&mut [])).await?;
        if n == 0 {
            return Err(HttpError::ProxyClosed(proxy.to_string()));
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        let Some(head) = parse_response(&buf)? else { continue };
        if head.code != 200 {
            tracing::debug!(proxy, target, status = %head.status(), "http proxy refused CONNECT");
            return Err(HttpError::Refused { proxy: proxy.to_string(), status: head.status() });
        }
        return Ok(buf.split_off(head.len.min(buf.len())));
    }
}
