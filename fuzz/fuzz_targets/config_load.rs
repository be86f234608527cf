//! Any bytes as a GOST config file: load (YAML or JSON), plan every service, save.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for name in ["fuzz.yaml", "fuzz.json"] {
        if let Ok(l) = portway_core::config::load_str(name, text) {
            for s in &l.config.services {
                let _ = portway_core::config::validate::plan_service(&l.config, s);
            }
            let _ = portway_core::config::load_str(name, &l.config.to_yaml());
            let _ = l.config.to_json();
        }
    }
});
