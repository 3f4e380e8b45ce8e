#!/usr/bin/env bash
# setup.sh — install everything the build and the tests need, idempotently:
# the wasm32 Rust target, worker-build, wasm-bindgen-cli (version from Cargo.lock),
# npm devDependencies (wrangler, miniflare, Node 22, binaryen, esbuild, MCP SDK) and
# a Python venv with the MCP SDK, Schemathesis in a venv of its own (the admin API's contract
# test), and the real LLM gateways the guardrail tests drive (LiteLLM's
# proxy, Portkey's gateway). A second run skips every step that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

WORKER_BUILD_VERSION=0.8.7
PY_MCP_VERSION=2.3.0
# The official OTLP protocol classes, for the tests' OTLP receiver (tests/otlp_receiver.py).
PY_OTLP_PROTO_VERSION=1.45.2
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
[[ -n "$WASM_BINDGEN_VERSION" ]] || { echo "setup: no wasm-bindgen in Cargo.lock" >&2; exit 1; }

if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  echo "setup: rust target wasm32-unknown-unknown: present"
else
  echo "setup: rust target wasm32-unknown-unknown: installing"
  rustup target add wasm32-unknown-unknown
fi

installed=$(cargo install --list)
cargo_tool() { # crate version — install unless `cargo install --list` has that exact version
  if grep -qx "$1 v$2:" <<<"$installed"; then
    echo "setup: $1 $2: present"
  else
    echo "setup: $1 $2: installing (a few minutes)"
    # No --locked: wasm-bindgen-cli's lock file pins a webpki-roots release the index no longer serves.
    cargo install "$1" --version "$2" --force
  fi
}
cargo_tool worker-build "$WORKER_BUILD_VERSION"
cargo_tool wasm-bindgen-cli "$WASM_BINDGEN_VERSION"

# npm: `npm ci` installs exactly the committed lock file and never rewrites it (the lock holds
# every platform's optional packages, so a fresh clone stays clean; scripts/test.sh checks).
# Skipped when node_modules was installed from this exact package.json + lock file. After adding
# a devDependency (exact version), commit the lock `npm install` wrote with it.
stamp=node_modules/.setup-stamp
npm_hash() { cat package.json package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1; }
if [[ -x node_modules/.bin/node && -f "$stamp" && "$(cat "$stamp")" == "$(npm_hash)" ]]; then
  echo "setup: npm packages: up to date"
else
  echo "setup: npm packages: installing (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  npm_hash >"$stamp"
fi

py_versions() { .venv/bin/python -c 'import importlib.metadata as m; print(m.version("mcp"), m.version("opentelemetry-proto"))' 2>/dev/null; }
if [[ "$(py_versions)" == "$PY_MCP_VERSION $PY_OTLP_PROTO_VERSION" ]]; then
  echo "setup: python venv .venv (mcp $PY_MCP_VERSION, opentelemetry-proto $PY_OTLP_PROTO_VERSION): present"
else
  echo "setup: python venv .venv (mcp $PY_MCP_VERSION, opentelemetry-proto $PY_OTLP_PROTO_VERSION): installing"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "mcp==$PY_MCP_VERSION" "opentelemetry-proto==$PY_OTLP_PROTO_VERSION"
fi

# Real LLM gateways for tests/guardrail-api.test.mjs, kept apart from the project's own
# dependencies: LiteLLM's proxy in its own venv, Portkey's open-source gateway in
# tests/llm-gateways (its own package.json and lock file).
LITELLM_VERSION=1.106.12
if [[ "$(.venv-litellm/bin/python -c 'import importlib.metadata as m; print(m.version("litellm"))' 2>/dev/null)" == "$LITELLM_VERSION" ]]; then
  echo "setup: python venv .venv-litellm (litellm[proxy] $LITELLM_VERSION): present"
else
  echo "setup: python venv .venv-litellm (litellm[proxy] $LITELLM_VERSION): installing (a few minutes)"
  python3 -m venv .venv-litellm
  .venv-litellm/bin/pip install --quiet --disable-pip-version-check "litellm[proxy]==$LITELLM_VERSION"
fi
gw_stamp=tests/llm-gateways/node_modules/.setup-stamp
gw_hash() { cat tests/llm-gateways/package.json tests/llm-gateways/package-lock.json | sha256sum | cut -d' ' -f1; }
if [[ -f "$gw_stamp" && "$(cat "$gw_stamp")" == "$(gw_hash)" ]]; then
  echo "setup: npm tests/llm-gateways (@portkey-ai/gateway): up to date"
else
  echo "setup: npm tests/llm-gateways (@portkey-ai/gateway): installing"
  (cd tests/llm-gateways && PATH="$PWD/../../node_modules/.bin:$PATH" npm ci --no-audit --no-fund --loglevel=error)
  gw_hash >"$gw_stamp"
fi

# Debian's Chromium for the web console's browser tests (tests/console.test.mjs drives it with
# playwright-core, an npm devDependency; Playwright's own browser downloads are not used).
if [[ -x /usr/bin/chromium ]]; then
  echo "setup: chromium: present"
else
  echo "setup: chromium: installing"
  if ! apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    apt-get update
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
fi

# Schemathesis (tests/openapi.test.mjs fuzzes the admin API against its OpenAPI document) in a
# venv of its own: its dependencies (hypothesis, jsonschema, …) stay apart from the project's.
SCHEMATHESIS_VERSION=4.32.5
if [[ "$(.venv-schemathesis/bin/python -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null)" == "$SCHEMATHESIS_VERSION" ]]; then
  echo "setup: python venv .venv-schemathesis (schemathesis $SCHEMATHESIS_VERSION): present"
else
  echo "setup: python venv .venv-schemathesis (schemathesis $SCHEMATHESIS_VERSION): installing"
  python3 -m venv .venv-schemathesis
  .venv-schemathesis/bin/pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
