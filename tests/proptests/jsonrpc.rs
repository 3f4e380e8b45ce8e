//! JSON-RPC envelope parsing (`mcp::jsonrpc`): arbitrary bytes, mutated message text, arbitrary
//! JSON values and structured mutations of valid messages. The documented contract: bytes that
//! are not JSON are -32700, JSON that is not one JSON-RPC message is -32600, both with HTTP 400;
//! a message that is accepted keeps every field it carried; nothing panics.
use mcp_gateway::mcp::error::{codes, RpcError};
use mcp_gateway::mcp::jsonrpc::{self, parse_message, Message};
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::support::{check, json_value, object};

/// Members the envelope rules are about, so generated values often touch them.
const ENVELOPE: &[&str] = &["jsonrpc", "id", "method", "params", "result", "error"];

#[derive(Debug, PartialEq)]
enum Kind {
    Request,
    Notification,
    Response,
}

/// What JSON-RPC 2.0 (single messages only, as MCP requires since 2025-06-18) says a value
/// is, written from the specification rather than from the parser.
fn expected(v: &Value) -> Option<Kind> {
    let o = v.as_object()?;
    if o.get("jsonrpc") != Some(&json!("2.0")) {
        return None;
    }
    if let Some(id) = o.get("id") {
        // Requests and responses carry a string or an integer id; null and fractions are refused.
        if !(id.is_string() || id.is_i64() || id.is_u64()) {
            return None;
        }
    }
    match o.get("method") {
        Some(Value::String(_)) => match o.get("params") {
            Some(p) if !(p.is_object() || p.is_array()) => None,
            _ if o.contains_key("id") => Some(Kind::Request),
            _ => Some(Kind::Notification),
        },
        Some(_) => None,
        None if o.contains_key("id") && o.contains_key("result") != o.contains_key("error") => Some(Kind::Response),
        None => None,
    }
}

/// The parse of `text` must be exactly what the specification says of it.
fn agrees(text: &[u8]) -> Result<(), TestCaseError> {
    let got = parse_message(text);
    let Ok(value) = serde_json::from_slice::<Value>(text) else {
        let e = got.expect_err("bytes that are not JSON were accepted");
        prop_assert_eq!((e.code, e.http_status), (codes::PARSE_ERROR, 400));
        return Ok(());
    };
    match (expected(&value), got) {
        (None, Err(e)) => prop_assert_eq!((e.code, e.http_status), (codes::INVALID_REQUEST, 400), "{}", e),
        (None, Ok(m)) => prop_assert!(false, "accepted an invalid message {value}: {m:?}"),
        (Some(kind), Err(e)) => prop_assert!(false, "refused a valid {kind:?} {value}: {e}"),
        (Some(kind), Ok(m)) => {
            let o = value.as_object().unwrap();
            match (&kind, &m) {
                (Kind::Request, Message::Request { id, method, params }) => {
                    prop_assert_eq!(Some(id), o.get("id"));
                    prop_assert_eq!(Some(&json!(method)), o.get("method"));
                    prop_assert_eq!(params.as_ref(), o.get("params"));
                }
                (Kind::Notification, Message::Notification { method, params }) => {
                    prop_assert_eq!(Some(&json!(method)), o.get("method"));
                    prop_assert_eq!(params.as_ref(), o.get("params"));
                }
                // A response is relayed whole: every member, known or not, survives.
                (Kind::Response, Message::Response { id, body }) => {
                    prop_assert_eq!(Some(id), o.get("id"));
                    prop_assert_eq!(body, &value);
                }
                _ => prop_assert!(false, "{value} is a {kind:?}, parsed as {m:?}"),
            }
            // What the gateway forwards is what it decided: serializing and parsing again is stable.
            let again = parse_message(m.to_value().to_string().as_bytes()).expect("a serialized message parses");
            prop_assert_eq!(again, m);
        }
    }
    Ok(())
}

fn id() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        ".{0,16}".prop_map(Value::String),
    ]
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            &[
                "tools/call",
                "tools/list",
                "initialize",
                "notifications/cancelled",
                "ping"
            ][..]
        )
        .prop_map(str::to_string),
        ".{0,24}",
    ]
}

fn params() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(prop_oneof![
        prop::collection::vec((".{0,8}", json_value(ENVELOPE)), 0..4).prop_map(object),
        prop::collection::vec(json_value(ENVELOPE), 0..3).prop_map(Value::Array),
    ])
}

/// A valid request, notification, result or error response, as a JSON value.
fn valid_message() -> impl Strategy<Value = Value> {
    prop_oneof![
        (id(), method(), params()).prop_map(|(id, m, p)| with_params(json!({"jsonrpc":"2.0","id":id,"method":m}), p)),
        (method(), params()).prop_map(|(m, p)| with_params(json!({"jsonrpc":"2.0","method":m}), p)),
        (id(), json_value(ENVELOPE)).prop_map(|(id, r)| json!({"jsonrpc":"2.0","id":id,"result":r})),
        (id(), any::<i64>(), ".{0,16}")
            .prop_map(|(id, c, m)| json!({"jsonrpc":"2.0","id":id,"error":{"code":c,"message":m}})),
    ]
}

fn with_params(mut v: Value, p: Option<Value>) -> Value {
    if let Some(p) = p {
        v["params"] = p;
    }
    v
}

/// One edit of a message's members: dropped, or set to another value (of any type).
#[derive(Debug, Clone)]
enum Edit {
    Drop(&'static str),
    Set(&'static str, Value),
}

fn edit() -> impl Strategy<Value = Edit> {
    let member = prop::sample::select(ENVELOPE);
    prop_oneof![
        member.clone().prop_map(Edit::Drop),
        (member, json_value(ENVELOPE)).prop_map(|(k, v)| Edit::Set(k, v)),
    ]
}

fn apply(mut v: Value, edits: &[Edit]) -> Value {
    let o = v.as_object_mut().unwrap();
    for e in edits {
        match e {
            Edit::Drop(k) => o.remove(*k),
            Edit::Set(k, x) => o.insert(k.to_string(), x.clone()),
        };
    }
    v
}

/// Byte-level damage to a message's text: truncation, insertion, deletion, replacement.
fn damage(mut text: Vec<u8>, ops: &[(u8, usize, u8)]) -> Vec<u8> {
    for &(op, at, byte) in ops {
        let at = if text.is_empty() { 0 } else { at % (text.len() + 1) };
        match op % 4 {
            0 => text.truncate(at),
            1 => text.insert(at, byte),
            2 if at < text.len() => {
                text.remove(at);
            }
            _ if at < text.len() => text[at] = byte,
            _ => {}
        }
    }
    text
}

#[test]
fn arbitrary_bytes() {
    check(
        "jsonrpc/arbitrary-bytes",
        prop::collection::vec(any::<u8>(), 0..256),
        |b| agrees(&b),
    );
}

#[test]
fn damaged_message_text() {
    let ops = prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..4);
    check("jsonrpc/damaged-text", (valid_message(), ops), |(m, ops)| {
        agrees(&damage(m.to_string().into_bytes(), &ops))
    });
}

#[test]
fn arbitrary_json_values() {
    check("jsonrpc/arbitrary-values", json_value(ENVELOPE), |v| {
        agrees(v.to_string().as_bytes())
    });
}

#[test]
fn valid_messages_are_accepted_whole() {
    check("jsonrpc/valid", valid_message(), |m| {
        prop_assert!(parse_message(m.to_string().as_bytes()).is_ok(), "{m}");
        agrees(m.to_string().as_bytes())
    });
}

#[test]
fn members_dropped_retyped_or_added() {
    check(
        "jsonrpc/structured-mutations",
        (valid_message(), prop::collection::vec(edit(), 1..3)),
        |(m, edits)| agrees(apply(m, &edits).to_string().as_bytes()),
    );
}

/// A member written twice: the last occurrence wins (as in JavaScript's `JSON.parse` and
/// Python's `json`), and since the gateway forwards its own serialization of what it parsed,
/// an upstream can never act on the occurrence the gateway ignored.
#[test]
fn duplicated_members_last_wins() {
    let dup = (prop::sample::select(ENVELOPE), json_value(ENVELOPE));
    check("jsonrpc/duplicate-members", (valid_message(), dup), |(m, (k, x))| {
        let body = m.to_string();
        let inner = &body[1..body.len() - 1];
        let sep = if inner.is_empty() { "" } else { "," };
        let member = format!("{}:{x}", json!(k));
        let first = format!("{{{member}{sep}{inner}}}");
        let last = format!("{{{inner}{sep}{member}}}");
        let mut overridden = m.clone();
        overridden[k] = x;
        // Written first, the extra member loses to the message's own one if it has one.
        let first_wins = if m.get(k).is_some() { &m } else { &overridden };
        prop_assert_eq!(
            parse_message(first.as_bytes()),
            parse_message(first_wins.to_string().as_bytes())
        );
        prop_assert_eq!(
            parse_message(last.as_bytes()),
            parse_message(overridden.to_string().as_bytes())
        );
        agrees(first.as_bytes())?;
        agrees(last.as_bytes())
    });
}

/// Nesting far beyond serde_json's recursion limit is a parse error, never a stack overflow.
#[test]
fn deep_nesting() {
    check(
        "jsonrpc/deep-nesting",
        (1usize..20_000, any::<bool>()),
        |(depth, arrays)| {
            let (open, close) = if arrays { ("[", "]") } else { ("{\"a\":", "}") };
            let body = format!(
                "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{{\"p\":{}0{}}}}}",
                open.repeat(depth),
                close.repeat(depth)
            );
            match parse_message(body.as_bytes()) {
                Ok(m) => prop_assert_eq!(m.method(), Some("x")),
                Err(e) => prop_assert_eq!(e.code, codes::PARSE_ERROR),
            }
            Ok(())
        },
    );
}

/// What the gateway builds is itself a valid response to the request it answers.
#[test]
fn built_responses_are_responses() {
    let err = (
        any::<i64>(),
        ".{0,16}",
        prop::option::of(json_value(ENVELOPE)),
        100u16..600,
    );
    check(
        "jsonrpc/built-responses",
        (id(), json_value(ENVELOPE), err, id()),
        |(id, r, (c, msg, data, s), other)| {
            let mut e = RpcError::new(c, msg, s);
            e.data = data;
            for v in [jsonrpc::result(&id, r.clone()), jsonrpc::error_response(Some(&id), &e)] {
                prop_assert!(jsonrpc::is_response_to(&v, &id));
                prop_assert_eq!(jsonrpc::is_response_to(&v, &other), other == id);
                match parse_message(v.to_string().as_bytes()) {
                    Ok(Message::Response { id: got, .. }) => prop_assert_eq!(got, id.clone()),
                    other => prop_assert!(false, "{v} parsed as {other:?}"),
                }
            }
            prop_assert_eq!(&jsonrpc::error_response(None, &e)["id"], &Value::Null);
            Ok(())
        },
    );
}
