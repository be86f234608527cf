//! SOCKS5 (RFC 1928, RFC 1929 user/pass) with GOST's extensions: methods `80`/`82`
//! (TLS inside the connection) and commands `F2` (MUX-BIND) / `F3` (UDP-TUN)
//! (gosocks5 `socks5.go`, go-gost/x `internal/util/socks/socks.go`).
//!
//! Every decoder is incremental: it looks at the bytes received so far and either
//! returns the message with the bytes it took, or how many more bytes it needs at
//! least. That lower bound never reaches past the message, so a reader that reads
//! exactly that many bytes never swallows data the peer sent after the handshake.

use super::addr::{Addr, AddrError, Host, ATYP_DOMAIN, ATYP_IPV4, ATYP_IPV6};
use std::io;
use std::net::{IpAddr, Ipv4Addr};

pub const VERSION: u8 = 5;
/// Sub-negotiation version of RFC 1929.
pub const USER_PASS_VERSION: u8 = 1;

pub mod method {
    pub const NO_AUTH: u8 = 0x00;
    pub const USER_PASS: u8 = 0x02;
    /// GOST: the rest of the connection runs inside TLS, no auth.
    pub const TLS: u8 = 0x80;
    /// GOST: TLS first, then RFC 1929 inside it.
    pub const TLS_AUTH: u8 = 0x82;
    /// GOST: defined, never used by current GOST.
    pub const MUX: u8 = 0x88;
    pub const NONE_ACCEPTABLE: u8 = 0xFF;
}

pub mod cmd {
    pub const CONNECT: u8 = 0x01;
    pub const BIND: u8 = 0x02;
    pub const UDP_ASSOCIATE: u8 = 0x03;
    /// Tor-style, GOST master only.
    pub const RESOLVE: u8 = 0xF0;
    pub const RESOLVE_PTR: u8 = 0xF1;
    /// GOST: bind a TCP port, then run smux over this connection.
    pub const MUX_BIND: u8 = 0xF2;
    /// GOST: UDP datagrams framed over this connection (see `codec::udptun`).
    pub const UDP_TUN: u8 = 0xF3;
}

pub mod rep {
    pub const SUCCEEDED: u8 = 0x00;
    pub const GENERAL_FAILURE: u8 = 0x01;
    pub const NOT_ALLOWED: u8 = 0x02;
    pub const NET_UNREACHABLE: u8 = 0x03;
    pub const HOST_UNREACHABLE: u8 = 0x04;
    pub const CONN_REFUSED: u8 = 0x05;
    pub const TTL_EXPIRED: u8 = 0x06;
    pub const CMD_UNSUPPORTED: u8 = 0x07;
    pub const ATYP_UNSUPPORTED: u8 = 0x08;
}

/// Largest handshake messages, for bounding reads: `05 N` + 255 methods; RFC 1929
/// `01 ULEN U PLEN P`; request/reply with a 255-byte name.
pub const MAX_METHODS_LEN: usize = 2 + 255;
pub const MAX_USER_PASS_LEN: usize = 3 + 255 + 255;
pub const MAX_REQUEST_LEN: usize = 3 + 1 + 1 + 255 + 2;

pub fn cmd_name(c: u8) -> String {
    match c {
        cmd::CONNECT => "CONNECT".into(),
        cmd::BIND => "BIND".into(),
        cmd::UDP_ASSOCIATE => "UDP ASSOCIATE".into(),
        cmd::RESOLVE => "RESOLVE".into(),
        cmd::RESOLVE_PTR => "RESOLVE_PTR".into(),
        cmd::MUX_BIND => "MUX-BIND".into(),
        cmd::UDP_TUN => "UDP-TUN".into(),
        c => format!("command 0x{c:02x}"),
    }
}

pub fn rep_text(r: u8) -> &'static str {
    match r {
        rep::SUCCEEDED => "succeeded",
        rep::GENERAL_FAILURE => "general failure",
        rep::NOT_ALLOWED => "not allowed by ruleset",
        rep::NET_UNREACHABLE => "network unreachable",
        rep::HOST_UNREACHABLE => "host unreachable",
        rep::CONN_REFUSED => "connection refused",
        rep::TTL_EXPIRED => "TTL expired",
        rep::CMD_UNSUPPORTED => "command not supported",
        rep::ATYP_UNSUPPORTED => "address type not supported",
        _ => "unknown reply code",
    }
}

/// One SOCKS5 error type for the codec, the client and the server.
#[derive(Debug, thiserror::Error)]
pub enum Socks5Error {
    #[error("socks5: {0}")]
    Io(#[from] io::Error),
    #[error("socks5: connection closed by the peer during {0}")]
    Closed(&'static str),
    #[error("socks5: peer sent version {0} instead of 5 (is it a SOCKS5 proxy?)")]
    BadVersion(u8),
    #[error("socks5: peer sent username/password sub-version {0} instead of 1")]
    BadAuthVersion(u8),
    #[error("socks5: bad address: {0}")]
    Addr(#[from] AddrError),
    #[error("socks5: {what} is {len} bytes long; SOCKS5 allows at most 255")]
    TooLong { what: &'static str, len: usize },
    #[error("socks5: {0} is longer than any valid message")]
    Oversized(&'static str),
    #[error("socks5: server requires username/password")]
    ServerRequiresAuth,
    #[error("socks5: server accepted none of the offered authentication methods")]
    NoMethodAccepted,
    #[error("socks5: server chose method 0x{0:02x}, which was not offered{hint}", hint = method_hint(.0))]
    UnexpectedMethod(u8),
    #[error("socks5: TLS handshake after method 0x{method:02x} failed: {reason}")]
    TlsHandshake { method: u8, reason: String },
    #[error("socks5: authentication failed (server rejected user {0:?})")]
    AuthFailed(String),
    #[error("socks5: client offered no acceptable authentication method (offered {offered}; this service needs {needed})")]
    NoAcceptableMethod { offered: String, needed: &'static str },
    #[error("socks5: authentication failed for user {0:?}")]
    ClientAuthFailed(String),
    #[error("socks5: server refused {cmd} {target}: {text} (reply 0x{code:02x})")]
    Refused { cmd: String, target: String, code: u8, text: &'static str },
    #[error("socks5: {cmd} is disabled on this service (enable it with {option}=true)")]
    NotAllowed { cmd: String, option: &'static str },
    #[error("socks5: client asked for unsupported {0}")]
    UnsupportedCommand(String),
    #[error("socks5: cannot listen on {addr} for {cmd}: {source} (answered 0x01 general failure)")]
    ListenFailed { cmd: String, addr: String, source: io::Error },
    #[error("socks5: the client closed the control connection while {0}")]
    ControlClosed(&'static str),
    #[error("socks5: {cmd} answer for a new connection is not a success (reply 0x{code:02x} {text})")]
    PeerFailed { cmd: String, code: u8, text: &'static str },
}

impl From<Socks5Error> for io::Error {
    fn from(e: Socks5Error) -> io::Error {
        use io::ErrorKind as K;
        let kind = match &e {
            Socks5Error::Io(_) => K::Other,
            Socks5Error::Closed(_) => K::UnexpectedEof,
            Socks5Error::AuthFailed(_)
            | Socks5Error::ClientAuthFailed(_)
            | Socks5Error::ServerRequiresAuth
            | Socks5Error::NoMethodAccepted
            | Socks5Error::NoAcceptableMethod { .. }
            | Socks5Error::NotAllowed { .. } => K::PermissionDenied,
            Socks5Error::Refused { .. } => K::ConnectionRefused,
            Socks5Error::UnsupportedCommand(_) => K::Unsupported,
            Socks5Error::ListenFailed { source, .. } => source.kind(),
            Socks5Error::ControlClosed(_) => K::UnexpectedEof,
            _ => K::InvalidData,
        };
        match e {
            Socks5Error::Io(inner) => inner,
            e => io::Error::new(kind, e),
        }
    }
}

fn method_hint(m: &u8) -> &'static str {
    match *m {
        method::TLS | method::TLS_AUTH => " (GOST's TLS-inside-SOCKS5 method; this node has notls=true)",
        _ => "",
    }
}

/// The methods a GOST client offers, in its order (go-gost/x
/// `connector/socks/v5/connector.go` `Init`): `00`, `02` with credentials, `80`
/// unless `notls`, `82` with credentials and TLS.
pub fn client_methods(auth: bool, tls: bool) -> Vec<u8> {
    let mut m = vec![method::NO_AUTH];
    if auth {
        m.push(method::USER_PASS);
    }
    if tls {
        m.push(method::TLS);
        if auth {
            m.push(method::TLS_AUTH);
        }
    }
    m
}

/// Result of an incremental decoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<T> {
    /// The message and the number of bytes it took.
    Done(T, usize),
    /// At least this many more bytes are needed (never more than the rest of the
    /// message, so reading exactly this many cannot over-read).
    Need(usize),
}

/// How many more bytes an address at the start of `buf` needs at least (0 when
/// complete or when its type byte is already invalid, so `Addr::decode` reports it).
pub fn addr_need(buf: &[u8]) -> usize {
    let total = match buf.first() {
        None => return 1,
        Some(&ATYP_IPV4) => 1 + 4 + 2,
        Some(&ATYP_IPV6) => 1 + 16 + 2,
        Some(&ATYP_DOMAIN) => match buf.get(1) {
            None => 2,
            Some(&n) => 2 + n as usize + 2,
        },
        Some(_) => return 0,
    };
    total.saturating_sub(buf.len())
}

/// Address at the start of `buf` as a `Decoded`.
pub fn decode_addr(buf: &[u8]) -> Result<Decoded<Addr>, AddrError> {
    match Addr::decode(buf)? {
        Some((a, n)) => Ok(Decoded::Done(a, n)),
        None => Ok(Decoded::Need(addr_need(buf).max(1))),
    }
}

fn check_version(v: u8) -> Result<(), Socks5Error> {
    if v == VERSION {
        Ok(())
    } else {
        Err(Socks5Error::BadVersion(v))
    }
}

/// `05 N METHODS…`
pub fn encode_methods(methods: &[u8], out: &mut Vec<u8>) {
    let m = &methods[..methods.len().min(255)];
    out.push(VERSION);
    out.push(m.len() as u8);
    out.extend_from_slice(m);
}

pub fn decode_methods(buf: &[u8]) -> Result<Decoded<Vec<u8>>, Socks5Error> {
    let Some(&v) = buf.first() else { return Ok(Decoded::Need(2)) };
    check_version(v)?;
    let Some(&n) = buf.get(1) else { return Ok(Decoded::Need(1)) };
    let total = 2 + n as usize;
    match buf.get(2..total) {
        Some(m) => Ok(Decoded::Done(m.to_vec(), total)),
        None => Ok(Decoded::Need(total - buf.len())),
    }
}

/// `05 METHOD`
pub fn encode_method_choice(method: u8, out: &mut Vec<u8>) {
    out.extend_from_slice(&[VERSION, method]);
}

pub fn decode_method_choice(buf: &[u8]) -> Result<Decoded<u8>, Socks5Error> {
    match buf {
        [] => Ok(Decoded::Need(2)),
        [v, rest @ ..] => {
            check_version(*v)?;
            match rest.first() {
                Some(&m) => Ok(Decoded::Done(m, 2)),
                None => Ok(Decoded::Need(1)),
            }
        }
    }
}

/// RFC 1929 credentials. `Debug` leaves the password out.
#[derive(Clone, PartialEq, Eq)]
pub struct UserPass {
    pub user: String,
    pub pass: String,
}

impl std::fmt::Debug for UserPass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserPass").field("user", &self.user).finish_non_exhaustive()
    }
}

/// `01 ULEN USER PLEN PASS`
pub fn encode_user_pass(user: &str, pass: &str, out: &mut Vec<u8>) -> Result<(), Socks5Error> {
    if user.len() > 255 {
        return Err(Socks5Error::TooLong { what: "username", len: user.len() });
    }
    if pass.len() > 255 {
        return Err(Socks5Error::TooLong { what: "password", len: pass.len() });
    }
    out.push(USER_PASS_VERSION);
    out.push(user.len() as u8);
    out.extend_from_slice(user.as_bytes());
    out.push(pass.len() as u8);
    out.extend_from_slice(pass.as_bytes());
    Ok(())
}

pub fn decode_user_pass(buf: &[u8]) -> Result<Decoded<UserPass>, Socks5Error> {
    let Some(&v) = buf.first() else { return Ok(Decoded::Need(2)) };
    if v != USER_PASS_VERSION {
        return Err(Socks5Error::BadAuthVersion(v));
    }
    let Some(&ulen) = buf.get(1) else { return Ok(Decoded::Need(1)) };
    let plen_at = 2 + ulen as usize;
    let Some(&plen) = buf.get(plen_at) else { return Ok(Decoded::Need(plen_at + 1 - buf.len())) };
    let total = plen_at + 1 + plen as usize;
    if buf.len() < total {
        return Ok(Decoded::Need(total - buf.len()));
    }
    // Non-UTF-8 bytes cannot match any configured (UTF-8) credential anyway.
    let user = String::from_utf8_lossy(buf.get(2..plen_at).unwrap_or_default()).into_owned();
    let pass = String::from_utf8_lossy(buf.get(plen_at + 1..total).unwrap_or_default()).into_owned();
    Ok(Decoded::Done(UserPass { user, pass }, total))
}

/// `01 STATUS` (00 = success).
pub fn encode_auth_status(status: u8, out: &mut Vec<u8>) {
    out.extend_from_slice(&[USER_PASS_VERSION, status]);
}

pub fn decode_auth_status(buf: &[u8]) -> Result<Decoded<u8>, Socks5Error> {
    match buf {
        [] => Ok(Decoded::Need(2)),
        [v, rest @ ..] => {
            if *v != USER_PASS_VERSION {
                return Err(Socks5Error::BadAuthVersion(*v));
            }
            match rest.first() {
                Some(&s) => Ok(Decoded::Done(s, 2)),
                None => Ok(Decoded::Need(1)),
            }
        }
    }
}

/// A request (`05 CMD 00 ADDR`) or a reply (`05 REP 00 ADDR`): same layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// CMD in a request, REP in a reply.
    pub code: u8,
    pub addr: Addr,
}

pub type Request = Message;
pub type Reply = Message;

/// The address gosocks5 writes when a message carries none: `01 00000000 0000`.
pub fn zero_addr() -> Addr {
    Addr::ip(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
}

impl Message {
    pub fn new(code: u8, addr: Addr) -> Message {
        Message { code, addr }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[VERSION, self.code, 0]);
        self.addr.encode(out);
    }

    /// The reserved byte is not checked: gosocks5 ignores it too.
    pub fn decode(buf: &[u8]) -> Result<Decoded<Message>, Socks5Error> {
        let Some(&v) = buf.first() else { return Ok(Decoded::Need(4)) };
        check_version(v)?;
        if buf.len() < 3 {
            return Ok(Decoded::Need(3 - buf.len() + 1));
        }
        let rest = buf.get(3..).unwrap_or_default();
        match decode_addr(rest)? {
            Decoded::Done(addr, n) => Ok(Decoded::Done(Message { code: buf[1], addr }, 3 + n)),
            Decoded::Need(n) => Ok(Decoded::Need(n)),
        }
    }
}

/// True when the address is a name (the caller resolves it).
pub fn is_domain(a: &Addr) -> bool {
    matches!(a.host, Host::Domain(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn enc(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut v = Vec::new();
        f(&mut v);
        v
    }

    #[test]
    fn gost_client_offers_in_gost_order() {
        // §5.8 A: without notls a GOST client offers `05 02 00 80`; with auth
        // `05 04 00 02 80 82` (§5.1); notls leaves the plain methods.
        let offer = |auth, tls| enc(|o| encode_methods(&client_methods(auth, tls), o));
        assert_eq!(offer(false, true), hex("05 02 00 80"));
        assert_eq!(offer(true, true), hex("05 04 00 02 80 82"));
        assert_eq!(offer(false, false), hex("05 01 00"));
        assert_eq!(offer(true, false), hex("05 02 00 02"));
    }

    #[test]
    fn unexpected_tls_method_says_why() {
        assert_eq!(
            Socks5Error::UnexpectedMethod(0x80).to_string(),
            "socks5: server chose method 0x80, which was not offered (GOST's TLS-inside-SOCKS5 method; this node has notls=true)"
        );
        assert_eq!(Socks5Error::UnexpectedMethod(0x03).to_string(), "socks5: server chose method 0x03, which was not offered");
    }

    /// Every proper prefix asks for more, and the amount asked never reaches past
    /// the message.
    fn assert_incremental<T: std::fmt::Debug + PartialEq>(
        bytes: &[u8],
        want: &T,
        dec: impl Fn(&[u8]) -> Result<Decoded<T>, Socks5Error>,
    ) {
        for cut in 0..bytes.len() {
            match dec(&bytes[..cut]).unwrap() {
                Decoded::Need(n) => assert!(n >= 1 && cut + n <= bytes.len(), "cut {cut}: need {n} of {}", bytes.len()),
                d => panic!("cut {cut}: decoded {d:?} from a prefix"),
            }
        }
        // Trailing bytes (early data) are left alone.
        let mut more = bytes.to_vec();
        more.extend_from_slice(b"xyz");
        assert_eq!(dec(&more).unwrap(), Decoded::Done(want_clone(want, &dec, bytes), bytes.len()));
    }

    fn want_clone<T: std::fmt::Debug + PartialEq>(
        want: &T,
        dec: &impl Fn(&[u8]) -> Result<Decoded<T>, Socks5Error>,
        bytes: &[u8],
    ) -> T {
        match dec(bytes).unwrap() {
            Decoded::Done(v, n) => {
                assert_eq!(&v, want);
                assert_eq!(n, bytes.len());
                v
            }
            d => panic!("not decoded: {d:?}"),
        }
    }

    #[test]
    fn example_a_connect_no_auth() {
        // §5.8 A: C→S 05 01 00 | 05 01 00 01 C0A80101 0050; S→C 05 00 | 05 00 00 01 <bnd>
        let offer = enc(|o| encode_methods(&[method::NO_AUTH], o));
        assert_eq!(offer, hex("05 01 00"));
        assert_incremental(&offer, &vec![0u8], decode_methods);

        let choice = enc(|o| encode_method_choice(method::NO_AUTH, o));
        assert_eq!(choice, hex("05 00"));
        assert_incremental(&choice, &0u8, decode_method_choice);

        let req = Message::new(cmd::CONNECT, Addr::parse("192.168.1.1:80").unwrap());
        let b = enc(|o| req.encode(o));
        assert_eq!(b, hex("05 01 00 01 C0A80101 0050"));
        assert_incremental(&b, &req, Message::decode);

        let reply = Message::new(rep::SUCCEEDED, Addr::parse("10.0.0.2:40000").unwrap());
        let b = enc(|o| reply.encode(o));
        assert_eq!(b, hex("05 00 00 01 0A000002 9C40"));
        assert_incremental(&b, &reply, Message::decode);
    }

    #[test]
    fn gost_default_offers() {
        // What a GOST client sends by default (we never offer 80/82 ourselves).
        assert_eq!(enc(|o| encode_methods(&[0x00, 0x80], o)), hex("05 02 00 80"));
        assert_eq!(enc(|o| encode_methods(&[0x00, 0x02, 0x80, 0x82], o)), hex("05 04 00 02 80 82"));
        assert_eq!(decode_methods(&hex("05 04 00 02 80 82")).unwrap(), Decoded::Done(vec![0, 2, 0x80, 0x82], 6));
    }

    #[test]
    fn example_b_udp_tun_association() {
        // §5.8 B: 05 F3 00 01 00000000 0000 | reply 05 00 00 01 <udp bnd ip> <port>
        let req = Message::new(cmd::UDP_TUN, zero_addr());
        let b = enc(|o| req.encode(o));
        assert_eq!(b, hex("05 F3 00 01 00000000 0000"));
        assert_incremental(&b, &req, Message::decode);
        let reply = Message::new(rep::SUCCEEDED, Addr::parse("127.0.0.1:5353").unwrap());
        assert_eq!(enc(|o| reply.encode(o)), hex("05 00 00 01 7F000001 14E9"));
    }

    #[test]
    fn example_c_mux_bind_request() {
        let req = Message::new(cmd::MUX_BIND, Addr::parse(":8080").unwrap());
        assert_eq!(enc(|o| req.encode(o)), hex("05 F2 00 01 00000000 1F90"));
        // The per-stream reply with the peer address.
        let r = Message::new(rep::SUCCEEDED, Addr::parse("203.0.113.9:40000").unwrap());
        assert_eq!(enc(|o| r.encode(o)), hex("05 00 00 01 CB007109 9C40"));
    }

    #[test]
    fn reply_without_address_is_zero_ipv4() {
        let r = Message::new(rep::NOT_ALLOWED, zero_addr());
        assert_eq!(enc(|o| r.encode(o)), hex("05 02 00 01 00000000 0000"));
    }

    #[test]
    fn domain_and_v6_requests() {
        for s in ["example.com:443", "[2001:db8::1]:53", "a:0"] {
            let req = Message::new(cmd::CONNECT, Addr::parse(s).unwrap());
            let b = enc(|o| req.encode(o));
            assert_incremental(&b, &req, Message::decode);
        }
    }

    #[test]
    fn user_pass_round_trip_and_status() {
        let b = enc(|o| encode_user_pass("u", "p", o).unwrap());
        assert_eq!(b, hex("01 01 75 01 70"));
        let up = UserPass { user: "u".into(), pass: "p".into() };
        assert_incremental(&b, &up, decode_user_pass);
        let empty = enc(|o| encode_user_pass("", "", o).unwrap());
        assert_eq!(empty, hex("01 00 00"));
        assert_incremental(&empty, &UserPass { user: String::new(), pass: String::new() }, decode_user_pass);
        assert_eq!(enc(|o| encode_auth_status(1, o)), hex("01 01"));
        assert_incremental(&hex("01 00"), &0u8, decode_auth_status);
        let secret = UserPass { user: "bob".into(), pass: "hunter2".into() };
        assert!(!format!("{secret:?}").contains("hunter2"));
        let long = "x".repeat(256);
        assert!(matches!(encode_user_pass(&long, "p", &mut Vec::new()), Err(Socks5Error::TooLong { what: "username", .. })));
        assert!(matches!(encode_user_pass("u", &long, &mut Vec::new()), Err(Socks5Error::TooLong { what: "password", .. })));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(matches!(decode_methods(b"GET / HTTP/1.1"), Err(Socks5Error::BadVersion(b'G'))));
        assert!(matches!(decode_method_choice(&[4, 0]), Err(Socks5Error::BadVersion(4))));
        assert!(matches!(decode_user_pass(&[5, 1]), Err(Socks5Error::BadAuthVersion(5))));
        assert!(matches!(decode_auth_status(&[5, 0]), Err(Socks5Error::BadAuthVersion(5))));
        assert!(matches!(Message::decode(&hex("05 01 00 07 00")), Err(Socks5Error::Addr(AddrError::BadType(7)))));
        assert!(matches!(Message::decode(&hex("04 01 00 01")), Err(Socks5Error::BadVersion(4))));
        assert!(matches!(
            Message::decode(&hex("05 01 00 03 02 FF FE 0050")),
            Err(Socks5Error::Addr(AddrError::NotUtf8))
        ));
    }

    #[test]
    fn no_panic_on_short_prefixes() {
        // Every 1–3 byte input: an error or "need more", never a panic or a
        // "need 0" that would make a reader spin.
        // All 1- and 2-byte inputs; 3-byte ones for every leading byte a decoder
        // accepts (others fail on the first byte).
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        for a in 0..=255u8 {
            inputs.push(vec![a]);
            for b in 0..=255u8 {
                inputs.push(vec![a, b]);
                if a == VERSION || a == USER_PASS_VERSION {
                    for c in 0..=255u8 {
                        inputs.push(vec![a, b, c]);
                    }
                }
            }
        }
        for i in &inputs {
            let needs = [
                decode_methods(i).map(|d| matches!(d, Decoded::Need(0))),
                decode_method_choice(i).map(|d| matches!(d, Decoded::Need(0))),
                decode_user_pass(i).map(|d| matches!(d, Decoded::Need(0))),
                decode_auth_status(i).map(|d| matches!(d, Decoded::Need(0))),
                Message::decode(i).map(|d| matches!(d, Decoded::Need(0))),
            ];
            for n in needs.into_iter().flatten() {
                assert!(!n, "need 0 for {i:?}");
            }
        }
    }

    #[test]
    fn errors_convert_to_io_and_name_the_problem() {
        let e: io::Error = Socks5Error::AuthFailed("bob".into()).into();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(e.to_string(), "socks5: authentication failed (server rejected user \"bob\")");
        let e: io::Error = Socks5Error::Io(io::Error::new(io::ErrorKind::TimedOut, "t")).into();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }
}
