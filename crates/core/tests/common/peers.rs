//! Real peers for chain tests: microsocks, curl, an HTTP backend. Every process
//! is killed by its PID when its guard drops.
#![allow(dead_code)]

use super::T;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct ChildGuard(pub Child);
impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Task(pub JoinHandle<()>);
impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An HTTP/1.1 server answering every request with `name` as the body.
pub async fn http_backend(ip: &str, name: &str) -> (SocketAddr, Task) {
    let l = TcpListener::bind((ip, 0)).await.expect("bind http backend");
    let addr = l.local_addr().expect("addr");
    let name = name.to_string();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let name = name.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut b = [0u8; 1024];
                loop {
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut b).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&b[..n]),
                        }
                        if head.len() > 65536 {
                            return;
                        }
                    }
                    let end = head.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4).unwrap_or(head.len());
                    let first = String::from_utf8_lossy(&head[..end]).lines().next().unwrap_or_default().to_string();
                    head.drain(..end);
                    let body = format!("{name} {first}");
                    let resp = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                    if s.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, Task(task))
}

fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0)).and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// Waits until something accepts on `addr`; the child has no readiness signal.
pub async fn wait_listening(addr: SocketAddr, child: &mut ChildGuard) {
    let r = tokio::time::timeout(T, async {
        loop {
            if TcpStream::connect(addr).await.is_ok() {
                return;
            }
            if let Ok(Some(st)) = child.0.try_wait() {
                panic!("{addr}: server exited early: {st}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(r.is_ok(), "{addr}: server did not start listening within {T:?}");
}

/// microsocks (Debian package `microsocks`) on `ip`, with optional user/password.
pub async fn microsocks(ip: &str, auth: Option<(&str, &str)>) -> (SocketAddr, ChildGuard) {
    let port = free_port(ip);
    let mut c = Command::new("microsocks");
    c.args(["-i", ip, "-p", &port.to_string()]);
    if let Some((u, p)) = auth {
        c.args(["-u", u, "-P", p]);
    }
    let child = c.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("microsocks (apt install microsocks)");
    let mut child = ChildGuard(child);
    let addr: SocketAddr = format!("{ip}:{port}").parse().expect("addr");
    wait_listening(addr, &mut child).await;
    (addr, child)
}

/// Runs curl (blocking, off the runtime) and returns (exit code, stdout, stderr).
pub async fn curl(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "5"])
            .args(&args)
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .env_remove("all_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("HTTPS_PROXY")
            .env_remove("ALL_PROXY")
            .output()
            .expect("curl");
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    })
    .await
    .expect("join curl")
}
