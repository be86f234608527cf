//! A deterministic fuzz smoke test that runs in CI: thousands of mutations of real
//! GOST configs and command lines go through the loader, the URL grammar and the
//! planner. Any panic fails; every refusal must carry a message. (The cargo-fuzz
//! targets in `fuzz/` do the same coverage-guided, without a bound.)

use portway_core::config::{build_from_cmd, load_str, validate::plan_service};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// xorshift64*: reproducible without a crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&str] = &[
    ":", "- ", "{", "}", "[", "]", "\n", "  ", "\t", "'", "\"", "&a", "*a", "<<: ", "---\n", "#", "?", "%", "%zz", "@", "/", ",",
    "0x", "-1", "99999", "${X}", "\u{feff}", "é", "\0", "true", "null", "~", "1e400", "services:", "nodes:", "addr: ", "type: ",
    "selector: {strategy: x, maxFails: -3, failTimeout: 1h}", "[::1]:", ":0", "8000-8003", "+", "://", "?a=b&", "=",
];

fn mutate(rng: &mut Rng, src: &str) -> String {
    let mut b: Vec<char> = src.chars().collect();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(b.len() + 1);
        match rng.below(4) {
            0 if !b.is_empty() => {
                let end = (at + 1 + rng.below(8)).min(b.len());
                b.drain(at.min(b.len())..end);
            }
            1 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                for (i, c) in t.chars().enumerate() {
                    b.insert((at + i).min(b.len()), c);
                }
            }
            2 if !b.is_empty() => {
                let i = at.min(b.len() - 1);
                b[i] = char::from_u32((rng.next() % 128) as u32).unwrap_or('x');
            }
            _ => {
                // Duplicate a slice (repeated keys, nesting).
                let start = at.min(b.len());
                let end = (start + rng.below(40)).min(b.len());
                let piece: Vec<char> = b[start..end].to_vec();
                for (i, c) in piece.into_iter().enumerate() {
                    b.insert((end + i).min(b.len()), c);
                }
            }
        }
    }
    b.into_iter().collect()
}

fn shared() -> std::path::PathBuf {
    match std::env::var_os("PORTWAY_SHARED") {
        Some(p) => p.into(),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

#[test]
fn mutated_configs_never_panic() {
    let dir = shared().join("corpus/gost-configs");
    let mut seeds = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "yaml" || x == "yml" || x == "json") {
            seeds.push((p.file_name().expect("name").to_string_lossy().into_owned(), std::fs::read_to_string(&p).expect("read")));
        }
    }
    assert!(seeds.len() > 40, "corpus not found");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut ok, mut refused) = (0, 0);
    for i in 0..6000 {
        let (name, src) = &seeds[i % seeds.len()];
        let m = mutate(&mut rng, src);
        let r = catch_unwind(AssertUnwindSafe(|| match load_str(name, &m) {
            Ok(l) => {
                for s in &l.config.services {
                    let _ = plan_service(&l.config, s);
                }
                let _ = l.config.to_yaml();
                let _ = l.config.to_json();
                true
            }
            Err(e) => {
                assert!(!e.message.is_empty(), "empty error for a mutation of {name}");
                false
            }
        }));
        match r {
            Ok(true) => ok += 1,
            Ok(false) => refused += 1,
            Err(_) => panic!("panic on a mutation of {name} (iteration {i}):\n{m}"),
        }
    }
    assert!(ok > 100 && refused > 100, "mutations should both load and fail: {ok} ok, {refused} refused");
}

#[test]
fn mutated_command_lines_never_panic() {
    let lines = std::fs::read_to_string(shared().join("corpus/gost-configs/cmdlines.txt")).expect("cmdlines.txt");
    let urls: Vec<String> = lines
        .split_whitespace()
        .filter(|w| w.contains("://") || w.starts_with(':'))
        .map(|w| w.trim_matches(|c| c == '"' || c == '\'').trim_start_matches("-L=").trim_start_matches("-F=").to_string())
        .collect();
    assert!(urls.len() > 50);
    let mut rng = Rng(42);
    for i in 0..20000 {
        let l = mutate(&mut rng, &urls[i % urls.len()]);
        let f = mutate(&mut rng, &urls[(i * 7) % urls.len()]);
        let r = catch_unwind(AssertUnwindSafe(|| match build_from_cmd(std::slice::from_ref(&l), std::slice::from_ref(&f)) {
            Ok(c) => {
                for s in &c.services {
                    let _ = plan_service(&c, s);
                }
                let _ = c.to_yaml();
            }
            Err(e) => assert!(!e.message.is_empty()),
        }));
        assert!(r.is_ok(), "panic on -L {l:?} -F {f:?}");
    }
}
