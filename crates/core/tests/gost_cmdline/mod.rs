//! Splitting a GOST command line (as published in docs, issues and scripts) into its
//! `-L` and `-F` values, the way `gost` itself reads its flags: shell quoting first
//! (the `shell-words` crate), then Go's `flag` syntax (`-L x`, `-L=x`, `--L x`,
//! `--L=x`). Shared by the corpus and seed tests.
#![allow(dead_code)]

/// The `-L` and `-F` values of one command line, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GostArgs {
    pub services: Vec<String>,
    pub nodes: Vec<String>,
}

/// Flags GOST defines that take a value and that these tests do not act on.
const VALUE_FLAGS_IGNORED: &[&str] = &["C", "O", "api", "metrics", "R"];
/// GOST's boolean flags (`-D`, `-DD`, `-V`), also ignored.
const BOOL_FLAGS: &[&str] = &["D", "DD", "V"];

/// Tokenizes `line` and collects its `-L`/`-F` values. The first word must be the
/// program (`gost`, `gost3`, `./gost`, `/usr/local/bin/gost` …). Errors say what is
/// wrong: broken quoting, a missing flag value, a flag GOST does not define.
pub fn parse_gost_line(line: &str) -> Result<GostArgs, String> {
    let words = shell_words::split(line).map_err(|e| format!("cannot tokenize {line:?}: {e}"))?;
    let mut it = words.into_iter();
    let prog = it.next().ok_or_else(|| format!("empty command line {line:?}"))?;
    let base = prog.rsplit('/').next().unwrap_or(&prog);
    if base != "gost" && base != "gost3" {
        return Err(format!("{line:?} does not start with gost (found {prog:?})"));
    }
    let mut out = GostArgs::default();
    while let Some(arg) = it.next() {
        let Some(stripped) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            return Err(format!("{line:?}: unexpected argument {arg:?} (not a flag)"));
        };
        let (name, inline) = match stripped.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (stripped.to_string(), None),
        };
        if BOOL_FLAGS.contains(&name.as_str()) {
            continue;
        }
        let takes_value = name == "L" || name == "F" || VALUE_FLAGS_IGNORED.contains(&name.as_str());
        if !takes_value {
            return Err(format!("{line:?}: flag provided but not defined: -{name}"));
        }
        let value = match inline {
            Some(v) => v,
            None => it.next().ok_or_else(|| format!("{line:?}: flag needs an argument: -{name}"))?,
        };
        match name.as_str() {
            "L" => out.services.push(value),
            "F" => out.nodes.push(value),
            _ => {}
        }
    }
    Ok(out)
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
