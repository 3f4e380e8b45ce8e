//! Streamable-HTTP request checks (`mcp::transport`): whatever headers and message arrive,
//! `classify_post` answers with a documented error and never panics; a 2026-07-28 request
//! whose headers mirror its body as the specification says is accepted, and one mirrored
//! header that does not match (after base64 decoding) is -32020; header values survive the
//! base64 sentinel encoding; Accept / Content-Type checks refuse with 406 / 415 only.
use mcp_gateway::http::Headers;
use mcp_gateway::mcp::error::codes;
use mcp_gateway::mcp::jsonrpc::{self, Message};
use mcp_gateway::mcp::transport::{self, PostKind};
use mcp_gateway::mcp::version::{self, meta};
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::support::{check, json_value};

const HEADER_NAMES: &[&str] = &[
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "accept",
    "content-type",
    "origin",
];
const METHODS: &[&str] = &[
    "tools/call",
    "resources/read",
    "prompts/get",
    "tools/list",
    "initialize",
    "server/discover",
    "subscriptions/listen",
    "notifications/cancelled",
    "ping",
];
const PARAM_KEYS: &[&str] = &["name", "uri", "arguments", "cursor", "_meta"];

/// A header name in random letter case (names are case-insensitive, RFC 9110).
fn any_case(name: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<bool>(), name.len()).prop_map(move |up| {
        name.chars()
            .zip(up)
            .map(|(c, u)| if u { c.to_ascii_uppercase() } else { c })
            .collect()
    })
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(version::MODERN.to_string()),
        prop::sample::select(version::LEGACY_VERSIONS).prop_map(str::to_string),
        prop::sample::select(METHODS).prop_map(str::to_string),
        ".{0,16}".prop_map(|s| transport::encode_header_value(&s)),
        "=\\?base64\\?[A-Za-z0-9+/=]{0,12}\\?=",
        ".{0,16}",
    ]
}

fn headers() -> impl Strategy<Value = Headers> {
    let one = (
        prop::sample::select(HEADER_NAMES).prop_flat_map(any_case),
        header_value(),
    );
    prop::collection::vec(one, 0..7).prop_map(Headers)
}

fn version_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => Just(json!(version::MODERN)),
        1 => prop::sample::select(version::LEGACY_VERSIONS).prop_map(|v| json!(v)),
        1 => json_value(&[]),
    ]
}

/// Any JSON-RPC message an MCP client could send, `_meta` often present and often wrong.
fn message() -> impl Strategy<Value = Message> {
    let meta = (prop::option::of(version_value()), prop::option::of(json_value(&[]))).prop_map(|(v, caps)| {
        let mut m = serde_json::Map::new();
        if let Some(v) = v {
            m.insert(meta::PROTOCOL_VERSION.into(), v);
        }
        if let Some(c) = caps {
            m.insert(meta::CLIENT_CAPABILITIES.into(), c);
        }
        Value::Object(m)
    });
    let params = (
        prop::collection::vec((prop::sample::select(PARAM_KEYS), json_value(PARAM_KEYS)), 0..4),
        prop::option::of(meta),
    )
        .prop_map(|(kv, meta)| {
            let mut p: serde_json::Map<String, Value> = kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            if let Some(m) = meta {
                p.insert("_meta".into(), m);
            }
            Value::Object(p)
        });
    (
        prop::option::of(any::<i64>()),
        prop::sample::select(METHODS),
        prop::option::of(params),
    )
        .prop_map(|(id, method, params)| {
            let mut v = json!({"jsonrpc": "2.0", "method": method});
            if let Some(id) = id {
                v["id"] = json!(id);
            }
            if let Some(p) = params {
                v["params"] = p;
            }
            jsonrpc::classify(v).expect("a well-formed envelope")
        })
}

#[test]
fn any_headers_and_message_get_a_documented_answer() {
    check("transport/classify-any", (headers(), message()), |(h, m)| {
        match transport::classify_post(&h, &m) {
            Ok(PostKind::Modern(v)) => prop_assert_eq!(v, version::MODERN),
            Ok(PostKind::Session(sid)) => prop_assert_eq!(Some(sid.as_str()), h.get(transport::HEADER_SESSION)),
            Ok(PostKind::Initialize) => prop_assert_eq!(m.method(), Some("initialize")),
            Err(e) => {
                let documented = [
                    (codes::INVALID_REQUEST, 400),
                    (codes::INVALID_PARAMS, 400),
                    (codes::HEADER_MISMATCH, 400),
                    (codes::UNSUPPORTED_PROTOCOL_VERSION, 400),
                    (codes::METHOD_NOT_FOUND, 404),
                ];
                prop_assert!(
                    documented.contains(&(e.code, e.http_status)),
                    "{e} / HTTP {}",
                    e.http_status
                );
            }
        }
        Ok(())
    });
}

/// The body member `Mcp-Name` mirrors for a method, if it has one (2026-07-28, Request
/// Metadata): `params.name` for tools and prompts, `params.uri` for resources.
fn mirrored_member(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// A valid 2026-07-28 request and the headers a conforming client sends with it. Both `name`
/// and `uri` are often present, whatever the method, as an attacker would send them.
fn modern_request() -> impl Strategy<Value = (Message, Headers)> {
    let target = prop::collection::vec(any::<char>(), 0..24).prop_map(String::from_iter);
    let other = prop::option::of(".{0,12}");
    let names = (
        any_case("mcp-protocol-version"),
        any_case("mcp-method"),
        any_case("mcp-name"),
    );
    (
        prop::sample::select(METHODS).prop_filter("legacy handshake", |m| *m != "initialize"),
        target,
        other,
        names,
    )
        .prop_map(|(method, target, other, names)| {
            let mut params = json!({"_meta": {
                meta::PROTOCOL_VERSION: version::MODERN,
                meta::CLIENT_CAPABILITIES: {},
            }});
            let member = mirrored_member(method);
            if let Some(m) = member {
                params[m] = json!(target);
            }
            // The member Mcp-Name does not mirror, present with some other value.
            if let Some(o) = other {
                let decoy = if member == Some("uri") { "name" } else { "uri" };
                params[decoy] = json!(o);
            }
            let msg =
                jsonrpc::classify(json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})).unwrap();
            let mut h = Headers::new().with(&names.0, version::MODERN).with(&names.1, method);
            if member.is_some() {
                h = h.with(&names.2, transport::encode_header_value(&target));
            }
            (msg, h)
        })
}

#[test]
fn conforming_modern_requests_are_accepted() {
    check("transport/modern-valid", modern_request(), |(m, h)| {
        prop_assert_eq!(
            transport::classify_post(&h, &m),
            Ok(PostKind::Modern(version::MODERN.into()))
        );
        Ok(())
    });
}

#[test]
fn one_mismatched_mirror_header_is_32020() {
    let which = prop::sample::select(
        &[
            transport::HEADER_PROTOCOL_VERSION,
            transport::HEADER_METHOD,
            transport::HEADER_NAME,
        ][..],
    );
    let replacement = prop::option::of(header_value());
    check(
        "transport/modern-mismatch",
        (modern_request(), which, replacement),
        |((m, mut h), which, new)| {
            if h.get(which).is_none() {
                return Ok(()); // a method without Mcp-Name
            }
            let expected_value = match which {
                transport::HEADER_PROTOCOL_VERSION => version::MODERN.to_string(),
                transport::HEADER_METHOD => m.method().unwrap().to_string(),
                _ => {
                    let p = m.params().unwrap();
                    p[mirrored_member(m.method().unwrap()).unwrap()]
                        .as_str()
                        .unwrap()
                        .to_string()
                }
            };
            let still_matches = match &new {
                None => false,
                Some(v) if which == transport::HEADER_NAME => {
                    transport::decode_header_value(v).as_deref() == Some(expected_value.as_str())
                }
                Some(v) => *v == expected_value,
            };
            h.0.retain(|(k, _)| !k.eq_ignore_ascii_case(which));
            if let Some(v) = new {
                h.set(which, v);
            }
            let got = transport::classify_post(&h, &m);
            if still_matches {
                prop_assert!(got.is_ok(), "{got:?}");
            } else {
                let e = got.expect_err("a mismatched header was accepted");
                prop_assert_eq!((e.code, e.http_status), (codes::HEADER_MISMATCH, 400), "{}", e);
            }
            Ok(())
        },
    );
}

#[test]
fn header_values_round_trip_through_the_base64_sentinel() {
    let s = prop::collection::vec(any::<char>(), 0..40).prop_map(String::from_iter);
    check("transport/header-encoding", s, |s| {
        let enc = transport::encode_header_value(&s);
        prop_assert_eq!(transport::decode_header_value(&enc), Some(s.clone()));
        // Always a valid HTTP field value: visible ASCII and inner spaces, no outer whitespace.
        prop_assert!(enc.bytes().all(|b| (0x20..0x7f).contains(&b)), "{enc}");
        prop_assert_eq!(enc.trim(), enc.as_str());
        let sentinel = s.starts_with("=?base64?") && s.ends_with("?=");
        let plain = s.bytes().all(|b| (0x20..0x7f).contains(&b)) && s.trim() == s && !sentinel;
        prop_assert_eq!(enc == s, plain);
        Ok(())
    });
}

#[test]
fn decoding_arbitrary_header_values() {
    check("transport/header-decoding", header_value(), |v| {
        match transport::decode_header_value(&v) {
            Some(d) if !(v.starts_with("=?base64?") && v.ends_with("?=")) => prop_assert_eq!(d, v),
            _ => {}
        }
        Ok(())
    });
}

#[test]
fn accept_and_content_type() {
    let media = prop_oneof![
        Just("application/json"),
        Just("text/event-stream"),
        Just("APPLICATION/JSON"),
        Just("*/*"),
        Just("text/html"),
        Just(""),
    ];
    let list = prop::collection::vec(
        (media, prop::option::of(Just(";q=0.9")), prop::option::of(Just(" "))),
        0..4,
    );
    check("transport/accept-content-type", (list, ".{0,20}"), |(list, junk)| {
        let accept: Vec<String> = list
            .iter()
            .map(|(m, q, sp)| format!("{}{m}{}", sp.unwrap_or(""), q.unwrap_or("")))
            .collect();
        let accept = accept.join(",");
        let has = |t: &str| list.iter().any(|(m, _, _)| m.eq_ignore_ascii_case(t) || *m == "*/*");
        let h = Headers::new().with("accept", accept.clone());
        match transport::check_post_accept(&h) {
            Ok(()) => prop_assert!(has("application/json") && has("text/event-stream"), "{accept}"),
            Err(e) => {
                prop_assert!(!(has("application/json") && has("text/event-stream")), "{accept}");
                prop_assert_eq!((e.code, e.http_status), (codes::INVALID_REQUEST, 406));
            }
        }
        for v in [accept.as_str(), junk.as_str()] {
            let h = Headers::new().with("accept", v).with("content-type", v);
            if let Err(e) = transport::check_get_accept(&h) {
                prop_assert_eq!(e.http_status, 406);
            }
            if let Err(e) = transport::check_content_type(&h) {
                prop_assert_eq!(e.http_status, 415);
            }
            if let Err(e) = transport::check_legacy_version(&h, "2025-11-25") {
                prop_assert_eq!(e.code, codes::INVALID_REQUEST);
            }
        }
        Ok(())
    });
}
