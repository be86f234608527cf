//! The Logs view's stream against a real engine and real sockets: what a refused
//! target writes, the batch a view starts with, a stream that ends, and no
//! password in any line.

mod common;
use common::*;

use portway_app::backend::Backend;
use portway_core::logging::{ring, CaptureLayer};
use portway_ipc::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, Once};
use std::time::{Duration, Instant};

/// What the stderr logger printed, to check the engine's own calls (the capture
/// layer masks passwords again for the window, which would hide a leaking call).
static RAW: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct RawWriter;
impl Write for RawWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        RAW.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The app's logging (a text logger and the capture layer), at debug so that the
/// lines a client's bad request writes are there too.
fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use tracing_subscriber::prelude::*;
        let fmt = tracing_subscriber::fmt::layer().with_writer(|| RawWriter).with_ansi(false);
        tracing_subscriber::registry().with(tracing_subscriber::filter::LevelFilter::DEBUG).with(fmt).with(CaptureLayer).init();
    });
}

fn backend(dir: &std::path::Path) -> Backend {
    init_logging();
    common::backend(dir)
}

/// An address where nothing listens any more: connecting is refused.
fn dead_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = l.local_addr().expect("addr").to_string();
    drop(l);
    a
}

/// Connects and waits for the rule to close the connection (its target refused).
fn connect_once(port: u16) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("the rule's port accepts");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let _ = s.read(&mut [0u8; 16]);
}

/// Batches from `rx` until one holds a line `pick` accepts (bounded by 20 s).
fn wait_line(rx: &mpsc::Receiver<LogBatch>, what: &str, pick: impl Fn(&LogEntry) -> bool) -> LogEntry {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let b = rx.recv_timeout(left).unwrap_or_else(|_| panic!("no batch with {what} within 20 s"));
        if let Some(l) = b.lines.into_iter().find(|l| pick(l)) {
            return l;
        }
    }
}

fn field<'a>(l: &'a LogEntry, name: &str) -> Option<&'a str> {
    l.fields.iter().find(|f| f.name == name).map(|f| f.value.as_str())
}

fn wait_until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_refused_target_streams_a_warning_naming_the_rule_and_the_target() {
    let dir = tempfile::tempdir().expect("tmp");
    let b = backend(dir.path());
    let target = dead_addr();
    let port = free_port();
    b.rule_save(draft("dead-end", format!("127.0.0.1:{port}"), target.clone()), None).expect("saved");

    let (tx, rx) = mpsc::channel();
    let times = Arc::new(Mutex::new(Vec::new()));
    let t2 = times.clone();
    let id = b.stream_logs(0, move |batch| {
        t2.lock().unwrap().push(Instant::now());
        tx.send(batch).is_ok()
    });
    // The first batch is the ring's recent lines, the rule's start among them.
    let first = rx.recv_timeout(Duration::from_secs(20)).expect("the initial batch");
    assert!(!first.lines.is_empty() && first.lines.len() <= 500, "{}", first.lines.len());
    let started = first.lines.iter().find(|l| l.rule.as_deref() == Some("dead-end") && l.message.contains("listening on"));
    let started = started.unwrap_or_else(|| panic!("no start line of dead-end in {:#?}", first.lines));
    assert_eq!(started.level, LogLevel::Info);
    assert!(started.message.contains(&target), "{}", started.message);
    // Numbered in order, without gaps.
    assert!(first.lines.windows(2).all(|w| w[1].seq == w[0].seq + 1));

    connect_once(port);
    let line = wait_line(&rx, "the refusal", |l| l.rule.as_deref() == Some("dead-end") && l.level <= LogLevel::Warn);
    assert_eq!(field(&line, "target"), Some(target.as_str()), "{line:?}");
    assert!(line.message.contains("refused"), "{line:?}");
    assert!(!line.fields.iter().any(|f| f.name == "service"), "the rule is not repeated as a field: {line:?}");
    assert!(line.seq > first.lines.last().map(|l| l.seq).unwrap_or(0));

    // Batches come at most four a second, however fast lines come (each connection
    // now writes that the target is marked failed).
    let deadline = Instant::now() + Duration::from_secs(20);
    while times.lock().unwrap().len() < 5 {
        assert!(Instant::now() < deadline, "5 batches within 20 s");
        connect_once(port);
    }
    let t = times.lock().unwrap().clone();
    for w in t[1..].windows(2) {
        assert!(w[1] - w[0] >= Duration::from_millis(240), "batches {:?} apart", w[1] - w[0]);
    }

    assert!(b.logs_unsubscribe(id));
    wait_until("the stream to end", || !b.log_stream_running(id));
    assert!(!b.logs_unsubscribe(id), "already ended");
    b.shutdown();
}

#[test]
fn a_view_that_comes_back_gets_only_what_it_missed() {
    let dir = tempfile::tempdir().expect("tmp");
    let b = backend(dir.path());
    let port = free_port();
    b.rule_save(draft("comeback", format!("127.0.0.1:{port}"), dead_addr()), None).expect("saved");
    let (tx, rx) = mpsc::channel();
    let id = b.stream_logs(0, move |batch| tx.send(batch).is_ok());
    let first = rx.recv_timeout(Duration::from_secs(20)).expect("initial");
    let last = first.lines.last().map(|l| l.seq).expect("some lines");
    b.logs_unsubscribe(id);
    // Hidden: lines come meanwhile.
    connect_once(port);
    wait_until("the refusal in the ring", || ring().recent(50).iter().any(|l| l.message.contains("refused") && l.fields.iter().any(|f| f.1 == "comeback")));
    let (tx, rx) = mpsc::channel();
    let id = b.stream_logs(last, move |batch| tx.send(batch).is_ok());
    let again = rx.recv_timeout(Duration::from_secs(20)).expect("initial again");
    assert!(again.lines.first().is_some_and(|l| l.seq == last + 1), "starts right after {last}: {:?}", again.lines.first());
    assert!(again.lines.iter().any(|l| l.rule.as_deref() == Some("comeback") && l.message.contains("refused")));
    b.logs_unsubscribe(id);
    b.shutdown();
}

#[test]
fn the_stream_ends_when_the_callback_returns_false() {
    let dir = tempfile::tempdir().expect("tmp");
    let b = backend(dir.path());
    let port = free_port();
    b.rule_save(draft("short-lived", format!("127.0.0.1:{port}"), dead_addr()), None).expect("saved");
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    // Takes the initial batch and one more, then says the window is gone.
    let id = b.stream_logs(0, move |_| c.fetch_add(1, Ordering::SeqCst) + 1 < 2);
    wait_until("the initial batch", || calls.load(Ordering::SeqCst) >= 1);
    assert!(b.log_stream_running(id));
    connect_once(port);
    wait_until("the stream to end", || !b.log_stream_running(id));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // More lines reach no one.
    let mine = || ring().recent(2000).iter().filter(|l| l.fields.iter().any(|f| f.0 == "service" && f.1 == "short-lived")).count();
    let before = mine();
    connect_once(port);
    wait_until("another line of the rule", || mine() > before);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(calls.load(Ordering::SeqCst), 2, "no batch after false");

    // A callback that refuses the initial batch ends the stream at once.
    let id = b.stream_logs(0, |_| false);
    wait_until("the refused stream to end", || !b.log_stream_running(id));
    b.shutdown();
}

/// Requests a client may send with a password in them, and a login that fails.
fn send_raw(port: u16, req: &str) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("proxy");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    s.write_all(req.as_bytes()).expect("write");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
}

#[test]
fn no_password_reaches_a_log_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let b = backend(dir.path());
    let (h, a, p) = (free_port(), free_port(), free_port());
    let socks = dead_addr();
    let yaml = format!(
        "services:
- name: pw-proxy
  addr: 127.0.0.1:{h}
  handler: {{type: http}}
  listener: {{type: tcp}}
- name: pw-auth
  addr: 127.0.0.1:{a}
  handler: {{type: http, auth: {{username: bob, password: hunter2}}}}
  listener: {{type: tcp}}
- name: pw-chain
  addr: 127.0.0.1:{p}
  handler: {{type: tcp, chain: pw-c}}
  listener: {{type: tcp}}
  forwarder: {{nodes: [{{name: t, addr: 127.0.0.1:9}}]}}
chains:
- name: pw-c
  hops:
  - name: h0
    nodes:
    - name: n0
      addr: {socks}
      connector: {{type: socks5, auth: {{username: bob, password: hunter2}}}}
      dialer: {{type: tcp}}
"
    );
    let s = b.profile_import(&yaml, Some("pw.yaml"), "pw").expect("import");
    assert!(s.rules.iter().any(|r| r.rule.name == "pw-chain" && r.state == RuleState::Running), "{:?}", s.rules);
    let (tx, rx) = mpsc::channel();
    let id = b.stream_logs(0, move |batch| tx.send(batch).is_ok());

    send_raw(h, "GET ftp://bob:hunter2@127.0.0.1:21/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    let l = wait_line(&rx, "the refused ftp request", |l| l.rule.as_deref() == Some("pw-proxy") && l.message.contains("ftp://"));
    assert!(l.message.contains("ftp://bob:****@127.0.0.1:21/x"), "{l:?}");
    send_raw(h, "GET http://bob:hunter2@/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    wait_line(&rx, "the request without host", |l| l.rule.as_deref() == Some("pw-proxy") && l.message.contains("not addressed to a proxy"));
    // base64("bob:hunter3")
    send_raw(a, "CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\nProxy-Authorization: Basic Ym9iOmh1bnRlcjM=\r\n\r\n");
    let l = wait_line(&rx, "the refused login", |l| l.rule.as_deref() == Some("pw-auth") && l.level <= LogLevel::Warn);
    assert!(l.message.contains("bob"), "names the user: {l:?}");
    connect_once(p);
    wait_line(&rx, "the refused chain", |l| l.rule.as_deref() == Some("pw-chain") && l.level <= LogLevel::Warn);
    b.logs_unsubscribe(id);

    let lines = ring().recent(2000);
    let leaked: Vec<_> = lines.iter().filter(|l| l.message.contains("hunter") || l.fields.iter().any(|f| f.1.contains("hunter"))).collect();
    assert!(leaked.is_empty(), "{leaked:#?}");
    let raw = String::from_utf8_lossy(&RAW.lock().unwrap()).into_owned();
    assert!(raw.contains("pw-proxy") && raw.contains("ftp://bob:****@"), "the text log has the lines too");
    assert!(!raw.contains("hunter"), "{raw}");
    b.shutdown();
}
