#!/usr/bin/env bash
# What the tests need beyond the build: selenium + pytest (in .venv) and
# tauri-driver (cargo). Runs alongside the build in scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/pytest ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "selenium>=4.20,<5" "pytest>=8,<9"
fi
command -v tauri-driver >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/tauri-driver" ] || cargo install tauri-driver --locked --quiet
