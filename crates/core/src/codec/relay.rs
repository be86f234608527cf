//! GOST's relay protocol (go-gost/relay `relay.go`, `feature.go`): a request
//! `VER CMD FLEN features`, a response `VER STATUS FLEN features`, features as
//! `TYPE LEN(2) data`, and the `LEN(2) | payload` framing of UDP over a relay
//! CONNECT. Pure: the I/O sits in `connector::relay` and `handler::relay`.

use crate::codec::addr::{Addr, AddrError};
use std::fmt;
use std::io;

pub const VERSION: u8 = 0x01;
/// `VER CMD|STATUS FLEN`.
pub const HEADER_LEN: usize = 4;
const FEATURE_HEADER_LEN: usize = 3;
/// FLEN is a u16, so a message is never longer than this: the bound on every
/// handshake read, on both sides.
pub const MAX_MESSAGE_LEN: usize = HEADER_LEN + u16::MAX as usize;
/// The most a UDP frame's LEN can say.
pub const MAX_DATAGRAM: usize = u16::MAX as usize;

pub const CMD_CONNECT: u8 = 0x01;
pub const CMD_BIND: u8 = 0x02;
pub const CMD_ASSOCIATE: u8 = 0x03;
/// The command is the low nibble; the high one holds flags.
pub const CMD_MASK: u8 = 0x0F;
/// Flag: UDP. GOST marks it deprecated in favour of the Network feature but both
/// its client and server still use it.
pub const FLAG_UDP: u8 = 0x80;

pub const STATUS_OK: u8 = 0x00;
pub const STATUS_BAD_REQUEST: u8 = 0x01;
pub const STATUS_UNAUTHORIZED: u8 = 0x02;
pub const STATUS_FORBIDDEN: u8 = 0x03;
pub const STATUS_TIMEOUT: u8 = 0x04;
pub const STATUS_SERVICE_UNAVAILABLE: u8 = 0x05;
pub const STATUS_HOST_UNREACHABLE: u8 = 0x06;
pub const STATUS_NETWORK_UNREACHABLE: u8 = 0x07;
pub const STATUS_INTERNAL_SERVER_ERROR: u8 = 0x08;

pub const FEATURE_USER_AUTH: u8 = 0x01;
pub const FEATURE_ADDR: u8 = 0x02;
pub const FEATURE_TUNNEL: u8 = 0x03;
pub const FEATURE_NETWORK: u8 = 0x04;

pub const NETWORK_TCP: u16 = 0x0000;
pub const NETWORK_UDP: u16 = 0x0001;
pub const NETWORK_IP: u16 = 0x0002;
pub const NETWORK_UNIX: u16 = 0x0010;
pub const NETWORK_SERIAL: u16 = 0x0011;

/// What a status means, in words a user reads in an error.
pub fn status_text(status: u8) -> String {
    let s = match status {
        STATUS_OK => "ok",
        STATUS_BAD_REQUEST => "bad request",
        STATUS_UNAUTHORIZED => "unauthorized",
        STATUS_FORBIDDEN => "forbidden",
        STATUS_TIMEOUT => "timeout",
        STATUS_SERVICE_UNAVAILABLE => "service unavailable",
        STATUS_HOST_UNREACHABLE => "host unreachable",
        STATUS_NETWORK_UNREACHABLE => "network unreachable",
        STATUS_INTERNAL_SERVER_ERROR => "internal server error",
        other => return format!("unknown status 0x{other:02x}"),
    };
    s.to_string()
}

/// The two networks Portway carries over relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Network {
    Tcp,
    Udp,
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Network::Tcp => "tcp",
            Network::Udp => "udp",
        })
    }
}

/// GOST's name for a Network feature id; unknown ids read as `tcp`, as
/// `NetworkID.String` does.
pub fn network_name(id: u16) -> &'static str {
    match id {
        NETWORK_UDP => "udp",
        NETWORK_IP => "ip",
        NETWORK_UNIX => "unix",
        NETWORK_SERIAL => "serial",
        _ => "tcp",
    }
}

#[derive(Clone, PartialEq, Eq)]
pub enum Feature {
    UserAuth {
        user: String,
        pass: String,
    },
    Addr(Addr),
    /// GOST's tunnel id (16 bytes in relay v0.5.0, 20 later); Portway has no
    /// tunnels, so the bytes are kept as they came.
    Tunnel(Vec<u8>),
    Network(u16),
    /// A type this side does not know, kept so it can be passed on: relay
    /// v0.5.0 rejects the whole message here, later versions keep it the same
    /// way (`OpaqueFeature`), and the later behaviour lets newer peers talk to us.
    Other {
        kind: u8,
        data: Vec<u8>,
    },
}

impl fmt::Debug for Feature {
    // Never print a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Feature::UserAuth { user, .. } => f.debug_struct("UserAuth").field("user", user).finish_non_exhaustive(),
            Feature::Addr(a) => f.debug_tuple("Addr").field(&a.to_string()).finish(),
            Feature::Tunnel(t) => f.debug_tuple("Tunnel").field(&t.len()).finish(),
            Feature::Network(n) => f.debug_tuple("Network").field(n).finish(),
            Feature::Other { kind, data } => {
                f.debug_struct("Other").field("kind", kind).field("len", &data.len()).finish()
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("unsupported protocol version 0x{0:02x} (expected 0x01; is the peer a relay server/client?)")]
    BadVersion(u8),
    #[error("feature list ends inside a feature header")]
    TruncatedFeatureHeader,
    #[error("feature 0x{kind:02x} claims {claimed} bytes but only {left} remain")]
    FeatureOverrun { kind: u8, claimed: usize, left: usize },
    #[error("{name} feature is too short ({len} bytes)")]
    ShortFeature { name: &'static str, len: usize },
    #[error("address feature: {0}")]
    Addr(AddrError),
    #[error("user name or password is longer than 255 bytes")]
    AuthTooLong,
    #[error("feature 0x{0:02x} is longer than 65535 bytes")]
    FeatureTooLong(u8),
    #[error("features add up to more than 65535 bytes")]
    FeaturesTooLong,
    #[error("UDP datagram of {0} bytes is larger than a relay frame can carry (65535)")]
    DatagramTooLarge(usize),
}

impl From<CodecError> for io::Error {
    fn from(e: CodecError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, RelayError::Malformed(e))
    }
}

/// Everything that can go wrong on either side of a relay handshake, worded for
/// the user who reads it in the log or the app.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("relay: {server} refused: {}", status_text(*.status))]
    Refused { server: String, status: u8 },
    #[error("relay: {server} sent a malformed response: {source}")]
    BadResponse { server: String, source: CodecError },
    #[error("relay: {server} closed the connection without answering (not a relay server, or it could not read the request)")]
    NoResponse { server: String },
    #[error("relay: cannot build the request: {0}")]
    Encode(CodecError),
    #[error("relay: malformed request from the client: {0}")]
    Malformed(CodecError),
    #[error("relay: the client closed the connection in the middle of its request")]
    Truncated,
    #[error("relay: no complete request from the client within {0:?}")]
    Timeout(std::time::Duration),
    #[error("relay: authentication failed (client user {0:?})")]
    Unauthorized(String),
    #[error("relay: the request names no target address")]
    NoTarget,
    #[error("relay: unknown command 0x{0:02x}")]
    UnknownCommand(u8),
    #[error("relay: network {0} is not supported (only tcp and udp)")]
    UnsupportedNetwork(&'static str),
    #[error("relay: BIND is disabled (the relay service needs bind=true)")]
    BindDisabled,
    #[error("relay: cannot listen on {addr} for BIND: {source} (answered service unavailable)")]
    ListenFailed { addr: String, source: io::Error },
    #[error("relay: {server} answered a BIND without the bound address")]
    NoBoundAddr { server: String },
    #[error("relay: a BIND stream did not start with the peer's address: {0}")]
    BadPeerHeader(String),
    #[error("relay: {0}")]
    Io(#[from] io::Error),
}

impl RelayError {
    /// Gets a `RelayError` back out of the `io::Error` a relay stream's read or
    /// write returned, so it is not wrapped (and prefixed) twice.
    pub fn from_io(e: io::Error) -> RelayError {
        if e.get_ref().is_some_and(|inner| inner.is::<RelayError>()) {
            if let Some(inner) = e.into_inner() {
                if let Ok(r) = inner.downcast::<RelayError>() {
                    return *r;
                }
            }
            return RelayError::Io(io::Error::other("error lost while unwrapping"));
        }
        RelayError::Io(e)
    }
}

impl From<RelayError> for io::Error {
    fn from(e: RelayError) -> io::Error {
        use io::ErrorKind as K;
        let kind = match &e {
            RelayError::Io(_) => K::Other,
            RelayError::Refused { status: STATUS_UNAUTHORIZED, .. } | RelayError::Unauthorized(_) => {
                K::PermissionDenied
            }
            RelayError::Refused { .. } => K::ConnectionRefused,
            RelayError::Timeout(_) => K::TimedOut,
            RelayError::ListenFailed { source, .. } => source.kind(),
            RelayError::NoResponse { .. } | RelayError::Truncated => K::UnexpectedEof,
            RelayError::BindDisabled | RelayError::UnsupportedNetwork(_) => {
                K::Unsupported
            }
            _ => K::InvalidData,
        };
        match e {
            RelayError::Io(inner) => inner,
            e => io::Error::new(kind, e),
        }
    }
}

/// A client request. `cmd` is the raw byte (command | flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub cmd: u8,
    pub features: Vec<Feature>,
}

/// A server response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u8,
    pub features: Vec<Feature>,
}

impl Request {
    /// A CONNECT as GOST's connector builds it (go-gost/x
    /// `connector/relay/connector.go`): TCP `[UserAuth] [Addr]`; UDP sets the
    /// 0x80 flag and puts `[Network udp]` first.
    pub fn connect(target: &Addr, network: Network, auth: Option<(&str, &str)>) -> Request {
        let mut cmd = CMD_CONNECT;
        let mut features = Vec::with_capacity(3);
        if network == Network::Udp {
            cmd |= FLAG_UDP;
            features.push(Feature::Network(NETWORK_UDP));
        }
        if let Some((user, pass)) = auth {
            features.push(Feature::UserAuth { user: user.to_string(), pass: pass.to_string() });
        }
        features.push(Feature::Addr(target.clone()));
        Request { cmd, features }
    }

    /// A BIND as GOST's connector builds it (go-gost/x `connector/relay/bind.go`):
    /// CMD `02` (`82` for UDP), features `[UserAuth] [Network] [Addr]`.
    pub fn bind(addr: &Addr, network: Network, auth: Option<(&str, &str)>) -> Request {
        let (cmd, net) = match network {
            Network::Tcp => (CMD_BIND, NETWORK_TCP),
            Network::Udp => (CMD_BIND | FLAG_UDP, NETWORK_UDP),
        };
        let mut features = Vec::with_capacity(3);
        if let Some((user, pass)) = auth {
            features.push(Feature::UserAuth { user: user.to_string(), pass: pass.to_string() });
        }
        features.push(Feature::Network(net));
        features.push(Feature::Addr(addr.clone()));
        Request { cmd, features }
    }

    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        encode_message(self.cmd, &self.features, out)
    }

    /// `Ok(None)`: not all of the request is in `buf` yet. Otherwise the request
    /// and the bytes it took; whatever follows is payload.
    pub fn decode(buf: &[u8]) -> Result<Option<(Request, usize)>, CodecError> {
        Ok(decode_message(buf)?.map(|(cmd, features, used)| (Request { cmd, features }, used)))
    }

    /// The command without flags.
    pub fn command(&self) -> u8 {
        self.cmd & CMD_MASK
    }

    /// GOST's server takes the last feature of each kind (it overwrites as it walks
    /// the list), so these do too.
    pub fn user_auth(&self) -> Option<(&str, &str)> {
        self.features.iter().rev().find_map(|f| match f {
            Feature::UserAuth { user, pass } => Some((user.as_str(), pass.as_str())),
            _ => None,
        })
    }

    pub fn addr(&self) -> Option<&Addr> {
        self.features.iter().rev().find_map(|f| match f {
            Feature::Addr(a) => Some(a),
            _ => None,
        })
    }

    pub fn network_id(&self) -> Option<u16> {
        self.features.iter().rev().find_map(|f| match f {
            Feature::Network(n) => Some(*n),
            _ => None,
        })
    }
}

impl Response {
    pub fn status(status: u8) -> Response {
        Response { status, features: Vec::new() }
    }

    /// `00` with one Addr feature: a BIND answer (the bound address) or the
    /// start of a BIND stream (the peer).
    pub fn ok_with_addr(addr: &Addr) -> Response {
        Response { status: STATUS_OK, features: vec![Feature::Addr(addr.clone())] }
    }

    /// The first Addr feature. In a BIND stream's response it is the peer; a
    /// second one (GOST's tunnel "host") is informational.
    pub fn addr(&self) -> Option<&Addr> {
        self.features.iter().find_map(|f| match f {
            Feature::Addr(a) => Some(a),
            _ => None,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        encode_message(self.status, &self.features, out)
    }

    /// The `VER STATUS 0000` form both GOST and Portway send for CONNECT.
    pub fn bare(status: u8) -> [u8; HEADER_LEN] {
        [VERSION, status, 0, 0]
    }

    pub fn decode(buf: &[u8]) -> Result<Option<(Response, usize)>, CodecError> {
        Ok(decode_message(buf)?.map(|(status, features, used)| (Response { status, features }, used)))
    }
}

/// How long the message starting at `buf` is, once its header is in: lets a
/// reader take exactly the message and leave the payload behind it unread.
/// `Ok(None)` until 4 bytes are there; a wrong version fails on the first byte.
pub fn message_len(buf: &[u8]) -> Result<Option<usize>, CodecError> {
    if let Some(&v) = buf.first() {
        if v != VERSION {
            return Err(CodecError::BadVersion(v));
        }
    }
    match buf.get(2..4) {
        Some(&[hi, lo]) => Ok(Some(HEADER_LEN + u16::from_be_bytes([hi, lo]) as usize)),
        _ => Ok(None),
    }
}

fn encode_message(second: u8, features: &[Feature], out: &mut Vec<u8>) -> Result<(), CodecError> {
    let start = out.len();
    out.extend_from_slice(&[VERSION, second, 0, 0]);
    for f in features {
        if let Err(e) = encode_feature(f, out) {
            out.truncate(start);
            return Err(e);
        }
    }
    let Ok(flen) = u16::try_from(out.len() - start - HEADER_LEN) else {
        out.truncate(start);
        return Err(CodecError::FeaturesTooLong);
    };
    out[start + 2..start + 4].copy_from_slice(&flen.to_be_bytes());
    Ok(())
}

fn encode_feature(f: &Feature, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let mut data = Vec::new();
    let kind = match f {
        Feature::UserAuth { user, pass } => {
            let (Ok(ul), Ok(pl)) = (u8::try_from(user.len()), u8::try_from(pass.len())) else {
                return Err(CodecError::AuthTooLong);
            };
            data.push(ul);
            data.extend_from_slice(user.as_bytes());
            data.push(pl);
            data.extend_from_slice(pass.as_bytes());
            FEATURE_USER_AUTH
        }
        Feature::Addr(a) => {
            a.encode(&mut data);
            FEATURE_ADDR
        }
        Feature::Tunnel(t) => {
            data.extend_from_slice(t);
            FEATURE_TUNNEL
        }
        Feature::Network(n) => {
            data.extend_from_slice(&n.to_be_bytes());
            FEATURE_NETWORK
        }
        Feature::Other { kind, data: d } => {
            data.extend_from_slice(d);
            *kind
        }
    };
    let len = u16::try_from(data.len()).map_err(|_| CodecError::FeatureTooLong(kind))?;
    out.push(kind);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&data);
    Ok(())
}

type Message = (u8, Vec<Feature>, usize);

fn decode_message(buf: &[u8]) -> Result<Option<Message>, CodecError> {
    let Some(total) = message_len(buf)? else { return Ok(None) };
    let (Some(&second), Some(body)) = (buf.get(1), buf.get(HEADER_LEN..total)) else {
        return Ok(None);
    };
    Ok(Some((second, decode_features(body)?, total)))
}

fn decode_features(mut body: &[u8]) -> Result<Vec<Feature>, CodecError> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let Some(&[kind, hi, lo]) = body.get(..FEATURE_HEADER_LEN) else {
            return Err(CodecError::TruncatedFeatureHeader);
        };
        let len = u16::from_be_bytes([hi, lo]) as usize;
        let rest = &body[FEATURE_HEADER_LEN..];
        let Some(data) = rest.get(..len) else {
            return Err(CodecError::FeatureOverrun { kind, claimed: len, left: rest.len() });
        };
        out.push(decode_feature(kind, data)?);
        body = &rest[len..];
    }
    Ok(out)
}

/// Like GOST's decoders, each reads what it needs from the front of `data` and
/// ignores bytes after it.
fn decode_feature(kind: u8, data: &[u8]) -> Result<Feature, CodecError> {
    let short = |name| CodecError::ShortFeature { name, len: data.len() };
    match kind {
        FEATURE_USER_AUTH => {
            let (user, rest) = take_len_prefixed(data).ok_or_else(|| short("user/password"))?;
            let (pass, _) = take_len_prefixed(rest).ok_or_else(|| short("user/password"))?;
            Ok(Feature::UserAuth {
                user: String::from_utf8_lossy(user).into_owned(),
                pass: String::from_utf8_lossy(pass).into_owned(),
            })
        }
        FEATURE_ADDR => match Addr::decode(data) {
            Ok(Some((a, _))) => Ok(Feature::Addr(a)),
            Ok(None) => Err(short("address")),
            Err(e) => Err(CodecError::Addr(e)),
        },
        FEATURE_TUNNEL => Ok(Feature::Tunnel(data.to_vec())),
        FEATURE_NETWORK => match data.get(..2) {
            Some(&[hi, lo]) => Ok(Feature::Network(u16::from_be_bytes([hi, lo]))),
            _ => Err(short("network")),
        },
        kind => Ok(Feature::Other { kind, data: data.to_vec() }),
    }
}

/// `LEN(1) bytes` at the front of `data`, and what follows.
fn take_len_prefixed(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&n, rest) = data.split_first()?;
    let n = n as usize;
    Some((rest.get(..n)?, rest.get(n..)?))
}

/// Appends one UDP frame `LEN(2) | payload`.
pub fn encode_datagram(payload: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
    let len = u16::try_from(payload.len()).map_err(|_| CodecError::DatagramTooLarge(payload.len()))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// One UDP frame at the front of `buf`: the payload and the bytes the frame took,
/// or `None` until all of it is there. Any LEN is valid, so there is no error.
pub fn decode_datagram(buf: &[u8]) -> Option<(&[u8], usize)> {
    let &[hi, lo] = buf.get(..2)? else { return None };
    let len = u16::from_be_bytes([hi, lo]) as usize;
    buf.get(2..2 + len).map(|p| (p, 2 + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn enc_req(r: &Request) -> Vec<u8> {
        let mut v = Vec::new();
        r.encode(&mut v).unwrap();
        v
    }

    fn target80() -> Addr {
        Addr::parse("192.168.1.1:80").unwrap()
    }

    #[test]
    fn connect_tcp_matches_worked_example_d() {
        let r = Request::connect(&target80(), Network::Tcp, None);
        assert_eq!(enc_req(&r), hex("01 01 000A 02 0007 01 C0A80101 0050"));
    }

    #[test]
    fn connect_tcp_with_auth_matches_worked_example_d() {
        let r = Request::connect(&target80(), Network::Tcp, Some(("u", "p")));
        assert_eq!(enc_req(&r), hex("01 01 0011 01 0004 01 75 01 70 02 0007 01 C0A80101 0050"));
    }

    #[test]
    fn connect_udp_matches_worked_example_e() {
        let r = Request::connect(&Addr::parse("192.168.1.1:53").unwrap(), Network::Udp, None);
        assert_eq!(enc_req(&r), hex("01 81 000F 04 0002 0001 02 0007 01 C0A80101 0035"));
        let mut frame = Vec::new();
        encode_datagram(&[0xAB; 30], &mut frame).unwrap();
        assert_eq!(&frame[..2], &hex("001E")[..]);
        assert_eq!(frame.len(), 32);
    }

    #[test]
    fn response_ok_is_four_bytes() {
        let mut v = Vec::new();
        Response::status(STATUS_OK).encode(&mut v).unwrap();
        assert_eq!(v, hex("01 00 0000"));
        assert_eq!(Response::bare(STATUS_UNAUTHORIZED), [1, 2, 0, 0]);
    }

    #[test]
    fn decodes_example_d_and_leaves_the_payload() {
        let mut wire = hex("01 01 0011 01 0004 01 75 01 70 02 0007 01 C0A80101 0050");
        let req_len = wire.len();
        wire.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let (r, used) = Request::decode(&wire).unwrap().unwrap();
        assert_eq!(used, req_len);
        assert_eq!(r.command(), CMD_CONNECT);
        assert_eq!(r.user_auth(), Some(("u", "p")));
        assert_eq!(r.addr(), Some(&target80()));
        assert_eq!(r.network_id(), None);
        assert_eq!(&wire[used..], b"GET / HTTP/1.1\r\n");
    }

    #[test]
    fn decodes_example_e() {
        let wire = hex("01 81 000F 04 0002 0001 02 0007 01 C0A80101 0035");
        let (r, used) = Request::decode(&wire).unwrap().unwrap();
        assert_eq!(used, wire.len());
        assert_eq!(r.cmd & FLAG_UDP, FLAG_UDP);
        assert_eq!(r.network_id(), Some(NETWORK_UDP));
        assert_eq!(r.addr().unwrap().to_string(), "192.168.1.1:53");
    }

    #[test]
    fn every_cut_needs_more() {
        for wire in [
            hex("01 01 0011 01 0004 01 75 01 70 02 0007 01 C0A80101 0050"),
            hex("01 81 000F 04 0002 0001 02 0007 01 C0A80101 0035"),
            hex("01 00 0000"),
        ] {
            for cut in 0..wire.len() {
                assert_eq!(Request::decode(&wire[..cut]), Ok(None), "cut at {cut}");
                assert_eq!(Response::decode(&wire[..cut]), Ok(None), "cut at {cut}");
            }
            assert!(Request::decode(&wire).unwrap().is_some());
        }
        let frame = hex("0003 616263 ff");
        for cut in 0..5 {
            assert_eq!(decode_datagram(&frame[..cut]), None);
        }
        assert_eq!(decode_datagram(&frame), Some((&b"abc"[..], 5)));
    }

    #[test]
    fn empty_domain_from_a_stable_gost_client() {
        // v3.2.6 sends `:8080` as ATYP 3 with a zero-length name.
        let wire = hex("01 02 000C 04 0002 0000 02 0004 03 00 1F90");
        let (r, _) = Request::decode(&wire).unwrap().unwrap();
        let a = r.addr().unwrap();
        assert_eq!(a.host, crate::codec::addr::Host::Domain(String::new()));
        assert_eq!(a.port, 8080);
        assert_eq!(r.command(), CMD_BIND);
    }

    #[test]
    fn bad_version_fails_on_the_first_byte() {
        assert_eq!(Request::decode(&[0x05]), Err(CodecError::BadVersion(5)));
        assert_eq!(Response::decode(b"HTTP/1.1 200"), Err(CodecError::BadVersion(b'H')));
        assert_eq!(message_len(&[0x01, 0x01]), Ok(None));
        assert_eq!(message_len(&[0x01, 0x01, 0xFF, 0xFF]), Ok(Some(MAX_MESSAGE_LEN)));
    }

    #[test]
    fn malformed_features_are_errors() {
        // Feature claims 9 bytes, 2 are left.
        assert!(matches!(
            Request::decode(&hex("01 01 0005 02 0009 01 02")),
            Err(CodecError::FeatureOverrun { kind: 2, claimed: 9, left: 2 })
        ));
        assert_eq!(Request::decode(&hex("01 01 0002 02 00")), Err(CodecError::TruncatedFeatureHeader));
        assert!(matches!(Request::decode(&hex("01 01 0006 02 0003 01 0000")), Err(CodecError::ShortFeature { .. })));
        assert_eq!(Request::decode(&hex("01 01 0007 02 0004 09 000050")), Err(CodecError::Addr(AddrError::BadType(9))));
        assert!(matches!(Request::decode(&hex("01 01 0004 01 0001 05")), Err(CodecError::ShortFeature { .. })));
        assert!(matches!(Request::decode(&hex("01 01 0004 04 0001 00")), Err(CodecError::ShortFeature { .. })));
    }

    #[test]
    fn unknown_and_tunnel_features_are_kept_as_they_came() {
        let wire = hex("01 01 0011 05 0002 0000 03 0004 DEADBEEF 04 0002 0000");
        let (r, _) = Request::decode(&wire).unwrap().unwrap();
        assert_eq!(
            r.features,
            vec![
                Feature::Other { kind: 5, data: vec![0, 0] },
                Feature::Tunnel(vec![0xDE, 0xAD, 0xBE, 0xEF]),
                Feature::Network(NETWORK_TCP)
            ]
        );
        assert_eq!(enc_req(&r), wire);
    }

    #[test]
    fn largest_flen_is_bounded_and_garbage_never_panics() {
        let mut wire = vec![1, 1, 0xFF, 0xFF];
        assert_eq!(Request::decode(&wire), Ok(None));
        wire.resize(MAX_MESSAGE_LEN - 1, 0xEE);
        assert_eq!(Request::decode(&wire), Ok(None));
        wire.push(0xEE);
        assert!(Request::decode(&wire).is_err());
        // Cheap deterministic fuzz: random bytes behind a valid version byte.
        let mut x: u32 = 0x1234_5678;
        for _ in 0..20_000 {
            let len = (x % 40) as usize;
            let mut buf = vec![1u8];
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                buf.push((x & 0xFF) as u8);
            }
            if let Some(l) = buf.get_mut(2) {
                *l = 0;
            }
            let _ = Request::decode(&buf);
            let _ = Response::decode(&buf);
            let _ = decode_datagram(&buf);
        }
    }

    #[test]
    fn oversized_fields_are_encode_errors() {
        let long = "x".repeat(256);
        let r = Request { cmd: 1, features: vec![Feature::UserAuth { user: long, pass: String::new() }] };
        assert_eq!(r.encode(&mut Vec::new()), Err(CodecError::AuthTooLong));
        let big = Request { cmd: 1, features: vec![Feature::Other { kind: 9, data: vec![0; 70_000] }] };
        assert_eq!(big.encode(&mut Vec::new()), Err(CodecError::FeatureTooLong(9)));
        let many = Request { cmd: 1, features: vec![Feature::Other { kind: 9, data: vec![0; 40_000] }; 2] };
        let mut out = vec![7];
        assert_eq!(many.encode(&mut out), Err(CodecError::FeaturesTooLong));
        assert_eq!(out, vec![7], "a failed encode leaves the buffer as it was");
        assert_eq!(encode_datagram(&vec![0; 65536], &mut Vec::new()), Err(CodecError::DatagramTooLarge(65536)));
    }

    #[test]
    fn debug_never_shows_the_password() {
        let r = Request::connect(&target80(), Network::Tcp, Some(("bob", "s3cret-pw")));
        let d = format!("{r:?}");
        assert!(d.contains("bob"));
        assert!(!d.contains("s3cret-pw"));
    }

    #[test]
    fn names_and_texts() {
        assert_eq!(status_text(STATUS_UNAUTHORIZED), "unauthorized");
        assert_eq!(status_text(0x42), "unknown status 0x42");
        assert_eq!(network_name(NETWORK_UNIX), "unix");
        assert_eq!(network_name(0x99), "tcp");
    }
}
