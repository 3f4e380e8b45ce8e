#!/usr/bin/env bash
# test.sh — the whole check: install what is missing (setup.sh), native Rust unit tests,
# release Worker build (build.sh) and the test-only store-conformance variant (into
# build-conformance/, see docs/storage.md), then the integration tests under Miniflare on Node 22.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"

step() { local t=$SECONDS; echo "==> $*"; "$@"; echo "==> $* ok ($((SECONDS - t)) s)"; }
step bash scripts/setup.sh
step cargo test
step bash scripts/build.sh
step bash scripts/build.sh --out-dir build-conformance --features store-conformance
# Node 22 takes globs, not directories ("tests/" fails with MODULE_NOT_FOUND).
step node --test --test-concurrency=1 'tests/**/*.test.mjs'
