//! Translating messages between the eras when client and upstream speak different ones.
use serde_json::{json, Map, Value};

use crate::mcp::version::{self, meta};

use super::upstream::ClientContext;

/// Result fields that exist only in 2026-07-28.
const MODERN_RESULT_FIELDS: &[&str] = &["resultType", "ttlMs", "cacheScope"];
/// `_meta` keys that exist only in 2026-07-28 requests.
const MODERN_META_KEYS: &[&str] = &[
    meta::PROTOCOL_VERSION,
    meta::CLIENT_CAPABILITIES,
    meta::CLIENT_INFO,
    meta::LOG_LEVEL,
];
/// `_meta` keys only 2026-07-28 defines; a legacy client never sees them in what it receives.
const MODERN_ONLY_META: &[&str] = &[
    meta::PROTOCOL_VERSION,
    meta::CLIENT_CAPABILITIES,
    meta::CLIENT_INFO,
    meta::LOG_LEVEL,
    meta::SERVER_INFO,
    super::live::SUBSCRIPTION_ID,
];
/// Methods whose results are cacheable lists in 2026-07-28 and so need `ttlMs`/`cacheScope`.
const CACHEABLE: &[&str] = &[
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "server/discover",
];

/// A modern client's request, made fit for a legacy upstream: the per-request `_meta` keys
/// are dropped (the upstream session carries them); `progressToken` and others stay.
pub fn request_to_legacy(mut msg: Value) -> Value {
    if let Some(Value::Object(m)) = msg.pointer_mut("/params/_meta") {
        for k in MODERN_META_KEYS {
            m.remove(*k);
        }
    }
    if msg
        .pointer("/params/_meta")
        .and_then(Value::as_object)
        .is_some_and(Map::is_empty)
    {
        if let Some(Value::Object(p)) = msg.get_mut("params") {
            p.remove("_meta");
        }
    }
    msg
}

/// A legacy client's request, made fit for a modern upstream: the session's knowledge moves
/// into the request's `_meta`.
pub fn request_to_modern(mut msg: Value, client: &ClientContext, log_level: Option<&str>) -> Value {
    if !msg.get("params").is_some_and(Value::is_object) {
        msg["params"] = json!({});
    }
    let params = msg["params"].as_object_mut().expect("params is an object");
    let m = params.entry("_meta").or_insert_with(|| json!({}));
    if let Value::Object(m) = m {
        m.insert(meta::PROTOCOL_VERSION.into(), json!(version::MODERN));
        m.insert(meta::CLIENT_CAPABILITIES.into(), client.capabilities.clone());
        m.insert(meta::CLIENT_INFO.into(), client.client_info.clone());
        if let Some(l) = log_level {
            m.insert(meta::LOG_LEVEL.into(), json!(l));
        }
    }
    msg
}

/// A legacy upstream's response, completed for a modern client: every result gets a
/// `resultType`, cacheable ones `ttlMs`/`cacheScope` (zero and private: the gateway cannot
/// promise more than the upstream did).
pub fn response_to_modern(mut msg: Value, method: &str) -> Value {
    if let Some(Value::Object(r)) = msg.get_mut("result") {
        r.entry("resultType").or_insert_with(|| json!("complete"));
        if CACHEABLE.contains(&method) {
            r.entry("ttlMs").or_insert_with(|| json!(0));
            r.entry("cacheScope").or_insert_with(|| json!("private"));
        }
    }
    msg
}

/// A modern upstream's message (response or notification), trimmed for a legacy client: the
/// result fields and `_meta` keys only 2026-07-28 has are removed. `None` when it cannot be
/// expressed in the legacy era (an `input_required` result the gateway did not serve itself).
pub fn response_to_legacy(mut msg: Value) -> Option<Value> {
    if let Some(Value::Object(r)) = msg.get_mut("result") {
        if r.get("resultType")
            .and_then(Value::as_str)
            .is_some_and(|t| t != "complete")
        {
            return None;
        }
        for f in MODERN_RESULT_FIELDS {
            r.remove(*f);
        }
    }
    for holder in ["result", "params"] {
        if let Some(Value::Object(h)) = msg.get_mut(holder) {
            strip_modern_meta(h);
        }
    }
    Some(msg)
}

/// Removes the 2026-07-28 `_meta` keys from an object, and `_meta` itself if nothing is left.
fn strip_modern_meta(holder: &mut Map<String, Value>) {
    if let Some(Value::Object(m)) = holder.get_mut("_meta") {
        for k in MODERN_ONLY_META {
            m.remove(*k);
        }
        if m.is_empty() {
            holder.remove("_meta");
        }
    }
}

/// The `server/discover` result a modern client gets for a legacy (or any) upstream, from what
/// the gateway learned at sync.
pub fn discover_result(capabilities: &Value, server_info: &Value, instructions: Option<&str>) -> Value {
    let mut r = json!({
        "resultType": "complete",
        "supportedVersions": version::supported_versions(),
        "capabilities": capabilities,
        "ttlMs": 0,
        "cacheScope": "private",
        "_meta": { meta::SERVER_INFO: server_info },
    });
    if let Some(i) = instructions {
        r["instructions"] = json!(i);
    }
    r
}

/// The `initialize` result a legacy client gets for a modern upstream.
pub fn initialize_result(
    version: &str,
    capabilities: &Value,
    server_info: &Value,
    instructions: Option<&str>,
) -> Value {
    let mut r = json!({
        "protocolVersion": version,
        "capabilities": capabilities,
        "serverInfo": server_info,
    });
    if let Some(i) = instructions {
        r["instructions"] = json!(i);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_and_adds_meta() {
        let modern = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo",
            "_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"progressToken":7}}});
        let legacy = request_to_legacy(modern);
        assert_eq!(legacy["params"]["_meta"], json!({"progressToken": 7}));
        let back = request_to_modern(legacy, &ClientContext::default(), Some("info"));
        assert_eq!(back["params"]["_meta"][meta::PROTOCOL_VERSION], "2026-07-28");
        assert_eq!(back["params"]["_meta"][meta::LOG_LEVEL], "info");
        assert_eq!(back["params"]["_meta"]["progressToken"], 7);
        let bare = request_to_legacy(
            json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}),
        );
        assert_eq!(bare["params"], json!({}));
        let none = request_to_modern(
            json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}),
            &ClientContext::default(),
            None,
        );
        assert!(none["params"]["_meta"][meta::CLIENT_CAPABILITIES].is_object());
    }

    #[test]
    fn results_change_shape_between_eras() {
        let r = response_to_modern(json!({"jsonrpc":"2.0","id":1,"result":{"tools":[]}}), "tools/list");
        assert_eq!(r["result"]["resultType"], "complete");
        assert_eq!(r["result"]["cacheScope"], "private");
        let c = response_to_modern(json!({"jsonrpc":"2.0","id":1,"result":{"content":[]}}), "tools/call");
        assert!(c["result"].get("ttlMs").is_none());
        let l = response_to_legacy(r).unwrap();
        assert_eq!(l["result"], json!({"tools": []}));
        // Modern-only `_meta` goes; the rest of `_meta` stays.
        let m = response_to_legacy(json!({"jsonrpc":"2.0","id":1,"result":{"content":[],
            "_meta":{"io.modelcontextprotocol/serverInfo":{"name":"up"},"app/x":1}}}))
        .unwrap();
        assert_eq!(m["result"], json!({"content": [], "_meta": {"app/x": 1}}));
        let only = response_to_legacy(json!({"jsonrpc":"2.0","id":1,"result":{"tools":[],
            "_meta":{"io.modelcontextprotocol/serverInfo":{"name":"up"}}}}))
        .unwrap();
        assert_eq!(only["result"], json!({"tools": []}));
        assert!(response_to_legacy(json!({"id":1,"result":{"resultType":"input_required"}})).is_none());
        let e = response_to_modern(
            json!({"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x"}}),
            "tools/list",
        );
        assert!(e.get("result").is_none());
    }
}
