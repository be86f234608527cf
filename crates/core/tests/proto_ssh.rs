//! SSH tunnels against real OpenSSH on loopback: Portway's client against a
//! private `sshd` (Debian `openssh-server`), and OpenSSH's `ssh` client
//! (`openssh-client`, `sshpass`) against Portway's server. Every process is
//! started by the test and killed by its PID.

mod common;

use common::peers::ChildGuard;
use common::sshd::{current_user, keygen, libc_kill, openssh_fingerprint, setup, Sshd};
use common::{free_port, tcp_backend, T};
use portway_core::conn::Conn;
use portway_core::ssh::client::{HostKeyPolicy, SshClientConfig, SshPool, SshSession};
use portway_core::ssh::server::{load_authorized_keys, load_or_generate_host_key, BoxFuture, SshServer, SshServerConfig, SshServerHooks};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

fn key_cfg(key: &Path) -> SshClientConfig {
    SshClientConfig { user: current_user(), private_key_file: Some(key.to_path_buf()), ..Default::default() }
}

fn dialer(addr: String) -> impl Fn() -> BoxFuture<'static, std::io::Result<Conn>> {
    move || {
        let addr = addr.clone();
        Box::pin(async move { TcpStream::connect(addr).await.map(Conn::Tcp) })
    }
}

/// Reads the backend's greeting line, then checks the echo of `data`.
async fn hello_echo<S: AsyncRead + AsyncWrite + Unpin>(s: S, name: &str, data: &[u8]) {
    let mut r = BufReader::new(s);
    let mut line = String::new();
    tokio::time::timeout(T, r.read_line(&mut line)).await.expect("greeting in time").unwrap();
    assert_eq!(line, format!("{name}\n"));
    r.get_mut().write_all(data).await.unwrap();
    let mut back = vec![0u8; data.len()];
    tokio::time::timeout(T, r.read_exact(&mut back)).await.expect("echo in time").unwrap();
    assert_eq!(back, data);
}

#[tokio::test]
async fn client_direct_tcpip_several_channels_on_one_session() {
    let (dir, key) = setup();
    let sshd = Sshd::start(dir.path(), free_port()).await;
    let backend = tcp_backend("127.0.0.1", "backend").await;
    let pool = SshPool::new();
    let cfg = key_cfg(&key);
    let s1 = pool.session(&sshd.addr(), &cfg, dialer(sshd.addr())).await.unwrap();
    let s2 = pool.session(&sshd.addr(), &cfg, dialer(sshd.addr())).await.unwrap();
    assert!(Arc::ptr_eq(&s1, &s2), "one SSH connection per node address");
    let port = backend.addr.port();
    let mut tasks = Vec::new();
    for i in 0..4u8 {
        let s = s1.clone();
        tasks.push(tokio::spawn(async move {
            let st = s.open_direct_tcpip("127.0.0.1", port).await.unwrap();
            let data: Vec<u8> = (0..100_000u32).map(|n| (n as u8) ^ i).collect();
            hello_echo(st, "backend", &data).await;
        }));
    }
    for t in tasks {
        tokio::time::timeout(T, t).await.expect("channel done in time").unwrap();
    }
    // Hostnames are passed to the server unresolved.
    let st = s1.open_direct_tcpip("localhost", port).await.unwrap();
    hello_echo(st, "backend", b"by name").await;
    // A target nobody listens on is an open failure the user can read.
    let dead = free_port();
    let err = s1.open_direct_tcpip("127.0.0.1", dead).await.err().expect("refused").to_string();
    assert!(err.contains(&format!("refused to open a connection to 127.0.0.1:{dead}")), "{err}");
    drop(sshd);
}

#[tokio::test]
async fn client_tcpip_forward_brings_connections_back() {
    let (dir, key) = setup();
    let sshd = Sshd::start(dir.path(), free_port()).await;
    let pool = SshPool::new();
    let mut l = pool.tcpip_forward(&sshd.addr(), &key_cfg(&key), dialer(sshd.addr()), "127.0.0.1", 0).await.unwrap();
    assert_ne!(l.port(), 0);
    let mut outside = TcpStream::connect(("127.0.0.1", l.port())).await.unwrap();
    outside.write_all(b"ping").await.unwrap();
    let fwd = tokio::time::timeout(T, l.accept()).await.expect("forwarded in time").unwrap();
    assert!(fwd.originator.starts_with("127.0.0.1:"), "{}", fwd.originator);
    let mut st = fwd.stream;
    let mut buf = [0u8; 4];
    tokio::time::timeout(T, st.read_exact(&mut buf)).await.unwrap().unwrap();
    assert_eq!(&buf, b"ping");
    st.write_all(b"pong").await.unwrap();
    tokio::time::timeout(T, outside.read_exact(&mut buf)).await.unwrap().unwrap();
    assert_eq!(&buf, b"pong");
}

#[tokio::test]
async fn client_wrong_key_is_refused_with_a_readable_error() {
    let (dir, _key) = setup();
    let sshd = Sshd::start(dir.path(), free_port()).await;
    let other = dir.path().join("other_key");
    keygen(&other);
    let conn = TcpStream::connect(sshd.addr()).await.unwrap();
    let err = SshSession::connect(conn, &sshd.addr(), &key_cfg(&other)).await.err().expect("refused").to_string();
    let user = current_user();
    assert!(err.contains(&format!("authentication failed (server {} rejected user \"{user}\"", sshd.addr())), "{err}");
    assert!(err.contains("tried publickey"), "{err}");
}

#[tokio::test]
async fn client_known_hosts_accepts_new_and_refuses_changed_key() {
    let (dir, key) = setup();
    let sshd = Sshd::start(dir.path(), free_port()).await;
    let known = dir.path().join("known_hosts");
    let cfg = SshClientConfig { host_key: HostKeyPolicy::KnownHosts(known.clone()), ..key_cfg(&key) };
    let conn = TcpStream::connect(sshd.addr()).await.unwrap();
    SshSession::connect(conn, &sshd.addr(), &cfg).await.unwrap();
    let text = std::fs::read_to_string(&known).unwrap();
    assert!(text.contains(&format!("[127.0.0.1]:{} ssh-ed25519 ", sshd.port)), "{text}");

    // Pretend the server had a different key when we first met it.
    let fake = dir.path().join("fake_host");
    keygen(&fake);
    let fake_pub = std::fs::read_to_string(dir.path().join("fake_host.pub")).unwrap();
    let fake_line = fake_pub.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    std::fs::write(&known, format!("[127.0.0.1]:{} {fake_line}\n", sshd.port)).unwrap();
    let conn = TcpStream::connect(sshd.addr()).await.unwrap();
    let err = SshSession::connect(conn, &sshd.addr(), &cfg).await.err().expect("refused").to_string();
    let real = openssh_fingerprint(&dir.path().join("host_key.pub"));
    assert!(err.contains("host key of") && err.contains("changed") && err.contains(&real), "{err}");

    // Pinning the real fingerprint works, a wrong one does not.
    let pinned = SshClientConfig { host_key: HostKeyPolicy::Fingerprint(real.clone()), ..key_cfg(&key) };
    let conn = TcpStream::connect(sshd.addr()).await.unwrap();
    SshSession::connect(conn, &sshd.addr(), &pinned).await.unwrap();
    let wrong = openssh_fingerprint(&dir.path().join("fake_host.pub"));
    let pinned = SshClientConfig { host_key: HostKeyPolicy::Fingerprint(wrong), ..key_cfg(&key) };
    let conn = TcpStream::connect(sshd.addr()).await.unwrap();
    let err = SshSession::connect(conn, &sshd.addr(), &pinned).await.err().expect("refused").to_string();
    assert!(err.contains(&real), "{err}");
}

#[tokio::test]
async fn client_reconnects_after_sshd_restart() {
    let (dir, key) = setup();
    let port = free_port();
    let mut sshd = Sshd::start(dir.path(), port).await;
    let backend = tcp_backend("127.0.0.1", "b").await;
    let pool = SshPool::new();
    let cfg = key_cfg(&key);
    let bport = backend.addr.port();
    let st = pool.open_direct_tcpip(&sshd.addr(), &cfg, dialer(sshd.addr()), "127.0.0.1", bport).await.unwrap();
    hello_echo(st, "b", b"one").await;
    let first = pool.session(&sshd.addr(), &cfg, dialer(sshd.addr())).await.unwrap();
    sshd.stop();
    // While sshd is down, opening fails with a readable error.
    let err = pool.open_direct_tcpip(&sshd.addr(), &cfg, dialer(sshd.addr()), "127.0.0.1", bport).await.err();
    let err = err.expect("sshd is down").to_string();
    assert!(err.contains(&format!("ssh: cannot reach 127.0.0.1:{port}")), "{err}");
    let sshd = Sshd::start(&sshd.dir.clone(), port).await;
    let st = tokio::time::timeout(T, pool.open_direct_tcpip(&sshd.addr(), &cfg, dialer(sshd.addr()), "127.0.0.1", bport))
        .await
        .expect("reconnect in time")
        .unwrap();
    hello_echo(st, "b", b"two").await;
    let second = pool.session(&sshd.addr(), &cfg, dialer(sshd.addr())).await.unwrap();
    assert!(!Arc::ptr_eq(&first, &second) && first.is_closed());
}

/// Engine stand-in: dials targets directly.
struct DirectHooks;
impl SshServerHooks for DirectHooks {
    fn dial(&self, host: String, port: u16) -> BoxFuture<'static, std::io::Result<Conn>> {
        Box::pin(async move { TcpStream::connect((host.as_str(), port)).await.map(Conn::Tcp) })
    }
}

struct Server {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}
impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn portway_sshd(dir: &Path, password: Option<(&str, &str)>) -> Server {
    let host_key = load_or_generate_host_key(&dir.join("portway_host_key")).unwrap();
    let auther = password.map(|(u, p)| {
        let mut a = portway_core::auth::Auther::new();
        a.add(u, p);
        Arc::new(a)
    });
    let authorized_keys = load_authorized_keys(&dir.join("authorized_keys")).unwrap();
    let server = Arc::new(SshServer::new(SshServerConfig { host_key, auther, authorized_keys }, Arc::new(DirectHooks)));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut sessions = tokio::task::JoinSet::new();
        loop {
            let Ok((s, peer)) = l.accept().await else { return };
            let server = server.clone();
            sessions.spawn(async move {
                let _ = server.serve(s, Some(peer)).await;
            });
        }
    });
    Server { addr, task }
}

fn ssh_args(key: &Path, port: u16) -> Vec<String> {
    let mut v: Vec<String> = [
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ExitOnForwardFailure=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-F",
        "/dev/null",
        "-p",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(port.to_string());
    v.push("-i".into());
    v.push(key.display().to_string());
    v
}

fn spawn(program: &str, args: &[String]) -> ChildGuard {
    ChildGuard(
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program}: {e}")),
    )
}

#[tokio::test]
async fn openssh_local_forward_through_portway_sshd() {
    let (dir, key) = setup();
    let server = portway_sshd(dir.path(), None).await;
    let backend = tcp_backend("127.0.0.1", "local").await;
    let lport = free_port();
    let mut args = ssh_args(&key, server.addr.port());
    args.extend(["-o".into(), "BatchMode=yes".into(), "-N".into(), "-L".into()]);
    args.push(format!("{lport}:127.0.0.1:{}", backend.addr.port()));
    args.push(format!("{}@127.0.0.1", current_user()));
    let mut ssh = spawn("ssh", &args);
    let laddr: SocketAddr = format!("127.0.0.1:{lport}").parse().unwrap();
    common::peers::wait_listening(laddr, &mut ssh).await;
    let data: Vec<u8> = (0..200_000u32).map(|n| n as u8).collect();
    hello_echo(TcpStream::connect(laddr).await.unwrap(), "local", &data).await;
}

#[tokio::test]
async fn openssh_remote_forward_through_portway_sshd() {
    let (dir, key) = setup();
    let server = portway_sshd(dir.path(), None).await;
    let backend = tcp_backend("127.0.0.1", "remote").await;
    let rport = free_port();
    let mut args = ssh_args(&key, server.addr.port());
    args.extend(["-o".into(), "BatchMode=yes".into(), "-N".into(), "-R".into()]);
    args.push(format!("127.0.0.1:{rport}:127.0.0.1:{}", backend.addr.port()));
    args.push(format!("{}@127.0.0.1", current_user()));
    let mut ssh = spawn("ssh", &args);
    let raddr: SocketAddr = format!("127.0.0.1:{rport}").parse().unwrap();
    common::peers::wait_listening(raddr, &mut ssh).await;
    hello_echo(TcpStream::connect(raddr).await.unwrap(), "remote", b"through -R").await;
    // The listener belongs to the SSH connection: it closes with it.
    drop(ssh);
    let closed = tokio::time::timeout(T, async {
        while TcpStream::connect(raddr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(closed.is_ok(), "remote listener still open after the ssh client left");
}

#[tokio::test]
async fn openssh_password_auth_and_no_shell() {
    let (dir, key) = setup();
    let server = portway_sshd(dir.path(), Some(("alice", "s3cret"))).await;
    let backend = tcp_backend("127.0.0.1", "pw").await;
    let lport = free_port();
    let mut args = vec!["-p".to_string(), "s3cret".into(), "ssh".into()];
    args.extend(ssh_args(&key, server.addr.port()));
    args.extend(["-o".into(), "PubkeyAuthentication=no".into(), "-o".into(), "PreferredAuthentications=password".into()]);
    args.extend(["-N".into(), "-L".into(), format!("{lport}:127.0.0.1:{}", backend.addr.port()), "alice@127.0.0.1".into()]);
    let mut ssh = spawn("sshpass", &args);
    let laddr: SocketAddr = format!("127.0.0.1:{lport}").parse().unwrap();
    common::peers::wait_listening(laddr, &mut ssh).await;
    hello_echo(TcpStream::connect(laddr).await.unwrap(), "pw", b"with a password").await;

    // A wrong password is refused.
    let mut bad = vec!["-p".to_string(), "wrong".into(), "ssh".into()];
    bad.extend(ssh_args(&key, server.addr.port()));
    bad.extend(["-o".into(), "PubkeyAuthentication=no".into(), "-o".into(), "NumberOfPasswordPrompts=1".into()]);
    bad.extend(["alice@127.0.0.1".into(), "true".into()]);
    let out = run(Command::new("sshpass").args(&bad)).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"), "{out:?}");

    // Shell/exec is refused even with the right credentials.
    let mut exec = vec!["-p".to_string(), "s3cret".into(), "ssh".into()];
    exec.extend(ssh_args(&key, server.addr.port()));
    exec.extend(["-o".into(), "PubkeyAuthentication=no".into(), "alice@127.0.0.1".into(), "echo".into(), "hi".into()]);
    let out = run(Command::new("sshpass").args(&exec)).await;
    assert!(!out.status.success());
    // (LogLevel=ERROR keeps ssh's "open failed" line quiet; the exit code and
    // the missing output are what the user sees.)
    assert!(!String::from_utf8_lossy(&out.stdout).contains("hi"));
}

/// Runs a short command with a bounded wait; killed by PID if it overruns.
async fn run(cmd: &mut Command) -> std::process::Output {
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let waited = tokio::time::timeout(T, tokio::task::spawn_blocking(move || child.wait_with_output())).await;
    match waited {
        Ok(r) => r.unwrap().unwrap(),
        Err(_) => {
            libc_kill(pid as i32);
            panic!("command did not finish within {T:?}");
        }
    }
}

#[tokio::test]
async fn portway_client_against_portway_server() {
    let (dir, key) = setup();
    let server = portway_sshd(dir.path(), Some(("bob", "pw"))).await;
    let backend = tcp_backend("127.0.0.1", "pp").await;
    let addr = server.addr.to_string();
    let cfg = SshClientConfig { user: "bob".into(), password: Some("pw".into()), ..Default::default() };
    let pool = SshPool::new();
    let st = pool.open_direct_tcpip(&addr, &cfg, dialer(addr.clone()), "127.0.0.1", backend.addr.port()).await.unwrap();
    hello_echo(st, "pp", b"password session").await;
    // Public key works too, and a wrong password says who was refused.
    let kcfg = SshClientConfig { user: "bob".into(), ..key_cfg(&key) };
    let conn = TcpStream::connect(&addr).await.unwrap();
    SshSession::connect(conn, &addr, &kcfg).await.unwrap();
    let bad = SshClientConfig { user: "bob".into(), password: Some("nope".into()), ..Default::default() };
    let conn = TcpStream::connect(&addr).await.unwrap();
    let err = SshSession::connect(conn, &addr, &bad).await.err().expect("refused").to_string();
    assert!(err.contains("rejected user \"bob\"") && !err.contains("nope"), "{err}");

    // Remote forwarding with port 0 gets the bound port back.
    let session = pool.session(&addr, &cfg, dialer(addr.clone())).await.unwrap();
    let mut l = session.tcpip_forward("127.0.0.1", 0).await.unwrap();
    let mut outside = TcpStream::connect(("127.0.0.1", l.port())).await.unwrap();
    let fwd = tokio::time::timeout(T, l.accept()).await.unwrap().unwrap();
    let mut st = fwd.stream;
    outside.write_all(b"in").await.unwrap();
    let mut buf = [0u8; 2];
    tokio::time::timeout(T, st.read_exact(&mut buf)).await.unwrap().unwrap();
    assert_eq!(&buf, b"in");
    st.write_all(b"ok").await.unwrap();
    tokio::time::timeout(T, outside.read_exact(&mut buf)).await.unwrap().unwrap();
    assert_eq!(&buf, b"ok");
    // cancel-tcpip-forward (sent when the listener is dropped) closes the port.
    let port = l.port();
    drop(l);
    let closed = tokio::time::timeout(T, async {
        while TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(closed.is_ok(), "forwarded port {port} still open after cancel");
}

// ---- The seed's SSH examples through the engine (addresses on loopback) ----

fn engine_cmd(services: &[String], nodes: &[String]) -> portway_core::config::Config {
    match portway_core::config::build_from_cmd(services, nodes) {
        Ok(c) => c,
        Err(e) => panic!("{services:?} {nodes:?}: {e}"),
    }
}

fn running(e: &portway_core::Engine, name: &str) -> SocketAddr {
    let st = e.service_status(name).expect("status");
    match st.listening.first() {
        Some(a) => *a,
        None => panic!("{name} not listening: {:?}", st.state),
    }
}

/// Seed: `gost -L=tcp://:8080/192.168.1.1:80 -F sshd://user:pass@192.168.1.2:22`
/// (key auth here: the CI user has no password) — many connections, one SSH session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_tcp_forwarding_through_an_openssh_hop() {
    let (dir, key) = setup();
    let port = free_port();
    let _sshd = Sshd::start(dir.path(), port).await;
    let backend = tcp_backend("127.0.0.1", "behind-ssh").await;
    let e = common::engine();
    let node = format!("sshd://{}@127.0.0.1:{port}?privateKeyFile={}", current_user(), key.display());
    e.apply(engine_cmd(&[format!("tcp://127.0.0.1:0/{}", backend.addr)], std::slice::from_ref(&node))).await;
    let a = running(&e, "service-0");
    for _ in 0..3 {
        let (name, mut s) = common::tcp_hello(a).await.expect("through the ssh hop");
        assert_eq!(name, "behind-ssh");
        common::echo(&mut s, &vec![5u8; 50_000]).await.expect("echo");
    }
    let r = e.probe("service-0", None).await.expect("probe");
    assert!(r.ok, "{r:?}");
    // A wrong key is named by the probe on the ssh hop.
    let other = dir.path().join("other_key");
    keygen(&other);
    let bad = format!("sshd://{}@127.0.0.1:{port}?privateKeyFile={}", current_user(), other.display());
    let cfg = engine_cmd(&[format!("tcp://127.0.0.1:0/{}", backend.addr)], &[bad]);
    let r = portway_core::engine::probe_config(&cfg, "service-0", None).await.expect("probe");
    assert!(!r.ok);
    let why = r.hops[0].error.clone().unwrap_or_default();
    assert!(why.contains("authentication failed"), "{r:?}");
}

/// Seed: `gost -L=rtcp://:8080/192.168.1.1:80 -F sshd://user:pass@192.168.1.2:22`:
/// the port opens on the OpenSSH host (tcpip-forward).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_rtcp_through_an_openssh_hop() {
    let (dir, key) = setup();
    let port = free_port();
    let _sshd = Sshd::start(dir.path(), port).await;
    let backend = tcp_backend("127.0.0.1", "private").await;
    let rport = free_port();
    let e = common::engine();
    let node = format!("sshd://{}@127.0.0.1:{port}?privateKeyFile={}", current_user(), key.display());
    e.apply(engine_cmd(&[format!("rtcp://127.0.0.1:{rport}/{}", backend.addr)], &[node])).await;
    let addr: SocketAddr = format!("127.0.0.1:{rport}").parse().unwrap();
    let deadline = tokio::time::Instant::now() + T;
    loop {
        if let Ok((name, _)) = common::tcp_hello(addr).await {
            assert_eq!(name, "private");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "sshd never opened {rport}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Seed: `gost -L sshd://user:pass@:22` — here on a loopback port, OpenSSH's
/// `ssh -N -L` through Portway's SSH service, with the connection listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_portway_sshd_service_serves_openssh_local_forwarding() {
    let (dir, key) = setup();
    let backend = tcp_backend("127.0.0.1", "via-portway-sshd").await;
    let sport = free_port();
    let e = common::engine();
    let svc = format!(
        "sshd://127.0.0.1:{sport}?authorizedKeys={}&privateKeyFile={}",
        dir.path().join("authorized_keys").display(),
        dir.path().join("portway_host_key").display()
    );
    e.apply(engine_cmd(&[svc], &[])).await;
    running(&e, "service-0");
    let lport = free_port();
    let mut args = ssh_args(&key, sport);
    args.extend(["-N".into(), "-L".into(), format!("127.0.0.1:{lport}:{}", backend.addr), format!("{}@127.0.0.1", current_user())]);
    let _ssh = spawn("ssh", &args);
    let addr: SocketAddr = format!("127.0.0.1:{lport}").parse().unwrap();
    let deadline = tokio::time::Instant::now() + T;
    let mut s = loop {
        if let Ok((name, s)) = common::tcp_hello(addr).await {
            assert_eq!(name, "via-portway-sshd");
            break s;
        }
        assert!(tokio::time::Instant::now() < deadline, "ssh -L never forwarded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    common::echo(&mut s, b"ping over ssh").await.expect("echo");
    assert!(e.connections().iter().any(|c| c.service == "service-0" && c.node == "sshd"), "{:?}", e.connections());
    assert!(dir.path().join("portway_host_key").exists(), "host key generated and kept");
}
