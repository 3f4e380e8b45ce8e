#!/usr/bin/env bash
# build.sh — build the release Worker into build/ with worker-build, using locally
# installed wasm-bindgen (cargo), wasm-opt (npm binaryen) and esbuild (npm) instead of
# worker-build's GitHub downloads. Run scripts/setup.sh first.
#
# A build whose inputs have not changed since the last one into the same directory is skipped:
# build.sh records a fingerprint of them (Cargo.toml, Cargo.lock, src/**, this script, its
# arguments, RUSTFLAGS / CARGO_PROFILE_* / CARGO_BUILD_*, the versions of rustc, worker-build and
# wasm-bindgen) in <out-dir>/.build-fingerprint. That makes `wrangler dev` / `wrangler deploy`, which run this as
# their [build] command, cheap after scripts/dev.sh or scripts/test.sh has built. BUILD_FORCE=1
# builds regardless.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

out_dir=build
args=("$@")
for i in "${!args[@]}"; do
  [[ "${args[$i]}" == "--out-dir" ]] && out_dir=${args[$((i + 1))]:-build}
done
fingerprint() {
  {
    printf '%s\n' "$*"
    # The environment that changes what cargo builds (e.g. CARGO_PROFILE_RELEASE_STRIP for profiles).
    env | grep -E '^(RUSTFLAGS|CARGO_ENCODED_RUSTFLAGS|CARGO_PROFILE_|CARGO_BUILD_)' | LC_ALL=C sort || true
    rustc -V
    worker-build --version 2>/dev/null || true
    "${WASM_BINDGEN_BIN:-wasm-bindgen}" --version 2>/dev/null || true
    # Every input file, by content, in a stable order.
    find src Cargo.toml Cargo.lock scripts/build.sh -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -d' ' -f1
}
stamp="$out_dir/.build-fingerprint"
current=$(fingerprint "$@")
if [[ -z "${BUILD_FORCE:-}" && -f "$stamp" && -f "$out_dir/index.js" && -f "$out_dir/index_bg.wasm" \
  && "$(cat "$stamp")" == "$current" ]]; then
  echo "build: $out_dir/ is up to date (inputs unchanged; BUILD_FORCE=1 rebuilds)"
  exit 0
fi
rm -f "$stamp"

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
echo "$current" >"$stamp"
