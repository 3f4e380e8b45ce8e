//! What a request's code is given by the platform: the store handles, the outbound HTTP client,
//! the clock and the public origin. Plain data over the store and outbound traits, below every
//! layer that takes it.
use std::rc::Rc;

use futures_util::future::LocalBoxFuture;

use crate::config::Config;
use crate::mcp::error::RpcError;
use crate::observe::{Clock, EventSink, Probe};
use crate::outbound::{Background, HttpClient};
use crate::store::timestamp;
use crate::store::usage::UsageStore;
use crate::store::{
    ApiKeys, Approvals, AuditStore, Changes, Counters, Directory, OAuthStore, Policies, Registry, SecretStore, Store,
    VirtualServers,
};

/// What the core needs from the platform for one request.
#[derive(Clone)]
pub struct Services<'a> {
    pub registry: &'a dyn Registry,
    pub keys: &'a dyn ApiKeys,
    pub virtuals: &'a dyn VirtualServers,
    /// Organizations' policies (served from the snapshot).
    pub policies: &'a dyn Policies,
    pub directory: &'a dyn Directory,
    /// Several writes to the stores above applied as one (configuration as code).
    pub changes: &'a dyn Changes,
    pub oauth: &'a dyn OAuthStore,
    pub secrets: &'a dyn SecretStore,
    /// Usage figures from the audit trail (never cached in the snapshot).
    pub usage: &'a dyn UsageStore,
    /// The audit trail (never served from the snapshot).
    pub audit: &'a dyn AuditStore,
    /// Rate-limit and quota counters (exact, durable across isolates).
    pub counters: &'a dyn Counters,
    /// Human approvals of tool calls.
    pub approvals: &'a dyn Approvals,
    /// The gateway's own origin (`https://host`), as clients reach it.
    pub origin: &'a str,
    pub http: &'a dyn HttpClient,
    pub config: &'a Config,
    /// Milliseconds since the Unix epoch, read once per request.
    pub now_ms: u64,
    /// The pipeline's hooks around every upstream call (`CallHooks`).
    pub hooks: Rc<dyn CallHooks>,
    /// Where finished events go (observability: Analytics Engine, audit trail, OTLP).
    pub events: Rc<dyn EventSink>,
    /// What long-lived streams need (`None` where they are not offered, e.g. native tests).
    pub live: Option<Rc<LiveDeps>>,
    /// The event of the MCP request being served (`None` for work that is not one: admin,
    /// watchers, refreshes). Whoever learns a fact of the request writes it here.
    pub probe: Option<Rc<Probe>>,
    /// The client can be sent to a URL and asked to retry (a legacy session whose client
    /// declared URL-mode elicitation at `initialize`).
    pub url_elicitation: bool,
}

/// What authentication reads: key, identity and token stores, the OIDC fetcher, the clock and
/// the configuration (admin token) — nothing else of the request's handles.
#[derive(Clone, Copy)]
pub struct AuthCtx<'a> {
    pub keys: &'a dyn ApiKeys,
    pub directory: &'a dyn Directory,
    pub oauth: &'a dyn OAuthStore,
    pub http: &'a dyn HttpClient,
    pub config: &'a Config,
    pub now_ms: u64,
}

impl<'a> Services<'a> {
    /// The narrow view authentication takes.
    pub fn auth(&self) -> AuthCtx<'a> {
        AuthCtx {
            keys: self.keys,
            directory: self.directory,
            oauth: self.oauth,
            http: self.http,
            config: self.config,
            now_ms: self.now_ms,
        }
    }

    /// RFC 3339 timestamp of `now_ms` (how D1 rows record time).
    pub fn now(&self) -> String {
        timestamp(self.now_ms)
    }

    /// The same services serving the MCP request whose event `probe` builds.
    pub fn with_probe(&self, probe: Rc<Probe>) -> Self {
        Self {
            probe: Some(probe),
            ..self.clone()
        }
    }

    /// The clock events are timed with: the platform's where it has one (it moves during a
    /// request), else the request's arrival time.
    pub fn clock(&self) -> Clock {
        match &self.live {
            Some(l) => {
                let now = l.now_ms.clone();
                Rc::new(move || now() as f64)
            }
            None => {
                let t = self.now_ms as f64;
                Rc::new(move || t)
            }
        }
    }

    /// Writes facts into the request's event, if one is being built.
    pub fn note(&self, f: impl FnOnce(&Probe)) {
        if let Some(p) = &self.probe {
            f(p);
        }
    }
}

/// Schedules a refresh of one user's upstream connection (a Durable Object alarm on the platform).
#[async_trait::async_trait(?Send)]
pub trait RefreshScheduler {
    async fn schedule(&self, slug: &str, user: &str, at_ms: u64);
}

/// What long-lived streams need beyond one request's borrows.
pub struct LiveDeps {
    /// Every store (D1).
    pub store: Rc<dyn Store>,
    /// Sealed upstream credentials (KV).
    pub secrets: Rc<dyn crate::store::SecretStore>,
    /// Usage figures from the audit trail (D1, read as it is).
    pub usage: Rc<dyn UsageStore>,
    /// The audit trail (D1, read and written as it is: no snapshot, no version bump).
    pub audit: Rc<dyn AuditStore>,
    /// Rate-limit and quota counters (Durable Objects, one per counter key).
    pub counters: Rc<dyn Counters>,
    /// Human approvals (Durable Objects, one per organization).
    pub approvals: Rc<dyn Approvals>,
    /// Schedules refreshes of per-user upstream tokens (Durable Object alarms).
    pub scheduler: Rc<dyn RefreshScheduler>,
    pub http: Rc<dyn HttpClient>,
    pub config: Config,
    /// Resolves after the given milliseconds (a Workers timer on the platform).
    pub sleep: Rc<dyn Fn(u64) -> LocalBoxFuture<'static, ()>>,
    pub now_ms: Rc<dyn Fn() -> u64>,
    /// Runs a future to completion even after the request that started it has been answered
    /// or abandoned (`waitUntil` on the platform).
    pub spawn: Rc<dyn Fn(LocalBoxFuture<'static, ()>)>,
    /// The request pipeline's hooks (`CallHooks`).
    pub hooks: Rc<dyn CallHooks>,
    /// Where finished events go (`observe::EventSink`).
    pub events: Rc<dyn EventSink>,
    /// The isolate's snapshot, for values derived from what it holds (`None`: reads are not
    /// served from a snapshot, so nothing derived may be kept either).
    pub snapshot: Option<Rc<crate::snapshot::Keeper>>,
}

impl LiveDeps {
    /// Sends upstream requests in the background (see `Upstream::background`).
    pub fn background(&self) -> Background {
        let (http, spawn) = (self.http.clone(), self.spawn.clone());
        Rc::new(move |req| {
            let http = http.clone();
            spawn(Box::pin(async move {
                if let Err(e) = http.send(req).await {
                    tracing::warn!(error = %e, "background upstream request failed");
                }
            }))
        })
    }

    /// Services for work not tied to one request (watchers, refreshes): no origin, no live streams.
    pub fn detached(&self) -> Services<'_> {
        self.with(None, "")
    }

    /// The services of one request, able to open long-lived streams.
    pub fn request_services<'a>(self: &'a Rc<Self>, origin: &'a str) -> Services<'a> {
        self.with(Some(self.clone()), origin)
    }

    fn with<'a>(&'a self, live: Option<Rc<LiveDeps>>, origin: &'a str) -> Services<'a> {
        Services {
            registry: &*self.store,
            keys: &*self.store,
            virtuals: &*self.store,
            policies: &*self.store,
            directory: &*self.store,
            changes: &*self.store,
            oauth: &*self.store,
            secrets: &*self.secrets,
            usage: &*self.usage,
            audit: &*self.audit,
            counters: &*self.counters,
            approvals: &*self.approvals,
            http: &*self.http,
            config: &self.config,
            now_ms: (self.now_ms)(),
            hooks: self.hooks.clone(),
            events: self.events.clone(),
            live,
            origin,
            probe: None,
            url_elicitation: false,
        }
    }
}

/// One client request on its way to an upstream, as the request pipeline's hooks see it: who
/// (from the permit), which server, which method and name, and the W3C trace it joins.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub principal_id: String,
    pub org_id: String,
    pub key_id: String,
    /// The caller's organization, workspaces and teams (what policy scopes match).
    pub identity: crate::store::Identity,
    pub server: String,
    /// The virtual server the request came through (`/mcp/v/{slug}`), if any.
    pub virtual_server: Option<String>,
    pub method: String,
    /// The tool, prompt or resource named by the request, if any (the server's own name).
    pub name: Option<String>,
    pub params: serde_json::Value,
    /// The W3C trace id the request joined (or started).
    pub trace: Option<String>,
    pub started_ms: u64,
    /// The client declared URL-mode elicitation (legacy sessions: at `initialize`), so it can
    /// be sent to a page and asked to retry (-32042).
    pub url_elicitation: bool,
}

/// What `before_call` lets through: the arguments to send instead of the client's (a guardrail
/// rewrote them), and a filter the answer passes on its way to the client.
#[derive(Default)]
pub struct Admitted {
    pub arguments: Option<serde_json::Value>,
    pub answer: Option<AnswerFilter>,
}

/// Applied to the answer to a call (a `result` or `error` response), after era translation and
/// id mapping, before the caller's own filters.
pub type AnswerFilter = Rc<dyn Fn(serde_json::Value) -> serde_json::Value>;

/// Hooks that do nothing: the pipeline as it is without policies.
pub struct NoHooks;
impl CallHooks for NoHooks {
    fn active(&self) -> bool {
        false
    }
    fn before_call<'a>(
        &'a self,
        _: &'a Call,
        _: Option<&'a Rc<Probe>>,
    ) -> LocalBoxFuture<'a, Result<Admitted, RpcError>> {
        Box::pin(async { Ok(Admitted::default()) })
    }
}

/// The hook points of the one request pipeline (authenticate → resolve → authorize → before
/// call → upstream exchange → after result → record; docs/architecture.md). Every client request
/// to any upstream, in either era, on every endpoint, in the Worker or a session's Durable
/// Object, passes `gateway::forward`, which calls them. Policies plug in here
/// (`gateway::policies`); the record step is the request's event (`Services::probe`), emitted
/// once to the platform's sinks.
pub trait CallHooks {
    /// Whether any hook does something. `false` lets the pipeline skip building the `Call` and
    /// wrapping the answer on the hot path, since no hook would see them.
    fn active(&self) -> bool {
        true
    }
    /// Before the message leaves. An error is answered to the client instead; the upstream never
    /// sees the call. What the hook decided goes into the request's event through `probe`.
    fn before_call<'a>(
        &'a self,
        call: &'a Call,
        probe: Option<&'a Rc<Probe>>,
    ) -> LocalBoxFuture<'a, Result<Admitted, RpcError>>;
}
