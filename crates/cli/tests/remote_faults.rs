//! Remote forwarding when the hop fails under a running transfer, with real
//! processes: the `portway` relay hop killed by its PID and started again on
//! the same port, and (where network namespaces can be made) the link to an
//! OpenSSH hop cut on the wire while bytes flow, then restored.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Remote binds wait out the backoff (1 s, 2 s, 4 s, 5 s…) after a failure.
const REBIND: Duration = Duration::from_secs(15);

/// Streams into `s` from a thread until the connection fails; returns once
/// `at_least` echoed bytes came back. The writer ends by itself when the
/// connection does (the socket has a write timeout).
fn start_transfer(s: &mut TcpStream, at_least: usize) -> std::thread::JoinHandle<()> {
    let mut w = s.try_clone().expect("clone socket");
    let writer = std::thread::spawn(move || {
        let chunk = vec![0x5au8; 16 * 1024];
        while w.write_all(&chunk).is_ok() {}
    });
    let mut got = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while got < at_least {
        match s.read(&mut buf) {
            Ok(0) => panic!("transfer ended before the cut"),
            Ok(n) => got += n,
            Err(e) => panic!("transfer failed before the cut: {e}"),
        }
    }
    writer
}

/// The connection must end (EOF or a reset) within `within`, not hang.
fn ends_within(s: &mut TcpStream, within: Duration) {
    s.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
    let deadline = Instant::now() + within;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
        assert!(Instant::now() < deadline, "connection still open {within:?} after the hop failed");
    }
}

#[test]
fn relay_hop_process_killed_mid_stream_then_restarted_rebinds_the_port() {
    let backend = TcpBackend::start("127.0.0.1", "private");
    let (hop_dir, client_dir) = (config_dir(), config_dir());
    let hop_port = free_port("127.0.0.1");
    let hop_args = ["-L".to_string(), format!("relay://u:p@127.0.0.1:{hop_port}?bind=true")];
    let mut hop = Portway::run(hop_dir.path(), &hop_args);
    hop.status_lines(0, 1).unwrap();
    let rport = free_port("127.0.0.1");
    let client = Portway::run(
        client_dir.path(),
        &["-L".to_string(), format!("rtcp://127.0.0.1:{rport}/{}", backend.target()), "-F".into(), format!("relay://u:p@127.0.0.1:{hop_port}")],
    );
    let remote = v4("127.0.0.1", rport);
    assert_eq!(hello_eventually(remote, EVENT).unwrap(), "private", "{}", client.transcript());

    let mut s = connect(remote).unwrap();
    assert_eq!(read_line(&mut s).unwrap(), "private");
    let writer = start_transfer(&mut s, 256 * 1024);
    let cur = client.cursor();
    hop.signal(libc::SIGKILL);
    assert!(hop.wait_exit(EVENT).is_some(), "hop did not die");
    ends_within(&mut s, IO);
    writer.join().expect("writer");
    let (_, line) = client
        .wait_line(cur, Src::Err, EVENT, |l| l.contains(&format!("remote port 127.0.0.1:{rport} lost")) || l.contains("cannot bind"))
        .unwrap();
    assert!(line.contains("re-binding in") || line.contains("retrying in"), "{line}");

    let hop = Portway::run(hop_dir.path(), &hop_args);
    hop.status_lines(0, 1).unwrap();
    let name = hello_eventually(remote, REBIND).unwrap_or_else(|e| panic!("{e}\n{}", client.transcript()));
    assert_eq!(name, "private");
    let mut s = connect(remote).unwrap();
    read_line(&mut s).unwrap();
    echo(&mut s, &vec![4u8; 200_000]).unwrap();
}

// ---- The link cut on the wire (network namespaces) ----

struct Netns {
    public: String,
    private: String,
    pub_ip: String,
    veths: [String; 2],
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
    if !out.status.success() {
        return Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(())
}

impl Netns {
    fn create() -> Result<Netns, String> {
        let id = std::process::id() % 100_000;
        let sub = 100 + id % 150;
        let n = Netns {
            public: format!("pw-rfpub-{id}"),
            private: format!("pw-rfprv-{id}"),
            pub_ip: format!("10.78.{sub}.1"),
            veths: [format!("rfpub{id}"), format!("rfprv{id}")],
        };
        let prv_ip = format!("10.78.{sub}.2");
        let [va, vb] = &n.veths;
        ip(&["netns", "add", &n.public])?;
        ip(&["netns", "add", &n.private])?;
        ip(&["link", "add", va, "type", "veth", "peer", "name", vb])?;
        ip(&["link", "set", va, "netns", &n.public])?;
        ip(&["link", "set", vb, "netns", &n.private])?;
        ip(&["-n", &n.public, "addr", "add", &format!("{}/24", n.pub_ip), "dev", va])?;
        ip(&["-n", &n.private, "addr", "add", &format!("{prv_ip}/24"), "dev", vb])?;
        for (ns, dev) in [(&n.public, va), (&n.private, vb)] {
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(n)
    }

    fn spawn(&self, ns: &str, prog: &str, args: &[String]) -> Proc {
        let child = Command::new("ip")
            .args(["netns", "exec", ns, prog])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{prog}: {e}"));
        Proc(child)
    }

    /// Blackholes both ends of the link. netem is not in every kernel (not in
    /// this CI's), so the cut is a token bucket that passes nothing: 1 byte/s
    /// with a 100-byte bucket and no queue drops every full-sized packet and
    /// all but the first few small ones.
    fn cut(&self) -> Result<(), String> {
        for (ns, dev) in [(&self.public, &self.veths[0]), (&self.private, &self.veths[1])] {
            tc(ns, &["qdisc", "add", "dev", dev, "root", "tbf", "rate", "8bit", "burst", "100", "limit", "1"])?;
        }
        Ok(())
    }

    fn restore(&self) {
        for (ns, dev) in [(&self.public, &self.veths[0]), (&self.private, &self.veths[1])] {
            let _ = tc(ns, &["qdisc", "del", "dev", dev, "root"]);
        }
    }

    /// Connects to `addr` from inside `ns`: the socket is made on a thread that
    /// joined the namespace, and stays in it.
    fn connect_in(&self, ns: &str, addr: std::net::SocketAddr) -> std::io::Result<TcpStream> {
        let path = format!("/var/run/netns/{ns}");
        std::thread::spawn(move || {
            let f = std::fs::File::open(&path)?;
            use std::os::fd::AsRawFd;
            // SAFETY: setns(2) on a namespace file we opened; affects this thread only.
            if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            connect(addr)
        })
        .join()
        .expect("connect thread")
    }
}

fn tc(ns: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(["netns", "exec", ns, "tc"]).args(args).output().map_err(|e| format!("tc: {e}"))?;
    if !out.status.success() {
        return Err(format!("tc {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(())
}

impl Drop for Netns {
    fn drop(&mut self) {
        for ns in [&self.public, &self.private] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A process killed by its PID when the test ends.
struct Proc(std::process::Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn keygen(path: &std::path::Path) {
    let st = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(path).stdout(Stdio::null()).status().expect("ssh-keygen");
    assert!(st.success());
}

fn hello_from(n: &Netns, addr: std::net::SocketAddr, within: Duration) -> Result<(String, TcpStream), String> {
    let deadline = Instant::now() + within;
    loop {
        let r = n.connect_in(&n.public, addr).map_err(|e| e.to_string()).and_then(|mut s| {
            let name = read_line(&mut s).map_err(|e| e.to_string())?;
            Ok((name, s))
        });
        match r {
            Ok(x) => return Ok(x),
            Err(e) if Instant::now() >= deadline => return Err(format!("{addr} in {}: {e}", n.public)),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// rtcp through an OpenSSH hop on another host; the link between the hosts is
/// cut while bytes flow. SSH keepalives (client `keepalive=true&ttl=1s`,
/// server `ClientAliveInterval 1`) notice within seconds: the in-flight
/// connection ends, the rule says the remote port was lost, and once the link
/// is back the port is bound again and bytes pass.
#[test]
fn a_cut_link_to_an_ssh_hop_is_noticed_by_keepalive_and_the_tunnel_recovers() {
    let n = match Netns::create() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("skipping: cannot create network namespaces here ({e}); CI runs this as root");
            return;
        }
    };
    let probe = n.cut();
    n.restore();
    if let Err(e) = probe {
        eprintln!("skipping: cannot shape the link with tc here ({e})");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(&d.join("host_key"));
    keygen(&d.join("id"));
    std::fs::copy(d.join("id.pub"), d.join("authorized_keys")).unwrap();
    std::fs::create_dir_all("/run/sshd").unwrap();
    std::fs::write(
        d.join("sshd_config"),
        format!(
            "ListenAddress {}:22\nHostKey {p}/host_key\nPidFile {p}/sshd.pid\nAuthorizedKeysFile {p}/authorized_keys\n\
             StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin yes\n\
             AllowTcpForwarding yes\nClientAliveInterval 1\nClientAliveCountMax 2\nLogLevel ERROR\n",
            n.pub_ip,
            p = d.display()
        ),
    )
    .unwrap();
    let sshd = n.spawn(&n.public, "/usr/sbin/sshd", &["-D".into(), "-e".into(), "-f".into(), d.join("sshd_config").display().to_string()]);
    let _backend = n.spawn(&n.private, "socat", &["TCP-LISTEN:9000,bind=127.0.0.1,reuseaddr,fork".into(), "SYSTEM:echo private-backend; cat".into()]);
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap().trim().to_string();
    let client_dir = config_dir();
    let mut client_cmd = Command::new("ip");
    client_cmd
        .args(["netns", "exec", &n.private, BIN])
        .args(["-L", "rtcp://127.0.0.1:8080/127.0.0.1:9000", "-F"])
        .arg(format!("sshd://{user}@{}:22?privateKeyFile={}&keepalive=true&ttl=1s", n.pub_ip, d.join("id").display()))
        .env("PORTWAY_CONFIG_DIR", client_dir.path())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // `ip netns exec` execs portway: the PID is portway's.
    let client = Portway::spawn(client_cmd);
    let remote = v4("127.0.0.1", 8080);
    let (name, mut s) = hello_from(&n, remote, EVENT).unwrap_or_else(|e| panic!("{e}\n{}", client.transcript()));
    assert_eq!(name, "private-backend");
    let writer = start_transfer(&mut s, 256 * 1024);
    let cur = client.cursor();
    n.cut().unwrap();
    let cut_at = Instant::now();
    ends_within(&mut s, Duration::from_secs(10));
    let (_, line) = client
        .wait_line(cur, Src::Err, Duration::from_secs(15), |l| l.contains("remote port 127.0.0.1:8080 lost"))
        .unwrap_or_else(|e| panic!("the cut went unnoticed: {e}"));
    assert!(line.contains("re-binding in"), "{line}");
    eprintln!("cut noticed after {:?}: {line}", cut_at.elapsed());
    writer.join().expect("writer");

    n.restore();
    let (name, mut s) = hello_from(&n, remote, REBIND).unwrap_or_else(|e| panic!("not re-bound after the link came back: {e}\n{}", client.transcript()));
    assert_eq!(name, "private-backend");
    echo(&mut s, &vec![6u8; 200_000]).unwrap();
    drop(sshd);
}
