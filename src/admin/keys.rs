//! `/admin/v1/api-keys`: issue (shown once), list (never the secret) and revoke gateway API keys.
use serde::Deserialize;
use serde_json::json;

use crate::crypto;
use crate::gateway::Services;
use crate::http::{HttpRequest, HttpResponse, Method};
use crate::policy::roles::Scope;
use crate::policy::AdminPermit;
use crate::store::{ApiKeyRecord, DEFAULT_AGENT};

use super::{body, json, ApiError, ApiResult};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    name: String,
    /// The user or agent the key acts as; without it, the default agent (see docs/identity.md).
    principal_id: Option<String>,
    /// RFC 3339; the key fails after it.
    expires_at: Option<String>,
}

pub async fn route(svc: &Services<'_>, permit: &AdminPermit, req: &HttpRequest, parts: &[&str]) -> ApiResult {
    match (parts, req.method) {
        ([], Method::Get) => {
            let mut visible = Vec::new();
            let mut orgs = std::collections::HashMap::new();
            for k in svc.keys.list_keys().await? {
                if !orgs.contains_key(&k.principal_id) {
                    orgs.insert(k.principal_id.clone(), principal_org(svc, &k.principal_id).await?);
                }
                if permit.may_read_org(&orgs[&k.principal_id]) {
                    visible.push(k);
                }
            }
            json(200, &json!({ "api_keys": visible }))
        }
        ([], Method::Post) => create(svc, permit, req).await,
        ([id], Method::Delete) => {
            let missing = || ApiError::NotFound(format!("no active API key with id '{id}'"));
            let key = svc.keys.list_keys().await?.into_iter().find(|k| k.id == *id);
            let Some(k) = key else { return Err(missing()) };
            // Another organization's key answers exactly as a missing one.
            let org = principal_org(svc, &k.principal_id).await?;
            if !permit.may_read_org(&org) {
                return Err(missing());
            }
            super::require(permit, &Scope::Org(org))?;
            if svc.keys.revoke_key(id, &svc.now()).await? {
                Ok(HttpResponse::new(204))
            } else {
                Err(missing())
            }
        }
        ([] | [_], _) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound(format!("no admin resource at {}", req.path))),
    }
}

/// Keys are managed within the organization of the principal they act as ("" if the principal
/// is gone: then only the bootstrap admin sees the key).
async fn principal_org(svc: &Services<'_>, principal_id: &str) -> Result<String, ApiError> {
    Ok(svc
        .directory
        .get_entity(principal_id)
        .await?
        .and_then(|p| p.parent_id)
        .unwrap_or_default())
}

async fn create(svc: &Services<'_>, permit: &AdminPermit, req: &HttpRequest) -> ApiResult {
    let b: CreateKey = body(req)?;
    if b.name.trim().is_empty() || b.name.len() > 200 {
        return Err(ApiError::Validation("name must be 1 to 200 characters".into()));
    }
    let principal_id = b.principal_id.unwrap_or_else(|| DEFAULT_AGENT.to_string());
    let principal = svc.directory.get_entity(&principal_id).await?;
    let org = principal_org(svc, &principal_id).await?;
    // Another organization's principal answers exactly as a missing one.
    if !principal.is_some_and(|p| p.kind.is_principal()) || !permit.may_read_org(&org) {
        return Err(ApiError::Validation(format!(
            "no user or agent with id '{principal_id}'"
        )));
    }
    super::require(permit, &Scope::Org(org))?;
    let expires_at = match b.expires_at {
        Some(e) => Some(
            chrono::DateTime::parse_from_rfc3339(&e)
                .map_err(|_| ApiError::Validation("expires_at must be an RFC 3339 timestamp".into()))?
                .with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ),
        None => None,
    };
    let key = crypto::new_api_key();
    let rec = ApiKeyRecord {
        id: crypto::random_id("key_"),
        name: b.name,
        prefix: key[..crypto::API_KEY_DISPLAY_CHARS].to_string(),
        key_hash: crypto::hash_secret(&key),
        created_at: svc.now(),
        last_used_at: None,
        revoked_at: None,
        principal_id,
        expires_at,
    };
    svc.keys.create_key(&rec).await?;
    // The only time the secret leaves the gateway.
    let mut v = serde_json::to_value(&rec).unwrap_or_default();
    v["key"] = json!(key);
    json(201, &v)
}
