#!/usr/bin/env bash
# Installs what the tests need and runs all of them: the window's unit tests
# (vitest), every Rust test (engine, CLI, app commands), and the real app end to
# end under Xvfb over WebDriver (screenshots in target/e2e-screenshots/).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH" CARGO_INCREMENTAL=0
[ -d ../shared/corpus ] || echo "test: note: ../shared/corpus not found; the corpus tests will fail" >&2
scripts/test-setup.sh > target-test-setup.log 2>&1 &
setup_pid=$!
npm run --silent build
npm test
# One feature set for test and app builds, so tauri compiles once.
cargo test --workspace --locked --features portway-app/custom-protocol 2>&1
if ! wait "$setup_pid"; then cat target-test-setup.log >&2; exit 1; fi
rm -f target-test-setup.log
.venv/bin/pytest -q -p no:cacheprovider tests/e2e
