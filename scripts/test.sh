#!/usr/bin/env bash
# Installs what the tests need and runs all of them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
[ -d ../shared/corpus ] || echo "test: note: ../shared/corpus not found; the corpus test will fail" >&2
cargo test --workspace --locked 2>&1
