//! GOST's flags with Go's `flag` syntax: `-L x`, `-L=x`, `--L x`, `--L=x`; repeatable
//! `-L`, `-F`, `-C`; booleans `-D`, `-DD`, `-V`.

#[derive(Debug, Default, PartialEq)]
pub struct Args {
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

pub const USAGE: &str = "\
portway — GOST-compatible port forwarding

Usage:
  portway [-L URL]... [-F URL]... [-C FILE] [-O yaml|json] [-D]
  portway                       run the active profile (the built-in default on first run)
  portway --profile NAME        run a stored profile

Flags (GOST v3's, with Go flag syntax: -L x, -L=x, --L x):
  -L URL      a service: [scheme://][user:pass@][host]:port[/target,...][?k=v&...]
              e.g. -L tcp://:8080/127.0.0.1:80   -L \"udp://:10053/127.0.0.1:53?keepAlive=true&ttl=5s\"
  -F URL      a hop of the forwarding chain (repeat for more hops)
  -C FILE     a GOST v3 YAML or JSON config file ('-' reads stdin; inline JSON works too)
  -O FORMAT   print the effective config as yaml or json and exit
  -D          debug logging (-DD: trace)
  -V, --version   print the version
  -h, --help  this help
  --profile NAME  run the stored profile NAME (profiles live in the config dir; PORTWAY_CONFIG_DIR overrides)

Signals: SIGINT/SIGTERM stop cleanly; SIGHUP reloads -C files (or the profile) and
applies only what changed, so untouched services keep their connections.
";

pub fn parse<I: IntoIterator<Item = String>>(argv: I) -> Result<Args, String> {
    let mut a = Args::default();
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
        Some(s) => portway_core::config::parse_go_bool(s).ok_or_else(|| format!("invalid boolean value {s:?} for -{name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<Args, String> {
        parse(v.iter().map(|s| s.to_string()))
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
