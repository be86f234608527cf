//! A private OpenSSH server (Debian `openssh-server`) on a loopback port, with
//! its own config, host key and authorized keys in a temp dir. The listener and
//! every per-connection process it forks are killed by PID when it stops.
#![allow(dead_code)]

use super::peers::ChildGuard;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .stdout(Stdio::null())
        .status()
        .expect("ssh-keygen (apt install openssh-client)");
    assert!(st.success());
}

/// `SHA256:…` of a key file as OpenSSH computes it: independent of our code.
pub fn openssh_fingerprint(pub_path: &Path) -> String {
    let out = Command::new("ssh-keygen").arg("-lf").arg(pub_path).output().expect("ssh-keygen -lf");
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().nth(1).expect("fingerprint").to_string()
}

pub fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The PIDs of `pid`'s descendants (children, grandchildren, …).
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    let mut i = 0;
    while i < pids.len() {
        let parent = pids[i];
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
            // Field 4 (after the ")" that ends the command name) is the parent.
            let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            if ppid == Some(parent) && !pids.contains(&child) {
                pids.push(child);
            }
        }
        i += 1;
    }
    pids.remove(0);
    pids
}

/// Kills a process's descendants by PID (sshd forks one process tree per
/// connection; killing only the listener would leave sessions up). The
/// process itself is killed by its guard.
pub fn kill_tree(pid: u32) {
    for p in descendants(pid) {
        libc_kill(p as i32);
    }
}

pub fn libc_kill(pid: i32) {
    // SAFETY: kill(2) with a PID this test spawned (or a descendant of it).
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// A private OpenSSH server on 127.0.0.1 accepting the key in
/// `dir/authorized_keys` for the current user.
pub struct Sshd {
    pub dir: PathBuf,
    pub port: u16,
    child: Option<ChildGuard>,
}

impl Sshd {
    pub async fn start(dir: &Path, port: u16) -> Sshd {
        Sshd::start_with(dir, port, "AllowTcpForwarding yes\n").await
    }

    /// `extra` is appended to the config (forwarding policy, keepalives…).
    pub async fn start_with(dir: &Path, port: u16, extra: &str) -> Sshd {
        let (_, mut cmd) = Sshd::command(dir, &format!("127.0.0.1:{port}"), extra);
        let child = cmd.spawn().expect("sshd (apt install openssh-server)");
        let mut child = ChildGuard(child);
        super::peers::wait_listening(format!("127.0.0.1:{port}").parse().unwrap(), &mut child).await;
        Sshd { dir: dir.to_path_buf(), port, child: Some(child) }
    }

    /// The config file written for `listen` and the command that runs sshd on
    /// it in the foreground (for callers that start it elsewhere, e.g. in a
    /// network namespace).
    pub fn command(dir: &Path, listen: &str, extra: &str) -> (PathBuf, Command) {
        std::fs::create_dir_all("/run/sshd").unwrap();
        let host_key = dir.join("host_key");
        if !host_key.exists() {
            keygen(&host_key);
        }
        let conf = dir.join("sshd_config");
        std::fs::write(
            &conf,
            format!(
                "ListenAddress {listen}\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin yes\n\
                 LogLevel ERROR\n{extra}",
                d = dir.display()
            ),
        )
        .unwrap();
        let mut cmd = Command::new("/usr/sbin/sshd");
        cmd.arg("-D").arg("-e").arg("-f").arg(&conf).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        (conf, cmd)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.0.id())
    }

    /// SSH connections being served: sshd forks one process per connection
    /// (plus a privilege-separated child of it).
    pub fn connections(&self) -> usize {
        let Some(pid) = self.pid() else { return 0 };
        let ppid_of = |p: u32| -> Option<u32> {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok())
        };
        descendants(pid).into_iter().filter(|p| ppid_of(*p) == Some(pid)).count()
    }

    pub fn stop(&mut self) {
        if let Some(c) = self.child.take() {
            kill_tree(c.0.id());
            drop(c);
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A temp dir with a client key pair authorized for sshd.
pub fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id_ed25519");
    keygen(&key);
    std::fs::copy(dir.path().join("id_ed25519.pub"), dir.path().join("authorized_keys")).unwrap();
    (dir, key)
}
