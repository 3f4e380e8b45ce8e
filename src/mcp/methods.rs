//! Which client→server methods exist in each era: one allowlist per era, matched byte for byte.
//! Anything else is refused at the gateway (-32601) and never forwarded, so no spelling of a
//! method (`TOOLS/CALL`, `tools/call `, `tools.call`, a trailing NUL) can slip past the checks
//! that are keyed on the exact name.
use super::error::{codes, RpcError};
use super::jsonrpc::Message;
use super::version::Era;

/// Requests of both eras that the gateway relays to an upstream as they are.
pub const RELAYED_REQUESTS: &[&str] = &[
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "prompts/list",
    "prompts/get",
    "completion/complete",
];

/// Requests only a 2026-07-28 client may send over streamable HTTP (besides the relayed ones).
/// `initialize`, `ping`, `logging/setLevel` and `resources/(un)subscribe` were removed in this
/// revision.
pub const MODERN_ONLY_REQUESTS: &[&str] = &["server/discover", "subscriptions/listen"];

/// 2026-07-28 defines no client notifications over HTTP; `notifications/cancelled` (stdio's) is
/// accepted and has no effect, since closing the stream is the cancellation.
pub const MODERN_NOTIFICATIONS: &[&str] = &["notifications/cancelled"];

/// Requests only a client of the legacy revisions (2024-11-05 … 2025-11-25) may send
/// (besides the relayed ones).
pub const LEGACY_ONLY_REQUESTS: &[&str] = &[
    "initialize",
    "ping",
    "resources/subscribe",
    "resources/unsubscribe",
    "logging/setLevel",
    "tasks/get",
    "tasks/result",
    "tasks/list",
    "tasks/cancel",
];

/// Client notifications of the legacy revisions.
pub const LEGACY_NOTIFICATIONS: &[&str] = &[
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
];

/// Whether `msg` is a message a client of `era` may send. Responses (to server→client
/// requests) carry no method and pass; their routing is checked where they are relayed.
pub fn check(era: Era, msg: &Message) -> Result<(), RpcError> {
    let (requests, notifications) = match era {
        Era::Modern => (MODERN_ONLY_REQUESTS, MODERN_NOTIFICATIONS),
        Era::Legacy => (LEGACY_ONLY_REQUESTS, LEGACY_NOTIFICATIONS),
    };
    let known = |m: &str| RELAYED_REQUESTS.contains(&m) || requests.contains(&m);
    match msg {
        Message::Request { method, .. } if known(method) => Ok(()),
        Message::Notification { method, .. } if notifications.contains(&method.as_str()) => Ok(()),
        Message::Response { .. } => Ok(()),
        Message::Request { method, .. } => Err(not_found(era, method)),
        // An unknown notification cannot be accepted: an HTTP error status, no id to answer.
        Message::Notification { method, .. } => Err(RpcError::new(
            codes::METHOD_NOT_FOUND,
            format!("method not found: {}", printable(method)),
            400,
        )),
    }
}

/// -32601 as each era carries it: HTTP 404 in 2026-07-28 (the spec's rule for methods a server
/// does not implement), HTTP 200 on a legacy session (a JSON-RPC error to a delivered request).
fn not_found(era: Era, method: &str) -> RpcError {
    let status = match era {
        Era::Modern => 404,
        Era::Legacy => 200,
    };
    RpcError::new(
        codes::METHOD_NOT_FOUND,
        format!("method not found: {}", printable(method)),
        status,
    )
}

/// The method name as it may be echoed: control characters escaped, length capped.
fn printable(method: &str) -> String {
    const MAX_ECHOED_CHARS: usize = 64;
    method
        .chars()
        .take(MAX_ECHOED_CHARS)
        .flat_map(char::escape_debug)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::jsonrpc::parse_message;
    use serde_json::json;

    fn req(method: &str) -> Message {
        parse_message(
            json!({"jsonrpc": "2.0", "id": 1, "method": method})
                .to_string()
                .as_bytes(),
        )
        .unwrap()
    }

    fn note(method: &str) -> Message {
        parse_message(json!({"jsonrpc": "2.0", "method": method}).to_string().as_bytes()).unwrap()
    }

    #[test]
    fn exact_names_only_in_both_eras() {
        for era in [Era::Legacy, Era::Modern] {
            assert!(check(era, &req("tools/call")).is_ok());
            for bad in [
                "tools/call ",
                "TOOLS/CALL",
                "tools.call",
                "tools/call\u{0}",
                " tools/call",
                "Tools/Call",
                "",
            ] {
                let e = check(era, &req(bad)).unwrap_err();
                assert_eq!(e.code, codes::METHOD_NOT_FOUND, "{bad:?}");
                assert!(!e.message.contains('\u{0}'));
            }
        }
    }

    #[test]
    fn removed_methods_are_unknown_to_the_modern_era() {
        for m in [
            "initialize",
            "ping",
            "logging/setLevel",
            "resources/subscribe",
            "resources/unsubscribe",
        ] {
            let e = check(Era::Modern, &req(m)).unwrap_err();
            assert_eq!((e.code, e.http_status), (codes::METHOD_NOT_FOUND, 404), "{m}");
            assert!(check(Era::Legacy, &req(m)).is_ok(), "{m}");
        }
        for m in ["server/discover", "subscriptions/listen"] {
            assert!(check(Era::Modern, &req(m)).is_ok());
            assert_eq!(check(Era::Legacy, &req(m)).unwrap_err().http_status, 200, "{m}");
        }
    }

    #[test]
    fn notifications_and_responses() {
        assert!(check(Era::Legacy, &note("notifications/initialized")).is_ok());
        assert_eq!(
            check(Era::Modern, &note("notifications/initialized"))
                .unwrap_err()
                .http_status,
            400
        );
        assert_eq!(
            check(Era::Legacy, &note("notifications/Initialized"))
                .unwrap_err()
                .http_status,
            400
        );
        let resp = parse_message(br#"{"jsonrpc":"2.0","id":"s1","result":{}}"#).unwrap();
        assert!(check(Era::Legacy, &resp).is_ok());
    }
}
