//! JSON-RPC 2.0 envelopes: parsing what a client sent, and building responses and errors.
//!
//! Messages are kept as `serde_json::Value` so that a proxy passes through fields it does not
//! know about unchanged; only the envelope is checked here.
use serde_json::{json, Map, Value};

use super::error::RpcError;

/// A JSON-RPC request id: a string or an integer (never null for requests).
pub type RequestId = Value;

/// One JSON-RPC message, classified by shape.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request {
        id: RequestId,
        method: String,
        params: Option<Value>,
    },
    Notification {
        method: String,
        params: Option<Value>,
    },
    /// A response or error sent by the client (e.g. to a server-initiated request).
    Response {
        id: RequestId,
        body: Value,
    },
}

impl Message {
    pub fn method(&self) -> Option<&str> {
        match self {
            Message::Request { method, .. } | Message::Notification { method, .. } => Some(method),
            Message::Response { .. } => None,
        }
    }

    pub fn id(&self) -> Option<&RequestId> {
        match self {
            Message::Request { id, .. } | Message::Response { id, .. } => Some(id),
            Message::Notification { .. } => None,
        }
    }

    pub fn params(&self) -> Option<&Value> {
        match self {
            Message::Request { params, .. } | Message::Notification { params, .. } => params.as_ref(),
            Message::Response { .. } => None,
        }
    }

    /// `params._meta`, if present and an object.
    pub fn meta(&self) -> Option<&Map<String, Value>> {
        self.params()?.get("_meta")?.as_object()
    }

    /// Serializes back to the wire form.
    pub fn to_value(&self) -> Value {
        match self {
            Message::Request { id, method, params } => {
                let mut v = json!({"jsonrpc": "2.0", "id": id, "method": method});
                if let Some(p) = params {
                    v["params"] = p.clone();
                }
                v
            }
            Message::Notification { method, params } => {
                let mut v = json!({"jsonrpc": "2.0", "method": method});
                if let Some(p) = params {
                    v["params"] = p.clone();
                }
                v
            }
            Message::Response { body, .. } => body.clone(),
        }
    }
}

/// Parses one HTTP body into a single JSON-RPC message.
///
/// Batches were removed from MCP in 2025-06-18; an array is answered with "invalid request" rather
/// than half-processed.
pub fn parse_message(body: &[u8]) -> Result<Message, RpcError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| RpcError::parse(format!("invalid JSON: {e}")))?;
    classify(value)
}

/// Classifies an already-parsed JSON value as a JSON-RPC message.
pub fn classify(value: Value) -> Result<Message, RpcError> {
    let Value::Object(mut obj) = value else {
        return Err(RpcError::invalid_request(
            "expected a single JSON-RPC message object (batches are not supported)",
        ));
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(RpcError::invalid_request("\"jsonrpc\" must be \"2.0\""));
    }
    let id = obj.remove("id");
    if let Some(id) = &id {
        if !(id.is_string() || id.is_i64() || id.is_u64()) {
            return Err(RpcError::invalid_request("\"id\" must be a string or an integer"));
        }
    }
    match obj.remove("method") {
        Some(Value::String(method)) => {
            let params = obj.remove("params");
            if let Some(p) = &params {
                if !(p.is_object() || p.is_array()) {
                    return Err(RpcError::invalid_request("\"params\" must be an object"));
                }
            }
            Ok(match id {
                Some(id) => Message::Request { id, method, params },
                None => Message::Notification { method, params },
            })
        }
        Some(_) => Err(RpcError::invalid_request("\"method\" must be a string")),
        None => {
            let Some(id) = id else {
                return Err(RpcError::invalid_request("message has neither \"method\" nor \"id\""));
            };
            if obj.contains_key("result") == obj.contains_key("error") {
                return Err(RpcError::invalid_request(
                    "a response carries exactly one of \"result\" or \"error\"",
                ));
            }
            let mut body = Value::Object(obj);
            body["id"] = id.clone();
            body["jsonrpc"] = json!("2.0");
            Ok(Message::Response { id, body })
        }
    }
}

/// A success response.
pub fn result(id: &RequestId, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// An error response; `id` is null when the request could not be read far enough to know it.
pub fn error_response(id: Option<&RequestId>, err: &RpcError) -> Value {
    let mut e = json!({"code": err.code, "message": err.message});
    if let Some(data) = &err.data {
        e["data"] = data.clone();
    }
    json!({"jsonrpc": "2.0", "id": id.cloned().unwrap_or(Value::Null), "error": e})
}

/// Whether a JSON value is a JSON-RPC response (result or error) to the request `id`.
pub fn is_response_to(value: &Value, id: &RequestId) -> bool {
    value.get("method").is_none()
        && value.get("id") == Some(id)
        && (value.get("result").is_some() || value.get("error").is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::error::codes;

    #[test]
    fn classifies_requests_notifications_and_responses() {
        let m = parse_message(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).unwrap();
        assert_eq!(m.method(), Some("tools/list"));
        assert_eq!(m.id(), Some(&json!(1)));
        let n = parse_message(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert!(matches!(n, Message::Notification { .. }));
        let r = parse_message(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap();
        assert!(matches!(r, Message::Response { .. }));
        assert_eq!(r.to_value()["id"], json!("a"));
    }

    #[test]
    fn rejects_malformed_messages_with_the_right_codes() {
        assert_eq!(parse_message(b"{nope").unwrap_err().code, codes::PARSE_ERROR);
        for bad in [
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
            r#"{"id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":5}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#,
            r#"{"jsonrpc":"2.0"}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":1,"error":{}}"#,
            r#""hello""#,
        ] {
            assert_eq!(
                parse_message(bad.as_bytes()).unwrap_err().code,
                codes::INVALID_REQUEST,
                "{bad}"
            );
        }
    }

    #[test]
    fn numbers_are_forwarded_exactly() {
        // Each of these came back one unit in the last place off with serde_json's default
        // float parser, so the upstream received a different argument than the client sent.
        for x in [
            "7.633352343895227e-97",
            "4.401198101279684e155",
            "-4.113666121228864e-169",
        ] {
            let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"x":{x}}}}}"#);
            let m = parse_message(body.as_bytes()).unwrap();
            let sent: f64 = x.parse().unwrap();
            assert_eq!(m.params().unwrap()["x"].as_f64(), Some(sent), "{x}");
            let forwarded = m.to_value().to_string();
            let again: Value = serde_json::from_str(&forwarded).unwrap();
            assert_eq!(again["params"]["x"].as_f64(), Some(sent), "{x}");
        }
    }

    #[test]
    fn builds_errors_with_data_and_null_id() {
        let e = RpcError::invalid_params("unknown tool: x");
        let v = error_response(None, &e);
        assert_eq!(v["id"], Value::Null);
        assert_eq!(v["error"]["code"], json!(codes::INVALID_PARAMS));
        assert!(is_response_to(&result(&json!(7), json!({})), &json!(7)));
        assert!(!is_response_to(&result(&json!(7), json!({})), &json!(8)));
    }
}
