//! Catalog sync: connect to an upstream in whichever era it speaks, read its tools, pin their
//! definitions against the stored catalog, and store the result in one transaction.
use crate::store::{ServerRecord, ToolRecord};

use super::catalog;
use super::pool;
use super::upstream::UpstreamError;
use super::{GatewayError, Services};

/// Detects the era, pages through `tools/list`, closes the session it opened, and pins the
/// definitions against `previous` (the stored catalog; `None` at registration).
/// Nothing is stored here, so a failure leaves the previous catalog untouched.
pub async fn sync(
    svc: &Services<'_>,
    server: &ServerRecord,
    previous: Option<&[ToolRecord]>,
) -> Result<(ServerRecord, Vec<ToolRecord>), UpstreamError> {
    sync_as(svc, server, previous, None).await
}

/// `sync`, authenticated to the upstream as `user` (servers with per-user credentials).
pub async fn sync_as(
    svc: &Services<'_>,
    server: &ServerRecord,
    previous: Option<&[ToolRecord]>,
    user: Option<&str>,
) -> Result<(ServerRecord, Vec<ToolRecord>), UpstreamError> {
    let now = svc.now();
    let permit = crate::policy::auth::catalog_permit(server, user);
    let up = super::upstream::Upstream::open(svc, &permit)
        .await
        .map_err(|e| match e {
            GatewayError::Upstream { cause, .. } => cause,
            other => UpstreamError::Credentials(other.to_string()),
        })?;
    let det = up.detect().await?;
    let tools = catalog::fetch_tools(&up, det.era, det.session.as_ref(), &now).await;
    if let Some(s) = &det.session {
        up.close(s).await;
    }
    let tools = catalog::reconcile(previous, tools?, &server.new_tool_policy);
    // The era or URL may have changed: pooled upstream sessions start afresh.
    pool::forget_server(&server.slug);
    let mut s = server.clone();
    s.era = Some(det.era);
    s.protocol_version = Some(det.protocol_version);
    s.capabilities = Some(det.capabilities);
    s.server_info = Some(det.server_info);
    s.instructions = det.instructions;
    s.legacy_version = det.legacy_version;
    s.last_synced_at = Some(now.clone());
    s.last_sync_error = None;
    s.updated_at = now;
    Ok((s, tools))
}

/// Why a refresh failed: the upstream (recorded on the server row) or storage.
#[derive(Debug)]
pub enum RefreshError {
    Upstream(UpstreamError),
    Gateway(GatewayError),
}

impl From<crate::store::StoreError> for RefreshError {
    fn from(e: crate::store::StoreError) -> Self {
        RefreshError::Gateway(e.into())
    }
}

/// Re-syncs a registered server and stores the result; when what clients can list changed, the
/// catalog generation is bumped so live streams announce `list_changed`. On an upstream failure
/// the old catalog stays and `last_sync_error` says why.
pub async fn refresh(svc: &Services<'_>, server: &ServerRecord) -> Result<ServerRecord, RefreshError> {
    let previous = svc.registry.list_tools(&server.slug).await?;
    match sync(svc, server, Some(&previous)).await {
        Ok((updated, tools)) => {
            // Deleted while the upstream was being read: it stays deleted.
            if !svc.registry.replace_catalog(&updated, &tools).await? {
                return Err(RefreshError::Gateway(GatewayError::UnknownServer));
            }
            if fingerprint(&previous) != fingerprint(&tools) {
                svc.registry.bump_catalog_generation().await?;
            }
            Ok(updated)
        }
        Err(cause) => {
            let mut failed = server.clone();
            failed.last_sync_error = Some(cause.to_string());
            failed.updated_at = svc.now();
            svc.registry.update_server(&failed).await?;
            Err(RefreshError::Upstream(cause))
        }
    }
}

/// What a client would see of a catalog: names, definitions and whether each is served.
fn fingerprint(tools: &[ToolRecord]) -> Vec<(&str, &str, bool)> {
    tools
        .iter()
        .map(|t| (t.name.as_str(), t.definition_hash.as_str(), t.is_active()))
        .collect()
}

/// Reads the catalog of a per-user server that had none, as the user who just connected to it
/// (a per-user upstream lists nothing until someone can authenticate to it). Failures leave the
/// server without a catalog, as before the connection; the next admin refresh retries.
pub async fn first_catalog(svc: &Services<'_>, server: &ServerRecord, user: &str) {
    if let Ok((synced, tools)) = sync_as(svc, server, None, Some(user)).await {
        let saved = async {
            // A server deleted meanwhile stays deleted, and nothing changed to announce.
            if svc.registry.replace_catalog(&synced, &tools).await? {
                svc.registry.bump_catalog_generation().await?;
            }
            Ok::<(), crate::store::StoreError>(())
        };
        if let Err(e) = saved.await {
            tracing::warn!(error = %e, server = %server.slug, "saving the first catalog failed");
        }
    }
}
