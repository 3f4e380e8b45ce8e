//! Bench-only knobs, compiled in only with the Cargo feature `bench-storage-delay` (scripts/bench.sh
//! builds that variant apart into build-bench/; normal builds contain none of it):
//! `storage()` makes every D1 and KV call `STORAGE_DELAY_MS` slower, to show what a request still
//! reads from storage when storage is far away, and `/__bench/memory` reports the Worker's own wasm
//! memory for the soak and how many D1 and KV calls the isolate has made (the delay rows count
//! them per request); `BENCH_NO_EVENTS=1` turns the event sinks off (the baseline of the bench's
//! recording-cost rows). Without the feature all are empty and vanish in the optimized build.

#[cfg(feature = "bench-storage-delay")]
mod knobs {
    use std::cell::Cell;
    use std::time::Duration;

    use worker::{Env, Response};

    /// The variable that sets the delay (milliseconds per storage call; unset or 0: none).
    const DELAY_VAR: &str = "STORAGE_DELAY_MS";
    /// The variable that turns the event sinks off (`1`).
    const NO_EVENTS_VAR: &str = "BENCH_NO_EVENTS";
    /// The route that reports the isolate's wasm memory.
    const MEMORY_ROUTE: &str = "/__bench/memory";
    /// Bytes in a wasm page (`memory.size` counts pages).
    const WASM_PAGE_BYTES: usize = 64 * 1024;

    thread_local! {
        // A Worker isolate runs one thread: the delay read from the environment at the last request.
        static DELAY_MS: Cell<u64> = const { Cell::new(0) };
        // D1 and KV calls made by this isolate so far (background revalidation included).
        static CALLS: Cell<u64> = const { Cell::new(0) };
    }

    /// Reads `STORAGE_DELAY_MS` for the storage calls of this request.
    pub fn configure(env: &Env) {
        let ms = env
            .var(DELAY_VAR)
            .ok()
            .and_then(|v| v.to_string().trim().parse().ok())
            .unwrap_or(0);
        DELAY_MS.with(|d| d.set(ms));
    }

    /// Whether `BENCH_NO_EVENTS` turns every event sink off (the bench's baseline for what
    /// recording events costs a call).
    pub fn events_off(env: &Env) -> bool {
        env.var(NO_EVENTS_VAR).is_ok_and(|v| v.to_string().trim() == "1")
    }

    /// Waits `STORAGE_DELAY_MS`: called at every D1 and KV entry point.
    pub async fn storage() {
        CALLS.with(|c| c.set(c.get() + 1));
        let ms = DELAY_MS.with(Cell::get);
        if ms > 0 {
            worker::Delay::from(Duration::from_millis(ms)).await;
        }
    }

    /// `GET /__bench/memory`: the size of this isolate's wasm linear memory (it only ever grows)
    /// and the storage calls it has made.
    pub fn route(path: &str) -> Option<worker::Result<Response>> {
        (path == MEMORY_ROUTE).then(|| {
            let bytes = core::arch::wasm32::memory_size::<0>() * WASM_PAGE_BYTES;
            let calls = CALLS.with(Cell::get);
            Response::from_json(&serde_json::json!({ "wasm_memory_bytes": bytes, "storage_calls": calls }))
        })
    }
}

#[cfg(feature = "bench-storage-delay")]
pub use knobs::{configure, events_off, route, storage};

#[cfg(not(feature = "bench-storage-delay"))]
mod knobs {
    /// No delay in normal builds.
    #[inline(always)]
    pub fn configure(_env: &worker::Env) {}

    /// No delay in normal builds.
    #[inline(always)]
    pub async fn storage() {}

    /// Events are always recorded in normal builds.
    #[inline(always)]
    pub fn events_off(_env: &worker::Env) -> bool {
        false
    }

    /// No bench route in normal builds.
    #[inline(always)]
    pub fn route(_path: &str) -> Option<worker::Result<worker::Response>> {
        None
    }
}

#[cfg(not(feature = "bench-storage-delay"))]
pub use knobs::{configure, events_off, route, storage};
