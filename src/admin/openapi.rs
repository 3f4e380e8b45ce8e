//! The admin API's contract: the OpenAPI 3.1 document (`openapi.json` beside this file, served
//! at `GET /admin/v1/openapi.json`) and `ROUTES`, every route `dispatch` serves. Tests hold the
//! two against each other and against the dispatcher (`e2e_tests::routes`), so neither drifts.
use crate::http::{HttpResponse, Method};

/// The document as kept in the repository (JSON, so the Worker serves it as it is).
pub const DOCUMENT: &str = include_str!("openapi.json");

/// Every (method, path template below `/admin/v1`) the dispatcher serves. A new route needs a
/// row here and an operation in `openapi.json`; the tests name whichever is missing.
pub const ROUTES: &[(Method, &str)] = &[
    (Method::Get, "/openapi.json"),
    // Configuration as code.
    (Method::Get, "/config"),
    (Method::Post, "/config"),
    // Servers, their catalogs and credentials.
    (Method::Get, "/servers"),
    (Method::Post, "/servers"),
    (Method::Get, "/servers/{slug}"),
    (Method::Patch, "/servers/{slug}"),
    (Method::Delete, "/servers/{slug}"),
    (Method::Post, "/servers/{slug}/sync"),
    (Method::Get, "/servers/{slug}/connections"),
    (Method::Get, "/servers/{slug}/tools"),
    (Method::Post, "/servers/{slug}/tools/{tool}/approve"),
    (Method::Get, "/servers/{slug}/tools/{tool}/principals"),
    (Method::Get, "/servers/{slug}/credentials"),
    (Method::Put, "/servers/{slug}/credentials"),
    (Method::Delete, "/servers/{slug}/credentials"),
    (Method::Post, "/vault/rotate"),
    (Method::Get, "/usage"),
    // Virtual servers and API keys.
    (Method::Get, "/virtual-servers"),
    (Method::Post, "/virtual-servers"),
    (Method::Get, "/virtual-servers/{slug}"),
    (Method::Patch, "/virtual-servers/{slug}"),
    (Method::Delete, "/virtual-servers/{slug}"),
    (Method::Get, "/api-keys"),
    (Method::Post, "/api-keys"),
    (Method::Delete, "/api-keys/{id}"),
    // Audit trail, policies, approvals.
    (Method::Get, "/audit"),
    (Method::Get, "/audit/verify"),
    (Method::Get, "/policies"),
    (Method::Post, "/policies"),
    (Method::Post, "/policies/test"),
    (Method::Get, "/policies/{id}"),
    (Method::Patch, "/policies/{id}"),
    (Method::Delete, "/policies/{id}"),
    (Method::Get, "/policies/{id}/counters"),
    (Method::Get, "/approvals"),
    (Method::Get, "/approvals/{id}"),
    (Method::Post, "/approvals/{id}/approve"),
    (Method::Post, "/approvals/{id}/deny"),
    // The directory.
    (Method::Get, "/orgs"),
    (Method::Post, "/orgs"),
    (Method::Get, "/orgs/{id}"),
    (Method::Patch, "/orgs/{id}"),
    (Method::Delete, "/orgs/{id}"),
    (Method::Get, "/workspaces"),
    (Method::Post, "/workspaces"),
    (Method::Get, "/workspaces/{id}"),
    (Method::Patch, "/workspaces/{id}"),
    (Method::Delete, "/workspaces/{id}"),
    (Method::Get, "/workspaces/{id}/members"),
    (Method::Post, "/workspaces/{id}/members"),
    (Method::Delete, "/workspaces/{id}/members/{principal_id}"),
    (Method::Get, "/teams"),
    (Method::Post, "/teams"),
    (Method::Get, "/teams/{id}"),
    (Method::Patch, "/teams/{id}"),
    (Method::Delete, "/teams/{id}"),
    (Method::Get, "/teams/{id}/members"),
    (Method::Post, "/teams/{id}/members"),
    (Method::Delete, "/teams/{id}/members/{principal_id}"),
    (Method::Get, "/users"),
    (Method::Post, "/users"),
    (Method::Get, "/users/{id}"),
    (Method::Patch, "/users/{id}"),
    (Method::Delete, "/users/{id}"),
    (Method::Get, "/users/{id}/access"),
    (Method::Get, "/agents"),
    (Method::Post, "/agents"),
    (Method::Get, "/agents/{id}"),
    (Method::Patch, "/agents/{id}"),
    (Method::Delete, "/agents/{id}"),
    (Method::Get, "/agents/{id}/access"),
    (Method::Get, "/grants"),
    (Method::Post, "/grants"),
    (Method::Delete, "/grants/{id}"),
    (Method::Get, "/identity-providers"),
    (Method::Post, "/identity-providers"),
    (Method::Delete, "/identity-providers/{id}"),
    (Method::Get, "/roles"),
    (Method::Post, "/roles"),
    (Method::Delete, "/roles/{id}"),
];

/// The methods `ROUTES` lists for a path below `/admin/v1` (concrete, e.g. `/servers/demo`;
/// empty: no route has this shape), in the table's order, without repeats. As in OpenAPI, the
/// most concrete template matching wins: `/policies/test` is that action's path, not a policy id.
pub fn allowed(path: &str) -> Vec<Method> {
    let placeholders = |t: &str| t.matches('{').count();
    let best = ROUTES
        .iter()
        .filter(|(_, t)| matches(path, t))
        .map(|(_, t)| placeholders(t))
        .min();
    let mut methods = Vec::new();
    for (m, template) in ROUTES {
        if matches(path, template) && Some(placeholders(template)) == best && !methods.contains(m) {
            methods.push(*m);
        }
    }
    methods
}

/// The `Allow` header of a 405 for this path (RFC 9110: the methods the resource supports).
pub fn allow_header(path: &str) -> String {
    allowed(path).iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ")
}

/// Whether a concrete path is an instance of a template (`{name}` matches one segment).
fn matches(path: &str, template: &str) -> bool {
    let mut p = path.split('/');
    let mut t = template.split('/');
    loop {
        match (p.next(), t.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a == b || (b.starts_with('{') && !a.is_empty()) => {}
            _ => return false,
        }
    }
}

/// `GET /admin/v1/openapi.json`.
pub fn serve() -> HttpResponse {
    HttpResponse::typed(200, "application/json", DOCUMENT.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;

    /// (METHOD, path) of every operation the document describes.
    pub(crate) fn documented() -> BTreeSet<(String, String)> {
        let doc: Value = serde_json::from_str(DOCUMENT).expect("openapi.json is JSON");
        let mut ops = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                    ops.insert((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
        ops
    }

    #[test]
    fn the_document_is_openapi_3_1_served_below_the_admin_prefix() {
        let doc: Value = serde_json::from_str(DOCUMENT).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["servers"][0]["url"], crate::admin::PREFIX);
        let r = serve();
        assert_eq!(r.status, 200);
        assert_eq!(r.headers.get("content-type"), Some("application/json"));
    }

    #[test]
    fn every_route_is_documented_and_every_operation_routed() {
        let table: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| (m.as_str().to_string(), p.to_string()))
            .collect();
        assert_eq!(table.len(), ROUTES.len(), "ROUTES lists a route twice");
        let doc = documented();
        let undocumented: Vec<_> = table.difference(&doc).collect();
        let unrouted: Vec<_> = doc.difference(&table).collect();
        assert!(
            undocumented.is_empty(),
            "routes missing from openapi.json: {undocumented:?}"
        );
        assert!(unrouted.is_empty(), "operations missing from ROUTES: {unrouted:?}");
    }

    #[test]
    fn allowed_methods_follow_the_table() {
        assert_eq!(allowed("/servers/demo"), [Method::Get, Method::Patch, Method::Delete]);
        // `/policies/test` is an action, though it has the shape of `/policies/{id}`.
        assert_eq!(allow_header("/policies/test"), "POST");
        assert_eq!(allow_header("/policies/pol_1"), "GET, PATCH, DELETE");
        assert!(allowed("/servers/demo/nothing").is_empty());
        assert!(allowed("/servers//sync").is_empty());
        assert!(allowed("/nothing").is_empty());
    }

    #[test]
    fn every_problem_kind_is_documented() {
        let doc: Value = serde_json::from_str(DOCUMENT).unwrap();
        let types: BTreeSet<&str> = doc["components"]["schemas"]["Problem"]["properties"]["type"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["const"].as_str())
            .collect();
        for e in crate::admin::error::tests::one_of_each() {
            let r = crate::admin::error::problem(&e);
            let body: Value = serde_json::from_slice(r.bytes().unwrap()).unwrap();
            let t = body["type"].as_str().unwrap();
            assert!(types.contains(t), "{t} is not in Problem.type");
        }
    }
}
