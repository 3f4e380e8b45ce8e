//! `/admin/v1/virtual-servers`: curated tool sets served at `/mcp/v/{slug}` — chosen tools of
//! registered servers, optionally renamed or re-described.
use std::collections::HashSet;

use serde::Deserialize;
use serde_json::json;

use crate::gateway::names::MAX_TOOL_NAME;
use crate::gateway::Services;
use crate::http::{HttpRequest, HttpResponse, Method};
use crate::policy::AdminPermit;
use crate::store::{StoreError, VirtualServer, VirtualTool};

use super::servers::{validate_slug, MAX_NAME_LEN, MAX_TEXT_LEN};
use super::{body, json, ApiError, ApiResult};

/// Most tools in one virtual server (a small, purpose-built context is the point).
pub const MAX_VIRTUAL_TOOLS: usize = 200;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateVirtual {
    slug: String,
    name: String,
    description: Option<String>,
    tools: Vec<VirtualTool>,
    /// The owning organization (default: see `AdminPermit::default_owner`).
    org_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchVirtual {
    name: Option<String>,
    description: Option<String>,
    tools: Option<Vec<VirtualTool>>,
}

pub async fn route(svc: &Services<'_>, permit: &AdminPermit, req: &HttpRequest, parts: &[&str]) -> ApiResult {
    match (parts, req.method) {
        ([], Method::Get) => {
            let visible: Vec<_> = svc
                .virtuals
                .list_virtual()
                .await?
                .into_iter()
                .filter(|v| permit.may_see(v.org_id.as_deref()))
                .collect();
            json(200, &json!({ "virtual_servers": visible }))
        }
        ([], Method::Post) => create(svc, permit, req).await,
        ([slug], Method::Get) => json(200, &get(svc, permit, slug).await?),
        ([slug], Method::Patch) => {
            let b: PatchVirtual = body(req)?;
            let mut v = get(svc, permit, slug).await?;
            super::require_manage(permit, v.org_id.as_deref())?;
            if let Some(n) = b.name {
                v.name = n;
            }
            if let Some(d) = b.description {
                v.description = Some(d);
            }
            if let Some(t) = b.tools {
                v.tools = t;
            }
            validate(svc, &v).await?;
            v.updated_at = svc.now();
            svc.virtuals.update_virtual(&v).await?;
            svc.registry.bump_catalog_generation().await?;
            json(200, &v)
        }
        ([slug], Method::Delete) => {
            let v = get(svc, permit, slug).await?;
            super::require_manage(permit, v.org_id.as_deref())?;
            if svc.virtuals.delete_virtual(slug).await? {
                svc.registry.bump_catalog_generation().await?;
                Ok(HttpResponse::new(204))
            } else {
                Err(not_found(slug))
            }
        }
        ([] | [_], _) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound(format!("no admin resource at {}", req.path))),
    }
}

fn not_found(slug: &str) -> ApiError {
    ApiError::NotFound(format!("no virtual server with slug '{slug}'"))
}

/// The virtual server, if it exists for this caller (another organization's answers exactly as
/// a missing one).
async fn get(svc: &Services<'_>, permit: &AdminPermit, slug: &str) -> Result<VirtualServer, ApiError> {
    svc.virtuals
        .get_virtual(slug)
        .await?
        .filter(|v| permit.may_see(v.org_id.as_deref()))
        .ok_or_else(|| not_found(slug))
}

async fn create(svc: &Services<'_>, permit: &AdminPermit, req: &HttpRequest) -> ApiResult {
    let b: CreateVirtual = body(req)?;
    let org_id = super::new_owner(svc, permit, b.org_id).await?;
    let now = svc.now();
    let v = VirtualServer {
        slug: b.slug,
        name: b.name,
        description: b.description,
        tools: b.tools,
        created_at: now.clone(),
        updated_at: now,
        org_id,
    };
    validate(svc, &v).await?;
    match svc.virtuals.create_virtual(&v).await {
        Err(StoreError::Conflict) => {
            return Err(ApiError::Conflict(format!(
                "a virtual server with slug '{}' already exists",
                v.slug
            )))
        }
        other => other?,
    }
    svc.registry.bump_catalog_generation().await?;
    json(201, &v)
}

/// Slug and name rules, at most `MAX_VIRTUAL_TOOLS` tools, each naming a registered server and
/// a tool in its catalog, exposed names unique and within 64 characters.
async fn validate(svc: &Services<'_>, v: &VirtualServer) -> Result<(), ApiError> {
    validate_slug(&v.slug)?;
    if v.name.trim().is_empty() || v.name.len() > MAX_NAME_LEN {
        return Err(ApiError::Validation(format!(
            "name must be 1 to {MAX_NAME_LEN} characters"
        )));
    }
    if v.description.as_ref().is_some_and(|d| d.len() > MAX_TEXT_LEN) {
        return Err(ApiError::Validation(format!(
            "description exceeds {MAX_TEXT_LEN} characters"
        )));
    }
    if v.tools.len() > MAX_VIRTUAL_TOOLS {
        return Err(ApiError::Validation(format!("at most {MAX_VIRTUAL_TOOLS} tools")));
    }
    let mut names = HashSet::new();
    for t in &v.tools {
        // Only servers of the virtual server's own organization, or platform-wide ones: another
        // organization's server is as missing here as anywhere.
        let usable = svc
            .registry
            .get_server(&t.server)
            .await?
            .is_some_and(|s| s.org_id.is_none() || s.org_id == v.org_id);
        let catalog = if usable {
            svc.registry.list_tools(&t.server).await?
        } else {
            Vec::new()
        };
        if !catalog.iter().any(|c| c.name == t.tool) {
            return Err(ApiError::Validation(format!(
                "server '{}' has no tool '{}'",
                t.server, t.tool
            )));
        }
        let exposed = t.name.clone().unwrap_or_else(|| t.tool.clone());
        if !valid_exposed_name(&exposed) {
            return Err(ApiError::Validation(format!(
                "tool name '{exposed}' must be 1 to {MAX_TOOL_NAME} characters of [A-Za-z0-9_.-]"
            )));
        }
        if t.description.as_ref().is_some_and(|d| d.len() > MAX_TEXT_LEN) {
            return Err(ApiError::Validation(format!(
                "description exceeds {MAX_TEXT_LEN} characters"
            )));
        }
        if !names.insert(exposed.clone()) {
            return Err(ApiError::Validation(format!(
                "tool name '{exposed}' appears twice; rename one"
            )));
        }
    }
    Ok(())
}

/// A name a virtual server may expose a tool under: 1 to `MAX_TOOL_NAME` characters of
/// `[A-Za-z0-9_.-]`.
pub(crate) fn valid_exposed_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TOOL_NAME
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}
