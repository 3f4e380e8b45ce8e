//! Live updates on long-lived streams: the legacy GET stream and the modern
//! `subscriptions/listen`. A watcher polls the catalog generation and announces
//! `notifications/tools/list_changed` when what clients may list has changed. When an upstream
//! announces its own tools changed, the gateway re-syncs that server first (lists are served
//! from the catalog) and then announces — so a client that re-lists sees the new catalog.
use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::rc::Rc;

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::http::{Body, ByteStream, HttpResponse};
use crate::mcp::jsonrpc::RequestId;
use crate::mcp::sse;
use crate::mcp::version::Era;
use crate::observe::TraceContext;
use crate::policy::Permit;
use crate::store::ServerRecord;

use super::relay::{self, RelayOptions, Transform};
use super::upstream::{legacy_init_params, modern_request, ClientContext, Upstream};
use super::{sync, uris, Services};

/// `_meta` key tying a notification to its `subscriptions/listen` request.
pub const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";
const TOOLS_CHANGED: &str = "notifications/tools/list_changed";

pub use crate::context::LiveDeps;

thread_local! {
    /// Servers whose upstreams announced `tools/list_changed` on any stream relayed in this
    /// isolate, waiting for a watcher to re-sync them.
    static ANNOUNCED: RefCell<BTreeSet<String>> = const { RefCell::new(BTreeSet::new()) };
}

/// Records that `slug`'s upstream announced its tools changed.
pub fn announce(slug: &str) {
    ANNOUNCED.with(|a| a.borrow_mut().insert(slug.to_string()));
}

fn drain() -> Vec<String> {
    ANNOUNCED.with(|a| std::mem::take(&mut *a.borrow_mut()).into_iter().collect())
}

/// Whether a message is an upstream's `tools/list_changed`.
pub fn is_tools_changed(m: &Value) -> bool {
    m.get("method").and_then(Value::as_str) == Some(TOOLS_CHANGED)
}

/// Wraps the transform of a relayed upstream notification stream: the upstream's
/// `tools/list_changed` is held back and turned into a re-sync (the watcher announces once the
/// catalog is current); everything else goes to `then`.
pub fn intercept(slug: &str, mut then: impl FnMut(Value) -> Option<Value> + 'static) -> Transform {
    let slug = slug.to_string();
    Box::new(move |m| {
        if is_tools_changed(&m) {
            announce(&slug);
            None
        } else {
            then(m)
        }
    })
}

/// Turns a gateway notification into SSE bytes for one stream.
pub type Emit = Rc<dyn Fn(Value) -> String>;

/// An emitter that numbers and logs events for `Last-Event-ID` resumption (legacy sessions).
pub fn logged(log: Rc<dyn super::session::ReplayLog>) -> Emit {
    let stream = log.next_stream();
    let seq = Cell::new(0u64);
    Rc::new(move |v: Value| {
        seq.set(seq.get() + 1);
        let data = v.to_string();
        log.append(stream, seq.get(), &data);
        sse::Event {
            id: Some(format!("{stream}-{}", seq.get())),
            ..sse::Event::message(data)
        }
        .encode()
    })
}

/// The watcher: every `catalog_poll_ms`, re-syncs announced servers and announces
/// `tools/list_changed` when the catalog generation moved. Ends when the client goes away.
pub fn watcher(deps: Rc<LiveDeps>, start: u64, emit: Emit) -> ByteStream {
    futures_util::stream::unfold((deps, start, emit), |(deps, mut last, emit)| async move {
        loop {
            (deps.sleep)(deps.config.catalog_poll_ms).await;
            for slug in drain() {
                resync(&deps, &slug).await;
            }
            if let Ok(g) = deps.store.catalog_generation().await {
                if g != last {
                    last = g;
                    let ev = emit(json!({"jsonrpc": "2.0", "method": TOOLS_CHANGED}));
                    return Some((Ok(ev.into_bytes()), (deps, last, emit)));
                }
            }
        }
    })
    .boxed_local()
}

async fn resync(deps: &LiveDeps, slug: &str) {
    let svc = deps.detached();
    if let Ok(Some(server)) = svc.registry.get_server(slug).await {
        if let Err(e) = sync::refresh(&svc, &server).await {
            tracing::warn!(upstream = %slug, error = ?e, "re-sync after list_changed failed");
        }
    }
}

/// Most resource URIs one `subscriptions/listen` may subscribe to; the rest are not honored
/// (left out of the acknowledgement).
pub const MAX_RESOURCE_SUBSCRIPTIONS: usize = 100;
const RESOURCE_UPDATED: &str = "notifications/resources/updated";

/// Which notifications a `subscriptions/listen` asked for.
#[derive(Debug, Clone, Copy, Default)]
struct Filter {
    tools: bool,
    prompts: bool,
    resources: bool,
}

impl Filter {
    fn from(params: &Value) -> Self {
        let n = params.get("notifications").cloned().unwrap_or_default();
        let on = |k: &str| n.get(k).and_then(Value::as_bool).unwrap_or(false);
        Filter {
            tools: on("toolsListChanged"),
            prompts: on("promptsListChanged"),
            resources: on("resourcesListChanged"),
        }
    }

    fn wants(&self, method: &str) -> bool {
        match method {
            "notifications/prompts/list_changed" => self.prompts,
            "notifications/resources/list_changed" => self.resources,
            _ => false,
        }
    }

    fn honored(&self) -> Value {
        let mut v = json!({});
        for (on, k) in [
            (self.tools, "toolsListChanged"),
            (self.prompts, "promptsListChanged"),
            (self.resources, "resourcesListChanged"),
        ] {
            if on {
                v[k] = json!(true);
            }
        }
        v
    }
}

/// The upstream's own subscription id is meaningless to the client (the gateway's listen
/// replaces it with the client's).
fn strip_subscription_id(mut v: Value) -> Value {
    if let Some(meta) = v.pointer_mut("/params/_meta").and_then(Value::as_object_mut) {
        meta.remove(SUBSCRIPTION_ID);
    }
    v
}

fn tag(mut v: Value, id: &RequestId) -> Value {
    if !v.get("params").is_some_and(Value::is_object) {
        v["params"] = json!({});
    }
    let params = v["params"].as_object_mut().expect("params is an object");
    let meta = params.entry("_meta").or_insert_with(|| json!({}));
    meta[SUBSCRIPTION_ID] = id.clone();
    v
}

/// The resources a `subscriptions/listen` subscribes to, as the client named them, sorted out
/// per server: on `/mcp` (`namespaced`) by the `{slug}+` prefix, else all to the one server.
/// Only servers that declare `resources.subscribe` get any; the rest are not honored.
fn resource_subscriptions(
    params: &Value,
    servers: &[&ServerRecord],
    namespaced: bool,
) -> Option<Vec<(String, String, String)>> {
    let asked = params.pointer("/notifications/resourceSubscriptions")?.as_array()?;
    let mut honored = Vec::new();
    for uri in asked.iter().filter_map(Value::as_str) {
        let found = servers.iter().find_map(|s| {
            let original = if namespaced { uris::original(&s.slug, uri)? } else { uri };
            let subscribable = s
                .capabilities
                .as_ref()
                .and_then(|c| c.pointer("/resources/subscribe"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            subscribable.then(|| (s.slug.clone(), original.to_string(), uri.to_string()))
        });
        if let Some(f) = found.filter(|f| !honored.contains(f)) {
            honored.push(f);
        }
        if honored.len() == MAX_RESOURCE_SUBSCRIPTIONS {
            break;
        }
    }
    Some(honored)
}

/// Serves a modern `subscriptions/listen` over `servers`: the acknowledgement first, then the
/// gateway's own `tools/list_changed`, the upstreams' prompt/resource list changes and updates
/// of the resources subscribed to (`resourceSubscriptions`: a modern upstream gets them in its
/// own listen, a legacy one as `resources/subscribe` on the session the gateway opens for the
/// listen). On `/mcp` (`namespaced`) resource URIs are in the aggregated namespace both ways.
pub async fn listen(
    deps: Rc<LiveDeps>,
    id: RequestId,
    params: &Value,
    servers: Vec<Permit>,
    namespaced: bool,
    trace: Option<TraceContext>,
) -> HttpResponse {
    let filter = Filter::from(params);
    let records: Vec<&ServerRecord> = servers.iter().map(Permit::server).collect();
    let subscriptions = resource_subscriptions(params, &records, namespaced);
    let mut honored = filter.honored();
    if let Some(subs) = &subscriptions {
        honored["resourceSubscriptions"] = json!(subs.iter().map(|(_, _, asked)| asked).collect::<Vec<_>>());
    }
    let ack = tag(
        json!({"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged", "params": {"notifications": honored}}),
        &id,
    );
    let mut streams: Vec<ByteStream> = Vec::new();
    // Each upstream joins the merged stream when its own stream opens: the acknowledgement goes
    // out at once, and an upstream slow to answer (or answering with a body that never ends)
    // delays nobody but itself.
    for permit in servers {
        let deps = deps.clone();
        let trace = trace.clone();
        let sid = id.clone();
        let uris: Vec<String> = subscriptions
            .iter()
            .flatten()
            .filter(|(slug, _, _)| *slug == permit.server().slug)
            .map(|(_, original, _)| original.clone())
            .collect();
        let joined = futures_util::stream::once(async move {
            let svc = deps.detached();
            let s = upstream_stream(&svc, &permit, filter, &uris, trace).await?;
            let slug = permit.server().slug.clone();
            let own = slug.clone();
            let tf = intercept(&slug, move |m: Value| {
                let method = m.get("method").and_then(Value::as_str).unwrap_or("");
                if method == RESOURCE_UPDATED {
                    // Only the resources subscribed to here, whatever the upstream sends.
                    let uri = m.pointer("/params/uri").and_then(Value::as_str).unwrap_or("");
                    if !uris.iter().any(|u| u == uri) {
                        return None;
                    }
                    let m = if namespaced { uris::namespace(&own, m) } else { m };
                    return Some(tag(strip_subscription_id(m), &sid));
                }
                filter.wants(method).then(|| tag(m, &sid))
            });
            Some(relay::relay(s, RelayOptions::new(None, &slug, tf)))
        })
        .filter_map(futures_util::future::ready)
        .flatten();
        streams.push(joined.boxed_local());
    }
    if filter.tools {
        let start = deps.store.catalog_generation().await.unwrap_or(0);
        let sid = id.clone();
        let emit: Emit = Rc::new(move |v| sse::Event::message(tag(v, &sid).to_string()).encode());
        streams.push(watcher(deps.clone(), start, emit));
    }
    let head = futures_util::stream::iter([Ok(sse::Event::message(ack.to_string()).encode().into_bytes())]);
    HttpResponse::sse(head.chain(futures_util::stream::select_all(streams)).boxed_local())
}

/// An upstream's own notification stream: `subscriptions/listen` on a modern upstream, the GET
/// stream of a fresh session on a legacy one (a session of its own: on a shared one, each
/// message would reach only one of the listeners). `None` when the upstream offers none.
async fn upstream_stream(
    svc: &Services<'_>,
    permit: &Permit,
    f: Filter,
    resources: &[String],
    trace: Option<TraceContext>,
) -> Option<ByteStream> {
    let server = permit.server();
    let mut up = Upstream::open(svc, permit).await.ok()?;
    if let Some(t) = trace {
        let span = t.span_id.clone();
        up.set_trace(t, &span);
    }
    let resp = match server.era.unwrap_or(Era::Legacy) {
        Era::Modern => {
            let mut notifications =
                json!({"toolsListChanged": true, "promptsListChanged": f.prompts, "resourcesListChanged": f.resources});
            if !resources.is_empty() {
                notifications["resourceSubscriptions"] = json!(resources);
            }
            let msg = modern_request(
                json!("gw-listen"),
                "subscriptions/listen",
                json!({"notifications": notifications}),
                &ClientContext::default(),
            );
            up.post_modern(&msg).await.ok()?
        }
        Era::Legacy => {
            let init = legacy_init_params(server.protocol_version.as_deref(), &ClientContext::default());
            let (session, _) = up.initialize(init).await.ok()?;
            // This session is the listen's own: its subscriptions are this client's.
            for (n, uri) in resources.iter().enumerate() {
                let msg = json!({"jsonrpc": "2.0", "id": format!("gw-subscribe-{n}"), "method": "resources/subscribe", "params": {"uri": uri}});
                if let Err(e) = up.request(Era::Legacy, &msg, Some(&session)).await {
                    tracing::warn!(upstream = %server.slug, error = %e, "resources/subscribe for a listen failed");
                }
            }
            up.get_stream(&session, None).await.ok()?
        }
    };
    match (resp.status, resp.body) {
        (200, Body::Stream(s)) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(slug: &str, subscribe: bool) -> ServerRecord {
        serde_json::from_value(json!({
                "slug": slug, "name": slug, "url": "https://up.example/mcp", "description": null,
                "owner": null, "status": "active", "era": "modern", "protocol_version": "2026-07-28",
                "timeout_ms": null, "server_info": {}, "capabilities": {"resources": {"subscribe": subscribe}},
                "instructions": null, "last_synced_at": null, "last_sync_error": null,
                "new_tool_policy": "approve", "created_at": "", "updated_at": ""
        }))
        .unwrap()
    }

    #[test]
    fn resource_subscriptions_go_to_servers_that_can_honour_them() {
        let (a, b) = (server("a", true), server("b", false));
        let servers = vec![&a, &b];
        let asked = |uris: Value| json!({"notifications": {"resourceSubscriptions": uris}});
        let on_mcp = resource_subscriptions(
            &asked(json!(["a+x://1", "b+x://2", "c+x://3", "x://4", "a+x://1", 7])),
            &servers,
            true,
        )
        .unwrap();
        // Only `a` subscribes; duplicates and non-strings are dropped; the client's spelling is kept.
        assert_eq!(on_mcp, vec![("a".into(), "x://1".into(), "a+x://1".into())]);
        let one = resource_subscriptions(&asked(json!(["x://1"])), &servers[..1], false).unwrap();
        assert_eq!(one, vec![("a".into(), "x://1".into(), "x://1".into())]);
        assert!(resource_subscriptions(&json!({"notifications": {}}), &servers, true).is_none());
        let many: Vec<String> = (0..500).map(|i| format!("a+x://{i}")).collect();
        let capped = resource_subscriptions(&asked(json!(many)), &servers, true).unwrap();
        assert_eq!(capped.len(), MAX_RESOURCE_SUBSCRIPTIONS);
    }
}
