//! The component type names GOST registers (go-gost/x `registry`), and which of them
//! Portway implements. The command-line parser needs GOST's list to fall back exactly
//! as GOST does (an unknown handler becomes `auto`, an unknown connector `http`);
//! the engine needs Portway's list to refuse what it cannot run yet.

pub const GOST_HANDLERS: &[&str] = &[
    "auto", "dns", "file", "forward", "tcp", "udp", "rtcp", "rudp", "runix", "http", "http2", "http3",
    "metrics", "redirect", "red", "redu", "relay", "router", "serial", "sni", "socks4", "socks4a", "socks5",
    "socks", "ss", "ssu", "sshd", "tap", "tun", "tunnel", "unix",
];

pub const GOST_LISTENERS: &[&str] = &[
    "dns", "dtls", "ftcp", "grpc", "h2", "h2c", "http2", "http3", "h3", "icmp", "kcp", "mtcp", "mtls", "mws",
    "mwss", "obfs-http", "ohttp", "obfs-tls", "otls", "pht", "phts", "quic", "red", "redir", "redirect", "redu",
    "rtcp", "rudp", "runix", "serial", "ssh", "sshd", "stdio", "tap", "tcp", "tls", "tun", "udp", "unix", "ws",
    "wss", "wt",
];

pub const GOST_CONNECTORS: &[&str] = &[
    "direct", "virtual", "forward", "http", "http2", "relay", "router", "serial", "sni", "socks4", "socks4a",
    "socks5", "socks", "ss", "ssu", "sshd", "tunnel", "unix",
];

pub const GOST_DIALERS: &[&str] = &[
    "direct", "virtual", "dtls", "ftcp", "grpc", "h2", "h2c", "http2", "http3", "h3", "icmp", "kcp", "mtcp",
    "mtls", "mws", "mwss", "obfs-http", "ohttp", "obfs-tls", "otls", "pht", "phts", "quic", "serial", "ssh",
    "sshd", "tcp", "tls", "udp", "unix", "ws", "wss", "wt", "wg",
];

/// Handlers Portway runs today. `rtcp`/`rudp` run only without a chain, where GOST
/// treats them as local forwarding.
pub const PORTWAY_HANDLERS: &[&str] = &["tcp", "udp", "forward", "rtcp", "rudp", "socks5", "socks", "socks4", "socks4a", "http", "auto", "relay", "ssu", "sshd"];
pub const PORTWAY_LISTENERS: &[&str] = &["tcp", "udp", "rtcp", "rudp", "tls", "sshd"];
pub const PORTWAY_CONNECTORS: &[&str] = &["forward", "socks5", "socks", "socks4", "socks4a", "http", "relay", "ssu", "sshd"];
pub const PORTWAY_DIALERS: &[&str] = &["tcp", "tls", "udp", "sshd"];

pub fn is_gost(list: &[&str], name: &str) -> bool {
    list.contains(&name)
}
