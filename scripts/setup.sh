#!/usr/bin/env bash
# Installs what Portway's build and tests need on Debian 12: Debian packages (the
# WebKitGTK stack for the app, Xvfb and WebKitWebDriver for its end-to-end test),
# the npm packages of the window, selenium/pytest, and tauri-driver. Idempotent
# and quick when everything is there already.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
need=()
# One list for this script and .ci/run: scripts/debian-packages.txt.
while read -r pkg; do
  if [ -n "$pkg" ] && ! dpkg -s "$pkg" >/dev/null 2>&1; then need+=("$pkg"); fi
done < scripts/debian-packages.txt
if ((${#need[@]})); then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: Rust is not installed. Install it with rustup (https://rustup.rs), then run this again." >&2
  exit 1
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "setup: Node.js 20 (with npm) is not installed; install it, then run this again." >&2
  exit 1
fi
[ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error
