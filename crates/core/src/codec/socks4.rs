//! SOCKS4 and SOCKS4a (openssh.com socks4.protocol / socks4a.protocol) as
//! go-gost/gosocks4 speaks it:
//! ```text
//! request  04 CMD PORT(2) IP(4) USERID 00 [HOST 00]   (4a: IP = 0.0.0.x, x ≠ 0)
//! reply    00 CODE PORT(2) IP(4)
//! ```

use super::addr::{Addr, Host};
use super::socks5::Decoded;
use std::io;
use std::net::{IpAddr, Ipv4Addr};

pub const VERSION: u8 = 4;
pub const CMD_CONNECT: u8 = 1;
pub const CMD_BIND: u8 = 2;

pub const GRANTED: u8 = 90;
pub const FAILED: u8 = 91;
/// Rejected because the identd check failed (unused by GOST).
pub const REJECTED: u8 = 92;
pub const REJECTED_USERID: u8 = 93;

/// gosocks4's limits for USERID and HOST.
pub const MAX_FIELD: usize = 255;
pub const MAX_REQUEST_LEN: usize = 8 + MAX_FIELD + 1 + MAX_FIELD + 1;
pub const REPLY_LEN: usize = 8;

/// The IP gosocks4 writes to mark a 4a request.
pub const SOCKS4A_IP: Ipv4Addr = Ipv4Addr::new(0, 0, 0, 1);

#[derive(Debug, thiserror::Error)]
pub enum Socks4Error {
    #[error("socks4: {0}")]
    Io(#[from] io::Error),
    #[error("socks4: connection closed by the peer during {0}")]
    Closed(&'static str),
    #[error("socks4: peer sent version {0} instead of 4 (is it a SOCKS4 proxy?)")]
    BadVersion(u8),
    #[error("socks4: reply starts with {0}, not 0 (is it a SOCKS4 proxy?)")]
    BadReplyVersion(u8),
    #[error("socks4: unknown command {0}")]
    BadCommand(u8),
    #[error("socks4: {0} is longer than 255 bytes")]
    FieldTooLong(&'static str),
    #[error("socks4: {0} contains a NUL byte")]
    Nul(&'static str),
    #[error("socks4: SOCKS4 carries only IPv4 addresses, not {0}")]
    NotIpv4(String),
    #[error("socks4: bad target {0:?}")]
    BadTarget(String),
    #[error("socks4: cannot resolve {0} to an IPv4 address")]
    Resolve(String),
    #[error("socks4: server refused CONNECT to {target}: {text} (reply {code})")]
    Refused { target: String, code: u8, text: &'static str },
    #[error("socks4: user id {0:?} is not allowed")]
    UserRejected(String),
    #[error("socks4: BIND is not supported")]
    BindUnsupported,
}

impl From<Socks4Error> for io::Error {
    fn from(e: Socks4Error) -> io::Error {
        let kind = match &e {
            Socks4Error::Closed(_) => io::ErrorKind::UnexpectedEof,
            Socks4Error::Refused { .. } => io::ErrorKind::ConnectionRefused,
            Socks4Error::UserRejected(_) => io::ErrorKind::PermissionDenied,
            Socks4Error::BindUnsupported => io::ErrorKind::Unsupported,
            _ => io::ErrorKind::InvalidData,
        };
        match e {
            Socks4Error::Io(inner) => inner,
            e => io::Error::new(kind, e),
        }
    }
}

pub fn code_text(code: u8) -> &'static str {
    match code {
        GRANTED => "granted",
        FAILED => "rejected or failed",
        REJECTED => "rejected: no identd on the client",
        REJECTED_USERID => "rejected: user id not accepted",
        _ => "unknown reply code",
    }
}

/// Where a request points: an IPv4 address (SOCKS4) or a name (4a).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dst {
    Ip(Ipv4Addr),
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub cmd: u8,
    pub port: u16,
    pub dst: Dst,
    pub userid: String,
}

impl Request {
    /// The target as a SOCKS address; a 4a name that is an IP literal becomes an IP.
    pub fn addr(&self) -> Addr {
        let host = match &self.dst {
            Dst::Ip(ip) => Host::Ip(IpAddr::V4(*ip)),
            Dst::Name(n) => match n.parse::<IpAddr>() {
                Ok(ip) => Host::Ip(ip),
                Err(_) => Host::Domain(n.clone()),
            },
        };
        Addr { host, port: self.port }
    }

    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), Socks4Error> {
        check_field("user id", &self.userid)?;
        out.push(VERSION);
        out.push(self.cmd);
        out.extend_from_slice(&self.port.to_be_bytes());
        match &self.dst {
            Dst::Ip(ip) => out.extend_from_slice(&ip.octets()),
            Dst::Name(_) => out.extend_from_slice(&SOCKS4A_IP.octets()),
        }
        out.extend_from_slice(self.userid.as_bytes());
        out.push(0);
        if let Dst::Name(n) = &self.dst {
            check_field("host name", n)?;
            out.extend_from_slice(n.as_bytes());
            out.push(0);
        }
        Ok(())
    }

    pub fn decode(buf: &[u8]) -> Result<Decoded<Request>, Socks4Error> {
        let Some(&v) = buf.first() else { return Ok(Decoded::Need(8)) };
        if v != VERSION {
            return Err(Socks4Error::BadVersion(v));
        }
        let Some(&cmd) = buf.get(1) else { return Ok(Decoded::Need(7)) };
        if cmd != CMD_CONNECT && cmd != CMD_BIND {
            return Err(Socks4Error::BadCommand(cmd));
        }
        let Some(hdr) = buf.get(..8) else { return Ok(Decoded::Need(8 - buf.len())) };
        let port = u16::from_be_bytes([hdr[2], hdr[3]]);
        let ip = Ipv4Addr::new(hdr[4], hdr[5], hdr[6], hdr[7]);
        let (userid, after_user) = match cstring(buf, 8, "user id")? {
            Some(x) => x,
            None => return Ok(Decoded::Need(1)),
        };
        // gosocks4's test for 4a: first three octets zero, last non-zero.
        let is_4a = hdr[4] | hdr[5] | hdr[6] == 0 && hdr[7] != 0;
        if !is_4a {
            return Ok(Decoded::Done(Request { cmd, port, dst: Dst::Ip(ip), userid }, after_user));
        }
        match cstring(buf, after_user, "host name")? {
            Some((name, end)) => Ok(Decoded::Done(Request { cmd, port, dst: Dst::Name(name), userid }, end)),
            None => Ok(Decoded::Need(1)),
        }
    }
}

fn check_field(what: &'static str, s: &str) -> Result<(), Socks4Error> {
    if s.len() > MAX_FIELD {
        return Err(Socks4Error::FieldTooLong(what));
    }
    if s.as_bytes().contains(&0) {
        return Err(Socks4Error::Nul(what));
    }
    Ok(())
}

/// A NUL-terminated field starting at `at`: its text and the offset after the NUL,
/// `None` while the NUL has not arrived, an error once it is past 255 bytes.
fn cstring(buf: &[u8], at: usize, what: &'static str) -> Result<Option<(String, usize)>, Socks4Error> {
    let rest = buf.get(at..).unwrap_or_default();
    match rest.iter().position(|&b| b == 0) {
        Some(n) if n <= MAX_FIELD => Ok(Some((String::from_utf8_lossy(&rest[..n]).into_owned(), at + n + 1))),
        Some(_) => Err(Socks4Error::FieldTooLong(what)),
        None if rest.len() > MAX_FIELD => Err(Socks4Error::FieldTooLong(what)),
        None => Ok(None),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u8,
    pub port: u16,
    pub ip: Ipv4Addr,
}

impl Reply {
    /// A reply without address, as gosocks4 writes it: port and IP zero.
    pub fn new(code: u8) -> Reply {
        Reply { code, port: 0, ip: Ipv4Addr::UNSPECIFIED }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(0);
        out.push(self.code);
        out.extend_from_slice(&self.port.to_be_bytes());
        out.extend_from_slice(&self.ip.octets());
    }

    pub fn decode(buf: &[u8]) -> Result<Decoded<Reply>, Socks4Error> {
        let Some(&v) = buf.first() else { return Ok(Decoded::Need(REPLY_LEN)) };
        if v != 0 {
            return Err(Socks4Error::BadReplyVersion(v));
        }
        let Some(b) = buf.get(..REPLY_LEN) else { return Ok(Decoded::Need(REPLY_LEN - buf.len())) };
        Ok(Decoded::Done(
            Reply { code: b[1], port: u16::from_be_bytes([b[2], b[3]]), ip: Ipv4Addr::new(b[4], b[5], b[6], b[7]) },
            REPLY_LEN,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(r: &Request) -> Vec<u8> {
        let mut v = Vec::new();
        r.encode(&mut v).unwrap();
        v
    }

    fn check_prefixes(b: &[u8], want: &Request) {
        for cut in 0..b.len() {
            match Request::decode(&b[..cut]).unwrap() {
                Decoded::Need(n) => assert!(n >= 1 && cut + n <= b.len(), "cut {cut} need {n}"),
                d => panic!("cut {cut}: {d:?}"),
            }
        }
        let mut more = b.to_vec();
        more.extend_from_slice(b"data");
        assert_eq!(Request::decode(&more).unwrap(), Decoded::Done(want.clone(), b.len()));
    }

    #[test]
    fn socks4_and_4a_requests() {
        let r = Request { cmd: CMD_CONNECT, port: 80, dst: Dst::Ip(Ipv4Addr::new(192, 168, 1, 1)), userid: "bob".into() };
        let b = enc(&r);
        assert_eq!(b, [4, 1, 0, 80, 192, 168, 1, 1, b'b', b'o', b'b', 0]);
        check_prefixes(&b, &r);
        assert_eq!(r.addr().to_string(), "192.168.1.1:80");

        // GOST's socks4a connector sends even IP literals as a name.
        let r = Request { cmd: CMD_CONNECT, port: 443, dst: Dst::Name("example.com".into()), userid: String::new() };
        let b = enc(&r);
        let mut want = vec![4, 1, 1, 187, 0, 0, 0, 1, 0];
        want.extend_from_slice(b"example.com\0");
        assert_eq!(b, want);
        check_prefixes(&b, &r);
        let lit = Request { dst: Dst::Name("10.1.2.3".into()), ..r.clone() };
        assert_eq!(lit.addr(), Addr::parse("10.1.2.3:443").unwrap());
    }

    #[test]
    fn replies() {
        let mut v = Vec::new();
        Reply::new(GRANTED).encode(&mut v);
        assert_eq!(v, [0, 90, 0, 0, 0, 0, 0, 0]);
        for cut in 0..8 {
            assert!(matches!(Reply::decode(&v[..cut]).unwrap(), Decoded::Need(n) if cut + n <= 8 && n >= 1));
        }
        assert_eq!(Reply::decode(&v).unwrap(), Decoded::Done(Reply::new(GRANTED), 8));
        assert!(matches!(Reply::decode(&[5, 0]), Err(Socks4Error::BadReplyVersion(5))));
    }

    #[test]
    fn garbage_and_long_fields() {
        assert!(matches!(Request::decode(b"\x05\x01"), Err(Socks4Error::BadVersion(5))));
        assert!(matches!(Request::decode(b"\x04\x09"), Err(Socks4Error::BadCommand(9))));
        let mut long = vec![4, 1, 0, 80, 1, 2, 3, 4];
        long.extend(std::iter::repeat_n(b'a', 256));
        assert!(matches!(Request::decode(&long), Err(Socks4Error::FieldTooLong("user id"))));
        let mut long_host = vec![4, 1, 0, 80, 0, 0, 0, 9, 0];
        long_host.extend(std::iter::repeat_n(b'h', 300));
        assert!(matches!(Request::decode(&long_host), Err(Socks4Error::FieldTooLong("host name"))));
        let bad = Request { cmd: 1, port: 1, dst: Dst::Ip(Ipv4Addr::LOCALHOST), userid: "a\0b".into() };
        assert!(matches!(bad.encode(&mut Vec::new()), Err(Socks4Error::Nul("user id"))));
        for a in 0..=255u8 {
            for b in [0u8, 1, 2, 90] {
                for i in [&[a][..], &[a, b], &[a, b, 0]] {
                    if let Ok(Decoded::Need(n)) = Request::decode(i) {
                        assert!(n >= 1);
                    }
                    if let Ok(Decoded::Need(n)) = Reply::decode(i) {
                        assert!(n >= 1);
                    }
                }
            }
        }
    }
}
