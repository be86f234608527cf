//! Bad input for SSH hops and remote forwarding, against real OpenSSH `sshd`
//! and Portway's own SSH service on loopback: a server that refuses
//! `tcpip-forward`, a port taken on the remote side, and the hop killed (by
//! PID) in the middle of a transfer. What is asserted is what a user sees: the
//! rule's latest error, bytes through the tunnel, and that nothing piles up
//! (file descriptors, SSH connections) while the engine retries.
//!
//! The tests of this file run one at a time: the descriptor count is the whole
//! test process's.

mod common;
use common::sshd::{current_user, setup, Sshd};
use common::*;
use portway_core::config::{build_from_cmd, Config};
use portway_core::stats::ServiceState;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Remote binds wait out the backoff (1 s, 2 s, 4 s, 5 s…) after a failure.
const REBIND: Duration = Duration::from_secs(15);

fn cmd(services: &[String], nodes: &[String]) -> Config {
    match build_from_cmd(services, nodes) {
        Ok(c) => c,
        Err(e) => panic!("{services:?} {nodes:?}: {e}"),
    }
}

fn sshd_node(port: u16, key: &std::path::Path) -> String {
    format!("sshd://{}@127.0.0.1:{port}?privateKeyFile={}", current_user(), key.display())
}

fn stats(e: &portway_core::Engine, name: &str) -> portway_core::stats::ServiceStats {
    e.stats_now().into_iter().find(|s| s.service == name).unwrap_or_else(|| panic!("no stats for {name}"))
}

fn last_error(e: &portway_core::Engine, name: &str) -> String {
    stats(e, name).last_error.map(|(_, m)| m).unwrap_or_default()
}

/// Polls the rule's latest error until `pred` holds; bounded by `within`.
async fn wait_error(e: &portway_core::Engine, name: &str, within: Duration, pred: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let last = last_error(e, name);
        if pred(&last) {
            return last;
        }
        assert!(tokio::time::Instant::now() < deadline, "{name}: expected error not shown within {within:?}; latest: {last:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Greeting from the backend behind `addr`, retrying until the port serves.
async fn hello_within(addr: SocketAddr, within: Duration) -> (String, TcpStream) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Ok(x) = tcp_hello(addr).await {
            return x;
        }
        assert!(tokio::time::Instant::now() < deadline, "{addr} never served within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

fn v4(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Keeps a transfer going on `s` (the backend echoes) and returns once
/// `at_least` bytes have come back, leaving the writer running.
async fn start_transfer(s: TcpStream, at_least: usize) -> (tokio::net::tcp::OwnedReadHalf, common::peers::Task) {
    let (mut r, mut w) = s.into_split();
    let writer = tokio::spawn(async move {
        let chunk = vec![0x5au8; 16 * 1024];
        while w.write_all(&chunk).await.is_ok() {}
    });
    let mut got = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while got < at_least {
        let n = tokio::time::timeout(T, r.read(&mut buf)).await.expect("bytes flow before the cut").expect("read");
        assert!(n > 0, "transfer ended before the cut");
        got += n;
    }
    (r, common::peers::Task(writer))
}

/// After the hop is gone, the client's connection must end (EOF or an
/// error), not hang: bounded by `T`.
async fn ends_within_t(mut r: tokio::net::tcp::OwnedReadHalf) {
    let mut buf = vec![0u8; 64 * 1024];
    let ended = tokio::time::timeout(T, async {
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the client's connection still open {T:?} after the hop was killed");
}

/// OpenSSH with `AllowTcpForwarding local`: `tcpip-forward` is refused, local
/// forwarding through the same server still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssh_refusing_remote_forwarding_is_shown_retried_and_leaks_nothing() {
    let _serial = SERIAL.lock().await;
    let (dir, key) = setup();
    let sport = free_port();
    let sshd = Sshd::start_with(dir.path(), sport, "AllowTcpForwarding local\n").await;
    let backend = tcp_backend("127.0.0.1", "private").await;
    let rport = free_port();
    let e = engine();
    e.apply(cmd(
        &[format!("rtcp://127.0.0.1:{rport}/{}", backend.addr), format!("tcp://127.0.0.1:0/{}", backend.addr)],
        &[sshd_node(sport, &key)],
    ))
    .await;
    let refused = format!("ssh: server 127.0.0.1:{sport} refused to listen on 127.0.0.1:{rport} for remote forwarding");
    let first = wait_error(&e, "service-0", T, |m| m.contains(&refused)).await;
    assert!(first.contains("retrying in 1s"), "{first}");
    assert!(matches!(e.service_status("service-0").expect("status").state, ServiceState::Running));

    // The other rule shares the SSH connection and keeps working.
    let (name, mut s) = tcp_hello(listening(&e, "service-1")).await.expect("local forwarding through the same sshd");
    assert_eq!(name, "private");
    echo(&mut s, &vec![1u8; 64 * 1024]).await.expect("echo");
    drop(s);

    // Retries follow the backoff and reuse the one SSH connection.
    let errors = stats(&e, "service-0").errors;
    let (fds, conns) = (open_fds(), sshd.connections());
    assert_eq!(conns, 1, "one SSH connection for both rules");
    wait_error(&e, "service-0", T, |m| m.contains(&refused) && m.contains("retrying in 2s")).await;
    wait_error(&e, "service-0", T, |m| m.contains(&refused) && m.contains("retrying in 4s")).await;
    let retried = stats(&e, "service-0").errors - errors;
    assert!(retried >= 2, "retries counted: {retried}");
    let (fds_after, conns_after) = (open_fds(), sshd.connections());
    assert_eq!(conns_after, 1, "retries opened new SSH connections");
    assert!(fds_after <= fds + 1, "file descriptors grew across {retried} retries: {fds} → {fds_after}");
    // Nothing listens on the port that was refused.
    assert!(TcpStream::connect(v4(rport)).await.is_err(), "port {rport} open although refused");
    e.shutdown().await;
}

/// A port already taken on the hop, with the hop an SSH server (OpenSSH, then
/// Portway's own): the refusal names the port, the engine retries, and binds
/// once the port frees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_taken_behind_an_ssh_hop_is_shown_and_retried_until_it_frees() {
    let _serial = SERIAL.lock().await;
    let (dir, key) = setup();
    let backend = tcp_backend("127.0.0.1", "private").await;
    let sport = free_port();
    let _openssh = Sshd::start(dir.path(), sport).await;
    let hop = engine();
    hop.apply(cmd(&["sshd://u:pw@127.0.0.1:0".into()], &[])).await;
    let portway_hop = listening(&hop, "service-0");
    let hops = [(sshd_node(sport, &key), format!("127.0.0.1:{sport}")), (format!("sshd://u:pw@{portway_hop}"), portway_hop.to_string())];
    for (node, hop_addr) in hops {
        let squatter = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let rport = squatter.local_addr().expect("addr").port();
        let e = engine();
        e.apply(cmd(&[format!("rtcp://127.0.0.1:{rport}/{}", backend.addr)], std::slice::from_ref(&node))).await;
        let refused = format!("server {hop_addr} refused to listen on 127.0.0.1:{rport} for remote forwarding");
        let msg = wait_error(&e, "service-0", T, |m| m.contains(&refused)).await;
        assert!(msg.contains("retrying in"), "{msg}");
        drop(squatter);
        let (name, mut s) = hello_within(v4(rport), REBIND).await;
        assert_eq!(name, "private", "{node}");
        echo(&mut s, &vec![3u8; 100_000]).await.expect("bytes through the re-bound port");
        e.shutdown().await;
    }
}

/// Local forwarding through an OpenSSH hop whose sshd is killed mid-transfer:
/// the client's connection ends (no hang), the rule keeps running, and a new
/// sshd on the same port serves new connections (the pool reconnects).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_sshd_hop_mid_transfer_ends_the_connection_and_the_rule_reconnects() {
    let _serial = SERIAL.lock().await;
    let (dir, key) = setup();
    let sport = free_port();
    let mut sshd = Sshd::start(dir.path(), sport).await;
    let backend = tcp_backend("127.0.0.1", "behind-ssh").await;
    let e = engine();
    e.apply(cmd(&[format!("tcp://127.0.0.1:0/{}", backend.addr)], &[sshd_node(sport, &key)])).await;
    let local = listening(&e, "service-0");
    let (name, s) = tcp_hello(local).await.expect("through the ssh hop");
    assert_eq!(name, "behind-ssh");
    let (r, _writer) = start_transfer(s, 256 * 1024).await;
    sshd.stop();
    ends_within_t(r).await;
    assert!(matches!(e.service_status("service-0").expect("status").state, ServiceState::Running));
    // While sshd is down, a new connection is refused with the reason shown.
    let _ = tcp_hello(local).await;
    let why = wait_error(&e, "service-0", T, |m| m.contains("ssh: cannot reach") || m.contains("closed")).await;
    assert!(why.contains(&format!("127.0.0.1:{sport}")), "{why}");

    let _sshd = Sshd::start(dir.path(), sport).await;
    let (name, mut s) = hello_within(local, T).await;
    assert_eq!(name, "behind-ssh");
    echo(&mut s, &vec![7u8; 200_000]).await.expect("bytes through the new SSH connection");
}

/// rtcp through an OpenSSH hop killed mid-stream: the rule says the remote
/// port was lost and re-binds it once sshd is back on the same port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtcp_through_a_killed_sshd_hop_is_rebound_when_it_returns() {
    let _serial = SERIAL.lock().await;
    let (dir, key) = setup();
    let sport = free_port();
    let mut sshd = Sshd::start(dir.path(), sport).await;
    let backend = tcp_backend("127.0.0.1", "private").await;
    let rport = free_port();
    let e = engine();
    e.apply(cmd(&[format!("rtcp://127.0.0.1:{rport}/{}", backend.addr)], &[sshd_node(sport, &key)])).await;
    let (name, s) = hello_within(v4(rport), T).await;
    assert_eq!(name, "private");
    let (r, _writer) = start_transfer(s, 256 * 1024).await;
    sshd.stop();
    ends_within_t(r).await;
    let why = wait_error(&e, "service-0", T, |m| m.contains(&format!("remote port 127.0.0.1:{rport} lost"))).await;
    assert!(why.contains("re-binding in 1s"), "{why}");
    // Still down at the next attempt: the bind failure is shown with its retry.
    let why = wait_error(&e, "service-0", T, |m| m.contains("cannot bind")).await;
    assert!(why.contains(&format!("ssh: cannot reach 127.0.0.1:{sport}")) && why.contains("retrying in"), "{why}");
    assert!(matches!(e.service_status("service-0").expect("status").state, ServiceState::Running));

    let _sshd = Sshd::start(dir.path(), sport).await;
    let (name, mut s) = hello_within(v4(rport), REBIND).await;
    assert_eq!(name, "private");
    echo(&mut s, &vec![8u8; 200_000]).await.expect("bytes through the re-bound port");
}

/// The same through a Portway relay hop (in-process here; the CLI tests kill a
/// hop process): the hop goes away mid-stream and comes back on its port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtcp_through_a_relay_hop_that_goes_away_mid_stream_is_rebound() {
    let _serial = SERIAL.lock().await;
    let backend = tcp_backend("127.0.0.1", "private").await;
    let hop_port = free_port();
    let hop = engine();
    hop.apply(cmd(&[format!("relay://u:p@127.0.0.1:{hop_port}?bind=true")], &[])).await;
    let rport = free_port();
    let e = engine();
    e.apply(cmd(&[format!("rtcp://127.0.0.1:{rport}/{}", backend.addr)], &[format!("relay://u:p@127.0.0.1:{hop_port}")])).await;
    let (name, s) = hello_within(v4(rport), T).await;
    assert_eq!(name, "private");
    let (r, _writer) = start_transfer(s, 256 * 1024).await;
    hop.shutdown().await;
    drop(hop);
    ends_within_t(r).await;
    let why = wait_error(&e, "service-0", T, |m| m.contains("lost") || m.contains("cannot bind")).await;
    assert!(why.contains("re-binding") || why.contains("retrying"), "{why}");

    let hop = engine();
    hop.apply(cmd(&[format!("relay://u:p@127.0.0.1:{hop_port}?bind=true")], &[])).await;
    let (name, mut s) = hello_within(v4(rport), REBIND).await;
    assert_eq!(name, "private");
    echo(&mut s, &vec![9u8; 200_000]).await.expect("bytes through the re-bound port");
}

/// The SSH refusals that happen before any forwarding, as an rtcp rule shows
/// them: a key the server does not accept, and a host key that differs from
/// the one in known_hosts (with the fingerprint the server now offers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtcp_rule_shows_a_wrong_key_and_a_changed_host_key() {
    let _serial = SERIAL.lock().await;
    let (dir, key) = setup();
    let sport = free_port();
    let _sshd = Sshd::start(dir.path(), sport).await;
    let backend = tcp_backend("127.0.0.1", "private").await;

    let other = dir.path().join("other_key");
    common::sshd::keygen(&other);
    let e = engine();
    e.apply(cmd(&[format!("rtcp://127.0.0.1:{}/{}", free_port(), backend.addr)], &[sshd_node(sport, &other)])).await;
    let msg = wait_error(&e, "service-0", T, |m| m.contains("authentication failed")).await;
    assert!(msg.contains(&format!("rejected user \"{}\"", current_user())) && msg.contains("retrying in"), "{msg}");
    e.shutdown().await;

    let fake = dir.path().join("fake_host");
    common::sshd::keygen(&fake);
    let fake_pub = std::fs::read_to_string(dir.path().join("fake_host.pub")).unwrap();
    let known = dir.path().join("known_hosts");
    let fake_line = fake_pub.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    std::fs::write(&known, format!("[127.0.0.1]:{sport} {fake_line}\n")).unwrap();
    let real = common::sshd::openssh_fingerprint(&dir.path().join("host_key.pub"));
    let e = engine();
    let node = format!("{}&knownHosts={}", sshd_node(sport, &key), known.display());
    e.apply(cmd(&[format!("rtcp://127.0.0.1:{}/{}", free_port(), backend.addr)], &[node])).await;
    let msg = wait_error(&e, "service-0", T, |m| m.contains("host key of")).await;
    assert!(msg.contains("changed") && msg.contains(&real) && msg.contains("retrying in"), "{msg}");
    e.shutdown().await;
}
