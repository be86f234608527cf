//! HTTP proxy heads as GOST speaks them (go-gost/x `connector/http`,
//! `handler/http`): the CONNECT request its client writes through Go's
//! `net/http`, the replies its server writes, and the rewrite of a plain proxy
//! request for the origin server. Pure: bytes in, values out.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use std::io;

/// Largest request or response head accepted. Go allows 1 MiB; a proxy
/// handshake never needs more than a few hundred bytes, and a small bound
/// keeps a hostile peer from making us buffer much.
pub const MAX_HEAD: usize = 16 * 1024;
/// Headers per head; more is treated as hostile.
const MAX_HEADERS: usize = 100;
/// Go's `net/http` default `User-Agent`, which GOST's client sends.
pub const GO_USER_AGENT: &str = "Go-http-client/1.1";
pub const DEFAULT_PROXY_AGENT: &str = "gost/3.0";
pub const DEFAULT_REALM: &str = "gost";

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("http: the {0} head is longer than {MAX_HEAD} bytes")]
    HeadTooLong(&'static str),
    #[error("http: malformed {0}: {1}")]
    Malformed(&'static str, String),
    #[error("http proxy {proxy} answered {status}")]
    Refused { proxy: String, status: String },
    #[error("http proxy {0} closed the connection before answering")]
    ProxyClosed(String),
    #[error("http: {0} closed the connection before answering")]
    UpstreamClosed(String),
    #[error("http: the client closed the connection before sending a whole request")]
    ClientClosed,
    #[error("http: proxy authentication failed (user {0:?})")]
    AuthFailed(String),
    #[error("http: client asked for a UDP tunnel but this server has udp=false")]
    UdpDisabled,
    #[error("http: not a proxy request ({0})")]
    BadRequest(String),
    #[error("http: chunked body: {0}")]
    Chunked(&'static str),
    #[error("http: {0}")]
    Io(#[from] io::Error),
}

impl From<HttpError> for io::Error {
    fn from(e: HttpError) -> io::Error {
        match e {
            HttpError::Io(e) => e,
            HttpError::AuthFailed(_) => io::Error::new(io::ErrorKind::PermissionDenied, e),
            HttpError::Refused { .. } => io::Error::new(io::ErrorKind::ConnectionRefused, e),
            HttpError::ProxyClosed(_) | HttpError::UpstreamClosed(_) | HttpError::ClientClosed => io::Error::new(io::ErrorKind::UnexpectedEof, e),
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

pub type Headers = Vec<(String, String)>;

/// A parsed response head; `len` is the head's length in the buffer, so the
/// bytes after it belong to whatever follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub minor: u8,
    pub code: u16,
    pub reason: String,
    pub headers: Headers,
    pub len: usize,
}

impl ResponseHead {
    /// `407 Proxy Authentication Required`, as Go's `resp.Status` reads.
    pub fn status(&self) -> String {
        if self.reason.is_empty() {
            self.code.to_string()
        } else {
            format!("{} {}", self.code, self.reason)
        }
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    pub target: String,
    pub minor: u8,
    pub headers: Headers,
    pub len: usize,
}

impl RequestHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// First value of a header, names compared case-insensitively (Go's `Header.Get`).
pub fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

fn header_values<'a>(headers: &'a [(String, String)], name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers.iter().filter(move |(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Whether a comma-separated header (`Connection`) carries `token` in any of its values.
pub fn has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    header_values(headers, name).any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

fn copy_headers(raw: &[httparse::Header<'_>]) -> Headers {
    raw.iter().map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned())).collect()
}

fn too_long_or_more<T>(buf: &[u8], what: &'static str) -> Result<Option<T>, HttpError> {
    if buf.len() >= MAX_HEAD {
        Err(HttpError::HeadTooLong(what))
    } else {
        Ok(None)
    }
}

/// Parses a response head from the start of `buf`: `Ok(None)` until the blank
/// line has arrived, an error once the head cannot be valid or is too long.
pub fn parse_response(buf: &[u8]) -> Result<Option<ResponseHead>, HttpError> {
    let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut raw);
    match resp.parse(buf) {
        Ok(httparse::Status::Partial) => too_long_or_more(buf, "response"),
        Ok(httparse::Status::Complete(len)) if len > MAX_HEAD => Err(HttpError::HeadTooLong("response")),
        Ok(httparse::Status::Complete(len)) => Ok(Some(ResponseHead {
            minor: resp.version.unwrap_or(1),
            code: resp.code.unwrap_or(0),
            reason: resp.reason.unwrap_or("").to_string(),
            headers: copy_headers(resp.headers),
            len,
        })),
        Err(e) => Err(HttpError::Malformed("response", e.to_string())),
    }
}

/// Parses a request head from the start of `buf` (see [`parse_response`]).
pub fn parse_request(buf: &[u8]) -> Result<Option<RequestHead>, HttpError> {
    let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut raw);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) => too_long_or_more(buf, "request"),
        Ok(httparse::Status::Complete(len)) if len > MAX_HEAD => Err(HttpError::HeadTooLong("request")),
        Ok(httparse::Status::Complete(len)) => Ok(Some(RequestHead {
            method: req.method.unwrap_or("").to_string(),
            target: req.path.unwrap_or("").to_string(),
            minor: req.version.unwrap_or(1),
            headers: copy_headers(req.headers),
            len,
        })),
        Err(e) => Err(HttpError::Malformed("request", e.to_string())),
    }
}

/// `Basic base64(user:pass)`, the `Proxy-Authorization` value.
pub fn basic_credentials(user: &str, pass: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{pass}")))
}

/// The reverse of [`basic_credentials`], as strict as GOST: the scheme must be
/// exactly `Basic `, the base64 padded, and a `:` present.
pub fn parse_basic(value: &str) -> Option<(String, String)> {
    let b64 = value.strip_prefix("Basic ")?;
    let raw = STANDARD.decode(b64).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Go's `textproto.CanonicalMIMEHeaderKey`: `proxy-connection` →
/// `Proxy-Connection`; a name with bytes Go does not accept stays as it is.
pub fn canonical_key(name: &str) -> String {
    let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return name.to_string();
    }
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() };
            upper = c == '-';
            out
        })
        .collect()
}

/// Go writes a header value with CR/LF turned into spaces and the ends trimmed,
/// so a value cannot smuggle another header line.
fn clean_value(v: &str) -> String {
    v.replace(['\r', '\n'], " ").trim_matches([' ', '\t']).to_string()
}

/// Go's `Header.WriteSubset`: keys canonical and sorted, values of one key in
/// the order they were added.
fn write_sorted(out: &mut String, headers: &[(String, String)]) {
    let mut hs: Vec<(String, String)> = headers.iter().map(|(k, v)| (canonical_key(k), clean_value(v))).collect();
    hs.sort_by(|a, b| a.0.cmp(&b.0));
    for (k, v) in hs {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
}

/// `headers` with every `name` (any case) replaced by one `name: value`, as Go's `Header.Set`.
fn set_header(headers: &mut Headers, name: &str, value: &str) {
    headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    headers.push((name.to_string(), value.to_string()));
}

fn del_header(headers: &mut Headers, name: &str) {
    headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
}

/// The `User-Agent` line Go's `Request.Write` emits: the header's first value,
/// or Go's default when the header is absent, nothing when it is set empty.
fn user_agent_line(out: &mut String, headers: &[(String, String)]) {
    let ua = match find_header(headers, "User-Agent") {
        Some(v) => clean_value(v),
        None => GO_USER_AGENT.to_string(),
    };
    if !ua.is_empty() {
        out.push_str(&format!("User-Agent: {ua}\r\n"));
    }
}

/// The CONNECT request GOST's http connector writes for `target`: extra
/// headers from the node's `header` option, then `Proxy-Connection`,
/// `Proxy-Authorization` and (UDP) `X-Gost-Protocol` set over them.
pub fn encode_connect(target: &str, auth: Option<(&str, &str)>, extra: &[(String, String)], udp: bool) -> Vec<u8> {
    let mut hs: Headers = extra.to_vec();
    set_header(&mut hs, "Proxy-Connection", "keep-alive");
    if let Some((u, p)) = auth {
        set_header(&mut hs, "Proxy-Authorization", &basic_credentials(u, p));
    }
    if udp {
        set_header(&mut hs, "X-Gost-Protocol", "udp");
    }
    let target = clean_value(target);
    let mut out = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    user_agent_line(&mut out, &hs);
    hs.retain(|(k, _)| !(k.eq_ignore_ascii_case("Host") || k.eq_ignore_ascii_case("User-Agent")));
    write_sorted(&mut out, &hs);
    out.push_str("\r\n");
    out.into_bytes()
}

/// Go's `http.StatusText` for the codes a proxy writes or meets.
pub fn status_text(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

fn body_allowed(code: u16) -> bool {
    !((100..200).contains(&code) || code == 204 || code == 304)
}

/// How Go's `Response.Write` frames a body-less response: `Zero` is
/// `ContentLength: 0` (it adds `Content-Length: 0`), `Unknown` is `-1` (it
/// adds `Connection: close`, since only closing can end such a body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoLength {
    Zero,
    Unknown,
}

/// A body-less response exactly as Go's `Response.Write` writes it.
pub fn go_response(minor: u8, code: u16, headers: &[(String, String)], len: GoLength) -> Vec<u8> {
    let text = match status_text(code) {
        "" => format!("status code {code}"),
        t => t.to_string(),
    };
    let mut out = format!("HTTP/1.{minor} {code:03} {text}\r\n");
    if len == GoLength::Unknown && minor >= 1 && !has_token(headers, "Connection", "close") {
        out.push_str("Connection: close\r\n");
    }
    let hs: Headers = headers
        .iter()
        .filter(|(k, _)| !["Content-Length", "Transfer-Encoding", "Trailer"].iter().any(|x| k.eq_ignore_ascii_case(x)))
        .cloned()
        .collect();
    write_sorted(&mut out, &hs);
    if len == GoLength::Zero && body_allowed(code) {
        out.push_str("Content-Length: 0\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// GOST's answer to a CONNECT it could dial: written as raw bytes, only
/// `Proxy-Agent`, never the `header` option (`handler/http/util.go`).
pub fn connect_established(proxy_agent: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 Connection established\r\nProxy-Agent: {}\r\n\r\n", clean_value(proxy_agent)).into_bytes()
}

/// The UDP tunnel's 200 or 403 (`handler/http/udp.go`): the `header` option
/// only, `Content-Length: 0`.
pub fn udp_reply(ok: bool, header: &[(String, String)]) -> Vec<u8> {
    go_response(1, if ok { 200 } else { 403 }, header, GoLength::Zero)
}

/// The 407 for missing or wrong credentials (`handler/http/auth.go`). A client
/// that asked to keep the connection is told it will be closed, since GOST
/// reads one request per connection before authenticating.
pub fn auth_required(realm: &str, client_keep_alive: bool) -> Vec<u8> {
    let mut hs: Headers = vec![("Proxy-Authenticate".into(), format!("Basic realm=\"{realm}\""))];
    if client_keep_alive {
        hs.push(("Connection".into(), "close".into()));
        hs.push(("Proxy-Connection".into(), "close".into()));
    }
    go_response(1, 407, &hs, GoLength::Unknown)
}

/// GOST's v2 `Gost-Target`/`X-Gost-Target` header: raw-url base64 of a
/// big-endian CRC-32 followed by the raw-url base64 of the host.
pub fn decode_gost_target(v: &str) -> Option<String> {
    let outer = URL_SAFE_NO_PAD.decode(v).ok()?;
    let (crc, rest) = outer.split_first_chunk::<4>()?;
    let inner = URL_SAFE_NO_PAD.decode(rest).ok()?;
    if crc32fast::hash(&inner) != u32::from_be_bytes(*crc) {
        return None;
    }
    String::from_utf8(inner).ok()
}

/// `host:port`, or `host:<default>` when the port is missing; a bracketed
/// IPv6 keeps its brackets (Go's `net.JoinHostPort`).
pub fn with_default_port(host: &str, default: u16) -> String {
    if crate::config::validate::split_host_port(host).is_some_and(|(_, p)| !p.is_empty()) {
        return host.to_string();
    }
    let bare = host.trim_end_matches(':').trim_start_matches('[').trim_end_matches(']');
    if bare.contains(':') {
        format!("[{bare}]:{default}")
    } else {
        format!("{bare}:{default}")
    }
}

/// Whether Go's `govalidator.IsDNSName` or `net.ParseIP` accepts `host`: the
/// test GOST uses to treat an origin-form request with a Host header as a
/// request to proxy.
pub fn is_dns_name_or_ip(host: &str) -> bool {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    if host.is_empty() || host.len() > 255 {
        return false;
    }
    let h = host.strip_suffix(['.', '_']).unwrap_or(host);
    !h.is_empty()
        && h.split('.').all(|l| {
            let mut b = l.bytes();
            matches!(b.next(), Some(c) if c.is_ascii_alphanumeric() || c == b'_')
                && l.len() <= 63
                && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        })
}

/// What follows a head on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    None,
    Length(u64),
    Chunked,
    /// Until the sender closes (a response without length).
    UntilClose,
}

fn content_length(headers: &[(String, String)]) -> Result<Option<u64>, HttpError> {
    let mut found: Option<u64> = None;
    for v in header_values(headers, "Content-Length") {
        let n: u64 = v.trim().parse().map_err(|_| HttpError::Malformed("head", format!("Content-Length {v:?}")))?;
        if found.is_some_and(|f| f != n) {
            return Err(HttpError::Malformed("head", "two different Content-Length values".into()));
        }
        found = Some(n);
    }
    Ok(found)
}

fn is_chunked(headers: &[(String, String)]) -> bool {
    header_values(headers, "Transfer-Encoding")
        .flat_map(|v| v.split(','))
        .last()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"))
}

/// The body of a request (RFC 9112 §6.3: chunked wins over a length).
pub fn request_body(head: &RequestHead) -> Result<Body, HttpError> {
    if is_chunked(&head.headers) {
        return Ok(Body::Chunked);
    }
    Ok(match content_length(&head.headers)? {
        Some(0) | None => Body::None,
        Some(n) => Body::Length(n),
    })
}

/// The body of a response to a request with `method`.
pub fn response_body(method: &str, head: &ResponseHead) -> Result<Body, HttpError> {
    if method.eq_ignore_ascii_case("HEAD") || !body_allowed(head.code) {
        return Ok(Body::None);
    }
    if is_chunked(&head.headers) {
        return Ok(Body::Chunked);
    }
    Ok(match content_length(&head.headers)? {
        Some(0) => Body::None,
        Some(n) => Body::Length(n),
        None => Body::UntilClose,
    })
}

/// Go's `shouldClose` for a response: the proxy stops reading further
/// requests after it, as GOST does when `resp.Close` is set.
pub fn response_closes(head: &ResponseHead, body: Body) -> bool {
    let close = has_token(&head.headers, "Connection", "close");
    let old = head.minor == 0 && !has_token(&head.headers, "Connection", "keep-alive");
    close || old || body == Body::UntilClose
}

/// A plain (non-CONNECT) proxy request, split into where it goes and what
/// GOST's transport writes to the origin server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainTarget {
    /// `host:port` to dial, port 80 by default.
    pub addr: String,
    /// Host as the request names it (`Host:` line upstream).
    pub host: String,
    /// Origin-form: path and query, `/` at least.
    pub path: String,
}

/// Where a non-CONNECT request goes: only an absolute `http://` URI names a
/// host GOST's upstream transport can reach (an origin-form path leaves the
/// URL without host, and the transport refuses it). Anything else is `None`.
pub fn plain_target(head: &RequestHead) -> Option<PlainTarget> {
    let t = head.target.as_str();
    let (host, path) = if let Some(rest) = strip_scheme(t, "http") {
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (auth, path) = rest.split_at(end);
        let host = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
        (host.to_string(), path.to_string())
    } else {
        return None;
    };
    if host.is_empty() {
        return None;
    }
    let path = if path.is_empty() || path.starts_with('?') { format!("/{path}") } else { path };
    Some(PlainTarget { addr: with_default_port(&host, 80), host, path })
}

/// Whether the request target is an absolute `http://` URI.
pub fn is_http_uri(target: &str) -> bool {
    strip_scheme(target, "http").is_some()
}

fn strip_scheme<'a>(t: &'a str, scheme: &str) -> Option<&'a str> {
    let (s, rest) = t.split_once("://")?;
    s.eq_ignore_ascii_case(scheme).then_some(rest)
}

/// The head GOST's upstream transport (`DisableKeepAlives`, no compression)
/// writes for a plain proxy request: origin-form `HTTP/1.1` request line,
/// `Host`, `User-Agent`, framing, the client's other headers sorted with
/// `Proxy-Authorization`, `Proxy-Connection`, `Gost-Target` and
/// `X-Gost-Target` removed, and `Connection: close`.
pub fn rewrite_plain(head: &RequestHead, target: &PlainTarget) -> Result<Vec<u8>, HttpError> {
    let body = request_body(head)?;
    let mut hs = head.headers.clone();
    let conn_close = has_token(&hs, "Connection", "close");
    let conn_keep = has_token(&hs, "Connection", "keep-alive");
    // Go's shouldClose at read time: HTTP/1.0 closes unless it says keep-alive.
    let client_close = conn_close || (head.minor == 0 && !conn_keep);
    if head.minor == 0 {
        if conn_keep && !conn_close {
            del_header(&mut hs, "Connection");
        } else {
            set_header(&mut hs, "Connection", "close");
        }
    }
    for h in ["Proxy-Authorization", "Proxy-Connection", "Gost-Target", "X-Gost-Target", "Host", "Content-Length", "Transfer-Encoding"] {
        del_header(&mut hs, h);
    }
    let method = clean_value(&head.method);
    let mut out = format!("{method} {} HTTP/1.1\r\nHost: {}\r\n", clean_value(&target.path), clean_value(&target.host));
    user_agent_line(&mut out, &hs);
    del_header(&mut hs, "User-Agent");
    if client_close && !has_token(&hs, "Connection", "close") {
        out.push_str("Connection: close\r\n");
    }
    match body {
        Body::Length(n) => out.push_str(&format!("Content-Length: {n}\r\n")),
        Body::Chunked => out.push_str("Transfer-Encoding: chunked\r\n"),
        Body::None if ["POST", "PUT", "PATCH"].contains(&method.as_str()) => out.push_str("Content-Length: 0\r\n"),
        _ => {}
    }
    write_sorted(&mut out, &hs);
    if !client_close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    Ok(out.into_bytes())
}

/// Bounds on the non-data parts of a chunked body, so a peer cannot make the
/// scanner wait on an endless size line or trailer.
const MAX_CHUNK_LINE: usize = 4096;
const MAX_TRAILER: usize = MAX_HEAD;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ck {
    Size { val: u64, digits: u8 },
    Ext { val: u64 },
    SizeLf { val: u64 },
    Data(u64),
    DataCr,
    DataLf,
    Trailer { line: usize, total: usize },
    TrailerLf { line: usize, total: usize },
    Done,
}

/// Finds the end of a chunked body in a stream of bytes without changing
/// them, so the proxy can pass it through and know when the message is over.
#[derive(Debug, Clone)]
pub struct ChunkedScanner {
    st: Ck,
    line: usize,
}

impl Default for ChunkedScanner {
    fn default() -> Self {
        ChunkedScanner { st: Ck::Size { val: 0, digits: 0 }, line: 0 }
    }
}

impl ChunkedScanner {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_done(&self) -> bool {
        self.st == Ck::Done
    }

    /// Consumes bytes of the body; returns how many belong to it (fewer than
    /// `buf.len()` only when the body ended inside `buf`).
    pub fn feed(&mut self, buf: &[u8]) -> Result<usize, HttpError> {
        let mut i = 0;
        while i < buf.len() && self.st != Ck::Done {
            if let Ck::Data(rem) = self.st {
                let take = usize::try_from(rem).unwrap_or(usize::MAX).min(buf.len() - i);
                i += take;
                let left = rem - take as u64;
                self.st = if left == 0 { Ck::DataCr } else { Ck::Data(left) };
                continue;
            }
            let b = buf.get(i).copied().unwrap_or(0);
            i += 1;
            self.step(b)?;
        }
        Ok(i)
    }

    fn step(&mut self, b: u8) -> Result<(), HttpError> {
        self.st = match self.st {
            Ck::Size { val, digits } => {
                self.line += 1;
                if self.line > MAX_CHUNK_LINE {
                    return Err(HttpError::Chunked("chunk size line too long"));
                }
                match (b as char).to_digit(16) {
                    Some(d) if digits < 15 => Ck::Size { val: val * 16 + u64::from(d), digits: digits + 1 },
                    Some(_) => return Err(HttpError::Chunked("chunk size too large")),
                    None if digits == 0 => return Err(HttpError::Chunked("missing chunk size")),
                    None => match b {
                        b'\r' => Ck::SizeLf { val },
                        b'\n' => self.after_size(val),
                        b';' | b' ' | b'\t' => Ck::Ext { val },
                        _ => return Err(HttpError::Chunked("bad chunk size")),
                    },
                }
            }
            Ck::Ext { val } => {
                self.line += 1;
                if self.line > MAX_CHUNK_LINE {
                    return Err(HttpError::Chunked("chunk extension too long"));
                }
                match b {
                    b'\r' => Ck::SizeLf { val },
                    b'\n' => self.after_size(val),
                    _ => Ck::Ext { val },
                }
            }
            Ck::SizeLf { val } => match b {
                b'\n' => self.after_size(val),
                _ => return Err(HttpError::Chunked("bad line end after chunk size")),
            },
            Ck::DataCr => match b {
                b'\r' => Ck::DataLf,
                b'\n' => self.next_size(),
                _ => return Err(HttpError::Chunked("chunk data longer than its size")),
            },
            Ck::DataLf => match b {
                b'\n' => self.next_size(),
                _ => return Err(HttpError::Chunked("bad line end after chunk data")),
            },
            Ck::Trailer { line, total } => {
                if total + 1 > MAX_TRAILER {
                    return Err(HttpError::Chunked("trailer too long"));
                }
                match b {
                    b'\r' => Ck::TrailerLf { line, total: total + 1 },
                    b'\n' if line == 0 => Ck::Done,
                    b'\n' => Ck::Trailer { line: 0, total: total + 1 },
                    _ => Ck::Trailer { line: line + 1, total: total + 1 },
                }
            }
            Ck::TrailerLf { line, total } => match b {
                b'\n' if line == 0 => Ck::Done,
                b'\n' => Ck::Trailer { line: 0, total },
                _ => return Err(HttpError::Chunked("bad line end in trailer")),
            },
            Ck::Data(_) | Ck::Done => self.st,
        };
        Ok(())
    }

    fn after_size(&mut self, val: u64) -> Ck {
        self.line = 0;
        if val == 0 {
            Ck::Trailer { line: 0, total: 0 }
        } else {
            Ck::Data(val)
        }
    }

    fn next_size(&mut self) -> Ck {
        self.line = 0;
        Ck::Size { val: 0, digits: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(b: &[u8]) -> &str {
        std::str::from_utf8(b).unwrap()
    }

    #[test]
    fn connect_udp_is_example_g() {
        let got = encode_connect("192.168.1.1:53", None, &[], true);
        assert_eq!(
            s(&got),
            "CONNECT 192.168.1.1:53 HTTP/1.1\r\nHost: 192.168.1.1:53\r\nUser-Agent: Go-http-client/1.1\r\nProxy-Connection: keep-alive\r\nX-Gost-Protocol: udp\r\n\r\n"
        );
    }

    #[test]
    fn connect_with_auth_and_headers() {
        let got = encode_connect("example.com:443", Some(("u", "p")), &[], false);
        assert_eq!(
            s(&got),
            "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nUser-Agent: Go-http-client/1.1\r\nProxy-Authorization: Basic dTpw\r\nProxy-Connection: keep-alive\r\n\r\n"
        );
        let extra = vec![("user-agent".to_string(), "curl/8".to_string()), ("zed".into(), "1".into()), ("foo".into(), "a\r\nEvil: 1".into())];
        let got = encode_connect("h:1", None, &extra, false);
        assert_eq!(
            s(&got),
            "CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\nUser-Agent: curl/8\r\nFoo: a  Evil: 1\r\nProxy-Connection: keep-alive\r\nZed: 1\r\n\r\n"
        );
    }

    #[test]
    fn server_replies_are_gosts() {
        assert_eq!(s(&udp_reply(true, &[])), "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(s(&udp_reply(false, &[])), "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(s(&connect_established("gost/3.0")), "HTTP/1.1 200 Connection established\r\nProxy-Agent: gost/3.0\r\n\r\n");
        assert_eq!(
            s(&auth_required("gost", false)),
            "HTTP/1.1 407 Proxy Authentication Required\r\nConnection: close\r\nProxy-Authenticate: Basic realm=\"gost\"\r\n\r\n"
        );
        assert_eq!(
            s(&auth_required("gost", true)),
            "HTTP/1.1 407 Proxy Authentication Required\r\nConnection: close\r\nProxy-Authenticate: Basic realm=\"gost\"\r\nProxy-Connection: close\r\n\r\n"
        );
        assert_eq!(s(&go_response(1, 400, &[], GoLength::Unknown)), "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
        let hs = vec![("proxy-agent".to_string(), "gost/3.0".to_string())];
        assert_eq!(
            s(&go_response(1, 503, &hs, GoLength::Unknown)),
            "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nProxy-Agent: gost/3.0\r\n\r\n"
        );
        assert_eq!(s(&go_response(0, 503, &[], GoLength::Zero)), "HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(s(&go_response(1, 299, &[], GoLength::Zero)), "HTTP/1.1 299 status code 299\r\nContent-Length: 0\r\n\r\n");
    }

    #[test]
    fn response_at_every_cut() {
        let full = b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\n\r\nTAIL";
        let head_len = full.len() - 4;
        for i in 0..head_len {
            assert_eq!(parse_response(&full[..i]).unwrap(), None, "cut at {i}");
        }
        for i in head_len..=full.len() {
            let h = parse_response(&full[..i]).unwrap().unwrap();
            assert_eq!(h.len, head_len);
            assert_eq!(h.code, 407);
            assert_eq!(h.status(), "407 Proxy Authentication Required");
            assert_eq!(h.header("proxy-authenticate"), Some("Basic realm=\"x\""));
        }
    }

    #[test]
    fn request_at_every_cut() {
        let full = b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n\x16\x03";
        let head_len = full.len() - 2;
        for i in 0..head_len {
            assert_eq!(parse_request(&full[..i]).unwrap(), None, "cut at {i}");
        }
        let h = parse_request(full).unwrap().unwrap();
        assert_eq!((h.method.as_str(), h.target.as_str(), h.minor, h.len), ("CONNECT", "h:443", 1, head_len));
    }

    #[test]
    fn oversized_heads_are_errors() {
        let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
        while big.len() < MAX_HEAD + 10 {
            big.extend_from_slice(format!("X-Pad: {}\r\n", "a".repeat(400)).as_bytes());
        }
        assert!(matches!(parse_response(&big), Err(HttpError::HeadTooLong(_))));
        let mut line = b"GET /".to_vec();
        line.resize(MAX_HEAD, b'a');
        assert!(matches!(parse_request(&line), Err(HttpError::HeadTooLong(_))));
        // A complete head that is itself too long is refused as well.
        big.extend_from_slice(b"\r\n");
        assert!(parse_response(&big).is_err());
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_request(b"\x05\x01\x00").is_err());
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for round in 0..3000 {
            let len = (round % 300) + 1;
            let mut buf = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf.push(if round % 3 == 0 { b"HTTP/1. 20\r\n:aZ;\t0"[(x % 18) as usize] } else { x as u8 });
            }
            let _ = parse_response(&buf);
            let _ = parse_request(&buf);
            let _ = ChunkedScanner::new().feed(&buf);
            let t = String::from_utf8_lossy(&buf);
            let _ = parse_basic(&t);
            let _ = decode_gost_target(&t);
            let _ = with_default_port(&t, 80);
            let _ = is_dns_name_or_ip(&t);
        }
    }

    #[test]
    fn basic_credentials_round_trip() {
        assert_eq!(basic_credentials("u", "p"), "Basic dTpw");
        assert_eq!(parse_basic("Basic dTpw"), Some(("u".into(), "p".into())));
        assert_eq!(parse_basic(&basic_credentials("bob", "a:b")), Some(("bob".into(), "a:b".into())));
        assert_eq!(parse_basic("basic dTpw"), None);
        assert_eq!(parse_basic("Basic dQ=="), None); // "u", no colon
        assert_eq!(parse_basic("Basic !!"), None);
    }

    #[test]
    fn chunked_end_found_at_every_split() {
        let body = b"5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n";
        let mut all = body.to_vec();
        all.extend_from_slice(b"NEXT");
        for cut in 0..all.len() {
            let mut sc = ChunkedScanner::new();
            let a = sc.feed(&all[..cut]).unwrap();
            assert_eq!(a, cut.min(body.len()));
            let b = sc.feed(&all[a..]).unwrap();
            assert!(sc.is_done(), "cut {cut}");
            assert_eq!(a + b, body.len(), "cut {cut}");
        }
        let mut sc = ChunkedScanner::new();
        assert_eq!(sc.feed(b"0\r\n\r\n").unwrap(), 5);
        assert!(sc.is_done());
        assert!(ChunkedScanner::new().feed(b"zz\r\n").is_err());
        assert!(ChunkedScanner::new().feed(b"2\r\nabc\r\n").is_err());
        assert!(ChunkedScanner::new().feed(b"ffffffffffffffffff\r\n").is_err());
        assert!(ChunkedScanner::new().feed(&[b'1'; 20]).is_err());
        let mut long_ext = b"1;".to_vec();
        long_ext.resize(MAX_CHUNK_LINE + 10, b'x');
        assert!(ChunkedScanner::new().feed(&long_ext).is_err());
    }

    fn req(raw: &str) -> RequestHead {
        parse_request(raw.as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn plain_request_rewritten_as_gost_sends_it() {
        let h = req("GET http://127.0.0.1:8081/x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:8081\r\nuser-agent: curl/8.5.0\r\nAccept: */*\r\nProxy-Connection: Keep-Alive\r\nProxy-Authorization: Basic dTpw\r\n\r\n");
        let t = plain_target(&h).unwrap();
        assert_eq!(t, PlainTarget { addr: "127.0.0.1:8081".into(), host: "127.0.0.1:8081".into(), path: "/x?y=1".into() });
        assert_eq!(
            s(&rewrite_plain(&h, &t).unwrap()),
            "GET /x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:8081\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        let h = req("POST http://example.com HTTP/1.0\r\nContent-Length: 3\r\nX-Gost-Target: zz\r\n\r\n");
        let t = plain_target(&h).unwrap();
        assert_eq!((t.addr.as_str(), t.path.as_str()), ("example.com:80", "/"));
        assert_eq!(
            s(&rewrite_plain(&h, &t).unwrap()),
            "POST / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(request_body(&h).unwrap(), Body::Length(3));
        assert!(plain_target(&req("GET https://h/ HTTP/1.1\r\n\r\n")).is_none());
        assert!(plain_target(&req("GET / HTTP/1.1\r\nHost: h\r\n\r\n")).is_none());
        assert!(plain_target(&req("GET http:///x HTTP/1.1\r\n\r\n")).is_none());
        let h = req("GET http://u:p@[::1]:81/ HTTP/1.1\r\n\r\n");
        assert_eq!(plain_target(&h).unwrap().addr, "[::1]:81");
    }

    #[test]
    fn bodies_and_closing() {
        let r = |raw: &str| parse_response(raw.as_bytes()).unwrap().unwrap();
        let ok = r("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(response_body("GET", &ok).unwrap(), Body::Length(5));
        assert_eq!(response_body("HEAD", &ok).unwrap(), Body::None);
        assert!(!response_closes(&ok, Body::Length(5)));
        let ch = r("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(response_body("GET", &ch).unwrap(), Body::Chunked);
        let open = r("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(response_body("GET", &open).unwrap(), Body::UntilClose);
        assert!(response_closes(&open, Body::UntilClose));
        assert!(response_closes(&r("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"), Body::None));
        assert!(response_closes(&r("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"), Body::None));
        assert_eq!(response_body("GET", &r("HTTP/1.1 304 Not Modified\r\n\r\n")).unwrap(), Body::None);
        assert!(response_body("GET", &r("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")).is_err());
        assert!(response_body("GET", &r("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n")).is_err());
    }

    #[test]
    fn hosts_and_gost_targets() {
        assert_eq!(with_default_port("example.com", 80), "example.com:80");
        assert_eq!(with_default_port("example.com:8080", 80), "example.com:8080");
        assert_eq!(with_default_port("[::1]", 80), "[::1]:80");
        assert_eq!(with_default_port("::1", 80), "[::1]:80");
        assert_eq!(with_default_port("[::1]:9", 80), "[::1]:9");
        assert!(is_dns_name_or_ip("example.com"));
        assert!(is_dns_name_or_ip("127.0.0.1"));
        assert!(is_dns_name_or_ip("localhost"));
        assert!(!is_dns_name_or_ip("a b"));
        assert!(!is_dns_name_or_ip(""));
        assert!(!is_dns_name_or_ip("-x.com"));
        let host = b"secret.example:443";
        let mut outer = crc32fast::hash(host).to_be_bytes().to_vec();
        outer.extend_from_slice(URL_SAFE_NO_PAD.encode(host).as_bytes());
        let v = URL_SAFE_NO_PAD.encode(&outer);
        assert_eq!(decode_gost_target(&v).as_deref(), Some("secret.example:443"));
        outer[0] ^= 1;
        assert_eq!(decode_gost_target(&URL_SAFE_NO_PAD.encode(&outer)), None);
    }
}
