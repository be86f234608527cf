//! The app's own command line: `--show`, `--help`, `--version`. Read before
//! anything starts, so `portway-app --help` in a terminal prints text instead of
//! opening a window, and `portway-app --show` is the way back to a window hidden
//! in the tray (or started minimised) on a desktop whose tray is out of reach.

/// What this launch should do once it runs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Launch {
    /// Show the window even with "Start minimised" on.
    pub show: bool,
    /// Arguments that mean nothing here, reported and otherwise ignored: a
    /// launcher may add its own (WebKitWebDriver passes `--automation`).
    pub ignored: Vec<String>,
}

/// The launch asked for, or text to print and the exit code when it asked for
/// none (help, version).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Launch, (String, i32)> {
    let mut launch = Launch::default();
    for a in args {
        match a.as_str() {
            "--show" => launch.show = true,
            "-h" | "--help" => return Err((usage(), 0)),
            "-V" | "--version" => return Err((format!("portway-app {}\n", env!("CARGO_PKG_VERSION")), 0)),
            _ => launch.ignored.push(a),
        }
    }
    Ok(launch)
}

fn usage() -> String {
    format!(
        "Portway {} — desktop tunnel manager for GOST-style port forwarding\n\
         \n\
         Usage: portway-app [--show]\n\
         \n\
         \x20 --show          show the window even when \"Start minimised\" is on; with\n\
         \x20                 Portway already running, bring its window to the front\n\
         \x20 -h, --help      print this help\n\
         \x20 -V, --version   print the version\n\
         \n\
         Only one Portway runs per session: a second launch brings the first one's\n\
         window to the front and exits. Profiles and settings live in\n\
         $PORTWAY_CONFIG_DIR when set, else in the user's config directory.\n\
         The same engine without a window is the `portway` command (portway --help).\n",
        env!("CARGO_PKG_VERSION")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn show_is_read_and_other_arguments_are_kept_to_report() {
        assert_eq!(parse(args(&[])), Ok(Launch::default()));
        assert_eq!(parse(args(&["--show"])), Ok(Launch { show: true, ignored: vec![] }));
        assert_eq!(parse(args(&["--automation", "--show"])), Ok(Launch { show: true, ignored: args(&["--automation"]) }));
    }

    #[test]
    fn help_and_version_print_and_exit_zero() {
        let (text, code) = parse(args(&["--show", "--help"])).unwrap_err();
        assert_eq!(code, 0);
        assert!(text.contains("Usage: portway-app [--show]") && text.contains("--version"), "{text}");
        let (text, code) = parse(args(&["-V"])).unwrap_err();
        assert_eq!((text, code), (format!("portway-app {}\n", env!("CARGO_PKG_VERSION")), 0));
    }
}
