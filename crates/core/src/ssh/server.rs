//! SSH server side: Portway's `sshd` service (`-L sshd://user:pass@:2222`).
//!
//! Serves only port forwarding, like GOST's (`go-gost/x: listener/sshd/listener.go`,
//! `handler/sshd/handler.go`): `direct-tcpip` channels are dialed through the
//! engine, `tcpip-forward` opens a listener whose connections come back as
//! `forwarded-tcpip` channels. Sessions (shell, exec, subsystems) are refused.
//! Unlike GOST, `cancel-tcpip-forward` is honoured.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::ssh_key::LineEnding;
use russh::keys::{PrivateKey, PublicKey};
use russh::server::{self, Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelOpenFailure, MethodKind, MethodSet};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use super::{fingerprint, SshError};
use crate::auth::Auther;
use crate::conn::{AsyncStream, Conn};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Key files are small; a huge one is a mistake, not a key.
const MAX_KEY_FILE: u64 = 1 << 20;
/// Relay buffer: one SSH packet's worth (russh's maximum packet is 32 KiB).
const RELAY_BUF: usize = 32 * 1024;

/// What the engine provides to the SSH server.
pub trait SshServerHooks: Send + Sync + 'static {
    /// Opens the connection a `direct-tcpip` channel asks for (through the
    /// service's chain, like GOST's handler router).
    fn dial(&self, host: String, port: u16) -> BoxFuture<'static, io::Result<Conn>>;

    /// Carries bytes between a channel and the connection it belongs to until
    /// both directions end. The engine overrides this to meter traffic.
    fn relay(&self, channel: Conn, peer: Conn) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let (mut a, mut b) = (channel, peer);
            if let Err(e) = tokio::io::copy_bidirectional_with_sizes(&mut a, &mut b, RELAY_BUF, RELAY_BUF).await {
                tracing::debug!("sshd: relay ended: {e}");
            }
        })
    }
}

/// Server settings of one `sshd` service.
impl std::fmt::Debug for SshServerConfig {
    // The host key is a secret: show only its public fingerprint.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshServerConfig")
            .field("host_key", &super::fingerprint(self.host_key.public_key()))
            .field("auther", &self.auther)
            .field("authorized_keys", &self.authorized_keys.len())
            .finish()
    }
}

#[derive(Clone)]
pub struct SshServerConfig {
    pub host_key: PrivateKey,
    /// Password users (the service's auther); `None` or empty: no password auth.
    pub auther: Option<Arc<Auther>>,
    /// Keys from `authorizedKeys`; empty: no public-key auth.
    pub authorized_keys: Vec<PublicKey>,
}

struct AuthPolicy {
    auther: Option<Arc<Auther>>,
    authorized_keys: Vec<PublicKey>,
}

impl AuthPolicy {
    /// GOST's rule (`listener/sshd/listener.go`): with neither passwords nor
    /// keys configured, clients need no authentication.
    fn is_open(&self) -> bool {
        self.auther.as_ref().is_none_or(|a| a.is_empty()) && self.authorized_keys.is_empty()
    }

    fn password_ok(&self, user: &str, password: &str) -> bool {
        self.auther.as_ref().is_some_and(|a| !a.is_empty() && a.authenticate(user, password))
    }

    fn key_ok(&self, key: &PublicKey) -> bool {
        self.authorized_keys.iter().any(|k| k.key_data() == key.key_data())
    }

    fn methods(&self) -> MethodSet {
        let mut kinds = Vec::new();
        if self.is_open() {
            kinds.push(MethodKind::None);
        }
        if self.auther.as_ref().is_some_and(|a| !a.is_empty()) {
            kinds.push(MethodKind::Password);
        }
        if !self.authorized_keys.is_empty() {
            kinds.push(MethodKind::PublicKey);
        }
        MethodSet::from(kinds.as_slice())
    }
}

/// An SSH server; [`SshServer::serve`] runs one client connection.
pub struct SshServer {
    config: Arc<server::Config>,
    auth: Arc<AuthPolicy>,
    hooks: Arc<dyn SshServerHooks>,
}

impl SshServer {
    pub fn new(cfg: SshServerConfig, hooks: Arc<dyn SshServerHooks>) -> SshServer {
        let auth = Arc::new(AuthPolicy { auther: cfg.auther, authorized_keys: cfg.authorized_keys });
        let config = server::Config {
            keys: vec![cfg.host_key],
            methods: auth.methods(),
            // OpenSSH probes with "none" first; only real failures are slowed.
            auth_rejection_time: Duration::from_secs(1),
            auth_rejection_time_initial: Some(Duration::ZERO),
            // Tunnels may idle for hours; dead peers are found by keepalives.
            inactivity_timeout: None,
            keepalive_interval: Some(Duration::from_secs(30)),
            keepalive_max: 3,
            nodelay: true,
            ..Default::default()
        };
        SshServer { config: Arc::new(config), auth, hooks }
    }

    /// Runs the SSH protocol on an accepted connection until it ends; every
    /// listener the client asked for is closed with it.
    pub async fn serve<S: AsyncStream + 'static>(&self, stream: S, peer: Option<SocketAddr>) -> Result<(), SshError> {
        let forwards = Arc::new(Forwards::default());
        let handler = ServerHandler {
            auth: self.auth.clone(),
            hooks: self.hooks.clone(),
            peer,
            forwards: forwards.clone(),
        };
        let result = match server::run_stream(self.config.clone(), stream, handler).await {
            Ok(running) => running.await,
            Err(e) => Err(e),
        };
        forwards.close_all();
        result
    }
}

/// Remote-forward listeners of one SSH connection, by (address, port).
#[derive(Default)]
struct Forwards(StdMutex<HashMap<(String, u32), AbortHandle>>);

impl Forwards {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u32), AbortHandle>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn close_all(&self) {
        for (_, task) in self.lock().drain() {
            task.abort();
        }
    }
}

impl Drop for Forwards {
    fn drop(&mut self) {
        self.close_all();
    }
}

struct ServerHandler {
    auth: Arc<AuthPolicy>,
    hooks: Arc<dyn SshServerHooks>,
    peer: Option<SocketAddr>,
    forwards: Arc<Forwards>,
}

fn reject() -> Auth {
    Auth::Reject { proceed_with_methods: None, partial_success: false }
}

impl server::Handler for ServerHandler {
    type Error = SshError;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, SshError> {
        Ok(if self.auth.is_open() { Auth::Accept } else { reject() })
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, SshError> {
        if self.auth.password_ok(user, password) {
            return Ok(Auth::Accept);
        }
        tracing::info!("sshd: {}: password of user \"{user}\" rejected", peer_name(self.peer));
        Ok(reject())
    }

    async fn auth_publickey_offered(&mut self, _user: &str, offer: PublicKeyOffer<'_>) -> Result<Auth, SshError> {
        Ok(if self.auth.key_ok(offer.public_key) { Auth::Accept } else { reject() })
    }

    async fn auth_publickey(&mut self, user: &str, key: VerifiedPublicKey<'_>) -> Result<Auth, SshError> {
        if self.auth.key_ok(key.public_key) {
            return Ok(Auth::Accept);
        }
        tracing::info!(
            "sshd: {}: key {} of user \"{user}\" is not in authorizedKeys",
            peer_name(self.peer),
            fingerprint(key.public_key)
        );
        Ok(reject())
    }

    async fn channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), SshError> {
        reply.reject(ChannelOpenFailure::AdministrativelyProhibited).await;
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), SshError> {
        let Ok(port) = u16::try_from(port_to_connect) else {
            reply.reject(ChannelOpenFailure::ConnectFailed).await;
            return Ok(());
        };
        let hooks = self.hooks.clone();
        let host = host_to_connect.to_string();
        let peer = peer_name(self.peer);
        // Dial off the session task: the SSH connection keeps serving other
        // channels while this target is being reached, and the client learns
        // of a failed dial as an open failure, as OpenSSH reports it.
        tokio::spawn(async move {
            match hooks.dial(host.clone(), port).await {
                Ok(target) => {
                    reply.accept().await;
                    hooks.relay(Conn::boxed(channel.into_stream()), target).await;
                }
                Err(e) => {
                    tracing::info!("sshd: {peer}: direct-tcpip to {host}:{port} failed: {e}");
                    reply.reject(ChannelOpenFailure::ConnectFailed).await;
                }
            }
        });
        Ok(())
    }

    async fn tcpip_forward(&mut self, address: &str, port: &mut u32, session: &mut Session) -> Result<bool, SshError> {
        let Ok(want) = u16::try_from(*port) else {
            return Ok(false);
        };
        let listener = match bind_forward(address, want).await {
            Ok(l) => l,
            Err(e) => {
                tracing::info!("sshd: {}: tcpip-forward {address}:{want} refused: {e}", peer_name(self.peer));
                return Ok(false);
            }
        };
        let bound = listener.local_addr().map(|a| a.port()).unwrap_or(want);
        if want == 0 {
            *port = u32::from(bound);
        }
        tracing::debug!("sshd: {}: listening on {address}:{bound} for the client", peer_name(self.peer));
        let task = tokio::spawn(accept_forwarded(
            listener,
            session.handle(),
            self.hooks.clone(),
            address.to_string(),
            u32::from(bound),
        ));
        if let Some(old) = self.forwards.lock().insert((address.to_string(), u32::from(bound)), task.abort_handle()) {
            old.abort();
        }
        Ok(true)
    }

    async fn cancel_tcpip_forward(&mut self, address: &str, port: u32, _session: &mut Session) -> Result<bool, SshError> {
        match self.forwards.lock().remove(&(address.to_string(), port)) {
            Some(task) => {
                task.abort();
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

fn peer_name(peer: Option<SocketAddr>) -> String {
    peer.map_or_else(|| "client".into(), |p| p.to_string())
}

/// Binds what a `tcpip-forward` asks for. OpenSSH sends "localhost" for a bare
/// `-R port:…` and "" or "*" for all interfaces (RFC 4254 §7.1).
async fn bind_forward(address: &str, port: u16) -> io::Result<TcpListener> {
    match address {
        "" | "*" | "0.0.0.0" => TcpListener::bind(("0.0.0.0", port)).await,
        "localhost" => TcpListener::bind(("127.0.0.1", port)).await,
        "::" => TcpListener::bind(("::", port)).await,
        host => TcpListener::bind((host, port)).await,
    }
}

async fn accept_forwarded(
    listener: TcpListener,
    handle: server::Handle,
    hooks: Arc<dyn SshServerHooks>,
    address: String,
    port: u32,
) {
    loop {
        let (tcp, from) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Per-connection accept errors (EMFILE, aborted handshakes) are
                // transient; back off briefly instead of spinning.
                tracing::debug!("sshd: accept on {address}:{port}: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (handle, hooks, address) = (handle.clone(), hooks.clone(), address.clone());
        tokio::spawn(forward_one(tcp, from, handle, hooks, address, port));
    }
}

async fn forward_one(
    tcp: TcpStream,
    from: SocketAddr,
    handle: server::Handle,
    hooks: Arc<dyn SshServerHooks>,
    address: String,
    port: u32,
) {
    let _ = tcp.set_nodelay(true);
    let open = handle.channel_open_forwarded_tcpip(address, port, from.ip().to_string(), u32::from(from.port()));
    match open.await {
        Ok(channel) => hooks.relay(Conn::boxed(channel.into_stream()), Conn::Tcp(tcp)).await,
        Err(e) => tracing::debug!("sshd: forwarded-tcpip for {from} refused by the client: {e}"),
    }
}

/// Reads the host key at `path`, or makes an ed25519 key there (mode 0600) on
/// first use, so clients see the same host key across restarts.
pub fn load_or_generate_host_key(path: &Path) -> Result<PrivateKey, SshError> {
    let file = path.display().to_string();
    let err = |detail: String| SshError::HostKeyFile { file: file.clone(), detail };
    match read_small(path) {
        Ok(text) => return russh::keys::decode_secret_key(&text, None).map_err(|e| err(e.to_string())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e.to_string())),
    }
    let seed: [u8; 32] = rand::random();
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    let text = key.to_openssh(LineEnding::LF).map_err(|e| err(e.to_string()))?;
    match write_private(path, text.as_bytes()) {
        Ok(()) => {
            tracing::info!("sshd: new host key {} written to {file}", fingerprint(key.public_key()));
            Ok(key)
        }
        // Another service made it first; use theirs so both agree.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let text = read_small(path).map_err(|e| err(e.to_string()))?;
            russh::keys::decode_secret_key(&text, None).map_err(|e| err(e.to_string()))
        }
        Err(e) => Err(err(e.to_string())),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn read_small(path: &Path) -> io::Result<String> {
    use std::io::Read;
    let f = std::fs::File::open(path)?;
    let mut text = String::new();
    f.take(MAX_KEY_FILE + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_KEY_FILE {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "file is larger than 1 MiB"));
    }
    Ok(text)
}

/// Reads an OpenSSH `authorized_keys` file (GOST's `authorizedKeys`).
pub fn load_authorized_keys(path: &Path) -> Result<Vec<PublicKey>, SshError> {
    let file = path.display().to_string();
    let text = read_small(path).map_err(|e| SshError::AuthorizedKeys { file: file.clone(), detail: e.to_string() })?;
    let keys = parse_authorized_keys(&text);
    if keys.is_empty() {
        return Err(SshError::AuthorizedKeys { file, detail: "no usable public key in it".into() });
    }
    Ok(keys)
}

/// Keys of an `authorized_keys` text: `[options] type base64 [comment]` per
/// line. Lines that do not parse are skipped, as Go's `ssh.ParseAuthorizedKey`
/// (which GOST uses) skips them.
pub fn parse_authorized_keys(text: &str) -> Vec<PublicKey> {
    text.lines().filter_map(parse_authorized_line).collect()
}

fn parse_authorized_line(line: &str) -> Option<PublicKey> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    // Options may come first and may hold spaces inside quotes, so look for
    // the first "type base64" pair that decodes rather than parsing options.
    let words: Vec<&str> = line.split_whitespace().collect();
    words.windows(2).find_map(|pair| match pair {
        [kind, blob] if looks_like_key_type(kind) => {
            russh::keys::parse_public_key_base64(blob).ok().filter(|k| k.algorithm().as_str() == *kind)
        }
        _ => None,
    })
}

fn looks_like_key_type(word: &str) -> bool {
    ["ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-", "rsa-sha2-"].iter().any(|p| word.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::PublicKeyBase64;

    fn key(seed: u8) -> PrivateKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
    }

    #[test]
    fn authorized_keys_with_options_comments_and_junk() {
        let a = key(1).public_key().public_key_base64();
        let b = key(2).public_key().public_key_base64();
        let text = format!(
            "# comment\n\nssh-ed25519 {a} alice@host\nfrom=\"10.0.0.1\",no-pty ssh-ed25519 {b} bob\nssh-ed25519 !!!notbase64\ngarbage line\n"
        );
        let keys = parse_authorized_keys(&text);
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].key_data(), key(1).public_key().key_data());
        assert_eq!(keys[1].key_data(), key(2).public_key().key_data());
    }

    #[test]
    fn authorized_keys_type_must_match_blob() {
        let a = key(1).public_key().public_key_base64();
        assert!(parse_authorized_keys(&format!("ssh-rsa {a}\n")).is_empty());
    }

    #[test]
    fn empty_authorized_keys_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ak");
        std::fs::write(&p, "# nothing\n").unwrap();
        let err = load_authorized_keys(&p).unwrap_err().to_string();
        assert!(err.contains("no usable public key"), "{err}");
    }

    #[test]
    fn host_key_is_generated_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub").join("host_ed25519");
        let k1 = load_or_generate_host_key(&p).unwrap();
        let k2 = load_or_generate_host_key(&p).unwrap();
        assert_eq!(k1.public_key().key_data(), k2.public_key().key_data());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn corrupt_host_key_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hk");
        std::fs::write(&p, "not a key").unwrap();
        let err = load_or_generate_host_key(&p).unwrap_err().to_string();
        assert!(err.starts_with("sshd: host key file") && err.contains("hk"), "{err}");
    }

    #[test]
    fn open_policy_only_without_credentials() {
        let open = AuthPolicy { auther: None, authorized_keys: vec![] };
        assert!(open.is_open());
        let mut a = Auther::new();
        a.add("u", "p");
        let pw = AuthPolicy { auther: Some(Arc::new(a)), authorized_keys: vec![] };
        assert!(!pw.is_open());
        assert!(pw.password_ok("u", "p"));
        assert!(!pw.password_ok("u", "x"));
        let keys = AuthPolicy { auther: None, authorized_keys: vec![key(1).public_key().clone()] };
        assert!(!keys.is_open() && keys.key_ok(key(1).public_key()) && !keys.key_ok(key(2).public_key()));
    }
}
