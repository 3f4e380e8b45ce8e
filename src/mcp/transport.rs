//! Streamable HTTP rules on the client-facing side: which era a request is in, and the header
//! checks each era demands (Accept, Content-Type, Origin, MCP-Protocol-Version, Mcp-Method/Name).
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;

use super::error::{codes, RpcError};
use super::jsonrpc::Message;
use super::version::{self, meta, Era};
use crate::http::Headers;

/// Largest request body accepted on the MCP endpoints (answered with 413 beyond it).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub const HEADER_SESSION: &str = "mcp-session-id";
pub const HEADER_PROTOCOL_VERSION: &str = "mcp-protocol-version";
pub const HEADER_METHOD: &str = "mcp-method";
pub const HEADER_NAME: &str = "mcp-name";
pub const HEADER_LAST_EVENT_ID: &str = "last-event-id";

/// The body member a method's `Mcp-Name` header mirrors (2026-07-28): the tool's or prompt's
/// `name`, the resource's `uri` — only that one, so a request carrying both cannot have its
/// header checked against the other.
fn mirrored_name(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// What kind of POST this is, decided before anything is forwarded.
#[derive(Debug, Clone, PartialEq)]
pub enum PostKind {
    /// Legacy `initialize`: opens a new gateway session.
    Initialize,
    /// A legacy message on an existing session.
    Session(String),
    /// A modern, stateless request or notification with its validated protocol version.
    Modern(String),
}

/// Which browser origins may call the MCP endpoints.
#[derive(Debug, Clone, Copy)]
pub struct Origins<'a> {
    /// Exact origins (`ALLOWED_ORIGINS`; `*` = any).
    pub allowed: &'a [String],
    /// Local development: loopback origins (`localhost`, `127.0.0.1`, `[::1]`) on any port too.
    pub loopback_any_port: bool,
}

/// DNS-rebinding protection: a browser `Origin` must be allow-listed; requests without one
/// (agents, CLIs) carry no ambient browser credentials and pass.
pub fn check_origin(headers: &Headers, origins: Origins<'_>) -> Result<(), RpcError> {
    match headers.get("origin") {
        None => Ok(()),
        Some(o) if origins.allowed.iter().any(|a| a == "*" || a.eq_ignore_ascii_case(o)) => Ok(()),
        Some(o) if origins.loopback_any_port && is_loopback_origin(o) => Ok(()),
        Some(_) => Err(RpcError::new(codes::INVALID_REQUEST, "Origin not allowed", 403)),
    }
}

/// An `http(s)://host[:port]` origin whose host is loopback — parsed, not prefix-matched, so
/// `http://localhost.evil.example` or `http://127.0.0.1@evil.example` are not.
fn is_loopback_origin(origin: &str) -> bool {
    let Ok(u) = url::Url::parse(origin) else {
        return false;
    };
    matches!(u.scheme(), "http" | "https")
        && u.username().is_empty()
        && u.password().is_none()
        && u.path() == "/"
        && u.query().is_none()
        && u.fragment().is_none()
        && !origin.ends_with('/')
        && crate::url_rules::is_loopback_host(&u)
}

/// CORS response headers for a browser client whose `Origin` is allowed (none otherwise).
/// `Mcp-Session-Id` must be exposed, or browser clients cannot read their session.
pub fn cors_headers(headers: &Headers, allowed: Origins<'_>) -> Vec<(&'static str, String)> {
    let Some(origin) = headers.get("origin") else {
        return Vec::new();
    };
    if check_origin(headers, allowed).is_err() {
        return Vec::new();
    }
    vec![
        ("access-control-allow-origin", origin.to_string()),
        (
            "access-control-expose-headers",
            "mcp-session-id, www-authenticate".to_string(),
        ),
        ("vary", "origin".to_string()),
    ]
}

/// Answers a CORS preflight: 204 with the allowed methods and headers, or 403 for a foreign origin.
pub fn preflight(headers: &Headers, allowed: Origins<'_>) -> crate::http::HttpResponse {
    if headers.get("origin").is_none() || check_origin(headers, allowed).is_err() {
        return crate::http::HttpResponse::new(403);
    }
    let mut resp = crate::http::HttpResponse::new(204)
        .with_header("access-control-allow-methods", "GET, POST, DELETE, OPTIONS")
        .with_header(
            "access-control-allow-headers",
            "authorization, content-type, accept, mcp-session-id, mcp-protocol-version, mcp-method, mcp-name, \
             last-event-id, traceparent, tracestate",
        )
        .with_header("access-control-max-age", "600");
    for (k, v) in cors_headers(headers, allowed) {
        resp.headers.set(k, v);
    }
    resp
}

fn accepts(headers: &Headers, media: &str) -> bool {
    headers.get("accept").is_some_and(|a| {
        a.split(',').any(|part| {
            let m = part.split(';').next().unwrap_or("").trim();
            m.eq_ignore_ascii_case(media) || m == "*/*"
        })
    })
}

/// POST must accept both JSON and SSE (both eras).
pub fn check_post_accept(headers: &Headers) -> Result<(), RpcError> {
    if accepts(headers, "application/json") && accepts(headers, "text/event-stream") {
        Ok(())
    } else {
        Err(RpcError::new(
            codes::INVALID_REQUEST,
            "Accept must include application/json and text/event-stream",
            406,
        ))
    }
}

/// A GET stream must accept SSE.
pub fn check_get_accept(headers: &Headers) -> Result<(), RpcError> {
    if accepts(headers, "text/event-stream") {
        Ok(())
    } else {
        Err(RpcError::new(
            codes::INVALID_REQUEST,
            "Accept must include text/event-stream",
            406,
        ))
    }
}

pub fn check_content_type(headers: &Headers) -> Result<(), RpcError> {
    let ct = headers.get("content-type").unwrap_or("");
    if ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/json")
    {
        Ok(())
    } else {
        Err(RpcError::new(
            codes::INVALID_REQUEST,
            "Content-Type must be application/json",
            415,
        ))
    }
}

/// Decides the era of a POST. A legacy message without a session (other than `initialize`) is
/// refused with 400, which is also what tells a dual-era client probing modern to fall back.
/// A request that says it is modern (a 2026-07-28 `_meta` version, or a modern
/// `MCP-Protocol-Version` header) is modern whatever its method: a modern `initialize` is an
/// unknown method there (-32601), never a legacy handshake.
pub fn classify_post(headers: &Headers, msg: &Message) -> Result<PostKind, RpcError> {
    if let Some(sid) = headers.get(HEADER_SESSION) {
        return Ok(PostKind::Session(sid.to_string()));
    }
    let meta_version = msg
        .meta()
        .and_then(|m| m.get(meta::PROTOCOL_VERSION))
        .and_then(|v| v.as_str());
    let header_version = headers.get(HEADER_PROTOCOL_VERSION);
    let modern_header = header_version.is_some_and(|h| version::era_of(h) == Era::Modern);
    match (meta_version, modern_header) {
        (Some(v), _) => validate_modern(headers, msg, v).map(|()| PostKind::Modern(v.to_string())),
        (None, true) => Err(RpcError::new(
            codes::INVALID_PARAMS,
            format!("params._meta[\"{}\"] is required", meta::PROTOCOL_VERSION),
            400,
        )),
        (None, false) if msg.method() == Some("initialize") => Ok(PostKind::Initialize),
        _ => Err(RpcError::invalid_request(
            "missing Mcp-Session-Id: send initialize first, or use protocol version 2026-07-28",
        )),
    }
}

/// The 2026-07-28 request checks, in the order the transport specification gives them: the
/// `MCP-Protocol-Version` header must be present and equal the body's version (-32020) before
/// that version is judged (-32022); then the required `_meta` (-32602) and the `Mcp-Method` /
/// `Mcp-Name` mirrors (-32020).
fn validate_modern(headers: &Headers, msg: &Message, v: &str) -> Result<(), RpcError> {
    match headers.get(HEADER_PROTOCOL_VERSION) {
        Some(h) if h == v => {}
        Some(h) => {
            return Err(mismatch(format!(
                "MCP-Protocol-Version header '{h}' does not match body '{v}'"
            )))
        }
        None => return Err(mismatch("missing MCP-Protocol-Version header".into())),
    }
    if v != version::MODERN {
        return Err(
            RpcError::new(codes::UNSUPPORTED_PROTOCOL_VERSION, "Unsupported protocol version", 400)
                .with_data(json!({"supported": version::supported_versions(), "requested": v})),
        );
    }
    let Message::Request { method, params, .. } = msg else {
        // Notifications need no further checks; responses have no place in the modern era.
        return match msg {
            Message::Notification { .. } => Ok(()),
            _ => Err(RpcError::invalid_request("clients do not send responses in 2026-07-28")),
        };
    };
    let meta = msg.meta().cloned().unwrap_or_default();
    if !meta.get(meta::CLIENT_CAPABILITIES).is_some_and(|c| c.is_object()) {
        return Err(RpcError::new(
            codes::INVALID_PARAMS,
            format!("params._meta[\"{}\"] is required", meta::CLIENT_CAPABILITIES),
            400,
        ));
    }
    match headers.get(HEADER_METHOD) {
        Some(h) if h == method => {}
        Some(h) => {
            return Err(mismatch(format!(
                "Mcp-Method header '{h}' does not match body '{method}'"
            )))
        }
        None => return Err(mismatch("missing Mcp-Method header".into())),
    }
    if let Some(member) = mirrored_name(method) {
        let body_name = params
            .as_ref()
            .and_then(|p| p.get(member))
            .and_then(|n| n.as_str())
            .unwrap_or("");
        match headers.get(HEADER_NAME).map(decode_header_value) {
            Some(Some(h)) if h == body_name => {}
            Some(Some(h)) => {
                return Err(mismatch(format!(
                    "Mcp-Name header '{h}' does not match body '{body_name}'"
                )))
            }
            Some(None) => return Err(mismatch("Mcp-Name header is not valid".into())),
            None => return Err(mismatch("missing Mcp-Name header".into())),
        }
    }
    Ok(())
}

fn mismatch(detail: String) -> RpcError {
    RpcError::header_mismatch(format!("Header mismatch: {detail}"))
}

/// Decodes a header value that may use the `=?base64?…?=` sentinel for non-ASCII text.
pub fn decode_header_value(v: &str) -> Option<String> {
    match v.strip_prefix("=?base64?").and_then(|r| r.strip_suffix("?=")) {
        Some(b64) => STANDARD.decode(b64).ok().and_then(|b| String::from_utf8(b).ok()),
        None => Some(v.to_string()),
    }
}

/// Encodes a header value, using the base64 sentinel where plain ASCII would not survive.
pub fn encode_header_value(v: &str) -> String {
    let plain = v.bytes().all(|b| (0x20..0x7f).contains(&b))
        && v.trim() == v
        && !(v.starts_with("=?base64?") && v.ends_with("?="));
    if plain {
        v.to_string()
    } else {
        format!("=?base64?{}?=", STANDARD.encode(v.as_bytes()))
    }
}

/// Legacy requests after `initialize`: the version header, when sent, must be the negotiated one.
pub fn check_legacy_version(headers: &Headers, negotiated: &str) -> Result<(), RpcError> {
    match headers.get(HEADER_PROTOCOL_VERSION) {
        None => Ok(()),
        Some(h) if h == negotiated => Ok(()),
        Some(h) => Err(RpcError::invalid_request(format!(
            "MCP-Protocol-Version '{h}' does not match the session's version '{negotiated}'"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::jsonrpc::parse_message;

    fn modern_call(name: &str) -> Message {
        parse_message(
            json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":name,"arguments":{},
                "_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",
                         "io.modelcontextprotocol/clientCapabilities":{}}}})
            .to_string()
            .as_bytes(),
        )
        .unwrap()
    }

    fn modern_headers(name: &str) -> Headers {
        Headers::new()
            .with("MCP-Protocol-Version", "2026-07-28")
            .with("Mcp-Method", "tools/call")
            .with("Mcp-Name", name)
    }

    #[test]
    fn classifies_eras() {
        let init = parse_message(br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#).unwrap();
        assert_eq!(classify_post(&Headers::new(), &init).unwrap(), PostKind::Initialize);
        let h = Headers::new().with("Mcp-Session-Id", "abc");
        assert_eq!(classify_post(&h, &init).unwrap(), PostKind::Session("abc".into()));
        let m = modern_call("echo");
        assert_eq!(
            classify_post(&modern_headers("echo"), &m).unwrap(),
            PostKind::Modern("2026-07-28".into())
        );
        let legacy = parse_message(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).unwrap();
        let e = classify_post(&Headers::new(), &legacy).unwrap_err();
        assert_eq!((e.code, e.http_status), (codes::INVALID_REQUEST, 400));
    }

    #[test]
    fn modern_header_validation() {
        let m = modern_call("echo");
        let e = classify_post(&modern_headers("other"), &m).unwrap_err();
        assert_eq!((e.code, e.http_status), (codes::HEADER_MISMATCH, 400));
        let h = Headers::new()
            .with("MCP-Protocol-Version", "2026-07-28")
            .with("Mcp-Name", "echo");
        assert_eq!(classify_post(&h, &m).unwrap_err().code, codes::HEADER_MISMATCH);
        let h = modern_headers("echo").with("MCP-Protocol-Version", "2025-11-25");
        assert_eq!(classify_post(&h, &m).unwrap_err().code, codes::HEADER_MISMATCH);
        let h = modern_headers(&encode_header_value("échο"));
        assert!(classify_post(&h, &modern_call("échο")).is_ok());
    }

    #[test]
    fn mcp_name_mirrors_the_uri_of_resources_read_only() {
        let read = parse_message(
            json!({"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"demo://a","name":"decoy",
                "_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",
                         "io.modelcontextprotocol/clientCapabilities":{}}}})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        let h = |name: &str| {
            Headers::new()
                .with("MCP-Protocol-Version", "2026-07-28")
                .with("Mcp-Method", "resources/read")
                .with("Mcp-Name", name)
        };
        assert!(classify_post(&h("demo://a"), &read).is_ok());
        assert_eq!(
            classify_post(&h("decoy"), &read).unwrap_err().code,
            codes::HEADER_MISMATCH
        );
    }

    #[test]
    fn unsupported_version_lists_supported() {
        let m = parse_message(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2099-01-01","io.modelcontextprotocol/clientCapabilities":{}}}}"#,
        )
        .unwrap();
        let h = Headers::new().with("MCP-Protocol-Version", "2099-01-01");
        let e = classify_post(&h, &m).unwrap_err();
        assert_eq!((e.code, e.http_status), (codes::UNSUPPORTED_PROTOCOL_VERSION, 400));
        assert_eq!(e.data.unwrap()["requested"], "2099-01-01");
    }

    #[test]
    fn header_body_mismatch_is_judged_before_the_version() {
        // The spec's order: the header must mirror the body (-32020) before the version is judged.
        let m = parse_message(
            br#"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"v999.0.0","io.modelcontextprotocol/clientCapabilities":{}}}}"#,
        )
        .unwrap();
        for h in [
            Headers::new().with("MCP-Protocol-Version", "2026-07-28"),
            Headers::new(),
        ] {
            let e = classify_post(&h, &m).unwrap_err();
            assert_eq!((e.code, e.http_status), (codes::HEADER_MISMATCH, 400));
        }
    }

    #[test]
    fn a_modern_initialize_is_not_a_legacy_handshake() {
        let modern_meta = parse_message(
            br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#,
        )
        .unwrap();
        let h = Headers::new()
            .with("MCP-Protocol-Version", "2026-07-28")
            .with("Mcp-Method", "initialize");
        assert_eq!(
            classify_post(&h, &modern_meta).unwrap(),
            PostKind::Modern("2026-07-28".into())
        );
        let legacy_body = parse_message(
            br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}"#,
        )
        .unwrap();
        assert!(
            classify_post(&h, &legacy_body).is_err(),
            "a modern header without modern _meta"
        );
        let legacy_header = Headers::new().with("MCP-Protocol-Version", "2025-11-25");
        assert_eq!(
            classify_post(&legacy_header, &legacy_body).unwrap(),
            PostKind::Initialize
        );
    }

    #[test]
    fn missing_capabilities_is_invalid_params_400() {
        let m = parse_message(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
        )
        .unwrap();
        let h = Headers::new()
            .with("MCP-Protocol-Version", "2026-07-28")
            .with("Mcp-Method", "tools/list");
        let e = classify_post(&h, &m).unwrap_err();
        assert_eq!((e.code, e.http_status), (codes::INVALID_PARAMS, 400));
    }

    #[test]
    fn accept_content_type_origin() {
        let ok = Headers::new().with("accept", "application/json, text/event-stream");
        assert!(check_post_accept(&ok).is_ok());
        let e = check_post_accept(&Headers::new().with("accept", "application/json")).unwrap_err();
        assert_eq!(e.http_status, 406);
        assert_eq!(
            check_content_type(&Headers::new().with("content-type", "text/plain"))
                .unwrap_err()
                .http_status,
            415
        );
        assert!(check_content_type(&Headers::new().with("content-type", "application/json; charset=utf-8")).is_ok());
        let list = vec!["http://localhost:8787".to_string()];
        let allowed = Origins {
            allowed: &list,
            loopback_any_port: false,
        };
        assert!(check_origin(&Headers::new(), allowed).is_ok());
        assert!(check_origin(&Headers::new().with("origin", "http://localhost:8787"), allowed).is_ok());
        assert_eq!(
            check_origin(&Headers::new().with("origin", "http://evil.test"), allowed)
                .unwrap_err()
                .http_status,
            403
        );
    }

    #[test]
    fn loopback_origins_on_any_port_only_in_local_development() {
        let list = vec!["https://app.example".to_string()];
        let dev = Origins {
            allowed: &list,
            loopback_any_port: true,
        };
        let prod = Origins {
            allowed: &list,
            loopback_any_port: false,
        };
        let o = |v: &str| Headers::new().with("origin", v);
        for ok in [
            "http://localhost:1234",
            "http://127.0.0.1:9",
            "http://[::1]:5",
            "https://localhost",
            "http://LOCALHOST:3",
        ] {
            assert!(check_origin(&o(ok), dev).is_ok(), "{ok}");
            assert_eq!(check_origin(&o(ok), prod).unwrap_err().http_status, 403, "{ok}");
        }
        for bad in [
            "http://localhost.evil.example",
            "http://127.0.0.1@evil.example",
            "http://evil.example#@127.0.0.1",
            "http://127.0.0.1.nip.io",
            "null",
            "file://localhost",
            "http://localhost:1/path",
            "ws://localhost:1",
        ] {
            assert_eq!(check_origin(&o(bad), dev).unwrap_err().http_status, 403, "{bad}");
        }
        assert!(check_origin(&o("https://app.example"), prod).is_ok());
    }

    #[test]
    fn cors_only_for_allowed_origins() {
        let list = vec!["http://localhost:6274".to_string()];
        let allowed = Origins {
            allowed: &list,
            loopback_any_port: false,
        };
        let ok = Headers::new().with("origin", "http://localhost:6274");
        assert_eq!(preflight(&ok, allowed).status, 204);
        assert!(cors_headers(&ok, allowed)
            .iter()
            .any(|(k, v)| *k == "access-control-expose-headers" && v.contains("mcp-session-id")));
        let evil = Headers::new().with("origin", "http://evil.test");
        assert_eq!(preflight(&evil, allowed).status, 403);
        assert!(cors_headers(&evil, allowed).is_empty());
        assert!(cors_headers(&Headers::new(), allowed).is_empty());
    }

    #[test]
    fn header_value_sentinel_round_trip() {
        for v in ["plain", "naïve", " padded ", "=?base64?x?="] {
            assert_eq!(decode_header_value(&encode_header_value(v)).unwrap(), v);
        }
        assert_eq!(encode_header_value("plain"), "plain");
    }
}
