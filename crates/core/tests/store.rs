//! The profile store on a real temporary folder.

use portway_core::config::load_str;
use portway_core::store::{ProfileStore, Settings, StoreError};

const P: &str = "services:\n- name: web\n  addr: 127.0.0.1:8080\n  handler: {type: tcp}\n  listener: {type: tcp}\n  forwarder: {nodes: [{name: target-0, addr: 127.0.0.1:8000}]}\n";

fn store() -> (tempfile::TempDir, ProfileStore) {
    let d = tempfile::tempdir().expect("tempdir");
    let s = ProfileStore::open(d.path().to_path_buf());
    (d, s)
}

#[test]
fn save_list_load_rename_delete() {
    let (_d, s) = store();
    assert!(s.list().expect("list").is_empty());
    let cfg = load_str("p", P).expect("loads").config;
    s.save("home", &cfg).expect("save");
    s.save("work", &cfg).expect("save");
    assert_eq!(s.list().expect("list"), vec!["home", "work"]);
    assert_eq!(s.load("home").expect("load").config, cfg);
    s.set_active("home").expect("active");
    s.set_service_enabled("home", "web", false).expect("disable");
    s.rename("home", "house").expect("rename");
    let st = s.settings().expect("settings");
    assert_eq!(st.active_profile.as_deref(), Some("house"), "active follows the rename");
    assert_eq!(st.disabled.get("house"), Some(&vec!["web".to_string()]));
    assert!(matches!(s.rename("work", "house"), Err(StoreError::Exists(_))));
    s.delete("house").expect("delete");
    assert_eq!(s.list().expect("list"), vec!["work"]);
    assert_eq!(s.settings().expect("settings"), Settings::default());
    assert!(matches!(s.load("house"), Err(StoreError::NoSuchProfile(_))));
}

#[test]
fn saved_profile_is_gost_yaml_and_no_temp_files_remain() {
    let (d, s) = store();
    let cfg = load_str("p", P).expect("loads").config;
    s.save("p1", &cfg).expect("save");
    let text = std::fs::read_to_string(d.path().join("profiles/p1.yaml")).expect("file");
    assert!(text.contains("name: web") && text.contains("addr: 127.0.0.1:8000"), "{text}");
    let leftovers: Vec<_> = std::fs::read_dir(d.path().join("profiles")).expect("dir").filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
    assert_eq!(leftovers.len(), 1, "temp files left behind: {leftovers:?}");
}

#[test]
fn corrupt_profile_is_reported_with_its_line_and_never_overwritten() {
    let (d, s) = store();
    let path = d.path().join("profiles/broken.yaml");
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let broken = "services:\n- name: a\n  addr: [unclosed\n";
    std::fs::write(&path, broken).expect("write");
    let e = s.load("broken").expect_err("must not load").to_string();
    assert!(e.contains("broken.yaml:") && e.contains("invalid YAML"), "{e}");
    let cfg = load_str("p", P).expect("loads").config;
    let e = s.save("broken", &cfg).expect_err("must refuse").to_string();
    assert!(e.contains("not overwritten"), "{e}");
    assert_eq!(std::fs::read_to_string(&path).expect("still there"), broken);
}

#[test]
fn corrupt_settings_are_an_error_and_kept() {
    let (d, s) = store();
    std::fs::create_dir_all(d.path()).expect("mkdir");
    std::fs::write(d.path().join("settings.json"), "{\"activeProfile\": 3").expect("write");
    let e = s.settings().expect_err("corrupt").to_string();
    assert!(e.contains("settings.json") && e.contains("not overwritten"), "{e}");
    let cfg = load_str("p", P).expect("loads").config;
    s.save("x", &cfg).expect("profile saves fine");
    assert!(s.set_active("x").is_err(), "must not replace corrupt settings");
    assert_eq!(std::fs::read_to_string(d.path().join("settings.json")).expect("kept"), "{\"activeProfile\": 3");
}

#[test]
fn bad_profile_names_are_refused() {
    let (_d, s) = store();
    let cfg = load_str("p", P).expect("loads").config;
    for bad in ["", "../etc", ".hidden", "a/b"] {
        assert!(matches!(s.save(bad, &cfg), Err(StoreError::BadName(_))), "{bad:?} accepted");
    }
}

#[test]
fn save_text_keeps_the_users_file_verbatim() {
    let (d, s) = store();
    let text = format!("# my comment\n{P}");
    let loaded = s.save_text("imported", &text).expect("import");
    assert_eq!(loaded.config.services[0].name, "web");
    assert_eq!(std::fs::read_to_string(d.path().join("profiles/imported.yaml")).expect("file"), text);
    assert!(s.save_text("bad", "services: [").is_err());
    assert!(!s.exists("bad"), "a file that does not parse is not imported");
}
