//! `/admin/v1/{orgs,workspaces,teams,users,agents}`, their members, `/admin/v1/grants`, and the
//! access questions "what can principal X use?" and "who can use tool Y?".
use serde::Deserialize;
use serde_json::json;

use crate::crypto;
use crate::gateway::Services;
use crate::http::{HttpRequest, HttpResponse, Method};
use crate::observe::CaptureMode;
use crate::policy::access::{Access, Effect, Grant, ResourceKind, SubjectKind};
use crate::policy::auth::{owner_visible, server_usable, virtual_usable};
use crate::policy::roles::{Role, RoleAssignment, Scope};
use crate::policy::AdminPermit;
use crate::store::{Entity, EntityKind, StoreError};

use super::servers::{query_param, MAX_NAME_LEN};
use super::{body, json, ApiError, ApiResult};

/// Page size of directory lists (`?limit=` may ask for 1 to `MAX_PAGE`; anything else is 422).
pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateEntity {
    name: String,
    /// The org (workspaces, users, agents) or workspace (teams) it belongs to.
    parent_id: Option<String>,
    email: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchEntity {
    name: Option<String>,
    email: Option<String>,
    /// Organizations only: what events keep of call arguments on its servers that set none
    /// (`null`: the default, `keys`).
    #[serde(default, deserialize_with = "super::servers::nullable")]
    capture: Option<Option<CaptureMode>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddMember {
    principal_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateGrant {
    subject_kind: SubjectKind,
    subject_id: String,
    #[serde(default = "server_kind")]
    resource_kind: ResourceKind,
    resource: String,
    tool: Option<String>,
    effect: Effect,
}

fn server_kind() -> ResourceKind {
    ResourceKind::Server
}

/// The kind a collection path names.
pub fn collection(segment: &str) -> Option<EntityKind> {
    Some(match segment {
        "orgs" => EntityKind::Org,
        "workspaces" => EntityKind::Workspace,
        "teams" => EntityKind::Team,
        "users" => EntityKind::User,
        "agents" => EntityKind::Agent,
        _ => return None,
    })
}

pub async fn route(
    svc: &Services<'_>,
    permit: &AdminPermit,
    req: &HttpRequest,
    kind: EntityKind,
    parts: &[&str],
) -> ApiResult {
    let plural = format!("{}s", kind.as_str());
    // Anything addressed by id must exist for this caller: another organization's entry answers
    // exactly as a missing one.
    if let [id, ..] = parts {
        get(svc, permit, id, kind).await?;
    }
    // Changes to an existing entry (or to a group's members) need a role covering it.
    if let ([id, rest @ ..], false) = (parts, req.method == Method::Get) {
        let e = get(svc, permit, id, kind).await?;
        if kind == EntityKind::Org && rest.is_empty() && req.method == Method::Delete && !permit.may_create_org() {
            return Err(ApiError::Forbidden(
                "only the bootstrap admin deletes organizations".into(),
            ));
        }
        super::require(permit, &scope_of(svc, &e, !rest.is_empty()).await?)?;
    }
    match (parts, req.method) {
        ([], Method::Get) => {
            let limit = match query_param(req, "limit") {
                None => DEFAULT_PAGE,
                Some(l) => l
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| ApiError::Validation(format!("limit must be an integer from 1 to {MAX_PAGE}")))?,
            };
            let parent = query_param(req, "parent_id");
            let after = query_param(req, "after");
            let page = svc
                .directory
                .list_entities(kind, parent.as_deref(), after.as_deref(), limit)
                .await?;
            // Paging follows the unfiltered order, so a walk sees each visible entry once.
            let next = (page.len() == limit)
                .then(|| page.last().map(|e| e.id.clone()))
                .flatten();
            let mut items = Vec::new();
            let mut orgs = std::collections::HashMap::new();
            for e in page {
                let org = match (&e.kind, &e.parent_id) {
                    (EntityKind::Team, Some(ws)) => {
                        if !orgs.contains_key(ws) {
                            let o = svc.directory.get_entity(ws).await?.and_then(|w| w.parent_id);
                            orgs.insert(ws.clone(), o);
                        }
                        orgs[ws].clone()
                    }
                    _ => org_of(svc, &e).await?,
                };
                if org.is_some_and(|o| permit.may_read_org(&o)) {
                    items.push(e);
                }
            }
            json(200, &json!({ plural: items, "next_after": next }))
        }
        ([], Method::Post) => create(svc, permit, req, kind).await,
        ([id], Method::Get) => json(200, &with_settings(svc, get(svc, permit, id, kind).await?).await?),
        ([id], Method::Patch) => {
            let b: PatchEntity = body(req)?;
            let mut e = get(svc, permit, id, kind).await?;
            if b.capture.is_some() && kind != EntityKind::Org {
                return Err(ApiError::Validation(
                    "capture is set on organizations (and servers)".into(),
                ));
            }
            if let Some(n) = b.name {
                validate_name(&n)?;
                e.name = n;
            }
            if b.email.is_some() {
                e.email = b.email;
            }
            svc.directory.update_entity(&e).await?;
            if let Some(c) = b.capture {
                svc.directory.set_org_capture(id, c).await?;
            }
            json(200, &with_settings(svc, e).await?)
        }
        ([id], Method::Delete) => {
            if svc.directory.count_dependents(id).await? > 0 {
                return Err(ApiError::Conflict(format!(
                    "'{id}' still has members, entries under it, servers or identity providers"
                )));
            }
            svc.directory.delete_entity(id).await?;
            svc.registry.bump_catalog_generation().await?;
            Ok(HttpResponse::new(204))
        }
        ([id, "members"], Method::Get) if is_group(kind) => {
            json(200, &json!({"members": svc.directory.list_members(id).await?}))
        }
        ([id, "members"], Method::Post) if is_group(kind) => {
            let group = get(svc, permit, id, kind).await?;
            let b: AddMember = body(req)?;
            let p = visible(svc, permit, &b.principal_id).await?;
            let p = p
                .filter(|p| p.kind.is_principal())
                .ok_or_else(|| ApiError::Validation(format!("no user or agent with id '{}'", b.principal_id)))?;
            if org_of(svc, &group).await? != p.parent_id {
                return Err(ApiError::Validation(
                    "a member must belong to the group's organization".into(),
                ));
            }
            svc.directory.add_member(&p.id, id, &svc.now()).await?;
            svc.registry.bump_catalog_generation().await?;
            Ok(HttpResponse::new(204))
        }
        ([id, "members", pid], Method::Delete) if is_group(kind) => {
            if !svc.directory.remove_member(pid, id).await? {
                return Err(ApiError::NotFound(format!("'{pid}' is not a member of '{id}'")));
            }
            svc.registry.bump_catalog_generation().await?;
            Ok(HttpResponse::new(204))
        }
        ([id, "access"], Method::Get) if kind.is_principal() => access_of(svc, permit, id).await,
        ([] | [_], _) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound(format!("no admin resource at {}", req.path))),
    }
}

/// An entry as the API shows it: an organization with its settings (`capture`).
async fn with_settings(svc: &Services<'_>, e: Entity) -> Result<serde_json::Value, ApiError> {
    let org = e.kind == EntityKind::Org;
    let mut v = serde_json::to_value(&e).map_err(|err| ApiError::Store(StoreError::Backend(err.to_string())))?;
    if org {
        v["capture"] = json!(svc.directory.org_capture(&e.id).await?);
    }
    Ok(v)
}

fn is_group(kind: EntityKind) -> bool {
    matches!(kind, EntityKind::Workspace | EntityKind::Team)
}

fn validate_name(n: &str) -> Result<(), ApiError> {
    if n.trim().is_empty() || n.len() > MAX_NAME_LEN {
        return Err(ApiError::Validation(format!(
            "name must be 1 to {MAX_NAME_LEN} characters"
        )));
    }
    Ok(())
}

/// An entry of this kind that exists for this caller (another organization's answers exactly
/// as a missing one).
async fn get(svc: &Services<'_>, permit: &AdminPermit, id: &str, kind: EntityKind) -> Result<Entity, ApiError> {
    visible(svc, permit, id)
        .await?
        .filter(|e| e.kind == kind)
        .ok_or_else(|| ApiError::NotFound(format!("no {} with id '{id}'", kind.as_str())))
}

/// A directory entry, if the caller may see its organization.
async fn visible(svc: &Services<'_>, permit: &AdminPermit, id: &str) -> Result<Option<Entity>, ApiError> {
    let Some(e) = svc.directory.get_entity(id).await? else {
        return Ok(None);
    };
    if permit.is_super_admin() {
        return Ok(Some(e));
    }
    let org = org_of(svc, &e).await?;
    Ok(org.is_some_and(|o| permit.may_read_org(&o)).then_some(e))
}

/// Whether the caller may see a grant: the bootstrap admin all; others those whose subject is in
/// one of their organizations.
async fn grant_visible(svc: &Services<'_>, permit: &AdminPermit, g: &Grant) -> Result<bool, ApiError> {
    Ok(permit.is_super_admin() || visible(svc, permit, &g.subject_id).await?.is_some())
}

/// The organization an entry belongs to.
async fn org_of(svc: &Services<'_>, e: &Entity) -> Result<Option<String>, ApiError> {
    Ok(match e.kind {
        EntityKind::Org => Some(e.id.clone()),
        EntityKind::Team => match &e.parent_id {
            Some(ws) => svc.directory.get_entity(ws).await?.and_then(|w| w.parent_id),
            None => None,
        },
        _ => e.parent_id.clone(),
    })
}

/// The scope an entry belongs to: for a workspace's or team's members (`contents`), the
/// workspace; for the entry itself, its organization (teams: their workspace).
async fn scope_of(svc: &Services<'_>, e: &Entity, contents: bool) -> Result<Scope, ApiError> {
    let org = org_of(svc, e).await?.unwrap_or_default();
    Ok(match e.kind {
        EntityKind::Workspace if contents => Scope::Workspace {
            org,
            workspace: e.id.clone(),
        },
        EntityKind::Team => Scope::Workspace {
            org,
            workspace: e.parent_id.clone().unwrap_or_default(),
        },
        _ => Scope::Org(org),
    })
}

async fn create(svc: &Services<'_>, permit: &AdminPermit, req: &HttpRequest, kind: EntityKind) -> ApiResult {
    let b: CreateEntity = body(req)?;
    validate_name(&b.name)?;
    match (kind.parent(), &b.parent_id) {
        (None, None) => {}
        (None, Some(_)) => return Err(ApiError::Validation("an organization has no parent_id".into())),
        (Some(pk), Some(pid)) => {
            if !visible(svc, permit, pid).await?.is_some_and(|p| p.kind == pk) {
                return Err(ApiError::Validation(format!(
                    "parent_id must name an existing {}",
                    pk.as_str()
                )));
            }
        }
        (Some(pk), None) => {
            return Err(ApiError::Validation(format!(
                "parent_id (the {}) is required",
                pk.as_str()
            )))
        }
    }
    match (&b.parent_id, kind) {
        (None, _) if !permit.may_create_org() => {
            return Err(ApiError::Forbidden(
                "only the bootstrap admin creates organizations".into(),
            ))
        }
        (Some(ws), EntityKind::Team) => {
            let org = svc
                .directory
                .get_entity(ws)
                .await?
                .and_then(|w| w.parent_id)
                .unwrap_or_default();
            super::require(
                permit,
                &Scope::Workspace {
                    org,
                    workspace: ws.clone(),
                },
            )?;
        }
        (Some(org), _) => super::require(permit, &Scope::Org(org.clone()))?,
        (None, _) => {}
    }
    let e = Entity {
        id: crypto::random_id(kind.id_prefix()),
        kind,
        parent_id: b.parent_id,
        name: b.name,
        email: b.email,
        external_subject: None,
        created_at: svc.now(),
    };
    match svc.directory.create_entity(&e).await {
        Err(StoreError::Conflict) => return Err(ApiError::Conflict("that entry already exists".into())),
        other => other?,
    }
    json(201, &e)
}

/// `/admin/v1/grants`.
/// The scope a grant's subject belongs to: who may hand out or withdraw grants for it.
async fn subject_scope(svc: &Services<'_>, subject_id: &str) -> Result<Scope, ApiError> {
    match svc.directory.get_entity(subject_id).await? {
        Some(e) if e.kind == EntityKind::Workspace => scope_of(svc, &e, true).await,
        Some(e) => scope_of(svc, &e, false).await,
        None => Ok(Scope::Global),
    }
}

pub async fn grants(svc: &Services<'_>, permit: &AdminPermit, req: &HttpRequest, parts: &[&str]) -> ApiResult {
    match (parts, req.method) {
        ([], Method::Get) => {
            let mut grants = Vec::new();
            for g in svc.directory.list_grants().await? {
                if grant_visible(svc, permit, &g).await? {
                    grants.push(g);
                }
            }
            json(200, &json!({ "grants": grants }))
        }
        ([], Method::Post) => {
            let b: CreateGrant = body(req)?;
            let subject = visible(svc, permit, &b.subject_id).await?;
            if subject.is_none_or(|s| s.kind.as_str() != kind_name(b.subject_kind)) {
                return Err(ApiError::Validation(format!(
                    "subject_id must name an existing {}",
                    kind_name(b.subject_kind)
                )));
            }
            if b.resource.is_empty()
                || b.resource.len() > 200
                || b.tool.as_ref().is_some_and(|t| t.is_empty() || t.len() > 200)
            {
                return Err(ApiError::Validation(
                    "resource and tool must be 1 to 200 characters".into(),
                ));
            }
            if b.resource_kind == ResourceKind::Virtual && b.tool.is_some() {
                return Err(ApiError::Validation("a grant on a virtual server has no tool".into()));
            }
            super::require(permit, &subject_scope(svc, &b.subject_id).await?)?;
            let g = Grant {
                id: crypto::random_id("grant_"),
                subject_kind: b.subject_kind,
                subject_id: b.subject_id,
                resource_kind: b.resource_kind,
                resource: b.resource,
                tool: b.tool,
                effect: b.effect,
                created_at: svc.now(),
            };
            svc.directory.create_grant(&g).await?;
            svc.registry.bump_catalog_generation().await?;
            json(201, &g)
        }
        ([id], Method::Delete) => {
            let missing = || ApiError::NotFound(format!("no grant with id '{id}'"));
            let g = svc.directory.list_grants().await?.into_iter().find(|g| g.id == *id);
            let Some(g) = g else { return Err(missing()) };
            if !grant_visible(svc, permit, &g).await? {
                return Err(missing());
            }
            super::require(permit, &subject_scope(svc, &g.subject_id).await?)?;
            if !svc.directory.delete_grant(id).await? {
                return Err(missing());
            }
            svc.registry.bump_catalog_generation().await?;
            Ok(HttpResponse::new(204))
        }
        ([] | [_], _) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound(format!("no admin resource at {}", req.path))),
    }
}

fn kind_name(k: SubjectKind) -> &'static str {
    match k {
        SubjectKind::Org => "org",
        SubjectKind::Workspace => "workspace",
        SubjectKind::Team => "team",
        SubjectKind::User => "user",
        SubjectKind::Agent => "agent",
    }
}

/// "What can principal X use?": every active server it reaches, with its usable tools.
async fn access_of(svc: &Services<'_>, _permit: &AdminPermit, id: &str) -> ApiResult {
    let identity = svc
        .directory
        .identity(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user or agent with id '{id}'")))?;
    let access = Access::new(&identity, svc.directory.grants_for(&identity.subject_ids()).await?);
    let tools = svc.registry.list_all_tools().await?;
    let mut servers = Vec::new();
    let org = identity.org_id.clone();
    for s in svc.registry.list_servers().await? {
        if !server_usable(&org, &access, &s) {
            continue;
        }
        let usable: Vec<&str> = tools
            .iter()
            .filter(|t| t.server_slug == s.slug && t.is_active() && access.tool_allowed(&s.slug, &t.name))
            .map(|t| t.name.as_str())
            .collect();
        servers.push(json!({"server": s.slug, "tools": usable}));
    }
    let virtuals: Vec<String> = svc
        .virtuals
        .list_virtual()
        .await?
        .into_iter()
        .filter(|v| virtual_usable(&org, &access, v))
        .map(|v| v.slug)
        .collect();
    json(
        200,
        &json!({"principal": identity, "servers": servers, "virtual_servers": virtuals}),
    )
}

/// "Who can use tool Y of server S?": every user and agent whose grants reach it.
pub async fn who_can_use(svc: &Services<'_>, permit: &AdminPermit, slug: &str, tool: &str) -> ApiResult {
    let server = super::servers::get(svc, permit, slug).await?;
    let grants = svc.directory.list_grants().await?;
    let who: Vec<_> = svc
        .directory
        .all_identities()
        .await?
        .into_iter()
        .filter(|i| permit.may_read_org(&i.org_id) && owner_visible(&i.org_id, server.org_id.as_deref()))
        .filter(|i| Access::new(i, grants.iter().cloned()).tool_allowed(slug, tool))
        .map(|i| json!({"id": i.principal_id, "kind": i.kind}))
        .collect();
    json(200, &json!({"server": slug, "tool": tool, "principals": who}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateIdp {
    org_id: String,
    issuer: String,
    audiences: Vec<String>,
    subject_claim: Option<String>,
    email_claim: Option<String>,
    groups_claim: Option<String>,
    #[serde(default)]
    group_teams: std::collections::BTreeMap<String, String>,
    login_client_id: Option<String>,
}

/// `/admin/v1/identity-providers`: the OIDC issuers an organization trusts.
pub async fn identity_providers(
    svc: &Services<'_>,
    permit: &AdminPermit,
    req: &HttpRequest,
    parts: &[&str],
) -> ApiResult {
    match (parts, req.method) {
        ([], Method::Get) => {
            let mut idps = svc.directory.list_idps().await?;
            idps.retain(|i| permit.may_read_org(&i.org_id));
            json(200, &json!({ "identity_providers": idps }))
        }
        ([], Method::Post) => {
            let b: CreateIdp = body(req)?;
            get(svc, permit, &b.org_id, EntityKind::Org).await?;
            super::require(permit, &Scope::Org(b.org_id.clone()))?;
            let issuer_ok = url::Url::parse(&b.issuer).is_ok_and(|u| matches!(u.scheme(), "https" | "http"));
            if !issuer_ok {
                return Err(ApiError::Validation("issuer must be an absolute http(s) URL".into()));
            }
            if b.audiences.is_empty() || b.audiences.iter().any(|a| a.is_empty()) {
                return Err(ApiError::Validation("audiences must list at least one audience".into()));
            }
            // One issuer may be trusted by several organizations (a shared Entra tenant,
            // Google), but a token must map to exactly one: their audiences may not overlap.
            let shared = svc.directory.idps_by_issuer(&b.issuer).await?;
            if shared
                .iter()
                .any(|i| i.audiences.iter().any(|a| b.audiences.contains(a)))
            {
                return Err(ApiError::Conflict(
                    "that issuer is already trusted for one of these audiences".into(),
                ));
            }
            for team in b.group_teams.values() {
                let t = get(svc, permit, team, EntityKind::Team).await?;
                if org_of(svc, &t).await?.as_deref() != Some(b.org_id.as_str()) {
                    return Err(ApiError::Validation(format!(
                        "team '{team}' is not in organization '{}'",
                        b.org_id
                    )));
                }
            }
            let idp = crate::policy::oidc::IdentityProvider {
                id: crypto::random_id("idp_"),
                org_id: b.org_id,
                issuer: b.issuer,
                audiences: b.audiences,
                subject_claim: b.subject_claim.unwrap_or_else(|| "sub".into()),
                email_claim: b.email_claim.unwrap_or_else(|| "email".into()),
                groups_claim: b.groups_claim.unwrap_or_else(|| "groups".into()),
                group_teams: b.group_teams,
                login_client_id: b.login_client_id,
                created_at: svc.now(),
            };
            match svc.directory.create_idp(&idp).await {
                Err(StoreError::Conflict) => return Err(ApiError::Conflict("that issuer is already trusted".into())),
                other => other?,
            }
            json(201, &idp)
        }
        ([id], Method::Delete) => {
            let missing = || ApiError::NotFound(format!("no identity provider with id '{id}'"));
            let idp = svc.directory.list_idps().await?.into_iter().find(|i| i.id == *id);
            let Some(i) = idp.filter(|i| permit.may_read_org(&i.org_id)) else {
                return Err(missing());
            };
            super::require(permit, &Scope::Org(i.org_id))?;
            if !svc.directory.delete_idp(id).await? {
                return Err(missing());
            }
            Ok(HttpResponse::new(204))
        }
        ([] | [_], _) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound(format!("no admin resource at {}", req.path))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRole {
    principal_id: String,
    role: Role,
    /// The org (org_admin, viewer) or workspace (workspace_admin).
    scope_id: String,
}

/// `/admin/v1/roles`: admin roles held by users and agents.
pub async fn roles(svc: &Services<'_>, permit: &AdminPermit, req: &HttpRequest, parts: &[&str]) -> ApiResult {
    match (parts, req.method) {
        ([], Method::Get) => {
            let mut roles = svc.directory.list_roles().await?;
            roles.retain(|r| permit.may_read_org(&r.org_id));
            json(200, &json!({ "roles": roles }))
        }
        ([], Method::Post) => {
            let b: CreateRole = body(req)?;
            let p = visible(svc, permit, &b.principal_id).await?;
            let p = p
                .filter(|p| p.kind.is_principal())
                .ok_or_else(|| ApiError::Validation(format!("no user or agent with id '{}'", b.principal_id)))?;
            let want = if b.role == Role::WorkspaceAdmin {
                EntityKind::Workspace
            } else {
                EntityKind::Org
            };
            let scope = visible(svc, permit, &b.scope_id)
                .await?
                .filter(|e| e.kind == want)
                .ok_or_else(|| ApiError::Validation(format!("scope_id must name an existing {}", want.as_str())))?;
            let org = org_of(svc, &scope).await?.unwrap_or_default();
            if p.parent_id.as_deref() != Some(org.as_str()) {
                return Err(ApiError::Validation(
                    "the principal must belong to the scope's organization".into(),
                ));
            }
            // Appointing admins is an organization-level act.
            super::require(permit, &Scope::Org(org.clone()))?;
            let r = RoleAssignment {
                id: crypto::random_id("role_"),
                principal_id: p.id,
                role: b.role,
                scope_id: b.scope_id,
                org_id: org,
                created_at: svc.now(),
            };
            match svc.directory.create_role(&r).await {
                Err(StoreError::Conflict) => return Err(ApiError::Conflict("that role is already held".into())),
                other => other?,
            }
            json(201, &r)
        }
        ([id], Method::Delete) => {
            let role = svc.directory.list_roles().await?.into_iter().find(|r| r.id == *id);
            let Some(r) = role.filter(|r| permit.may_read_org(&r.org_id)) else {
                return Err(ApiError::NotFound(format!("no role with id '{id}'")));
            };
            super::require(permit, &Scope::Org(r.org_id))?;
            svc.directory.delete_role(id).await?;
            Ok(HttpResponse::new(204))
        }
        ([] | [_], _) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound(format!("no admin resource at {}", req.path))),
    }
}
