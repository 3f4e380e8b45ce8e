//! The only module that touches the Workers runtime (`worker::`): the fetch entry point and the
//! adapters from Cloudflare bindings to the core's traits.
mod analytics;
mod approvals_do;
mod audit;
#[cfg(feature = "store-conformance")]
mod conformance;
mod convert;
mod d1;
mod delay;
mod do_rpc;
mod fetch;
mod kv;
mod limits_do;
mod otlp;
mod refresher;
mod session_do;
mod snapshot;

pub use approvals_do::Approvals;
pub use limits_do::RateCounter;
pub use refresher::CredentialRefresher;
pub use session_do::McpSession;

use worker::{event, Context, Env, Request, Response, Result};

use std::rc::Rc;

use crate::config::Config;
use crate::gateway::endpoint::{self, Routed};
use crate::gateway::live::LiveDeps;
use crate::http::{HttpRequest, HttpResponse, Method};
use crate::mcp::transport;
use crate::observe::{EventSink, Fanout};

/// Binding names (wrangler.toml).
pub const DB_BINDING: &str = "DB";
pub const VAULT_BINDING: &str = "VAULT";
pub const REFRESHERS_BINDING: &str = "REFRESHERS";
pub const SESSIONS_BINDING: &str = "SESSIONS";
pub const COUNTERS_BINDING: &str = "COUNTERS";
pub const APPROVALS_BINDING: &str = "APPROVALS";
/// Internal headers on Worker → Durable Object requests (never accepted from clients: the
/// Durable Object is reachable only through this Worker, which sets them itself).
pub const CTX_HEADER: &str = "x-gateway-session-ctx";
pub const SESSION_HEADER: &str = "x-gateway-session-id";

thread_local! {
    /// The configuration, read from the environment once per isolate: vars and secrets are fixed
    /// for an isolate's life (a change deploys a new one), and reading them is a round of
    /// JavaScript calls per variable.
    static CONFIG: std::cell::OnceCell<Config> = const { std::cell::OnceCell::new() };
}

pub fn config(env: &Env) -> Config {
    CONFIG.with(|c| {
        c.get_or_init(|| {
            Config::from_lookup(|k| {
                env.secret(k)
                    .map(|s| s.to_string())
                    .ok()
                    .or_else(|| env.var(k).map(|v| v.to_string()).ok())
            })
        })
        .clone()
    })
}

pub fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
    // Structured JSON logs to the Workers console (Workers Logs / `wrangler tail`). The runtime
    // stamps each line itself, hence no timer.
    use tracing_subscriber::prelude::*;
    let fmt = tracing_subscriber::fmt::layer()
        .json()
        .with_ansi(false)
        .without_time()
        .with_writer(tracing_web::MakeConsoleWriter);
    let _ = tracing_subscriber::registry().with(fmt).try_init();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let path = req.path();
    if path == "/healthz" {
        return Response::ok("ok");
    }
    if let Some(r) = delay::route(&path) {
        return r;
    }
    #[cfg(feature = "store-conformance")]
    if conformance::serves(&path) {
        return conformance::handle(req, &env).await;
    }
    let cfg = config(&env);
    let arrived_at = req.url().map(|u| u.origin().ascii_serialization()).unwrap_or_default();
    // Every URL the gateway hands out (OAuth issuer and resources, connect links) is built
    // from the public origin, never from a client's `Host` header.
    let Some(origin) = cfg.served_origin(&arrived_at) else {
        return convert::response(misdirected());
    };
    let core_req = match convert::request(req, max_body(&path)).await {
        Ok(r) => r,
        // The admin API answers every error as a problem document, this one too.
        Err(resp) if resp.status == 413 && path.starts_with(crate::admin::PREFIX) => {
            return convert::response(crate::admin::error::problem(&crate::admin::ApiError::TooLarge))
        }
        Err(resp) => return convert::response(resp),
    };
    let cors = transport::cors_headers(&core_req.headers, cfg.origins());
    // Work that must outlive the response (or the client's disconnect) runs under `waitUntil`.
    let ctx = Rc::new(ctx);
    let spawn: Spawn = Rc::new(move |f| ctx.wait_until(f));
    let resp = route(&env, &cfg, &path, &core_req, &origin, spawn).await?;
    with_headers(resp, &cors)
}

async fn route(
    env: &Env,
    cfg: &Config,
    path: &str,
    core_req: &HttpRequest,
    origin: &str,
    spawn: Spawn,
) -> Result<Response> {
    let target = endpoint::Target::from_path(path);
    if target.is_some() && core_req.method == Method::Options {
        return convert::response(transport::preflight(&core_req.headers, cfg.origins()));
    }
    // The admin API reads storage as it is; MCP requests read the isolate's snapshot.
    let admin = path == crate::admin::PREFIX || path.starts_with("/admin/");
    let deps = deps(env, cfg, spawn, !admin)?;
    let svc = deps.request_services(origin);
    if let Some(r) = crate::oauth_server::handle(&svc, core_req, origin).await {
        return convert::response(r);
    }
    if let Some((r, connected)) = crate::upstream_auth::connect::handle(&svc, core_req).await {
        if let Some(c) = connected {
            crate::gateway::sync::first_catalog(&svc, &c.server, &c.user).await;
        }
        return convert::response(r);
    }
    if let Some(r) = crate::console::handle(&svc, core_req).await {
        return convert::response(r);
    }
    let resp = if path == crate::admin::PREFIX || path.starts_with("/admin/v1/") {
        crate::admin::handle(&svc, core_req).await
    } else if let Some(flavor) = crate::gateway::guardrail_api::Flavor::from_path(path) {
        // LLM gateways' policy checks (Portkey's webhook guardrail, LiteLLM's generic API).
        crate::gateway::guardrail_api::handle(&svc, core_req, flavor).await
    } else if let Some(target) = target {
        match endpoint::handle(&svc, core_req, target).await {
            // A 401 tells the client where the protected-resource metadata is (MCP authorization).
            Routed::Respond(mut r) if r.status == 401 => {
                let invalid = r
                    .headers
                    .get("www-authenticate")
                    .is_some_and(|h| h.contains("invalid_token"));
                r.headers.set(
                    "www-authenticate",
                    crate::policy::tokens::challenge(origin, path, invalid),
                );
                r
            }
            Routed::Respond(r) => r,
            Routed::Session { session_id, ctx } => return session_do::forward(env, core_req, &session_id, &ctx).await,
        }
    } else if path == "/" {
        HttpResponse::json(
            200,
            &serde_json::json!({
                "name": "mcp-gateway",
                "version": env!("CARGO_PKG_VERSION"),
                "mcp": ["/mcp", "/mcp/{server}", "/mcp/v/{virtual_server}"],
                "guardrails": [
                    crate::gateway::guardrail_api::PORTKEY_PATH,
                    crate::gateway::guardrail_api::LITELLM_PATH,
                ],
                "admin": crate::admin::PREFIX,
            }),
        )
    } else {
        HttpResponse::json(404, &serde_json::json!({"error": "not found"}))
    };
    convert::response(resp)
}

/// 421 for a request to a host the gateway does not serve (see `Config::served_origin`).
fn misdirected() -> HttpResponse {
    HttpResponse::json(
        421,
        &serde_json::json!({
            "type": "https://mcp-gateway.dev/problems/misdirected-request",
            "title": "Misdirected Request",
            "status": 421,
            "detail": "this gateway does not serve that host (set PUBLIC_ORIGIN to the origin clients use)",
        }),
    )
    .with_header("content-type", "application/problem+json")
}

/// Runs a future beyond the request that started it.
pub type Spawn = Rc<dyn Fn(futures_util::future::LocalBoxFuture<'static, ()>)>;

/// For Durable Objects, which stay alive while they have work: a plain local task.
pub fn spawn_local() -> Spawn {
    Rc::new(worker::wasm_bindgen_futures::spawn_local)
}

/// The store, the upstream client and what live streams need, for one request.
pub fn live_deps(env: &Env, cfg: &Config, spawn: Spawn) -> Result<Rc<LiveDeps>> {
    deps(env, cfg, spawn, true)
}

/// The same, reading storage as it is (writes still bump the snapshot version).
pub fn storage_deps(env: &Env, cfg: &Config, spawn: Spawn) -> Result<Rc<LiveDeps>> {
    deps(env, cfg, spawn, false)
}

fn deps(env: &Env, cfg: &Config, spawn: Spawn, cache_reads: bool) -> Result<Rc<LiveDeps>> {
    delay::configure(env);
    let (store, secrets, keeper) = snapshot::stores(env, spawn.clone(), cache_reads)?;
    let events = event_sinks(env, cfg, &spawn);
    let usage = Rc::new(d1::D1Store::new(env.d1(DB_BINDING)?));
    let counters: Rc<dyn crate::store::Counters> = Rc::new(limits_do::DoCounters { env: env.clone() });
    let approvals: Rc<dyn crate::store::Approvals> = Rc::new(approvals_do::DoApprovals { env: env.clone() });
    let now: Rc<dyn Fn() -> u64> = Rc::new(now_ms);
    // Policies apply at the pipeline's before-call hook (docs/policies.md).
    let hooks = Rc::new(crate::gateway::policies::PolicyHooks {
        store: store.clone(),
        keeper: cache_reads.then(|| keeper.clone()),
        counters: counters.clone(),
        approvals: approvals.clone(),
        hash_key: cfg.policy_hash_key,
        now_ms: now.clone(),
        origin: cfg.public_origin.clone().unwrap_or_default(),
    });
    Ok(Rc::new(LiveDeps {
        store,
        secrets,
        usage,
        // The audit trail reads and writes D1 as it is: no snapshot, no version bump.
        audit: Rc::new(d1::D1Store::new(env.d1(DB_BINDING)?)),
        counters,
        approvals,
        scheduler: Rc::new(refresher::DoScheduler { env: env.clone() }),
        http: Rc::new(fetch::FetchClient),
        config: cfg.clone(),
        sleep: Rc::new(|ms| Box::pin(worker::Delay::from(std::time::Duration::from_millis(ms)))),
        now_ms: now,
        spawn,
        hooks,
        events,
        snapshot: cache_reads.then_some(keeper),
    }))
}

/// What the event sinks share across an isolate's requests: found once, like the configuration
/// (bindings and vars are fixed for an isolate's life). Each is present only when the
/// deployment configures it.
struct IsolateSinks {
    analytics: Option<Rc<dyn EventSink>>,
    audit: Option<Rc<crate::observe::outbox::Outbox>>,
    otlp: Option<Rc<otlp::Exporter>>,
}

thread_local! {
    static SINKS: std::cell::OnceCell<IsolateSinks> = const { std::cell::OnceCell::new() };
}

/// Observability's sinks for one request, each given every event (docs/observability.md): the
/// isolate's, with the request's `spawn` for the work that outlives the response.
fn event_sinks(env: &Env, cfg: &Config, spawn: &Spawn) -> Rc<dyn EventSink> {
    SINKS.with(|s| {
        let s = s.get_or_init(|| {
            if delay::events_off(env) {
                return IsolateSinks {
                    analytics: None,
                    audit: None,
                    otlp: None,
                };
            }
            IsolateSinks {
                analytics: analytics::sink(env),
                audit: audit::outbox(env),
                otlp: otlp::exporter(cfg),
            }
        });
        let mut sinks: Vec<Rc<dyn EventSink>> = Vec::with_capacity(3);
        sinks.extend(s.analytics.clone());
        if let Some(outbox) = &s.audit {
            sinks.push(Rc::new(audit::QueueSink {
                outbox: outbox.clone(),
                spawn: spawn.clone(),
            }));
        }
        if let Some(exporter) = &s.otlp {
            sinks.push(Rc::new(otlp::OtlpSink {
                exporter: exporter.clone(),
                spawn: spawn.clone(),
            }));
        }
        Rc::new(Fanout(sinks)) as Rc<dyn EventSink>
    })
}

/// Adds headers to a response (copying them: a response from a Durable Object has immutable ones).
fn with_headers(resp: Response, extra: &[(&str, String)]) -> Result<Response> {
    if extra.is_empty() {
        return Ok(resp);
    }
    let headers = worker::Headers::new();
    for (k, v) in resp.headers().entries() {
        headers.append(&k, &v)?;
    }
    for (k, v) in extra {
        headers.set(k, v)?;
    }
    Ok(resp.with_headers(headers))
}

/// Body limit by route: MCP messages and admin documents have their own.
fn max_body(path: &str) -> usize {
    if path.starts_with("/admin/") {
        crate::admin::MAX_ADMIN_BODY_BYTES
    } else {
        crate::mcp::transport::MAX_BODY_BYTES
    }
}
