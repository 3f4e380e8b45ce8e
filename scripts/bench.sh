#!/usr/bin/env bash
# bench.sh — benchmark the gateway: install what is missing (setup.sh), build the release
# Worker (build.sh), then run bench/bench.mjs on Node 22, which serves build/ in
# Miniflare/workerd next to the test upstreams (all on 127.0.0.1) and prints tools/call
# latency p50/p99 and req/s direct vs. through the gateway (both eras), the gateway/direct
# ratios, and the raw and gzipped size of build/index_bg.wasm. It also measures the aggregated
# endpoint /mcp: tools/call py__echo through /mcp vs direct and /mcp/py, and tools/list on /mcp
# with 1, 5 and 20 registered servers (the same Python upstream under several slugs), warm
# (unchanged catalog) and cold (first list after a catalog change). It stops every process it
# started. Knobs (env): BENCH_N (300 sequential requests for latency), BENCH_TOTAL (600
# requests for throughput), BENCH_CONCURRENCY (8), BENCH_WARMUP (30), BENCH_COLD (30 cold
# tools/list samples and bursts per size), BENCH_TIMEOUT_S (300).
# It also measures the cost of authentication per request (tools/list on /mcp, py only): a
# default-agent API key, a user's API key (identity + grants), a reused JWT from a real OpenID
# provider (verified-token cache hit) and the first use of BENCH_JWT_FRESH (20) fresh JWTs.
# And the added latency of the upstream-credential vault: tools/call echo on /mcp/{slug} (modern)
# to the same Python upstream registered twice (two fresh instances) — without credentials, and
# with sealed `headers` credentials (its instance started with --require-header X-API-Key=…; the
# gateway gets a random VAULT_KEYS) — latency interleaved, req/s each, and the difference.
# Before that, natively (not wasm), the authorization decision time with 10,000 grants over
# 1,000 servers: `cargo run --release --example authz_bench` (examples/authz_bench.rs; knobs
# AUTHZ_GRANTS, AUTHZ_SERVERS, AUTHZ_RUNS). Its compile is timed and printed: ~1 min on 2 cores
# with no native release build yet, ~15 s after a change in src/, well under 1 s when up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"

bash scripts/setup.sh
bash scripts/build.sh

# Authorization decisions, native release build of the example (compile timed separately).
t0=$(date +%s%N)
cargo build --release --quiet --example authz_bench
t1=$(date +%s%N)
cargo run --release --quiet --example authz_bench
echo "authz_bench: compile (cargo build --release --example authz_bench, native) took $(( (t1 - t0) / 1000000 )) ms"
echo

node bench/bench.mjs "$@"
