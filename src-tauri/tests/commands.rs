//! The app's commands against a real engine, real sockets and a real profile
//! folder (what the window's buttons do, minus the window).

mod common;
use common::*;

use portway_ipc::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn rule<'a>(s: &'a AppSnapshot, name: &str) -> &'a RuleView {
    s.rules.iter().find(|r| r.rule.name == name).unwrap_or_else(|| panic!("no rule {name} in {:?}", s.rules))
}

#[test]
fn first_start_creates_and_runs_the_default_profile() {
    let dir = tempfile::tempdir().expect("tmp");
    let b = backend(dir.path());
    let s = b.snapshot().expect("snapshot");
    assert_eq!(s.active_profile, "default");
    assert_eq!(s.profiles, vec!["default"]);
    let web = rule(&s, "web");
    assert_eq!(web.rule.listen, "127.0.0.1:8080");
    // 8080 may be taken on this machine: either way the state says so.
    assert!(matches!(web.state, RuleState::Running | RuleState::Failed), "{web:?}");
    if web.state == RuleState::Failed {
        assert!(web.error.as_deref().unwrap_or("").contains("127.0.0.1:8080"), "{web:?}");
    }
    assert!(dir.path().join("profiles/default.yaml").exists());
    b.shutdown();
}

#[test]
fn a_rule_made_in_the_form_forwards_bytes_and_streams_stats() {
    let dir = tempfile::tempdir().expect("tmp");
    let b = backend(dir.path());
    let target = echo_backend("b0");
    let port = free_port();
    let s = b.rule_save(draft("fwd", format!("127.0.0.1:{port}"), target.to_string()), None).expect("saved");
    let v = rule(&s, "fwd");
    assert_eq!(v.state, RuleState::Running, "{v:?}");
    assert_eq!(v.listening, vec![format!("127.0.0.1:{port}")]);
    assert_eq!(v.gost_cmdline.as_deref(), Some(format!("gost -L \"tcp://127.0.0.1:{port}/{target}\"").as_str()));
    let (tx, rx) = mpsc::channel();
    b.stream_stats(move |f| tx.send(f).is_ok());
    let (name, mut conn) = hello(port).expect("through the rule");
    assert_eq!(name, "b0");
    conn.write_all(b"ping").expect("write");
    let mut back = [0u8; 4];
    conn.read_exact(&mut back).expect("echo");
    assert_eq!(&back, b"ping");
    // A frame shows the open connection and the bytes.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let f = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("a stats frame within 5 s");
        if let Some(r) = f.rules.iter().find(|r| r.name == "fwd") {
            if r.active == 1 && r.bytes_in == 4 && r.bytes_out == 7 {
                assert_eq!(r.state, RuleState::Running, "frames carry the rule's state");
                assert_eq!(r.error, None);
                break;
            }
        }
    }
    // The profile on disk is GOST YAML with the new service.
    let text = std::fs::read_to_string(dir.path().join("profiles/default.yaml")).expect("profile");
    assert!(text.contains("name: fwd") && text.contains(&target.to_string()), "{text}");
    b.shutdown();
}

#[test]
fn invalid_form_is_refused_naming_the_field_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tmp");
    let b = backend(dir.path());
    let before = std::fs::read_to_string(dir.path().join("profiles/default.yaml")).expect("profile");
    let e = b.rule_save(draft("x", "8080".into(), "127.0.0.1:80".into()), None).expect_err("bad listen");
    assert_eq!(e.code, ErrorCode::Invalid);
    assert_eq!(e.field.as_deref(), Some("listen"));
    assert_eq!(e.rule.as_deref(), Some("x"));
    let e = b.rule_save(draft("web", "127.0.0.1:1".into(), "127.0.0.1:80".into()), None).expect_err("duplicate");
    assert_eq!(e.field.as_deref(), Some("name"));
    let mut d = draft("y", "127.0.0.1:1".into(), "127.0.0.1:80".into());
    d.targets.push("nope".into());
    assert_eq!(b.rule_save(d, None).expect_err("target").field.as_deref(), Some("targets.1"));
    assert_eq!(std::fs::read_to_string(dir.path().join("profiles/default.yaml")).expect("profile"), before);
    b.shutdown();
}

#[test]
fn switching_a_rule_off_closes_its_port_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let target = echo_backend("b0");
    let port = free_port();
    {
        let b = backend(dir.path());
        b.rule_save(draft("fwd", format!("127.0.0.1:{port}"), target.to_string()), None).expect("saved");
        assert!(hello(port).is_ok());
        let s = b.rule_set_enabled("fwd", false).expect("off");
        let v = rule(&s, "fwd");
        assert_eq!((v.state, v.enabled), (RuleState::Disabled, false));
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "port closed");
        b.shutdown();
    }
    let b = backend(dir.path());
    let s = b.snapshot().expect("snapshot");
    assert_eq!(rule(&s, "fwd").state, RuleState::Disabled, "the off switch is remembered");
    let s = b.rule_set_enabled("fwd", true).expect("on");
    assert_eq!(rule(&s, "fwd").state, RuleState::Running);
    assert_eq!(hello(port).expect("forwards again").0, "b0");
    b.shutdown();
}

#[test]
fn a_port_in_use_shows_on_the_rule_and_other_rules_keep_their_connections() {
    let dir = tempfile::tempdir().expect("tmp");
    let b = backend(dir.path());
    let target = echo_backend("b0");
    let port = free_port();
    b.rule_save(draft("a", format!("127.0.0.1:{port}"), target.to_string()), None).expect("saved");
    let (_, mut held) = hello(port).expect("hello");
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let tport = taken.local_addr().expect("addr").port();
    let s = b.rule_save(draft("busy", format!("127.0.0.1:{tport}"), target.to_string()), None).expect("saved even so");
    let v = rule(&s, "busy");
    assert_eq!(v.state, RuleState::Failed);
    assert_eq!(v.error.as_deref(), Some(format!("127.0.0.1:{tport}: address already in use").as_str()));
    held.write_all(b"x").expect("write");
    let mut one = [0u8; 1];
    held.read_exact(&mut one).expect("the other rule's connection survived the save");
    b.shutdown();
}

#[test]
fn import_previews_names_what_it_cannot_run_and_imports_command_lines() {
    let dir = tempfile::tempdir().expect("tmp");
    let b = backend(dir.path());
    let yaml = "services:\n- name: s\n  addr: 127.0.0.1:0\n  handler: {type: tcp}\n  listener: {type: tcp}\n  forwarder: {nodes: [{name: t, addr: 127.0.0.1:9}]}\n  bypass: b\n- name: p\n  addr: :1080\n  handler: {type: socks5}\n  listener: {type: tcp}\n- name: q\n  addr: :8338\n  handler: {type: ss}\n  listener: {type: tcp}\n";
    let p = b.profile_import_preview(yaml, Some("x.yaml")).expect("preview");
    assert_eq!(p.format, "yaml");
    assert_eq!(p.rules.len(), 1);
    // A proxy service runs but is not a forwarding rule; a Shadowsocks TCP service
    // does not run yet and says so.
    assert_eq!(p.other_services, vec!["p", "q"]);
    assert!(p.warnings.iter().any(|w| w.contains("bypass")), "{:?}", p.warnings);
    assert!(!p.warnings.iter().any(|w| w.contains("service \"p\"")), "{:?}", p.warnings);
    assert!(p.warnings.iter().any(|w| w.contains("will not run yet") && w.contains("\"ss\"")), "{:?}", p.warnings);
    let v2 = b.profile_import_preview("{\"ServeNodes\": [\":8080\"]}", Some("gost.json")).expect_err("v2");
    assert!(v2.message.contains("GOST v2"), "{}", v2.message);
    assert_eq!(v2.code, ErrorCode::Parse);
    // A pasted command line with a strategy GOST does not know: it imports (GOST
    // runs it round-robin) and the preview says so.
    let p = b.profile_import_preview("gost -L \"tcp://127.0.0.1:0/127.0.0.1:9?strategy=fifio\"", None).expect("preview");
    assert_eq!((p.format.as_str(), p.rules.len()), ("cmdline", 1));
    assert!(p.warnings.iter().any(|w| w.contains("unknown selector strategy \"fifio\"") && w.contains("round-robin")), "{:?}", p.warnings);
    let target = echo_backend("b0");
    let port = free_port();
    let s = b.profile_import(&format!("gost -L tcp://127.0.0.1:{port}/{target}"), None, "imported").expect("import");
    assert_eq!(s.active_profile, "imported");
    assert_eq!(rule(&s, "service-0").state, RuleState::Running);
    assert_eq!(hello(port).expect("imported rule runs").0, "b0");
    let e = b.profile_import("services: []", None, "imported").expect_err("exists");
    assert_eq!(e.code, ErrorCode::AlreadyExists);
    b.shutdown();
}

#[test]
fn a_corrupt_profile_still_opens_the_window_and_is_not_overwritten() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(dir.path().join("profiles")).expect("mkdir");
    let broken = "services:\n- name: a\n  addr: [oops\n";
    std::fs::write(dir.path().join("profiles/default.yaml"), broken).expect("write");
    let b = backend(dir.path());
    let s = b.snapshot().expect("a snapshot even so");
    assert!(s.warnings.iter().any(|w| w.contains("default.yaml") && w.contains("invalid YAML")), "{:?}", s.warnings);
    let e = b.rule_save(draft("n", "127.0.0.1:1".into(), "127.0.0.1:2".into()), None).expect_err("cannot edit a broken file");
    assert_eq!(e.code, ErrorCode::Parse);
    assert_eq!(std::fs::read_to_string(dir.path().join("profiles/default.yaml")).expect("kept"), broken);
    b.shutdown();
}

#[test]
fn profiles_duplicate_rename_delete_and_export() {
    let dir = tempfile::tempdir().expect("tmp");
    let b = backend(dir.path());
    let s = b.profile_duplicate("default", "copy").expect("duplicate");
    assert_eq!(s.profiles, vec!["copy", "default"]);
    assert_eq!(std::fs::read(dir.path().join("profiles/copy.yaml")).expect("copy"), std::fs::read(dir.path().join("profiles/default.yaml")).expect("orig"));
    assert_eq!(b.profile_duplicate("default", "copy").expect_err("exists").code, ErrorCode::AlreadyExists);
    let e = b.profile_delete("default").expect_err("active");
    assert!(e.message.contains("active profile"), "{}", e.message);
    let s = b.profile_rename("default", "home").expect("rename the active profile");
    assert_eq!(s.active_profile, "home");
    assert_eq!(s.profiles, vec!["copy", "home"]);
    let s = b.profile_delete("copy").expect("delete");
    assert_eq!(s.profiles, vec!["home"]);
    let ex = b.profile_export("home").expect("export");
    assert!(ex.yaml.contains("name: web"));
    assert_eq!(ex.cmdline.as_deref(), Some("gost -L \"tcp://127.0.0.1:8080/127.0.0.1:8000\""));
    let out = dir.path().join("exported.yaml");
    b.profile_export_to("home", &out).expect("export to file");
    let back = portway_core::config::load_file(&out).expect("GOST YAML loads back");
    assert_eq!(back.config.services[0].name, "web");
    assert_eq!(b.profile_export_to("home", &dir.path().join("x.sh")).expect_err("not yaml").code, ErrorCode::Invalid);
    assert!(b.profile_export("../etc").is_err(), "names cannot leave the profiles folder");
    assert!(b.profile_duplicate("../x", "y").is_err());
    b.shutdown();
}
