//! The tray's menu and actions, the desktop settings and the notification rule,
//! against a real engine, real sockets and a real profile folder (no display).

mod common;
use common::*;

use portway_app::backend::Backend;
use portway_app::desktop::{notice_for, tray_model, NoticeGate, NoticeKind, TrayAction, NOTICE_QUIET};
use portway_core::stats::ServiceState;
use portway_core::store::ProfileStore;
use portway_ipc::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

fn rule_on(name: &str, port: u16, target: std::net::SocketAddr) -> RuleDraft {
    draft(name, format!("127.0.0.1:{port}"), target.to_string())
}

/// Bytes through the rule on `port` come back.
fn passes(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&format!("127.0.0.1:{port}").parse().expect("addr"), Duration::from_secs(3)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    if s.write_all(b"ping").is_err() {
        return false;
    }
    let mut back = [0u8; 4];
    s.read_exact(&mut back).is_ok() && &back == b"ping"
}

fn refused(port: u16) -> bool {
    matches!(TcpStream::connect_timeout(&format!("127.0.0.1:{port}").parse().expect("addr"), Duration::from_secs(3)), Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
}

/// A backend on profile "work" with rules `a` and `b` forwarding to an echo server.
fn two_rules(dir: &std::path::Path) -> (Backend, u16, u16) {
    let b = backend(dir);
    b.profile_create("work").expect("profile");
    let target = echo_server();
    let (pa, pb) = (free_port(), free_port());
    b.rule_save(rule_on("a", pa, target), None).expect("rule a");
    b.rule_save(rule_on("b", pb, target), None).expect("rule b");
    (b, pa, pb)
}

fn find<'a>(items: &'a [TrayItem], id: &str) -> &'a TrayItem {
    items.iter().find(|i| i.id == id).unwrap_or_else(|| panic!("no tray entry {id} in {items:?}"))
}

#[test]
fn the_tray_lists_every_rule_with_its_state_and_the_profiles() {
    let dir = tempfile::tempdir().expect("tmp");
    let (b, _, _) = two_rules(dir.path());
    b.rule_set_enabled("b", false).expect("b off");
    let m = b.tray().expect("tray");
    let a = find(&m.items, "rule:a");
    assert_eq!((a.kind, a.label.as_str(), a.checked, a.enabled), (TrayItemKind::Check, "a", true, true));
    let rb = find(&m.items, "rule:b");
    assert_eq!((rb.kind, rb.checked), (TrayItemKind::Check, false));
    let profiles = find(&m.items, "profiles");
    assert_eq!(profiles.kind, TrayItemKind::Submenu);
    let listed: Vec<(&str, bool)> = profiles.children.iter().map(|p| (p.id.as_str(), p.checked)).collect();
    assert_eq!(listed, vec![("profile:default", false), ("profile:work", true)]);
    assert!(find(&m.items, "stop-all").enabled);
    assert_eq!(find(&m.items, "open").label, "Open Portway");
    assert_eq!(find(&m.items, "quit").label, "Quit");
    assert_eq!(m.icon, TrayIconKind::Running);
    assert_eq!(m.tooltip, "Portway (work): 1 running, 1 off");
    b.shutdown();
}

#[test]
fn the_tray_icon_says_failing_idle_or_running() {
    let dir = tempfile::tempdir().expect("tmp");
    let (b, pa, _) = two_rules(dir.path());
    // A rule whose port is taken fails.
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let s = b.rule_save(rule_on("clash", port, echo_server()), None).expect("saved");
    assert!(s.rules.iter().any(|r| r.rule.name == "clash" && r.state == RuleState::Failed), "{s:?}");
    let m = b.tray().expect("tray");
    assert_eq!(m.icon, TrayIconKind::Failing);
    assert_eq!(find(&m.items, "rule:clash").label, "clash (failed)");
    assert!(m.tooltip.contains("2 running, 1 failing"), "{}", m.tooltip);
    assert!(passes(pa));
    for r in ["a", "b", "clash"] {
        b.rule_set_enabled(r, false).expect("off");
    }
    let m = b.tray().expect("tray");
    assert_eq!(m.icon, TrayIconKind::Idle);
    assert!(!find(&m.items, "stop-all").enabled, "nothing to stop");
    drop(taken);
    b.shutdown();
}

#[test]
fn an_empty_profile_says_so_in_the_tray() {
    let snap = AppSnapshot { profiles: vec!["p".into()], active_profile: "p".into(), rules: vec![], chains: vec![], other_services: vec![], warnings: vec![] };
    let m = tray_model(&snap);
    let note = find(&m.items, "no-rules");
    assert_eq!((note.kind, note.enabled), (TrayItemKind::Label, false));
    assert_eq!(m.icon, TrayIconKind::Idle);
    assert_eq!(m.tooltip, "Portway (p): 0 running");
}

#[test]
fn a_rule_entry_stops_and_starts_the_rules_listener() {
    let dir = tempfile::tempdir().expect("tmp");
    let (b, pa, pb) = two_rules(dir.path());
    assert!(passes(pa));
    assert_eq!(b.tray_activate("rule:a").expect("activate"), TrayAction::Changed);
    assert!(refused(pa), "rule a's port still accepts");
    assert!(passes(pb), "rule b is untouched");
    assert!(!find(&b.tray().expect("tray").items, "rule:a").checked);
    // Kept like the window's switch: a restart keeps it off.
    let a = b.snapshot().expect("snap").rules.into_iter().find(|r| r.rule.name == "a").expect("a");
    assert_eq!((a.enabled, a.state), (false, RuleState::Disabled));
    assert_eq!(ProfileStore::open(dir.path().to_path_buf()).settings().expect("settings").disabled.get("work"), Some(&vec!["a".to_string()]));

    assert_eq!(b.tray_activate("rule:a").expect("activate"), TrayAction::Changed);
    assert!(passes(pa), "bytes pass again");
    assert!(find(&b.tray().expect("tray").items, "rule:a").checked);

    let e = b.tray_activate("rule:nope").expect_err("unknown rule");
    assert_eq!((e.code, e.rule.as_deref()), (ErrorCode::NotFound, Some("nope")));
    assert_eq!(b.tray_activate("open").expect("open"), TrayAction::ShowWindow);
    assert_eq!(b.tray_activate("quit").expect("quit"), TrayAction::Quit);
    assert_eq!(b.tray_activate("bogus").expect_err("bogus").code, ErrorCode::NotFound);
    b.shutdown();
}

#[test]
fn stop_all_switches_every_rule_off() {
    let dir = tempfile::tempdir().expect("tmp");
    let (b, pa, pb) = two_rules(dir.path());
    assert!(passes(pa) && passes(pb));
    assert_eq!(b.tray_activate("stop-all").expect("stop all"), TrayAction::Changed);
    assert!(refused(pa) && refused(pb));
    let m = b.tray().expect("tray");
    assert!(!find(&m.items, "rule:a").checked && !find(&m.items, "rule:b").checked);
    assert_eq!(m.icon, TrayIconKind::Idle);
    // Each can be switched back on from the tray.
    b.tray_activate("rule:b").expect("b on");
    assert!(passes(pb) && refused(pa));
    b.shutdown();
}

#[test]
fn a_profile_entry_switches_the_profile() {
    let dir = tempfile::tempdir().expect("tmp");
    let (b, pa, _) = two_rules(dir.path());
    assert_eq!(b.tray_activate("profile:default").expect("switch"), TrayAction::Changed);
    assert!(refused(pa), "work's rules stop with their profile");
    let s = b.snapshot().expect("snap");
    assert_eq!(s.active_profile, "default");
    let m = tray_model(&s);
    let checked: Vec<&str> = find(&m.items, "profiles").children.iter().filter(|p| p.checked).map(|p| p.id.as_str()).collect();
    assert_eq!(checked, vec!["profile:default"]);
    assert!(m.items.iter().any(|i| i.id == "rule:web"), "the default profile's rules are listed: {m:?}");
    // And back.
    b.tray_activate("profile:work").expect("switch back");
    assert!(passes(pa));
    assert_eq!(b.tray_activate("profile:missing").expect_err("no such profile").code, ErrorCode::NotFound);
    assert_eq!(b.snapshot().expect("snap").active_profile, "work");
    b.shutdown();
}

#[test]
fn desktop_settings_round_trip_and_apply_the_stats_interval() {
    let dir = tempfile::tempdir().expect("tmp");
    let b = backend(dir.path());
    assert_eq!(b.desktop_settings().expect("defaults"), DesktopSettings::default());
    let want = DesktopSettings {
        close_to_tray: false,
        start_minimized: true,
        start_at_login: false,
        theme: Theme::Dark,
        stats_interval_ms: 250,
        log_level: LogLevel::Debug,
        notifications: false,
    };
    assert_eq!(b.desktop_settings_set(want.clone()).expect("saved"), want);
    assert_eq!(b.engine().tick(), Duration::from_millis(250));
    // What another start reads, beside the rest of the settings.
    let store = ProfileStore::open(dir.path().to_path_buf());
    let s = store.settings().expect("settings");
    assert_eq!(s.desktop, want);
    assert_eq!(s.active_profile.as_deref(), Some("default"));
    let text = std::fs::read_to_string(dir.path().join("settings.json")).expect("file");
    assert!(text.contains("\"statsIntervalMs\": 250") && text.contains("\"theme\": \"dark\""), "{text}");

    // The engine ticks at the new interval: frames ~250 ms apart, not 1 s.
    let (tx, rx) = std::sync::mpsc::channel();
    b.stream_stats(move |f| tx.send(f.time).is_ok());
    let times: Vec<u64> = (0..5).map(|_| rx.recv_timeout(Duration::from_secs(5)).expect("a frame")).collect();
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|g| (150..600).contains(g)), "gaps {gaps:?}");

    // Out of range: refused on its field, nothing saved.
    for bad in [100, 20_000] {
        let e = b.desktop_settings_set(DesktopSettings { stats_interval_ms: bad, ..want.clone() }).expect_err("out of range");
        assert_eq!((e.code, e.field.as_deref()), (ErrorCode::Invalid, Some("statsIntervalMs")));
    }
    assert_eq!(b.desktop_settings().expect("kept"), want);
    b.shutdown();
}

#[test]
fn a_settings_file_from_before_the_desktop_settings_still_loads() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(dir.path().join("profiles")).expect("dir");
    std::fs::write(dir.path().join("profiles/old.yaml"), "services: []\n").expect("profile");
    std::fs::write(dir.path().join("settings.json"), r#"{ "activeProfile": "old", "disabled": { "old": ["x"] } }"#).expect("settings");
    let b = backend(dir.path());
    assert_eq!(b.snapshot().expect("snap").active_profile, "old");
    assert_eq!(b.desktop_settings().expect("defaults"), DesktopSettings::default());
    // Saving the new fields keeps the old ones.
    b.desktop_settings_set(DesktopSettings { theme: Theme::Light, ..Default::default() }).expect("saved");
    let s = ProfileStore::open(dir.path().to_path_buf()).settings().expect("settings");
    assert_eq!(s.disabled.get("old"), Some(&vec!["x".to_string()]));
    assert_eq!(s.desktop.theme, Theme::Light);
    b.shutdown();

    // A file with only some of them fills in the rest.
    std::fs::write(dir.path().join("settings.json"), r#"{ "activeProfile": "old", "desktop": { "theme": "dark", "statsIntervalMs": 99999 } }"#).expect("settings");
    let d = ProfileStore::open(dir.path().to_path_buf()).settings().expect("settings").desktop;
    assert_eq!((d.theme, d.close_to_tray, d.notifications), (Theme::Dark, true, true));
    assert_eq!(d.stats_interval(), Duration::from_secs(10), "a hand-edited interval is kept within bounds");
}

#[test]
fn the_log_level_applies_while_running() {
    portway_core::logging::init(0);
    let dir = tempfile::tempdir().expect("tmp");
    let b = backend(dir.path());
    let seen = |marker: &str| portway_core::logging::ring().recent(2000).iter().any(|l| l.message.contains(marker));
    b.desktop_settings_set(DesktopSettings { log_level: LogLevel::Error, ..Default::default() }).expect("error");
    tracing::warn!("desktop-test marker-quiet");
    assert!(!seen("marker-quiet"), "a warning passed the error level");
    b.desktop_settings_set(DesktopSettings { log_level: LogLevel::Debug, ..Default::default() }).expect("debug");
    tracing::debug!("desktop-test marker-loud");
    assert!(seen("marker-loud"), "a debug line did not pass the debug level");
    b.desktop_settings_set(DesktopSettings::default()).expect("info");
    b.shutdown();
}

fn failed(e: &str) -> ServiceState {
    ServiceState::Failed { error: e.into() }
}

#[test]
fn notifications_on_failure_and_recovery_at_most_one_per_rule_per_quiet_period() {
    let t0 = Instant::now();
    // Off: nothing, whatever happens.
    assert_eq!(notice_for(false, false, &failed("port in use"), None, t0), None);
    // A failure notifies with the engine's message; a recovery too.
    assert_eq!(notice_for(true, false, &failed("port in use"), None, t0), Some(NoticeKind::Failed { error: "port in use".into() }));
    assert_eq!(notice_for(true, true, &ServiceState::Running, None, t0), Some(NoticeKind::Recovered));
    // Staying failed, starting normally, or being switched off says nothing.
    assert_eq!(notice_for(true, true, &failed("again"), None, t0), None);
    assert_eq!(notice_for(true, false, &ServiceState::Running, None, t0), None);
    assert_eq!(notice_for(true, true, &ServiceState::Disabled, None, t0), None);
    // Within the quiet period after the last one: nothing.
    assert_eq!(notice_for(true, true, &ServiceState::Running, Some(t0), t0 + Duration::from_secs(3)), None);
    assert_eq!(notice_for(true, true, &ServiceState::Running, Some(t0), t0 + NOTICE_QUIET), Some(NoticeKind::Recovered));

    // A flapping rule through the gate: fail, recover, fail in 4 s → one notice;
    // another rule is not held back by it.
    let mut g = NoticeGate::default();
    assert!(g.on_state(true, "a", &failed("x"), t0).is_some());
    assert_eq!(g.on_state(true, "a", &ServiceState::Running, t0 + Duration::from_secs(2)), None);
    assert_eq!(g.on_state(true, "a", &failed("x"), t0 + Duration::from_secs(4)), None);
    assert!(g.on_state(true, "b", &failed("y"), t0 + Duration::from_secs(4)).is_some());
    assert_eq!(g.on_state(true, "a", &ServiceState::Running, t0 + Duration::from_secs(11)), Some(NoticeKind::Recovered));
    // Off in the settings: the gate says nothing.
    assert_eq!(g.on_state(false, "a", &failed("z"), t0 + Duration::from_secs(30)), None);
}

#[test]
fn a_real_bind_failure_reaches_the_notification_gate() {
    let dir = tempfile::tempdir().expect("tmp");
    let b = backend(dir.path());
    b.profile_create("n").expect("profile");
    let mut events = b.engine().subscribe();
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    b.rule_save(rule_on("clash", port, echo_server()), None).expect("saved");
    let mut gate = NoticeGate::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let notice = b.runtime().block_on(async {
        loop {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Err(_) => panic!("no failure event within 10 s"),
                Ok(Ok(portway_core::stats::Event::ServiceState { service, state })) => {
                    if let Some(n) = gate.on_state(true, &service, &state, Instant::now()) {
                        return (service, n);
                    }
                }
                Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(e)) => panic!("events: {e}"),
            }
        }
    });
    assert_eq!(notice.0, "clash");
    assert!(matches!(&notice.1, NoticeKind::Failed { error } if error.contains(&port.to_string())), "{notice:?}");
    drop(taken);
    b.shutdown();
}
