//! `GET /admin/v1/config` and `POST /admin/v1/config[?dry_run=true]`: one organization's
//! configuration exported as a document, and a document applied as the organization's desired
//! state — validated whole, diffed, and written all-or-nothing (docs/config-as-code.md).
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::gateway::{sync, Services};
use crate::http::{HttpRequest, Method};
use crate::policy::roles::Scope;
use crate::policy::AdminPermit;
use crate::store::records::Grant;
use crate::store::{
    Entity, EntityKind, PolicyRecord, ServerRecord, StoreError, ToolRecord, VirtualServer, Write, DEFAULT_ORG,
};

use super::config_diff::{diff, fixed_fields, Change, Kind, Op};
use super::config_doc::{
    self, ConfigDoc, EntryDoc, GrantDoc, MemberDoc, PolicyDoc, ServerDoc, TeamDoc, UserDoc, VirtualDoc,
};
use super::{ApiError, ApiResult};

/// Directory entries read per page while loading an organization.
const PAGE: usize = 1000;

pub async fn route(svc: &Services<'_>, permit: &AdminPermit, req: &HttpRequest, parts: &[&str]) -> ApiResult {
    match (parts, req.method) {
        ([], Method::Get) => {
            let org = target_org(svc, permit, req).await?;
            let current = load(svc, &org).await?;
            super::json(200, &current.doc)
        }
        ([], Method::Post) => apply(svc, permit, req).await,
        ([], _) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound(format!("no admin resource at {}", req.path))),
    }
}

/// Whether the request is `POST /admin/v1/config` (its audit record is the diff's summary).
pub fn is_config(req: &HttpRequest) -> bool {
    req.path.trim_end_matches('/') == format!("{}/config", super::PREFIX)
}

/// Whether the request only asks what applying would change (nothing is written or recorded).
pub fn is_dry_run(req: &HttpRequest) -> bool {
    is_config(req) && query(req, "dry_run").is_some_and(|v| v == "true" || v == "1")
}

fn query(req: &HttpRequest, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.query.as_deref()?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The organization a request is about: `?org=`, else `org_default` for the bootstrap admin
/// and the caller's own for an org admin of one. One the caller cannot read answers as missing.
async fn target_org(svc: &Services<'_>, permit: &AdminPermit, req: &HttpRequest) -> Result<String, ApiError> {
    let org = match query(req, "org") {
        Some(o) => o,
        None if permit.is_super_admin() => DEFAULT_ORG.to_string(),
        None => match permit.readable_orgs().unwrap_or_default().as_slice() {
            [one] => one.clone(),
            _ => {
                return Err(ApiError::Validation(
                    "you hold roles in several organizations: name one with org".into(),
                ))
            }
        },
    };
    let exists = svc
        .directory
        .get_entity(&org)
        .await?
        .is_some_and(|e| e.kind == EntityKind::Org);
    if !exists || !permit.may_read_org(&org) {
        return Err(ApiError::NotFound(format!("no organization '{org}'")));
    }
    Ok(org)
}

/// An organization as stored: its document, and the records behind it (to update in place).
struct Current {
    doc: ConfigDoc,
    servers: BTreeMap<String, ServerRecord>,
    virtuals: BTreeMap<String, VirtualServer>,
    entities: BTreeMap<String, Entity>,
    /// Grant ids by `GrantDoc::key` (identical grants share a key).
    grants: BTreeMap<String, Vec<String>>,
    policies: BTreeMap<String, PolicyRecord>,
}

async fn entries(svc: &Services<'_>, kind: EntityKind, parent: &str) -> Result<Vec<Entity>, ApiError> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = svc
            .directory
            .list_entities(kind, Some(parent), after.as_deref(), PAGE)
            .await?;
        let full = page.len() == PAGE;
        after = page.last().map(|e| e.id.clone());
        all.extend(page);
        if !full {
            return Ok(all);
        }
    }
}

async fn load(svc: &Services<'_>, org: &str) -> Result<Current, ApiError> {
    let workspaces = entries(svc, EntityKind::Workspace, org).await?;
    let mut teams = Vec::new();
    for w in &workspaces {
        teams.extend(entries(svc, EntityKind::Team, &w.id).await?);
    }
    let users = entries(svc, EntityKind::User, org).await?;
    let agents = entries(svc, EntityKind::Agent, org).await?;
    let mut memberships = Vec::new();
    for g in workspaces.iter().chain(&teams) {
        for p in svc.directory.list_members(&g.id).await? {
            memberships.push(MemberDoc {
                group: g.id.clone(),
                principal: p,
            });
        }
    }
    let entities: BTreeMap<String, Entity> = workspaces
        .iter()
        .chain(&teams)
        .chain(&users)
        .chain(&agents)
        .map(|e| (e.id.clone(), e.clone()))
        .collect();
    let mut grants: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut grant_docs = Vec::new();
    for g in svc.directory.list_grants().await? {
        if g.subject_id != org && !entities.contains_key(&g.subject_id) {
            continue;
        }
        let d = GrantDoc {
            subject_kind: g.subject_kind,
            subject_id: g.subject_id,
            resource_kind: g.resource_kind,
            resource: g.resource,
            tool: g.tool,
            effect: g.effect,
        };
        let ids = grants.entry(d.key()).or_default();
        if ids.is_empty() {
            grant_docs.push(d);
        }
        ids.push(g.id);
    }
    let servers: BTreeMap<String, ServerRecord> = svc
        .registry
        .list_servers()
        .await?
        .into_iter()
        .filter(|s| s.org_id.as_deref() == Some(org))
        .map(|s| (s.slug.clone(), s))
        .collect();
    let virtuals: BTreeMap<String, VirtualServer> = svc
        .virtuals
        .list_virtual()
        .await?
        .into_iter()
        .filter(|v| v.org_id.as_deref() == Some(org))
        .map(|v| (v.slug.clone(), v))
        .collect();
    let policies: BTreeMap<String, PolicyRecord> = svc
        .policies
        .list_policies(org)
        .await?
        .into_iter()
        .map(|p| (p.name.clone(), p))
        .collect();
    let entry = |e: &Entity| EntryDoc {
        id: e.id.clone(),
        name: e.name.clone(),
    };
    let mut doc = ConfigDoc {
        version: config_doc::CONFIG_VERSION,
        org: org.to_string(),
        servers: servers.values().map(server_doc).collect(),
        virtual_servers: virtuals
            .values()
            .map(|v| VirtualDoc {
                slug: v.slug.clone(),
                name: v.name.clone(),
                description: v.description.clone(),
                tools: v.tools.clone(),
            })
            .collect(),
        workspaces: workspaces.iter().map(entry).collect(),
        teams: teams
            .iter()
            .map(|t| TeamDoc {
                id: t.id.clone(),
                workspace: t.parent_id.clone().unwrap_or_default(),
                name: t.name.clone(),
            })
            .collect(),
        users: users
            .iter()
            .map(|u| UserDoc {
                id: u.id.clone(),
                name: u.name.clone(),
                email: u.email.clone(),
                external_subject: u.external_subject.clone(),
            })
            .collect(),
        agents: agents.iter().map(entry).collect(),
        memberships,
        grants: grant_docs,
        policies: policies
            .values()
            .map(|p| PolicyDoc {
                name: p.name.clone(),
                mode: p.mode.clone(),
                scope: p.scope.clone(),
                rules: p.rules.clone(),
            })
            .collect(),
    };
    doc.sort();
    Ok(Current {
        doc,
        servers,
        virtuals,
        entities,
        grants,
        policies,
    })
}

fn server_doc(s: &ServerRecord) -> ServerDoc {
    ServerDoc {
        slug: s.slug.clone(),
        name: s.name.clone(),
        url: s.url.clone(),
        description: s.description.clone(),
        owner: s.owner.clone(),
        status: s.status.clone(),
        timeout_ms: s.timeout_ms,
        total_timeout_ms: s.total_timeout_ms,
        new_tool_policy: s.new_tool_policy.clone(),
        capture: s.capture,
    }
}

/// A server record with the document's fields (`base`: the stored one, or a new draft).
fn with_doc(base: ServerRecord, d: &ServerDoc, now: &str) -> ServerRecord {
    ServerRecord {
        name: d.name.clone(),
        url: d.url.clone(),
        description: d.description.clone(),
        owner: d.owner.clone(),
        status: d.status.clone(),
        timeout_ms: d.timeout_ms,
        total_timeout_ms: d.total_timeout_ms,
        new_tool_policy: d.new_tool_policy.clone(),
        capture: d.capture,
        updated_at: now.to_string(),
        ..base
    }
}

async fn apply(svc: &Services<'_>, permit: &AdminPermit, req: &HttpRequest) -> ApiResult {
    // Anything but a clear yes or no is refused: a mistyped `dry_run` must never apply.
    if query(req, "dry_run").is_some_and(|v| !["true", "false", "1", "0"].contains(&v.as_str())) {
        return Err(ApiError::Validation("dry_run: must be true, false, 1 or 0".into()));
    }
    let org = target_org(svc, permit, req).await?;
    if !permit.may_write(&Scope::Org(org.clone())) {
        return Err(ApiError::Forbidden(
            "only an org admin applies its organization's configuration".into(),
        ));
    }
    // JSON or YAML: one value either way, so validation, diff and apply are the same.
    let body: Value = super::document(req)?;
    let desired = config_doc::parse(&body).map_err(ApiError::Invalid)?;
    if desired.org != org {
        return Err(ApiError::Invalid(vec![format!(
            "org: the document is for '{}', not '{org}'",
            desired.org
        )]));
    }
    let current = load(svc, &org).await?;
    let mut errors = fixed_fields(&current.doc, &desired);
    errors.extend(collisions(svc, &current, &desired).await?);
    // Servers whose catalog is read when the document applies (new, or at a new URL).
    let pending: BTreeSet<String> = desired
        .servers
        .iter()
        .filter(|s| current.servers.get(&s.slug).is_none_or(|c| c.url != s.url))
        .map(|s| s.slug.clone())
        .collect();
    errors.extend(virtual_tools(svc, &desired, &pending, &BTreeMap::new()).await?);
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let changes = diff(&current.doc, &desired);
    // An admin's document never deletes the admin applying it (it would lock itself out).
    let (me, _) = permit.actor();
    if changes
        .iter()
        .any(|c| c.op == Op::Delete && matches!(c.kind, Kind::User | Kind::Agent) && c.id == me)
    {
        return Err(ApiError::Invalid(vec![format!(
            "the document would delete '{me}', the principal applying it: list it"
        )]));
    }
    if is_dry_run(req) || changes.is_empty() {
        return super::json(200, &json!({ "org_id": org, "changes": changes }));
    }
    let now = svc.now();
    // Read every new catalog before anything is written (as registration does): an unreachable
    // upstream leaves everything as it was.
    let mut moved_credentials = Vec::new();
    let mut synced: BTreeMap<String, (ServerRecord, Vec<ToolRecord>)> = BTreeMap::new();
    for slug in &pending {
        let d = desired
            .servers
            .iter()
            .find(|s| &s.slug == slug)
            .expect("pending from desired");
        let (draft, previous) = match current.servers.get(slug) {
            Some(c) => {
                // Stored credentials never travel to another origin (as PATCH): dropped before
                // the new upstream is contacted, put back if the apply fails.
                if origin(&c.url) != origin(&d.url) {
                    moved_credentials.push((slug.clone(), super::credentials::snapshot(svc, slug).await?));
                    super::credentials::remove_all(svc, slug).await?;
                }
                (with_doc(c.clone(), d, &now), Some(svc.registry.list_tools(slug).await?))
            }
            None => (new_server(d, &org, &now), None),
        };
        match sync::sync(svc, &draft, previous.as_deref()).await {
            Ok(r) => {
                synced.insert(slug.clone(), r);
            }
            Err(cause) => {
                restore(svc, moved_credentials).await?;
                return Err(ApiError::Upstream {
                    slug: slug.clone(),
                    cause,
                });
            }
        }
    }
    let catalogs: BTreeMap<String, Vec<ToolRecord>> = synced.iter().map(|(k, (_, t))| (k.clone(), t.clone())).collect();
    let late = virtual_tools(svc, &desired, &BTreeSet::new(), &catalogs).await?;
    if !late.is_empty() {
        restore(svc, moved_credentials).await?;
        return Err(ApiError::Invalid(late));
    }
    let writes = writes(&current, &changes, &mut synced, &org, &now)?;
    if let Err(e) = svc.changes.apply(&writes).await {
        restore(svc, moved_credentials).await?;
        return Err(match e {
            StoreError::Conflict => ApiError::Conflict(
                "the configuration changed while the document was applied; nothing was changed, try again".into(),
            ),
            other => ApiError::Store(other),
        });
    }
    for c in changes.iter().filter(|c| c.kind == Kind::Server && c.op == Op::Delete) {
        super::credentials::remove_all(svc, &c.id).await?;
    }
    svc.registry.bump_catalog_generation().await?;
    super::json(200, &json!({ "org_id": org, "changes": changes }))
}

async fn restore(svc: &Services<'_>, saved: Vec<(String, super::credentials::Saved)>) -> Result<(), ApiError> {
    for (slug, s) in saved {
        super::credentials::restore(svc, &slug, s).await?;
    }
    Ok(())
}

/// Scheme, host and port of a URL (what credentials are bound to).
fn origin(u: &str) -> Option<String> {
    url::Url::parse(u).ok().map(|u| u.origin().ascii_serialization())
}

fn new_server(d: &ServerDoc, org: &str, now: &str) -> ServerRecord {
    let base = ServerRecord {
        slug: d.slug.clone(),
        created_at: now.to_string(),
        org_id: Some(org.to_string()),
        ..ServerRecord::default()
    };
    with_doc(base, d, now)
}

/// Keys the document takes that belong to something outside the organization (as registering
/// it would answer, 409), and server URLs the gateway refuses. Each named by its path.
async fn collisions(svc: &Services<'_>, current: &Current, desired: &ConfigDoc) -> Result<Vec<String>, ApiError> {
    let mut errors = Vec::new();
    for (i, s) in desired.servers.iter().enumerate() {
        if !current.servers.contains_key(&s.slug) && svc.registry.get_server(&s.slug).await?.is_some() {
            errors.push(format!(
                "servers[{i}].slug: a server with slug '{}' already exists",
                s.slug
            ));
        }
        if current.servers.get(&s.slug).is_none_or(|c| c.url != s.url) {
            if let Err(e) = super::servers::validate_url(svc, &s.url) {
                errors.push(format!("servers[{i}].url: {e}"));
            }
        }
    }
    for (i, v) in desired.virtual_servers.iter().enumerate() {
        if !current.virtuals.contains_key(&v.slug) && svc.virtuals.get_virtual(&v.slug).await?.is_some() {
            errors.push(format!(
                "virtual_servers[{i}].slug: a virtual server with slug '{}' already exists",
                v.slug
            ));
        }
    }
    let ids = desired
        .workspaces
        .iter()
        .enumerate()
        .map(|(i, e)| ("workspaces", i, &e.id))
        .chain(desired.teams.iter().enumerate().map(|(i, e)| ("teams", i, &e.id)))
        .chain(desired.users.iter().enumerate().map(|(i, e)| ("users", i, &e.id)))
        .chain(desired.agents.iter().enumerate().map(|(i, e)| ("agents", i, &e.id)));
    for (list, i, id) in ids {
        if !current.entities.contains_key(id) && svc.directory.get_entity(id).await?.is_some() {
            errors.push(format!("{list}[{i}].id: '{id}' already exists"));
        }
    }
    for (i, u) in desired.users.iter().enumerate() {
        let Some(sub) = &u.external_subject else { continue };
        // Creates run before deletes, so even a user this document deletes still holds it.
        if let Some(e) = svc.directory.find_by_external_subject(sub).await? {
            if e.id != u.id {
                errors.push(format!("users[{i}].external_subject: another user has it"));
            }
        }
    }
    Ok(errors)
}

/// Every tool a virtual server of the document names must be in its server's catalog: a server
/// of the document (its catalog as stored, or as just read in `catalogs`; those in `pending`,
/// not read yet, are checked when the document applies), or a platform-wide one.
async fn virtual_tools(
    svc: &Services<'_>,
    desired: &ConfigDoc,
    pending: &BTreeSet<String>,
    catalogs: &BTreeMap<String, Vec<ToolRecord>>,
) -> Result<Vec<String>, ApiError> {
    let mut errors = Vec::new();
    let mut read: BTreeMap<String, Vec<ToolRecord>> = BTreeMap::new();
    for (i, v) in desired.virtual_servers.iter().enumerate() {
        for (j, t) in v.tools.iter().enumerate() {
            if pending.contains(&t.server) {
                continue;
            }
            if !read.contains_key(&t.server) {
                let tools = if let Some(c) = catalogs.get(&t.server) {
                    c.clone()
                } else {
                    let ours = desired.servers.iter().any(|s| s.slug == t.server);
                    let platform = !ours
                        && svc
                            .registry
                            .get_server(&t.server)
                            .await?
                            .is_some_and(|s| s.org_id.is_none());
                    if ours || platform {
                        svc.registry.list_tools(&t.server).await?
                    } else {
                        Vec::new()
                    }
                };
                read.insert(t.server.clone(), tools);
            }
            if !read[&t.server].iter().any(|c| c.name == t.tool) {
                errors.push(format!(
                    "virtual_servers[{i}].tools[{j}]: server '{}' has no tool '{}'",
                    t.server, t.tool
                ));
            }
        }
    }
    Ok(errors)
}

fn doc_of<T: serde::de::DeserializeOwned>(v: &Option<Value>) -> Result<T, ApiError> {
    serde_json::from_value(v.clone().unwrap_or_default())
        .map_err(|e| ApiError::Store(StoreError::Backend(e.to_string())))
}

fn entity(id: &str, kind: EntityKind, parent: &str, name: &str, now: &str) -> Entity {
    Entity {
        id: id.to_string(),
        kind,
        parent_id: Some(parent.to_string()),
        name: name.to_string(),
        email: None,
        external_subject: None,
        created_at: now.to_string(),
    }
}

/// The store writes of a list of changes, in its order.
fn writes(
    current: &Current,
    changes: &[Change],
    synced: &mut BTreeMap<String, (ServerRecord, Vec<ToolRecord>)>,
    org: &str,
    now: &str,
) -> Result<Vec<Write>, ApiError> {
    let mut out = Vec::new();
    for c in changes {
        let stored_entity = || current.entities.get(&c.id).cloned();
        match (c.kind, c.op) {
            (Kind::Workspace | Kind::Agent, op) if op != Op::Delete => {
                let d: EntryDoc = doc_of(&c.after)?;
                let kind = if c.kind == Kind::Agent {
                    EntityKind::Agent
                } else {
                    EntityKind::Workspace
                };
                out.push(match stored_entity() {
                    Some(e) => Write::UpdateEntity(Entity { name: d.name, ..e }),
                    None => Write::CreateEntity(entity(&d.id, kind, org, &d.name, now)),
                });
            }
            (Kind::Team, op) if op != Op::Delete => {
                let d: TeamDoc = doc_of(&c.after)?;
                out.push(match stored_entity() {
                    Some(e) => Write::UpdateEntity(Entity { name: d.name, ..e }),
                    None => Write::CreateEntity(entity(&d.id, EntityKind::Team, &d.workspace, &d.name, now)),
                });
            }
            (Kind::User, op) if op != Op::Delete => {
                let d: UserDoc = doc_of(&c.after)?;
                out.push(match stored_entity() {
                    Some(e) => Write::UpdateEntity(Entity {
                        name: d.name,
                        email: d.email,
                        ..e
                    }),
                    None => Write::CreateEntity(Entity {
                        email: d.email,
                        external_subject: d.external_subject,
                        ..entity(&d.id, EntityKind::User, org, &d.name, now)
                    }),
                });
            }
            (Kind::Workspace | Kind::Team | Kind::User | Kind::Agent, _) => out.push(Write::DeleteEntity(c.id.clone())),
            (Kind::Server, Op::Delete) => out.push(Write::DeleteServer(c.id.clone())),
            (Kind::Server, _) => {
                let d: ServerDoc = doc_of(&c.after)?;
                out.push(match (synced.remove(&d.slug), current.servers.get(&d.slug)) {
                    (Some((server, tools)), None) => Write::CreateServer { server, tools },
                    (Some((server, tools)), Some(_)) => Write::ReplaceCatalog { server, tools },
                    (None, Some(s)) => Write::UpdateServer(with_doc(s.clone(), &d, now)),
                    (None, None) => return Err(ApiError::Store(StoreError::Backend("unsynced server".into()))),
                });
            }
            (Kind::VirtualServer, Op::Delete) => out.push(Write::DeleteVirtual(c.id.clone())),
            (Kind::VirtualServer, _) => {
                let d: VirtualDoc = doc_of(&c.after)?;
                out.push(match current.virtuals.get(&d.slug) {
                    Some(v) => Write::UpdateVirtual(VirtualServer {
                        name: d.name,
                        description: d.description,
                        tools: d.tools,
                        updated_at: now.to_string(),
                        ..v.clone()
                    }),
                    None => Write::CreateVirtual(VirtualServer {
                        slug: d.slug,
                        name: d.name,
                        description: d.description,
                        tools: d.tools,
                        created_at: now.to_string(),
                        updated_at: now.to_string(),
                        org_id: Some(org.to_string()),
                    }),
                });
            }
            (Kind::Membership, op) => {
                let d: MemberDoc = doc_of(if op == Op::Delete { &c.before } else { &c.after })?;
                out.push(if op == Op::Delete {
                    Write::RemoveMember {
                        principal_id: d.principal,
                        group_id: d.group,
                    }
                } else {
                    Write::AddMember {
                        principal_id: d.principal,
                        group_id: d.group,
                        at: now.to_string(),
                    }
                });
            }
            (Kind::Grant, Op::Delete) => {
                for id in current.grants.get(&c.id).into_iter().flatten() {
                    out.push(Write::DeleteGrant(id.clone()));
                }
            }
            (Kind::Grant, _) => {
                let d: GrantDoc = doc_of(&c.after)?;
                out.push(Write::CreateGrant(Grant {
                    id: crate::crypto::random_id("grant_"),
                    subject_kind: d.subject_kind,
                    subject_id: d.subject_id,
                    resource_kind: d.resource_kind,
                    resource: d.resource,
                    tool: d.tool,
                    effect: d.effect,
                    created_at: now.to_string(),
                }));
            }
            (Kind::Policy, Op::Delete) => {
                if let Some(p) = current.policies.get(&c.id) {
                    out.push(Write::DeletePolicy {
                        org_id: org.to_string(),
                        id: p.id.clone(),
                    });
                }
            }
            (Kind::Policy, _) => {
                let d: PolicyDoc = doc_of(&c.after)?;
                out.push(match current.policies.get(&d.name) {
                    Some(p) => Write::UpdatePolicy(PolicyRecord {
                        mode: d.mode,
                        scope: d.scope,
                        rules: d.rules,
                        updated_at: now.to_string(),
                        ..p.clone()
                    }),
                    None => Write::CreatePolicy(PolicyRecord {
                        id: crate::crypto::random_id("pol_"),
                        org_id: org.to_string(),
                        name: d.name,
                        mode: d.mode,
                        scope: d.scope,
                        rules: d.rules,
                        created_at: now.to_string(),
                        updated_at: now.to_string(),
                    }),
                });
            }
        }
    }
    Ok(out)
}

/// The audit record of an apply: which changes it made, without their contents.
pub fn audit_summary(answer: &Value) -> Value {
    let changes: Vec<Value> = answer
        .get("changes")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| json!({"op": c.get("op"), "kind": c.get("kind"), "id": c.get("id")}))
                .collect()
        })
        .unwrap_or_default();
    json!({"org_id": answer.get("org_id"), "changes": changes})
}
