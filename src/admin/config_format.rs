//! The two spellings of a configuration document: JSON, and YAML (`Content-Type:
//! application/yaml` on a `POST`; `?format=yaml` or `Accept: application/yaml` on a `GET`).
//! Either way the document is the same JSON value underneath (docs/config-as-code.md).
use serde_json::Value;

use crate::http::{HttpRequest, HttpResponse};

use super::{ApiError, ApiResult, MAX_ADMIN_BODY_BYTES};

/// The media type of YAML documents (RFC 9512); the older spellings are accepted too.
pub const YAML: &str = "application/yaml";
const YAML_ALIASES: [&str; 3] = [YAML, "application/x-yaml", "text/yaml"];

fn media_type(v: &str) -> String {
    v.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// A request body as a JSON value, read as JSON or YAML by its `Content-Type`.
pub fn read(req: &HttpRequest) -> Result<Value, ApiError> {
    let ct = media_type(req.headers.get("content-type").unwrap_or(""));
    if !YAML_ALIASES.contains(&ct.as_str()) {
        return super::body(req);
    }
    if req.body.len() > MAX_ADMIN_BODY_BYTES {
        return Err(ApiError::TooLarge);
    }
    let text =
        std::str::from_utf8(&req.body).map_err(|_| ApiError::BadRequest("the YAML document is not UTF-8".into()))?;
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| ApiError::BadRequest(format!("the YAML document does not parse: {e}")))
}

/// Whether the caller asked for YAML: `?format=yaml`, or an `Accept` naming YAML and not JSON.
fn wants_yaml(req: &HttpRequest) -> bool {
    let format = req
        .query
        .as_deref()
        .map(|q| url::form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "format" && v == "yaml"))
        .unwrap_or(false);
    let accept = req.headers.get("accept").unwrap_or("");
    let types: Vec<String> = accept.split(',').map(media_type).collect();
    format
        || (types.iter().any(|t| YAML_ALIASES.contains(&t.as_str())) && !types.iter().any(|t| t == "application/json"))
}

/// A document as the caller asked for it.
pub fn answer(req: &HttpRequest, doc: &impl serde::Serialize) -> ApiResult {
    if !wants_yaml(req) {
        return super::json(200, doc);
    }
    let text =
        serde_saphyr::to_string(doc).map_err(|e| ApiError::Store(crate::store::StoreError::Backend(e.to_string())))?;
    Ok(HttpResponse::typed(200, YAML, text.into_bytes()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn yaml_reads_and_writes_the_same_document_as_json() {
        let doc = json!({"version": 1, "org": "org_a", "servers": [{"slug": "a", "name": "A: the first", "url": "https://a.example/mcp", "timeout_ms": 5000}],
            "policies": [{"name": "p", "scope": {}, "rules": [{"kind": "block", "when": {"arg": "/path", "matches": "^/etc/"}, "action": "deny"}]}]});
        let text = serde_saphyr::to_string(&doc).unwrap();
        assert_eq!(serde_saphyr::from_str::<serde_json::Value>(&text).unwrap(), doc);
        let hand = "version: 1\norg: org_a\nservers:\n  - slug: a\n    name: 'A: the first'\n    url: https://a.example/mcp\n    timeout_ms: 5000\n";
        let read: serde_json::Value = serde_saphyr::from_str(hand).unwrap();
        assert_eq!(read["servers"], doc["servers"]);
        assert!(serde_saphyr::from_str::<serde_json::Value>("a: [unclosed").is_err());
    }
}
