//! Standard SOCKS5 UDP ASSOCIATE (RFC 1928 §7) with real peers on loopback:
//! a SOCKS5 UDP client written here (TCP control + UDP socket, its own RFC
//! framing) against Portway's socks5 service with `udp=true`; Portway's
//! connector with GOST's `relay=udp` through danted and through Portway's own
//! handler.

mod common;
use common::peers::*;
use common::*;
use portway_core::config::{build_from_cmd, Config};
use portway_core::stats::Event;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;

fn cmd(services: &[String], nodes: &[String]) -> Config {
    match build_from_cmd(services, nodes) {
        Ok(c) => c,
        Err(e) => panic!("{services:?} {nodes:?}: {e}"),
    }
}

/// A UDP echo on `ip` answering `echo:` + payload, telling the test every
/// payload it received.
async fn recording_echo(ip: &str) -> (SocketAddr, mpsc::UnboundedReceiver<Vec<u8>>, Task) {
    let s = UdpSocket::bind((ip, 0)).await.expect("bind echo");
    let addr = s.local_addr().expect("addr");
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut b = vec![0u8; 65536];
        while let Ok((n, from)) = s.recv_from(&mut b).await {
            let _ = tx.send(b[..n].to_vec());
            let _ = s.send_to(&[b"echo:", &b[..n]].concat(), from).await;
        }
    });
    (addr, rx, Task(task))
}

/// The test's own SOCKS5 client: method negotiation (and RFC 1929), then
/// `05 03 00 01 00000000 0000`. Returns the raw reply (`05 REP 00 ATYP …`).
async fn associate_raw(ctl: &mut TcpStream, auth: Option<(&str, &str)>) -> Result<Vec<u8>, String> {
    let method = if auth.is_some() { 2u8 } else { 0 };
    ctl.write_all(&[5, 1, method]).await.map_err(|e| e.to_string())?;
    let mut b = [0u8; 2];
    ctl.read_exact(&mut b).await.map_err(|e| e.to_string())?;
    if b != [5, method] {
        return Err(format!("method answer {b:02x?}"));
    }
    if let Some((u, p)) = auth {
        let mut m = vec![1, u.len() as u8];
        m.extend_from_slice(u.as_bytes());
        m.push(p.len() as u8);
        m.extend_from_slice(p.as_bytes());
        ctl.write_all(&m).await.map_err(|e| e.to_string())?;
        ctl.read_exact(&mut b).await.map_err(|e| e.to_string())?;
        if b != [1, 0] {
            return Err(format!("auth status {b:02x?}"));
        }
    }
    ctl.write_all(&[5, 3, 0, 1, 0, 0, 0, 0, 0, 0]).await.map_err(|e| e.to_string())?;
    let mut reply = vec![0u8; 4];
    ctl.read_exact(&mut reply).await.map_err(|e| e.to_string())?;
    let rest = match reply[3] {
        1 => 6,
        4 => 18,
        t => return Err(format!("reply ATYP {t}")),
    };
    let mut addr = vec![0u8; rest];
    ctl.read_exact(&mut addr).await.map_err(|e| e.to_string())?;
    reply.extend_from_slice(&addr);
    Ok(reply)
}

struct Client {
    ctl: TcpStream,
    relay: SocketAddr,
}

async fn open(proxy: SocketAddr, auth: Option<(&str, &str)>) -> Client {
    let mut ctl = TcpStream::connect(proxy).await.expect("connect proxy");
    let reply = tokio::time::timeout(T, associate_raw(&mut ctl, auth)).await.expect("reply in time").expect("associate");
    assert_eq!(&reply[..4], &[5, 0, 0, 1], "success with an IPv4 relay address: {reply:02x?}");
    let relay = SocketAddr::from(([reply[4], reply[5], reply[6], reply[7]], u16::from_be_bytes([reply[8], reply[9]])));
    // Bound on the address the client reached, not a wildcard.
    assert_eq!(relay.ip().to_string(), proxy.ip().to_string());
    assert_ne!(relay.port(), 0);
    Client { ctl, relay }
}

/// `RSV RSV FRAG ATYP ADDR PORT DATA` for an IPv4 target.
fn datagram(frag: u8, to: SocketAddr, data: &[u8]) -> Vec<u8> {
    let SocketAddr::V4(v4) = to else { panic!("IPv4 only here") };
    [&[0, 0, frag, 1][..], &v4.ip().octets(), &v4.port().to_be_bytes(), data].concat()
}

/// Next datagram on `u`: (source address in its header, payload).
async fn answer(u: &UdpSocket) -> (SocketAddr, Vec<u8>) {
    let mut b = vec![0u8; 65536];
    let n = tokio::time::timeout(T, u.recv(&mut b)).await.expect("an answer within 5s").expect("recv");
    assert!(n >= 10, "short answer {:02x?}", &b[..n]);
    assert_eq!(&b[..4], &[0, 0, 0, 1], "RSV 0, FRAG 0, ATYP IPv4");
    let from = SocketAddr::from(([b[4], b[5], b[6], b[7]], u16::from_be_bytes([b[8], b[9]])));
    (from, b[10..n].to_vec())
}

async fn client_udp(ip: &str, relay: SocketAddr) -> UdpSocket {
    let u = UdpSocket::bind((ip, 0)).await.expect("bind client udp");
    u.connect(relay).await.expect("connect relay");
    u
}

async fn socks_service(url: &str) -> (portway_core::Engine, SocketAddr) {
    let e = engine();
    e.apply(cmd(&[url.to_string()], &[])).await;
    let a = listening(&e, "service-0");
    (e, a)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagrams_go_to_each_target_and_come_back_with_its_address() {
    let (echo1, mut seen1, _t1) = recording_echo("127.0.0.1").await;
    let (echo2, _seen2, _t2) = recording_echo("127.0.0.2").await;
    let (e, proxy) = socks_service("socks5://127.0.0.1:0?udp=true").await;
    let mut rx = e.subscribe();
    let c = open(proxy, None).await;
    let u = client_udp("127.0.0.1", c.relay).await;
    for (target, msg) in [(echo1, &b"one"[..]), (echo2, b"two"), (echo1, b"three")] {
        u.send(&datagram(0, target, msg)).await.unwrap();
        let (from, data) = answer(&u).await;
        assert_eq!(from, target, "the header names the target that answered");
        assert_eq!(data, [b"echo:", msg].concat());
    }
    // A name in the header (ATYP 03) is resolved by the server.
    let name = [&[0u8, 0, 0, 3, 9][..], b"localhost", &echo1.port().to_be_bytes(), b"named"].concat();
    u.send(&name).await.unwrap();
    let (from, data) = answer(&u).await;
    assert_eq!((from, data.as_slice()), (echo1, &b"echo:named"[..]));
    // A fragment is dropped: the echo sees the next datagram, not it.
    u.send(&datagram(1, echo1, b"fragment")).await.unwrap();
    u.send(&datagram(0, echo1, b"whole")).await.unwrap();
    assert_eq!(answer(&u).await.1, b"echo:whole");
    let mut got = Vec::new();
    while let Ok(p) = seen1.try_recv() {
        got.push(String::from_utf8_lossy(&p).into_owned());
    }
    assert_eq!(got, ["one", "three", "named", "whole"]);

    // Listed as a UDP connection of the client's control connection, counted.
    let conns = e.connections();
    let listed: Vec<_> = conns.iter().filter(|c| c.network == "udp").collect();
    assert_eq!(listed.len(), 1, "{conns:?}");
    assert_eq!(listed[0].client, c.ctl.local_addr().unwrap().to_string());
    drop(c);
    let ev = wait_event(&mut rx, |e| matches!(e, Event::ConnClosed { conn, .. } if conn.network == "udp")).await;
    let Event::ConnClosed { conn, error } = ev else { unreachable!() };
    assert_eq!(error, None);
    // one two three named whole → 21 bytes; each answer 5 bytes longer.
    assert_eq!((conn.bytes_in, conn.bytes_out), (21, 46), "payload bytes each way");
    let st = e.stats_now();
    assert_eq!((st[0].bytes_in, st[0].bytes_out), (21, 46));
    assert_eq!(st[0].total, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn username_and_password_come_before_the_association() {
    let (echo, _seen, _t) = recording_echo("127.0.0.1").await;
    let (_e, proxy) = socks_service("socks5://alice:s3cret@127.0.0.1:0?udp=true").await;
    let mut ctl = TcpStream::connect(proxy).await.unwrap();
    let err = tokio::time::timeout(T, associate_raw(&mut ctl, Some(("alice", "wrong")))).await.unwrap().unwrap_err();
    assert_eq!(err, "auth status [01, 01]");
    let mut ctl = TcpStream::connect(proxy).await.unwrap();
    let err = tokio::time::timeout(T, associate_raw(&mut ctl, None)).await.unwrap().unwrap_err();
    assert_eq!(err, "method answer [05, ff]", "no-auth is not accepted");
    let c = open(proxy, Some(("alice", "s3cret"))).await;
    let u = client_udp("127.0.0.1", c.relay).await;
    u.send(&datagram(0, echo, b"hi")).await.unwrap();
    assert_eq!(answer(&u).await, (echo, b"echo:hi".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_with_not_allowed_without_udp_true() {
    let (e, proxy) = socks_service("socks5://127.0.0.1:0").await;
    let mut rx = e.subscribe();
    let mut ctl = TcpStream::connect(proxy).await.unwrap();
    let reply = tokio::time::timeout(T, associate_raw(&mut ctl, None)).await.unwrap().unwrap();
    // GOST: gosocks5.NotAllowed with no address (handler/socks/v5/udp.go).
    assert_eq!(reply, [5, 2, 0, 1, 0, 0, 0, 0, 0, 0]);
    let mut b = [0u8; 1];
    assert_eq!(tokio::time::timeout(T, ctl.read(&mut b)).await.unwrap().unwrap_or(0), 0, "then closed");
    // The refusal is recorded after the stream closes: its log line comes last.
    wait_event(&mut rx, |e| matches!(e, Event::Log { line } if line.message.contains("UDP ASSOCIATE is disabled"))).await;
    let (_, msg) = e.stats_now()[0].last_error.clone().expect("the refusal shows on the rule");
    assert!(msg.contains("UDP ASSOCIATE is disabled on this service (enable it with udp=true)"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_control_connection_ends_the_association() {
    let (echo, _seen, _t) = recording_echo("127.0.0.1").await;
    let (e, proxy) = socks_service("socks5://127.0.0.1:0?udp=true").await;
    let mut rx = e.subscribe();
    let c = open(proxy, None).await;
    let u = client_udp("127.0.0.1", c.relay).await;
    u.send(&datagram(0, echo, b"alive")).await.unwrap();
    assert_eq!(answer(&u).await.1, b"echo:alive");
    drop(c.ctl);
    wait_event(&mut rx, |e| matches!(e, Event::ConnClosed { conn, .. } if conn.network == "udp")).await;
    // The relay socket is gone: the kernel answers port unreachable, which a
    // connected UDP socket reports as a refused connection.
    let refused = tokio::time::timeout(T, async {
        let mut b = [0u8; 64];
        loop {
            u.send(&datagram(0, echo, b"late")).await.unwrap();
            match tokio::time::timeout(std::time::Duration::from_millis(200), u.recv(&mut b)).await {
                Ok(Err(e)) => return e.kind(),
                Ok(Ok(n)) => panic!("relayed after the association ended: {:02x?}", &b[..n]),
                Err(_) => continue,
            }
        }
    })
    .await
    .expect("the relay port closes");
    assert_eq!(refused, std::io::ErrorKind::ConnectionRefused);
    assert!(e.connections().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagrams_from_another_ip_or_port_are_dropped() {
    let (echo, mut seen, _t) = recording_echo("127.0.0.1").await;
    let (_e, proxy) = socks_service("socks5://127.0.0.1:0?udp=true").await;
    let c = open(proxy, None).await;
    // The control connection comes from 127.0.0.1; this one is 127.0.0.2.
    let intruder = client_udp("127.0.0.2", c.relay).await;
    intruder.send(&datagram(0, echo, b"intruder")).await.unwrap();
    let u = client_udp("127.0.0.1", c.relay).await;
    u.send(&datagram(0, echo, b"first")).await.unwrap();
    assert_eq!(answer(&u).await.1, b"echo:first");
    // The port is now fixed to the first datagram's: another port is dropped.
    let other_port = client_udp("127.0.0.1", c.relay).await;
    other_port.send(&datagram(0, echo, b"other port")).await.unwrap();
    // Broken headers from the client itself are dropped too, and do not end it.
    for junk in [&[0u8, 0][..], &[0, 0, 0, 9, 1, 2, 3], &[0, 0, 0, 1, 127, 0], &[0, 0, 0, 3, 200, b'x']] {
        u.send(junk).await.unwrap();
    }
    u.send(&datagram(0, echo, b"second")).await.unwrap();
    assert_eq!(answer(&u).await.1, b"echo:second");
    let mut got = Vec::new();
    while let Ok(p) = seen.try_recv() {
        got.push(String::from_utf8_lossy(&p).into_owned());
    }
    assert_eq!(got, ["first", "second"], "datagrams sent before `second` on the same relay socket were dropped");
    let mut b = [0u8; 64];
    assert!(intruder.try_recv(&mut b).is_err() && other_port.try_recv(&mut b).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn association_through_the_services_chain() {
    // client → Portway B (socks5 udp=true, chain → A) → Portway A (socks5 udp=true) → echo.
    let (echo, _seen, _t) = recording_echo("127.0.0.1").await;
    let (_a, a) = socks_service("socks5://127.0.0.1:0?udp=true").await;
    let b = engine();
    b.apply(cmd(&["socks5://127.0.0.1:0?udp=true".into()], &[format!("socks5://{a}")])).await;
    let proxy = listening(&b, "service-0");
    let c = open(proxy, None).await;
    let u = client_udp("127.0.0.1", c.relay).await;
    for msg in [&b"via"[..], b"chain"] {
        u.send(&datagram(0, echo, msg)).await.unwrap();
        assert_eq!(answer(&u).await, (echo, [b"echo:", msg].concat()));
    }
    let conns = b.connections();
    assert!(conns.iter().any(|c| c.network == "udp" && !c.node.is_empty()), "listed with the chain's node: {conns:?}");
}

/// `-L udp://…/echo -F socks5://server?relay=udp`, five round trips.
async fn forward_through(node: &str, echo: SocketAddr) {
    let client = engine();
    client.apply(cmd(&[format!("udp://127.0.0.1:0/{echo}?keepAlive=true")], &[node.to_string()])).await;
    let a = listening(&client, "service-0");
    let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..5 {
        c.send_to(format!("u{i}").as_bytes(), a).await.unwrap();
        let mut buf = [0u8; 512];
        let (n, _) = tokio::time::timeout(T, c.recv_from(&mut buf)).await.unwrap_or_else(|_| panic!("answer {i} through {node}")).unwrap();
        assert_eq!(&buf[..n], format!("echo:u{i}").as_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connector_relay_udp_through_portways_handler() {
    let (echo, _seen, _t) = recording_echo("127.0.0.1").await;
    let (server, s) = socks_service("socks5://127.0.0.1:0?udp=true").await;
    forward_through(&format!("socks5://{s}?relay=udp"), echo).await;
    // The server saw a standard association, not GOST's UDP-TUN.
    let conns = server.connections();
    assert!(conns.iter().any(|c| c.network == "udp" && c.node.is_empty()) && !conns.iter().any(|c| c.node == "udp-tun"), "{conns:?}");
    assert_eq!((server.stats_now()[0].bytes_in, server.stats_now()[0].bytes_out), (10, 35), "the server counted the payloads");
    let (_auth, sa) = socks_service("socks5://u:p@127.0.0.1:0?udp=true").await;
    forward_through(&format!("socks5://u:p@{sa}?relay=udp"), echo).await;
}

const DANTED: &str = "/usr/sbin/danted";

/// danted on a free loopback port with its own config: no authentication,
/// CONNECT and UDP ASSOCIATE allowed on loopback. Killed by PID on drop.
async fn danted() -> Option<(SocketAddr, ChildGuard, tempfile::TempDir)> {
    if !Path::new(DANTED).exists() {
        eprintln!("skipped: {DANTED} not installed (apt install dante-server)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = dir.path().join("danted.conf");
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    std::fs::write(
        &conf,
        format!(
            "logoutput: stderr\ninternal: 127.0.0.1 port = {port}\nexternal: 127.0.0.1\n\
             socksmethod: none\nclientmethod: none\nuser.privileged: {user}\nuser.unprivileged: {user}\n\
             client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}\n\
             socks pass {{ from: 127.0.0.0/8 to: 127.0.0.0/8 command: connect udpassociate }}\n\
             socks pass {{ from: 127.0.0.0/8 to: 127.0.0.0/8 command: udpreply }}\n"
        ),
    )
    .unwrap();
    let pid = dir.path().join("danted.pid");
    let child = Command::new(DANTED).arg("-f").arg(&conf).arg("-p").arg(&pid).arg("-N").arg("1").stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn danted");
    let mut child = ChildGuard(child);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_listening(addr, &mut child).await;
    Some((addr, child, dir))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connector_relay_udp_through_danted() {
    let Some((d, _child, _dir)) = danted().await else { return };
    let (echo, _seen, _t) = recording_echo("127.0.0.1").await;
    // danted's negotiator may still be starting once the port accepts: a few
    // bounded attempts at the first association.
    let mut ok = false;
    for _ in 0..5 {
        let mut ctl = TcpStream::connect(d).await.unwrap();
        if let Ok(Ok(r)) = tokio::time::timeout(T, associate_raw(&mut ctl, None)).await {
            ok = r[1] == 0;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ok, "danted never answered a UDP ASSOCIATE");
    forward_through(&format!("socks5://{d}?relay=udp"), echo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_relay_udp_danted_refuses_gosts_udp_tun() {
    // The reason for the option: danted does not know GOST's F3 command.
    let Some((d, _child, _dir)) = danted().await else { return };
    let (echo, _seen, _t) = recording_echo("127.0.0.1").await;
    let client = engine();
    client.apply(cmd(&[format!("udp://127.0.0.1:0/{echo}?keepAlive=true")], &[format!("socks5://{d}")])).await;
    let a = listening(&client, "service-0");
    let mut rx = client.subscribe();
    let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    c.send_to(b"x", a).await.unwrap();
    // danted hangs up on the unknown command F3.
    wait_event(&mut rx, |e| matches!(e, Event::Log { line } if line.message.contains("node-0") && line.message.contains("socks5: connection closed by the peer"))).await;
}
