//! The admin layer's one mapping from `ApiError` to what an admin sees: an RFC 9457 problem
//! document. Client-facing text is short and safe; causes go to the log.
use serde_json::json;

use crate::http::HttpResponse;
use crate::outbound::UpstreamError;
use crate::policy::AuthError;

use super::ApiError;

/// Base of the `type` URIs of problem documents (documented in docs/admin-api.md).
pub const PROBLEM_TYPE_BASE: &str = "https://mcp-gateway.dev/problems/";

/// Maps an admin API error to its problem document.
pub fn problem(e: &ApiError) -> HttpResponse {
    let (status, kind, title) = match e {
        ApiError::Unauthorized(_) => (401, "unauthorized", "Unauthorized"),
        ApiError::Forbidden(_) => (403, "forbidden", "Forbidden"),
        ApiError::NotFound(_) => (404, "not-found", "Not Found"),
        ApiError::MethodNotAllowed => (405, "method-not-allowed", "Method Not Allowed"),
        ApiError::Validation(_) | ApiError::Invalid(_) => (422, "validation", "Invalid request"),
        ApiError::BadJson(_) => (400, "bad-json", "Malformed JSON"),
        ApiError::BadYaml(_) => (400, "bad-yaml", "Malformed YAML"),
        ApiError::BadRequest(_) => (400, "bad-request", "Bad Request"),
        ApiError::TooLarge => (413, "too-large", "Request body too large"),
        ApiError::UnsupportedMediaType(_) => (415, "unsupported-media-type", "Unsupported Media Type"),
        ApiError::Conflict(_) => (409, "conflict", "Conflict"),
        ApiError::Upstream { .. } => (502, "upstream-unavailable", "Upstream server unavailable"),
        ApiError::Store(_) => (500, "internal", "Internal error"),
    };
    let detail = match e {
        ApiError::Store(s) => {
            tracing::error!(error = %s, "storage failure");
            "an internal error occurred".to_string()
        }
        ApiError::Upstream { slug, cause } => {
            tracing::warn!(upstream = %slug, cause = %cause, "sync failed");
            format!("could not read the catalog of '{slug}': {}", safe_upstream_text(cause))
        }
        ApiError::Unauthorized(AuthError::AdminDisabled) => {
            "the admin API is disabled: set the ADMIN_TOKEN secret".into()
        }
        ApiError::Unauthorized(_) => "a valid admin bearer token is required".into(),
        other => other.to_string(),
    };
    let mut body = json!({
        "type": format!("{PROBLEM_TYPE_BASE}{kind}"),
        "title": title,
        "status": status,
        "detail": detail,
    });
    // Every error of a document, each naming its path.
    if let ApiError::Invalid(errors) = e {
        body["errors"] = json!(errors);
    }
    let mut resp = HttpResponse::typed(status, "application/problem+json", body.to_string().into_bytes());
    if status == 401 {
        resp.headers.set("www-authenticate", "Bearer");
    }
    resp
}

/// Upstream failure text for admins: the category and the upstream's own words about itself
/// (never our credentials, which are not part of these errors).
fn safe_upstream_text(e: &UpstreamError) -> String {
    e.to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::store::StoreError;

    /// One error of every kind (the match below fails to compile when a kind is added).
    pub(crate) fn one_of_each() -> Vec<ApiError> {
        let all = vec![
            ApiError::Unauthorized(AuthError::Missing),
            ApiError::Forbidden("f".into()),
            ApiError::NotFound("n".into()),
            ApiError::MethodNotAllowed,
            ApiError::Validation("v".into()),
            ApiError::BadRequest("b".into()),
            ApiError::BadJson("j".into()),
            ApiError::TooLarge,
            ApiError::UnsupportedMediaType("application/json"),
            ApiError::BadYaml("y".into()),
            ApiError::Conflict("c".into()),
            ApiError::Upstream {
                slug: "s".into(),
                cause: UpstreamError::Status(503),
            },
            ApiError::Store(StoreError::Backend("x".into())),
        ];
        for e in &all {
            match e {
                ApiError::Unauthorized(_)
                | ApiError::Forbidden(_)
                | ApiError::NotFound(_)
                | ApiError::MethodNotAllowed
                | ApiError::Validation(_)
                // Validation's type, with every error listed in `errors` (not in `all`: the
                // kinds there have a type each).
                | ApiError::Invalid(_)
                | ApiError::BadRequest(_)
                | ApiError::BadJson(_)
                | ApiError::TooLarge
                | ApiError::UnsupportedMediaType(_)
                | ApiError::BadYaml(_)
                | ApiError::Conflict(_)
                | ApiError::Upstream { .. }
                | ApiError::Store(_) => {}
            }
        }
        all
    }

    #[test]
    fn each_kind_has_its_own_problem_type() {
        let mut seen = HashSet::new();
        for e in one_of_each() {
            let r = problem(&e);
            assert_eq!(r.headers.get("content-type"), Some("application/problem+json"));
            let body: serde_json::Value = serde_json::from_slice(r.bytes().unwrap()).unwrap();
            assert_eq!(body["status"], r.status);
            let t = body["type"].as_str().unwrap().to_string();
            assert!(t.starts_with(PROBLEM_TYPE_BASE), "{t}");
            assert!(seen.insert(t.clone()), "{t} names two kinds of error");
        }
    }
}
