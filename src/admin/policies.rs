//! `/admin/v1/policies`: an organization's policies (docs/policies.md) — create, list, read,
//! change, delete — and `POST /admin/v1/policies/test`, the dry run that answers what every
//! applicable policy would decide about a call and its result without calling or counting.
//! Every document is validated by `rules::parse_policy` before it is stored.
use serde_json::{json, Map, Value};

use crate::gateway::policies::{compile, document};
use crate::gateway::Services;
use crate::http::{HttpRequest, Method};
use crate::policy::roles::Scope;
use crate::policy::AdminPermit;
use crate::rules::{self, CallTarget, PolicySet, Verdict};
use crate::store::{EntityKind, PolicyRecord, StoreError, DEFAULT_ORG};

use super::{body, json, ApiError, ApiResult};

/// Most policies one organization keeps (every call of the organization evaluates their scopes).
pub const MAX_POLICIES_PER_ORG: usize = 200;
/// Organizations the bootstrap admin's listing walks.
const MAX_LISTED_ORGS: usize = 1000;

pub async fn route(svc: &Services<'_>, permit: &AdminPermit, req: &HttpRequest, parts: &[&str]) -> ApiResult {
    match (parts, req.method) {
        ([], Method::Get) => {
            let mut all = Vec::new();
            for org in orgs(svc, permit, query(req, "org").as_deref()).await? {
                all.extend(svc.policies.list_policies(&org).await?.iter().map(view));
            }
            json(200, &json!({ "policies": all }))
        }
        ([], Method::Post) => create(svc, permit, req).await,
        (["test"], Method::Post) => dry_run(svc, permit, req).await,
        ([id], Method::Get) => json(200, &view(&find(svc, permit, id).await?)),
        ([id, "counters"], Method::Get) => {
            let p = find(svc, permit, id).await?;
            // Counter keys are `{org}:{policy id}/{rule}/{who}` (gateway::policies).
            let prefix = format!("{}:{}/", p.org_id, p.id);
            let after = query(req, "after");
            let counters = svc
                .counters
                .list(&prefix, after.as_deref(), crate::store::limits::MAX_PEEK, svc.now_ms)
                .await?;
            json(200, &json!({ "counters": counters }))
        }
        ([id], Method::Patch) => patch(svc, permit, req, id).await,
        ([id], Method::Delete) => {
            let p = find(svc, permit, id).await?;
            require_org_admin(permit, &p.org_id)?;
            if svc.policies.delete_policy(&p.org_id, id).await? {
                Ok(crate::http::HttpResponse::new(204))
            } else {
                Err(not_found(id))
            }
        }
        ([] | [_] | [_, "counters"], _) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound(format!("no admin resource at {}", req.path))),
    }
}

/// A policy as the API shows it: its document, with its id, organization and times.
pub fn view(p: &PolicyRecord) -> Value {
    json!({
        "id": p.id, "org": p.org_id, "name": p.name, "scope": p.scope, "mode": p.mode,
        "rules": p.rules, "created_at": p.created_at, "updated_at": p.updated_at,
    })
}

fn query(req: &HttpRequest, name: &str) -> Option<String> {
    let q = req.query.as_deref()?;
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no policy with id '{id}'"))
}

/// The organizations a request reaches: the one named (if the caller may read it), else every
/// organization the caller reads.
async fn orgs(svc: &Services<'_>, permit: &AdminPermit, named: Option<&str>) -> Result<Vec<String>, ApiError> {
    if let Some(o) = named {
        return Ok(if permit.may_read_org(o) {
            vec![o.to_string()]
        } else {
            Vec::new()
        });
    }
    match permit.readable_orgs() {
        Some(orgs) => Ok(orgs),
        None => Ok(svc
            .directory
            .list_entities(EntityKind::Org, None, None, MAX_LISTED_ORGS)
            .await?
            .into_iter()
            .map(|e| e.id)
            .collect()),
    }
}

/// The policy with this id in an organization the caller reads (another's answers as missing).
async fn find(svc: &Services<'_>, permit: &AdminPermit, id: &str) -> Result<PolicyRecord, ApiError> {
    for org in orgs(svc, permit, None).await? {
        if let Some(p) = svc.policies.get_policy(&org, id).await? {
            return Ok(p);
        }
    }
    Err(not_found(id))
}

fn require_org_admin(permit: &AdminPermit, org: &str) -> Result<(), ApiError> {
    if permit.may_write(&Scope::Org(org.to_string())) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only an org admin changes its organization's policies".into(),
        ))
    }
}

/// The organization a new policy belongs to: the `org` field (an organization the caller
/// reads, else it answers as missing), else `org_default` for the bootstrap admin and the
/// caller's own organization for an org admin of exactly one.
async fn owner(svc: &Services<'_>, permit: &AdminPermit, named: Option<Value>) -> Result<String, ApiError> {
    let org = match named {
        Some(Value::String(o)) => o,
        Some(_) => return Err(ApiError::Validation("org: must be an organization id".into())),
        None if permit.is_super_admin() => DEFAULT_ORG.to_string(),
        None => match permit.default_owner() {
            Ok(Some(o)) => o,
            Ok(None) => DEFAULT_ORG.to_string(),
            Err(m) => return Err(ApiError::Forbidden(m.into())),
        },
    };
    let exists = svc
        .directory
        .get_entity(&org)
        .await?
        .is_some_and(|e| e.kind == EntityKind::Org);
    if !exists || !permit.may_read_org(&org) {
        return Err(ApiError::Validation("org: must name an existing organization".into()));
    }
    require_org_admin(permit, &org)?;
    Ok(org)
}

/// Validates a policy document; its normalized form is what is stored.
fn parse(doc: &Value) -> Result<rules::PolicySpec, ApiError> {
    rules::parse_policy(doc).map_err(|e| ApiError::Validation(e.to_string()))
}

fn record_of(
    spec: &rules::PolicySpec,
    id: String,
    org_id: String,
    created_at: String,
    updated_at: String,
) -> Result<PolicyRecord, ApiError> {
    let doc = serde_json::to_value(spec).map_err(|e| ApiError::Store(StoreError::Backend(e.to_string())))?;
    Ok(PolicyRecord {
        id,
        org_id,
        name: spec.name.clone(),
        mode: spec.mode.as_str().to_string(),
        scope: doc.get("scope").cloned().unwrap_or_else(|| json!({})),
        rules: doc.get("rules").cloned().unwrap_or_else(|| json!([])),
        created_at,
        updated_at,
    })
}

fn conflict(name: &str) -> ApiError {
    ApiError::Conflict(format!("the organization already has a policy named '{name}'"))
}

async fn create(svc: &Services<'_>, permit: &AdminPermit, req: &HttpRequest) -> ApiResult {
    let mut doc: Map<String, Value> = body(req)?;
    let org = owner(svc, permit, doc.remove("org")).await?;
    let spec = parse(&Value::Object(doc))?;
    if svc.policies.list_policies(&org).await?.len() >= MAX_POLICIES_PER_ORG {
        return Err(ApiError::Validation(format!(
            "an organization keeps at most {MAX_POLICIES_PER_ORG} policies"
        )));
    }
    let now = svc.now();
    let p = record_of(&spec, crate::crypto::random_id("pol_"), org, now.clone(), now)?;
    match svc.policies.create_policy(&p).await {
        Err(StoreError::Conflict) => return Err(conflict(&p.name)),
        other => other?,
    }
    json(201, &view(&p))
}

/// Changes the fields given (`name`, `scope`, `mode`, `rules`); the result is validated whole.
async fn patch(svc: &Services<'_>, permit: &AdminPermit, req: &HttpRequest, id: &str) -> ApiResult {
    let changes: Map<String, Value> = body(req)?;
    let old = find(svc, permit, id).await?;
    require_org_admin(permit, &old.org_id)?;
    let mut doc = document(&old);
    for (k, v) in changes {
        if !["name", "scope", "mode", "rules"].contains(&k.as_str()) {
            return Err(ApiError::Validation(format!(
                "{k}: not a field a policy change may set"
            )));
        }
        doc[k] = v;
    }
    let spec = parse(&doc)?;
    let p = record_of(
        &spec,
        old.id.clone(),
        old.org_id.clone(),
        old.created_at.clone(),
        svc.now(),
    )?;
    match svc.policies.update_policy(&p).await {
        Err(StoreError::Conflict) => Err(conflict(&p.name)),
        Ok(true) => json(200, &view(&p)),
        Ok(false) => Err(not_found(id)),
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/v1/policies/test`: `{ principal, server, tool, arguments?, result?,
/// virtual_server?, policy? }` → what each applicable policy would decide. `policy` is a draft
/// (not stored) evaluated beside the organization's policies. Nothing is called or counted.
async fn dry_run(svc: &Services<'_>, permit: &AdminPermit, req: &HttpRequest) -> ApiResult {
    let mut b: Map<String, Value> = body(req)?;
    for k in b.keys() {
        if ![
            "principal",
            "server",
            "tool",
            "arguments",
            "result",
            "virtual_server",
            "policy",
        ]
        .contains(&k.as_str())
        {
            return Err(ApiError::Validation(format!("{k}: unknown field")));
        }
    }
    let text = |b: &Map<String, Value>, k: &str| -> Result<String, ApiError> {
        b.get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ApiError::Validation(format!("{k}: required, a string")))
    };
    let (principal, server, tool) = (text(&b, "principal")?, text(&b, "server")?, text(&b, "tool")?);
    let virtual_server = match b.get("virtual_server") {
        None => None,
        Some(v) => Some(
            v.as_str()
                .ok_or_else(|| ApiError::Validation("virtual_server: must be a string".into()))?
                .to_string(),
        ),
    };
    let identity = svc
        .directory
        .identity(&principal)
        .await?
        .filter(|i| permit.may_read_org(&i.org_id))
        .ok_or_else(|| ApiError::NotFound(format!("no principal with id '{principal}'")))?;
    let record = svc
        .registry
        .get_server(&server)
        .await?
        .filter(|s| s.org_id.is_none() || s.org_id.as_deref() == Some(identity.org_id.as_str()))
        .ok_or_else(|| ApiError::NotFound(format!("no server with slug '{server}'")))?;
    let annotations = svc
        .registry
        .tools_of(&record.slug)
        .await?
        .iter()
        .find(|t| t.name == tool)
        .and_then(|t| t.annotations.clone());
    let mut records = svc.policies.list_policies(&identity.org_id).await?;
    if let Some(draft) = b.remove("policy") {
        let spec = parse(&draft)?;
        let now = svc.now();
        records.push(record_of(
            &spec,
            "draft".into(),
            identity.org_id.clone(),
            now.clone(),
            now,
        )?);
    }
    let set: PolicySet = compile(&records, svc.config.policy_hash_key)
        .map_err(|e| ApiError::Validation(format!("stored policies do not compile: {e}")))?;
    let target = CallTarget {
        server: &record.slug,
        tool: Some(&tool),
        virtual_server: virtual_server.as_deref(),
        annotations: annotations.as_ref(),
    };
    let applicable = set.applicable(&identity, &target);
    let mut arguments = b.get("arguments").cloned().unwrap_or_else(|| json!({}));
    let call = applicable.check_call(&mut arguments);
    let result = b.get("result").cloned().map(|mut r| {
        let v = applicable.check_result(&mut r);
        (v, r)
    });
    json(
        200,
        &json!({
            "principal": principal,
            "server": record.slug,
            "tool": tool,
            "policies": applicable.policy_ids().collect::<Vec<_>>(),
            "call": verdict_view(&call, Some(("arguments", arguments))),
            "result": result.map(|(v, r)| verdict_view(&v, Some(("result", r)))),
        }),
    )
}

fn verdict_view(v: &Verdict, rewritten: Option<(&str, Value)>) -> Value {
    let mut out = json!({
        "outcome": v.outcome,
        "decisions": v.decisions,
        "limits": v.limits,
    });
    if let Some((k, value)) = rewritten {
        out[k] = value;
    }
    out
}
