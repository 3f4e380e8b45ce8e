#!/usr/bin/env bash
# bench.sh — one run of the gateway bench (figures printed, nothing asserted on timing; see
# docs/benchmarks.md for what each row means). It installs what is missing (setup.sh; skip with
# BENCH_SETUP=0), builds the release Worker into build/ and the bench-only variant (Cargo feature
# bench-storage-delay: STORAGE_DELAY_MS and GET /__bench/memory) into build-bench/, times the
# native authorization bench (examples/authz_bench.rs; skip with BENCH_AUTHZ=0, skipped in
# BENCH_QUICK=1), then runs bench/bench.mjs on Node 22. Knobs (env), full / quick defaults:
#   BENCH_QUICK=1            smaller everything (a few minutes)
#   BENCH_ROUNDS 3/2         rounds; every row once per round, in a fresh random order
#   BENCH_WARMUP 20/5        untimed calls before each block
#   BENCH_N 200/50           sequential calls per block (p50, p99)
#   BENCH_TOTAL 400/100      calls per block at BENCH_CONCURRENCY (8) in flight (req/s)
#   BENCH_PHASE_S 10/3       time bound of each of the two phases of a block
#   BENCH_STORAGE_DELAY_MS 30, BENCH_DELAY_N 60/20, BENCH_DELAY_TOTAL 120/40  the storage-delay rows
#   BENCH_LIST_SIZES 1,100,1000 / 1,10,100   registered servers for tools/list on /mcp
#   BENCH_REGISTER_CONCURRENCY 8             admin registrations in flight while filling them
#   BENCH_SOAK_SESSIONS 200/50, BENCH_SOAK_S 60/10   the soak
#   BENCH_COLD 5/2           fresh gateways for the cold-start figure
#   BENCH_TIMEOUT_S 2400/900 overall limit (every started process is stopped on it)
#   BENCH_REQUEST_TIMEOUT_S 60  bound on each request (a timeout counts as an error)
# Extra arguments go to worker-build for both builds.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"

[[ "${BENCH_SETUP:-1}" == 0 ]] || bash scripts/setup.sh
bash scripts/build.sh "$@"
bash scripts/build.sh --out-dir build-bench --features bench-storage-delay "$@"

if [[ "${BENCH_AUTHZ:-1}" != 0 && "${BENCH_QUICK:-0}" != 1 ]]; then
  # Authorization decisions, native release build of the example (compile timed separately).
  t0=$(date +%s%N)
  cargo build --release --quiet --example authz_bench
  t1=$(date +%s%N)
  cargo run --release --quiet --example authz_bench
  echo "authz_bench: compile (cargo build --release --example authz_bench, native) took $(( (t1 - t0) / 1000000 )) ms"
  echo
fi

node bench/bench.mjs

if [[ "${BENCH_GUARD:-1}" != 0 ]]; then
  # Policies: the default guardrail set on a 4 KB argument and a 16 KB result (bench/guard.mjs).
  node bench/guard.mjs
fi
