//! `contrib/portway.service`, the unit a server user installs: systemd accepts
//! it, and the commands it runs (start, reload) do what its comments promise.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

const UNIT: &str = include_str!("../../../contrib/portway.service");

/// The value of `Key=` in the unit (first occurrence).
fn key<'a>(unit: &'a str, name: &str) -> &'a str {
    unit.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("the unit has no {name}="))
}

fn forward(name: &str, port: u16, target: &str) -> String {
    format!("services:\n- name: {name}\n  addr: 127.0.0.1:{port}\n  handler: {{type: tcp}}\n  listener: {{type: tcp}}\n  forwarder:\n    nodes: [{{name: t, addr: \"{target}\"}}]\n")
}

#[test]
fn systemd_accepts_the_unit() {
    let dir = config_dir();
    // As installed, but pointing at the binary under test (systemd checks that
    // ExecStart is executable).
    let unit = UNIT.replace("/usr/local/bin/portway", BIN);
    let path = dir.path().join("portway.service");
    std::fs::write(&path, unit).expect("write unit");
    let out = Command::new("systemd-analyze").arg("verify").arg(&path).output().expect("systemd-analyze (Debian package systemd) runs");
    let said = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && !said.contains("portway.service"), "systemd-analyze verify: {said}");
}

#[test]
fn the_units_start_and_reload_commands_run_a_config_and_reload_it() {
    let start: Vec<&str> = key(UNIT, "ExecStart").split_whitespace().collect();
    assert_eq!(start, ["/usr/local/bin/portway", "-C", "/etc/portway/config.yaml"]);
    // systemctl reload sends what the SIGHUP handler reloads on.
    assert_eq!(key(UNIT, "ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(key(UNIT, "Environment"), "PORTWAY_CONFIG_DIR=/var/lib/portway");
    assert_eq!(key(UNIT, "StateDirectory"), "portway", "the config dir the unit names is the one systemd creates");

    let dir = config_dir();
    let state = dir.path().join("state");
    let file = dir.path().join("config.yaml");
    let (one, two) = (TcpBackend::start("127.0.0.1", "one"), TcpBackend::start("127.0.0.2", "two"));
    let args: Vec<String> = start[1..].iter().map(|a| a.replace("/etc/portway/config.yaml", &file.display().to_string())).collect();
    let (mut pw, port) = retry(|| {
        let port = free_port("127.0.0.1");
        write_atomic(&file, &forward("web", port, &one.target()));
        let (pw, _) = launch(portway_cmd(&state, &args), 1)?;
        Ok((pw, port))
    });
    assert_eq!(hello(v4("127.0.0.1", port)).unwrap(), "one");
    // `systemctl reload portway`: the edited file applies, the new target answers.
    write_atomic(&file, &forward("web", port, &two.target()));
    let cur = pw.cursor();
    pw.signal(libc::SIGHUP);
    pw.wait_line(cur, Src::Err, EVENT, |l| l.contains("reloaded") && l.contains("1 restarted")).unwrap();
    assert_eq!(hello_eventually(v4("127.0.0.1", port), EVENT).unwrap(), "two");
    // Run from -C, the engine writes nothing into its state directory.
    assert!(!Path::new(&state).exists() || std::fs::read_dir(&state).map(|d| d.count()).unwrap_or(0) == 0);
    pw.signal(libc::SIGTERM);
    assert!(pw.wait_exit(EVENT).is_some_and(|s| s.success()), "systemctl stop: a clean exit");
}
