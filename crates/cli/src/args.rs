//! The `portway` binary's flags: GOST's, parsed by `portway_core::config::cmdline`.

pub use portway_core::config::cmdline::{parse_args as parse, GostArgs as Args};

pub const USAGE: &str = "\
portway — GOST-compatible port forwarding

Usage:
  portway [-L URL]... [-F URL]... [-C FILE] [-O yaml|json] [-D]
  portway                       run the active profile (the built-in default on first run)
  portway --profile NAME        run a stored profile
  portway probe [SERVICE] [--target HOST:PORT] [--json] [-L … -F … | -C FILE | --profile NAME]
                                dial through SERVICE's chain and report each hop (exit 1 if it breaks)

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

Environment: PORTWAY_WORKERS sets the number of forwarding threads (default: one per
two cores).

Signals: SIGINT/SIGTERM stop cleanly; SIGHUP reloads -C files (or the profile) and
applies only what changed, so untouched services keep their connections.
";
