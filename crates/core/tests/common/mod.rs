//! Real backends on loopback for engine tests. Every backend binds port 0.
#![allow(dead_code)]

pub mod peers;
pub mod sshd;

use portway_core::config::{load_str, Config};
use portway_core::stats::Event;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

pub const T: Duration = Duration::from_secs(5);

/// A TCP backend that sends `name\n` on accept, then echoes. Aborted on drop.
pub struct TcpBackend {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for TcpBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn tcp_backend(ip: &str, name: &str) -> TcpBackend {
    let l = TcpListener::bind((ip, 0)).await.expect("bind backend");
    let addr = l.local_addr().expect("addr");
    let name = name.to_string();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else { return };
            let name = name.clone();
            tokio::spawn(async move {
                if s.write_all(format!("{name}\n").as_bytes()).await.is_err() {
                    return;
                }
                let mut buf = vec![0u8; 16384];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    TcpBackend { addr, task }
}

/// A UDP backend answering each datagram with `name:` + payload.
pub struct UdpBackend {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for UdpBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn udp_backend(ip: &str, name: &str) -> UdpBackend {
    let s = UdpSocket::bind((ip, 0)).await.expect("bind udp backend");
    let addr = s.local_addr().expect("addr");
    let name = name.to_string();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        loop {
            let Ok((n, peer)) = s.recv_from(&mut buf).await else { return };
            let mut reply = format!("{name}:").into_bytes();
            reply.extend_from_slice(&buf[..n]);
            let _ = s.send_to(&reply, peer).await;
        }
    });
    UdpBackend { addr, task }
}

/// Connects, reads the backend's name line, checks an echo round trip.
pub async fn tcp_hello(addr: SocketAddr) -> std::io::Result<(String, TcpStream)> {
    let mut s = tokio::time::timeout(T, TcpStream::connect(addr)).await.map_err(|_| std::io::ErrorKind::TimedOut)??;
    let mut name = Vec::new();
    let mut b = [0u8; 1];
    loop {
        let n = tokio::time::timeout(T, s.read(&mut b)).await.map_err(|_| std::io::ErrorKind::TimedOut)??;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if b[0] == b'\n' {
            break;
        }
        name.push(b[0]);
        if name.len() > 100 {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
    }
    Ok((String::from_utf8_lossy(&name).into_owned(), s))
}

pub async fn echo(s: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    s.write_all(data).await?;
    let mut back = vec![0u8; data.len()];
    tokio::time::timeout(T, s.read_exact(&mut back)).await.map_err(|_| std::io::ErrorKind::TimedOut)??;
    assert_eq!(back, data, "echo through the tunnel changed the bytes");
    Ok(())
}

pub fn cfg(yaml: &str) -> Config {
    match load_str("test.yaml", yaml) {
        Ok(l) => l.config,
        Err(e) => panic!("test config does not load: {e}"),
    }
}

/// A free port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// A free port on `ip` (bound then released).
pub fn free_port_on(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0)).and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// Waits for an event matching `f`, bounded by `T`.
pub async fn wait_event<F: FnMut(&Event) -> bool>(rx: &mut broadcast::Receiver<Event>, mut f: F) -> Event {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Ok(e)) if f(&e) => return e,
            Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(e)) => panic!("event stream ended: {e}"),
            Err(_) => panic!("no matching event within {T:?}"),
        }
    }
}

/// The listening address of a running service.
pub fn listening(engine: &portway_core::Engine, name: &str) -> SocketAddr {
    let st = engine.service_status(name).unwrap_or_else(|| panic!("no service {name}"));
    match st.listening.first() {
        Some(a) => *a,
        None => panic!("service {name} is not listening: {:?}", st.state),
    }
}

/// An engine with log capture on (log lines become events).
pub fn engine() -> portway_core::Engine {
    portway_core::logging::init(0);
    portway_core::Engine::new()
}
