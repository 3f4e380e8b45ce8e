//! `/admin/v1/servers/{slug}/credentials` (write-only upstream credentials; reads return
//! metadata) and `/admin/v1/vault/rotate` (re-seal every credential under the current key).
use serde_json::json;

use crate::gateway::Services;
use crate::http::{HttpRequest, HttpResponse, Method};
use crate::policy::roles::Scope;
use crate::policy::AdminPermit;
use crate::upstream_auth::{forget_token, meta_key, secret_key, CredentialMeta, CredentialSpec};
use crate::vault::Vault;

use super::{body, json, ApiError, ApiResult};

fn vault<'a>(svc: &'a Services<'_>) -> Result<&'a Vault, ApiError> {
    svc.config
        .vault
        .as_ref()
        .ok_or_else(|| ApiError::Validation("credentials need the VAULT_KEYS secret (see README)".into()))
}

pub async fn route(svc: &Services<'_>, permit: &AdminPermit, req: &HttpRequest, slug: &str) -> ApiResult {
    // Another organization's server answers as a missing one; the credentials of a server are
    // managed by whoever manages the server.
    let server = super::servers::get(svc, permit, slug).await?;
    if req.method != Method::Get {
        super::require_manage(permit, server.org_id.as_deref())?;
    }
    match req.method {
        Method::Put => {
            let spec: CredentialSpec = body(req)?;
            json(200, &store(svc, slug, &spec).await?)
        }
        Method::Get => match meta(svc, slug).await? {
            Some(m) => json(200, &m),
            None => Err(ApiError::NotFound(format!("server '{slug}' has no credentials"))),
        },
        Method::Delete => {
            if meta(svc, slug).await?.is_none() {
                return Err(ApiError::NotFound(format!("server '{slug}' has no credentials")));
            }
            remove(svc, slug).await?;
            Ok(HttpResponse::new(204))
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

/// Seals and stores a server's credential (also used when a server is registered with one).
pub async fn store(svc: &Services<'_>, slug: &str, spec: &CredentialSpec) -> Result<CredentialMeta, ApiError> {
    spec.validate().map_err(ApiError::Validation)?;
    let vault = vault(svc)?;
    let plain = serde_json::to_vec(spec).map_err(|e| ApiError::Validation(e.to_string()))?;
    let previous = meta(svc, slug).await?;
    svc.secrets
        .put_secret(&secret_key(slug), &vault.seal(&secret_key(slug), &plain))
        .await?;
    let now = svc.now();
    let m = CredentialMeta {
        server: slug.to_string(),
        kind: spec.kind().to_string(),
        created_at: previous
            .as_ref()
            .map(|p| p.created_at.clone())
            .unwrap_or_else(|| now.clone()),
        rotated_at: previous.is_some().then(|| now.clone()),
        status: "ok".into(),
        last_error: None,
        token_expires_at: None,
    };
    svc.secrets
        .put_secret(&meta_key(slug), &serde_json::to_string(&m).unwrap_or_default())
        .await?;
    forget_token(slug);
    Ok(m)
}

/// Removes a server's credential and its metadata.
pub async fn remove(svc: &Services<'_>, slug: &str) -> Result<(), ApiError> {
    svc.secrets.delete_secret(&secret_key(slug)).await?;
    svc.secrets.delete_secret(&meta_key(slug)).await?;
    forget_token(slug);
    Ok(())
}

/// Every KV key holding something of a server's upstream credentials: the server-wide
/// credential and its metadata, each user's tokens and metadata, the client id registered at
/// the upstream's authorization server.
async fn all_keys(svc: &Services<'_>, slug: &str) -> Result<Vec<String>, ApiError> {
    let mut keys = vec![secret_key(slug), meta_key(slug), format!("oauthclient:server:{slug}")];
    keys.extend(svc.secrets.list_secrets(&format!("cred:user:{slug}:")).await?);
    keys.extend(svc.secrets.list_secrets(&format!("credmeta:user:{slug}:")).await?);
    Ok(keys)
}

/// Removes everything `all_keys` names (a deleted server, or a move to another origin).
pub async fn remove_all(svc: &Services<'_>, slug: &str) -> Result<(), ApiError> {
    for key in all_keys(svc, slug).await? {
        svc.secrets.delete_secret(&key).await?;
    }
    forget_token(slug);
    Ok(())
}

/// The stored values of a server's credentials, still sealed (to put back if a change fails).
pub struct Saved(Vec<(String, String)>);

pub async fn snapshot(svc: &Services<'_>, slug: &str) -> Result<Saved, ApiError> {
    let mut saved = Vec::new();
    for key in all_keys(svc, slug).await? {
        if let Some(v) = svc.secrets.get_secret(&key).await? {
            saved.push((key, v));
        }
    }
    Ok(Saved(saved))
}

/// Puts a snapshot back exactly: whatever was stored since is removed first.
pub async fn restore(svc: &Services<'_>, slug: &str, saved: Saved) -> Result<(), ApiError> {
    remove_all(svc, slug).await?;
    for (key, value) in saved.0 {
        svc.secrets.put_secret(&key, &value).await?;
    }
    Ok(())
}

async fn meta(svc: &Services<'_>, slug: &str) -> Result<Option<CredentialMeta>, ApiError> {
    Ok(svc
        .secrets
        .get_secret(&meta_key(slug))
        .await?
        .and_then(|raw| serde_json::from_str(&raw).ok()))
}

/// Re-seals every stored credential with the current (first) key of `VAULT_KEYS`. Run it after
/// adding a new key in front; once it reports nothing left under old keys, retire them.
pub async fn rotate(svc: &Services<'_>, permit: &AdminPermit, req: &HttpRequest) -> ApiResult {
    if req.method != Method::Post {
        return Err(ApiError::MethodNotAllowed);
    }
    super::require(permit, &Scope::Global)?;
    let vault = vault(svc)?;
    let (mut resealed, mut current, mut failed) = (0, 0, Vec::new());
    for key in svc.secrets.list_secrets("cred:").await? {
        let Some(sealed) = svc.secrets.get_secret(&key).await? else {
            continue;
        };
        if vault.is_current(&sealed) {
            current += 1;
            continue;
        }
        match vault.open(&key, &sealed) {
            Ok(plain) => {
                svc.secrets.put_secret(&key, &vault.seal(&key, &plain)).await?;
                resealed += 1;
            }
            // Nothing is overwritten when a value cannot be opened: it is reported, not lost.
            Err(e) => failed.push(json!({"key": key, "error": e.to_string()})),
        }
    }
    json(
        200,
        &json!({"key_id": vault.current_kid(), "resealed": resealed, "already_current": current, "failed": failed}),
    )
}
