//! Any text as `-L` and `-F` URLs (split on a newline).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (l, f) = text.split_once('\n').unwrap_or((text, ""));
    let nodes: Vec<String> = if f.is_empty() { Vec::new() } else { vec![f.to_string()] };
    if let Ok(c) = portway_core::config::build_from_cmd(&[l.to_string()], &nodes) {
        for s in &c.services {
            let _ = portway_core::config::validate::plan_service(&c, s);
        }
        let _ = c.to_yaml();
    }
});
