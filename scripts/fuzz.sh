#!/usr/bin/env bash
# fuzz.sh — the long run of the property-based parser tests (tests/proptests): JSON-RPC
# envelopes, SSE framing, streamable-HTTP request checks, name (un)namespacing and the policy
# engine (guardrails, policy parser, tool-poisoning scan) and YAML configuration documents, each property
# with PROPTEST_CASES cases (default 100000; `cargo test` runs 128), natively in release mode,
# one property at a time. Prints the cases and time of every property, then per parser.
# Any property failure prints its minimal failing input and makes the script exit non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
export PROPTEST_CASES="${PROPTEST_CASES:-100000}"

cargo test --release --test proptests --no-run 2>&1 | tail -1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
for parser in jsonrpc sse transport names rules yaml; do
  start=$SECONDS
  if ! cargo test --release --test proptests "${parser}::" -- --nocapture --test-threads=1 >"$log" 2>&1; then
    status=1
    grep -A30 'failed:' "$log" || cat "$log"
  fi
  # The test harness prints "test name ... " before a test's own output, so match anywhere.
  grep -o 'proptest [^ ]*: [0-9]* cases in .*' "$log" >"$log.lines" || true
  cat "$log.lines"
  awk -v p="$parser" -v t=$((SECONDS - start)) '
    { props++; cases += $3 }
    END { printf "== %s: %d properties, %d cases, %d s\n", p, props, cases, t }' "$log.lines"
  rm -f "$log.lines"
done
exit $status
