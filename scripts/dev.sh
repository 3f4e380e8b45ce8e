#!/usr/bin/env bash
# dev.sh — set up and run the gateway locally, with a seeded demo:
#   1. installs what is missing (setup.sh) and builds the Worker (build.sh; skipped when build/ is
#      up to date, and `wrangler dev`'s own [build] step then finds nothing to do either),
#   2. applies the D1 migrations to the local database (.wrangler/state, kept across runs),
#   3. starts a demo upstream MCP server on 127.0.0.1:$DEMO_PORT (tests/upstreams/py_server.py),
#   4. serves the gateway with `wrangler dev` on http://127.0.0.1:$GATEWAY_PORT (local D1, KV,
#      Durable Objects, queues),
#   5. registers the demo server (once) and prints an API key for it: the one from the last run
#      while it still authenticates (kept in .wrangler/dev-demo-key), else a new one,
#   6. prints where the console, the MCP endpoint, the admin API and this run's logs are.
# Ctrl-C stops everything it started.
#
# Environment:
#   GATEWAY_PORT  port of the gateway (default 8787); the console and the admin API are on it
#                 too. Browsers on a loopback origin may call /mcp whatever the port (locally,
#                 without PUBLIC_ORIGIN, every loopback origin is allowed).
#   DEMO_PORT     port of the demo upstream MCP server (default 8788).
# Logs: .wrangler/logs/dev-YYYYmmdd-HHMMSS.log (wrangler: the gateway's output) and
#       .wrangler/logs/demo-YYYYmmdd-HHMMSS.log (the demo upstream), one pair per run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
GATEWAY_PORT=${GATEWAY_PORT:-8787}
DEMO_PORT=${DEMO_PORT:-8788}
GW="http://127.0.0.1:$GATEWAY_PORT"
KEY_FILE=.wrangler/dev-demo-key
LOG_DIR=.wrangler/logs
# Seconds to wait for the gateway (the first start compiles nothing, but workerd and the local
# stores take a while on a loaded machine) and for the demo upstream.
GATEWAY_START_S=300
DEMO_START_S=60

bash scripts/setup.sh
bash scripts/build.sh

# The bootstrap admin token for local use (a Worker secret in production).
if [[ ! -f .dev.vars ]] || ! grep -q '^ADMIN_TOKEN=' .dev.vars; then
  echo "ADMIN_TOKEN=dev-$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')" >>.dev.vars
fi
if ! grep -q '^GATEWAY_SECRET=' .dev.vars; then
  echo "GATEWAY_SECRET=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_')" >>.dev.vars
fi
if ! grep -q '^VAULT_KEYS=' .dev.vars; then
  # The master key that seals upstream credentials: key id "dev1", 32 random bytes.
  echo "VAULT_KEYS=dev1:$(head -c 32 /dev/urandom | base64 -w0)" >>.dev.vars
fi
if ! grep -q '^ALLOW_PRIVATE_UPSTREAMS=' .dev.vars; then
  # The demo upstream runs on loopback; a deployment keeps private targets refused.
  echo "ALLOW_PRIVATE_UPSTREAMS=true" >>.dev.vars
fi
ADMIN_TOKEN=$(sed -n 's/^ADMIN_TOKEN=//p' .dev.vars | head -1)

wrangler d1 migrations apply DB --local >/dev/null
echo "dev: D1 migrations applied (local)"

mkdir -p "$LOG_DIR"
run_id=$(date +%Y%m%d-%H%M%S)
GW_LOG="$LOG_DIR/dev-$run_id.log"
DEMO_LOG="$LOG_DIR/demo-$run_id.log"

pids=()
cleanup() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

.venv/bin/python tests/upstreams/py_server.py --host 127.0.0.1 --port "$DEMO_PORT" >"$DEMO_LOG" 2>&1 &
pids+=($!)
# build/ is current (above), so wrangler's [build] command (scripts/build.sh) returns at once.
WRANGLER_SEND_METRICS=false wrangler dev --ip 127.0.0.1 --port "$GATEWAY_PORT" --local >"$GW_LOG" 2>&1 &
pids+=($!)

wait_for() { # url, what, seconds
  for _ in $(seq 1 "$3"); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 1
  done
  echo "dev: $2 did not start; see $GW_LOG and $DEMO_LOG" >&2
  exit 1
}
wait_for "$GW/healthz" "the gateway" "$GATEWAY_START_S"
for _ in $(seq 1 $((DEMO_START_S * 2))); do grep -q READY "$DEMO_LOG" && break; sleep 0.5; done

admin() { curl -sS -X "$1" "$GW$2" -H "authorization: Bearer $ADMIN_TOKEN" -H 'content-type: application/json' ${3:+-d "$3"}; }
if ! admin GET /admin/v1/servers/demo | grep -q '"slug":"demo"'; then
  admin POST /admin/v1/servers "{\"slug\":\"demo\",\"name\":\"Demo server\",\"url\":\"http://127.0.0.1:$DEMO_PORT/mcp\",\"owner\":\"platform\"}" >/dev/null
fi

# The demo key of the last run, if the gateway still takes it: a stateless (2026-07-28)
# tools/list on /mcp, answered from the catalog without reaching an upstream — 200, not 401.
MODERN_META='"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"dev.sh","version":"1"}}'
key_works() {
  [[ -n "$1" ]] || return 1
  local code
  code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$GW/mcp" \
    -H "authorization: Bearer $1" -H 'content-type: application/json' \
    -H 'accept: application/json, text/event-stream' -H 'mcp-protocol-version: 2026-07-28' \
    -H 'mcp-method: tools/list' -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\",\"params\":{$MODERN_META}}" \
    2>/dev/null || true)
  [[ "$code" == 200 ]]
}
KEY=$(cat "$KEY_FILE" 2>/dev/null || true)
if key_works "$KEY"; then
  key_note="(the demo key from an earlier run, kept in $KEY_FILE)"
else
  KEY=$(admin POST /admin/v1/api-keys '{"name":"dev.sh demo key"}' | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
  [[ -n "$KEY" ]] || { echo "dev: could not issue an API key; see $GW_LOG" >&2; exit 1; }
  (umask 077 && printf '%s\n' "$KEY" >"$KEY_FILE")
  key_note="(new; kept in $KEY_FILE for the next run, stored by the gateway only as a hash)"
fi

cat <<MSG

MCP Gateway is running at $GW  (Ctrl-C stops it and the demo upstream)

  Console      : $GW/console       (sign in with the admin token below)
  MCP endpoint : $GW/mcp           (all servers; $GW/mcp/demo for the demo server alone)
  API key      : $KEY
                 $key_note
  Admin API    : $GW/admin/v1      (Authorization: Bearer $ADMIN_TOKEN, from .dev.vars)
  Logs         : $GW_LOG (gateway), $DEMO_LOG (demo upstream)

Point an MCP client at it, e.g. a client config:
  { "mcpServers": { "gateway": { "type": "http", "url": "$GW/mcp",
      "headers": { "Authorization": "Bearer $KEY" } } } }
or try it with the Python client used by the tests:
  .venv/bin/python tests/clients/py_client.py --url $GW/mcp/demo --token $KEY

MSG
wait
