#!/usr/bin/env bash
# dev.sh — set up and run the gateway locally, with a seeded demo:
#   1. installs what is missing (setup.sh) and builds the Worker (build.sh),
#   2. applies the D1 migrations to the local database (.wrangler/state),
#   3. starts a demo upstream MCP server on 127.0.0.1:8788 (tests/upstreams/py_server.py),
#   4. serves the gateway with `wrangler dev` on http://127.0.0.1:8787 (local D1/KV/Durable Objects),
#   5. registers the demo server and issues an API key, printed once, with how to connect.
# Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
GATEWAY_PORT=${GATEWAY_PORT:-8787}
DEMO_PORT=${DEMO_PORT:-8788}
GW="http://127.0.0.1:$GATEWAY_PORT"

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

pids=()
cleanup() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

.venv/bin/python tests/upstreams/py_server.py --host 127.0.0.1 --port "$DEMO_PORT" >.wrangler/demo-upstream.log 2>&1 &
pids+=($!)
WRANGLER_SEND_METRICS=false wrangler dev --ip 127.0.0.1 --port "$GATEWAY_PORT" --local >.wrangler/dev.log 2>&1 &
pids+=($!)

wait_for() { # url, what
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 1
  done
  echo "dev: $2 did not start; see .wrangler/*.log" >&2
  exit 1
}
wait_for "$GW/healthz" "the gateway"
for _ in $(seq 1 60); do grep -q READY .wrangler/demo-upstream.log && break; sleep 0.5; done

admin() { curl -sS -X "$1" "$GW$2" -H "authorization: Bearer $ADMIN_TOKEN" -H 'content-type: application/json' ${3:+-d "$3"}; }
if ! admin GET /admin/v1/servers/demo | grep -q '"slug":"demo"'; then
  admin POST /admin/v1/servers "{\"slug\":\"demo\",\"name\":\"Demo server\",\"url\":\"http://127.0.0.1:$DEMO_PORT/mcp\",\"owner\":\"platform\"}" >/dev/null
fi
KEY=$(admin POST /admin/v1/api-keys '{"name":"dev.sh demo key"}' | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
[[ -n "$KEY" ]] || { echo "dev: could not issue an API key; see .wrangler/dev.log" >&2; exit 1; }

cat <<MSG

MCP Gateway is running at $GW  (Ctrl-C stops it and the demo upstream)

  MCP endpoint : $GW/mcp           (all servers; $GW/mcp/demo for the demo server alone)
  API key      : $KEY   (shown once; stored only as a hash)
  Admin API    : $GW/admin/v1      (Authorization: Bearer $ADMIN_TOKEN, from .dev.vars)

Point an MCP client at it, e.g. a client config:
  { "mcpServers": { "gateway": { "type": "http", "url": "$GW/mcp",
      "headers": { "Authorization": "Bearer $KEY" } } } }
or try it with the Python client used by the tests:
  .venv/bin/python tests/clients/py_client.py --url $GW/mcp/demo --token $KEY

MSG
wait
