//! Web console sessions: the cookie that signs a browser in, what it may do on the admin API,
//! and the CSRF check every write through it passes (docs/console.md, "Sessions").
use crate::context::AuthCtx;
use crate::crypto;
use crate::http::Headers;
use crate::store::ConsoleSession;

use super::auth::AdminPermit;
use super::AuthError;

/// The session cookie. `__Host-` makes the browser refuse it unless it is `Secure`, has
/// `Path=/` and no `Domain`, so no sibling host can set or shadow it.
pub const COOKIE: &str = "__Host-mcpgw_console";
/// The header a console write carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A session's absolute lifetime.
pub const SESSION_TTL_MS: u64 = 8 * 60 * 60 * 1000;
/// A session unused this long has ended.
pub const SESSION_IDLE_MS: u64 = 60 * 60 * 1000;
/// Activity is written back at most this often (a read per request, a write per minute).
const TOUCH_EVERY_MS: u64 = 60 * 1000;
/// Principal prefix of sessions signed in with the bootstrap admin token.
const BOOTSTRAP: &str = "bootstrap:";

/// Why a console request was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionError {
    /// No valid session (none, unknown, expired, or its principal lost every admin role).
    Auth(AuthError),
    /// A write without the session's CSRF token, or from another site.
    Csrf,
}

impl From<AuthError> for SessionError {
    fn from(e: AuthError) -> Self {
        SessionError::Auth(e)
    }
}

impl From<crate::store::StoreError> for SessionError {
    fn from(e: crate::store::StoreError) -> Self {
        SessionError::Auth(AuthError::Store(e))
    }
}

/// A new session's id (for the cookie only) and its CSRF token.
pub struct NewSession {
    pub id: String,
    pub csrf: String,
}

/// The cookie that ties an IdP sign-in to the browser that started it (login CSRF: without it,
/// another site could finish a sign-in it started itself in a victim's browser). `SameSite=Lax`:
/// it must come back on the IdP's top-level redirect to `/oauth/callback`.
pub const LOGIN_COOKIE: &str = "__Host-mcpgw_login";

/// A cookie's value in a request's `Cookie` header, if any.
pub fn cookie<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .get("cookie")?
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The session id in a request's `Cookie` header, if any.
pub fn session_id(headers: &Headers) -> Option<&str> {
    cookie(headers, COOKIE)
}

/// The `Set-Cookie` value of a sign-in's binding, good for `max_age_s` (0 removes it).
pub fn login_cookie(value: &str, max_age_s: u64) -> String {
    format!("{LOGIN_COOKIE}={value}; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age={max_age_s}")
}

/// The CSRF token of a session: derived from its id (so nothing more is stored), and not the id
/// itself (which script never sees: the cookie is `HttpOnly`).
pub fn csrf_token(session_id: &str) -> String {
    crypto::hash_secret(&format!("console-csrf\0{session_id}"))
}

/// The `Set-Cookie` value that stores a new session in the browser.
pub fn set_cookie(session_id: &str) -> String {
    format!(
        "{COOKIE}={session_id}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_TTL_MS / 1000
    )
}

/// The `Set-Cookie` value that removes it.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0")
}

/// The principal a session of the bootstrap admin token records: a hash of the token, so a
/// rotated token no longer matches.
pub fn bootstrap_principal(admin_token: &str) -> String {
    format!(
        "{BOOTSTRAP}{}",
        crypto::hash_secret(&format!("console-bootstrap\0{admin_token}"))
    )
}

/// Starts a session for `principal_id` (already authenticated and holding an admin role).
pub async fn create(svc: &AuthCtx<'_>, principal_id: &str, via: &str) -> Result<NewSession, AuthError> {
    let id = crypto::random_token::<32>();
    let s = ConsoleSession {
        hash: crypto::hash_secret(&id),
        principal_id: principal_id.to_string(),
        via: via.to_string(),
        created_at_ms: svc.now_ms,
        last_seen_ms: svc.now_ms,
        expires_at_ms: svc.now_ms + SESSION_TTL_MS,
    };
    svc.oauth.put_console_session(&s).await?;
    let csrf = csrf_token(&id);
    Ok(NewSession { id, csrf })
}

/// Ends the request's session, if it has one.
pub async fn end(svc: &AuthCtx<'_>, headers: &Headers) -> Result<(), AuthError> {
    if let Some(id) = session_id(headers) {
        svc.oauth
            .delete_console_session(&crypto::hash_secret(id), svc.now_ms)
            .await?;
    }
    Ok(())
}

/// The live session of a request: known, within both deadlines; activity recorded.
pub async fn current(svc: &AuthCtx<'_>, headers: &Headers) -> Result<ConsoleSession, AuthError> {
    let id = session_id(headers).ok_or(AuthError::Missing)?;
    let hash = crypto::hash_secret(id);
    let s = svc
        .oauth
        .get_console_session(&hash)
        .await?
        .filter(|s| crypto::hashes_equal(&s.hash, &hash))
        .ok_or(AuthError::Invalid)?;
    let now = svc.now_ms;
    if now >= s.expires_at_ms || now >= s.last_seen_ms + SESSION_IDLE_MS {
        svc.oauth.delete_console_session(&hash, now).await?;
        return Err(AuthError::Expired);
    }
    if now >= s.last_seen_ms + TOUCH_EVERY_MS {
        svc.oauth.touch_console_session(&hash, now).await?;
    }
    Ok(s)
}

/// The admin permit of a session's principal, as of now (roles are read on every request, so a
/// removed role takes effect at once).
pub async fn permit_of(svc: &AuthCtx<'_>, s: &ConsoleSession) -> Result<AdminPermit, AuthError> {
    if s.principal_id.starts_with(BOOTSTRAP) {
        let token = svc.config.admin_token.as_deref().ok_or(AuthError::AdminDisabled)?;
        return if crypto::hashes_equal(&s.principal_id, &bootstrap_principal(token)) {
            Ok(AdminPermit::super_admin().acting_as(super::roles::SUPER_ADMIN_PRINCIPAL, "console"))
        } else {
            Err(AuthError::Revoked)
        };
    }
    if svc.directory.identity(&s.principal_id).await?.is_none() {
        return Err(AuthError::Revoked);
    }
    let roles = svc.directory.roles_of(&s.principal_id).await?;
    AdminPermit::with_roles(roles)
        .map(|p| p.acting_as(&s.principal_id, "console"))
        .ok_or(AuthError::NotAdmin)
}

/// Whether a state-changing request through a session is the console's own: its `Origin` (or,
/// without one, `Sec-Fetch-Site`) is not another site's, and it carries the session's CSRF
/// token, compared in constant time.
pub fn csrf_ok(headers: &Headers, session_id: &str, origin: &str) -> bool {
    let same_origin = match headers.get("origin") {
        Some(o) => o == origin,
        None => !matches!(headers.get("sec-fetch-site"), Some("cross-site" | "same-site")),
    };
    let token = headers.get(CSRF_HEADER).unwrap_or("");
    same_origin && crypto::secrets_equal(token, &csrf_token(session_id))
}

/// Authorizes an admin API request made with the console's session cookie; `write` requests
/// must pass the CSRF check.
pub async fn authorize_admin(
    svc: &AuthCtx<'_>,
    headers: &Headers,
    write: bool,
    origin: &str,
) -> Result<AdminPermit, SessionError> {
    let s = current(svc, headers).await?;
    if write && !csrf_ok(headers, session_id(headers).unwrap_or(""), origin) {
        return Err(SessionError::Csrf);
    }
    Ok(permit_of(svc, &s).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::Config;
    use crate::http::HttpResponse;
    use crate::outbound::{HttpClient, OutboundRequest, UpstreamError};
    use crate::store::memory::MemoryStore;
    use crate::store::OAuthStore;
    use futures_executor::block_on;

    struct NoHttp;
    #[async_trait::async_trait(?Send)]
    impl HttpClient for NoHttp {
        async fn send(&self, _: OutboundRequest) -> Result<HttpResponse, UpstreamError> {
            Err(UpstreamError::Unreachable("no network in this test".into()))
        }
    }

    fn ctx<'a>(store: &'a MemoryStore, config: &'a Config, now_ms: u64) -> AuthCtx<'a> {
        AuthCtx {
            keys: store,
            directory: store,
            oauth: store,
            http: &NoHttp,
            config,
            now_ms,
        }
    }

    fn with_cookie(id: &str) -> Headers {
        Headers::new().with("cookie", format!("{COOKIE}={id}"))
    }

    #[test]
    fn session_lifecycle_deadlines_and_token_rotation() {
        let store = MemoryStore::with_defaults();
        let config = Config::from_lookup(|k| (k == "ADMIN_TOKEN").then(|| "root".to_string()));
        let t0 = 1_000_000;
        let s = block_on(create(&ctx(&store, &config, t0), &bootstrap_principal("root"), "key")).unwrap();
        let stored = block_on(store.get_console_session(&crypto::hash_secret(&s.id)))
            .unwrap()
            .unwrap();
        assert_ne!(stored.hash, s.id, "only the hash is stored");
        assert_eq!(s.csrf, csrf_token(&s.id));
        // Used within the idle bound, the session lives on, past the first idle hour.
        let mut now = t0;
        for _ in 0..3 {
            now += SESSION_IDLE_MS - 1000;
            let live = block_on(current(&ctx(&store, &config, now), &with_cookie(&s.id))).unwrap();
            assert!(block_on(permit_of(&ctx(&store, &config, now), &live))
                .unwrap()
                .is_super_admin());
        }
        // A rotated bootstrap token no longer signs this session in.
        let rotated = Config::from_lookup(|k| (k == "ADMIN_TOKEN").then(|| "new".to_string()));
        let live = block_on(current(&ctx(&store, &rotated, now), &with_cookie(&s.id))).unwrap();
        assert_eq!(
            block_on(permit_of(&ctx(&store, &rotated, now), &live)).unwrap_err(),
            AuthError::Revoked
        );
        // Idle for an hour: gone, and deleted.
        let idle = now + SESSION_IDLE_MS;
        assert_eq!(
            block_on(current(&ctx(&store, &config, idle), &with_cookie(&s.id))).unwrap_err(),
            AuthError::Expired
        );
        assert_eq!(
            block_on(current(&ctx(&store, &config, idle), &with_cookie(&s.id))).unwrap_err(),
            AuthError::Invalid
        );
        // The absolute deadline holds however busy the session is.
        let s2 = block_on(create(&ctx(&store, &config, t0), "usr_x", "oidc")).unwrap();
        let mut now = t0;
        while now + SESSION_IDLE_MS / 2 < t0 + SESSION_TTL_MS {
            now += SESSION_IDLE_MS / 2;
            block_on(current(&ctx(&store, &config, now), &with_cookie(&s2.id))).unwrap();
        }
        let late = t0 + SESSION_TTL_MS;
        assert_eq!(
            block_on(current(&ctx(&store, &config, late), &with_cookie(&s2.id))).unwrap_err(),
            AuthError::Expired
        );
        // Sign-out ends a session at once; no cookie is no session.
        let s3 = block_on(create(&ctx(&store, &config, t0), "usr_x", "oidc")).unwrap();
        block_on(end(&ctx(&store, &config, t0), &with_cookie(&s3.id))).unwrap();
        assert_eq!(
            block_on(current(&ctx(&store, &config, t0), &with_cookie(&s3.id))).unwrap_err(),
            AuthError::Invalid
        );
        assert_eq!(
            block_on(current(&ctx(&store, &config, t0), &Headers::new())).unwrap_err(),
            AuthError::Missing
        );
    }

    #[test]
    fn a_principal_without_admin_roles_gets_no_permit() {
        let store = MemoryStore::with_defaults();
        let config = Config::from_lookup(|_| None);
        let s = block_on(create(&ctx(&store, &config, 5), crate::store::DEFAULT_AGENT, "key")).unwrap();
        let live = block_on(current(&ctx(&store, &config, 5), &with_cookie(&s.id))).unwrap();
        assert_eq!(
            block_on(permit_of(&ctx(&store, &config, 5), &live)).unwrap_err(),
            AuthError::NotAdmin
        );
        let gone = block_on(create(&ctx(&store, &config, 5), "usr_gone", "oidc")).unwrap();
        let live = block_on(current(&ctx(&store, &config, 5), &with_cookie(&gone.id))).unwrap();
        assert_eq!(
            block_on(permit_of(&ctx(&store, &config, 5), &live)).unwrap_err(),
            AuthError::Revoked
        );
    }

    #[test]
    fn cookie_is_found_among_others() {
        let h = Headers::new().with("cookie", format!("a=1; {COOKIE}=abc ; b=2"));
        assert_eq!(session_id(&h), Some("abc"));
        assert_eq!(session_id(&Headers::new().with("cookie", "x=1")), None);
        assert_eq!(session_id(&Headers::new().with("cookie", format!("{COOKIE}="))), None);
        assert!(set_cookie("abc").contains("HttpOnly; Secure; SameSite=Strict; Path=/"));
    }

    #[test]
    fn csrf_needs_token_and_same_origin() {
        let o = "http://127.0.0.1:8787";
        let tok = csrf_token("sid");
        assert_ne!(tok, "sid");
        let good = Headers::new().with("origin", o).with(CSRF_HEADER, tok.clone());
        assert!(csrf_ok(&good, "sid", o));
        assert!(!csrf_ok(&good, "other", o), "another session's token fails");
        let no_token = Headers::new().with("origin", o);
        assert!(!csrf_ok(&no_token, "sid", o));
        let cross = Headers::new()
            .with("origin", "https://evil.example")
            .with(CSRF_HEADER, tok.clone());
        assert!(!csrf_ok(&cross, "sid", o));
        let fetch_cross = Headers::new()
            .with("sec-fetch-site", "cross-site")
            .with(CSRF_HEADER, tok.clone());
        assert!(!csrf_ok(&fetch_cross, "sid", o));
        assert!(csrf_ok(&Headers::new().with(CSRF_HEADER, tok), "sid", o));
    }
}
