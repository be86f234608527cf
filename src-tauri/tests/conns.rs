//! The Connections view's backend against a real engine and real sockets: the live
//! stream, closing by id, the recently closed ring.

mod common;
use common::*;

use portway_app::backend::Backend;
use portway_ipc::*;
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A backend running rule `fwd` from a free port to an echo server; returns the port.
fn with_rule(b: &Backend, target: SocketAddr) -> u16 {
    let port = free_port();
    let draft = RuleDraft {
        name: "fwd".into(),
        kind: RuleKindDto::LocalTcp,
        listen: format!("127.0.0.1:{port}"),
        targets: vec![target.to_string()],
        strategy: "round".into(),
        max_fails: 1,
        fail_timeout_secs: 10,
        keep_alive: false,
        ttl_secs: 5,
        chain: String::new(),
    };
    let snap = b.rule_save(draft, None).expect("rule saved");
    let r = snap.rules.iter().find(|r| r.rule.name == "fwd").expect("rule listed");
    assert_eq!(r.state, RuleState::Running, "{:?}", r.error);
    port
}

/// A client through the rule, past the greeting.
fn client(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect through the rule");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut g = [0u8; 3];
    s.read_exact(&mut g).expect("greeting");
    assert_eq!(&g, b"hi\n");
    s
}

fn echo(s: &mut TcpStream, data: &[u8]) {
    s.write_all(data).expect("write");
    let mut back = vec![0u8; data.len()];
    s.read_exact(&mut back).expect("echo");
    assert_eq!(back, data);
}

/// The table as the window builds it from frames.
#[derive(Default)]
struct Table {
    rows: HashMap<u64, ConnRow>,
    closed: Vec<ClosedConn>,
    frames: usize,
}

impl Table {
    fn apply(&mut self, f: ConnsFrame) {
        if f.reset {
            self.rows.clear();
            self.closed.clear();
        }
        for id in f.removed {
            self.rows.remove(&id);
        }
        for r in f.upsert {
            assert!(!self.rows.contains_key(&r.id) || f.reset, "a listed row comes back as an update, not in full");
            self.rows.insert(r.id, r);
        }
        for [id, bytes_in, bytes_out, rate_in, rate_out] in f.update {
            let r = self.rows.get_mut(&id).unwrap_or_else(|| panic!("an update for unknown row {id}"));
            (r.bytes_in, r.bytes_out, r.rate_in, r.rate_out) = (bytes_in, bytes_out, rate_in, rate_out);
        }
        self.closed.extend(f.closed);
        assert_eq!(self.rows.len() as u64, f.live, "the frame's count matches the rows it implies");
        self.frames += 1;
    }

    /// Applies frames until `ok` holds (bounded by `secs`).
    fn until(&mut self, rx: &mpsc::Receiver<ConnsFrame>, secs: u64, what: &str, ok: impl Fn(&Table) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !ok(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(f) => self.apply(f),
                Err(_) => panic!("timed out waiting for {what}; rows: {:?}", self.rows.values().collect::<Vec<_>>()),
            }
        }
    }
}

fn subscribe(b: &Backend) -> (u64, mpsc::Receiver<ConnsFrame>) {
    let (tx, rx) = mpsc::channel();
    let id = b.conns_stream(move |f| tx.send(f).is_ok());
    (id, rx)
}

fn wait(what: &str, secs: u64, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn stream_shows_connections_with_rule_target_and_growing_bytes() {
    let dir = tempfile::tempdir().expect("tmp");
    let b = backend(dir.path());
    let target = echo_backend("hi");
    let port = with_rule(&b, target);
    let (_id, rx) = subscribe(&b);
    let mut t = Table::default();
    t.until(&rx, 5, "the first frame", |t| t.frames > 0);

    let mut a = client(port);
    let mut c = client(port);
    echo(&mut a, b"ping");
    let local_a = a.local_addr().expect("addr").to_string();
    let local_c = c.local_addr().expect("addr").to_string();
    t.until(&rx, 10, "both connections listed with a's 4 bytes", |t| {
        let a = t.rows.values().find(|r| r.client == local_a);
        t.rows.len() == 2 && a.is_some_and(|r| r.bytes_in == 4 && r.bytes_out == 3 + 4)
    });
    for r in t.rows.values() {
        assert_eq!(r.rule, "fwd");
        assert_eq!(r.target, target.to_string());
        assert_eq!(r.network, "tcp");
        assert!(r.client == local_a || r.client == local_c, "{r:?}");
    }

    // More bytes on c: its row grows and shows a rate; a's rate falls back to 0.
    echo(&mut c, &[7u8; 50_000]);
    t.until(&rx, 10, "c's bytes and rate", |t| {
        t.rows.values().any(|r| r.client == local_c && r.bytes_in == 50_000 && r.bytes_out == 50_003 && r.rate_in > 0)
    });
    t.until(&rx, 10, "c's rate back to 0 once it is quiet", |t| t.rows.values().any(|r| r.client == local_c && r.rate_in == 0 && r.bytes_in == 50_000));
    assert!(t.rows.values().any(|r| r.client == local_a && r.rate_in == 0 && r.bytes_in == 4));

    // A quiet tick sends no rows at all.
    let f = rx.recv_timeout(Duration::from_secs(5)).expect("a frame");
    assert!(f.upsert.is_empty() && f.update.is_empty() && f.removed.is_empty(), "nothing changed, nothing sent: {f:?}");
    assert_eq!(f.live, 2);

    // A client that leaves is removed from the table.
    drop(a);
    t.until(&rx, 10, "a removed", |t| t.rows.len() == 1 && t.rows.values().all(|r| r.client == local_c));
    b.shutdown();
}

#[test]
fn closing_by_id_closes_the_client_socket_and_keeps_it_in_recently_closed() {
    let dir = tempfile::tempdir().expect("tmp");
    let b = backend(dir.path());
    let port = with_rule(&b, echo_backend("hi"));
    let mut keep = client(port);
    let mut gone = client(port);
    echo(&mut gone, b"12345");
    let gone_addr = gone.local_addr().expect("addr").to_string();
    // No stream is open: the ring is kept by the backend regardless.
    assert_eq!(b.conns_streams(), 0);
    let id = {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(c) = b.engine().connections().into_iter().find(|c| c.client == gone_addr) {
                break c.id;
            }
            assert!(Instant::now() < deadline, "the connection listed");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    b.conn_close(id).expect("closed");

    let started = Instant::now();
    let mut buf = [0u8; 16];
    match gone.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("{n} bytes after close"),
        Err(e) => assert!(!matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut), "no close within 5 s: {e}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    // The other one still echoes.
    echo(&mut keep, b"still here");

    wait("the closed connection in recently closed", 5, || b.conns_recent().iter().any(|c| c.conn.id == id));
    let recent = b.conns_recent();
    let c = recent.iter().find(|c| c.conn.id == id).expect("listed");
    assert_eq!(c.conn.client, gone_addr);
    assert_eq!(c.conn.rule, "fwd");
    assert_eq!((c.conn.bytes_in, c.conn.bytes_out), (5, 3 + 5), "its totals");
    assert_eq!(c.error.as_deref(), Some("closed by user"));
    assert!(c.closed_at >= c.conn.since && c.duration_ms == c.closed_at - c.conn.since);

    // Closing it again says it is gone.
    let e = b.conn_close(id).expect_err("already closed");
    assert_eq!(e.code, ErrorCode::NotFound);

    // A stream opened later starts with the ring and without the closed one.
    let (_sid, rx) = subscribe(&b);
    let f = rx.recv_timeout(Duration::from_secs(5)).expect("the first frame");
    assert!(f.reset);
    assert!(f.closed.iter().any(|c| c.conn.id == id));
    assert_eq!(f.upsert.len(), 1);
    assert_eq!(f.upsert[0].client, keep.local_addr().expect("addr").to_string());

    // Close-all of a list: only ids still open count.
    assert_eq!(b.conns_close(&[f.upsert[0].id, id, 999_999]), 1);
    let mut buf = [0u8; 16];
    assert!(matches!(keep.read(&mut buf), Ok(0) | Err(_)));
    b.shutdown();
}

#[test]
fn recently_closed_is_bounded_to_the_last_200() {
    let dir = tempfile::tempdir().expect("tmp");
    let b = backend(dir.path());
    let port = with_rule(&b, echo_backend("hi"));
    let mut clients = Vec::new();
    for _ in 0..210 {
        let mut c = client(port);
        echo(&mut c, b"x");
        clients.push(c.local_addr().expect("addr").to_string());
        drop(c);
    }
    let last = clients.last().cloned().expect("clients");
    wait("the last close recorded", 10, || b.conns_recent().iter().any(|c| c.conn.client == last));
    wait("every close recorded", 10, || b.engine().connections().is_empty());
    let recent = b.conns_recent();
    assert_eq!(recent.len(), 200);
    assert!(!recent.iter().any(|c| c.conn.client == clients[0]), "the oldest fell out");
    assert!(recent.iter().all(|c| c.conn.bytes_in == 1 && c.conn.bytes_out == 4));
    b.shutdown();
}

#[test]
fn streams_stop_when_unsubscribed_or_when_the_window_is_gone() {
    let dir = tempfile::tempdir().expect("tmp");
    let b = backend(dir.path());
    let (id, rx) = subscribe(&b);
    rx.recv_timeout(Duration::from_secs(5)).expect("the first frame");
    assert_eq!(b.conns_streams(), 1);
    b.conns_unsubscribe(id);
    wait("the stream stopped", 5, || b.conns_streams() == 0);
    // Once stopped, nothing more arrives.
    while rx.try_recv().is_ok() {}
    assert!(rx.recv_timeout(Duration::from_millis(2500)).is_err(), "a frame after unsubscribe");

    // A channel that cannot deliver (the window went away) ends its stream too.
    let (_id, rx) = subscribe(&b);
    drop(rx);
    wait("the orphaned stream stopped", 5, || b.conns_streams() == 0);
    b.shutdown();
}
