//! Catalog sync: connect to an upstream in whichever era it speaks, read its tools, and return
//! the updated server row and catalog for the caller to store in one transaction.
use crate::store::{ServerRecord, ToolRecord};

use super::catalog;
use super::pool;
use super::upstream::UpstreamError;
use super::Services;

/// Detects the era, pages through `tools/list`, closes the session it opened, and pins the
/// definitions against `previous` (the stored catalog; `None` at registration).
/// Nothing is stored here, so a failure leaves the previous catalog untouched.
pub async fn sync(
    svc: &Services<'_>,
    server: &ServerRecord,
    previous: Option<&[ToolRecord]>,
) -> Result<(ServerRecord, Vec<ToolRecord>), UpstreamError> {
    let now = svc.now();
    let up = svc.upstream(server, None);
    let det = up.detect().await?;
    let tools = catalog::fetch_tools(&up, det.era, det.session.as_ref(), &now).await;
    if let Some(s) = &det.session {
        up.close(s).await;
    }
    let tools = catalog::reconcile(previous, tools?, &server.new_tool_policy);
    // The era or URL may have changed: pooled upstream sessions start afresh.
    pool::forget(&server.slug, &server.url);
    let mut s = server.clone();
    s.era = Some(det.era);
    s.protocol_version = Some(det.protocol_version);
    s.capabilities = Some(det.capabilities);
    s.server_info = Some(det.server_info);
    s.instructions = det.instructions;
    s.last_synced_at = Some(now.clone());
    s.last_sync_error = None;
    s.updated_at = now;
    Ok((s, tools))
}
