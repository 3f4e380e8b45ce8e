//! Typed configuration, read once per request from Worker vars and secrets.

/// Upstream idle deadline (no response headers, no message for this long) when neither the
/// server nor `UPSTREAM_TIMEOUT_MS` sets one.
pub const DEFAULT_UPSTREAM_TIMEOUT_MS: u32 = 30_000;
/// Total deadline of one upstream request/response exchange (`UPSTREAM_TOTAL_TIMEOUT_MS`).
pub const DEFAULT_UPSTREAM_TOTAL_MS: u32 = 300_000;
/// Bounds on a configured total deadline.
pub const MIN_UPSTREAM_TOTAL_MS: u32 = 1_000;
pub const MAX_UPSTREAM_TOTAL_MS: u32 = 3_600_000;
/// Idle deadline of a long-lived upstream notification stream (GET, `subscriptions/listen`),
/// where keep-alive comments count (`UPSTREAM_LISTEN_IDLE_MS`): a bound on a dead connection.
pub const DEFAULT_LISTEN_IDLE_MS: u32 = 900_000;
pub const MIN_LISTEN_IDLE_MS: u32 = 1_000;
pub const MAX_LISTEN_IDLE_MS: u32 = 3_600_000;
/// Items per page of lists the gateway builds itself (aggregated tools, resources, prompts).
pub const DEFAULT_LIST_PAGE_SIZE: usize = 500;
/// How often live streams check whether the catalog changed.
pub const DEFAULT_CATALOG_POLL_MS: u64 = 5_000;
/// Bounds on any configured upstream timeout.
pub const MIN_UPSTREAM_TIMEOUT_MS: u32 = 100;
pub const MAX_UPSTREAM_TIMEOUT_MS: u32 = 300_000;
/// Deadline of one OTLP export (`OTEL_EXPORTER_OTLP_TIMEOUT`): the OpenTelemetry default, and
/// bounds that keep it within what `waitUntil` allows after the response (30 s).
pub const DEFAULT_OTLP_TIMEOUT_MS: u32 = 10_000;
pub const MIN_OTLP_TIMEOUT_MS: u32 = 100;
pub const MAX_OTLP_TIMEOUT_MS: u32 = 25_000;
/// The traces path appended to `OTEL_EXPORTER_OTLP_ENDPOINT` (the OTLP/HTTP base URL).
pub const OTLP_TRACES_PATH: &str = "v1/traces";
/// `service.name` of the spans unless `OTEL_SERVICE_NAME` sets one.
pub const DEFAULT_SERVICE_NAME: &str = "mcp-gateway";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Bootstrap admin bearer token (`ADMIN_TOKEN` secret). `None` disables the admin API.
    pub admin_token: Option<String>,
    /// Browser origins allowed on the MCP endpoints (`ALLOWED_ORIGINS`, comma-separated; `*` = any).
    pub allowed_origins: Vec<String>,
    /// `UPSTREAM_TIMEOUT_MS`: the upstream idle deadline (a server's `timeout_ms` overrides it).
    pub upstream_timeout_ms: u32,
    /// `UPSTREAM_TOTAL_TIMEOUT_MS`: the total deadline of one upstream exchange.
    pub upstream_total_ms: u32,
    /// `UPSTREAM_LISTEN_IDLE_MS`: the idle deadline of long-lived upstream streams.
    pub listen_idle_ms: u32,
    /// Key for signing pagination cursors: `GATEWAY_SECRET`, else derived from `ADMIN_TOKEN`.
    pub cursor_key: Vec<u8>,
    /// Keys the tokens of `hash` guardrails (derived like `cursor_key`, domain-separated).
    pub policy_hash_key: [u8; 32],
    /// `LIST_PAGE_SIZE`: items per page on `/mcp` and virtual servers.
    pub list_page_size: usize,
    /// `CATALOG_POLL_MS`: how often live streams look for catalog changes.
    pub catalog_poll_ms: u64,
    /// `VAULT_KEYS`: master keys for upstream credentials (`None`: credentials cannot be stored).
    pub vault: Option<crate::vault::Vault>,
    /// `ALLOW_PRIVATE_UPSTREAMS` = `true`: servers may target loopback, private and link-local
    /// addresses (local development and tests). Off unless set: see docs/tenancy.md.
    pub allow_private_upstreams: bool,
    /// `PUBLIC_ORIGIN`: the origin clients reach the gateway at (`https://mcp.example.com`).
    /// OAuth issuer and resource URLs come from it and requests for any other host are refused.
    /// Unset: local development — only loopback hosts are served, each as its own origin.
    pub public_origin: Option<String>,
    /// `CLIENT_ID_METADATA_DOCUMENTS` = `true`: `/oauth/authorize` accepts URL client ids and
    /// fetches their metadata documents. Off unless set.
    pub client_metadata_documents: bool,
    /// Where spans go (OpenTelemetry, OTLP/HTTP JSON); `None`: no endpoint configured.
    pub otlp: Option<OtlpConfig>,
}

/// The OTLP trace exporter's settings, read with the OpenTelemetry SDK environment variables'
/// meaning (docs/observability.md, "OpenTelemetry").
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpConfig {
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as given, else `OTEL_EXPORTER_OTLP_ENDPOINT` (a
    /// base URL) with `v1/traces` appended.
    pub traces_url: String,
    /// `OTEL_EXPORTER_OTLP_TRACES_HEADERS`, else `OTEL_EXPORTER_OTLP_HEADERS` (a secret).
    pub headers: OtlpHeaders,
    /// `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, else `OTEL_EXPORTER_OTLP_TIMEOUT` (ms, bounded).
    pub timeout_ms: u32,
    /// `OTEL_SERVICE_NAME`, else `mcp-gateway`.
    pub service_name: String,
}

/// Headers sent with each export (typically an authorization token): their values never
/// appear in `Debug` output or logs.
#[derive(Clone, PartialEq, Default)]
pub struct OtlpHeaders(pub Vec<(String, String)>);

impl std::fmt::Debug for OtlpHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| format!("{k}: <redacted>")))
            .finish()
    }
}

impl OtlpConfig {
    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Option<Self> {
        let nonempty = |k: &str| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let traces_url = match nonempty("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            Some(url) => url,
            None => {
                let base = nonempty("OTEL_EXPORTER_OTLP_ENDPOINT")?;
                let sep = if base.ends_with('/') { "" } else { "/" };
                format!("{base}{sep}{OTLP_TRACES_PATH}")
            }
        };
        // The URL is not logged: it may carry a credential in its userinfo or query.
        if !url::Url::parse(&traces_url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
            tracing::error!("OTLP export disabled: the endpoint is not an http(s) URL");
            return None;
        }
        let headers = nonempty("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
            .or_else(|| nonempty("OTEL_EXPORTER_OTLP_HEADERS"))
            .map(|h| parse_otlp_headers(&h))
            .unwrap_or_default();
        let timeout_ms = nonempty("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
            .or_else(|| nonempty("OTEL_EXPORTER_OTLP_TIMEOUT"))
            .and_then(|v| v.parse::<u32>().ok())
            .map(|v| v.clamp(MIN_OTLP_TIMEOUT_MS, MAX_OTLP_TIMEOUT_MS))
            .unwrap_or(DEFAULT_OTLP_TIMEOUT_MS);
        let service_name = nonempty("OTEL_SERVICE_NAME").unwrap_or_else(|| DEFAULT_SERVICE_NAME.into());
        Some(Self {
            traces_url,
            headers,
            timeout_ms,
            service_name,
        })
    }
}

/// `k=v,k2=v2` (the OpenTelemetry headers format: W3C baggage without properties, values
/// percent-decoded). A pair that is not a valid HTTP header is dropped, and named in the log
/// by its key only.
pub fn parse_otlp_headers(spec: &str) -> OtlpHeaders {
    let token = |k: &str| {
        !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    let mut out = Vec::new();
    for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once('=') else {
            tracing::error!("OTLP header ignored: not key=value");
            continue;
        };
        let (k, v) = (k.trim(), percent_decode(v.trim()));
        match v {
            Some(v) if token(k) && v.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80) => {
                out.push((k.to_ascii_lowercase(), v))
            }
            _ => tracing::error!(header = %k.chars().take(64).collect::<String>(), "OTLP header ignored: invalid"),
        }
    }
    OtlpHeaders(out)
}

/// `%XX` escapes decoded (UTF-8); `None` for a malformed escape or invalid UTF-8.
fn percent_decode(v: &str) -> Option<String> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl Config {
    /// Builds the configuration from a lookup of vars/secrets by name.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let admin_token = get("ADMIN_TOKEN").filter(|t| !t.trim().is_empty());
        let allowed_origins = get("ALLOWED_ORIGINS")
            .map(|s| {
                s.split(',')
                    .map(|o| o.trim().to_string())
                    .filter(|o| !o.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let upstream_timeout_ms = get("UPSTREAM_TIMEOUT_MS")
            .and_then(|s| s.trim().parse().ok())
            .map(clamp_timeout)
            .unwrap_or(DEFAULT_UPSTREAM_TIMEOUT_MS);
        let ms = |k: &str, min: u32, max: u32, default: u32| {
            get(k)
                .and_then(|s| s.trim().parse::<u32>().ok())
                .map(|v| v.clamp(min, max))
                .unwrap_or(default)
        };
        let upstream_total_ms = ms(
            "UPSTREAM_TOTAL_TIMEOUT_MS",
            MIN_UPSTREAM_TOTAL_MS,
            MAX_UPSTREAM_TOTAL_MS,
            DEFAULT_UPSTREAM_TOTAL_MS,
        );
        let listen_idle_ms = ms(
            "UPSTREAM_LISTEN_IDLE_MS",
            MIN_LISTEN_IDLE_MS,
            MAX_LISTEN_IDLE_MS,
            DEFAULT_LISTEN_IDLE_MS,
        );
        let secret = get("GATEWAY_SECRET").filter(|t| !t.trim().is_empty());
        // Domain-separated, so the admin token itself is never the signing key.
        let seed = secret.or(admin_token.clone()).unwrap_or_default();
        let cursor_key = crate::crypto::sha256_hex(format!("mcp-gateway cursor key\n{seed}").as_bytes()).into_bytes();
        let policy_hash_key = crate::crypto::sha256(format!("mcp-gateway policy hash key\n{seed}").as_bytes());
        let list_page_size = get("LIST_PAGE_SIZE")
            .and_then(|s| s.trim().parse().ok())
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_LIST_PAGE_SIZE);
        let catalog_poll_ms = get("CATALOG_POLL_MS")
            .and_then(|s| s.trim().parse().ok())
            .map(|ms: u64| ms.max(100))
            .unwrap_or(DEFAULT_CATALOG_POLL_MS);
        let vault = get("VAULT_KEYS").and_then(|spec| match crate::vault::Vault::parse(&spec) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!(error = %e, "VAULT_KEYS ignored");
                None
            }
        });
        let flag = |k: &str| get(k).is_some_and(|v| matches!(v.trim(), "true" | "1" | "yes"));
        let public_origin = get("PUBLIC_ORIGIN").and_then(|o| match url::Url::parse(o.trim()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                Some(u.origin().ascii_serialization())
            }
            _ => {
                tracing::error!("PUBLIC_ORIGIN ignored: not an http(s) origin");
                None
            }
        });
        Self {
            allow_private_upstreams: flag("ALLOW_PRIVATE_UPSTREAMS"),
            public_origin,
            client_metadata_documents: flag("CLIENT_ID_METADATA_DOCUMENTS"),
            otlp: OtlpConfig::from_lookup(&get),
            admin_token,
            allowed_origins,
            upstream_timeout_ms,
            upstream_total_ms,
            listen_idle_ms,
            cursor_key,
            policy_hash_key,
            list_page_size,
            catalog_poll_ms,
            vault,
        }
    }
}

impl Config {
    /// Browser origins allowed on the MCP endpoints: the `ALLOWED_ORIGINS` list, plus, in local
    /// development (no `PUBLIC_ORIGIN`), loopback origins on any port.
    pub fn origins(&self) -> crate::mcp::transport::Origins<'_> {
        crate::mcp::transport::Origins {
            allowed: &self.allowed_origins,
            loopback_any_port: self.public_origin.is_none(),
        }
    }

    /// The origin a request is served as, from the origin it arrived at (`scheme://host[:port]`,
    /// as the platform saw the `Host`): with `PUBLIC_ORIGIN` set, only its host and port are
    /// served, always as `PUBLIC_ORIGIN`; without it (local development), only loopback hosts,
    /// each as itself. `None`: refuse the request (421), so no URL the gateway hands out
    /// (OAuth issuer, resources, connect links) can be steered by a `Host` header.
    pub fn served_origin(&self, request_origin: &str) -> Option<String> {
        let req = url::Url::parse(request_origin).ok()?;
        match &self.public_origin {
            Some(public) => {
                let p = url::Url::parse(public).ok()?;
                // Host and explicit port; not the scheme, which TLS termination in front of the
                // Worker may change.
                (p.host() == req.host() && p.port() == req.port()).then(|| public.clone())
            }
            None => crate::url_rules::is_loopback_host(&req).then(|| req.origin().ascii_serialization()),
        }
    }
}

pub fn clamp_timeout(ms: u32) -> u32 {
    ms.clamp(MIN_UPSTREAM_TIMEOUT_MS, MAX_UPSTREAM_TIMEOUT_MS)
}

/// A total deadline within its bounds (`MIN_UPSTREAM_TOTAL_MS` – `MAX_UPSTREAM_TOTAL_MS`).
pub fn clamp_total(ms: u32) -> u32 {
    ms.clamp(MIN_UPSTREAM_TOTAL_MS, MAX_UPSTREAM_TOTAL_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_defaults() {
        let c = Config::from_lookup(|k| match k {
            "ADMIN_TOKEN" => Some("t".into()),
            "ALLOWED_ORIGINS" => Some("http://a, http://b,".into()),
            "UPSTREAM_TIMEOUT_MS" => Some("5".into()),
            _ => None,
        });
        assert_eq!(c.admin_token.as_deref(), Some("t"));
        assert_eq!(c.allowed_origins, vec!["http://a", "http://b"]);
        assert_eq!(c.upstream_timeout_ms, MIN_UPSTREAM_TIMEOUT_MS);
        let d = Config::from_lookup(|_| None);
        assert_eq!(
            (d.admin_token, d.upstream_timeout_ms),
            (None, DEFAULT_UPSTREAM_TIMEOUT_MS)
        );
        assert!(!d.allow_private_upstreams && !d.client_metadata_documents && d.public_origin.is_none());
    }

    #[test]
    fn otlp_follows_the_opentelemetry_variables() {
        let cfg = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            Config::from_lookup(move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())).otlp
        };
        assert_eq!(cfg(&[]), None);
        let base = cfg(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]).unwrap();
        assert_eq!(base.traces_url, "http://collector:4318/v1/traces");
        assert_eq!(base.timeout_ms, DEFAULT_OTLP_TIMEOUT_MS);
        assert_eq!(base.service_name, DEFAULT_SERVICE_NAME);
        assert_eq!(
            cfg(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://otlp.example/otel/")])
                .unwrap()
                .traces_url,
            "https://otlp.example/otel/v1/traces"
        );
        let full = cfg(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "https://otlp.example/custom/traces",
            ),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "Authorization=Bearer%20s3cret, x-tenant = a=b ,bad header=x,noeq,x-bad=%zz",
            ),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "999999"),
            ("OTEL_SERVICE_NAME", "edge-gw"),
        ])
        .unwrap();
        assert_eq!(full.traces_url, "https://otlp.example/custom/traces");
        assert_eq!(
            full.headers.0,
            vec![
                ("authorization".to_string(), "Bearer s3cret".to_string()),
                ("x-tenant".to_string(), "a=b".to_string()),
            ]
        );
        assert_eq!(full.timeout_ms, MAX_OTLP_TIMEOUT_MS);
        assert_eq!(full.service_name, "edge-gw");
        assert!(!format!("{full:?}").contains("s3cret"), "header values never in Debug");
        assert_eq!(cfg(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")]), None);
        assert_eq!(cfg(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://collector")]), None);
        assert_eq!(parse_otlp_headers("k=%0d%0aevil: 1").0, vec![], "no header injection");
    }

    #[test]
    fn served_origin_follows_public_origin_or_loopback() {
        let dev = Config::from_lookup(|_| None);
        assert_eq!(
            dev.served_origin("http://127.0.0.1:8787").as_deref(),
            Some("http://127.0.0.1:8787")
        );
        assert_eq!(
            dev.served_origin("http://localhost:9").as_deref(),
            Some("http://localhost:9")
        );
        assert_eq!(dev.served_origin("http://[::1]:9").as_deref(), Some("http://[::1]:9"));
        assert_eq!(dev.served_origin("http://evil.example"), None);
        assert_eq!(dev.served_origin("http://127.0.0.1.evil.example"), None);
        let prod = Config::from_lookup(|k| (k == "PUBLIC_ORIGIN").then(|| "https://Gateway.Example/".to_string()));
        assert_eq!(prod.public_origin.as_deref(), Some("https://gateway.example"));
        for ok in [
            "https://gateway.example",
            "http://gateway.example",
            "https://gateway.example:443",
        ] {
            assert_eq!(
                prod.served_origin(ok).as_deref(),
                Some("https://gateway.example"),
                "{ok}"
            );
        }
        for bad in [
            "https://evil.example",
            "http://127.0.0.1:8787",
            "https://gateway.example:8443",
            "garbage",
        ] {
            assert_eq!(prod.served_origin(bad), None, "{bad}");
        }
        let bad = Config::from_lookup(|k| (k == "PUBLIC_ORIGIN").then(|| "not a url".to_string()));
        assert_eq!(bad.public_origin, None);
    }
}
