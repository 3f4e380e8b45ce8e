#!/usr/bin/env bash
# conformance.sh — the official MCP conformance suite (npm @modelcontextprotocol/conformance,
# Node 22) against each test upstream directly and through the gateway's /mcp/{slug}, for both
# requirement sets: builds the release Worker, then prints a score table per set and upstream
# (scenario by scenario, direct vs gateway) and every check that passes directly but not through
# the gateway. Knobs: see tests/conformance/table.mjs (CONFORMANCE_SETS, CONFORMANCE_UPSTREAMS,
# CONFORMANCE_SCENARIO, CONFORMANCE_REPEAT). Exits 1 if the gateway scores lower anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
[[ -n "${SKIP_BUILD:-}" ]] || bash scripts/build.sh >/dev/null
node tests/conformance/table.mjs
