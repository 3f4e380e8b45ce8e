//! YAML configuration documents (`admin::config_yaml`): JSON text is YAML, and reads back as
//! the very value serde_json reads; any text at all is either a value or a refusal naming a
//! line and column from 1, and nothing panics.
use mcp_gateway::admin::config_yaml::to_json;
use proptest::prelude::*;
use serde_json::Value;

use crate::support::{check, json_value};

/// Members of a configuration document, so generated objects often look like one.
const DOC: &[&str] = &["version", "org", "servers", "slug", "url", "name", "grants", "id"];

/// Whether a YAML stream may hold `c` (YAML 1.2 §5.1's printable set, less the byte order mark).
/// JSON strings may hold others raw (DEL, C1 controls, U+FFFE), which a YAML document cannot.
fn yaml_printable(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{85}' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FEFE}' | '\u{FF00}'..='\u{FFFD}')
        || c >= '\u{10000}'
}

/// `v` with the characters a YAML stream may not hold replaced by `?`.
fn printable(v: Value) -> Value {
    let fix = |s: String| {
        s.chars()
            .map(|c| if yaml_printable(c) { c } else { '?' })
            .collect::<String>()
    };
    match v {
        Value::String(s) => Value::String(fix(s)),
        Value::Array(a) => Value::Array(a.into_iter().map(printable).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (fix(k), printable(v))).collect()),
        other => other,
    }
}

#[test]
fn json_text_reads_back_as_json() {
    check(
        "yaml/json_text_reads_back_as_json",
        json_value(DOC).prop_map(printable),
        |v| {
            for text in [
                serde_json::to_string(&v).unwrap(),
                serde_json::to_string_pretty(&v).unwrap(),
            ] {
                let read = to_json(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
                prop_assert_eq!(&read, &v, "{}", text);
            }
            Ok(())
        },
    );
}

/// Text that looks a bit like YAML (indicators, indentation, anchors, tags), or anything.
fn yamlish() -> impl Strategy<Value = String> {
    prop_oneof![
        "([a-z0-9.~]{0,6}|[-:?,#&*!|>'\"%@`{}\\[\\]]|  |\n|\t|---|\\.\\.\\.|!!|0x|\\.nan){0,60}",
        prop::collection::vec(any::<char>(), 0..80).prop_map(String::from_iter),
    ]
}

#[test]
fn any_text_is_a_value_or_a_placed_refusal() {
    check("yaml/any_text_is_a_value_or_a_placed_refusal", yamlish(), |text| {
        if let Err(e) = to_json(&text) {
            prop_assert!(e.line >= 1 && e.column >= 1, "{:?}: {}", text, e);
            prop_assert!(!e.message.is_empty());
        }
        Ok(())
    });
}
