//! What the app's command tests share: a backend on a temporary profile folder,
//! echo servers, free ports, a local TCP rule, a greeting reader.
#![allow(dead_code)] // each test file uses its own subset

use portway_app::backend::Backend;
use portway_core::store::ProfileStore;
use portway_ipc::{RuleDraft, RuleKindDto};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

pub fn backend(dir: &std::path::Path) -> Backend {
    match Backend::start(ProfileStore::open(dir.to_path_buf())) {
        Ok(b) => b,
        Err(e) => panic!("backend: {}", e.message),
    }
}

fn echo(greeting: Option<&'static str>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                if let Some(g) = greeting {
                    let _ = s.write_all(format!("{g}\n").as_bytes());
                }
                let mut b = [0u8; 4096];
                while let Ok(n) = s.read(&mut b) {
                    if n == 0 || s.write_all(&b[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    a
}

/// A TCP echo server that greets each client with `name\n` (the backend that answered).
pub fn echo_backend(name: &'static str) -> SocketAddr {
    echo(Some(name))
}

/// A TCP echo server without a greeting.
pub fn echo_server() -> SocketAddr {
    echo(None)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port")
}

/// A local TCP rule as the form makes it.
pub fn draft(name: &str, listen: String, target: String) -> RuleDraft {
    RuleDraft {
        name: name.into(),
        kind: RuleKindDto::LocalTcp,
        listen,
        targets: vec![target],
        strategy: "round".into(),
        max_fails: 1,
        fail_timeout_secs: 10,
        keep_alive: false,
        ttl_secs: 5,
        chain: String::new(),
    }
}

/// Connects to 127.0.0.1:`port` and reads the backend's greeting line.
pub fn hello(port: u16) -> std::io::Result<(String, TcpStream)> {
    let mut s = TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut name = Vec::new();
    let mut b = [0u8; 1];
    loop {
        if s.read(&mut b)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if b[0] == b'\n' {
            break;
        }
        name.push(b[0]);
        if name.len() > 256 {
            return Err(std::io::Error::other("no greeting line"));
        }
    }
    Ok((String::from_utf8_lossy(&name).into_owned(), s))
}
