//! `/admin/v1/approvals`: the approval requests policies raise, for people to decide.
//!
//! - `GET /approvals?status=&org=&limit=&cursor=`: an organization's requests, newest first;
//! - `GET /approvals/{id}`;
//! - `POST /approvals/{id}/approve`, `POST /approvals/{id}/deny`.
//!
//! Who: the bootstrap admin, the organization's org admins and its approvers
//! (`AdminPermit::may_decide`); other roles of the organization get 403. Another
//! organization's request answers exactly as an unknown one (404). A request that is no longer
//! pending (decided, consumed or expired) cannot be decided: 409. Nobody approves a request of
//! their own.
use serde_json::json;

use crate::gateway::Services;
use crate::http::{HttpRequest, Method};
use crate::policy::AdminPermit;
use crate::store::approvals::{org_of_id, ApprovalRecord, ApprovalStatus, DecideError, MAX_PAGE};

use super::{json as respond, ApiError, ApiResult, PREFIX};

/// Page size without `limit`, and the largest `limit` accepted (below the store's `MAX_PAGE`,
/// so that one more than asked can always be read to know whether another page follows).
pub const DEFAULT_PAGE: usize = 50;
pub const MAX_LIMIT: usize = 200;
const _: () = assert!(MAX_LIMIT < MAX_PAGE);

/// Whether a request is for this resource (whose writes are decisions, which approvers make
/// though they write nothing else).
pub fn covers(req: &HttpRequest) -> bool {
    req.path
        .strip_prefix(PREFIX)
        .is_some_and(|rest| rest == "/approvals" || rest.starts_with("/approvals/"))
}

pub async fn route(svc: &Services<'_>, permit: &AdminPermit, req: &HttpRequest, parts: &[&str]) -> ApiResult {
    match (parts, req.method) {
        ([], Method::Get) => list(svc, permit, req).await,
        ([id], Method::Get) => respond(200, &find(svc, permit, id).await?),
        ([id, action @ ("approve" | "deny")], Method::Post) => decide(svc, permit, id, *action == "approve").await,
        ([] | [_], _) | ([_, "approve" | "deny"], _) => Err(ApiError::MethodNotAllowed),
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

/// 403 for someone who sees the organization but does not decide its approvals.
fn not_an_approver() -> ApiError {
    ApiError::Forbidden("only the organization's admins and approvers see and decide approval requests".into())
}

/// The organization a listing reads: `org=` if given, else the only one the caller decides for.
fn org_of_listing(permit: &AdminPermit, params: &[(String, String)]) -> Result<String, ApiError> {
    if let Some(org) = param(params, "org") {
        if permit.may_decide(org) {
            return Ok(org.to_string());
        }
        if permit.may_read_org(org) {
            return Err(not_an_approver());
        }
        return Err(ApiError::NotFound(format!("no organization '{org}'")));
    }
    match permit.deciding_orgs() {
        None => Err(ApiError::Validation("name an organization with org".into())),
        Some(orgs) => match orgs.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(not_an_approver()),
            _ => Err(ApiError::Validation(
                "you decide approvals of several organizations: name one with org".into(),
            )),
        },
    }
}

async fn list(svc: &Services<'_>, permit: &AdminPermit, req: &HttpRequest) -> ApiResult {
    let params = params(req);
    let org = org_of_listing(permit, &params)?;
    let status = match param(&params, "status") {
        None | Some("") => None,
        Some(s) => Some(ApprovalStatus::parse(s).ok_or_else(|| {
            ApiError::Validation("status must be pending, approved, denied, expired or consumed".into())
        })?),
    };
    let limit = match param(&params, "limit") {
        None => DEFAULT_PAGE,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ApiError::Validation(format!("limit must be 1 to {MAX_LIMIT}")))?,
    };
    let after = param(&params, "cursor").filter(|c| !c.is_empty());
    // One more than asked: whether another page follows.
    let mut page = svc.approvals.list(&org, status, after, limit + 1, svc.now_ms).await?;
    let next = (page.len() > limit).then(|| {
        page.truncate(limit);
        page.last().map(|r| r.id.clone())
    });
    respond(200, &json!({"approvals": page, "next_cursor": next.flatten()}))
}

/// The request with this id, if the caller decides for its organization; another
/// organization's answers as an unknown one.
async fn find(svc: &Services<'_>, permit: &AdminPermit, id: &str) -> Result<ApprovalRecord, ApiError> {
    let missing = || ApiError::NotFound(format!("no approval request '{id}'"));
    let org = org_of_id(id).ok_or_else(missing)?;
    if !permit.may_decide(org) {
        return Err(if permit.may_read_org(org) {
            not_an_approver()
        } else {
            missing()
        });
    }
    svc.approvals.get(org, id, svc.now_ms).await?.ok_or_else(missing)
}

async fn decide(svc: &Services<'_>, permit: &AdminPermit, id: &str, approve: bool) -> ApiResult {
    let record = find(svc, permit, id).await?;
    let (actor, _) = permit.actor();
    if approve && record.binding.principal_id == actor {
        return Err(ApiError::Forbidden("nobody approves a request of their own".into()));
    }
    let org = record.binding.org_id.as_str();
    match svc.approvals.decide(org, id, approve, actor, svc.now_ms).await {
        Ok(Some(r)) => respond(200, &r),
        Ok(None) => Err(ApiError::NotFound(format!("no approval request '{id}'"))),
        Err(DecideError::NotPending(r)) => Err(ApiError::Conflict(format!(
            "the approval request is already {}",
            r.status.as_str()
        ))),
        Err(DecideError::Store(e)) => Err(e.into()),
    }
}
