//! Dialers: the transport to the first node of a chain (`Dial`) and the
//! transport layered over a connection to a later node (`Handshake`), as in
//! go-gost/x `dialer/*`. `tcp` is the plain connection; `tls` adds TLS.

use crate::config::validate::NodeOpts;
use crate::conn::Conn;
use std::io;
use std::time::Duration;

/// Opens the transport to the first node.
pub async fn dial(opts: &NodeOpts, addr: &str, timeout: Duration) -> io::Result<Conn> {
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
        other => Err(io::Error::other(format!("dialer {other:?} is not implemented in Portway yet"))),
    }
}
