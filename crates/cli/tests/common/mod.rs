//! Helpers for the end-to-end tests of the `portway` binary: a guard around the
//! child process that captures its output line by line, named echo backends
//! (TCP and UDP) that answer with their own identity, and loopback clients.
//!
//! Everything waits on events (a line printed, a byte read, a process exit) with a
//! deadline; nothing sleeps for synchronisation. Every loop is bounded.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_portway");

/// How long any single expected event may take.
pub const EVENT: Duration = Duration::from_secs(10);
/// Socket read/write timeout for test clients.
pub const IO: Duration = Duration::from_secs(5);
/// How many times a setup is retried when a port picked as free was taken meanwhile.
pub const SETUP_TRIES: usize = 5;

// ---------------------------------------------------------------------------
// The portway process

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Src {
    Out,
    Err,
}

struct OutState {
    lines: Vec<(Src, String)>,
    /// Streams still open (2 → 0).
    open: usize,
}

struct Output {
    st: Mutex<OutState>,
    cv: Condvar,
}

/// A running `portway`. Dropping it kills the process (by its PID) and reaps it.
pub struct Portway {
    child: Child,
    pub pid: i32,
    out: Arc<Output>,
    readers: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

/// A `portway` command with its config dir pinned to `cfg_dir`, output piped.
pub fn portway_cmd<S: AsRef<std::ffi::OsStr>>(cfg_dir: &Path, args: &[S]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env("PORTWAY_CONFIG_DIR", cfg_dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn reader<R: Read + Send + 'static>(r: R, src: Src, out: Arc<Output>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut r = BufReader::new(r);
        // Bounded by the stream: ends at EOF, i.e. when the process is gone.
        loop {
            let mut line = String::new();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = line.trim_end_matches(['\n', '\r']).to_string();
                    let mut st = out.st.lock().unwrap();
                    st.lines.push((src, line));
                    out.cv.notify_all();
                }
            }
        }
        let mut st = out.st.lock().unwrap();
        st.open -= 1;
        out.cv.notify_all();
    })
}

impl Portway {
    pub fn spawn(mut cmd: Command) -> Portway {
        let mut child = cmd.spawn().expect("spawning portway");
        let out = Arc::new(Output { st: Mutex::new(OutState { lines: Vec::new(), open: 2 }), cv: Condvar::new() });
        let mut readers = vec![reader(child.stderr.take().unwrap(), Src::Err, out.clone())];
        match child.stdout.take() {
            Some(o) => readers.push(reader(o, Src::Out, out.clone())),
            None => {
                out.st.lock().unwrap().open -= 1;
            }
        }
        let pid = child.id() as i32;
        Portway { child, pid, out, readers, status: None }
    }

    /// Spawns with `input` on stdin (then closed).
    pub fn spawn_with_stdin(mut cmd: Command, input: &str) -> Portway {
        cmd.stdin(Stdio::piped());
        let mut p = Portway::spawn(cmd);
        let mut stdin = p.child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).expect("writing portway's stdin");
        drop(stdin);
        p
    }

    /// Spawns `portway ARGS` with `PORTWAY_CONFIG_DIR=cfg_dir`.
    pub fn run<S: AsRef<std::ffi::OsStr>>(cfg_dir: &Path, args: &[S]) -> Portway {
        Portway::spawn(portway_cmd(cfg_dir, args))
    }

    /// Number of lines captured so far (a cursor for `wait_line`).
    pub fn cursor(&self) -> usize {
        self.out.st.lock().unwrap().lines.len()
    }

    pub fn lines(&self, src: Src) -> Vec<String> {
        self.out.st.lock().unwrap().lines.iter().filter(|(s, _)| *s == src).map(|(_, l)| l.clone()).collect()
    }

    pub fn stdout(&self) -> String {
        self.lines(Src::Out).join("\n")
    }

    pub fn stderr(&self) -> String {
        self.lines(Src::Err).join("\n")
    }

    /// Everything printed so far, for failure messages.
    pub fn transcript(&self) -> String {
        let st = self.out.st.lock().unwrap();
        let mut s = String::new();
        for (src, l) in &st.lines {
            s.push_str(if *src == Src::Out { "  out| " } else { "  err| " });
            s.push_str(l);
            s.push('\n');
        }
        s
    }

    /// Waits for a line from `src` at or after `from` that satisfies `pred`.
    /// Returns (cursor after it, the line).
    pub fn wait_line(&self, from: usize, src: Src, timeout: Duration, pred: impl Fn(&str) -> bool) -> Result<(usize, String), String> {
        let deadline = Instant::now() + timeout;
        let mut next = from;
        let mut st = self.out.st.lock().unwrap();
        loop {
            while next < st.lines.len() {
                let (s, l) = &st.lines[next];
                next += 1;
                if *s == src && pred(l) {
                    return Ok((next, l.clone()));
                }
            }
            if st.open == 0 {
                drop(st);
                return Err(format!("portway's output ended before the expected line\n{}", self.transcript()));
            }
            let now = Instant::now();
            if now >= deadline {
                drop(st);
                return Err(format!("timed out after {timeout:?} waiting for a line\n{}", self.transcript()));
            }
            st = self.out.cv.wait_timeout(st, deadline - now).unwrap().0;
        }
    }

    /// The first `n` status lines (`service "NAME": …`) on stdout after `from`.
    pub fn status_lines(&self, from: usize, n: usize) -> Result<(usize, Vec<String>), String> {
        let mut cur = from;
        let mut v = Vec::new();
        for _ in 0..n {
            let (c, l) = self.wait_line(cur, Src::Out, EVENT, |l| l.starts_with("service \""))?;
            cur = c;
            v.push(l);
        }
        Ok((cur, v))
    }

    /// Waits for the process to exit; `None` if it is still running at the deadline.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if let Some(s) = self.status {
            return Some(s);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                self.status = Some(s);
                // Let the readers collect the last lines.
                for r in self.readers.drain(..) {
                    let _ = r.join();
                }
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            // Polling the exit status with a deadline (there is no portable
            // wait-with-timeout on a child); the short pause only limits CPU use.
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn alive(&mut self) -> bool {
        self.status.is_none() && self.child.try_wait().expect("try_wait").is_none()
    }

    pub fn signal(&self, sig: libc::c_int) {
        assert!(self.status.is_none(), "signal to a process that exited");
        // SAFETY: kill(2) on the PID of our own, not yet reaped, child.
        let r = unsafe { libc::kill(self.pid, sig) };
        assert_eq!(r, 0, "kill({}, {sig}): {}", self.pid, io::Error::last_os_error());
    }
}

impl Drop for Portway {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }
}

/// Runs portway to completion (for commands that must exit by themselves).
pub fn run_to_exit<S: AsRef<std::ffi::OsStr>>(cfg_dir: &Path, args: &[S]) -> (ExitStatus, String, String) {
    let mut p = Portway::run(cfg_dir, args);
    let st = p.wait_exit(EVENT).unwrap_or_else(|| panic!("portway did not exit within {EVENT:?}\n{}", p.transcript()));
    (st, p.stdout(), p.stderr())
}

/// Starts portway and waits for `n` status lines. A status line saying "address
/// already in use" makes this an `Err` containing that text, which `retry` retries.
pub fn launch(cmd: Command, n: usize) -> Result<(Portway, Vec<String>), String> {
    let p = Portway::spawn(cmd);
    let (_, lines) = p.status_lines(0, n)?;
    if let Some(l) = lines.iter().find(|l| l.contains("address already in use")) {
        return Err(format!("{l}\n{}", p.transcript()));
    }
    Ok((p, lines))
}

/// Runs a setup that picks free ports, again when a port was taken in between
/// (the error mentions "address already in use"); any other error fails the test.
pub fn retry<T>(mut f: impl FnMut() -> Result<T, String>) -> T {
    let mut last = String::new();
    for _ in 0..SETUP_TRIES {
        match f() {
            Ok(v) => return v,
            Err(e) if e.contains("address already in use") => last = e,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("setup failed {SETUP_TRIES} times with a port in use: {last}");
}

/// A TCP port free on `ip` right now (bind port 0, read it, release it).
pub fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0)).expect("bind port 0").local_addr().unwrap().port()
}

/// A port free for both TCP and UDP on every address (for `:PORT` listeners).
pub fn free_port_any() -> u16 {
    for _ in 0..50 {
        let t = TcpListener::bind("[::]:0").expect("bind [::]:0");
        let p = t.local_addr().unwrap().port();
        if UdpSocket::bind(("::", p)).is_ok() {
            return p;
        }
    }
    panic!("no port free for both TCP and UDP");
}

/// A UDP port free on `ip`.
pub fn free_udp_port(ip: &str) -> u16 {
    UdpSocket::bind((ip, 0)).expect("bind udp port 0").local_addr().unwrap().port()
}

/// `n` consecutive TCP ports free on `ip` right now.
pub fn free_port_range(ip: &str, n: u16) -> u16 {
    for _ in 0..100 {
        let base = free_port(ip);
        if base as u32 + n as u32 > 65535 {
            continue;
        }
        let held: Vec<_> = (0..n).map(|i| TcpListener::bind((ip, base + i))).collect();
        if held.iter().all(|h| h.is_ok()) {
            return base;
        }
    }
    panic!("no {n} consecutive free ports on {ip}");
}

pub fn config_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Writes a file the way an editor should: temp file + rename.
pub fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp-edit");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

// ---------------------------------------------------------------------------
// Backends

/// A TCP server that greets each connection with `NAME\n`, then echoes what it
/// receives and half-closes when the client does.
pub struct TcpBackend {
    pub name: String,
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

fn serve_echo(mut s: TcpStream, name: String) {
    let _ = s.set_nodelay(true);
    if s.write_all(format!("{name}\n").as_bytes()).is_err() {
        return;
    }
    let mut buf = [0u8; 16384];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if s.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
    let _ = s.shutdown(Shutdown::Write);
}

impl TcpBackend {
    pub fn start(ip: &str, name: &str) -> TcpBackend {
        TcpBackend::start_on(SocketAddr::new(ip.parse().unwrap(), 0), name).expect("backend bind")
    }

    pub fn start_on(addr: SocketAddr, name: &str) -> io::Result<TcpBackend> {
        let l = TcpListener::bind(addr)?;
        let addr = l.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (st, ac, nm) = (stop.clone(), accepted.clone(), name.to_string());
        let thread = std::thread::spawn(move || {
            // Bounded by `stop`: `TcpBackend::stop` sets it and connects once to wake us.
            for c in l.incoming() {
                if st.load(SeqCst) {
                    break;
                }
                if let Ok(c) = c {
                    ac.fetch_add(1, SeqCst);
                    let nm = nm.clone();
                    std::thread::spawn(move || serve_echo(c, nm));
                }
            }
        });
        Ok(TcpBackend { name: name.to_string(), addr, stop, accepted, thread: Some(thread) })
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(SeqCst)
    }

    /// Closes the listening socket: new connections are refused from now on.
    pub fn stop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.store(true, SeqCst);
            let _ = TcpStream::connect_timeout(&self.addr, IO);
            let _ = t.join();
        }
    }

    pub fn target(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for TcpBackend {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A UDP server answering each datagram with `NAME|payload`, recording the
/// source address (= portway's upstream socket = one session) of each.
pub struct UdpBackend {
    pub name: String,
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    peers: Arc<Mutex<HashMap<SocketAddr, usize>>>,
    thread: Option<JoinHandle<()>>,
}

impl UdpBackend {
    pub fn start(ip: &str, name: &str) -> UdpBackend {
        let s = UdpSocket::bind((ip, 0)).expect("udp backend bind");
        let addr = s.local_addr().unwrap();
        s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let peers = Arc::new(Mutex::new(HashMap::new()));
        let (st, pr, nm) = (stop.clone(), peers.clone(), name.to_string());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            // Bounded by `stop` (checked at least every read timeout).
            while !st.load(SeqCst) {
                let Ok((n, from)) = s.recv_from(&mut buf) else { continue };
                if st.load(SeqCst) {
                    break;
                }
                *pr.lock().unwrap().entry(from).or_insert(0) += 1;
                let mut reply = format!("{nm}|").into_bytes();
                reply.extend_from_slice(&buf[..n]);
                let _ = s.send_to(&reply, from);
            }
        });
        UdpBackend { name: name.to_string(), addr, stop, peers, thread: Some(thread) }
    }

    /// Distinct source addresses seen (portway opens one upstream socket per session).
    pub fn sessions(&self) -> usize {
        self.peers.lock().unwrap().len()
    }

    pub fn target(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for UdpBackend {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.store(true, SeqCst);
            if let Ok(s) = UdpSocket::bind((self.addr.ip(), 0)) {
                let _ = s.send_to(b"stop", self.addr);
            }
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------
// Clients

pub fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, IO)?;
    s.set_read_timeout(Some(IO))?;
    s.set_write_timeout(Some(IO))?;
    let _ = s.set_nodelay(true);
    Ok(s)
}

/// Connects to `dst` from `src` (port chosen by the kernel), to look like a
/// different client IP.
pub fn connect_from(src: Ipv4Addr, dst: SocketAddr) -> io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    let SocketAddr::V4(dst) = dst else { panic!("connect_from: IPv4 only") };
    fn sin(ip: Ipv4Addr, port: u16) -> libc::sockaddr_in {
        // SAFETY: sockaddr_in is plain data; all-zero is a valid value.
        let mut a: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        a.sin_family = libc::AF_INET as libc::sa_family_t;
        a.sin_port = port.to_be();
        a.sin_addr = libc::in_addr { s_addr: u32::from(ip).to_be() };
        a
    }
    // SAFETY: plain socket calls on a descriptor we own; on success it is handed
    // to TcpStream, which closes it.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let s = TcpStream::from_raw_fd(fd);
        let a = sin(src, 0);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::bind(fd, &a as *const _ as *const libc::sockaddr, len) != 0 {
            return Err(io::Error::last_os_error());
        }
        let d = sin(*dst.ip(), dst.port());
        if libc::connect(fd, &d as *const _ as *const libc::sockaddr, len) != 0 {
            return Err(io::Error::last_os_error());
        }
        s.set_read_timeout(Some(IO))?;
        s.set_write_timeout(Some(IO))?;
        Ok(s)
    }
}

/// Reads one `\n`-terminated line (at most 200 bytes). EOF before it is an error.
pub fn read_line(s: &mut TcpStream) -> io::Result<String> {
    let mut v = Vec::new();
    let mut b = [0u8; 1];
    while v.len() < 200 {
        match s.read(&mut b)? {
            0 => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("closed after {:?}", String::from_utf8_lossy(&v)))),
            _ if b[0] == b'\n' => return Ok(String::from_utf8_lossy(&v).into_owned()),
            _ => v.push(b[0]),
        }
    }
    Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"))
}

/// Sends `data` and reads the same number of bytes back, checking they are equal.
pub fn echo(s: &mut TcpStream, data: &[u8]) -> Result<(), String> {
    s.write_all(data).map_err(|e| format!("write: {e}"))?;
    let mut got = vec![0u8; data.len()];
    s.read_exact(&mut got).map_err(|e| format!("read echo: {e}"))?;
    if got != data {
        return Err("echoed bytes differ".into());
    }
    Ok(())
}

/// Opens a connection through portway, reads which backend answered, checks a
/// round trip, closes. `Err` when portway closed the connection instead.
pub fn hello_on(mut s: TcpStream) -> Result<String, String> {
    let name = read_line(&mut s).map_err(|e| format!("no greeting: {e}"))?;
    let msg = format!("ping from {:?}", s.local_addr().ok());
    echo(&mut s, msg.as_bytes())?;
    Ok(name)
}

pub fn hello(addr: SocketAddr) -> Result<String, String> {
    hello_on(connect(addr).map_err(|e| format!("connect {addr}: {e}"))?)
}

/// Waits until a connection through `addr` reaches a backend (bounded).
pub fn hello_eventually(addr: SocketAddr, timeout: Duration) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    let mut last;
    loop {
        match hello(addr) {
            Ok(n) => return Ok(n),
            Err(e) => last = e,
        }
        if Instant::now() >= deadline {
            return Err(format!("no answer through {addr} within {timeout:?}: {last}"));
        }
        // A poll with a deadline: retrying a connect, not timing an event.
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asks through a UDP service: sends `payload`, returns the name of the backend
/// that echoed it. Re-sends (at most 3 times) on a lost datagram.
pub fn udp_ask(sock: &UdpSocket, dst: SocketAddr, payload: &str) -> Result<String, String> {
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 2048];
    for _ in 0..3 {
        sock.send_to(payload.as_bytes(), dst).map_err(|e| format!("send: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(2);
        // Skip stale replies to earlier attempts; bounded by the deadline.
        while Instant::now() < deadline {
            match sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    if from.port() != dst.port() {
                        return Err(format!("reply from {from}, not from the service {dst}"));
                    }
                    if let Some(name) = text.strip_suffix(payload).and_then(|t| t.strip_suffix('|')) {
                        return Ok(name.to_string());
                    }
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => break,
                Err(e) => return Err(format!("recv: {e}")),
            }
        }
    }
    Err(format!("no UDP answer to {payload:?} through {dst}"))
}

/// Is something accepting TCP connections at `addr`?
pub fn is_listening(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

pub fn v4(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(ip.parse().unwrap()), port)
}

/// user+system CPU time the process has used so far (/proc/PID/stat).
pub fn cpu_time(pid: i32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("reading /proc/PID/stat");
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = f[11].parse().unwrap();
    let stime: u64 = f[12].parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis((utime + stime) * 1000 / hz.max(1))
}

/// Like `udp_ask` but without re-sending: a lost datagram is an error.
pub fn udp_ask_once(sock: &UdpSocket, dst: SocketAddr, payload: &str) -> Result<String, String> {
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    sock.send_to(payload.as_bytes(), dst).map_err(|e| format!("send: {e}"))?;
    let mut buf = [0u8; 2048];
    let (n, _) = sock.recv_from(&mut buf).map_err(|e| format!("no answer to {payload:?}: {e}"))?;
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    text.strip_suffix(payload).and_then(|t| t.strip_suffix('|')).map(str::to_string).ok_or_else(|| format!("unexpected answer {text:?} to {payload:?}"))
}
