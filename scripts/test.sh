#!/usr/bin/env bash
# test.sh — the whole check: install what is missing (setup.sh; the lock files must come out of
# it unchanged), native Rust unit tests, release Worker build (build.sh), a dry-run deployment
# (deploy.sh --dry-run), the test-only store-conformance variant (into
# build-conformance/, see docs/storage.md), then the integration tests under Miniflare on Node 22.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"

step() { local t=$SECONDS; echo "==> $*"; "$@"; echo "==> $* ok ($((SECONDS - t)) s)"; }
# The committed lock files are what a fresh install uses and leaves as they are (setup.sh runs
# `npm ci`): a run that changed one means the lock no longer matches package.json.
locks=(package-lock.json tests/llm-gateways/package-lock.json)
locks_before=$(sha256sum "${locks[@]}")
step bash scripts/setup.sh
if [[ "$(sha256sum "${locks[@]}")" != "$locks_before" ]]; then
  echo "test: setup changed a package-lock.json; commit the lock that matches package.json" >&2
  git diff --stat -- "${locks[@]}" 2>/dev/null || true
  exit 1
fi
step cargo test
step bash scripts/build.sh
# The deployment's bundle and configuration are valid (`wrangler deploy --dry-run`; its [build]
# step finds build/ current and does nothing).
step bash scripts/deploy.sh --dry-run
step bash scripts/build.sh --out-dir build-conformance --features store-conformance
# Node 22 takes globs, not directories ("tests/" fails with MODULE_NOT_FOUND).
step node --test --test-concurrency=1 'tests/**/*.test.mjs'
