#!/usr/bin/env bash
# Builds Portway and runs it. With no arguments it runs the active profile (on
# first run, the built-in default profile: 127.0.0.1:8080 -> 127.0.0.1:8000) and
# prints what it listens on. Any arguments are passed on: scripts/run.sh -L tcp://:8080/127.0.0.1:80
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked -p portway-cli
exec target/release/portway "$@"
