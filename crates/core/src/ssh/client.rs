//! SSH client side: the `sshd` dialer/connector of a chain node.
//!
//! One SSH connection per (node address, user) is shared by every forwarded
//! connection, as GOST does (`go-gost/x: dialer/sshd/dialer.go`); a session
//! found closed, or failing as closed when a channel is opened, is replaced by a
//! new one on the next open.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex as StdMutex, Weak};
use std::time::Duration;

use russh::client::{self, Handle, Msg, Session};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{Channel, ChannelOpenFailure, ChannelStream, MethodSet};
use tokio::sync::{mpsc, Mutex};

use super::{fingerprint, split_host_port, SshError};
use crate::config::types::Metadata;
use crate::conn::{AsyncStream, Conn};

/// A channel as a byte stream; `Conn::boxed` accepts it.
pub type SshStream = ChannelStream<Msg>;

/// How long the SSH handshake plus authentication may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);
/// A channel open that gets no answer this long means the session is dead
/// (a peer that vanished without a FIN); the session is then replaced.
const OPEN_TIMEOUT: Duration = Duration::from_secs(20);
/// Inbound forwarded connections waiting for the engine to accept them.
const FORWARD_BACKLOG: usize = 128;

/// What to do with the server's host key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// GOST's behaviour: any host key is accepted.
    #[default]
    AcceptAny,
    /// OpenSSH `known_hosts` file, accept-new: an unknown host is accepted and
    /// appended (its fingerprint logged), a changed key is refused.
    KnownHosts(PathBuf),
    /// Only this `SHA256:…` fingerprint is accepted.
    Fingerprint(String),
}

/// Client settings of one `sshd` node.
#[derive(Clone, Default)]
pub struct SshClientConfig {
    pub user: String,
    pub password: Option<String>,
    pub private_key_file: Option<PathBuf>,
    pub passphrase: Option<String>,
    pub host_key: HostKeyPolicy,
    /// SSH-level keepalive (GOST `keepalive` + `ttl`); `None` sends none.
    pub keepalive: Option<Duration>,
}

impl SshClientConfig {
    /// Builds the settings from a node's credentials (GOST moves `sshd://user:pass@`
    /// to the dialer's auth) and dialer metadata: `privateKeyFile`, `passphrase`
    /// (GOST), `knownHosts`, `hostKeyFingerprint` (Portway), `keepalive` with
    /// `keepalive.interval` / `ttl` (default 30 s when only `keepalive` is set).
    pub fn from_metadata(auth: Option<(String, String)>, md: &Metadata) -> Result<SshClientConfig, String> {
        let text = |names: &[&str]| -> Option<String> {
            md.get(names).and_then(|(_, v)| match v {
                serde_yaml::Value::String(s) if !s.is_empty() => Some(s.clone()),
                _ => None,
            })
        };
        let (user, password) = auth.unwrap_or_default();
        let host_key = match (text(&["knownHosts", "known_hosts"]), text(&["hostKeyFingerprint"])) {
            (Some(_), Some(_)) => return Err("sshd: set either knownHosts or hostKeyFingerprint, not both".into()),
            (Some(file), None) => HostKeyPolicy::KnownHosts(file.into()),
            (None, Some(fp)) => HostKeyPolicy::Fingerprint(fp),
            (None, None) => HostKeyPolicy::AcceptAny,
        };
        let keepalive = if md.get_bool(&["keepalive"])?.unwrap_or(false) {
            Some(md.get_duration(&["keepalive.interval", "ttl"])?.unwrap_or(Duration::from_secs(30)))
        } else {
            None
        };
        Ok(SshClientConfig {
            user,
            password: Some(password).filter(|p| !p.is_empty()),
            private_key_file: text(&["privateKeyFile", "private_key_file"]).map(PathBuf::from),
            passphrase: text(&["passphrase"]),
            host_key,
            keepalive,
        })
    }
}

impl SshClientConfig {
    /// What a cached session is shared by: the user and the credentials (a
    /// session logged in with one key must not serve a node configured with
    /// another). The password enters only as a checksum.
    fn identity(&self) -> String {
        let pw = self.password.as_deref().map(|p| crc32fast::hash(p.as_bytes())).unwrap_or(0);
        let key = self.private_key_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        format!("{}\u{0}{key}\u{0}{pw:08x}", self.user)
    }
}

impl std::fmt::Debug for SshClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshClientConfig")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("private_key_file", &self.private_key_file)
            .field("passphrase", &self.passphrase.as_ref().map(|_| "***"))
            .field("host_key", &self.host_key)
            .field("keepalive", &self.keepalive)
            .finish()
    }
}

/// An inbound connection on a remote (`tcpip-forward`) listener.
pub struct ForwardedConn {
    pub stream: SshStream,
    /// The remote peer as the SSH server reports it (`ip:port`).
    pub originator: String,
}

type ForwardMap = StdMutex<HashMap<u32, mpsc::Sender<ForwardedConn>>>;

struct ClientHandler {
    addr: String,
    policy: HostKeyPolicy,
    /// Owned here so that the senders, and with them every remote listener,
    /// end when the session task drops its handler.
    forwards: Arc<ForwardMap>,
}

impl client::Handler for ClientHandler {
    type Error = SshError;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, SshError> {
        let key = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(cert) => PublicKey::from(cert.public_key().clone()),
        };
        verify_host_key(&self.addr, &self.policy, &key)?;
        Ok(true)
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: Channel<Msg>,
        _connected_address: &str,
        connected_port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: client::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), SshError> {
        let tx = lock(&self.forwards).get(&connected_port).cloned();
        let Some(tx) = tx else {
            reply.reject(ChannelOpenFailure::AdministrativelyProhibited).await;
            return Ok(());
        };
        // Reserve first: a listener nobody accepts from must not pile up channels.
        match tx.try_reserve() {
            Ok(permit) => {
                reply.accept().await;
                let originator = format!("{originator_address}:{originator_port}");
                permit.send(ForwardedConn { stream: channel.into_stream(), originator });
            }
            Err(_) => reply.reject(ChannelOpenFailure::ResourceShortage).await,
        }
        Ok(())
    }
}

fn lock<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Applies the host key policy; `Ok` means the key is trusted.
pub fn verify_host_key(addr: &str, policy: &HostKeyPolicy, key: &PublicKey) -> Result<(), SshError> {
    match policy {
        HostKeyPolicy::AcceptAny => Ok(()),
        HostKeyPolicy::Fingerprint(expected) => {
            let got = fingerprint(key);
            let expected_norm = expected.strip_prefix("SHA256:").unwrap_or(expected);
            if got.strip_prefix("SHA256:") == Some(expected_norm) {
                Ok(())
            } else {
                Err(SshError::HostKeyMismatch { addr: addr.into(), fingerprint: got, expected: expected.clone() })
            }
        }
        HostKeyPolicy::KnownHosts(file) => check_known_hosts(addr, file, key),
    }
}

fn check_known_hosts(addr: &str, file: &std::path::Path, key: &PublicKey) -> Result<(), SshError> {
    let file_name = file.display().to_string();
    let known_hosts_err = |detail: String| SshError::KnownHosts { file: file_name.clone(), detail };
    let (host, port) =
        split_host_port(addr).ok_or_else(|| known_hosts_err(format!("cannot tell host and port from \"{addr}\"")))?;
    match russh::keys::check_known_hosts_path(host, port, key, file) {
        Ok(true) => Ok(()),
        Ok(false) => {
            russh::keys::known_hosts::learn_known_hosts_path(host, port, key, file)
                .map_err(|e| known_hosts_err(format!("cannot add {addr}: {e}")))?;
            tracing::info!("ssh: {addr}: new host key {} added to {file_name}", fingerprint(key));
            Ok(())
        }
        Err(russh::keys::Error::KeyChanged { line }) => Err(SshError::HostKeyChanged {
            addr: addr.into(),
            fingerprint: fingerprint(key),
            file: file_name,
            line,
        }),
        Err(e) => Err(known_hosts_err(e.to_string())),
    }
}

/// Unanswered keepalives before the session is given up (russh's default).
const KEEPALIVE_MAX: u32 = 3;

fn set_tcp_user_timeout(s: &tokio::net::TcpStream, t: std::time::Duration) {
    use std::os::fd::AsRawFd;
    let ms = libc::c_uint::try_from(t.as_millis()).unwrap_or(libc::c_uint::MAX);
    // SAFETY: setsockopt on a socket we own, with a value of the size we pass.
    let r = unsafe { libc::setsockopt(s.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, &ms as *const libc::c_uint as *const libc::c_void, std::mem::size_of::<libc::c_uint>() as libc::socklen_t) };
    if r != 0 {
        tracing::debug!("ssh: TCP_USER_TIMEOUT: {}", std::io::Error::last_os_error());
    }
}

/// One authenticated SSH connection to a node.
pub struct SshSession {
    addr: String,
    handle: Handle<ClientHandler>,
    forwards: Weak<ForwardMap>,
}

impl SshSession {
    /// Runs the SSH handshake and authentication over `stream` (already
    /// connected to `addr`, the node address used for known_hosts and errors).
    pub async fn connect<S: AsyncStream + 'static>(
        stream: S,
        addr: &str,
        cfg: &SshClientConfig,
    ) -> Result<Arc<SshSession>, SshError> {
        // Read the key before talking to the server: a bad key file is the
        // user's mistake, not the server's, and should say so.
        let key = cfg.private_key_file.as_ref().map(|f| load_key(f, cfg.passphrase.as_deref())).transpose()?;
        let fut = Self::handshake(stream, addr, cfg, key);
        tokio::time::timeout(HANDSHAKE_TIMEOUT, fut).await.map_err(|_| SshError::Handshake {
            addr: addr.into(),
            detail: format!("no answer within {} s", HANDSHAKE_TIMEOUT.as_secs()),
        })?
    }

    async fn handshake<S: AsyncStream + 'static>(
        stream: S,
        addr: &str,
        cfg: &SshClientConfig,
        key: Option<PrivateKey>,
    ) -> Result<Arc<SshSession>, SshError> {
        let config = client::Config { keepalive_interval: cfg.keepalive, keepalive_max: KEEPALIVE_MAX as usize, nodelay: true, ..Default::default() };
        let forwards = Arc::new(ForwardMap::default());
        let handler = ClientHandler { addr: addr.into(), policy: cfg.host_key.clone(), forwards: forwards.clone() };
        let weak = Arc::downgrade(&forwards);
        drop(forwards);
        let mut handle = client::connect_stream(Arc::new(config), stream, handler).await.map_err(|e| match e {
            SshError::Protocol(detail) => SshError::Handshake { addr: addr.into(), detail },
            other => other,
        })?;
        authenticate(&mut handle, addr, cfg, key).await?;
        Ok(Arc::new(SshSession { addr: addr.into(), handle, forwards: weak }))
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// True once the connection has ended; the pool then makes a new one.
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// A `direct-tcpip` channel to `host:port` (hostnames go unresolved to the
    /// server), originator `0.0.0.0:0` as GOST sends (`connector/sshd/connector.go`).
    pub async fn open_direct_tcpip(&self, host: &str, port: u16) -> Result<SshStream, SshError> {
        let open = self.handle.channel_open_direct_tcpip(host, u32::from(port), "0.0.0.0", 0);
        let channel = tokio::time::timeout(OPEN_TIMEOUT, open)
            .await
            .map_err(|_| SshError::SessionClosed { addr: self.addr.clone() })?
            .map_err(|e| self.channel_error(e, &format!("{host}:{port}")))?;
        Ok(channel.into_stream())
    }

    fn channel_error(&self, e: russh::Error, target: &str) -> SshError {
        match e {
            russh::Error::ChannelOpenFailure(f) => SshError::ChannelRefused {
                addr: self.addr.clone(),
                target: target.into(),
                reason: describe_open_failure(&f),
            },
            russh::Error::SendError | russh::Error::Disconnect | russh::Error::HUP => {
                SshError::SessionClosed { addr: self.addr.clone() }
            }
            other if self.is_closed() => {
                tracing::debug!("ssh: {}: channel open failed on a closed session: {other}", self.addr);
                SshError::SessionClosed { addr: self.addr.clone() }
            }
            other => SshError::Protocol(other.to_string()),
        }
    }

    /// Asks the server to listen on `host:port` (`tcpip-forward`; an empty host
    /// means all interfaces, as GOST's `:8080` does). Port 0 lets the server
    /// pick; the listener reports the port actually bound.
    pub async fn tcpip_forward(self: &Arc<Self>, host: &str, port: u16) -> Result<SshForwardListener, SshError> {
        let host = if host.is_empty() { "0.0.0.0" } else { host };
        let forwards = self.forwards.upgrade().ok_or_else(|| SshError::SessionClosed { addr: self.addr.clone() })?;
        let (tx, rx) = mpsc::channel(FORWARD_BACKLOG);
        // Register a fixed port before asking, so a connection racing the
        // reply still finds its listener.
        if port != 0 {
            lock(&forwards).insert(u32::from(port), tx.clone());
        }
        let bind = format!("{host}:{port}");
        let answer = self.handle.tcpip_forward(host, u32::from(port)).await;
        let bound = match answer {
            Ok(p) if port == 0 => u16::try_from(p).ok().filter(|p| *p != 0).ok_or_else(|| {
                SshError::Protocol(format!("server {} answered remote forwarding with port {p}", self.addr))
            }),
            Ok(_) => Ok(port),
            Err(russh::Error::RequestDenied) => Err(SshError::ForwardRefused { addr: self.addr.clone(), bind }),
            Err(e) => Err(self.channel_error(e, &bind)),
        };
        let bound = match bound {
            Ok(b) => b,
            Err(e) => {
                lock(&forwards).remove(&u32::from(port));
                return Err(e);
            }
        };
        lock(&forwards).insert(u32::from(bound), tx);
        Ok(SshForwardListener { session: self.clone(), host: host.into(), port: bound, rx })
    }
}

fn load_key(file: &std::path::Path, passphrase: Option<&str>) -> Result<PrivateKey, SshError> {
    russh::keys::load_secret_key(file, passphrase).map_err(|e| SshError::PrivateKey {
        file: file.display().to_string(),
        detail: match e {
            russh::keys::Error::KeyIsEncrypted => "the key is encrypted; set passphrase".into(),
            other => other.to_string(),
        },
    })
}

/// GOST's order (`dialer/sshd/dialer.go`): password if one is set, then the
/// private key; with neither, the `none` method.
async fn authenticate(
    handle: &mut Handle<ClientHandler>,
    addr: &str,
    cfg: &SshClientConfig,
    key: Option<PrivateKey>,
) -> Result<(), SshError> {
    let mut tried = Vec::new();
    let mut accepts = MethodSet::empty();
    if let Some(password) = &cfg.password {
        tried.push("password");
        match handle.authenticate_password(cfg.user.clone(), password.clone()).await? {
            client::AuthResult::Success => return Ok(()),
            client::AuthResult::Failure { remaining_methods, .. } => accepts = remaining_methods,
        }
    }
    if let Some(key) = key {
        tried.push("publickey");
        let hash = handle.best_supported_rsa_hash().await?.flatten();
        let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
        match handle.authenticate_publickey(cfg.user.clone(), key).await? {
            client::AuthResult::Success => return Ok(()),
            client::AuthResult::Failure { remaining_methods, .. } => accepts = remaining_methods,
        }
    }
    if tried.is_empty() {
        tried.push("none");
        match handle.authenticate_none(cfg.user.clone()).await? {
            client::AuthResult::Success => return Ok(()),
            client::AuthResult::Failure { remaining_methods, .. } => accepts = remaining_methods,
        }
    }
    Err(SshError::AuthFailed {
        addr: addr.into(),
        user: cfg.user.clone(),
        tried: tried.join(", "),
        accepts: describe_methods(&accepts),
    })
}

fn describe_methods(methods: &MethodSet) -> String {
    let names: Vec<&str> = methods.iter().map(<&str>::from).collect();
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join(", ")
    }
}

fn describe_open_failure(f: &ChannelOpenFailure) -> String {
    match f {
        ChannelOpenFailure::AdministrativelyProhibited => "administratively prohibited".into(),
        ChannelOpenFailure::ConnectFailed => "connect failed".into(),
        ChannelOpenFailure::UnknownChannelType => "unknown channel type".into(),
        ChannelOpenFailure::ResourceShortage => "resource shortage".into(),
        ChannelOpenFailure::Other { code, reason } => format!("code {code}: {reason}"),
    }
}

/// A remote listener made by `tcpip-forward`; dropping it cancels the forward.
pub struct SshForwardListener {
    session: Arc<SshSession>,
    host: String,
    port: u16,
    rx: mpsc::Receiver<ForwardedConn>,
}

impl SshForwardListener {
    /// The port the server listens on (the one it picked when 0 was asked).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The next inbound connection; an error once the SSH connection is gone.
    pub async fn accept(&mut self) -> Result<ForwardedConn, SshError> {
        self.rx.recv().await.ok_or_else(|| SshError::SessionClosed { addr: self.session.addr.clone() })
    }
}

impl Drop for SshForwardListener {
    fn drop(&mut self) {
        if let Some(forwards) = self.session.forwards.upgrade() {
            lock(&forwards).remove(&u32::from(self.port));
        }
        if self.session.is_closed() {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let session = self.session.clone();
            let host = std::mem::take(&mut self.host);
            let port = u32::from(self.port);
            rt.spawn(async move {
                if let Err(e) = session.handle.cancel_tcpip_forward(host, port).await {
                    tracing::debug!("ssh: {}: cancel-tcpip-forward {port}: {e}", session.addr);
                }
            });
        }
    }
}

type Slot = Arc<Mutex<Option<Arc<SshSession>>>>;

/// Sessions shared per (node address, user).
#[derive(Default)]
pub struct SshPool {
    slots: StdMutex<HashMap<(String, String), Slot>>,
}

impl SshPool {
    pub fn new() -> SshPool {
        SshPool::default()
    }

    /// The live session to `addr`, connecting (via `dial`, which opens the
    /// transport to the node) when there is none. Concurrent callers wait for
    /// one handshake instead of each making their own.
    pub async fn session<D, F>(&self, addr: &str, cfg: &SshClientConfig, dial: D) -> Result<Arc<SshSession>, SshError>
    where
        D: FnOnce() -> F,
        F: Future<Output = std::io::Result<Conn>>,
    {
        let slot = lock(&self.slots).entry((addr.to_string(), cfg.identity())).or_default().clone();
        let mut current = slot.lock().await;
        if let Some(s) = current.as_ref().filter(|s| !s.is_closed()) {
            return Ok(s.clone());
        }
        let conn = dial().await.map_err(|source| SshError::Connect { addr: addr.into(), source })?;
        if let (Some(every), Conn::Tcp(s)) = (cfg.keepalive, &conn) {
            // A link that dies under a full send buffer stalls the SSH writer, and
            // with it the keepalives that would notice; the kernel's user timeout
            // fails the socket once sent data stays unacknowledged this long.
            set_tcp_user_timeout(s, every * (KEEPALIVE_MAX + 1));
        }
        let session = SshSession::connect(conn, addr, cfg).await?;
        *current = Some(session.clone());
        Ok(session)
    }

    /// Drops `session` from the pool if it is still the cached one.
    pub async fn forget(&self, session: &Arc<SshSession>, cfg: &SshClientConfig) {
        let slot = lock(&self.slots).get(&(session.addr.clone(), cfg.identity())).cloned();
        if let Some(slot) = slot {
            let mut current = slot.lock().await;
            if current.as_ref().is_some_and(|s| Arc::ptr_eq(s, session)) {
                *current = None;
            }
        }
    }

    /// `direct-tcpip` to `host:port` through the node at `addr`; a cached
    /// session that turns out dead is replaced once.
    pub async fn open_direct_tcpip<D, F>(
        &self,
        addr: &str,
        cfg: &SshClientConfig,
        dial: D,
        host: &str,
        port: u16,
    ) -> Result<SshStream, SshError>
    where
        D: Fn() -> F,
        F: Future<Output = std::io::Result<Conn>>,
    {
        let session = self.session(addr, cfg, &dial).await?;
        match session.open_direct_tcpip(host, port).await {
            Err(SshError::SessionClosed { .. }) => {
                self.forget(&session, cfg).await;
                let session = self.session(addr, cfg, &dial).await?;
                session.open_direct_tcpip(host, port).await
            }
            other => other,
        }
    }

    /// `tcpip-forward` through the node at `addr`, with the same one-retry
    /// rule as [`SshPool::open_direct_tcpip`].
    pub async fn tcpip_forward<D, F>(
        &self,
        addr: &str,
        cfg: &SshClientConfig,
        dial: D,
        host: &str,
        port: u16,
    ) -> Result<SshForwardListener, SshError>
    where
        D: Fn() -> F,
        F: Future<Output = std::io::Result<Conn>>,
    {
        let session = self.session(addr, cfg, &dial).await?;
        match session.tcpip_forward(host, port).await {
            Err(SshError::SessionClosed { .. }) => {
                self.forget(&session, cfg).await;
                let session = self.session(addr, cfg, &dial).await?;
                session.tcpip_forward(host, port).await
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_key() -> PublicKey {
        let kp = russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&[7u8; 32]);
        PrivateKey::from(kp).public_key().clone()
    }

    #[test]
    fn fingerprint_policy_accepts_with_or_without_prefix() {
        let key = test_key();
        let fp = fingerprint(&key);
        assert!(fp.starts_with("SHA256:"));
        verify_host_key("h:22", &HostKeyPolicy::Fingerprint(fp.clone()), &key).unwrap();
        let bare = fp.trim_start_matches("SHA256:").to_string();
        verify_host_key("h:22", &HostKeyPolicy::Fingerprint(bare), &key).unwrap();
        let err = verify_host_key("h:22", &HostKeyPolicy::Fingerprint("SHA256:xyz".into()), &key).unwrap_err();
        assert!(err.to_string().contains(&fp), "{err}");
    }

    #[test]
    fn known_hosts_accepts_new_then_refuses_changed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        let policy = HostKeyPolicy::KnownHosts(file.clone());
        let key = test_key();
        verify_host_key("127.0.0.1:2222", &policy, &key).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.lines().any(|l| l.starts_with("[127.0.0.1]:2222 ssh-ed25519 ")), "{text}");
        verify_host_key("127.0.0.1:2222", &policy, &key).unwrap();
        let other = PrivateKey::from(russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&[9u8; 32]));
        let err = verify_host_key("127.0.0.1:2222", &policy, other.public_key()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&fingerprint(other.public_key())) && msg.contains("known_hosts line "), "{msg}");
    }

    #[test]
    fn metadata_names() {
        let mut md = Metadata::default();
        md.insert("privateKeyFile", serde_yaml::Value::String("/k".into()));
        md.insert("passphrase", serde_yaml::Value::String("pp".into()));
        md.insert("knownHosts", serde_yaml::Value::String("/kh".into()));
        md.insert("keepalive", serde_yaml::Value::Bool(true));
        let cfg = SshClientConfig::from_metadata(Some(("u".into(), "".into())), &md).unwrap();
        assert_eq!(cfg.user, "u");
        assert_eq!(cfg.password, None);
        assert_eq!(cfg.private_key_file, Some(PathBuf::from("/k")));
        assert_eq!(cfg.passphrase.as_deref(), Some("pp"));
        assert_eq!(cfg.host_key, HostKeyPolicy::KnownHosts("/kh".into()));
        assert_eq!(cfg.keepalive, Some(Duration::from_secs(30)));
        md.insert("hostKeyFingerprint", serde_yaml::Value::String("SHA256:x".into()));
        assert!(SshClientConfig::from_metadata(None, &md).is_err());
    }

    #[test]
    fn debug_hides_secrets() {
        let cfg = SshClientConfig { password: Some("hunter2".into()), passphrase: Some("pp".into()), ..Default::default() };
        let s = format!("{cfg:?}");
        assert!(!s.contains("hunter2") && !s.contains("\"pp\""), "{s}");
    }
}
