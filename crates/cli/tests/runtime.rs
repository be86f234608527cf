//! `portway` while it runs: ports in use, targets that refuse, idle clients,
//! signals (stop and reload), and a low open-files limit.

mod common;

use common::*;
use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::time::{Duration, Instant};

fn service_yaml(name: &str, port: u16, target: &str) -> String {
    format!(
        "- name: {name}\n  addr: 127.0.0.1:{port}\n  handler:\n    type: tcp\n  listener:\n    type: tcp\n  forwarder:\n    nodes:\n    - name: target-0\n      addr: {target}\n"
    )
}

fn expect_closed_soon(mut s: std::net::TcpStream, within: Duration) -> Duration {
    s.set_read_timeout(Some(within)).unwrap();
    let t = Instant::now();
    let mut b = [0u8; 64];
    match s.read(&mut b) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Ok(n) => panic!("expected the connection to be closed, got {n} bytes: {:?}", String::from_utf8_lossy(&b[..n])),
        Err(e) => panic!("expected the connection to be closed within {within:?}: {e}"),
    }
    t.elapsed()
}

/// One `-L` on a taken port (TCP and UDP) and one on a free port: the taken ones
/// report "address already in use" in their status line, the free one forwards.
#[test]
fn port_in_use_fails_only_that_service() {
    let dir = config_dir();
    let b = TcpBackend::start("127.0.0.1", "alive");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let tport = taken.local_addr().unwrap().port();
    let utaken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let uport = utaken.local_addr().unwrap().port();
    let (mut pw, port, lines) = retry(|| {
        let port = free_port("127.0.0.1");
        let args = [
            "-L".to_string(),
            format!("tcp://127.0.0.1:{tport}/{}", b.target()),
            "-L".into(),
            format!("udp://127.0.0.1:{uport}/{}", b.target()),
            "-L".into(),
            format!("tcp://127.0.0.1:{port}/{}", b.target()),
        ];
        let pw = Portway::run(dir.path(), &args);
        let (_, lines) = pw.status_lines(0, 3)?;
        if lines[2].contains("address already in use") {
            return Err(lines[2].clone());
        }
        Ok((pw, port, lines))
    });
    assert_eq!(lines[0], format!("service \"service-0\": failed: 127.0.0.1:{tport}: address already in use"));
    assert_eq!(lines[1], format!("service \"service-1\": failed: 127.0.0.1:{uport}: address already in use"));
    assert_eq!(lines[2], format!("service \"service-2\": tcp listening on 127.0.0.1:{port} -> {}", b.target()));
    assert_eq!(hello(v4("127.0.0.1", port)).unwrap(), "alive");
    assert!(pw.alive(), "{}", pw.transcript());
    drop((taken, utaken));
}

/// Every service failing is a failed start: exit status 1.
#[test]
fn all_services_failing_exits_1() {
    let dir = config_dir();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let tport = taken.local_addr().unwrap().port();
    let utaken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let uport = utaken.local_addr().unwrap().port();
    let (st, out, err) = run_to_exit(
        dir.path(),
        &["-L", &format!("tcp://127.0.0.1:{tport}/127.0.0.1:1"), "-L", &format!("udp://127.0.0.1:{uport}/127.0.0.1:1")],
    );
    assert_eq!(st.code(), Some(1), "{out}\n{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            format!("service \"service-0\": failed: 127.0.0.1:{tport}: address already in use"),
            format!("service \"service-1\": failed: 127.0.0.1:{uport}: address already in use"),
        ]
    );
    assert!(err.contains("portway: no service could start"), "{err}");
    drop((taken, utaken));
}

/// A target with nothing listening: each client is closed at once (GOST closes
/// the client when the dial fails), the failure is logged with the target, and
/// another service keeps forwarding.
#[test]
fn refusing_target_closes_the_client_promptly() {
    let dir = config_dir();
    let good = TcpBackend::start("127.0.0.1", "good");
    // A port with nothing behind it.
    let dead = TcpListener::bind("127.0.0.5:0").unwrap().local_addr().unwrap();
    let (pw, p_dead, p_good) = retry(|| {
        let (p1, p2) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
        let args = ["-L".to_string(), format!("tcp://127.0.0.1:{p1}/{dead}"), "-L".into(), format!("tcp://127.0.0.1:{p2}/{}", good.target())];
        let (pw, _) = launch(portway_cmd(dir.path(), &args), 2)?;
        Ok((pw, p1, p2))
    });
    for _ in 0..3 {
        let took = expect_closed_soon(connect(v4("127.0.0.1", p_dead)).unwrap(), Duration::from_secs(3));
        assert!(took < Duration::from_secs(2), "closing took {took:?}");
        assert_eq!(hello(v4("127.0.0.1", p_good)).unwrap(), "good");
    }
    pw.wait_line(0, Src::Err, EVENT, |l| l.contains(&format!("dial {dead}: connection refused")) && l.contains("service-0")).unwrap();
}

/// Clients that connect and send nothing (to a live target, and to a target that
/// never accepts) do not hold up anyone else.
#[test]
fn silent_clients_do_not_block_other_clients() {
    let dir = config_dir();
    let b = TcpBackend::start("127.0.0.1", "echo");
    // Accepts nothing: connections complete in its backlog and stay silent.
    let hole = TcpListener::bind("127.0.0.8:0").unwrap();
    let hole_addr = hole.local_addr().unwrap();
    let (_pw, p_echo, p_hole) = retry(|| {
        let (p1, p2) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
        let args = ["-L".to_string(), format!("tcp://127.0.0.1:{p1}/{}", b.target()), "-L".into(), format!("tcp://127.0.0.1:{p2}/{hole_addr}")];
        let (pw, _) = launch(portway_cmd(dir.path(), &args), 2)?;
        Ok((pw, p1, p2))
    });
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(connect(v4("127.0.0.1", p_echo)).unwrap());
        silent.push(connect(v4("127.0.0.1", p_hole)).unwrap());
    }
    let t = Instant::now();
    for _ in 0..5 {
        assert_eq!(hello(v4("127.0.0.1", p_echo)).unwrap(), "echo");
    }
    assert!(t.elapsed() < Duration::from_secs(3), "5 connections took {:?}", t.elapsed());
    // The silent ones were not dropped either: each still gets its greeting.
    let mut s = silent.swap_remove(0);
    assert_eq!(read_line(&mut s).unwrap(), "echo");
    drop(hole);
}

fn stops_cleanly_on(sig: libc::c_int) {
    let dir = config_dir();
    let b = TcpBackend::start("127.0.0.1", "b");
    let u = UdpBackend::start("127.0.0.1", "u");
    let (mut pw, port) = retry(|| {
        let (port, uport) = (free_port("127.0.0.1"), free_udp_port("127.0.0.1"));
        let args = [
            "-L".to_string(),
            format!("tcp://127.0.0.1:{port}/{}", b.target()),
            "-L".into(),
            format!("udp://127.0.0.1:{uport}/{}?keepAlive=true", u.target()),
        ];
        let (pw, _) = launch(portway_cmd(dir.path(), &args), 2)?;
        // A UDP session in flight too.
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(udp_ask(&c, v4("127.0.0.1", uport), "hi").unwrap(), "u");
        Ok((pw, port))
    });
    // A connection in flight while stopping.
    let mut live = connect(v4("127.0.0.1", port)).unwrap();
    assert_eq!(read_line(&mut live).unwrap(), "b");
    pw.signal(sig);
    let st = pw.wait_exit(Duration::from_secs(5)).unwrap_or_else(|| panic!("still running 5s after signal {sig}\n{}", pw.transcript()));
    assert_eq!(st.code(), Some(0), "{st:?}\n{}", pw.transcript());
    assert!(pw.stderr().contains("stopping"), "{}", pw.transcript());
    expect_closed_soon(live, Duration::from_secs(3));
    assert!(!is_listening(v4("127.0.0.1", port)), "port {port} still accepts after exit");
}

#[test]
fn sigterm_stops_with_status_0() {
    stops_cleanly_on(libc::SIGTERM);
}

#[test]
fn sigint_stops_with_status_0() {
    stops_cleanly_on(libc::SIGINT);
}

/// A signal sent as soon as the status line is out must find the handlers
/// installed (SIGHUP's default action would kill the process).
#[test]
fn signals_right_after_the_status_line_are_handled() {
    let dir = config_dir();
    for _ in 0..3 {
        let (mut pw, _) = retry(|| {
            let port = free_port("127.0.0.1");
            launch(portway_cmd(dir.path(), &["-L", &format!("tcp://127.0.0.1:{port}/127.0.0.1:1")]), 1)
        });
        let cur = pw.cursor();
        pw.signal(libc::SIGHUP);
        // Reloading prints the status again.
        pw.status_lines(cur, 1).unwrap();
        assert!(pw.alive());
        pw.signal(libc::SIGTERM);
        let st = pw.wait_exit(Duration::from_secs(5)).expect("exit after SIGTERM");
        assert_eq!(st.code(), Some(0), "{st:?}");
    }
}

/// SIGHUP with `-C FILE`: added services start, unchanged ones keep their
/// connections, changed ones restart with the new target, and a broken edit is
/// reported (naming the file) while the running config stays.
#[test]
fn sighup_reloads_the_config_file() {
    let dir = config_dir();
    let t1 = TcpBackend::start("127.0.0.1", "t1");
    let t2 = TcpBackend::start("127.0.0.2", "t2");
    let t3 = TcpBackend::start("127.0.0.3", "t3");
    let file = dir.path().join("portway.yaml");
    let (mut pw, pa, a_yaml) = retry(|| {
        let pa = free_port("127.0.0.1");
        let a_yaml = service_yaml("a", pa, &t1.target());
        write_atomic(&file, &format!("services:\n{a_yaml}"));
        let (pw, lines) = launch(portway_cmd(dir.path(), &["-C".as_ref(), file.as_os_str()]), 1)?;
        assert_eq!(lines[0], format!("service \"a\": tcp listening on 127.0.0.1:{pa} -> {}", t1.target()));
        Ok((pw, pa, a_yaml))
    });
    let a = v4("127.0.0.1", pa);
    let mut long = connect(a).unwrap();
    assert_eq!(read_line(&mut long).unwrap(), "t1");
    echo(&mut long, b"before the reload").unwrap();

    // 1. Add service b; a stays byte-identical.
    let mut pb = 0;
    for attempt in 0..SETUP_TRIES {
        pb = free_port("127.0.0.1");
        write_atomic(&file, &format!("services:\n{a_yaml}{}", service_yaml("b", pb, &t2.target())));
        let cur = pw.cursor();
        pw.signal(libc::SIGHUP);
        let (_, line) = pw.wait_line(cur, Src::Out, EVENT, |l| l.starts_with("service \"b\":")).unwrap();
        if line.contains("address already in use") && attempt + 1 < SETUP_TRIES {
            continue;
        }
        assert_eq!(line, format!("service \"b\": tcp listening on 127.0.0.1:{pb} -> {}", t2.target()));
        pw.wait_line(cur, Src::Err, EVENT, |l| l.contains("reloaded") && l.contains("1 started") && l.contains("1 unchanged") && l.contains("0 failed"))
            .unwrap();
        break;
    }
    assert_eq!(hello_eventually(v4("127.0.0.1", pb), EVENT).unwrap(), "t2");
    echo(&mut long, b"after adding b: the connection through a survived").unwrap();
    assert_eq!(t1.accepted(), 1, "a's connection must be the original one");

    // 2. Change a's target: a restarts, new connections reach the new target.
    write_atomic(&file, &format!("services:\n{}{}", service_yaml("a", pa, &t3.target()), service_yaml("b", pb, &t2.target())));
    let cur = pw.cursor();
    pw.signal(libc::SIGHUP);
    let (_, line) = pw.wait_line(cur, Src::Out, EVENT, |l| l.starts_with("service \"a\":")).unwrap();
    assert_eq!(line, format!("service \"a\": tcp listening on 127.0.0.1:{pa} -> {}", t3.target()), "{}", pw.transcript());
    pw.wait_line(cur, Src::Err, EVENT, |l| l.contains("reloaded") && l.contains("1 restarted") && l.contains("1 unchanged")).unwrap();
    assert_eq!(hello(a).unwrap(), "t3");
    assert_eq!(hello(v4("127.0.0.1", pb)).unwrap(), "t2");

    // 3. A broken edit: reported with the file, the running config stays.
    write_atomic(&file, "services:\n- name: a\n  addr: [127.0.0.1:1\n");
    let cur = pw.cursor();
    pw.signal(libc::SIGHUP);
    let (_, err) = pw
        .wait_line(cur, Src::Err, EVENT, |l| l.contains("reload failed") && l.contains(&file.display().to_string()))
        .unwrap();
    assert!(err.contains(&format!("{}:", file.display())) && err.contains("keeping the running config"), "{err}");
    assert!(pw.alive(), "{}", pw.transcript());
    assert_eq!(hello(a).unwrap(), "t3");
    assert_eq!(hello(v4("127.0.0.1", pb)).unwrap(), "t2");

    pw.signal(libc::SIGTERM);
    assert_eq!(pw.wait_exit(Duration::from_secs(5)).and_then(|s| s.code()), Some(0));
}

/// SIGHUP also reloads a profile (`--profile NAME`).
#[test]
fn sighup_reloads_the_profile() {
    let dir = config_dir();
    let t1 = TcpBackend::start("127.0.0.1", "p1");
    let t2 = TcpBackend::start("127.0.0.2", "p2");
    let path = dir.path().join("profiles").join("home.yaml");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let (pw, pa) = retry(|| {
        let pa = free_port("127.0.0.1");
        write_atomic(&path, &format!("services:\n{}", service_yaml("a", pa, &t1.target())));
        let (pw, _) = launch(portway_cmd(dir.path(), &["--profile", "home"]), 1)?;
        Ok((pw, pa))
    });
    assert_eq!(hello(v4("127.0.0.1", pa)).unwrap(), "p1");
    write_atomic(&path, &format!("services:\n{}", service_yaml("a", pa, &t2.target())));
    let cur = pw.cursor();
    pw.signal(libc::SIGHUP);
    let (_, line) = pw.wait_line(cur, Src::Out, EVENT, |l| l.starts_with("service \"a\":")).unwrap();
    assert_eq!(line, format!("service \"a\": tcp listening on 127.0.0.1:{pa} -> {}", t2.target()));
    assert_eq!(hello(v4("127.0.0.1", pa)).unwrap(), "p2");
}

fn limit_open_files(cmd: &mut std::process::Command, n: libc::rlim_t) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only setrlimit (async-signal-safe) runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let rl = libc::rlimit { rlim_cur: n, rlim_max: n };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Under RLIMIT_NOFILE=64 (soft = hard, so portway cannot raise it), 100 clients:
/// portway stays up, does not spin while out of descriptors, and forwards again
/// once the clients are gone.
#[test]
fn running_out_of_file_descriptors_neither_kills_nor_spins() {
    let dir = config_dir();
    let b = TcpBackend::start("127.0.0.7", "fd");
    let (mut pw, port) = retry(|| {
        let port = free_port("127.0.0.1");
        let mut cmd = portway_cmd(dir.path(), &["-L", &format!("tcp://127.0.0.1:{port}/{}", b.target())]);
        limit_open_files(&mut cmd, 64);
        let (pw, _) = launch(cmd, 1)?;
        Ok((pw, port))
    });
    let addr = v4("127.0.0.1", port);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", pw.pid)).unwrap();
    assert!(limits.lines().any(|l| l.starts_with("Max open files") && l.split_whitespace().filter(|w| *w == "64").count() == 2), "{limits}");

    let clients: Vec<_> = (0..100).map(|i| connect(addr).unwrap_or_else(|e| panic!("client {i}: {e}"))).collect();
    pw.wait_line(0, Src::Err, EVENT, |l| l.to_lowercase().contains("too many open files"))
        .expect("portway should report running out of descriptors");
    let cpu0 = cpu_time(pw.pid);
    // A measurement window, not synchronisation: CPU used while the clients are held.
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_time(pw.pid).saturating_sub(cpu0);
    assert!(pw.alive(), "portway died\n{}", pw.transcript());
    assert!(used < Duration::from_millis(500), "portway used {used:?} of CPU in 2s while out of descriptors");

    drop(clients);
    let name = hello_eventually(addr, Duration::from_secs(15)).unwrap_or_else(|e| panic!("{e}\n{}", pw.transcript()));
    assert_eq!(name, "fd");
    let mut s = connect(addr).unwrap();
    assert_eq!(read_line(&mut s).unwrap(), "fd");
    echo(&mut s, &vec![42u8; 100_000]).unwrap();
    assert!(pw.alive());
}

/// A service that could not start (port in use) is tried again on SIGHUP, and
/// starts once the port is free.
#[test]
fn sighup_retries_a_service_that_failed_to_start() {
    let dir = config_dir();
    let b = TcpBackend::start("127.0.0.1", "late");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let tport = taken.local_addr().unwrap().port();
    let (pw, _) = retry(|| {
        let port = free_port("127.0.0.1");
        let args = ["-L".to_string(), format!("tcp://127.0.0.1:{tport}/{}", b.target()), "-L".into(), format!("tcp://127.0.0.1:{port}/{}", b.target())];
        let pw = Portway::run(dir.path(), &args);
        let (_, l) = pw.status_lines(0, 2)?;
        if l[1].contains("address already in use") {
            return Err(l[1].clone());
        }
        assert_eq!(l[0], format!("service \"service-0\": failed: 127.0.0.1:{tport}: address already in use"));
        Ok((pw, port))
    });
    drop(taken);
    let cur = pw.cursor();
    pw.signal(libc::SIGHUP);
    let (_, line) = pw.wait_line(cur, Src::Out, EVENT, |l| l.starts_with("service \"service-0\":")).unwrap();
    if line.contains("address already in use") {
        // Someone else took the port the moment we let it go: nothing to check.
        return;
    }
    assert_eq!(line, format!("service \"service-0\": tcp listening on 127.0.0.1:{tport} -> {}", b.target()));
    assert_eq!(hello(v4("127.0.0.1", tport)).unwrap(), "late");
}
