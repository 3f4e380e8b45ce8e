//! The dispatcher against `admin::openapi::ROUTES` (which a unit test holds equal to the OpenAPI
//! document): every listed route reaches its handler, and no method or path the list leaves
//! out is served — an unlisted method on a listed path answers 405 with `Allow` naming the
//! listed ones, an unlisted path 404 "no admin resource". Each probe runs on a fresh
//! fixture holding one of everything (an organization, workspace, team, user, agent, server,
//! virtual server and policy), so a probe that removes something affects no other.
use super::*;
use crate::admin::openapi::ROUTES;

const METHODS: [Method; 5] = [Method::Get, Method::Post, Method::Put, Method::Patch, Method::Delete];

/// The ids the fixture's objects got.
struct Seeded {
    org: String,
    workspace: String,
    team: String,
    user: String,
    agent: String,
    policy: String,
}

impl Fixture {
    fn call(&self, method: Method, path: &str) -> (u16, Value) {
        let (status, body, _) = self.call_with_headers(method, path);
        (status, body)
    }

    fn call_with_headers(&self, method: Method, path: &str) -> (u16, Value, Headers) {
        let with_body = matches!(method, Method::Post | Method::Put | Method::Patch);
        let mut headers = Headers::new().with("authorization", "Bearer root");
        if with_body {
            headers = headers.with("content-type", "application/json");
        }
        let req = HttpRequest {
            method,
            path: path.into(),
            query: None,
            headers,
            body: if with_body { b"{}".to_vec() } else { Vec::new() },
        };
        let r = block_on(crate::admin::handle(&self.svc(), &req));
        let v = r
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        (r.status, v, r.headers)
    }

    fn make(&self, path: &str, body: Value) -> String {
        let r = self.admin(Method::Post, path, body);
        let v: Value = serde_json::from_slice(r.bytes().unwrap()).unwrap();
        assert_eq!(r.status, 201, "{path}: {v}");
        v["id"].as_str().unwrap_or_default().to_string()
    }

    fn seed(&self) -> Seeded {
        self.register();
        let org = self.make("/admin/v1/orgs", json!({"name": "o"}));
        let workspace = self.make("/admin/v1/workspaces", json!({"name": "w", "parent_id": org}));
        let team = self.make("/admin/v1/teams", json!({"name": "t", "parent_id": workspace}));
        let user = self.make("/admin/v1/users", json!({"name": "u", "parent_id": org}));
        let agent = self.make("/admin/v1/agents", json!({"name": "a", "parent_id": org}));
        self.make(
            "/admin/v1/virtual-servers",
            json!({"slug": "v", "name": "V", "tools": [{"server": "fake", "tool": "echo"}]}),
        );
        let policy = self.make(
            "/admin/v1/policies",
            json!({"name": "p", "rules": [{"kind": "guardrail", "on": ["arguments"], "detect": ["email"], "action": "redact"}]}),
        );
        Seeded {
            org,
            workspace,
            team,
            user,
            agent,
            policy,
        }
    }
}

/// A template with the fixture's ids in it (ids of things it does not hold: any).
fn concrete(template: &str, s: &Seeded) -> String {
    let collection = template.split('/').nth(1).unwrap_or_default();
    let id = match collection {
        "orgs" => s.org.as_str(),
        "workspaces" => &s.workspace,
        "teams" => &s.team,
        "users" => &s.user,
        "agents" => &s.agent,
        "policies" => &s.policy,
        "api-keys" => "key_a",
        _ => "unknown",
    };
    let slug = if collection == "virtual-servers" { "v" } else { "fake" };
    let path = template
        .replace("{id}", id)
        .replace("{slug}", slug)
        .replace("{tool}", "echo")
        .replace("{principal_id}", &s.user);
    format!("{}{path}", crate::admin::PREFIX)
}

/// Whether a concrete path (below the prefix) is an instance of a template.
fn instance_of(path: &str, template: &str) -> bool {
    let (p, t): (Vec<_>, Vec<_>) = (path.split('/').collect(), template.split('/').collect());
    p.len() == t.len() && p.iter().zip(&t).all(|(a, b)| a == b || b.starts_with('{'))
}

/// The listed routes a concrete path belongs to: those of its most concrete matching template
/// (as in OpenAPI, `/policies/test` is not an instance of `/policies/{id}`).
fn routes_of(path: &str) -> Vec<(Method, &'static str)> {
    let holes = |t: &str| t.matches('{').count();
    let matching: Vec<_> = ROUTES.iter().filter(|(_, t)| instance_of(path, t)).copied().collect();
    let best = matching.iter().map(|(_, t)| holes(t)).min();
    matching.into_iter().filter(|(_, t)| Some(holes(t)) == best).collect()
}

fn unrouted(status: u16, body: &Value) -> bool {
    status == 405
        || (status == 404
            && body["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("no admin resource at")))
}

#[test]
fn every_listed_route_reaches_its_handler() {
    for (method, template) in ROUTES {
        let f = Fixture::new();
        let s = f.seed();
        let path = concrete(template, &s);
        let (status, body) = f.call(*method, &path);
        assert!(
            !unrouted(status, &body),
            "{} {path} is listed but not routed: {status} {body}",
            method.as_str()
        );
    }
}

#[test]
fn nothing_unlisted_is_served() {
    // Every listed path, and the sub-resources one kind of directory entry has tried on the
    // others, with every method.
    let mut templates: Vec<String> = ROUTES.iter().map(|(_, t)| t.to_string()).collect();
    for c in ["orgs", "workspaces", "teams", "users", "agents"] {
        for sub in ["members", "members/{principal_id}", "access"] {
            templates.push(format!("/{c}/{{id}}/{sub}"));
        }
    }
    templates.extend(["/servers/{slug}/tools/{tool}".into(), "/vault".into(), "/".into()]);
    templates.sort();
    templates.dedup();
    let mut probed = 0;
    for template in &templates {
        for method in METHODS {
            let listed = |path: &str| routes_of(path).iter().any(|(m, _)| *m == method);
            let f = Fixture::new();
            let s = f.seed();
            let path = concrete(template, &s);
            let below = path.strip_prefix(crate::admin::PREFIX).unwrap();
            if listed(below) {
                continue;
            }
            probed += 1;
            let (status, body, headers) = f.call_with_headers(method, &path);
            let methods: Vec<&str> = routes_of(below).iter().map(|(m, _)| m.as_str()).collect();
            if methods.is_empty() {
                assert!(
                    status == 404 && unrouted(status, &body),
                    "{} {path} is not listed, yet served: {status} {body}",
                    method.as_str()
                );
            } else {
                assert_eq!(status, 405, "{} {path}: {body}", method.as_str());
                let mut allow: Vec<&str> = headers.get("allow").unwrap_or_default().split(", ").collect();
                let mut want = methods.clone();
                allow.sort();
                want.sort();
                want.dedup();
                assert_eq!(allow, want, "Allow of {path}");
            }
        }
    }
    assert!(probed > 100, "only {probed} probes");
}
