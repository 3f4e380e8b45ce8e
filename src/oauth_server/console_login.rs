//! Web console sign-in through the organization's identity provider: `/console/login?org=` sends
//! the browser to the IdP (code + PKCE + nonce, the same login client and `/oauth/callback` as the
//! MCP flow), and the callback turns a verified user who holds an admin role into a console
//! session (docs/console.md).
use serde_json::{json, Value};

use super::authorize::{idp_authorize_url, login, login_provider};
use super::*;
use crate::context::Services;
use crate::crypto;
use crate::http::HttpResponse;
use crate::policy::console;
use crate::policy::oidc;
use crate::policy::AuthError;

/// Security headers of every console page the Worker answers itself (the static pages get the
/// same from `public/_headers`): no inline script, no framing, no referrer, no caching.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Where the browser goes once signed in.
pub const CONSOLE_HOME: &str = "/console/";

/// A small HTML page of the console (errors, the hop after sign-in), with its security headers.
pub fn page(status: u16, title: &str, message: &str, refresh_to: Option<&str>) -> HttpResponse {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let refresh = refresh_to
        .map(|u| format!(r#"<meta http-equiv="refresh" content="0;url={}">"#, esc(u)))
        .unwrap_or_default();
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">{refresh}<title>{t} — MCP Gateway console</title>\
         <link rel=\"stylesheet\" href=\"/console/console.css\"></head><body><main class=\"narrow\">\
         <h1>{t}</h1><p>{m}</p><p><a href=\"{home}\">Back to the console</a></p></main></body></html>",
        t = esc(title),
        m = esc(message),
        home = CONSOLE_HOME,
    );
    secure(HttpResponse::typed(
        status,
        "text/html; charset=utf-8",
        html.into_bytes(),
    ))
}

/// Adds the console's security headers to a response.
pub fn secure(r: HttpResponse) -> HttpResponse {
    r.with_header("content-security-policy", CSP)
        .with_header("x-frame-options", "DENY")
        .with_header("x-content-type-options", "nosniff")
        .with_header("referrer-policy", "no-referrer")
        .with_header("cache-control", "no-store")
}

/// `GET /console/login?org=`: sends the browser to the organization's identity provider.
pub async fn start(svc: &Services<'_>, req: &HttpRequest, origin: &str) -> Result<HttpResponse, AuthError> {
    let q = query(req);
    let idp = match login_provider(svc, param(&q, "org").filter(|o| !o.is_empty()), "").await? {
        Ok(idp) => idp,
        Err(why) => return Ok(page(400, "Sign-in unavailable", why, None)),
    };
    let discovery = oidc::get_json(
        svc.http,
        &format!("{}/.well-known/openid-configuration", idp.issuer.trim_end_matches('/')),
    )
    .await?;
    let Some(idp_authorize) = discovery.get("authorization_endpoint").and_then(Value::as_str) else {
        return Ok(page(
            502,
            "Sign-in unavailable",
            "the identity provider has no authorization endpoint",
            None,
        ));
    };
    let pending_id = crypto::random_token::<32>();
    let verifier = crypto::random_token::<32>();
    let nonce = crypto::random_token::<16>();
    let binding = crypto::random_token::<32>();
    let pending = json!({
        "console": true, "idp": idp.id, "verifier": verifier, "nonce": nonce,
        "binding": crypto::hash_secret(&binding),
    });
    svc.oauth
        .put_pending(&pending_id, &pending, svc.now_ms + PENDING_TTL_MS)
        .await?;
    let u = idp_authorize_url(
        idp_authorize,
        idp.login_client_id.as_deref(),
        origin,
        &pending_id,
        &nonce,
        &verifier,
    )?;
    let mut r = secure(redirect(u.as_str()));
    r.headers.0.push((
        "set-cookie".into(),
        console::login_cookie(&binding, PENDING_TTL_MS / 1000),
    ));
    Ok(r)
}

/// The console half of `/oauth/callback`: the user, verified and provisioned, gets a session if
/// it holds an admin role (403 page otherwise). The cookie is set on a page that then moves to
/// the console: a `SameSite=Strict` cookie is not sent on a redirect chain that a cross-site
/// page (the IdP's) started, but is on this page's own navigation.
pub(super) async fn finish(svc: &Services<'_>, req: &HttpRequest, p: &Value, origin: &str) -> HttpResponse {
    let mut r = finish_login(svc, req, p, origin).await;
    // The binding is single use, like the pending sign-in it names.
    r.headers.0.push(("set-cookie".into(), console::login_cookie("", 0)));
    r
}

async fn finish_login(svc: &Services<'_>, req: &HttpRequest, p: &Value, origin: &str) -> HttpResponse {
    let q = query(req);
    let bound = console::cookie(&req.headers, console::LOGIN_COOKIE)
        .zip(p.get("binding").and_then(Value::as_str))
        .is_some_and(|(c, h)| crypto::hashes_equal(&crypto::hash_secret(c), h));
    if !bound {
        return page(
            403,
            "Sign-in refused",
            "this sign-in was not started in this browser: start again from the console",
            None,
        );
    }
    let Some(code) = param(&q, "code") else {
        return page(
            403,
            "Sign-in refused",
            "the identity provider did not sign you in",
            None,
        );
    };
    let user = match login(svc, p, code, origin).await {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(error = %e, "console login at the identity provider failed");
            return page(
                403,
                "Sign-in refused",
                "the identity provider's answer could not be verified",
                None,
            );
        }
    };
    let session = async {
        if svc.directory.roles_of(&user).await?.is_empty() {
            return Ok(None);
        }
        console::create(&svc.auth(), &user, "oidc").await.map(Some)
    };
    match session.await {
        Ok(Some(s)) => page(200, "Signed in", "Opening the console…", Some(CONSOLE_HOME))
            .with_header("set-cookie", console::set_cookie(&s.id)),
        Ok(None) => page(
            403,
            "No admin role",
            "You are signed in at your identity provider, but hold no admin role in this gateway. \
             Ask an administrator of your organization for one.",
            None,
        ),
        Err(e) => {
            tracing::warn!(error = %e, "console session could not be created");
            page(500, "Sign-in failed", "internal error", None)
        }
    }
}
