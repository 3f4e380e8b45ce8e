//! The approvals admin API end to end on the memory backends: who lists and decides (org
//! admins and approvers of the organization, the bootstrap admin), what others get (viewers
//! 403, another organization 404 exactly as unknown), one decision per request (409), no
//! self-approval, and a decision recorded in the audit trail.
use super::*;
use crate::store::approvals::{ApprovalBinding, Approvals, NewApproval, PENDING_TTL_MS};

struct Org {
    id: String,
    admin_key: String,
    approver: String,
    approver_key: String,
    viewer_key: String,
}

impl Fixture {
    fn admin_with(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (path.to_string(), None),
        };
        let mut headers = Headers::new().with("authorization", format!("Bearer {token}"));
        if body.is_some() {
            headers = headers.with("content-type", "application/json");
        }
        let req = HttpRequest {
            method,
            path,
            query,
            headers,
            body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
        };
        let r = block_on(crate::admin::handle(&self.svc(), &req));
        let v = r
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        (r.status, v)
    }

    fn created(&self, path: &str, body: Value) -> Value {
        let (status, v) = self.admin_with("root", Method::Post, path, Some(body));
        assert_eq!(status, 201, "{path}: {v}");
        v
    }

    fn org(&self, name: &str) -> Org {
        let id = self.created("/admin/v1/orgs", json!({"name": name}))["id"]
            .as_str()
            .unwrap()
            .to_string();
        let mut keys = Vec::new();
        let mut users = Vec::new();
        for role in ["org_admin", "approver", "viewer"] {
            let user = self.created("/admin/v1/users", json!({"name": role, "parent_id": id}))["id"]
                .as_str()
                .unwrap()
                .to_string();
            self.created(
                "/admin/v1/roles",
                json!({"principal_id": user, "role": role, "scope_id": id}),
            );
            let key = self.created("/admin/v1/api-keys", json!({"name": role, "principal_id": user}))["key"]
                .as_str()
                .unwrap()
                .to_string();
            keys.push(key);
            users.push(user);
        }
        Org {
            id,
            admin_key: keys[0].clone(),
            approver: users[1].clone(),
            approver_key: keys[1].clone(),
            viewer_key: keys[2].clone(),
        }
    }

    /// A pending request made at `at` ms (the fixture's clock stands at 0: it is current).
    fn pending(&self, org: &str, who: &str, args: &str, at: u64) -> String {
        let new = NewApproval {
            binding: ApprovalBinding {
                org_id: org.into(),
                principal_id: who.into(),
                server: "fake".into(),
                tool: "echo".into(),
                arguments_hash: args.into(),
            },
            policy_id: "pol_1".into(),
            rule: 0,
            arguments: Some(json!({"message": "hi"})),
        };
        block_on(self.approvals.request(&new, PENDING_TTL_MS, at)).unwrap().id
    }
}

#[test]
fn approvers_and_org_admins_list_and_decide_their_organization_only() {
    let f = Fixture::new();
    let (a, b) = (f.org("A"), f.org("B"));
    let first = f.pending(&a.id, "agt_1", "h1", 1);
    let second = f.pending(&a.id, "agt_1", "h2", 2);
    let mine = f.pending(&a.id, &a.approver, "h3", 3);
    let theirs = f.pending(&b.id, "agt_9", "h1", 1);

    // Listing: the caller's one organization, newest first, filtered by status.
    let (status, v) = f.admin_with(&a.approver_key, Method::Get, "/admin/v1/approvals", None);
    assert_eq!(status, 200, "{v}");
    let ids: Vec<&str> = v["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![mine.as_str(), second.as_str(), first.as_str()]);
    assert_eq!(v["approvals"][0]["org_id"], json!(a.id));
    let (_, page) = f.admin_with(&a.admin_key, Method::Get, "/admin/v1/approvals?limit=2", None);
    assert_eq!(page["approvals"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let (_, rest) = f.admin_with(
        &a.admin_key,
        Method::Get,
        &format!("/admin/v1/approvals?limit=2&cursor={cursor}"),
        None,
    );
    assert_eq!(rest["approvals"][0]["id"], json!(first));
    assert_eq!(rest["next_cursor"], Value::Null);

    // Viewers see the organization, not its approvals; another organization's are missing.
    let (status, _) = f.admin_with(&a.viewer_key, Method::Get, "/admin/v1/approvals", None);
    assert_eq!(status, 403);
    let (status, _) = f.admin_with(
        &a.viewer_key,
        Method::Post,
        &format!("/admin/v1/approvals/{first}/approve"),
        None,
    );
    assert_eq!(status, 403);
    let unknown = format!("apr_000000000000ffffffffffffffff.{}", a.id);
    let (s1, p1) = f.admin_with(&b.admin_key, Method::Get, &format!("/admin/v1/approvals/{first}"), None);
    let (s2, p2) = f.admin_with(
        &a.admin_key,
        Method::Get,
        &format!("/admin/v1/approvals/{unknown}"),
        None,
    );
    assert_eq!((s1, s2), (404, 404));
    assert_eq!(
        p1["detail"].as_str().unwrap().replace(&first, "X"),
        p2["detail"].as_str().unwrap().replace(&unknown, "X"),
        "another organization's request reads exactly as an unknown one"
    );
    let (status, _) = f.admin_with(
        &b.approver_key,
        Method::Post,
        &format!("/admin/v1/approvals/{first}/approve"),
        None,
    );
    assert_eq!(status, 404);
    let (status, _) = f.admin_with(
        &b.admin_key,
        Method::Get,
        &format!("/admin/v1/approvals?org={}", a.id),
        None,
    );
    assert_eq!(status, 404);

    // Decisions: once each, never one's own.
    let (status, v) = f.admin_with(
        &a.approver_key,
        Method::Post,
        &format!("/admin/v1/approvals/{first}/approve"),
        None,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["decided_by"].as_str()),
        (Some("approved"), Some(a.approver.as_str()))
    );
    let (status, v) = f.admin_with(
        &a.admin_key,
        Method::Post,
        &format!("/admin/v1/approvals/{first}/deny"),
        None,
    );
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["type"], json!("https://mcp-gateway.dev/problems/conflict"));
    let (status, _) = f.admin_with(
        &a.approver_key,
        Method::Post,
        &format!("/admin/v1/approvals/{mine}/approve"),
        None,
    );
    assert_eq!(status, 403, "nobody approves their own request");
    let (status, v) = f.admin_with(
        &a.admin_key,
        Method::Post,
        &format!("/admin/v1/approvals/{second}/deny"),
        None,
    );
    assert_eq!((status, v["status"].as_str()), (200, Some("denied")));
    let (_, v) = f.admin_with(&a.admin_key, Method::Get, "/admin/v1/approvals?status=pending", None);
    assert_eq!(v["approvals"].as_array().unwrap().len(), 1);
    let (status, _) = f.admin_with(&a.admin_key, Method::Get, "/admin/v1/approvals?status=bogus", None);
    assert_eq!(status, 422);
    let (status, _) = f.admin_with(
        &a.admin_key,
        Method::Delete,
        &format!("/admin/v1/approvals/{second}"),
        None,
    );
    assert_eq!(status, 405);

    // The bootstrap admin names the organization.
    let (status, _) = f.admin_with("root", Method::Get, "/admin/v1/approvals", None);
    assert_eq!(status, 422);
    let (status, v) = f.admin_with("root", Method::Get, &format!("/admin/v1/approvals?org={}", b.id), None);
    assert_eq!((status, v["approvals"][0]["id"].as_str()), (200, Some(theirs.as_str())));

    // Decisions are admin writes: recorded with the request before and after.
    let decided = f
        .events
        .0
        .borrow()
        .iter()
        .filter(|e| e.kind == crate::observe::EventKind::Admin)
        .filter(|e| {
            e.admin
                .as_ref()
                .is_some_and(|c| c.path.starts_with("/admin/v1/approvals/"))
        })
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(decided.len(), 2, "two decisions taken");
    let change = decided[0].admin.as_ref().unwrap();
    assert_eq!(decided[0].org_id, a.id);
    assert_eq!(change.before.as_ref().unwrap()["status"], json!("pending"));
    assert_eq!(change.after.as_ref().unwrap()["status"], json!("approved"));
}
