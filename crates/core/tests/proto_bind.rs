//! GOST's BIND family over real loopback sockets: SOCKS5 MUX-BIND / BIND /
//! UDP-TUN bind and relay BIND TCP / UDP, Portway client against Portway
//! server, and each side against a scripted peer that speaks the exact bytes of
//! gost-compat.md §5.8 C and F (GOST itself is not available here, so those
//! bytes are the interop evidence). The servers here are the glue the engine
//! will have: accept → bind → pipe every inbound connection.

use portway_core::codec::addr::Addr;
use portway_core::codec::socks5::cmd;
use portway_core::connector::bind::MuxListener;
use portway_core::connector::relay::{self as crelay, ConnectorOptions};
use portway_core::connector::socks5::Socks5Connector;
use portway_core::framed::tun_split;
use portway_core::handler::bind::MuxBindServer;
use portway_core::handler::relay::{self as hrelay, Command};
use portway_core::handler::socks5 as h5;
use portway_core::mux::{MuxConfig, MuxStream};
use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

const T: Duration = Duration::from_secs(5);

async fn t<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(T, f).await.expect("timed out after 5 s")
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn port_hex(p: u16) -> String {
    format!("{p:04X}")
}

/// Aborts the server's accept loop, and with its JoinSet every connection task,
/// when the test ends.
struct Task(JoinHandle<()>);
impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a server reports: an error text, or that a bind session ended.
#[derive(Debug, PartialEq)]
enum Event {
    Error(String),
    BindEnded,
}

struct Server {
    addr: SocketAddr,
    events: mpsc::UnboundedReceiver<Event>,
    _task: Task,
}

impl Server {
    async fn next(&mut self) -> Event {
        t(self.events.recv()).await.expect("server gone")
    }

    async fn error(&mut self) -> String {
        match self.next().await {
            Event::Error(e) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Proto {
    Socks5,
    Relay,
}

async fn server(proto: Proto, bind: bool) -> Server {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, events) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        while let Ok((c, _)) = l.accept().await {
            let tx = tx.clone();
            match proto {
                Proto::Socks5 => conns.spawn(socks5_conn(c, bind, tx)),
                Proto::Relay => conns.spawn(relay_conn(c, bind, tx)),
            };
        }
    });
    Server { addr, events, _task: Task(task) }
}

async fn socks5_conn(mut c: TcpStream, bind: bool, tx: mpsc::UnboundedSender<Event>) {
    let opts = h5::ServerOptions { bind, ..Default::default() };
    let local_ip = c.local_addr().ok().map(|a| a.ip());
    let req = match h5::accept(&mut c, &opts).await.map(|(_, r)| r) {
        Ok(r) => r,
        Err(e) => return drop(tx.send(Event::Error(e.to_string()))),
    };
    let r = match req.cmd {
        cmd::MUX_BIND => match h5::mux_bind(c, &req, local_ip, MuxConfig::default()).await {
            Ok(srv) => return serve_mux(srv, tx).await,
            Err(e) => Err(e.to_string()),
        },
        cmd::BIND => match h5::bind(c, &req, local_ip).await {
            Ok(mut b) => tokio::io::copy_bidirectional(&mut b.control, &mut b.peer).await.map(drop).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        },
        cmd::UDP_TUN => match h5::udp_bind(&mut c, &req).await {
            Ok(sock) => h5::udp_tun_serve(c, sock, &|_| {}, &|_| {}).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        },
        other => Err(format!("unexpected command {other}")),
    };
    let _ = tx.send(match r {
        Ok(()) => Event::BindEnded,
        Err(e) => Event::Error(e),
    });
}

async fn relay_conn(mut c: TcpStream, bind: bool, tx: mpsc::UnboundedSender<Event>) {
    let opts = hrelay::ServerOptions { bind, ..Default::default() };
    let req = match hrelay::accept(&mut c, &opts).await {
        Ok(r) => r,
        Err(e) => return drop(tx.send(Event::Error(e.to_string()))),
    };
    assert_eq!(req.cmd, Command::Bind);
    let addr = req.addr.clone().unwrap();
    let r = match req.network {
        portway_core::codec::relay::Network::Tcp => match hrelay::bind_tcp(c, &addr, MuxConfig::default()).await {
            Ok(srv) => return serve_mux(srv, tx).await,
            Err(e) => Err(e.to_string()),
        },
        portway_core::codec::relay::Network::Udp => match hrelay::bind_udp(&mut c, &addr).await {
            Ok(sock) => h5::udp_tun_serve(c, sock, &|_| {}, &|_| {}).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        },
    };
    let _ = tx.send(match r {
        Ok(()) => Event::BindEnded,
        Err(e) => Event::Error(e),
    });
}

/// The engine's loop: pipe every inbound connection; report when the control
/// connection ended (after the listener is gone).
async fn serve_mux(mut srv: MuxBindServer, tx: mpsc::UnboundedSender<Event>) {
    let mut pipes = JoinSet::new();
    while let Ok(Some(mut inb)) = srv.accept().await {
        pipes.spawn(async move {
            let _ = tokio::io::copy_bidirectional(&mut inb.peer, &mut inb.stream).await;
        });
    }
    drop(srv);
    let _ = tx.send(Event::BindEnded);
}

fn loopback0() -> Addr {
    Addr::parse("127.0.0.1:0").unwrap()
}

fn relay_opts(srv: &Server) -> ConnectorOptions {
    ConnectorOptions { auth: None, nodelay: false, server: srv.addr.to_string() }
}

async fn socks5_mux_bind(srv: &Server, addr: &Addr) -> (Addr, MuxListener) {
    let c = t(TcpStream::connect(srv.addr)).await.unwrap();
    t(Socks5Connector::default().mux_bind(c, addr, MuxConfig::default())).await.unwrap()
}

async fn relay_mux_bind(srv: &Server, addr: &Addr) -> (Addr, MuxListener) {
    let c = t(TcpStream::connect(srv.addr)).await.unwrap();
    t(crelay::bind_tcp(c, addr, &relay_opts(srv), MuxConfig::default())).await.unwrap()
}

/// Three peers connect at once to the remote port; each gets its own stream,
/// named with its own address, and bytes go both ways on each.
async fn three_peers_both_ways(bound: &Addr, ln: &MuxListener) {
    let bound = bound.socket_addr().unwrap();
    let mut peers = Vec::new();
    for i in 0..3u8 {
        let mut p = t(TcpStream::connect(bound)).await.unwrap();
        t(p.write_all(format!("hello from peer {i}").as_bytes())).await.unwrap();
        peers.push(p);
    }
    let want: HashSet<String> = peers.iter().map(|p| p.local_addr().unwrap().to_string()).collect();
    let mut seen = HashSet::new();
    let mut streams: Vec<(MuxStream, Addr)> = Vec::new();
    for _ in 0..3 {
        streams.push(t(ln.accept()).await.expect("listener ended"));
    }
    for (s, peer) in streams.iter_mut() {
        seen.insert(peer.to_string());
        let mut b = [0u8; 17];
        t(s.read_exact(&mut b)).await.unwrap();
        let text = String::from_utf8(b.to_vec()).unwrap();
        assert!(text.starts_with("hello from peer "), "{text}");
        let reply = format!("answer to {}", &text[16..]);
        t(s.write_all(reply.as_bytes())).await.unwrap();
    }
    assert_eq!(seen, want, "each stream names the peer that opened it");
    for (i, p) in peers.iter_mut().enumerate() {
        let mut b = [0u8; 11];
        t(p.read_exact(&mut b)).await.unwrap();
        assert_eq!(b, format!("answer to {i}").as_bytes());
    }
    // Closing one side of a stream ends the peer's connection (FIN).
    let (s, _) = streams.remove(0);
    drop(s);
    let mut rest = Vec::new();
    t(peers[0].read_to_end(&mut rest)).await.unwrap();
    assert!(rest.is_empty());
}

#[tokio::test]
async fn socks5_mux_bind_three_peers() {
    let srv = server(Proto::Socks5, true).await;
    let (bound, ln) = socks5_mux_bind(&srv, &loopback0()).await;
    assert_eq!(bound.socket_addr().unwrap().ip().to_string(), "127.0.0.1", "reply host = control connection's local IP");
    assert_ne!(bound.port, 0);
    three_peers_both_ways(&bound, &ln).await;
}

#[tokio::test]
async fn relay_bind_tcp_three_peers() {
    let srv = server(Proto::Relay, true).await;
    let (bound, ln) = relay_mux_bind(&srv, &loopback0()).await;
    assert_eq!(bound.socket_addr().unwrap().ip().to_string(), "127.0.0.1");
    three_peers_both_ways(&bound, &ln).await;
}

#[tokio::test]
async fn socks5_plain_bind() {
    let srv = server(Proto::Socks5, true).await;
    let mut c = t(TcpStream::connect(srv.addr)).await.unwrap();
    let conn = Socks5Connector::default();
    let bound = t(conn.bind(&mut c, &loopback0())).await.unwrap().1;
    let mut p = t(TcpStream::connect(bound.socket_addr().unwrap())).await.unwrap();
    let peer = t(conn.bind_accepted(&mut c, &bound)).await.unwrap();
    assert_eq!(peer.to_string(), p.local_addr().unwrap().to_string());
    t(p.write_all(b"ping")).await.unwrap();
    let mut b = [0u8; 4];
    t(c.read_exact(&mut b)).await.unwrap();
    assert_eq!(&b, b"ping");
    t(c.write_all(b"pong")).await.unwrap();
    t(p.read_exact(&mut b)).await.unwrap();
    assert_eq!(&b, b"pong");
}

/// A UDP port that was free a moment ago (UDP-TUN bind needs a port ≠ 0: port 0
/// means a plain association).
async fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port()
}

/// Two peers send to the remote UDP port; the client sees each datagram with
/// its sender and answers each sender through the tunnel.
async fn two_udp_peers<S>(control: S, bound: &Addr)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite,
{
    let (mut rx, mut tx) = tun_split(control);
    let bound = bound.socket_addr().unwrap();
    let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    a.send_to(b"from a", bound).await.unwrap();
    b.send_to(b"from b", bound).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        let (peer, payload) = t(rx.recv()).await.unwrap().unwrap();
        got.push((peer.to_string(), payload.to_vec()));
    }
    got.sort();
    let (pa, pb) = (a.local_addr().unwrap().to_string(), b.local_addr().unwrap().to_string());
    let mut want = vec![(pa.clone(), b"from a".to_vec()), (pb.clone(), b"from b".to_vec())];
    want.sort();
    assert_eq!(got, want);
    t(tx.send(&Addr::parse(&pa).unwrap(), b"to a")).await.unwrap();
    t(tx.send(&Addr::parse(&pb).unwrap(), b"to b")).await.unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = t(a.recv_from(&mut buf)).await.unwrap();
    assert_eq!((&buf[..n], from), (&b"to a"[..], bound));
    let (n, from) = t(b.recv_from(&mut buf)).await.unwrap();
    assert_eq!((&buf[..n], from), (&b"to b"[..], bound));
}

#[tokio::test]
async fn socks5_udp_tun_bind_two_peers() {
    let srv = server(Proto::Socks5, true).await;
    let mut c = t(TcpStream::connect(srv.addr)).await.unwrap();
    let want = Addr::parse(&format!("127.0.0.1:{}", free_udp_port().await)).unwrap();
    let bound = t(Socks5Connector::default().udp_bind(&mut c, &want)).await.unwrap().1;
    assert_eq!(bound, want, "answered with the UDP socket's own address");
    two_udp_peers(c, &bound).await;
}

#[tokio::test]
async fn relay_bind_udp_two_peers() {
    let srv = server(Proto::Relay, true).await;
    let mut c = t(TcpStream::connect(srv.addr)).await.unwrap();
    let bound = t(crelay::bind_udp(&mut c, &loopback0(), &relay_opts(&srv))).await.unwrap();
    assert_eq!(bound.socket_addr().unwrap().ip().to_string(), "127.0.0.1");
    assert_ne!(bound.port, 0);
    two_udp_peers(c, &bound).await;
}

/// Dropping the client's listener ends the control connection; the server then
/// closes the remote port.
async fn control_drop_closes_remote_listener(proto: Proto) {
    let mut srv = server(proto, true).await;
    let (bound, ln) = match proto {
        Proto::Socks5 => socks5_mux_bind(&srv, &loopback0()).await,
        Proto::Relay => relay_mux_bind(&srv, &loopback0()).await,
    };
    let bound = bound.socket_addr().unwrap();
    // Open while the control connection lives.
    let _early = t(TcpStream::connect(bound)).await.unwrap();
    drop(ln);
    assert_eq!(srv.next().await, Event::BindEnded);
    let e = t(TcpStream::connect(bound)).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
}

#[tokio::test]
async fn socks5_control_drop_closes_remote_listener() {
    control_drop_closes_remote_listener(Proto::Socks5).await;
}

#[tokio::test]
async fn relay_control_drop_closes_remote_listener() {
    control_drop_closes_remote_listener(Proto::Relay).await;
}

#[tokio::test]
async fn port_in_use_is_an_error_on_both_sides() {
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = Addr::from(taken.local_addr().unwrap());

    let mut srv = server(Proto::Socks5, true).await;
    let c = t(TcpStream::connect(srv.addr)).await.unwrap();
    let e = t(Socks5Connector::default().mux_bind(c, &addr, MuxConfig::default())).await.unwrap_err().to_string();
    assert_eq!(e, format!("socks5: server refused MUX-BIND {addr}: general failure (reply 0x01)"));
    let e = srv.error().await;
    assert!(e.starts_with(&format!("socks5: cannot listen on {addr} for MUX-BIND: ")), "{e}");
    assert!(e.to_lowercase().contains("in use"), "{e}");

    let mut srv = server(Proto::Relay, true).await;
    let c = t(TcpStream::connect(srv.addr)).await.unwrap();
    let e = t(crelay::bind_tcp(c, &addr, &relay_opts(&srv), MuxConfig::default())).await.unwrap_err().to_string();
    assert_eq!(e, format!("relay: {} refused: service unavailable", srv.addr));
    let e = srv.error().await;
    assert!(e.starts_with(&format!("relay: cannot listen on {addr} for BIND: ")), "{e}");

    let taken_udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let uaddr = Addr::from(taken_udp.local_addr().unwrap());
    let mut srv = server(Proto::Socks5, true).await;
    let mut c = t(TcpStream::connect(srv.addr)).await.unwrap();
    let e = t(Socks5Connector::default().udp_bind(&mut c, &uaddr)).await.unwrap_err().to_string();
    assert_eq!(e, format!("socks5: server refused UDP-TUN {uaddr}: general failure (reply 0x01)"));
    assert!(srv.error().await.starts_with(&format!("socks5: cannot listen on {uaddr} for UDP-TUN: ")));
}

#[tokio::test]
async fn bind_false_is_refused_naming_the_option() {
    let mut srv = server(Proto::Socks5, false).await;
    let c = t(TcpStream::connect(srv.addr)).await.unwrap();
    let e = t(Socks5Connector::default().mux_bind(c, &loopback0(), MuxConfig::default())).await.unwrap_err().to_string();
    assert_eq!(e, "socks5: server refused MUX-BIND 127.0.0.1:0: not allowed by ruleset (reply 0x02)");
    assert_eq!(srv.error().await, "socks5: MUX-BIND is disabled on this service (enable it with bind=true)");

    let mut srv = server(Proto::Relay, false).await;
    let c = t(TcpStream::connect(srv.addr)).await.unwrap();
    let e = t(crelay::bind_tcp(c, &loopback0(), &relay_opts(&srv), MuxConfig::default())).await.unwrap_err().to_string();
    assert_eq!(e, format!("relay: {} refused: forbidden", srv.addr));
    assert_eq!(srv.error().await, "relay: BIND is disabled (the relay service needs bind=true)");
}

// ---- byte-exact: our server against a scripted GOST client ----

/// §5.8 C from the client's side of the wire: a raw client sends GOST's bytes
/// and checks every byte our server sends back, then plays smux server.
#[tokio::test]
async fn socks5_server_speaks_example_c() {
    let srv = server(Proto::Socks5, true).await;
    let mut c = t(TcpStream::connect(srv.addr)).await.unwrap();
    t(c.write_all(&hex("05 01 00"))).await.unwrap();
    let mut m = [0u8; 2];
    t(c.read_exact(&mut m)).await.unwrap();
    assert_eq!(m, [5, 0]);
    t(c.write_all(&hex("05 F2 00 01 7F000001 0000"))).await.unwrap();
    let mut r = [0u8; 10];
    t(c.read_exact(&mut r)).await.unwrap();
    assert_eq!(r[..8], hex("05 00 00 01 7F000001")[..]);
    let port = u16::from_be_bytes([r[8], r[9]]);
    assert_ne!(port, 0);

    let mut peer = t(TcpStream::connect(("127.0.0.1", port))).await.unwrap();
    let pp = port_hex(peer.local_addr().unwrap().port());
    let want = hex(&format!("01 00 0000 03000000  01 02 0A00 03000000 05 00 00 01 7F000001 {pp}"));
    let mut got = vec![0u8; want.len()];
    t(c.read_exact(&mut got)).await.unwrap();
    assert_eq!(got, want, "SYN sid=3, then PSH with the SOCKS5 reply naming the peer");

    // Peer → client arrives as PSH on sid 3; client → peer as our PSH.
    t(peer.write_all(b"abc")).await.unwrap();
    let mut f = [0u8; 11];
    t(c.read_exact(&mut f)).await.unwrap();
    assert_eq!(f.to_vec(), hex("01 02 0300 03000000 616263"));
    t(c.write_all(&hex("01 02 0200 03000000 7879"))).await.unwrap();
    let mut b = [0u8; 2];
    t(peer.read_exact(&mut b)).await.unwrap();
    assert_eq!(&b, b"xy");
    // The client's FIN reaches the peer as EOF; once the peer closes too, the
    // server ends the stream with its own FIN.
    t(c.write_all(&hex("01 01 0000 03000000"))).await.unwrap();
    let mut rest = Vec::new();
    t(peer.read_to_end(&mut rest)).await.unwrap();
    assert!(rest.is_empty());
    drop(peer);
    let mut fin = [0u8; 8];
    t(c.read_exact(&mut fin)).await.unwrap();
    assert_eq!(fin.to_vec(), hex("01 01 0000 03000000"));
}

/// §5.8 F for a loopback address: the request as GOST's client writes it, our
/// server's answer with the listener's address, and the per-stream response.
#[tokio::test]
async fn relay_server_speaks_example_f() {
    let srv = server(Proto::Relay, true).await;
    let mut c = t(TcpStream::connect(srv.addr)).await.unwrap();
    t(c.write_all(&hex("01 02 000F 04 0002 0000 02 0007 01 7F000001 0000"))).await.unwrap();
    let mut r = [0u8; 14];
    t(c.read_exact(&mut r)).await.unwrap();
    assert_eq!(r[..12], hex("01 00 000A 02 0007 01 7F000001")[..]);
    let port = u16::from_be_bytes([r[12], r[13]]);

    let mut peer = t(TcpStream::connect(("127.0.0.1", port))).await.unwrap();
    let pp = port_hex(peer.local_addr().unwrap().port());
    let want = hex(&format!("01 00 0000 03000000  01 02 0E00 03000000 01 00 000A 02 0007 01 7F000001 {pp}"));
    let mut got = vec![0u8; want.len()];
    t(c.read_exact(&mut got)).await.unwrap();
    assert_eq!(got, want);
    t(c.write_all(&hex("01 02 0200 03000000 6869"))).await.unwrap();
    let mut b = [0u8; 2];
    t(peer.read_exact(&mut b)).await.unwrap();
    assert_eq!(&b, b"hi");
}

/// A stable GOST v3.2.6 client's `rtcp://:PORT` over relay: the address is an
/// empty domain (`03 00 PORT`), which means every interface.
#[tokio::test]
async fn relay_server_takes_the_empty_domain_of_gost_326() {
    let srv = server(Proto::Relay, true).await;
    let port = TcpListener::bind("0.0.0.0:0").await.unwrap().local_addr().unwrap().port();
    let mut c = t(TcpStream::connect(srv.addr)).await.unwrap();
    t(c.write_all(&hex(&format!("01 02 000C 04 0002 0000 02 0004 03 00 {}", port_hex(port))))).await.unwrap();
    let mut r = [0u8; 14];
    t(c.read_exact(&mut r)).await.unwrap();
    assert_eq!(r.to_vec(), hex(&format!("01 00 000A 02 0007 01 00000000 {}", port_hex(port))));
    // Reachable on loopback, so it listens on all interfaces.
    let _peer = t(TcpStream::connect(("127.0.0.1", port))).await.unwrap();
    let mut syn = [0u8; 8];
    t(c.read_exact(&mut syn)).await.unwrap();
    assert_eq!(syn.to_vec(), hex("01 00 0000 03000000"));
}

// ---- byte-exact: our client against a scripted GOST server ----

/// §5.8 C from the server's side: checks the client's bytes exactly, answers
/// like GOST, then opens stream 3 for peer 203.0.113.9:40000.
#[tokio::test]
async fn socks5_client_speaks_example_c() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let gost = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut b = [0u8; 3];
        s.read_exact(&mut b).await.unwrap();
        assert_eq!(b.to_vec(), hex("05 01 00"));
        s.write_all(&hex("05 00")).await.unwrap();
        let mut req = [0u8; 10];
        s.read_exact(&mut req).await.unwrap();
        assert_eq!(req.to_vec(), hex("05 F2 00 01 00000000 1F90"));
        s.write_all(&hex("05 00 00 01 7F000001 1F90")).await.unwrap();
        s.write_all(&hex("01 00 0000 03000000 01 02 0A00 03000000 05 00 00 01 CB007109 9C40")).await.unwrap();
        s.write_all(&hex("01 02 0500 03000000 68656c6c6f")).await.unwrap();
        let mut f = [0u8; 10];
        s.read_exact(&mut f).await.unwrap();
        assert_eq!(f.to_vec(), hex("01 02 0200 03000000 6f6b"));
        s.write_all(&hex("01 01 0000 03000000")).await.unwrap();
        let mut fin = [0u8; 8];
        s.read_exact(&mut fin).await.unwrap();
        assert_eq!(fin.to_vec(), hex("01 01 0000 03000000"));
        s
    });
    let c = t(TcpStream::connect(addr)).await.unwrap();
    let (bound, ln) = t(Socks5Connector::default().mux_bind(c, &Addr::parse(":8080").unwrap(), MuxConfig::default())).await.unwrap();
    assert_eq!(bound.to_string(), "127.0.0.1:8080");
    let (mut s, peer) = t(ln.accept()).await.unwrap();
    assert_eq!((s.id(), peer.to_string()), (3, "203.0.113.9:40000".to_string()));
    let mut b = [0u8; 5];
    t(s.read_exact(&mut b)).await.unwrap();
    assert_eq!(&b, b"hello");
    t(s.write_all(b"ok")).await.unwrap();
    let mut rest = Vec::new();
    t(s.read_to_end(&mut rest)).await.unwrap();
    assert!(rest.is_empty());
    drop(s);
    let _gost_conn = t(gost).await.unwrap();
}

/// §5.8 F from the server's side, for `rtcp://0.0.0.0:8080`.
#[tokio::test]
async fn relay_client_speaks_example_f() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let gost = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut req = [0u8; 19];
        s.read_exact(&mut req).await.unwrap();
        assert_eq!(req.to_vec(), hex("01 02 000F 04 0002 0000 02 0007 01 00000000 1F90"));
        // A GOST relay server listening with plain `tcp` reports `[::]:8080`.
        s.write_all(&hex("01 00 0016 02 0013 04 00000000000000000000000000000000 1F90")).await.unwrap();
        s.write_all(&hex("01 00 0000 03000000 01 02 0E00 03000000 01 00 000A 02 0007 01 CB007109 9C40 01 02 0100 03000000 21")).await.unwrap();
        s
    });
    let c = t(TcpStream::connect(addr)).await.unwrap();
    let opts = ConnectorOptions { auth: None, nodelay: false, server: addr.to_string() };
    let (bound, ln) = t(crelay::bind_tcp(c, &Addr::parse("0.0.0.0:8080").unwrap(), &opts, MuxConfig::default())).await.unwrap();
    assert_eq!(bound.to_string(), "[::]:8080");
    let (mut s, peer) = t(ln.accept()).await.unwrap();
    assert_eq!(peer.to_string(), "203.0.113.9:40000");
    let mut b = [0u8; 1];
    t(s.read_exact(&mut b)).await.unwrap();
    assert_eq!(&b, b"!");
    let _gost_conn = t(gost).await.unwrap();
}

/// Bad per-stream headers are skipped, not fatal: the next good stream still
/// comes through, and the session's end ends `accept`.
#[tokio::test]
async fn a_broken_stream_header_is_skipped() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let gost = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut b = [0u8; 3];
        s.read_exact(&mut b).await.unwrap();
        s.write_all(&hex("05 00")).await.unwrap();
        let mut b = [0u8; 10];
        s.read_exact(&mut b).await.unwrap();
        s.write_all(&hex("05 00 00 01 7F000001 1F90")).await.unwrap();
        // Stream 3 answers "failure", stream 5 is fine.
        s.write_all(&hex("01 00 0000 03000000 01 02 0A00 03000000 05 01 00 01 00000000 0000")).await.unwrap();
        s.write_all(&hex("01 00 0000 05000000 01 02 0A00 05000000 05 00 00 01 0A000001 0050")).await.unwrap();
        s.shutdown().await.unwrap();
        s
    });
    let c = t(TcpStream::connect(addr)).await.unwrap();
    let (_, ln) = t(Socks5Connector::default().mux_bind(c, &loopback0(), MuxConfig::default())).await.unwrap();
    let (s, peer) = t(ln.accept()).await.unwrap();
    assert_eq!((s.id(), peer.to_string()), (5, "10.0.0.1:80".to_string()));
    assert!(t(ln.accept()).await.is_none());
    assert_eq!(ln.close_reason().unwrap(), "the peer closed the connection");
    let _ = t(gost).await.unwrap();
}
