//! The JSON management API under `/admin/v1`: routing, body handling and the admin check.
//! Every error leaves as an RFC 9457 problem document (mapping in `admin::error`).
mod approvals;
mod audit;
mod config_api;
mod config_diff;
mod config_doc;
pub mod config_yaml;
pub(crate) mod credentials;
mod directory;
pub mod error;
mod keys;
pub mod openapi;
mod policies;
mod servers;
mod usage;
mod virtuals;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::gateway::upstream::UpstreamError;
use crate::gateway::Services;
use crate::http::{HttpRequest, HttpResponse, Method};
use crate::policy::{self, AuthError};
use crate::store::StoreError;

/// Largest admin request body.
pub const MAX_ADMIN_BODY_BYTES: usize = 256 * 1024;
pub const PREFIX: &str = "/admin/v1";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error("unauthorized")]
    Unauthorized(AuthError),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed on this resource")]
    MethodNotAllowed,
    #[error("{0}")]
    Validation(String),
    /// Several validation errors, each naming its path (a configuration document).
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    /// A request the gateway refuses on principle (e.g. a server URL it will not store).
    #[error("{0}")]
    BadRequest(String),
    #[error("request body is not valid JSON: {0}")]
    BadJson(String),
    /// A YAML body that does not parse, or says what JSON cannot (with its line and column).
    #[error("request body is not valid YAML: {0}")]
    BadYaml(String),
    #[error("request body exceeds {MAX_ADMIN_BODY_BYTES} bytes")]
    TooLarge,
    /// The body's media type is not one the resource reads (the ones it does).
    #[error("Content-Type must be {0}")]
    UnsupportedMediaType(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("upstream '{slug}' failed: {cause}")]
    Upstream { slug: String, cause: UpstreamError },
    #[error("storage failure")]
    Store(StoreError),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Store(e)
    }
}

pub type ApiResult = Result<HttpResponse, ApiError>;

/// Entry point for every path under `/admin/v1`. Every write that succeeds is recorded in the
/// audit trail here, with the resource as the API shows it before and after (`audit`).
pub async fn handle(svc: &Services<'_>, req: &HttpRequest) -> HttpResponse {
    let permit = match authorize(svc, req).await {
        Ok(p) => p,
        Err(e) => return error::problem(&e),
    };
    // A configuration dry run writes nothing, so it is not recorded.
    let write = matches!(req.method, Method::Post | Method::Put | Method::Patch | Method::Delete)
        && !config_api::is_dry_run(req);
    // Viewers read; everything else needs a role that writes (scopes are checked per resource).
    // Approval decisions are checked by their handler: approvers make them, and write nothing else.
    if req.method != Method::Get && !permit.may_write_anything() && !approvals::covers(req) {
        return error::problem(&ApiError::Forbidden("a viewer cannot change anything".into()));
    }
    let before = if write {
        Some(audit::before(svc, &permit, req).await)
    } else {
        None
    };
    let mut resp = match dispatch(svc, &permit, req).await {
        Ok(r) => r,
        Err(e) => error::problem(&e),
    };
    if resp.status == 405 {
        let below = req.path.strip_prefix(PREFIX).unwrap_or("").trim_end_matches('/');
        resp.headers.set("allow", openapi::allow_header(below));
    }
    if let Some(before) = before {
        audit::record(svc, &permit, req, &resp, before).await;
    }
    resp
}

/// Who calls: a bearer (the bootstrap token, a principal's key or token) or, without one, the
/// web console's session cookie, whose every request other than a read must pass the CSRF
/// check (docs/console.md).
async fn authorize(svc: &Services<'_>, req: &HttpRequest) -> Result<policy::AdminPermit, ApiError> {
    use policy::console::{self, SessionError};
    let not_admin = || ApiError::Forbidden("this principal holds no admin role".into());
    if policy::auth::bearer(&req.headers).is_none() && console::session_id(&req.headers).is_some() {
        let write = req.method != Method::Get;
        return match console::authorize_admin(&svc.auth(), &req.headers, write, svc.origin).await {
            Ok(p) => Ok(p),
            Err(SessionError::Csrf) => Err(ApiError::Forbidden(
                "a console write needs the session's CSRF token and the console's own origin".into(),
            )),
            Err(SessionError::Auth(AuthError::NotAdmin)) => Err(not_admin()),
            Err(SessionError::Auth(e)) => Err(ApiError::Unauthorized(e)),
        };
    }
    match policy::authorize_admin(&svc.auth(), &req.headers).await {
        Ok(p) => Ok(p),
        Err(AuthError::NotAdmin) => Err(not_admin()),
        Err(e) => Err(ApiError::Unauthorized(e)),
    }
}

/// Routes an authorized request to its handler. Every route here has a row in
/// `openapi::ROUTES` and an operation in the OpenAPI document (tests hold them together).
async fn dispatch(svc: &Services<'_>, permit: &policy::AdminPermit, req: &HttpRequest) -> ApiResult {
    let rest = req.path.strip_prefix(PREFIX).unwrap_or("").trim_end_matches('/');
    // The table decides what exists before any handler runs: a path it does not list is 404, a
    // method it does not list on a path it does is 405 (whose `Allow` names the listed ones).
    let allowed = openapi::allowed(rest);
    if allowed.is_empty() {
        return Err(ApiError::NotFound(format!("no admin resource at {}", req.path)));
    }
    if !allowed.contains(&req.method) {
        return Err(ApiError::MethodNotAllowed);
    }
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        // The contract is read by any admin principal (viewers and approvers included): it
        // holds no data, but what a deployment exposes is not advertised to anonymous callers.
        ["openapi.json"] if req.method == crate::http::Method::Get => Ok(openapi::serve()),
        ["openapi.json"] => Err(ApiError::MethodNotAllowed),
        ["config", ..] => config_api::route(svc, permit, req, &parts[1..]).await,
        ["audit", ..] => audit::route(svc, permit, req, &parts[1..]).await,
        ["approvals", ..] => approvals::route(svc, permit, req, &parts[1..]).await,
        ["servers", slug, "tools", tool, "principals"] if req.method == crate::http::Method::Get => {
            directory::who_can_use(svc, permit, slug, tool).await
        }
        ["usage"] if req.method == crate::http::Method::Get => usage::usage(svc, permit, req).await,
        ["usage"] => Err(ApiError::MethodNotAllowed),
        ["servers", slug, "credentials"] => credentials::route(svc, permit, req, slug).await,
        ["vault", "rotate"] => credentials::rotate(svc, permit, req).await,
        ["servers", ..] => servers::route(svc, permit, req, &parts[1..]).await,
        ["api-keys", ..] => keys::route(svc, permit, req, &parts[1..]).await,
        ["policies", ..] => policies::route(svc, permit, req, &parts[1..]).await,
        ["virtual-servers", ..] => virtuals::route(svc, permit, req, &parts[1..]).await,
        ["grants", ..] => directory::grants(svc, permit, req, &parts[1..]).await,
        ["identity-providers", ..] => directory::identity_providers(svc, permit, req, &parts[1..]).await,
        ["roles", ..] => directory::roles(svc, permit, req, &parts[1..]).await,
        [c, ..] if directory::collection(c).is_some() => {
            let kind = directory::collection(c).expect("checked");
            directory::route(svc, permit, req, kind, &parts[1..]).await
        }
        _ => Err(ApiError::NotFound(format!("no admin resource at {}", req.path))),
    }
}

/// Parses a JSON request body into `T`.
fn body<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    check_size(req)?;
    if media_type(req) != "application/json" {
        return Err(ApiError::UnsupportedMediaType("application/json"));
    }
    let v = json_value(req)?;
    // Every body is an object: serde would also read a struct from an array of its fields in
    // order (`[null, null]`), which no client means.
    if !v.is_object() {
        return Err(ApiError::Validation("the request body must be a JSON object".into()));
    }
    serde_json::from_value(v).map_err(|e| ApiError::Validation(e.to_string()))
}

/// Media types of a YAML body (RFC 9512's, and the two older ones still sent).
const YAML_TYPES: [&str; 3] = ["application/yaml", "application/x-yaml", "text/yaml"];

/// A document body, JSON or YAML, as the JSON value both become (configuration as code: the
/// same validation, diff and apply follow whichever was sent).
fn document(req: &HttpRequest) -> Result<Value, ApiError> {
    check_size(req)?;
    let media = media_type(req);
    if media == "application/json" {
        return json_value(req);
    }
    if !YAML_TYPES.contains(&media.as_str()) {
        return Err(ApiError::UnsupportedMediaType("application/json or application/yaml"));
    }
    let text = std::str::from_utf8(&req.body).map_err(|_| ApiError::BadYaml("the body is not UTF-8".into()))?;
    config_yaml::to_json(text).map_err(|e| ApiError::BadYaml(e.to_string()))
}

fn check_size(req: &HttpRequest) -> Result<(), ApiError> {
    if req.body.len() > MAX_ADMIN_BODY_BYTES {
        return Err(ApiError::TooLarge);
    }
    Ok(())
}

/// The request's media type, lower-cased, without parameters.
fn media_type(req: &HttpRequest) -> String {
    let ct = req.headers.get("content-type").unwrap_or("");
    ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

fn json_value(req: &HttpRequest) -> Result<Value, ApiError> {
    serde_json::from_slice(&req.body).map_err(|e| ApiError::BadJson(e.to_string()))
}

fn json(status: u16, v: &impl serde::Serialize) -> ApiResult {
    Ok(HttpResponse::json(
        status,
        &serde_json::to_value(v).map_err(|e| ApiError::Store(StoreError::Backend(e.to_string())))?,
    ))
}

/// The owner of a new server or virtual server: the request's `org_id` (an organization the
/// caller administers; one it cannot see answers as a missing one), else the caller's default
/// (`AdminPermit::default_owner`: platform-wide for the bootstrap admin).
async fn new_owner(
    svc: &Services<'_>,
    permit: &policy::AdminPermit,
    requested: Option<String>,
) -> Result<Option<String>, ApiError> {
    let owner = match requested {
        Some(o) => {
            let org = svc.directory.get_entity(&o).await?;
            if !org.is_some_and(|e| e.kind == crate::store::EntityKind::Org) || !permit.may_read_org(&o) {
                return Err(ApiError::Validation("org_id must name an existing organization".into()));
            }
            Some(o)
        }
        None => permit.default_owner().map_err(|m| ApiError::Forbidden(m.into()))?,
    };
    if !permit.may_manage(owner.as_deref()) {
        return Err(ApiError::Forbidden("your admin role does not cover this".into()));
    }
    Ok(owner)
}

/// Fails with 403 unless the permit may change a server or virtual server with this owner.
fn require_manage(permit: &policy::AdminPermit, owner: Option<&str>) -> Result<(), ApiError> {
    if permit.may_manage(owner) {
        Ok(())
    } else {
        Err(ApiError::Forbidden("your admin role does not cover this".into()))
    }
}

/// Fails with 403 unless the permit may change things in `scope`.
fn require(permit: &policy::AdminPermit, scope: &policy::roles::Scope) -> Result<(), ApiError> {
    if permit.may_write(scope) {
        Ok(())
    } else {
        Err(ApiError::Forbidden("your admin role does not cover this".into()))
    }
}
