#!/usr/bin/env bash
# test.sh — the whole check: install what is missing (setup.sh), native Rust unit tests,
# release Worker build (build.sh), then the integration tests under Miniflare on Node 22.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"

bash scripts/setup.sh
cargo test
bash scripts/build.sh
# Node 22 takes globs, not directories ("tests/" fails with MODULE_NOT_FOUND).
node --test --test-concurrency=1 'tests/**/*.test.mjs'
