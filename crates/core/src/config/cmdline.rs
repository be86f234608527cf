//! GOST's command line as words: `-L`/`-F`/`-C`/`-O`/`-D` with Go's `flag` syntax
//! (`-L x`, `-L=x`, `--L x`, `--L=x`), plus Portway's `--profile`. Shared by the
//! `portway` binary (its argv), the app's import of a pasted `gost …` line, and the
//! corpus tests.

#[derive(Debug, Default, PartialEq)]
pub struct GostArgs {
    pub services: Vec<String>,
    pub nodes: Vec<String>,
    pub configs: Vec<String>,
    pub output: Option<String>,
    pub debug: u8,
    pub version: bool,
    pub help: bool,
    pub profile: Option<String>,
    /// GOST flags Portway accepts but does not act on (`-api`, `-metrics` …).
    pub ignored: Vec<String>,
}

pub fn parse_args<I: IntoIterator<Item = String>>(argv: I) -> Result<GostArgs, String> {
    let mut a = GostArgs::default();
    let mut it = argv.into_iter().peekable();
    while let Some(arg) = it.next() {
        if arg == "--" {
            return Err("a `--` separator (GOST's multi-process mode) is not supported; run one portway per command line".into());
        }
        let Some(stripped) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            return Err(format!("unexpected argument {arg:?} (flags start with '-'; quote URLs that contain '&' or '?')"));
        };
        if stripped.is_empty() {
            return Err(format!("unexpected argument {arg:?}"));
        }
        let (name, inline) = match stripped.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (stripped, None),
        };
        let mut value = |flag: &str| -> Result<String, String> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            it.next().ok_or_else(|| format!("flag needs an argument: -{flag}"))
        };
        match name {
            "L" => a.services.push(value("L")?),
            "F" => a.nodes.push(value("F")?),
            "C" => a.configs.push(value("C")?),
            "O" => {
                let v = value("O")?;
                if v != "yaml" && v != "json" {
                    return Err(format!("-O {v:?}: expected yaml or json"));
                }
                a.output = Some(v);
            }
            "profile" | "P" => a.profile = Some(value("profile")?),
            "D" => a.debug = a.debug.max(bool_flag(inline.as_deref(), "D")? as u8),
            "DD" => a.debug = if bool_flag(inline.as_deref(), "DD")? { 2 } else { a.debug },
            "V" | "version" => a.version = bool_flag(inline.as_deref(), "V")?,
            "h" | "help" => a.help = true,
            "api" | "metrics" | "R" => {
                let v = value(name)?;
                a.ignored.push(format!("-{name} {v}"));
            }
            other => return Err(format!("flag provided but not defined: -{other}")),
        }
    }
    if a.profile.is_some() && (!a.services.is_empty() || !a.configs.is_empty() || !a.nodes.is_empty()) {
        return Err("--profile runs a stored profile and cannot be combined with -L, -F or -C".into());
    }
    Ok(a)
}

fn bool_flag(v: Option<&str>, name: &str) -> Result<bool, String> {
    match v {
        None => Ok(true),
        Some(s) => super::parse_go_bool(s).ok_or_else(|| format!("invalid boolean value {s:?} for -{name}")),
    }
}

/// A whole command line as a shell would split it, the program name (`gost`,
/// `./gost`, `portway` …) first when present.
pub fn parse_line(line: &str) -> Result<GostArgs, String> {
    let words = shell_words::split(line).map_err(|e| format!("cannot tokenize {line:?}: {e}"))?;
    let mut it = words.into_iter().peekable();
    if it.peek().is_some_and(|w| !w.starts_with('-')) {
        it.next();
    }
    parse_args(it)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<GostArgs, String> {
        parse_args(v.iter().map(|s| s.to_string()))
    }

    #[test]
    fn go_flag_forms() {
        let a = p(&["-L", "tcp://:1/a:2", "-L=udp://:3/b:4", "--F", "socks5://h:1", "--F=relay://h:2", "-D", "-O", "yaml"]).unwrap();
        assert_eq!(a.services, vec!["tcp://:1/a:2", "udp://:3/b:4"]);
        assert_eq!(a.nodes, vec!["socks5://h:1", "relay://h:2"]);
        assert_eq!(a.debug, 1);
        assert_eq!(a.output.as_deref(), Some("yaml"));
        assert_eq!(p(&["-DD"]).unwrap().debug, 2);
        assert!(p(&["-V"]).unwrap().version);
    }

    #[test]
    fn bad_flags_are_named() {
        assert!(p(&["-X"]).unwrap_err().contains("-X"));
        assert!(p(&["-L"]).unwrap_err().contains("needs an argument: -L"));
        assert!(p(&["-O", "toml"]).unwrap_err().contains("toml"));
        assert!(p(&["tcp://:1"]).unwrap_err().contains("unexpected argument"));
        assert!(p(&["--profile", "x", "-L", "tcp://:1/a:2"]).unwrap_err().contains("cannot be combined"));
    }
}

#[cfg(test)]
mod line_tests {
    use super::*;

    #[test]
    fn lines_with_and_without_a_program_name() {
        let a = parse_line("gost -L 'tcp://:1/a:2?x=1&y=2' -F=socks5://h:1").expect("parses");
        assert_eq!(a.services, vec!["tcp://:1/a:2?x=1&y=2"]);
        assert_eq!(a.nodes, vec!["socks5://h:1"]);
        assert_eq!(parse_line("-L tcp://:1/a:2").expect("parses").services.len(), 1);
        assert!(parse_line("gost -L 'unclosed").expect_err("quoting").contains("cannot tokenize"));
    }
}
