//! The command line as a user meets it: `-O yaml|json` and `-C` round trips,
//! `--help`/`--version`, refused flags, URLs and files, and profiles.

mod common;

use common::*;
use serde_yaml::Value as Y;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;

fn code(st: std::process::ExitStatus) -> i32 {
    st.code().unwrap_or_else(|| panic!("killed by a signal: {st:?}"))
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v = Vec::new();
    for e in walk(dir) {
        v.push(e.strip_prefix(dir).unwrap().display().to_string());
    }
    v
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        out.push(e.path());
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        }
    }
    out
}

/// `portway -L URL -O yaml` prints GOST's YAML for the seed's multi-target example
/// and exits 0 without starting anything; `portway -C` on that output forwards the
/// same way (round-robin over the same targets).
#[test]
fn output_yaml_is_gost_shaped_and_runs_back_through_c() {
    let dir = config_dir();
    let bs = [TcpBackend::start("127.0.0.1", "b1"), TcpBackend::start("127.0.0.2", "b2"), TcpBackend::start("127.0.0.3", "b3")];
    let targets: Vec<String> = bs.iter().map(|b| b.target()).collect();
    let file = dir.path().join("fwd.yaml");
    let (_pw, port, lines) = retry(|| {
        let port = free_port("127.0.0.1");
        let url = format!("tcp://127.0.0.1:{port}/{}?strategy=round&maxFails=1&failTimeout=30s", targets.join(","));
        let (st, out, err) = run_to_exit(dir.path(), &["-L", &url, "-O", "yaml"]);
        assert_eq!(code(st), 0, "stderr: {err}");
        assert!(!out.contains("listening") && !err.contains("listening"), "-O must not start services:\n{out}\n{err}");
        // Nothing was bound: the port is still free for us.
        drop(std::net::TcpListener::bind(("127.0.0.1", port)).map_err(|e| format!("port {port} taken after -O: address already in use? {e}"))?);
        let y: Y = serde_yaml::from_str(&out).unwrap_or_else(|e| panic!("-O yaml output is not YAML ({e}):\n{out}"));
        let s = &y["services"][0];
        assert_eq!(y["services"].as_sequence().unwrap().len(), 1, "{out}");
        assert_eq!(s["name"], Y::from("service-0"));
        assert_eq!(s["addr"], Y::from(format!("127.0.0.1:{port}")));
        assert_eq!(s["handler"]["type"], Y::from("tcp"));
        assert_eq!(s["listener"]["type"], Y::from("tcp"));
        let nodes = s["forwarder"]["nodes"].as_sequence().unwrap();
        for (i, n) in nodes.iter().enumerate() {
            assert_eq!(n["name"], Y::from(format!("target-{i}")));
            assert_eq!(n["addr"], Y::from(targets[i].as_str()));
        }
        assert_eq!(nodes.len(), 3);
        let sel = &s["forwarder"]["selector"];
        assert_eq!(sel["strategy"], Y::from("round"));
        assert_eq!(sel["maxFails"], Y::from(1));
        assert_eq!(sel["failTimeout"], Y::from("30s"));

        std::fs::write(&file, &out).unwrap();
        let (pw, l) = launch(portway_cmd(dir.path(), &["-C".as_ref(), file.as_os_str()]), 1)?;
        Ok((pw, port, l))
    });
    assert_eq!(
        lines[0],
        format!("service \"service-0\": tcp listening on 127.0.0.1:{port} -> {}", targets.join(", "))
    );
    let addr = v4("127.0.0.1", port);
    let seq: Vec<String> = (0..3).map(|_| hello(addr).unwrap()).collect();
    assert_eq!(seq, ["b1", "b2", "b3"]);
}

/// `-O json` prints GOST's JSON (a selector's failTimeout in nanoseconds, as Go's
/// encoder writes a time.Duration; UDP metadata as given) and `-C file.json` runs
/// it: a UDP and a TCP service forward as the flags would.
#[test]
fn output_json_is_gost_shaped_and_runs_back_through_c() {
    let dir = config_dir();
    let us = [UdpBackend::start("127.0.0.1", "u1"), UdpBackend::start("127.0.0.2", "u2")];
    let b = TcpBackend::start("127.0.0.3", "t1");
    let file = dir.path().join("fwd.json");
    let (pw, up, tp, lines) = retry(|| {
        let up = free_udp_port("127.0.0.1");
        let tp = free_port("127.0.0.1");
        let udp = format!("udp://127.0.0.1:{up}/{},{}?keepAlive=true&ttl=5s", us[0].target(), us[1].target());
        let tcp = format!("tcp://127.0.0.1:{tp}/{}?strategy=fifo&failTimeout=30s", b.target());
        let (st, out, err) = run_to_exit(dir.path(), &["-L", &udp, "-L", &tcp, "-O", "json"]);
        assert_eq!(code(st), 0, "stderr: {err}");
        let j: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("-O json output is not JSON ({e}):\n{out}"));
        let s0 = &j["services"][0];
        assert_eq!(s0["name"], "service-0");
        assert_eq!(s0["addr"], format!("127.0.0.1:{up}"));
        assert_eq!(s0["handler"]["type"], "udp");
        assert_eq!(s0["listener"]["type"], "udp");
        assert_eq!(s0["listener"]["metadata"]["keepAlive"], "true");
        assert_eq!(s0["listener"]["metadata"]["ttl"], "5s");
        assert_eq!(s0["forwarder"]["nodes"][1]["addr"], us[1].target());
        let s1 = &j["services"][1];
        assert_eq!(s1["name"], "service-1");
        assert_eq!(s1["forwarder"]["selector"]["strategy"], "fifo");
        assert_eq!(s1["forwarder"]["selector"]["failTimeout"], 30_000_000_000u64);
        std::fs::write(&file, &out).unwrap();
        let (pw, l) = launch(portway_cmd(dir.path(), &["-C".as_ref(), file.as_os_str()]), 2)?;
        Ok((pw, up, tp, l))
    });
    assert_eq!(lines[0], format!("service \"service-0\": udp listening on 127.0.0.1:{up} -> {}, {}", us[0].target(), us[1].target()));
    assert_eq!(lines[1], format!("service \"service-1\": tcp listening on 127.0.0.1:{tp} -> {}", b.target()));
    let dst: SocketAddr = v4("127.0.0.1", up);
    let c1 = UdpSocket::bind("127.0.0.1:0").unwrap();
    let c2 = UdpSocket::bind("127.0.0.1:0").unwrap();
    assert_eq!(udp_ask(&c1, dst, "one").unwrap(), "u1");
    assert_eq!(udp_ask(&c2, dst, "two").unwrap(), "u2");
    assert_eq!(hello(v4("127.0.0.1", tp)).unwrap(), "t1");
    drop(pw);
}

#[test]
fn help_and_version_exit_0_and_touch_nothing() {
    let dir = config_dir();
    for flag in ["--help", "-h", "-help"] {
        let (st, out, err) = run_to_exit(dir.path(), &[flag]);
        assert_eq!(code(st), 0, "{flag}: {err}");
        assert!(out.contains("Usage:") && out.contains("-L URL") && out.contains("-C FILE") && out.contains("--profile NAME"), "{flag}:\n{out}");
    }
    for flag in ["--version", "-V"] {
        let (st, out, err) = run_to_exit(dir.path(), &[flag]);
        assert_eq!(code(st), 0, "{flag}: {err}");
        assert!(out.starts_with(&format!("portway {}", env!("CARGO_PKG_VERSION"))), "{flag}: {out}");
    }
    assert_eq!(listing(dir.path()), Vec::<String>::new(), "--help/--version must not create a profile");
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let dir = config_dir();
    let cases: &[(&[&str], &str)] = &[
        (&["-X"], "flag provided but not defined: -X"),
        (&["--bogus=1"], "flag provided but not defined: -bogus"),
        (&["-L"], "flag needs an argument: -L"),
        (&["-O", "toml"], "\"toml\": expected yaml or json"),
        (&["-D=maybe"], "invalid boolean value \"maybe\" for -D"),
        (&["tcp://:8080/127.0.0.1:80"], "unexpected argument \"tcp://:8080/127.0.0.1:80\""),
    ];
    for (args, want) in cases {
        let (st, out, err) = run_to_exit(dir.path(), args);
        assert_eq!(code(st), 2, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: stderr should contain {want:?}:\n{err}");
        assert!(err.contains("portway --help"), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
    }
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}

/// A URL that does not parse is refused before anything starts, naming the URL
/// and what is wrong with it; URLs that parse but cannot run make their service
/// fail with the reason, and with no service left portway exits 1.
#[test]
fn malformed_urls_are_refused_with_the_reason() {
    let dir = config_dir();
    let port = free_port("127.0.0.1");
    let url = format!("tcp://:{port}/127.0.0.1:1?x=%zz");
    let (st, out, err) = run_to_exit(dir.path(), &["-L", &url]);
    assert_eq!(code(st), 1, "{err}");
    assert!(err.contains(&url) && err.contains("invalid URL escape \"%zz\""), "{err}");
    assert!(!out.contains("listening"), "{out}");

    let (st, _, err) = run_to_exit(dir.path(), &["-L", "tcp://foo bar:1/127.0.0.1:1"]);
    assert_eq!(code(st), 1, "{err}");
    assert!(err.contains("tcp://foo bar:1/127.0.0.1:1: invalid character in host \"foo bar:1\""), "{err}");

    let (st, out, err) = run_to_exit(dir.path(), &["-L", "tcp://:99999/127.0.0.1:1"]);
    assert_eq!(code(st), 1, "{err}");
    assert_eq!(out.trim(), "service \"service-0\": failed: addr \":99999\": port \"99999\" is not a number from 0 to 65535");
    assert!(err.contains("no service could start"), "{err}");

}

/// Broken config files are refused with exit 1, naming file:line (and the key when
/// the YAML parses but a value is wrong); a missing file is named too.
#[test]
fn malformed_config_files_exit_1_naming_file_and_line() {
    let dir = config_dir();
    let cases = [
        ("syntax.yaml", "services:\n- name: a\n  addr: 127.0.0.1:1\n  handler: {type: tcp\n", ":5:", "invalid YAML"),
        ("value.yaml", "services:\n- name: a\n  addr: 127.0.0.1:1\n  handler:\n    type: tcp\n  forwarder:\n    selector:\n      maxFails: lots\n    nodes:\n    - name: t\n      addr: 127.0.0.1:2\n", ":8:", "services[0].forwarder.selector.maxFails"),
        ("broken.json", "{\"services\": [\n {\"name\": \"a\",\n  \"addr\": 1,,\n}]}\n", ":3:", "invalid JSON"),
    ];
    for (name, text, line, what) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let (st, out, err) = run_to_exit(dir.path(), &["-C".as_ref(), path.as_os_str()]);
        assert_eq!(code(st), 1, "{name}: {err}");
        let at = format!("{}{line}", path.display());
        assert!(err.contains(&at), "{name}: stderr should name {at:?}:\n{err}");
        assert!(err.contains(what), "{name}: stderr should mention {what:?}:\n{err}");
        assert!(!out.contains("listening"), "{name}: {out}");
    }
    let missing = dir.path().join("nope.yaml");
    let (st, _, err) = run_to_exit(dir.path(), &["-C".as_ref(), missing.as_os_str()]);
    assert_eq!(code(st), 1);
    assert!(err.contains(&format!("cannot read config file {}", missing.display())), "{err}");
}

/// A tab used for indentation is reported on the line that holds the tab.
#[test]
fn config_file_tab_error_names_the_line_of_the_tab() {
    let dir = config_dir();
    let path = dir.path().join("tabs.yaml");
    std::fs::write(&path, "services:\n- name: a\n  addr: 127.0.0.1:1\n\thandler: {type: tcp}\n").unwrap();
    let (st, _, err) = run_to_exit(dir.path(), &["-C".as_ref(), path.as_os_str()]);
    assert_eq!(code(st), 1, "{err}");
    assert!(err.contains("tab"), "{err}");
    assert!(err.contains(&format!("{}:4:", path.display())), "the tab is on line 4:\n{err}");
}

/// `--profile NAME` runs `$PORTWAY_CONFIG_DIR/profiles/NAME.yaml`; an unknown name
/// exits 1 naming it and creates nothing.
#[test]
fn profile_flag_runs_a_stored_profile() {
    let dir = config_dir();
    let b = TcpBackend::start("127.0.0.6", "from-profile");
    let profiles = dir.path().join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    let (_pw, port, lines) = retry(|| {
        let port = free_port("127.0.0.1");
        let yaml = format!(
            "services:\n- name: api\n  addr: 127.0.0.1:{port}\n  handler:\n    type: tcp\n  listener:\n    type: tcp\n  forwarder:\n    nodes:\n    - name: target-0\n      addr: {}\n",
            b.target()
        );
        std::fs::write(profiles.join("work.yaml"), yaml).unwrap();
        let (pw, l) = launch(portway_cmd(dir.path(), &["--profile", "work"]), 1)?;
        Ok((pw, port, l))
    });
    assert_eq!(lines[0], format!("service \"api\": tcp listening on 127.0.0.1:{port} -> {}", b.target()));
    assert_eq!(hello(v4("127.0.0.1", port)).unwrap(), "from-profile");

    let (st, _, err) = run_to_exit(dir.path(), &["--profile", "missing"]);
    assert_eq!(code(st), 1);
    assert!(err.contains("no profile named \"missing\""), "{err}");
    assert!(!profiles.join("missing.yaml").exists());
}

/// With an empty config dir and no arguments, portway writes the default profile
/// and runs it: service "web" on 127.0.0.1:8080 (which may be taken on this
/// machine, so either outcome is accepted, but it must be one of the two).
#[test]
fn no_arguments_create_and_run_the_default_profile() {
    let dir = config_dir();
    let pw = Portway::run::<&str>(dir.path(), &[]);
    let (_, lines) = pw.status_lines(0, 1).unwrap();
    let ok = lines[0] == "service \"web\": tcp listening on 127.0.0.1:8080 -> 127.0.0.1:8000"
        || lines[0] == "service \"web\": failed: 127.0.0.1:8080: address already in use";
    assert!(ok, "unexpected status line {:?}\n{}", lines[0], pw.transcript());
    let created = dir.path().join("profiles").join("default.yaml");
    let text = std::fs::read_to_string(&created).expect("profiles/default.yaml is created");
    assert!(text.contains("name: web") && text.contains("addr: 127.0.0.1:8080") && text.contains("addr: 127.0.0.1:8000"), "{text}");
    pw.wait_line(0, Src::Err, EVENT, |l| l.contains("created profile \"default\"") && l.contains(&created.display().to_string())).unwrap();
    drop(pw);
    // Second run: the profile exists and is not written again.
    let before = std::fs::metadata(&created).unwrap().modified().unwrap();
    let pw = Portway::run::<&str>(dir.path(), &[]);
    pw.status_lines(0, 1).unwrap();
    assert!(!pw.stderr().contains("created profile"), "{}", pw.transcript());
    assert_eq!(std::fs::metadata(&created).unwrap().modified().unwrap(), before);
}

/// `-C -` reads the config from stdin and `-C '{…}'` takes inline JSON (GOST's two
/// extra forms); both run.
#[test]
fn config_from_stdin_and_inline_json() {
    let dir = config_dir();
    let b = TcpBackend::start("127.0.0.1", "stdin");
    let (pw, port) = retry(|| {
        let port = free_port("127.0.0.1");
        let yaml = format!("services:\n- name: s\n  addr: 127.0.0.1:{port}\n  handler:\n    type: tcp\n  listener:\n    type: tcp\n  forwarder:\n    nodes:\n    - name: t\n      addr: {}\n", b.target());
        let pw = Portway::spawn_with_stdin(portway_cmd(dir.path(), &["-C", "-"]), &yaml);
        let (_, l) = pw.status_lines(0, 1)?;
        if l[0].contains("address already in use") {
            return Err(l[0].clone());
        }
        assert_eq!(l[0], format!("service \"s\": tcp listening on 127.0.0.1:{port} -> {}", b.target()));
        Ok((pw, port))
    });
    assert_eq!(hello(v4("127.0.0.1", port)).unwrap(), "stdin");
    // stdin cannot be read twice: a reload keeps what was read at start.
    let cur = pw.cursor();
    pw.signal(libc::SIGHUP);
    let (_, l) = pw.wait_line(cur, Src::Out, EVENT, |l| l.starts_with("service \"s\":")).unwrap();
    assert!(l.contains("listening"), "{l}\n{}", pw.transcript());
    pw.wait_line(cur, Src::Err, EVENT, |l| l.contains("reloaded") && l.contains("1 unchanged")).unwrap();
    assert_eq!(hello(v4("127.0.0.1", port)).unwrap(), "stdin");

    let b2 = TcpBackend::start("127.0.0.2", "inline");
    let (_pw2, port2) = retry(|| {
        let port = free_port("127.0.0.1");
        let json = format!(
            r#"{{"services":[{{"name":"j","addr":"127.0.0.1:{port}","handler":{{"type":"tcp"}},"listener":{{"type":"tcp"}},"forwarder":{{"nodes":[{{"name":"t","addr":"{}"}}],"selector":{{"strategy":"fifo","maxFails":1,"failTimeout":30000000000}}}}}}]}}"#,
            b2.target()
        );
        let (pw, l) = launch(portway_cmd(dir.path(), &["-C", &json]), 1)?;
        assert_eq!(l[0], format!("service \"j\": tcp listening on 127.0.0.1:{port} -> {}", b2.target()));
        Ok((pw, port))
    });
    assert_eq!(hello(v4("127.0.0.1", port2)).unwrap(), "inline");
}

/// `-C file -L url`: files first, then the flags (GOST's merge order); a name used
/// twice is refused naming it.
#[test]
fn config_file_and_flags_merge_and_duplicate_names_are_refused() {
    let dir = config_dir();
    let b1 = TcpBackend::start("127.0.0.1", "from-file");
    let b2 = TcpBackend::start("127.0.0.2", "from-flag");
    let file = dir.path().join("f.yaml");
    let (_pw, p1, p2) = retry(|| {
        let (p1, p2) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
        std::fs::write(&file, format!("services:\n- name: filed\n  addr: 127.0.0.1:{p1}\n  handler:\n    type: tcp\n  listener:\n    type: tcp\n  forwarder:\n    nodes:\n    - name: t\n      addr: {}\n", b1.target())).unwrap();
        let args = ["-C".to_string(), file.display().to_string(), "-L".into(), format!("tcp://127.0.0.1:{p2}/{}", b2.target())];
        let (pw, l) = launch(portway_cmd(dir.path(), &args), 2)?;
        assert!(l[0].starts_with("service \"filed\": tcp listening") && l[1].starts_with("service \"service-0\": tcp listening"), "{l:?}");
        Ok((pw, p1, p2))
    });
    assert_eq!(hello(v4("127.0.0.1", p1)).unwrap(), "from-file");
    assert_eq!(hello(v4("127.0.0.1", p2)).unwrap(), "from-flag");

    let dup = dir.path().join("dup.yaml");
    std::fs::write(&dup, "services:\n- name: service-0\n  addr: 127.0.0.1:1\n  handler:\n    type: tcp\n  forwarder:\n    nodes:\n    - name: t\n      addr: 127.0.0.1:2\n").unwrap();
    let (st, out, err) = run_to_exit(dir.path(), &["-C".as_ref(), dup.as_os_str(), "-L".as_ref(), "tcp://127.0.0.1:1/127.0.0.1:2".as_ref()]);
    assert_eq!(code(st), 1, "{err}");
    assert!(err.contains("duplicate service name \"service-0\""), "{err}");
    assert!(out.is_empty(), "{out}");
}

/// Keys Portway does not act on load with a warning naming file:line and key, and
/// the services still run. A service without a `listener` gets GOST's default, tcp,
/// and its status line says so.
#[test]
fn unsupported_keys_warn_with_file_line_and_key() {
    let dir = config_dir();
    let b = TcpBackend::start("127.0.0.1", "w");
    let file = dir.path().join("w.yaml");
    let (_pw, port, lines) = retry(|| {
        let port = free_port("127.0.0.1");
        std::fs::write(&file, format!("services:\n- name: a\n  addr: 127.0.0.1:{port}\n  handler:\n    type: tcp\n  forwarder:\n    nodes:\n    - name: t\n      addr: {}\napi:\n  addr: 127.0.0.1:18080\n", b.target())).unwrap();
        let (pw, l) = launch(portway_cmd(dir.path(), &["-C".as_ref(), file.as_os_str()]), 1)?;
        Ok((pw, port, l))
    });
    assert_eq!(lines[0], format!("service \"a\": tcp listening on 127.0.0.1:{port} -> {}", b.target()));
    assert_eq!(hello(v4("127.0.0.1", port)).unwrap(), "w");
    let (st, _, err) = run_to_exit(dir.path(), &["-C".as_ref(), file.as_os_str(), "-O".as_ref(), "yaml".as_ref()]);
    assert_eq!(code(st), 0);
    assert!(
        err.lines().any(|l| l.starts_with(&format!("portway: warning: {}:10: api:", file.display()))),
        "the warning should read `portway: warning: FILE:LINE: KEY: …`:\n{err}"
    );
}

/// A strategy Portway does not know runs as round-robin (GOST's fallback for a
/// name it does not know) and Portway says so on stderr, naming it.
#[test]
fn unknown_strategy_on_the_command_line_runs_round_robin_with_a_warning() {
    let dir = config_dir();
    let (b1, b2) = (TcpBackend::start("127.0.0.1", "one"), TcpBackend::start("127.0.0.2", "two"));
    let (pw, port, _) = retry(|| {
        let port = free_port("127.0.0.1");
        let url = format!("tcp://127.0.0.1:{port}/{},{}?strategy=lowest", b1.target(), b2.target());
        let (pw, l) = launch(portway_cmd(dir.path(), &["-L", &url]), 1)?;
        Ok((pw, port, l))
    });
    let answers: Vec<String> = (0..4).map(|_| hello(v4("127.0.0.1", port)).unwrap()).collect();
    assert_eq!(answers, ["one", "two", "one", "two"], "round-robin over the targets");
    assert!(
        pw.stderr().lines().any(|l| l.starts_with("portway: warning: command line: services[0].forwarder.selector.strategy: unknown selector strategy \"lowest\"") && l.contains("round-robin")),
        "{}",
        pw.stderr()
    );
}

/// `-D` / `-DD` show up in `-O` output as `log.level`, as in GOST.
#[test]
fn debug_flags_appear_as_log_level_in_output() {
    let dir = config_dir();
    for (flag, level) in [("-D", "debug"), ("-DD", "trace")] {
        let (st, out, err) = run_to_exit(dir.path(), &[flag, "-L", "tcp://:8080/127.0.0.1:80", "-O", "yaml"]);
        assert_eq!(code(st), 0, "{err}");
        let y: Y = serde_yaml::from_str(&out).unwrap();
        assert_eq!(y["log"]["level"], Y::from(level), "{out}");
    }
    let (_, out, _) = run_to_exit(dir.path(), &["-L", "tcp://:8080/127.0.0.1:80", "-O", "yaml"]);
    assert!(!out.contains("log:"), "{out}");
}

/// `-O yaml` into a closed pipe (`portway -O yaml | head -0`) and `--help` likewise
/// end quietly, not with a panic.
#[test]
fn closed_stdout_is_not_a_crash() {
    use std::os::fd::{FromRawFd, OwnedFd};
    let dir = config_dir();
    for args in [&["-L", "tcp://:8080/127.0.0.1:80", "-O", "yaml"][..], &["--help"][..], &["--version"][..]] {
        let mut fds = [0; 2];
        // SAFETY: pipe(2) fills two fresh descriptors, which we then own.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        drop(rd);
        let mut cmd = portway_cmd(dir.path(), args);
        cmd.stdout(std::process::Stdio::from(wr));
        let mut p = Portway::spawn(cmd);
        let st = p.wait_exit(EVENT).expect("exit");
        let err = p.stderr();
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(code(st), 0, "{args:?}: {err}");
    }
}

/// A chain whose last node uses the `forward` connector: the raw stream to the node
/// is the connection (GOST's server-side forwarding), and the status line names the
/// chain. Connectors Portway does not run are refused naming type and service.
#[test]
fn forward_chain_runs_and_other_connectors_are_refused_by_name() {
    let dir = config_dir();
    let node = TcpBackend::start("127.0.0.1", "chain-node");
    let (_pw, port, lines) = retry(|| {
        let port = free_port("127.0.0.1");
        let args = ["-L".to_string(), format!("tcp://127.0.0.1:{port}/127.0.0.9:9"), "-F".into(), format!("forward+tcp://{}", node.target())];
        let (pw, l) = launch(portway_cmd(dir.path(), &args), 1)?;
        Ok((pw, port, l))
    });
    assert_eq!(lines[0], format!("service \"service-0\": tcp listening on 127.0.0.1:{port} -> 127.0.0.9:9 via chain \"chain-0\""));
    assert_eq!(hello(v4("127.0.0.1", port)).unwrap(), "chain-node");

    let (st, out, err) = run_to_exit(dir.path(), &["-L", "tcp://127.0.0.1:1/127.0.0.1:2", "-F", "ss://aes-128-gcm:pw@127.0.0.1:8338"]);
    assert_eq!(code(st), 1, "{err}");
    assert!(out.starts_with("service \"service-0\": failed:") && out.contains("connector type \"ss\" is not implemented"), "{out}");
}

/// GOST prints no `listener` for a service that has none (yaml `omitempty`), and
/// GOST refuses a listener of type '' when the output is loaded again.
#[test]
fn output_of_a_file_without_listener_has_no_empty_listener_type() {
    let dir = config_dir();
    let file = dir.path().join("nolistener.yaml");
    std::fs::write(&file, "services:\n- name: a\n  addr: 127.0.0.1:1\n  handler:\n    type: tcp\n  forwarder:\n    nodes:\n    - name: t\n      addr: 127.0.0.1:2\n").unwrap();
    let (st, out, err) = run_to_exit(dir.path(), &["-C".as_ref(), file.as_os_str(), "-O".as_ref(), "yaml".as_ref()]);
    assert_eq!(code(st), 0, "{err}");
    assert!(!out.contains("type: ''"), "{out}");
}

/// With no arguments portway runs the active profile named in settings.json; if
/// that file is gone it says so and runs "default" instead of writing the default
/// rules under the missing profile's name.
#[test]
fn no_arguments_run_the_active_profile() {
    let dir = config_dir();
    let b = TcpBackend::start("127.0.0.1", "active");
    let profiles = dir.path().join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::write(dir.path().join("settings.json"), r#"{"activeProfile": "office"}"#).unwrap();
    let (pw, port) = retry(|| {
        let port = free_port("127.0.0.1");
        std::fs::write(
            profiles.join("office.yaml"),
            format!("services:\n- name: desk\n  addr: 127.0.0.1:{port}\n  handler:\n    type: tcp\n  listener:\n    type: tcp\n  forwarder:\n    nodes:\n    - name: t\n      addr: {}\n", b.target()),
        )
        .unwrap();
        let (pw, l) = launch(portway_cmd::<&str>(dir.path(), &[]), 1)?;
        assert_eq!(l[0], format!("service \"desk\": tcp listening on 127.0.0.1:{port} -> {}", b.target()));
        Ok((pw, port))
    });
    assert_eq!(hello(v4("127.0.0.1", port)).unwrap(), "active");
    drop(pw);

    std::fs::write(dir.path().join("settings.json"), r#"{"activeProfile": "gone"}"#).unwrap();
    let pw = Portway::run::<&str>(dir.path(), &[]);
    let (_, l) = pw.status_lines(0, 1).unwrap();
    assert!(l[0].starts_with("service \"web\":"), "{}", pw.transcript());
    pw.wait_line(0, Src::Err, EVENT, |l| l.contains("the active profile \"gone\"") && l.contains("running \"default\"")).unwrap();
    assert!(!profiles.join("gone.yaml").exists(), "the default rules were written as profile \"gone\"");
    assert!(profiles.join("default.yaml").exists());
}

/// `--profile` with `-L`/`-C`/`-F` would silently ignore one of them: refused.
#[test]
fn profile_flag_with_other_sources_is_a_usage_error() {
    let dir = config_dir();
    for extra in [["-L", "tcp://127.0.0.1:1/127.0.0.1:2"], ["-C", "x.yaml"], ["-F", "forward+tcp://127.0.0.1:1"]] {
        let (st, _, err) = run_to_exit(dir.path(), &["--profile", "p", extra[0], extra[1]]);
        assert_eq!(code(st), 2, "{extra:?}: {err}");
        assert!(err.contains("--profile runs a stored profile and cannot be combined with -L, -F or -C"), "{err}");
    }
}
