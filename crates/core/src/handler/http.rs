//! GOST's http handler, protocol side (go-gost/x `handler/http/handler.go`,
//! `auth.go`, `proxy.go`, `udp.go`, `util.go`): reads the client's request,
//! authenticates it, and says what it asks for; the engine dials and moves
//! the data. Plain (non-CONNECT) proxying runs here in full, given a dialer,
//! because its framing is HTTP's own.

use crate::auth::Auther;
use crate::codec::http::{
    self as codec, auth_required, connect_established, decode_gost_target, find_header, go_response, parse_basic,
    parse_request, parse_response, plain_target, request_body, response_body, response_closes, rewrite_plain,
    udp_reply, with_default_port, Body, ChunkedScanner, GoLength, Headers, HttpError, PlainTarget, RequestHead,
    MAX_HEAD,
};
use crate::logging::redact_userinfo;
use std::future::Future;
use std::io;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub auther: Option<Arc<Auther>>,
    /// `udp=true`: allow GOST's UDP tunnel (`X-Gost-Protocol: udp`).
    pub udp: bool,
    /// `proxyAgent`, default `gost/3.0`.
    pub proxy_agent: String,
    /// `header`: extra response headers on the replies GOST builds from it.
    pub header: Headers,
    /// `authBasicRealm`, default `gost`.
    pub realm: String,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            auther: None,
            udp: false,
            proxy_agent: codec::DEFAULT_PROXY_AGENT.into(),
            header: Vec::new(),
            realm: codec::DEFAULT_REALM.into(),
        }
    }
}

/// A tunnel the client asked for. `leftover` holds bytes the client sent
/// after its request head (put them in front of the stream with `Prefixed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tunnel {
    /// `host:port` to dial (for UDP only informational, as in GOST).
    pub target: String,
    pub user: Option<String>,
    pub leftover: Vec<u8>,
}

/// A plain proxy request (`GET http://host/path`), ready for [`proxy_plain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plain {
    pub target: PlainTarget,
    pub head: RequestHead,
    /// The head as GOST writes it to the origin server.
    pub upstream_head: Vec<u8>,
    pub body: Body,
    pub user: Option<String>,
    pub leftover: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// CONNECT: dial `target`, then [`reply_connected`] or [`reply_error`] (503).
    Connect(Tunnel),
    /// UDP tunnel: [`reply_udp_ok`], then UDP-TUN frames on the stream.
    Udp(Tunnel),
    Plain(Plain),
}

/// Reads one request head of at most `MAX_HEAD` bytes, keeping what follows in
/// `pending`. `None`: the peer closed before a whole head arrived.
async fn read_head<S, T>(
    s: &mut S,
    pending: &mut Vec<u8>,
    parse: fn(&[u8]) -> Result<Option<T>, HttpError>,
    len: fn(&T) -> usize,
) -> Result<Option<(T, Vec<u8>)>, HttpError>
where
    S: AsyncRead + Unpin,
{
    let mut chunk = [0u8; 4096];
    loop {
        if !pending.is_empty() {
            if let Some(head) = parse(pending)? {
                let raw: Vec<u8> = pending.drain(..len(&head).min(pending.len())).collect();
                return Ok(Some((head, raw)));
            }
        }
        let room = (MAX_HEAD + 1).saturating_sub(pending.len()).min(chunk.len());
        let n = s.read(chunk.get_mut(..room).unwrap_or(&mut [])).await?;
        if n == 0 {
            return Ok(None);
        }
        pending.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
    }
}

/// Reads and judges the client's first request the way GOST does: 400 for
/// what is not a proxy request, 407 for bad credentials, 403 for a UDP tunnel
/// when `udp` is off. Those replies are written here and come back as errors.
pub async fn accept<S>(s: &mut S, opts: &ServerOptions) -> Result<Request, HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut pending = Vec::new();
    let (head, _) = read_head(s, &mut pending, parse_request, |h: &RequestHead| h.len)
        .await?
        .ok_or(HttpError::ClientClosed)?;
    classify(s, head, pending, opts).await
}

/// GOST's v2 header that names the real target, if present and valid.
fn gost_target(head: &RequestHead) -> Option<String> {
    ["X-Gost-Target", "Gost-Target"].iter().find_map(|h| find_header(&head.headers, h).and_then(decode_gost_target))
}

async fn classify<S>(s: &mut S, head: RequestHead, leftover: Vec<u8>, opts: &ServerOptions) -> Result<Request, HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let is_connect = head.method == "CONNECT";
    let udp = find_header(&head.headers, "X-Gost-Protocol") == Some("udp");
    let plain = if is_connect { None } else { plain_target(&head) };

    // GOST's test: anything but CONNECT must carry an http:// URI, or an
    // origin-form path with a Host that names a host.
    let scheme_http = codec::is_http_uri(&head.target) || origin_form_with_host(&head);
    if head.method == "PRI" || (!is_connect && !scheme_http) {
        s.write_all(&go_response(1, 400, &opts.header, GoLength::Unknown)).await?;
        return Err(HttpError::BadRequest(format!("{} {}", head.method, redact_userinfo(&head.target))));
    }

    let user = authenticate(s, &head, opts).await?;

    if udp {
        if !opts.udp {
            s.write_all(&udp_reply(false, &opts.header)).await?;
            return Err(HttpError::UdpDisabled);
        }
        return Ok(Request::Udp(Tunnel { target: connect_target(&head), user, leftover }));
    }
    if is_connect {
        let target = connect_target(&head);
        if target.starts_with(':') {
            s.write_all(&go_response(1, 400, &opts.header, GoLength::Unknown)).await?;
            return Err(HttpError::BadRequest(format!("CONNECT {:?} names no host", redact_userinfo(&head.target))));
        }
        return Ok(Request::Connect(Tunnel { target, user, leftover }));
    }
    let Some(mut target) = plain else {
        // GOST lets an origin-form request with a usable Host (or an http URI
        // without host) through to its upstream transport, which refuses a URL
        // without host: the client gets the transport-failure 503.
        s.write_all(&go_response(1, 503, &[], GoLength::Zero)).await?;
        return Err(HttpError::BadRequest(format!("{} {} is not addressed to a proxy", head.method, redact_userinfo(&head.target))));
    };
    if let Some(h) = gost_target(&head) {
        target.host = h;
    }
    plain_request(head, target, user, leftover).map(Request::Plain)
}

fn plain_request(head: RequestHead, target: PlainTarget, user: Option<String>, leftover: Vec<u8>) -> Result<Plain, HttpError> {
    let upstream_head = rewrite_plain(&head, &target)?;
    let body = request_body(&head)?;
    Ok(Plain { target, head, upstream_head, body, user, leftover })
}

fn origin_form_with_host(head: &RequestHead) -> bool {
    if !head.target.starts_with('/') {
        return false;
    }
    let host = find_header(&head.headers, "Host").unwrap_or("").trim();
    let name = crate::config::validate::split_host_port(host).map_or(host, |(h, _)| h);
    codec::is_dns_name_or_ip(name.trim_start_matches('[').trim_end_matches(']'))
}

/// The CONNECT (or UDP) target: the v2 target header, else the authority in
/// the request line, else the Host header; port 80 when none is given.
fn connect_target(head: &RequestHead) -> String {
    let host = gost_target(head).unwrap_or_else(|| {
        if head.target.starts_with('/') || head.target.contains("://") {
            find_header(&head.headers, "Host").unwrap_or("").trim().to_string()
        } else {
            head.target.clone()
        }
    });
    with_default_port(&host, 80)
}

/// Checks `Proxy-Authorization` against the auther; on failure writes GOST's
/// 407 and returns an error naming the user (never the password).
async fn authenticate<S>(s: &mut S, head: &RequestHead, opts: &ServerOptions) -> Result<Option<String>, HttpError>
where
    S: AsyncWrite + Unpin,
{
    let creds = find_header(&head.headers, "Proxy-Authorization").and_then(parse_basic);
    let user = creds.as_ref().map(|(u, _)| u.clone()).filter(|u| !u.is_empty());
    let Some(auther) = &opts.auther else { return Ok(user) };
    let (u, p) = creds.unwrap_or_default();
    if auther.authenticate(&u, &p) {
        return Ok(user);
    }
    let keep_alive = find_header(&head.headers, "Proxy-Connection").is_some_and(|v| v.eq_ignore_ascii_case("keep-alive"));
    s.write_all(&auth_required(&opts.realm, keep_alive)).await?;
    tracing::debug!(user = %u, "http: proxy authentication failed");
    Err(HttpError::AuthFailed(u))
}

/// The tunnel is up: `200 Connection established` with `Proxy-Agent`.
pub async fn reply_connected<S: AsyncWrite + Unpin>(s: &mut S, opts: &ServerOptions) -> io::Result<()> {
    s.write_all(&connect_established(&opts.proxy_agent)).await
}

/// The UDP tunnel is up: `200 OK`, then UDP-TUN frames.
pub async fn reply_udp_ok<S: AsyncWrite + Unpin>(s: &mut S, opts: &ServerOptions) -> io::Result<()> {
    s.write_all(&udp_reply(true, &opts.header)).await
}

/// The reply GOST writes after authentication when it cannot go on: 503 when
/// the dial failed, 403 for a bypassed target. It carries the `header` option
/// and `Proxy-Agent`, and `Connection: close`.
pub async fn reply_error<S: AsyncWrite + Unpin>(s: &mut S, opts: &ServerOptions, status: u16) -> io::Result<()> {
    s.write_all(&error_reply(opts, status)).await
}

pub fn error_reply(opts: &ServerOptions, status: u16) -> Vec<u8> {
    let mut hs = opts.header.clone();
    if find_header(&hs, "Proxy-Agent").is_none_or(str::is_empty) {
        hs.retain(|(k, _)| !k.eq_ignore_ascii_case("Proxy-Agent"));
        hs.push(("Proxy-Agent".into(), opts.proxy_agent.clone()));
    }
    go_response(1, status, &hs, GoLength::Unknown)
}

/// Serves plain proxy requests on `client`, starting with `first`: each goes
/// to a new upstream connection from `dial(host:port)` with the head GOST
/// writes, and the answer comes back unchanged. As GOST does, later requests
/// on a kept-alive connection are served without asking for credentials
/// again; the loop ends when the client closes or a response ends the
/// connection (`Connection: close`, HTTP/1.0, a body without length).
pub async fn proxy_plain<C, U, D, F>(client: &mut C, first: Plain, mut dial: D) -> Result<(), HttpError>
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
    D: FnMut(String) -> F,
    F: Future<Output = io::Result<U>>,
{
    let mut pending = first.leftover.clone();
    let mut req = first;
    loop {
        let mut up = match dial(req.target.addr.clone()).await {
            Ok(u) => u,
            Err(e) => {
                client.write_all(&go_response(req.head.minor, 503, &[], GoLength::Zero)).await?;
                return Err(HttpError::Io(e));
            }
        };
        up.write_all(&req.upstream_head).await?;
        forward_body(client, &mut pending, &mut up, req.body).await?;
        up.flush().await?;

        let Some(close) = relay_response(client, &mut up, &mut pending, &req).await? else { return Ok(()) };
        if close {
            client.shutdown().await.ok();
            return Ok(());
        }
        drop(up);
        let Some((head, _)) = read_head(client, &mut pending, parse_request, |h: &RequestHead| h.len).await? else {
            return Ok(());
        };
        let Some(target) = plain_target(&head) else {
            client.write_all(&go_response(head.minor, 503, &[], GoLength::Zero)).await?;
            return Err(HttpError::BadRequest(format!("{} {} on a kept-alive proxy connection", head.method, redact_userinfo(&head.target))));
        };
        req = plain_request(head, target, req.user.clone(), Vec::new())?;
    }
}

/// Passes the upstream answer (and any 1xx before it) to the client.
/// `Some(close)`: whether the connection ends after it; `None`: the
/// connection was switched to another protocol and has been piped to its end.
async fn relay_response<C, U>(client: &mut C, up: &mut U, client_pending: &mut Vec<u8>, req: &Plain) -> Result<Option<bool>, HttpError>
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let mut up_pending = Vec::new();
    loop {
        let Some((resp, raw)) = read_head(up, &mut up_pending, parse_response, |h: &codec::ResponseHead| h.len).await? else {
            client.write_all(&go_response(req.head.minor, 503, &[], GoLength::Zero)).await?;
            return Err(HttpError::UpstreamClosed(req.target.addr.clone()));
        };
        client.write_all(&raw).await?;
        if resp.code == 101 {
            client.write_all(&up_pending).await?;
            up.write_all(client_pending).await?;
            client_pending.clear();
            tokio::io::copy_bidirectional(client, up).await?;
            return Ok(None);
        }
        if (100..200).contains(&resp.code) {
            continue;
        }
        let body = response_body(&req.head.method, &resp)?;
        forward_body(up, &mut up_pending, client, body).await?;
        client.flush().await?;
        return Ok(Some(response_closes(&resp, body)));
    }
}

/// Copies one message body from `src` (after the bytes already in `pending`)
/// to `dst`, leaving in `pending` whatever follows it.
async fn forward_body<R, W>(src: &mut R, pending: &mut Vec<u8>, dst: &mut W, body: Body) -> Result<(), HttpError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    match body {
        Body::None => Ok(()),
        Body::Length(n) => {
            let have = usize::try_from(n).unwrap_or(usize::MAX).min(pending.len());
            dst.write_all(pending.get(..have).unwrap_or(&[])).await?;
            pending.drain(..have);
            let rest = n - have as u64;
            let copied = tokio::io::copy(&mut (&mut *src).take(rest), dst).await?;
            if copied < rest {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "http: body ended early").into());
            }
            Ok(())
        }
        Body::Chunked => forward_chunked(src, pending, dst).await,
        Body::UntilClose => {
            dst.write_all(pending).await?;
            pending.clear();
            tokio::io::copy(src, dst).await?;
            Ok(())
        }
    }
}

async fn forward_chunked<R, W>(src: &mut R, pending: &mut Vec<u8>, dst: &mut W) -> Result<(), HttpError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut sc = ChunkedScanner::new();
    let mut buf = std::mem::take(pending);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let used = sc.feed(&buf)?;
        dst.write_all(buf.get(..used).unwrap_or(&[])).await?;
        if sc.is_done() {
            *pending = buf.split_off(used.min(buf.len()));
            return Ok(());
        }
        let n = src.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "http: chunked body ended early").into());
        }
        buf.clear();
        buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
    }
}
