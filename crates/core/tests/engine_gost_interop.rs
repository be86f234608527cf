//! The same chains against a real GOST v3 binary, when one is on PATH (or in
//! `GOST_BIN`): Portway's connectors through GOST's socks5, http and relay
//! servers, and GOST's connectors through Portway's. Without a binary each test
//! says so and returns.

mod common;
use common::peers::*;
use common::*;
use portway_core::config::build_from_cmd;
use std::process::{Command, Stdio};

fn gost_bin() -> Option<String> {
    if let Ok(p) = std::env::var("GOST_BIN") {
        return Some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("gost")).find(|p| p.is_file()).map(|p| p.display().to_string())
}

fn is_v3(bin: &str) -> bool {
    Command::new(bin).arg("-V").output().map(|o| String::from_utf8_lossy(&o.stdout).contains("gost 3") || String::from_utf8_lossy(&o.stderr).contains("gost 3")).unwrap_or(false)
}

async fn gost(bin: &str, args: &[String], listen: std::net::SocketAddr) -> ChildGuard {
    let child = Command::new(bin).args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn gost");
    let mut g = ChildGuard(child);
    wait_listening(listen, &mut g).await;
    g
}

fn port() -> u16 {
    free_port_on("127.0.0.1")
}

macro_rules! need_gost {
    () => {
        match gost_bin() {
            Some(b) if is_v3(&b) => b,
            Some(b) => {
                eprintln!("skipping: {b} is not GOST v3 (gost -V)");
                return;
            }
            None => {
                eprintln!("skipping: no GOST binary on PATH (set GOST_BIN to run the GOST interop tests)");
                return;
            }
        }
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portway_connectors_through_gost_servers() {
    let bin = need_gost!();
    let backend = tcp_backend("127.0.0.1", "behind-gost").await;
    let dns = udp_backend("127.0.0.1", "dns").await;
    for scheme in ["socks5", "http", "relay"] {
        let p = port();
        let listen: std::net::SocketAddr = format!("127.0.0.1:{p}").parse().expect("addr");
        let _g = gost(&bin, &["-L".into(), format!("{scheme}://u:p@127.0.0.1:{p}?udp=true&nodelay=true")], listen).await;
        let e = engine();
        let node = format!("{scheme}://u:p@127.0.0.1:{p}?nodelay=true");
        e.apply(build_from_cmd(&[format!("tcp://127.0.0.1:0/{}", backend.addr), format!("udp://127.0.0.1:0/{}?keepAlive=true", dns.addr)], &[node]).expect("cmd")).await;
        let (name, _) = tcp_hello(listening(&e, "service-0")).await.unwrap_or_else(|err| panic!("{scheme}: {err}"));
        assert_eq!(name, "behind-gost");
        let c = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        c.send_to(b"q", listening(&e, "service-1")).await.expect("send");
        let mut buf = [0u8; 64];
        let (n, _) = tokio::time::timeout(T, c.recv_from(&mut buf)).await.unwrap_or_else(|_| panic!("{scheme}: UDP through GOST")).expect("recv");
        assert_eq!(&buf[..n], b"dns:q");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gost_connectors_through_portway_servers() {
    let bin = need_gost!();
    let backend = tcp_backend("127.0.0.1", "behind-portway").await;
    for scheme in ["socks5", "http", "relay"] {
        let server = engine();
        server.apply(build_from_cmd(&[format!("{scheme}://u:p@127.0.0.1:0?udp=true")], &[]).expect("cmd")).await;
        let s = listening(&server, "service-0");
        let p = port();
        let listen: std::net::SocketAddr = format!("127.0.0.1:{p}").parse().expect("addr");
        let _g = gost(&bin, &["-L".into(), format!("tcp://127.0.0.1:{p}/{}", backend.addr), "-F".into(), format!("{scheme}://u:p@{s}?nodelay=true")], listen).await;
        let (name, _) = tcp_hello(listen).await.unwrap_or_else(|err| panic!("{scheme}: {err}"));
        assert_eq!(name, "behind-portway");
    }
}
