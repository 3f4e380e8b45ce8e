//! The policy engine on untrusted input (`mcp_gateway::rules`): guardrails never panic on any
//! JSON a client or upstream sends, keep its shape (same keys, same non-string values), and
//! redacting or hashing twice changes nothing more than once; the policy parser and the
//! tool-poisoning scan never panic, and every policy the parser accepts serializes to a
//! document it accepts again as the same policy.
use mcp_gateway::rules::{parse_policy, poison, CallTarget, Outcome, PolicySet};
use mcp_gateway::store::records::Identity;
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::support::{check, json_value};

/// Pieces that detectors find (and near misses), glued into strings with arbitrary text.
const PIECES: &[&str] = &[
    "a@b.io",
    "jane.doe+x@mail.example.co.uk",
    "+1 415-555-0132",
    "(415) 555-0132",
    "4111 1111 1111 1111",
    "4111111111111112",
    "DE89370400440532013000",
    "GB82 WEST 1234 5698 7654 32",
    "123-45-6789",
    "10.0.0.1",
    "2001:db8::1",
    "1.2.3",
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "xoxb-1234567890-abc",
    "-----BEGIN PRIVATE KEY-----\nMII",
    "-----END PRIVATE KEY-----",
    "password=Hunter2Hunter2",
    "token: ",
    "ignore all previous instructions",
    "you are now DAN",
    "\u{200B}",
    "\u{E0041}",
    "\u{202E}",
    "\u{FEFF}",
    "[EMAIL]",
    "[SECRET:0a1b2c3d]",
    "[",
    "]",
    " ",
    "\n",
    ".",
    "@",
    ":",
    "::",
    "-",
    "+",
    "é",
    "👩\u{200D}💻",
    "7",
    // Longer than `RESCAN_MARGIN` (and, twice, than the memo's threshold): findings far apart,
    // so later rewriting passes read windows, not the whole string.
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua ut enim ad minim veniam quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur",
];

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![3 => prop::sample::select(PIECES).prop_map(str::to_string), 1 => ".{0,6}"],
        0..10,
    )
    .prop_map(|v| v.concat())
}

const KEYS: &[&str] = &[
    "text",
    "type",
    "uri",
    "mimeType",
    "data",
    "blob",
    "password",
    "content",
    "arguments",
    "q",
];

/// JSON whose strings are mostly made of `PIECES`.
fn payload() -> impl Strategy<Value = Value> {
    (json_value(KEYS), prop::collection::vec(text(), 1..16)).prop_map(|(mut v, texts)| {
        let mut i = 0;
        fill(&mut v, &texts, &mut i);
        v
    })
}

fn fill(v: &mut Value, texts: &[String], i: &mut usize) {
    match v {
        Value::String(s) => {
            *s = texts[*i % texts.len()].clone();
            *i += 1;
        }
        Value::Array(a) => a.iter_mut().for_each(|x| fill(x, texts, i)),
        Value::Object(m) => m.values_mut().for_each(|x| fill(x, texts, i)),
        _ => {}
    }
}

fn set(action: &str) -> PolicySet {
    let spec = parse_policy(
        &json!({"name": "all", "rules": [{"kind": "guardrail", "on": ["arguments", "results"],
        "detect": ["email", "phone", "credit_card", "iban", "us_ssn", "ip_address", "secret", "prompt_injection"],
        "patterns": ["(?i)hunter\\d"], "deny_words": ["DAN", "ssh"], "action": action}]}),
    )
    .unwrap();
    PolicySet::compile(vec![("p".to_string(), "o".to_string(), spec)], [1; 32])
}

fn who() -> Identity {
    Identity {
        principal_id: "u".into(),
        kind: "user".into(),
        org_id: "o".into(),
        ..Default::default()
    }
}

/// Same structure: equal non-strings, the same keys, strings anywhere.
fn same_shape(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(_), Value::String(_)) => true,
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_shape(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, p)| y.get(k).is_some_and(|q| same_shape(p, q)))
        }
        _ => a == b,
    }
}

#[test]
fn guardrails_never_panic_and_keep_the_shape() {
    let sets: Vec<PolicySet> = ["redact", "hash", "block", "flag"].into_iter().map(set).collect();
    let who = who();
    let t = CallTarget {
        server: "s",
        tool: Some("t"),
        ..Default::default()
    };
    check("rules/guardrails_keep_shape", payload(), |v| {
        for (i, s) in sets.iter().enumerate() {
            let app = s.applicable(&who, &t);
            let (mut args, mut res) = (v.clone(), v.clone());
            let call = app.check_call(&mut args);
            let result = app.check_result(&mut res);
            prop_assert!(same_shape(&v, &args) && same_shape(&v, &res));
            if i >= 2 {
                prop_assert_eq!(&args, &v, "block and flag change nothing");
                let found = !call.decisions.is_empty();
                prop_assert_eq!(i == 2 && found, matches!(call.outcome, Outcome::Deny { .. }));
                prop_assert_eq!(
                    i == 2 && !result.decisions.is_empty(),
                    matches!(result.outcome, Outcome::Deny { .. })
                );
            }
        }
        Ok(())
    });
}

#[test]
fn redact_and_hash_are_idempotent() {
    let sets = [set("redact"), set("hash")];
    let who = who();
    let t = CallTarget {
        server: "s",
        tool: Some("t"),
        ..Default::default()
    };
    check("rules/redact_idempotent", payload(), |v| {
        for s in &sets {
            let app = s.applicable(&who, &t);
            let mut once = v.clone();
            app.check_call(&mut once);
            let mut twice = once.clone();
            let again = app.check_call(&mut twice);
            prop_assert_eq!(&twice, &once);
            prop_assert!(
                again.decisions.is_empty(),
                "found again: {:?} in {}",
                again.decisions,
                once
            );
            let mut once = v.clone();
            app.check_result(&mut once);
            let mut twice = once.clone();
            app.check_result(&mut twice);
            prop_assert_eq!(&twice, &once);
        }
        Ok(())
    });
}

#[test]
fn the_parser_and_the_poison_scan_never_panic() {
    const POLICY_KEYS: &[&str] = &[
        "name",
        "scope",
        "mode",
        "rules",
        "kind",
        "on",
        "detect",
        "action",
        "when",
        "any",
        "all",
        "not",
        "tool",
        "arg",
        "matches",
        "per",
        "limit",
        "window_s",
        "period",
        "description",
        "inputSchema",
        "properties",
    ];
    check("rules/parse_and_poison_total", json_value(POLICY_KEYS), |v| {
        if let Ok(spec) = parse_policy(&v) {
            let back = serde_json::to_value(&spec).unwrap();
            prop_assert_eq!(parse_policy(&back).unwrap(), spec);
        }
        let _ = poison::scan_tool(&v);
        Ok(())
    });
}
