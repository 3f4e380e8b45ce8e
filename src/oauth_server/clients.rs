//! OAuth client registration (RFC 7591), redirect-URI rules (RFC 8252) and Client ID Metadata
//! Documents (bounded fetch, cached, opt-in).
use serde_json::{json, Value};

use super::*;
use crate::context::Services;
use crate::crypto;
use crate::http::{Body, Headers, HttpRequest, HttpResponse, Method};
use crate::outbound::OutboundRequest;
use crate::policy::AuthError;
use crate::store::OAuthClient;

/// Redirect URIs a client may register and be sent to (RFC 8252, OAuth 2.1): `https`; `http`
/// only to a loopback host (a literal loopback address, or `localhost`), decided on the parsed
/// host; or a private-use scheme in reverse-domain form (`com.example.app:/cb` — a dot in the
/// scheme, which no browser-executable scheme such as `javascript:`, `vbscript:`, `data:`,
/// `file:` or `blob:` has). Never with userinfo or a fragment.
pub fn valid_redirect(uri: &str) -> bool {
    let Ok(u) = url::Url::parse(uri) else {
        return false;
    };
    if !u.username().is_empty() || u.password().is_some() || u.fragment().is_some() {
        return false;
    }
    match u.scheme() {
        "https" => u.host().is_some(),
        "http" => crate::url_rules::is_loopback_host(&u),
        scheme => private_use_scheme(scheme),
    }
}

/// A private-use URI scheme as RFC 8252 §7.1 asks for: a reversed domain name (letters, digits,
/// `-`, separated by dots; at least one dot).
fn private_use_scheme(scheme: &str) -> bool {
    scheme.contains('.')
        && scheme
            .split('.')
            .all(|label| !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

/// RFC 7591 dynamic registration (public clients: PKCE, no secret).
pub(super) async fn register(svc: &Services<'_>, req: &HttpRequest) -> Result<HttpResponse, AuthError> {
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return Ok(oauth_error(400, "invalid_client_metadata", "body must be JSON"));
    };
    let uris: Vec<String> = body
        .get("redirect_uris")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    if uris.is_empty() || uris.len() > 10 || !uris.iter().all(|u| valid_redirect(u)) {
        return Ok(oauth_error(
            400,
            "invalid_redirect_uri",
            "redirect_uris must be https, loopback http, or app schemes",
        ));
    }
    let client = OAuthClient {
        client_id: crypto::random_id("client_"),
        client_name: body
            .get("client_name")
            .and_then(Value::as_str)
            .map(|s| s.chars().take(200).collect()),
        redirect_uris: uris,
        created_at: svc.now(),
    };
    svc.oauth.put_client(&client).await?;
    Ok(json_resp(
        201,
        json!({
            "client_id": client.client_id,
            "client_name": client.client_name,
            "redirect_uris": client.redirect_uris,
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        }),
    ))
}

/// The client's registered redirect URIs: a registered client, or — where the deployment
/// accepts them — a Client ID Metadata Document fetched from the `client_id` URL (which must
/// name itself). `None`: unknown client.
pub(super) async fn client_redirects(svc: &Services<'_>, client_id: &str) -> Result<Option<Vec<String>>, AuthError> {
    // Registered ids are `client_…`; anything with a scheme is a metadata-document URL.
    if client_id.contains(':') {
        if !svc.config.client_metadata_documents {
            return Ok(None);
        }
        return Ok(metadata_document(svc, client_id).await);
    }
    Ok(svc.oauth.get_client(client_id).await?.map(|c| c.redirect_uris))
}

/// Time allowed for fetching a Client ID Metadata Document (the fetch needs no login, so it
/// must never hold a request for long).
pub const CIMD_FETCH_TIMEOUT_MS: u32 = 5_000;
/// Largest metadata document accepted.
pub const CIMD_MAX_BYTES: usize = 64 * 1024;
/// How long a fetched document's redirect URIs are reused (per isolate).
pub const CIMD_CACHE_TTL_MS: u64 = 5 * 60 * 1000;
/// Most documents remembered per isolate.
pub const CIMD_CACHE_MAX: usize = 256;

thread_local! {
    /// client_id URL → (fetched at, redirect URIs).
    static CIMD_CACHE: std::cell::RefCell<std::collections::HashMap<String, (u64, Vec<String>)>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Whether a `client_id` is a URL the gateway will fetch: `https` to a public host (any host
/// where private upstreams are allowed), or plain `http` only to a literal loopback address
/// (and only where private upstreams are allowed) — decided on the parsed host, so
/// `http://127.0.0.1@evil.example/` (userinfo) is refused; a path is required, and no
/// userinfo or fragment.
pub fn metadata_document_url(client_id: &str, allow_private: bool) -> Option<url::Url> {
    let u = url::Url::parse(client_id).ok()?;
    if !u.username().is_empty() || u.password().is_some() || u.fragment().is_some() || u.path() == "/" {
        return None;
    }
    let ok = match (u.scheme(), u.host()) {
        ("https", Some(_)) => allow_private || crate::url_rules::host_is_public(&u),
        ("http", Some(url::Host::Ipv4(a))) => allow_private && a.is_loopback(),
        ("http", Some(url::Host::Ipv6(a))) => allow_private && a.is_loopback(),
        _ => false,
    };
    ok.then_some(u)
}

/// Fetches (or recalls) a metadata document's redirect URIs: bounded in time and size, no
/// redirects followed, the document must name itself as `client_id`.
async fn metadata_document(svc: &Services<'_>, client_id: &str) -> Option<Vec<String>> {
    let url = metadata_document_url(client_id, svc.config.allow_private_upstreams)?;
    let now = svc.now_ms;
    let cached = CIMD_CACHE.with(|c| {
        c.borrow()
            .get(client_id)
            .filter(|(at, _)| now.saturating_sub(*at) < CIMD_CACHE_TTL_MS)
            .map(|(_, uris)| uris.clone())
    });
    if cached.is_some() {
        return cached;
    }
    let resp = svc
        .http
        .send(OutboundRequest {
            method: Method::Get,
            url: url.to_string(),
            headers: Headers::new().with("accept", "application/json"),
            body: None,
            timeout_ms: CIMD_FETCH_TIMEOUT_MS,
        })
        .await;
    let bytes = match resp {
        Ok(r) if r.status == 200 => match r.body {
            Body::Bytes(b) if b.len() <= CIMD_MAX_BYTES => b,
            _ => return None,
        },
        // Redirects (not followed: a 3xx lands here), errors, timeouts.
        Ok(r) => {
            tracing::warn!(status = r.status, "client metadata document refused");
            return None;
        }
        Err(e) => {
            tracing::warn!(error = %e, "client metadata document unavailable");
            return None;
        }
    };
    let doc: Value = serde_json::from_slice(&bytes).ok()?;
    if doc.get("client_id").and_then(Value::as_str) != Some(client_id) {
        return None;
    }
    let uris: Vec<String> = doc
        .get("redirect_uris")
        .and_then(Value::as_array)?
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    CIMD_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= CIMD_CACHE_MAX {
            c.retain(|_, (at, _)| now.saturating_sub(*at) < CIMD_CACHE_TTL_MS);
            if c.len() >= CIMD_CACHE_MAX {
                c.clear();
            }
        }
        c.insert(client_id.to_string(), (now, uris.clone()));
    });
    Some(uris)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uri_rule() {
        for ok in [
            "https://app.example.com/cb",
            "http://127.0.0.1:9/cb",
            "http://127.7.0.1/cb",
            "http://[::1]:8080/cb",
            "http://localhost:3030/callback",
            "com.example.app:/oauth2redirect",
            "com.example.app:/cb?x=1",
        ] {
            assert!(valid_redirect(ok), "{ok}");
        }
        for bad in [
            "vbscript:msgbox(1)",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "file:///etc/passwd",
            "blob:https://a.example/x",
            "about:blank",
            "myapp:/cb",
            "http://evil.example/cb",
            "http://127.0.0.1@evil.example/cb",
            "http://127.0.0.1.evil.example/cb",
            "http://localhost.evil.example/cb",
            "https://user:pw@app.example.com/cb",
            "https://app.example.com/cb#frag",
            "com..example:/cb",
            "not a uri",
            "",
        ] {
            assert!(!valid_redirect(bad), "{bad}");
        }
    }

    #[test]
    fn metadata_document_urls() {
        let allowed = |u: &str, private: bool| metadata_document_url(u, private).is_some();
        assert!(allowed("https://app.example.com/client.json", false));
        assert!(allowed("http://127.0.0.1:9/client.json", true));
        assert!(allowed("http://[::1]:9/client.json", true));
        // Plain http only to a literal loopback address, and only where private targets are allowed.
        assert!(!allowed("http://127.0.0.1:9/client.json", false));
        assert!(!allowed("http://localhost:9/client.json", true));
        assert!(!allowed("http://app.example.com/client.json", true));
        // Userinfo is not a host: `127.0.0.1@other` goes to `other`.
        assert!(!allowed("http://127.0.0.1@evil.example/client.json", true));
        assert!(!allowed("https://127.0.0.1@evil.example/client.json", true));
        assert!(!allowed("http://127.0.0.1:9@evil.example/client.json", true));
        // Private https targets only where allowed; a path is required; no fragment.
        assert!(!allowed("https://10.0.0.1/client.json", false));
        assert!(!allowed("https://169.254.169.254/latest", false));
        assert!(!allowed("https://app.example.com/", false));
        assert!(!allowed("https://app.example.com/c#x", false));
        assert!(!allowed("javascript:alert(1)//client", true));
    }
}
