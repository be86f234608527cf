//! The SOCKS address (`ATYP | ADDR | PORT`) that SOCKS5, GOST's UDP-over-stream
//! frames and the relay protocol's Addr feature all carry (gosocks5 `Addr`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

pub const ATYP_IPV4: u8 = 0x01;
pub const ATYP_DOMAIN: u8 = 0x03;
pub const ATYP_IPV6: u8 = 0x04;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Ip(IpAddr),
    Domain(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Addr {
    pub host: Host,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    #[error("address {0:?} is not host:port")]
    NotHostPort(String),
    #[error("address {0:?}: port is not a number from 0 to 65535")]
    BadPort(String),
    #[error("host name {0:?} is longer than 255 bytes")]
    TooLong(String),
    #[error("unknown address type 0x{0:02x}")]
    BadType(u8),
    #[error("host name is not valid UTF-8")]
    NotUtf8,
}

impl Addr {
    pub fn ip(ip: IpAddr, port: u16) -> Addr {
        Addr { host: Host::Ip(ip), port }
    }

    /// Parses `host:port`, `[v6]:port` or `:port` the way gosocks5 encodes them: an
    /// empty host is `0.0.0.0`, an IP literal keeps its family, anything else is
    /// sent as a name for the far side to resolve.
    pub fn parse(s: &str) -> Result<Addr, AddrError> {
        let (host, port) = crate::config::validate::split_host_port(s).ok_or_else(|| AddrError::NotHostPort(s.to_string()))?;
        let port: u16 = port.parse().map_err(|_| AddrError::BadPort(s.to_string()))?;
        let host = if host.is_empty() {
            Host::Ip(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        } else if let Ok(ip) = host.parse::<IpAddr>() {
            Host::Ip(ip)
        } else {
            if host.len() > 255 {
                return Err(AddrError::TooLong(host.to_string()));
            }
            Host::Domain(host.to_string())
        };
        Ok(Addr { host, port })
    }

    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self.host {
            Host::Ip(ip) => Some(SocketAddr::new(ip, self.port)),
            Host::Domain(_) => None,
        }
    }

    /// Bytes `encode` writes.
    pub fn encoded_len(&self) -> usize {
        match &self.host {
            Host::Ip(IpAddr::V4(_)) => 1 + 4 + 2,
            Host::Ip(IpAddr::V6(_)) => 1 + 16 + 2,
            Host::Domain(d) => 1 + 1 + d.len() + 2,
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match &self.host {
            Host::Ip(IpAddr::V4(v4)) => {
                out.push(ATYP_IPV4);
                out.extend_from_slice(&v4.octets());
            }
            Host::Ip(IpAddr::V6(v6)) => {
                out.push(ATYP_IPV6);
                out.extend_from_slice(&v6.octets());
            }
            Host::Domain(d) => {
                out.push(ATYP_DOMAIN);
                // parse() caps names at 255 bytes; a longer one built by hand is cut
                // rather than written with a wrong length byte.
                let b = &d.as_bytes()[..d.len().min(255)];
                out.push(b.len() as u8);
                out.extend_from_slice(b);
            }
        }
        out.extend_from_slice(&self.port.to_be_bytes());
    }

    /// Decodes an address at the start of `buf`: `Ok(None)` when more bytes are
    /// needed, else the address and the bytes it took.
    pub fn decode(buf: &[u8]) -> Result<Option<(Addr, usize)>, AddrError> {
        let Some(&atyp) = buf.first() else { return Ok(None) };
        let (host, at) = match atyp {
            ATYP_IPV4 => {
                if buf.len() < 1 + 4 {
                    return Ok(None);
                }
                let o: [u8; 4] = [buf[1], buf[2], buf[3], buf[4]];
                (Host::Ip(IpAddr::from(o)), 5)
            }
            ATYP_IPV6 => {
                if buf.len() < 1 + 16 {
                    return Ok(None);
                }
                let mut o = [0u8; 16];
                o.copy_from_slice(&buf[1..17]);
                (Host::Ip(IpAddr::from(o)), 17)
            }
            ATYP_DOMAIN => {
                let Some(&n) = buf.get(1) else { return Ok(None) };
                let n = n as usize;
                if buf.len() < 2 + n {
                    return Ok(None);
                }
                let name = std::str::from_utf8(&buf[2..2 + n]).map_err(|_| AddrError::NotUtf8)?;
                (Host::Domain(name.to_string()), 2 + n)
            }
            t => return Err(AddrError::BadType(t)),
        };
        if buf.len() < at + 2 {
            return Ok(None);
        }
        let port = u16::from_be_bytes([buf[at], buf[at + 1]]);
        Ok(Some((Addr { host, port }, at + 2)))
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]:{}", self.port),
            Host::Ip(ip) => write!(f, "{ip}:{}", self.port),
            Host::Domain(d) => write!(f, "{d}:{}", self.port),
        }
    }
}

impl From<SocketAddr> for Addr {
    fn from(a: SocketAddr) -> Addr {
        Addr::ip(a.ip(), a.port())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(a: &Addr) -> Vec<u8> {
        let mut v = Vec::new();
        a.encode(&mut v);
        v
    }

    #[test]
    fn encodes_like_gosocks5() {
        assert_eq!(enc(&Addr::parse(":8080").unwrap()), [1, 0, 0, 0, 0, 0x1f, 0x90]);
        assert_eq!(enc(&Addr::parse("192.168.1.1:80").unwrap()), [1, 192, 168, 1, 1, 0, 80]);
        assert_eq!(enc(&Addr::parse("a.b:1").unwrap()), [3, 3, b'a', b'.', b'b', 0, 1]);
        let v6 = enc(&Addr::parse("[::1]:53").unwrap());
        assert_eq!(v6.len(), 19);
        assert_eq!(v6[0], 4);
        assert_eq!(v6[16], 1);
    }

    #[test]
    fn decodes_what_it_encodes_and_asks_for_more() {
        for s in ["127.0.0.1:1", "[::1]:65535", "example.com:443"] {
            let a = Addr::parse(s).unwrap();
            let b = enc(&a);
            assert_eq!(Addr::decode(&b).unwrap(), Some((a.clone(), b.len())));
            assert_eq!(a.to_string(), s);
            for cut in 0..b.len() {
                assert_eq!(Addr::decode(&b[..cut]).unwrap(), None, "{s} cut at {cut}");
            }
        }
        assert_eq!(Addr::decode(&[9, 0]), Err(AddrError::BadType(9)));
        assert!(Addr::parse("nohost").is_err());
        assert!(Addr::parse("h:99999").is_err());
    }
}
