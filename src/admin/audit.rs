//! The audit trail in the admin API: every successful write under `/admin/v1` becomes an audit
//! event (who, what, and the resource before and after, secrets removed), and
//! `GET /admin/v1/audit` and `/audit/verify` read and check an organization's chain
//! (docs/observability.md, *Audit trail*).
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::gateway::Services;
use crate::http::{HttpRequest, HttpResponse, Method};
use crate::observe::{event::redact_secrets, AdminChange, AuthKind, Event, EventKind, Outcome, TraceContext};
use crate::policy::AdminPermit;
use crate::store::audit::{self, AuditQuery};

use super::{json as respond, ApiError, ApiResult};

/// Page size of `GET /admin/v1/audit` without `limit`, and the largest `limit` accepted.
pub const DEFAULT_PAGE: usize = 50;
pub const MAX_PAGE: usize = 500;

/// How far up the directory an object's organization is looked for (team → workspace → org).
const MAX_PARENT_STEPS: usize = 4;

pub async fn route(svc: &Services<'_>, permit: &AdminPermit, req: &HttpRequest, parts: &[&str]) -> ApiResult {
    if req.method != Method::Get {
        return Err(ApiError::MethodNotAllowed);
    }
    let params = params(req);
    let org = chain_of(permit, &params)?;
    match parts {
        [] => list(svc, org, &params).await,
        ["verify"] => respond(200, &audit::verify(svc.audit, &org).await?),
        _ => Err(ApiError::NotFound(format!("no admin resource at {}", req.path))),
    }
}

fn params(req: &HttpRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.query.as_deref().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The chain a query reads: `org=` if the caller may read that organization (the bootstrap
/// admin any, including `""`, the platform-wide chain), else the caller's own organization
/// (the platform-wide chain for the bootstrap admin). Another organization's chain answers as
/// a missing one.
fn chain_of(permit: &AdminPermit, params: &[(String, String)]) -> Result<String, ApiError> {
    if let Some(org) = param(params, "org") {
        if !permit.may_read_org(org) {
            return Err(ApiError::NotFound(format!("no organization '{org}'")));
        }
        return Ok(org.to_string());
    }
    if permit.is_super_admin() {
        return Ok(String::new());
    }
    match permit.readable_orgs().unwrap_or_default().as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(ApiError::Validation(
            "you hold roles in several organizations: name one with org".into(),
        )),
    }
}

/// A time bound: epoch milliseconds (digits only) or an RFC 3339 timestamp.
fn time(params: &[(String, String)], name: &str) -> Result<Option<u64>, ApiError> {
    let Some(v) = param(params, name) else { return Ok(None) };
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::Validation(format!("{name} is out of range")));
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .ok()
        .and_then(|t| u64::try_from(t.timestamp_millis()).ok())
        .map(Some)
        .ok_or_else(|| ApiError::Validation(format!("{name} must be epoch milliseconds or RFC 3339")))
}

fn cursor_encode(time_ms: u64, seq: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{time_ms}.{seq}"))
}

fn cursor_decode(c: &str) -> Option<(u64, u64)> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
    let (t, s) = raw.split_once('.')?;
    Some((t.parse().ok()?, s.parse().ok()?))
}

async fn list(svc: &Services<'_>, org_id: String, params: &[(String, String)]) -> ApiResult {
    let limit = match param(params, "limit") {
        None => DEFAULT_PAGE,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| ApiError::Validation(format!("limit must be 1 to {MAX_PAGE}")))?,
    };
    let before = match param(params, "cursor") {
        None => None,
        Some(c) => Some(cursor_decode(c).ok_or_else(|| ApiError::Validation("cursor is not valid".into()))?),
    };
    let text = |name: &str| param(params, name).map(str::to_string);
    let q = AuditQuery {
        org_id,
        from_ms: time(params, "from")?,
        to_ms: time(params, "to")?,
        server: text("server"),
        tool: text("tool"),
        principal_id: text("principal"),
        team_id: text("team"),
        outcome: text("outcome"),
        trace_id: text("trace_id"),
        kind: text("kind"),
        before,
        // One more than asked: whether another page follows.
        limit: limit + 1,
    };
    let mut records = svc.audit.list_audit(&q).await?;
    let next = (records.len() > limit).then(|| {
        records.truncate(limit);
        records.last().map(|r| cursor_encode(r.time_ms, r.seq))
    });
    let events: Vec<Value> = records
        .iter()
        .map(|r| {
            let mut v = serde_json::from_str::<Value>(&r.body)
                .ok()
                .filter(Value::is_object)
                .unwrap_or_else(|| json!({"id": r.id, "body_unreadable": true}));
            v["seq"] = json!(r.seq);
            v["hash"] = json!(r.hash);
            v
        })
        .collect();
    respond(200, &json!({"events": events, "next_cursor": next.flatten()}))
}

/// The resource a write changes, read before it: `(path to read, its representation)`.
pub struct Before {
    path: String,
    doc: Option<Value>,
}

/// Where a write's resource is read: the path itself for PATCH, PUT and DELETE; for a POST,
/// the collection's new member (its `location`, after) or the resource an action under it
/// acts on (the parent path: `…/servers/x/sync` → `…/servers/x`).
pub async fn before(svc: &Services<'_>, permit: &AdminPermit, req: &HttpRequest) -> Before {
    let path = if req.method == Method::Post {
        req.path
            .trim_end_matches('/')
            .rsplit_once('/')
            .map_or("", |(p, _)| p)
            .to_string()
    } else {
        req.path.clone()
    };
    let doc = read(svc, permit, req, &path).await;
    Before { path, doc }
}

/// The admin API's own representation of `path` (a GET through the router), if it has one.
async fn read(svc: &Services<'_>, permit: &AdminPermit, req: &HttpRequest, path: &str) -> Option<Value> {
    if path.len() <= super::PREFIX.len() {
        return None;
    }
    let get = HttpRequest {
        method: Method::Get,
        path: path.to_string(),
        query: None,
        headers: req.headers.clone(),
        body: Vec::new(),
    };
    match super::dispatch(svc, permit, &get).await {
        Ok(r) if r.status == 200 => serde_json::from_slice(r.bytes()?).ok(),
        _ => None,
    }
}

/// Records a write that succeeded as an audit event of the organization the written object
/// belongs to (platform-wide objects: `""`). Failed writes change nothing and are not recorded.
pub async fn record(svc: &Services<'_>, permit: &AdminPermit, req: &HttpRequest, resp: &HttpResponse, before: Before) {
    if !(200..300).contains(&resp.status) {
        return;
    }
    let after = if req.method == Method::Delete {
        None
    } else if super::config_api::is_config(req) {
        // A configuration applied: one record, the list of changes it made.
        resp.bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .map(|v| super::config_api::audit_summary(&v))
    } else if resp.status == 201 {
        // A new member: as the API shows it, else as the answer to the create (which may hold a
        // secret shown once: removed below).
        match resp.headers.get("location") {
            Some(loc) => read(svc, permit, req, loc).await,
            None => None,
        }
        .or_else(|| resp.bytes().and_then(|b| serde_json::from_slice(b).ok()))
    } else {
        read(svc, permit, req, &before.path).await
    };
    let (mut before_doc, mut after_doc) = (before.doc, after);
    for d in [&mut before_doc, &mut after_doc].into_iter().flatten() {
        redact_secrets(d);
    }
    let org_id = org_of(svc, permit, after_doc.as_ref().or(before_doc.as_ref())).await;
    let (principal_id, key_id) = permit.actor();
    let traceparent = req.headers.get("traceparent");
    let event = Event {
        id: crate::crypto::random_id("ev_"),
        kind: EventKind::Admin,
        time_ms: svc.now_ms,
        trace: Some(TraceContext::join(traceparent, req.headers.get("tracestate"), None)),
        org_id,
        principal_id: principal_id.to_string(),
        key_id: key_id.to_string(),
        auth_kind: permit.is_super_admin().then_some(AuthKind::AdminToken),
        endpoint: "admin".into(),
        http_method: req.method.as_str().to_string(),
        outcome: crate::observe::event::OutcomeField(Outcome::Ok),
        admin: Some(AdminChange {
            http_method: req.method.as_str().to_string(),
            path: req.path.clone(),
            status: resp.status,
            before: before_doc,
            after: after_doc,
        }),
        ..Event::default()
    };
    svc.events.emit(event);
}

/// The organization an admin document belongs to: its `org_id` (`null`: platform-wide), an
/// organization itself, or the organization above its parent, principal or subject in the
/// directory; failing all, the caller's only organization (else platform-wide).
async fn org_of(svc: &Services<'_>, permit: &AdminPermit, doc: Option<&Value>) -> String {
    let fallback = || match permit.readable_orgs().unwrap_or_default().as_slice() {
        [one] => one.clone(),
        _ => String::new(),
    };
    let Some(doc) = doc else { return fallback() };
    if let Some(org) = doc.get("org_id") {
        return org.as_str().unwrap_or_default().to_string();
    }
    if doc.get("kind").and_then(Value::as_str) == Some("org") {
        return doc.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
    }
    let start = ["parent_id", "principal_id", "subject_id"]
        .iter()
        .find_map(|k| doc.get(*k).and_then(Value::as_str));
    let mut id = match start {
        Some(id) => id.to_string(),
        None => return fallback(),
    };
    for _ in 0..MAX_PARENT_STEPS {
        match svc.directory.get_entity(&id).await {
            Ok(Some(e)) if e.kind == crate::store::EntityKind::Org => return e.id,
            Ok(Some(e)) => match e.parent_id {
                Some(p) => id = p,
                None => break,
            },
            _ => break,
        }
    }
    fallback()
}
