#!/usr/bin/env bash
# build.sh — build the release Worker into build/ with worker-build, using locally
# installed wasm-bindgen (cargo), wasm-opt (npm binaryen) and esbuild (npm) instead of
# worker-build's GitHub downloads. Run scripts/setup.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

tool() { # print the absolute path of an executable, or fail with a hint
  local p
  p=$(command -v "$1" 2>/dev/null || true)
  [[ -n "$p" && -x "$p" ]] || { echo "build: $1 not found — run scripts/setup.sh" >&2; exit 1; }
  echo "$p"
}
WASM_BINDGEN_BIN=${WASM_BINDGEN_BIN:-$(tool wasm-bindgen)}
WASM_OPT_BIN=${WASM_OPT_BIN:-$(PATH="$root/node_modules/.bin" tool wasm-opt)}
ESBUILD_BIN=${ESBUILD_BIN:-$(PATH="$root/node_modules/.bin" tool esbuild)}
export WASM_BINDGEN_BIN WASM_OPT_BIN ESBUILD_BIN
# wasm-opt (npm binaryen) and esbuild run on Node: make Node 22 from node_modules win.
export PATH="$root/node_modules/.bin:$PATH"

worker-build --release "$@"
