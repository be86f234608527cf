//! SSH tunnels (GOST's `sshd` dialer/connector and `sshd` service) on top of
//! the `russh` crate: no SSH protocol code lives here, only policy (host keys,
//! authentication, session sharing) and the glue between SSH channels and the
//! engine's streams.
//!
//! Options (node / service metadata, GOST names where GOST has them):
//! * client: `user`/`password` from the node's auth, `privateKeyFile`,
//!   `passphrase` (GOST); `knownHosts` (Portway: a known_hosts file with
//!   accept-new semantics) and `hostKeyFingerprint` (Portway: pin one
//!   `SHA256:…` fingerprint). Without either, host keys are not verified, as
//!   GOST does (`go-gost/x: dialer/sshd/dialer.go` uses `InsecureIgnoreHostKey`).
//! * server: the service's auther (password), `authorizedKeys` (GOST), and a
//!   host key file the engine chooses (GOST's `privateKeyFile`, else a
//!   generated ed25519 key kept at that path).

pub mod client;
pub mod server;

use std::io;

/// Everything that can go wrong in an SSH tunnel, worded for the user.
/// Passwords and passphrases never appear in these messages.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("ssh: cannot reach {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("ssh: handshake with {addr} failed: {detail}")]
    Handshake { addr: String, detail: String },
    #[error(
        "ssh: host key of {addr} changed: the server now offers {fingerprint}, which differs from \
         the key in {file} line {line} (possible man-in-the-middle; remove that line if the change \
         is expected)"
    )]
    HostKeyChanged { addr: String, fingerprint: String, file: String, line: usize },
    #[error("ssh: host key of {addr} is {fingerprint}, expected {expected}")]
    HostKeyMismatch { addr: String, fingerprint: String, expected: String },
    #[error("ssh: known hosts file {file}: {detail}")]
    KnownHosts { file: String, detail: String },
    #[error("ssh: authentication failed (server {addr} rejected user \"{user}\"; tried {tried}; server accepts {accepts})")]
    AuthFailed { addr: String, user: String, tried: String, accepts: String },
    #[error("ssh: cannot use private key file {file}: {detail}")]
    PrivateKey { file: String, detail: String },
    #[error("ssh: server {addr} refused to open a connection to {target}: {reason}")]
    ChannelRefused { addr: String, target: String, reason: String },
    #[error("ssh: server {addr} refused to listen on {bind} for remote forwarding")]
    ForwardRefused { addr: String, bind: String },
    #[error("ssh: connection to {addr} is closed")]
    SessionClosed { addr: String },
    #[error("ssh: {0}")]
    Protocol(String),
    #[error("sshd: host key file {file}: {detail}")]
    HostKeyFile { file: String, detail: String },
    #[error("sshd: authorized keys file {file}: {detail}")]
    AuthorizedKeys { file: String, detail: String },
}

impl From<russh::Error> for SshError {
    fn from(e: russh::Error) -> Self {
        SshError::Protocol(e.to_string())
    }
}

impl From<SshError> for io::Error {
    fn from(e: SshError) -> io::Error {
        let kind = match &e {
            SshError::Connect { source, .. } => source.kind(),
            SshError::AuthFailed { .. }
            | SshError::HostKeyChanged { .. }
            | SshError::HostKeyMismatch { .. } => io::ErrorKind::PermissionDenied,
            SshError::ChannelRefused { .. } | SshError::ForwardRefused { .. } => {
                io::ErrorKind::ConnectionRefused
            }
            SshError::SessionClosed { .. } => io::ErrorKind::ConnectionAborted,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

/// `SHA256:…` as OpenSSH prints it, so users can compare with `ssh-keygen -lf`.
pub fn fingerprint(key: &russh::keys::PublicKey) -> String {
    key.fingerprint(russh::keys::HashAlg::Sha256).to_string()
}

/// Splits `host:port` / `[v6]:port` for known_hosts lookups.
fn split_host_port(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    Some((host, port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port("example.com:22"), Some(("example.com", 22)));
        assert_eq!(split_host_port("[::1]:2222"), Some(("::1", 2222)));
        assert_eq!(split_host_port("nohost"), None);
        assert_eq!(split_host_port("h:99999"), None);
    }

    #[test]
    fn errors_become_io_errors_with_their_text() {
        let e: io::Error = SshError::AuthFailed {
            addr: "127.0.0.1:22".into(),
            user: "bob".into(),
            tried: "password".into(),
            accepts: "publickey".into(),
        }
        .into();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("rejected user \"bob\""));
    }
}
