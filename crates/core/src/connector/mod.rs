//! Connectors: the client side of a proxy protocol, run over a connection a dialer
//! (or the previous hop) made, to ask the node for the next address (go-gost/x
//! `connector/*`).

pub mod bind;
pub mod http;
pub mod relay;
pub mod socks4;
pub mod socks5;
pub mod socks5_udp;
pub mod ssu;

use crate::config::validate::NodeOpts;
use crate::conn::Conn;
use std::io;

/// What a connection through the chain will carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Tcp,
    Udp,
}

/// Asks the node behind `conn` (reached with `opts`) to connect to `addr`
/// (GOST's `Connector.Connect`). For UDP the returned stream carries GOST's
/// UDP-over-stream frames ([`crate::codec::udptun`]).
pub async fn connect(opts: &NodeOpts, mut conn: Conn, network: Network, addr: &str) -> io::Result<Conn> {
    match (opts.connector.as_str(), network) {
        // The forward connector sends nothing: the server it reaches decides where
        // the bytes go, so `addr` is ignored (go-gost/x connector/forward).
        ("forward", Network::Tcp) => Ok(conn),
        ("forward", Network::Udp) => Err(io::Error::other("UDP cannot go through a forward connector: it has no datagram framing (use socks5, http or relay with udp=true on the server)")),
        ("socks5" | "socks", net) => {
            let c = socks5::Socks5Connector::new(socks5_options(opts));
            // connect / udp_tun run the method handshake themselves and hand back
            // the connection unchanged, or inside TLS after GOST's 80/82.
            let s = match net {
                Network::Tcp => c.connect(conn, addr).await?.0,
                // GOST's `relay=udp`: standard UDP ASSOCIATE, which third-party
                // SOCKS5 servers speak; the stream it returns carries the same
                // frames as UDP-TUN.
                Network::Udp if standard_udp_relay(opts) => {
                    let size = opts.connector_md.get_int(&["udpBufferSize"]).ok().flatten().filter(|n| *n > 0).map_or(socks5_udp::DEFAULT_BUFFER_SIZE, |n| n.min(65535) as usize);
                    let s = socks5_udp::associate(&c, conn, &opts.addr, size).await?;
                    return Ok(Conn::boxed(s));
                }
                Network::Udp => c.udp_tun(conn).await?.0,
            };
            Ok(s.into_conn())
        }
        ("socks4" | "socks4a", Network::Tcp) => {
            let disable4a = opts.connector_md.get_bool(&["disable4a"]).unwrap_or(None).unwrap_or(false);
            let c = socks4::Socks4Connector::new(socks4::Socks4Options { userid: opts.auth.as_ref().map(|a| a.0.clone()), disable4a });
            c.connect(&mut conn, addr).await?;
            Ok(conn)
        }
        ("socks4" | "socks4a", Network::Udp) => Err(io::Error::other("SOCKS4 cannot carry UDP")),
        ("http", net) => {
            let o = http::ConnectOptions { auth: opts.auth.clone(), headers: opts.connector_md.get_string_map(&["header"]), udp: net == Network::Udp };
            let rest = http::connect(&mut conn, &opts.addr, addr, &o).await?;
            // Bytes the proxy sent right behind its answer belong to the tunnel.
            Ok(Conn::prefixed(rest, conn))
        }
        ("relay", net) => {
            let target = crate::codec::addr::Addr::parse(addr).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let o = relay::ConnectorOptions {
                auth: opts.auth.clone(),
                // The request always goes out at once (GOST's nodelay wire form, which
                // every GOST relay server reads), while the answer is still read
                // lazily: a GOST server with nodelay=false only answers in front of
                // the target's first bytes, and a server-first target works too.
                nodelay: true,
                server: opts.addr.clone(),
            };
            let network = match net {
                Network::Tcp => crate::codec::relay::Network::Tcp,
                Network::Udp => crate::codec::relay::Network::Udp,
            };
            let s = relay::connect(conn, &target, network, &o).await?;
            Ok(Conn::Relay(Box::new(s)))
        }
        // ssu over a stream transport (`ssu+tls://`): a Shadowsocks stream carrying
        // GOST's UDP-over-stream frames (the datagram form is the UDP service's).
        ("ssu", Network::Udp) => {
            Ok(Conn::boxed(ssu::SsStream::new(conn, opts.ss_cipher.as_ref())))
        }
        ("ssu", Network::Tcp) => Err(io::Error::other("ssu carries UDP only (GOST's ssu connector has no TCP)")),
        ("sshd", Network::Tcp) => match conn {
            Conn::Ssh(session) => {
                let (host, port) = crate::config::validate::split_host_port(addr).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr}: not host:port")))?;
                let port: u16 = port.parse().map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr}: bad port")))?;
                // GOST sends an empty host as is; OpenSSH wants a name: this machine.
                let host = if host.is_empty() { "127.0.0.1" } else { host };
                let s = session.open_direct_tcpip(host, port).await?;
                Ok(Conn::boxed(s))
            }
            _ => Err(io::Error::other("ssh: invalid connection (an sshd node must be the chain's first hop)")),
        },
        ("sshd", Network::Udp) => Err(io::Error::other("UDP cannot go through an SSH hop (SSH forwards TCP only; GOST neither)")),
        (other, _) => Err(io::Error::other(format!("connector {other:?} is not implemented in Portway yet"))),
    }
}

/// Whether a failed final `connect` means the node answered but could not (or
/// would not) reach the target — as opposed to the node itself refusing us (a
/// failed login, a protocol mismatch), which the probe pins on the node.
pub fn is_target_refusal(e: &io::Error) -> bool {
    let Some(inner) = e.get_ref() else { return false };
    if let Some(e) = inner.downcast_ref::<crate::codec::socks5::Socks5Error>() {
        return matches!(e, crate::codec::socks5::Socks5Error::Refused { .. });
    }
    if let Some(e) = inner.downcast_ref::<crate::codec::socks4::Socks4Error>() {
        return matches!(e, crate::codec::socks4::Socks4Error::Refused { .. });
    }
    if let Some(e) = inner.downcast_ref::<crate::ssh::SshError>() {
        return matches!(e, crate::ssh::SshError::ChannelRefused { .. });
    }
    if let Some(e) = inner.downcast_ref::<crate::codec::relay::RelayError>() {
        let m = e.to_string();
        return m.contains("unreachable") || m.contains("unavailable");
    }
    if let Some(e) = inner.downcast_ref::<crate::codec::http::HttpError>() {
        // A proxy that cannot reach the target answers 5xx; 407/403 are about us.
        return e.to_string().contains(" answered 5");
    }
    false
}

/// The socks5 connector's options for a node: its credentials and, unless
/// `notls`, the TLS for GOST's methods 80/82 (resolved at plan time).
pub fn socks5_options(opts: &NodeOpts) -> socks5::Socks5Options {
    socks5::Socks5Options { auth: opts.auth.clone(), tls: opts.socks5_tls.clone() }
}

/// GOST's socks5 connector option `relay=udp` (go-gost/x
/// `connector/socks/v5/metadata.go`): UDP through standard UDP ASSOCIATE
/// instead of GOST's UDP-TUN.
pub fn standard_udp_relay(opts: &NodeOpts) -> bool {
    opts.connector_md.get_string(&["relay"]).as_deref() == Some("udp")
}

/// How datagrams travel on the stream a connector returned for UDP: GOST's
/// UDP-over-stream frames (socks5, http), or the relay protocol's `LEN | payload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpFraming {
    Tun,
    Relay,
}

pub fn udp_framing(connector: &str) -> UdpFraming {
    if connector == "relay" {
        UdpFraming::Relay
    } else {
        UdpFraming::Tun
    }
}
