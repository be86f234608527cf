//! Dialers: the transport to the first node of a chain (`Dial`) and the
//! transport layered over a connection to a later node (`Handshake`), as in
//! go-gost/x `dialer/*`. `tcp` is the plain connection; `tls` adds TLS.

use crate::config::validate::NodeOpts;
use crate::conn::Conn;
use std::io;
use std::time::Duration;

/// Opens the transport to the first node.
pub async fn dial(opts: &NodeOpts, addr: &str, timeout: Duration) -> io::Result<Conn> {
    if opts.dialer == "sshd" {
        // One SSH session per node and user, shared by every connection through it
        // and re-made when it drops (GOST caches sessions the same way).
        let Some(cfg) = &opts.ssh else {
            return Err(io::Error::other("sshd dialer without SSH settings"));
        };
        let a = addr.to_string();
        let session = ssh_pool().session(addr, cfg, || async move { crate::chain::dial_tcp(&a, timeout).await.map(Conn::Tcp) });
        return match tokio::time::timeout(timeout, session).await {
            Ok(r) => r.map(Conn::Ssh).map_err(io::Error::from),
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, format!("ssh session with {addr} timed out"))),
        };
    }
    let tcp = crate::chain::dial_tcp(addr, timeout).await?;
    handshake(opts, Conn::Tcp(tcp), addr, timeout).await
}

/// Layers the node's transport over a connection that already reaches it.
pub async fn handshake(opts: &NodeOpts, conn: Conn, addr: &str, timeout: Duration) -> io::Result<Conn> {
    match opts.dialer.as_str() {
        "tcp" => Ok(conn),
        "tls" => {
            let Some((cfg, name)) = &opts.tls else {
                return Err(io::Error::other("tls dialer without a TLS configuration"));
            };
            let connector = tokio_rustls::TlsConnector::from(cfg.clone());
            match tokio::time::timeout(timeout, connector.connect(name.clone(), conn)).await {
                Ok(Ok(s)) => Ok(Conn::boxed(s)),
                Ok(Err(e)) => Err(io::Error::new(e.kind(), format!("tls handshake with {addr}: {}", crate::tls::handshake_msg(&e)))),
                Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, format!("tls handshake with {addr} timed out"))),
            }
        }
        "sshd" => Err(io::Error::other("ssh: invalid connection (an sshd node must be the chain's first hop)")),
        other => Err(io::Error::other(format!("dialer {other:?} is not implemented in Portway yet"))),
    }
}

/// SSH sessions of this process, by node address and user.
pub fn ssh_pool() -> &'static crate::ssh::client::SshPool {
    static POOL: std::sync::OnceLock<crate::ssh::client::SshPool> = std::sync::OnceLock::new();
    POOL.get_or_init(crate::ssh::client::SshPool::new)
}
