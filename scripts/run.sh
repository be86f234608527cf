#!/usr/bin/env bash
# Sets up, builds and runs Portway. With a display ($DISPLAY or $WAYLAND_DISPLAY)
# it opens the desktop app; without one it runs the headless engine, `portway`, on
# the active profile (first run: the built-in default, 127.0.0.1:8080 ->
# 127.0.0.1:8000) and prints what it listens on. Arguments go to `portway`:
#   scripts/run.sh -L tcp://:8080/127.0.0.1:80      (always headless)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
if [ $# -eq 0 ] && { [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; }; then
  npm run --silent build
  cargo build --release --locked -p portway-app --features custom-protocol
  exec target/release/portway-app
fi
cargo build --release --locked -p portway-cli
exec target/release/portway "$@"
