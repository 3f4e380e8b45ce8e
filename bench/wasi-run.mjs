// wasi-run.mjs — runs a native benchmark compiled for WASI in Node's V8, the engine workerd
// runs the Worker's wasm in: what a pure-Rust hot path costs as wasm, without a Worker build.
//   rustup target add wasm32-wasip1
//   cargo build --release --example guard_bench --target wasm32-wasip1
//   node bench/wasi-run.mjs target/wasm32-wasip1/release/examples/guard_bench.wasm
// The benchmark's environment variables (GUARD_RUNS, …) pass through. Not a test.
import { readFileSync } from "node:fs";
import { WASI } from "node:wasi";

const [file, ...args] = process.argv.slice(2);
if (!file) {
  console.error("usage: node bench/wasi-run.mjs <program.wasm> [args…]");
  process.exit(2);
}
const wasi = new WASI({ version: "preview1", args: [file, ...args], env: process.env, returnOnExit: true });
const instance = await WebAssembly.instantiate(await WebAssembly.compile(readFileSync(file)), wasi.getImportObject());
process.exitCode = wasi.start(instance);
