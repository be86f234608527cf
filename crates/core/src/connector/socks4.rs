//! SOCKS4 / SOCKS4a client, as GOST's `socks4` and `socks4a` connectors speak it
//! (go-gost/x `connector/socks/v4/connector.go`): both schemes behave the same;
//! unless `disable4a` is set every target, IP literals included, goes out as a 4a
//! name for the server to resolve. With `disable4a` the name is resolved here to
//! an IPv4 address. The configured user name is the USERID; there is no password.

use crate::codec::socks4::{self as s4, Dst, Reply, Request, Socks4Error, REPLY_LEN};
use crate::config::validate::split_host_port;
use crate::framed::{read_message, ReadError};
use std::net::{IpAddr, Ipv4Addr};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

#[derive(Debug, Clone, Default)]
pub struct Socks4Options {
    /// Sent as USERID (GOST: the node's auth user name).
    pub userid: Option<String>,
    /// GOST `disable4a`: resolve locally and send plain SOCKS4.
    pub disable4a: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Socks4Connector {
    opts: Socks4Options,
}

pub(crate) fn read_err(step: &'static str) -> impl Fn(ReadError<Socks4Error>) -> Socks4Error {
    move |e| match e {
        ReadError::Io(e) => Socks4Error::Io(e),
        ReadError::Closed => Socks4Error::Closed(step),
        ReadError::Oversized => Socks4Error::FieldTooLong(step),
        ReadError::Decode(e) => e,
    }
}

impl Socks4Connector {
    pub fn new(opts: Socks4Options) -> Socks4Connector {
        Socks4Connector { opts }
    }

    /// CONNECT to `target` (`host:port`). SOCKS4 has no handshake before the
    /// request and its reply carries nothing useful, so nothing is returned.
    pub async fn connect<S>(&self, s: &mut S, target: &str) -> Result<(), Socks4Error>
    where
        S: AsyncRead + AsyncWrite + Unpin + ?Sized,
    {
        let (host, port) = split_target(target)?;
        let dst = if self.opts.disable4a { Dst::Ip(resolve_v4(&host, port).await?) } else { Dst::Name(host) };
        let req = Request { cmd: s4::CMD_CONNECT, port, dst, userid: self.opts.userid.clone().unwrap_or_default() };
        let mut out = Vec::with_capacity(16 + target.len());
        req.encode(&mut out)?;
        s.write_all(&out).await?;
        s.flush().await?;
        let reply = read_message(s, REPLY_LEN, Reply::decode).await.map_err(read_err("the reply"))?;
        if reply.code != s4::GRANTED {
            return Err(Socks4Error::Refused { target: target.to_string(), code: reply.code, text: s4::code_text(reply.code) });
        }
        Ok(())
    }
}

fn split_target(target: &str) -> Result<(String, u16), Socks4Error> {
    let bad = || Socks4Error::BadTarget(target.to_string());
    let (host, port) = split_host_port(target).ok_or_else(bad)?;
    let port = port.parse::<u16>().map_err(|_| bad())?;
    Ok((host.to_string(), port))
}

/// First IPv4 address of `host`; an empty host is 0.0.0.0 (Go's resolver for
/// `:port`).
async fn resolve_v4(host: &str, port: u16) -> Result<Ipv4Addr, Socks4Error> {
    if host.is_empty() {
        return Ok(Ipv4Addr::UNSPECIFIED);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return match ip {
            IpAddr::V4(v4) => Ok(v4),
            IpAddr::V6(_) => Err(Socks4Error::NotIpv4(host.to_string())),
        };
    }
    let addrs = tokio::net::lookup_host((host, port)).await.map_err(|_| Socks4Error::Resolve(host.to_string()))?;
    addrs
        .filter_map(|a| match a.ip() {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
        .next()
        .ok_or_else(|| Socks4Error::Resolve(host.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    async fn sent_bytes(opts: Socks4Options, target: &str) -> Vec<u8> {
        let (mut c, mut srv) = tokio::io::duplex(1024);
        let server = tokio::spawn(async move {
            let mut buf = vec![0u8; 512];
            let mut got = Vec::new();
            // Read until the final NUL of the request (4a has two).
            loop {
                let n = srv.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
                if let Ok(crate::codec::socks5::Decoded::Done(_, used)) = Request::decode(&got) {
                    assert_eq!(used, got.len());
                    break;
                }
            }
            srv.write_all(&[0, 90, 0, 0, 0, 0, 0, 0]).await.unwrap();
            got
        });
        Socks4Connector::new(opts).connect(&mut c, target).await.unwrap();
        server.await.unwrap()
    }

    #[tokio::test]
    async fn gost_sends_everything_as_4a_unless_disabled() {
        let b = sent_bytes(Socks4Options { userid: Some("u".into()), disable4a: false }, "192.168.1.1:80").await;
        assert_eq!(b, b"\x04\x01\x00\x50\x00\x00\x00\x01u\x00192.168.1.1\x00");
        let b = sent_bytes(Socks4Options { userid: None, disable4a: true }, "192.168.1.1:80").await;
        assert_eq!(b, [4, 1, 0, 0x50, 192, 168, 1, 1, 0]);
        let b = sent_bytes(Socks4Options { userid: None, disable4a: true }, "localhost:80").await;
        assert_eq!(b, [4, 1, 0, 0x50, 127, 0, 0, 1, 0]);
    }
}
