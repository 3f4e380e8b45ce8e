//! Shared runner and generators: the case count comes from `PROPTEST_CASES`, every property
//! reports how many cases it ran and how long they took.
use std::cell::Cell;
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value};

/// Cases per property when `PROPTEST_CASES` is unset: enough to catch shallow bugs in a
/// plain `cargo test` without slowing it down.
pub const DEFAULT_CASES: u32 = 128;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

/// Runs `test` on `cases()` values of `strategy`; a failure panics with the shrunk input.
pub fn check<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let config = Config {
        cases: cases(),
        // Failures are reported with their minimal input; nothing is written into the tree.
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let ran = Cell::new(0u64);
    let started = Instant::now();
    let result = runner.run(&strategy, |v| {
        ran.set(ran.get() + 1);
        test(v)
    });
    eprintln!("proptest {name}: {} cases in {:.2?}", ran.get(), started.elapsed());
    if let Err(e) = result {
        panic!("property {name} failed: {e}");
    }
}

/// Any JSON value, nested a few levels, with keys drawn partly from `keys` so that generated
/// objects often look like the messages under test.
pub fn json_value(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(keys), inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// An object key: usually one of `keys`, sometimes anything.
pub fn key(keys: &'static [&'static str]) -> BoxedStrategy<String> {
    if keys.is_empty() {
        return ".{0,8}".boxed();
    }
    prop_oneof![
        3 => prop::sample::select(keys).prop_map(str::to_string),
        1 => ".{0,8}",
    ]
    .boxed()
}

/// A JSON object from generated members.
pub fn object(members: Vec<(String, Value)>) -> Value {
    Value::Object(members.into_iter().collect::<Map<String, Value>>())
}
