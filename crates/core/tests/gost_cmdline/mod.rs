//! Splitting a GOST command line (as published in docs, issues and scripts) into its
//! `-L` and `-F` values, the way `gost` itself reads its flags: shell quoting first
//! (the `shell-words` crate), then Go's `flag` syntax through
//! `portway_core::config::cmdline`. Shared by the corpus and seed tests.
#![allow(dead_code)]

pub use portway_core::config::cmdline::GostArgs;

/// A corpus line: it must start with GOST's program name; the flags are parsed by
/// the same code as `portway`'s argv.
pub fn parse_gost_line(line: &str) -> Result<GostArgs, String> {
    let words = shell_words::split(line).map_err(|e| format!("cannot tokenize {line:?}: {e}"))?;
    let prog = words.first().ok_or_else(|| format!("empty command line {line:?}"))?;
    let base = prog.rsplit('/').next().unwrap_or(prog);
    if base != "gost" && base != "gost3" {
        return Err(format!("{line:?} does not start with gost (found {prog:?})"));
    }
    portway_core::config::cmdline::parse_args(words.into_iter().skip(1)).map_err(|e| format!("{line:?}: {e}"))
}

#[test]
fn go_flag_forms_and_program_names_are_understood() {
    let a = parse_gost_line("gost -L a -L=b --L c --L=d -F e -F='f g' -D -O yaml -C x.yaml -api :8000").expect("parses");
    assert_eq!(a.services, ["a", "b", "c", "d"]);
    assert_eq!(a.nodes, ["e", "f g"]);
    assert!(parse_gost_line("/usr/local/bin/gost -L a").is_ok());
    assert!(parse_gost_line("./gost -L a").is_ok());
    assert!(parse_gost_line("gost3 -L a").is_ok());
    let e = parse_gost_line("gost -L 'unclosed").expect_err("broken quoting is refused");
    assert!(e.contains("cannot tokenize"), "{e}");
    let e = parse_gost_line("gost -X 1").expect_err("unknown flag is refused");
    assert!(e.contains("-X"), "{e}");
    let e = parse_gost_line("gost -L").expect_err("missing value is refused");
    assert!(e.contains("needs an argument: -L"), "{e}");
    assert!(parse_gost_line("socat -L a").is_err());
}
