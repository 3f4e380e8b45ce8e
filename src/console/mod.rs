//! The web console's own endpoints (docs/console.md): `/console/login` (sign-in through the
//! organization's IdP) and `/console/api/session` (who is signed in, key-paste sign-in in local
//! development, sign-out). The pages themselves are static assets (`public/console/`); every
//! view reads and writes through the admin API with the session cookie.
use serde_json::{json, Value};

use crate::context::Services;
use crate::http::{HttpRequest, HttpResponse, Method};
use crate::oauth_server::console_login::{self, secure};
use crate::policy::console as session;
use crate::policy::{self, AuthError};

pub const LOGIN_PATH: &str = "/console/login";
pub const SESSION_PATH: &str = "/console/api/session";
/// Largest key-paste body.
const MAX_LOGIN_BODY: usize = 4 * 1024;

/// Serves the console's endpoints; `None` for any other path.
pub async fn handle(svc: &Services<'_>, req: &HttpRequest) -> Option<HttpResponse> {
    let r = match (req.method, req.path.as_str()) {
        (Method::Get, LOGIN_PATH) => match console_login::start(svc, req, svc.origin).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "console sign-in could not start");
                console_login::page(
                    502,
                    "Sign-in unavailable",
                    "the identity provider could not be reached",
                    None,
                )
            }
        },
        (Method::Get, SESSION_PATH) => whoami(svc, req).await,
        (Method::Post, SESSION_PATH) => key_login(svc, req).await,
        (Method::Delete, SESSION_PATH) => sign_out(svc, req).await,
        (_, LOGIN_PATH | SESSION_PATH) => problem(405, "method-not-allowed", "method not allowed on this resource"),
        _ => return None,
    };
    Some(secure(r))
}

/// Key paste is offered only in local development (no `PUBLIC_ORIGIN`): a deployment signs in
/// through its identity provider.
fn key_paste_allowed(svc: &Services<'_>) -> bool {
    svc.config.public_origin.is_none()
}

fn problem(status: u16, kind: &str, detail: &str) -> HttpResponse {
    HttpResponse::json(
        status,
        &json!({
            "type": format!("https://mcp-gateway.dev/problems/{kind}"),
            "title": kind.replace('-', " "),
            "status": status,
            "detail": detail,
        }),
    )
    .with_header("content-type", "application/problem+json")
}

/// `GET /console/api/session`: the signed-in admin, its roles and the CSRF token its writes
/// carry; 401 (saying which sign-ins are offered) without a live session.
async fn whoami(svc: &Services<'_>, req: &HttpRequest) -> HttpResponse {
    let auth = svc.auth();
    let signed_out = |e: AuthError| {
        let status = if matches!(e, AuthError::NotAdmin) { 403 } else { 401 };
        HttpResponse::json(
            status,
            &json!({ "signed_in": false, "key_paste": key_paste_allowed(svc), "reason": e.to_string() }),
        )
    };
    let s = match session::current(&auth, &req.headers).await {
        Ok(s) => s,
        Err(e) => return signed_out(e),
    };
    let permit = match session::permit_of(&auth, &s).await {
        Ok(p) => p,
        Err(e) => return signed_out(e),
    };
    let id = session::session_id(&req.headers).unwrap_or("");
    let name = if permit.is_super_admin() {
        Some("bootstrap admin".to_string())
    } else {
        svc.directory
            .get_entity(&s.principal_id)
            .await
            .ok()
            .flatten()
            .map(|e| e.email.unwrap_or(e.name))
    };
    let roles: Vec<Value> = permit
        .roles()
        .iter()
        .map(|r| json!({ "role": r.role, "org_id": r.org_id, "scope_id": r.scope_id }))
        .collect();
    HttpResponse::json(
        200,
        &json!({
            "signed_in": true,
            "principal_id": permit.actor().0,
            "name": name,
            "via": s.via,
            "super_admin": permit.is_super_admin(),
            "roles": roles,
            "orgs": permit.readable_orgs(),
            "may_write": permit.may_write_anything(),
            "deciding_orgs": permit.deciding_orgs(),
            "csrf_token": session::csrf_token(id),
            "expires_at_ms": s.expires_at_ms,
            "idle_ms": session::SESSION_IDLE_MS,
        }),
    )
}

/// `POST /console/api/session` `{ "key" }`: local development's sign-in with an admin key (the
/// bootstrap token or the API key of a principal holding an admin role), checked exactly as the
/// admin API checks a bearer. Only from the console's own origin.
async fn key_login(svc: &Services<'_>, req: &HttpRequest) -> HttpResponse {
    if !key_paste_allowed(svc) {
        return problem(404, "not-found", "key sign-in is offered only in local development");
    }
    if req.headers.get("origin") != Some(svc.origin) {
        return problem(403, "forbidden", "sign in from the console's own page");
    }
    if req.body.len() > MAX_LOGIN_BODY {
        return problem(413, "too-large", "body too large");
    }
    let key = serde_json::from_slice::<Value>(&req.body)
        .ok()
        .and_then(|v| v.get("key").and_then(Value::as_str).map(|k| k.trim().to_string()))
        .unwrap_or_default();
    if key.is_empty() {
        return problem(422, "validation", "key is required");
    }
    let auth = svc.auth();
    let bearer = crate::http::Headers::new().with("authorization", format!("Bearer {key}"));
    let permit = match policy::authorize_admin(&auth, &bearer).await {
        Ok(p) => p,
        Err(AuthError::NotAdmin) => return problem(403, "forbidden", "this key's principal holds no admin role"),
        Err(AuthError::Store(e)) => {
            tracing::warn!(error = %e, "console key sign-in: storage failed");
            return problem(500, "internal", "internal error");
        }
        Err(_) => return problem(401, "unauthorized", "that key is not valid"),
    };
    let principal = if permit.is_super_admin() {
        session::bootstrap_principal(&key)
    } else {
        permit.actor().0.to_string()
    };
    match session::create(&auth, &principal, "key").await {
        Ok(s) => HttpResponse::json(201, &json!({ "signed_in": true, "csrf_token": s.csrf }))
            .with_header("set-cookie", session::set_cookie(&s.id)),
        Err(e) => {
            tracing::warn!(error = %e, "console session could not be created");
            problem(500, "internal", "internal error")
        }
    }
}

/// `DELETE /console/api/session`: signs out (the session is deleted, the cookie cleared); a
/// write like any other, so it needs the CSRF token.
async fn sign_out(svc: &Services<'_>, req: &HttpRequest) -> HttpResponse {
    let auth = svc.auth();
    let id = session::session_id(&req.headers).unwrap_or("");
    if !id.is_empty() && !session::csrf_ok(&req.headers, id, svc.origin) {
        return problem(403, "forbidden", "sign-out needs the session's CSRF token");
    }
    if let Err(e) = session::end(&auth, &req.headers).await {
        tracing::warn!(error = %e, "console sign-out: storage failed");
        return problem(500, "internal", "internal error");
    }
    HttpResponse::new(204).with_header("set-cookie", session::clear_cookie())
}
