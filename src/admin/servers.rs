//! `/admin/v1/servers`: register, list, read, update and remove upstream servers; sync and read
//! their tool catalogs.
use serde::Deserialize;

use crate::observe::CaptureMode;
use serde_json::json;

use crate::gateway::{sync, GatewayError, Services};
use crate::http::{HttpRequest, HttpResponse, Method};
use crate::policy::AdminPermit;
use crate::store::{ServerRecord, StoreError};

use super::{body, json, ApiError, ApiResult};

pub const MAX_SLUG_LEN: usize = 32;
pub const MAX_NAME_LEN: usize = 200;
pub const MAX_TEXT_LEN: usize = 2000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateServer {
    slug: String,
    name: String,
    url: String,
    description: Option<String>,
    owner: Option<String>,
    timeout_ms: Option<u32>,
    /// Total deadline of one exchange (ms): clamped to the bounds of `UPSTREAM_TOTAL_TIMEOUT_MS`.
    total_timeout_ms: Option<u32>,
    new_tool_policy: Option<String>,
    /// How the gateway authenticates to the upstream (sealed; needed before the first sync).
    credentials: Option<crate::upstream_auth::CredentialSpec>,
    /// The owning organization (default: see `AdminPermit::default_owner`).
    org_id: Option<String>,
    /// What events keep of call arguments (`null`/absent: the organization's setting).
    capture: Option<CaptureMode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchServer {
    name: Option<String>,
    url: Option<String>,
    description: Option<String>,
    owner: Option<String>,
    status: Option<String>,
    timeout_ms: Option<u32>,
    /// Total deadline of one exchange (ms): clamped to the bounds of `UPSTREAM_TOTAL_TIMEOUT_MS`.
    total_timeout_ms: Option<u32>,
    new_tool_policy: Option<String>,
    /// New credentials, stored with the change; required anew when `url` moves to another
    /// origin (the old ones are dropped then, never presented to the new origin).
    credentials: Option<crate::upstream_auth::CredentialSpec>,
    /// What events keep of call arguments; `null` inherits the organization's setting.
    #[serde(default, deserialize_with = "nullable")]
    capture: Option<Option<CaptureMode>>,
}

/// A field that may be absent (`None`: unchanged) or `null` (`Some(None)`: cleared).
pub(super) fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

pub async fn route(svc: &Services<'_>, permit: &AdminPermit, req: &HttpRequest, parts: &[&str]) -> ApiResult {
    match (parts, req.method) {
        ([], Method::Get) => {
            let visible: Vec<_> = svc
                .registry
                .list_servers()
                .await?
                .into_iter()
                .filter(|s| permit.may_see(s.org_id.as_deref()))
                .collect();
            super::usage::servers(svc, permit, req, visible).await
        }
        ([], Method::Post) => create(svc, permit, req).await,
        ([slug], Method::Get) => {
            let mut doc =
                serde_json::to_value(get(svc, permit, slug).await?).map_err(|e| ApiError::Validation(e.to_string()))?;
            super::usage::Uses::load(svc, permit)
                .await?
                .annotate(&mut doc, slug, None);
            json(200, &doc)
        }
        ([slug], Method::Patch) => patch(svc, permit, req, slug).await,
        ([slug], Method::Delete) => {
            let server = get(svc, permit, slug).await?;
            super::require_manage(permit, server.org_id.as_deref())?;
            if svc.registry.delete_server(slug).await? {
                super::credentials::remove_all(svc, slug).await?;
                svc.registry.bump_catalog_generation().await?;
                Ok(HttpResponse::new(204))
            } else {
                Err(not_found(slug))
            }
        }
        ([slug, "sync"], Method::Post) => {
            let server = get(svc, permit, slug).await?;
            super::require_manage(permit, server.org_id.as_deref())?;
            let server = resync(svc, &server).await?;
            json(200, &server)
        }
        ([slug, "connections"], Method::Get) => {
            get(svc, permit, slug).await?;
            let list = crate::upstream_auth::connect::connections(svc, slug)
                .await
                .map_err(|e| ApiError::Store(StoreError::Backend(e.to_string())))?;
            json(200, &json!({ "connections": list }))
        }
        ([slug, "tools"], Method::Get) => {
            get(svc, permit, slug).await?;
            let status = query_param(req, "status");
            let uses = super::usage::Uses::load(svc, permit).await?;
            let mut tools = Vec::new();
            for t in svc.registry.list_tools(slug).await? {
                if status.as_deref().is_none_or(|s| s == t.status) {
                    let mut doc = serde_json::to_value(&t).map_err(|e| ApiError::Validation(e.to_string()))?;
                    uses.annotate(&mut doc, slug, Some(&t.name));
                    tools.push(doc);
                }
            }
            json(200, &json!({"tools": tools}))
        }
        ([slug, "tools", tool, "approve"], Method::Post) => {
            let server = get(svc, permit, slug).await?;
            super::require_manage(permit, server.org_id.as_deref())?;
            if !svc.registry.approve_tool(slug, tool).await? {
                return Err(ApiError::NotFound(format!("server '{slug}' has no tool '{tool}'")));
            }
            svc.registry.bump_catalog_generation().await?;
            let t = svc
                .registry
                .list_tools(slug)
                .await?
                .into_iter()
                .find(|t| t.name == *tool);
            json(200, &t)
        }
        ([] | [_] | [_, "sync" | "tools"] | [_, "tools", _, "approve"], _) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound(format!("no admin resource at {}", req.path))),
    }
}

fn not_found(slug: &str) -> ApiError {
    ApiError::NotFound(format!("no server with slug '{slug}'"))
}

/// The server, if it exists for this caller: another organization's server answers exactly as
/// a missing one (same status, same body).
pub async fn get(svc: &Services<'_>, permit: &AdminPermit, slug: &str) -> Result<ServerRecord, ApiError> {
    svc.registry
        .get_server(slug)
        .await?
        .filter(|s| permit.may_see(s.org_id.as_deref()))
        .ok_or_else(|| not_found(slug))
}

async fn create(svc: &Services<'_>, permit: &AdminPermit, req: &HttpRequest) -> ApiResult {
    let b: CreateServer = body(req)?;
    let org_id = super::new_owner(svc, permit, b.org_id.clone()).await?;
    validate_slug(&b.slug)?;
    validate_name(&b.name)?;
    validate_url(svc, &b.url)?;
    validate_text("description", b.description.as_deref())?;
    validate_text("owner", b.owner.as_deref())?;
    let new_tool_policy = b.new_tool_policy.unwrap_or_else(|| "approve".into());
    validate_policy(&new_tool_policy)?;
    if svc.registry.get_server(&b.slug).await?.is_some() {
        return Err(ApiError::Conflict(format!(
            "a server with slug '{}' already exists",
            b.slug
        )));
    }
    let now = svc.now();
    let draft = ServerRecord {
        slug: b.slug,
        name: b.name,
        url: b.url,
        description: b.description,
        owner: b.owner,
        status: "active".into(),
        era: None,
        protocol_version: None,
        timeout_ms: b.timeout_ms,
        total_timeout_ms: total_timeout(b.total_timeout_ms)?,
        server_info: None,
        capabilities: None,
        instructions: None,
        last_synced_at: None,
        last_sync_error: None,
        new_tool_policy,
        created_at: now.clone(),
        updated_at: now,
        org_id,
        legacy_version: None,
        capture: b.capture,
    };
    if let Some(spec) = &b.credentials {
        super::credentials::store(svc, &draft.slug, spec).await?;
    }
    // A server whose users connect their own accounts cannot be read before someone connects:
    // it starts with an empty catalog, read at the first connection.
    let per_user = matches!(
        b.credentials,
        Some(crate::upstream_auth::CredentialSpec::OauthUser { .. })
    );
    // Read the catalog before storing anything: an unreachable upstream leaves no half-made row
    // (and no credential).
    let synced = if per_user {
        let mut s = draft.clone();
        s.last_sync_error = Some("waiting for a user to connect an account".into());
        Ok((s, Vec::new()))
    } else {
        sync::sync(svc, &draft, None).await
    };
    let (server, tools) = match synced {
        Ok(r) => r,
        Err(cause) => {
            if b.credentials.is_some() {
                super::credentials::remove(svc, &draft.slug).await?;
            }
            return Err(ApiError::Upstream {
                slug: draft.slug.clone(),
                cause,
            });
        }
    };
    match svc.registry.create_server(&server, &tools).await {
        Err(StoreError::Conflict) => {
            return Err(ApiError::Conflict(format!(
                "a server with slug '{}' already exists",
                server.slug
            )))
        }
        other => other?,
    }
    svc.registry.bump_catalog_generation().await?;
    let mut resp = json(201, &server)?;
    resp.headers
        .set("location", format!("{}/servers/{}", super::PREFIX, server.slug));
    Ok(resp)
}

/// Syncs an existing server (see `sync::refresh`).
async fn resync(svc: &Services<'_>, server: &ServerRecord) -> Result<ServerRecord, ApiError> {
    sync::refresh(svc, server).await.map_err(|e| match e {
        sync::RefreshError::Upstream(cause) => ApiError::Upstream {
            slug: server.slug.clone(),
            cause,
        },
        sync::RefreshError::Gateway(GatewayError::Store(s)) => ApiError::Store(s),
        sync::RefreshError::Gateway(GatewayError::UnknownServer) => not_found(&server.slug),
        sync::RefreshError::Gateway(other) => ApiError::Store(StoreError::Backend(other.to_string())),
    })
}

async fn patch(svc: &Services<'_>, permit: &AdminPermit, req: &HttpRequest, slug: &str) -> ApiResult {
    let b: PatchServer = body(req)?;
    let current = get(svc, permit, slug).await?;
    super::require_manage(permit, current.org_id.as_deref())?;
    let mut s = current.clone();
    if let Some(n) = b.name {
        validate_name(&n)?;
        s.name = n;
    }
    if let Some(d) = b.description {
        validate_text("description", Some(&d))?;
        s.description = Some(d);
    }
    if let Some(o) = b.owner {
        validate_text("owner", Some(&o))?;
        s.owner = Some(o);
    }
    if let Some(st) = b.status {
        if st != "active" && st != "disabled" {
            return Err(ApiError::Validation("status must be \"active\" or \"disabled\"".into()));
        }
        s.status = st;
    }
    if b.timeout_ms.is_some() {
        s.timeout_ms = b.timeout_ms;
    }
    if b.total_timeout_ms.is_some() {
        s.total_timeout_ms = total_timeout(b.total_timeout_ms)?;
    }
    if let Some(p) = b.new_tool_policy {
        validate_policy(&p)?;
        s.new_tool_policy = p;
    }
    if let Some(c) = b.capture {
        s.capture = c;
    }
    if let Some(spec) = &b.credentials {
        spec.validate().map_err(ApiError::Validation)?;
    }
    s.updated_at = svc.now();
    match b.url {
        // A new URL is a new upstream: its catalog is read before the change is stored.
        Some(u) if u != current.url => {
            validate_url(svc, &u)?;
            // Stored credentials never travel to another origin: they are dropped (server-wide
            // and per-user) before the new upstream is contacted, and only credentials given in
            // this request go there. If the sync fails, nothing changed: they are put back.
            let moved = origin(&u) != origin(&current.url);
            let saved = if moved || b.credentials.is_some() {
                let saved = super::credentials::snapshot(svc, slug).await?;
                if moved {
                    super::credentials::remove_all(svc, slug).await?;
                }
                if let Some(spec) = &b.credentials {
                    super::credentials::store(svc, slug, spec).await?;
                }
                Some(saved)
            } else {
                None
            };
            s.url = u;
            let previous = svc.registry.list_tools(&s.slug).await?;
            let (synced, tools) = match sync::sync(svc, &s, Some(&previous)).await {
                Ok(r) => r,
                Err(cause) => {
                    if let Some(saved) = saved {
                        super::credentials::restore(svc, slug, saved).await?;
                    }
                    return Err(ApiError::Upstream {
                        slug: s.slug.clone(),
                        cause,
                    });
                }
            };
            // Deleted while the upstream was being read: it stays deleted.
            if !svc.registry.replace_catalog(&synced, &tools).await? {
                return Err(not_found(slug));
            }
            svc.registry.bump_catalog_generation().await?;
            json(200, &synced)
        }
        _ => {
            if let Some(spec) = &b.credentials {
                super::credentials::store(svc, slug, spec).await?;
            }
            svc.registry.update_server(&s).await?;
            if s.status != current.status {
                svc.registry.bump_catalog_generation().await?;
            }
            json(200, &s)
        }
    }
}

/// Scheme, host and port of a URL (what credentials are bound to).
fn origin(u: &str) -> Option<String> {
    url::Url::parse(u).ok().map(|u| u.origin().ascii_serialization())
}

fn validate_policy(p: &str) -> Result<(), ApiError> {
    match p {
        "approve" | "quarantine" => Ok(()),
        _ => Err(ApiError::Validation(
            "new_tool_policy must be \"approve\" or \"quarantine\"".into(),
        )),
    }
}

/// A query-string parameter (no percent-decoding needed for the values used here).
pub fn query_param(req: &HttpRequest, name: &str) -> Option<String> {
    req.query
        .as_deref()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

pub fn validate_slug(slug: &str) -> Result<(), ApiError> {
    let ok = !slug.is_empty()
        && slug.len() <= MAX_SLUG_LEN
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::Validation(format!(
            "slug must match [a-z0-9-]{{1,{MAX_SLUG_LEN}}}"
        )))
    }
}

fn validate_name(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() || name.len() > MAX_NAME_LEN {
        return Err(ApiError::Validation(format!(
            "name must be 1 to {MAX_NAME_LEN} characters"
        )));
    }
    Ok(())
}

/// A per-server total deadline: 0 is refused (it would fail every call), anything else is
/// clamped to the bounds of the gateway-wide setting, and stored as it will apply.
fn total_timeout(ms: Option<u32>) -> Result<Option<u32>, ApiError> {
    match ms {
        Some(0) => Err(ApiError::Validation("total_timeout_ms must be positive".into())),
        other => Ok(other.map(crate::config::clamp_total)),
    }
}

fn validate_text(field: &str, v: Option<&str>) -> Result<(), ApiError> {
    match v {
        Some(t) if t.len() > MAX_TEXT_LEN => Err(ApiError::Validation(format!(
            "{field} exceeds {MAX_TEXT_LEN} characters"
        ))),
        _ => Ok(()),
    }
}

/// The upstream URL rules (`crate::url_rules`): malformed is a validation error (422); userinfo,
/// non-public targets and the gateway's own origin are refused (400).
pub(super) fn validate_url(svc: &Services<'_>, u: &str) -> Result<(), ApiError> {
    use crate::url_rules::{check, UrlRefusal};
    match check(u, svc.config.allow_private_upstreams, svc.origin) {
        Ok(_) => Ok(()),
        Err(UrlRefusal::Malformed) => Err(ApiError::Validation(UrlRefusal::Malformed.message().into())),
        Err(r) => Err(ApiError::BadRequest(r.message().into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_rules() {
        assert!(validate_slug("demo-1").is_ok());
        for bad in ["", "Demo", "a_b", "a b", &"x".repeat(33)] {
            assert!(validate_slug(bad).is_err(), "{bad}");
        }
        assert!(validate_name(" ").is_err());
    }
}
