//! The seed's "Server-side Forwarding" with two portway processes (addresses
//! rewritten to loopback), and `portway probe` naming the hop that breaks.
//!
//!   server: portway -L tls://:8443/127.0.0.1:80
//!   client: portway -L tcp://:8080 -F forward+tls://:8443

mod common;

use common::*;

fn code(st: std::process::ExitStatus) -> i32 {
    st.code().unwrap_or_else(|| panic!("killed by a signal: {st:?}"))
}

#[test]
fn seed_server_side_forwarding_over_tls_and_probe() {
    let dir = config_dir();
    let backend = TcpBackend::start("127.0.0.1", "server-chose-me");
    let (mut server, sport) = retry(|| {
        let port = free_port("127.0.0.1");
        let args = ["-L".to_string(), format!("tls://127.0.0.1:{port}/{}", backend.target())];
        let (p, _) = launch(portway_cmd(dir.path(), &args), 1)?;
        Ok((p, port))
    });
    let (_client, cport) = retry(|| {
        let port = free_port("127.0.0.1");
        let args = ["-L".to_string(), format!("tcp://127.0.0.1:{port}"), "-F".into(), format!("forward+tls://127.0.0.1:{sport}")];
        let (p, _) = launch(portway_cmd(dir.path(), &args), 1)?;
        Ok((p, port))
    });
    // The client names no target (`tcp://:8080` == `tcp://:8080/:0`): the server decides.
    let mut s = connect(v4("127.0.0.1", cport)).expect("connect");
    assert_eq!(read_line(&mut s).expect("greeting"), "server-chose-me");
    echo(&mut s, &vec![b'x'; 100_000]).expect("bulk through forward+tls");
    drop(s);

    let probe_args = ["probe".to_string(), "-L".into(), "tcp://127.0.0.1:1".into(), "-F".into(), format!("forward+tls://127.0.0.1:{sport}")];
    let (st, out, err) = run_to_exit(dir.path(), &probe_args);
    assert_eq!(code(st), 0, "{out}{err}");
    assert!(out.contains("ok      hop 1 \"hop-0\" node \"node-0\" (127.0.0.1:") && out.contains("ok: route works"), "{out}");

    server.signal(libc::SIGTERM);
    server.wait_exit(std::time::Duration::from_secs(5)).expect("server exits on SIGTERM");
    let (st, out, _) = run_to_exit(dir.path(), &probe_args);
    assert_eq!(code(st), 1, "{out}");
    assert!(out.contains(&format!("FAILED  hop 1 \"hop-0\" node \"node-0\" (127.0.0.1:{sport})")) && out.contains("connection refused"), "{out}");
}
