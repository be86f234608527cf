//! TLS listener and dialer, and GOST's server-side forwarding (seed: "Server-side
//! Forwarding"): `-L tls://:8443/target` on one end, `-L tcp://:8080 -F
//! forward+tls://server:8443` on the other; checked with openssl too.

mod common;
use common::*;
use portway_core::stats::{Event, ServiceState};
use std::io::{Read, Write};
use std::process::{Command, Stdio};

fn server_yaml(target: &str, tls: &str) -> String {
    format!("services:\n- name: server\n  addr: 127.0.0.1:0\n  handler: {{type: forward}}\n  listener: {{type: tls{tls}}}\n  forwarder: {{nodes: [{{name: target-0, addr: \"{target}\"}}]}}\n")
}

fn client_yaml(server: &str, tls: &str) -> String {
    format!("services:\n- name: client\n  addr: 127.0.0.1:0\n  handler: {{type: tcp, chain: c}}\n  listener: {{type: tcp}}\nchains:\n- name: c\n  hops:\n  - name: hop-0\n    nodes:\n    - {{name: node-0, addr: \"{server}\", connector: {{type: forward}}, dialer: {{type: tls{tls}}}}}\n")
}

/// Kills the child by PID when the test ends, however it ends.
struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_forwarding_over_tls_with_the_generated_certificate() {
    let backend = tcp_backend("127.0.0.1", "behind-tls").await;
    let server = engine();
    server.apply(cfg(&server_yaml(&backend.addr.to_string(), ""))).await;
    let client = engine();
    client.apply(cfg(&client_yaml(&listening(&server, "server").to_string(), ""))).await;
    let (name, mut s) = tcp_hello(listening(&client, "client")).await.expect("through forward+tls");
    assert_eq!(name, "behind-tls");
    echo(&mut s, &vec![7u8; 200_000]).await.expect("bulk echo through TLS");
    let st = client.stats_now();
    assert_eq!(st[0].nodes[0].fails, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_s_client_sees_gosts_default_certificate_and_reaches_the_target() {
    let backend = tcp_backend("127.0.0.1", "seen-by-openssl").await;
    let server = engine();
    server.apply(cfg(&server_yaml(&backend.addr.to_string(), ""))).await;
    let addr = listening(&server, "server");
    let out = tokio::task::spawn_blocking(move || {
        let child = Command::new("openssl")
            .args(["s_client", "-connect", &addr.to_string(), "-servername", "example.org"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("openssl (apt install openssl)");
        let mut child = Child(child);
        let mut stdin = child.0.stdin.take().expect("stdin");
        // Keep stdin open until the backend's greeting is in, then close it so
        // s_client exits.
        let mut stdout = child.0.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = stdout.read_to_end(&mut all);
            String::from_utf8_lossy(&all).into_owned()
        });
        let _ = stdin.write_all(b"ping\n");
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(stdin);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if child.0.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        drop(child);
        reader.join().unwrap_or_default()
    })
    .await
    .expect("join");
    assert!(out.contains("CN = gost.run") || out.contains("CN=gost.run"), "{out}");
    assert!(out.contains("seen-by-openssl"), "backend greeting through TLS: {out}");
}

fn make_cert(dir: &std::path::Path, cn: &str) -> (String, String) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let st = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj"])
        .arg(format!("/CN={cn}"))
        .arg("-addext")
        .arg(format!("subjectAltName=DNS:{cn}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl req");
    assert!(st.success());
    (cert.display().to_string(), key.display().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_client_checks_the_servers_certificate_and_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = make_cert(dir.path(), "tunnel.test");
    let backend = tcp_backend("127.0.0.1", "verified").await;
    let server = engine();
    server.apply(cfg(&server_yaml(&backend.addr.to_string(), &format!(", tls: {{certFile: \"{cert}\", keyFile: \"{key}\"}}")))).await;
    let saddr = listening(&server, "server").to_string();

    let good = engine();
    good.apply(cfg(&client_yaml(&saddr, &format!(", tls: {{secure: true, caFile: \"{cert}\", serverName: tunnel.test}}")))).await;
    let (name, _) = tcp_hello(listening(&good, "client")).await.expect("verified TLS");
    assert_eq!(name, "verified");

    let wrong = engine();
    wrong.apply(cfg(&client_yaml(&saddr, &format!(", tls: {{secure: true, caFile: \"{cert}\", serverName: other.test}}")))).await;
    let mut rx = wrong.subscribe();
    assert!(tcp_hello(listening(&wrong, "client")).await.is_err(), "a name mismatch must not connect");
    let ev = wait_event(&mut rx, |e| matches!(e, Event::Log { line } if line.message.contains("tls handshake"))).await;
    let Event::Log { line } = ev else { unreachable!() };
    assert!(line.message.contains("not valid for name") || line.message.contains("NotValidForName"), "{}", line.message);

    // caFile without secure: the chain is checked, the name is not (GOST).
    let chain_only = engine();
    chain_only.apply(cfg(&client_yaml(&saddr, &format!(", tls: {{caFile: \"{cert}\", serverName: other.test}}")))).await;
    let (name, _) = tcp_hello(listening(&chain_only, "client")).await.expect("chain-only check");
    assert_eq!(name, "verified");

    // A CA that did not sign the server's certificate is refused even without secure.
    let other_dir = tempfile::tempdir().expect("tempdir");
    let (other_ca, _) = make_cert(other_dir.path(), "tunnel.test");
    let stranger = engine();
    stranger.apply(cfg(&client_yaml(&saddr, &format!(", tls: {{caFile: \"{other_ca}\"}}")))).await;
    assert!(tcp_hello(listening(&stranger, "client")).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_certificate_file_fails_the_service_naming_the_file() {
    let e = engine();
    e.apply(cfg(&server_yaml("127.0.0.1:9", ", tls: {certFile: /nonexistent/cert.pem, keyFile: /nonexistent/key.pem}"))).await;
    let st = e.service_status("server").expect("status");
    let ServiceState::Failed { error: err } = st.state else { panic!("{st:?}") };
    assert!(err.contains("/nonexistent/cert.pem") && err.contains("no such file"), "{err}");
}
