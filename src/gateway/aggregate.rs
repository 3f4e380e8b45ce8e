//! The aggregated endpoints: `/mcp` (every tool the caller may use, from every server, named
//! `{slug}__{tool}`) and `/mcp/v/{slug}` (a virtual server's curated tools). Tool lists come
//! from the catalog in D1, so a list costs no upstream round trip; calls, reads and prompts are
//! routed to the owning server under their original names; resource and prompt lists fan out
//! to the servers concurrently, leaving out any that fail.
use std::collections::BTreeMap;
use std::rc::Rc;

use serde_json::{json, Map, Value};

use crate::http::HttpResponse;
use crate::mcp::error::RpcError;
use crate::mcp::jsonrpc::{self, Message, RequestId};
use crate::mcp::version::Era;
use crate::policy::{self, Permit, Principal};
use crate::store::{ServerRecord, ToolRecord};

pub use crate::routes::View;

use super::forward::PostFilter;
use super::link::{self, Links};
use super::relay::EventLog;
use super::session::ReplayLog;
use super::upstream::{self, Upstream, GATEWAY_NAME, GATEWAY_VERSION};
use super::{catalog, cursor, names, record, translate, uris, GatewayError, Services};

/// Pages read from one upstream when fanning a list out.
pub const MAX_FANOUT_PAGES: usize = 20;

/// One tool as the view exposes it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub server: Rc<ServerRecord>,
    pub tool: ToolRecord,
    pub description: Option<String>,
}

/// What the caller may see through a view: the permitted servers and the active tools.
pub struct ViewCatalog {
    pub servers: BTreeMap<String, Rc<ServerRecord>>,
    /// Sorted by name.
    pub entries: Vec<Entry>,
    /// The `tools/list` items, built once per catalog (sorted, one per name).
    tool_list: std::cell::OnceCell<Vec<Value>>,
    /// The `result` of the first `tools/list` page, serialized once per catalog (a catalog is
    /// kept per view, era and access, and the page size and cursor key are fixed per isolate):
    /// a list without a cursor costs no serialization of the tools.
    first_tools_page: std::cell::OnceCell<String>,
}

impl ViewCatalog {
    fn server(&self, slug: &str) -> Option<&Rc<ServerRecord>> {
        self.servers.get(slug)
    }

    /// The entry exposed under `name` (entries are sorted by name).
    fn entry(&self, name: &str) -> Option<&Entry> {
        let i = self.entries.partition_point(|e| e.name.as_str() < name);
        self.entries.get(i).filter(|e| e.name == name)
    }

    fn tool_list(&self) -> &[Value] {
        self.tool_list.get_or_init(|| {
            let mut v: Vec<Value> = self.entries.iter().map(entry_json).collect();
            v.dedup_by(|a, b| a["name"] == b["name"]);
            v
        })
    }
}

/// Loads the view (see `build`), kept in the isolate's snapshot per view, era and access
/// fingerprint: callers whose grants are alike share one, and any write drops it with the
/// snapshot.
pub async fn load(
    svc: &Services<'_>,
    principal: &Principal,
    view: &View,
    client: Era,
) -> Result<Rc<ViewCatalog>, GatewayError> {
    let Some(keeper) = svc.live.as_ref().and_then(|l| l.snapshot.clone()) else {
        return Ok(Rc::new(build(svc, principal, view, client).await?));
    };
    let fingerprint = serde_json::to_vec(&(&principal.identity.org_id, &principal.access)).unwrap_or_default();
    let key = format!(
        "view:{}:{client:?}:{}",
        view.id(),
        crate::crypto::sha256_hex(&fingerprint)
    );
    if let Some(c) = keeper.derived::<ViewCatalog>(&key).await {
        return Ok(c);
    }
    let epoch = keeper.snapshot.epoch();
    let c = Rc::new(build(svc, principal, view, client).await?);
    keeper.keep_derived(epoch, key, c.clone(), c.entries.len());
    Ok(c)
}

/// Loads the view for a principal: only servers and tools its grants reach (on a virtual server:
/// its tools, unless explicitly denied), only active (non-quarantined) tools of active servers.
/// `client`: the caller's era; each server is taken as that era sees it (`ServerRecord::for_client`).
async fn build(
    svc: &Services<'_>,
    principal: &Principal,
    view: &View,
    client: Era,
) -> Result<ViewCatalog, GatewayError> {
    let access = &principal.access;
    let org = principal.identity.org_id.as_str();
    // Another organization's servers do not exist for this principal, whatever its grants say.
    let active: BTreeMap<String, Rc<ServerRecord>> = svc
        .registry
        .list_servers()
        .await?
        .into_iter()
        .filter(|s| s.status == "active" && crate::policy::auth::owner_visible(org, s.org_id.as_deref()))
        .map(|s| (s.slug.clone(), Rc::new(s.for_client(client))))
        .collect();
    let mut entries = Vec::new();
    let mut servers = BTreeMap::new();
    match view {
        View::All => {
            servers = active
                .into_iter()
                .filter(|(slug, _)| access.server_allowed(slug))
                .collect();
            for t in svc.registry.list_all_tools().await? {
                let Some(server) = servers.get(&t.server_slug) else {
                    continue;
                };
                if t.is_active() && access.tool_allowed(&server.slug, &t.name) {
                    let name = names::exposed(&server.slug, &t.name);
                    entries.push(Entry {
                        name,
                        server: server.clone(),
                        tool: t,
                        description: None,
                    });
                }
            }
        }
        View::Virtual(slug) => {
            let v = svc
                .virtuals
                .get_virtual(slug)
                .await?
                .filter(|v| crate::policy::auth::virtual_usable(org, access, v))
                .ok_or(GatewayError::UnknownServer)?;
            let mut catalogs: BTreeMap<String, Vec<ToolRecord>> = BTreeMap::new();
            for vt in v.tools {
                let Some(server) = active.get(&vt.server) else { continue };
                if !catalogs.contains_key(&vt.server) {
                    catalogs.insert(vt.server.clone(), svc.registry.list_tools(&vt.server).await?);
                }
                let found = catalogs[&vt.server]
                    .iter()
                    .find(|t| t.name == vt.tool && t.is_active() && access.virtual_tool_allowed(&vt.server, &t.name));
                if let Some(t) = found {
                    servers.insert(server.slug.clone(), server.clone());
                    let name = vt.name.clone().unwrap_or_else(|| t.name.clone());
                    entries.push(Entry {
                        name,
                        server: server.clone(),
                        tool: t.clone(),
                        description: vt.description,
                    });
                }
            }
        }
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ViewCatalog {
        servers,
        entries,
        tool_list: Default::default(),
        first_tools_page: Default::default(),
    })
}

/// Everything one aggregated request needs.
pub struct Aggregate<'a> {
    pub svc: &'a Services<'a>,
    pub view: &'a View,
    pub catalog: &'a ViewCatalog,
    pub links: &'a dyn Links,
    pub client_era: Era,
    /// The session's event log (legacy sessions only).
    pub log: Option<Rc<dyn ReplayLog>>,
    /// The principal the request acts for: every server it reaches is authorized for it.
    pub principal: &'a Principal,
}

impl Aggregate<'_> {
    /// The principal's permit for one server of the view (a server it may not use is unknown).
    fn permit(&self, server: &ServerRecord) -> Result<Permit, GatewayError> {
        policy::authorize_server(self.principal, server).ok_or(GatewayError::UnknownServer)
    }
}

/// Serves one message on an aggregated view.
pub async fn handle(agg: &Aggregate<'_>, msg: &Message) -> Result<HttpResponse, GatewayError> {
    let Message::Request { id, method, params } = msg else {
        // A cancellation goes to the server running the request it names; other client
        // notifications and responses cannot be attributed to one upstream here.
        if let Some(server) = cancelled_server(agg, msg) {
            return send(agg, &server, msg, false).await;
        }
        return Ok(HttpResponse::new(202));
    };
    let params = params.clone().unwrap_or(json!({}));
    match method.as_str() {
        "tools/list" if params.get("cursor").is_none_or(Value::is_null) => {
            let page = agg.catalog.first_tools_page.get_or_init(|| {
                let items = agg.catalog.tool_list();
                page_result(agg, method, "tools", items, None).to_string()
            });
            Ok(with_result(id, page))
        }
        "tools/list" => page_sorted(agg, id, method, &params, "tools", agg.catalog.tool_list()),
        "tools/call" => {
            let name = params.get("name").and_then(Value::as_str).unwrap_or("");
            let entry = agg
                .catalog
                .entry(name)
                .ok_or_else(|| record::denied(agg.svc, RpcError::invalid_params(format!("unknown tool: {name}"))))?;
            routed(agg, &entry.server, &entry.tool.name, msg).await;
            let renamed = rename(msg, "/params/name", &entry.tool.name);
            send(agg, &entry.server, &renamed, catalog::is_read_only(&entry.tool)).await
        }
        "resources/list" => fan_out(agg, id, method, &params, "resources").await,
        "resources/templates/list" => fan_out(agg, id, method, &params, "resourceTemplates").await,
        "prompts/list" => fan_out(agg, id, method, &params, "prompts").await,
        "resources/read" => {
            let uri = params.get("uri").and_then(Value::as_str).unwrap_or("");
            let (server, original) = resolve_uri(agg, uri)?;
            routed(agg, &server, original, msg).await;
            send(agg, &server, &rename(msg, "/params/uri", original), false).await
        }
        // Legacy-era subscriptions live on the client's upstream session with that server; its
        // updates arrive on the session's GET stream (2026-07-28 subscribes in
        // `subscriptions/listen` instead).
        "resources/subscribe" | "resources/unsubscribe" if agg.client_era == Era::Legacy => {
            let uri = params.get("uri").and_then(Value::as_str).unwrap_or("");
            let (server, original) = resolve_uri(agg, uri)?;
            routed(agg, &server, original, msg).await;
            send(agg, &server, &rename(msg, "/params/uri", original), false).await
        }
        "prompts/get" => {
            let name = params.get("name").and_then(Value::as_str).unwrap_or("");
            let (server, original) = resolve_prompt(agg, name)?;
            routed(agg, &server, original, msg).await;
            send(agg, &server, &rename(msg, "/params/name", original), false).await
        }
        "completion/complete" => {
            let r = params.get("ref").cloned().unwrap_or_default();
            let (server, pointer, original) = match r.get("type").and_then(Value::as_str) {
                Some("ref/prompt") => {
                    let (s, o) = resolve_prompt(agg, r.get("name").and_then(Value::as_str).unwrap_or(""))?;
                    (s, "/params/ref/name", o)
                }
                Some("ref/resource") => {
                    let (s, o) = resolve_uri(agg, r.get("uri").and_then(Value::as_str).unwrap_or(""))?;
                    (s, "/params/ref/uri", o)
                }
                _ => return Err(RpcError::invalid_params("ref must be a ref/prompt or ref/resource").into()),
            };
            routed(agg, &server, original, msg).await;
            send(agg, &server, &rename(msg, pointer, original), false).await
        }
        "server/discover" => Ok(HttpResponse::json(200, &jsonrpc::result(id, discover(agg.catalog)))),
        "subscriptions/listen" if agg.client_era == Era::Modern && agg.svc.live.is_some() => {
            let deps = agg.svc.live.clone().expect("checked above");
            let servers = match agg.view {
                View::All => agg
                    .catalog
                    .servers
                    .values()
                    .filter_map(|s| policy::authorize_server(agg.principal, s))
                    .collect(),
                // A virtual server's list changes come from the catalog watcher alone.
                View::Virtual(_) => Vec::new(),
            };
            let namespaced = *agg.view == View::All;
            let trace = super::endpoint::trace_of(agg.svc);
            Ok(super::live::listen(deps, id.clone(), &params, servers, namespaced, trace).await)
        }
        _ => {
            let mut e = RpcError::method_not_found(method);
            if agg.client_era == Era::Legacy {
                e.http_status = 200;
            }
            Err(e.into())
        }
    }
}

/// The server running the in-flight request a client's `notifications/cancelled` names.
fn cancelled_server(agg: &Aggregate<'_>, msg: &Message) -> Option<Rc<ServerRecord>> {
    if msg.method() != Some("notifications/cancelled") {
        return None;
    }
    let request = msg.params()?.get("requestId")?;
    let (slug, _) = super::ids::InFlight::find(agg.links.scope()?, request)?;
    agg.catalog.server(&slug).cloned()
}

/// Capabilities of an aggregated view.
pub fn capabilities(catalog: &ViewCatalog) -> Value {
    let any = |cap: &str| {
        catalog
            .servers
            .values()
            .any(|s| s.capabilities.as_ref().is_some_and(|c| c.get(cap).is_some()))
    };
    let mut caps = json!({"tools": {"listChanged": true}});
    if any("resources") {
        caps["resources"] = json!({});
        let subscribe = catalog
            .servers
            .values()
            .any(|s| s.capabilities.as_ref().and_then(|c| c.pointer("/resources/subscribe")) == Some(&json!(true)));
        if subscribe {
            caps["resources"]["subscribe"] = json!(true);
        }
    }
    if any("prompts") {
        caps["prompts"] = json!({});
    }
    if any("completions") {
        caps["completions"] = json!({});
    }
    caps
}

pub fn server_info() -> Value {
    json!({"name": GATEWAY_NAME, "version": GATEWAY_VERSION})
}

fn discover(catalog: &ViewCatalog) -> Value {
    translate::discover_result(&capabilities(catalog), &server_info(), None)
}

fn entry_json(e: &Entry) -> Value {
    let mut v = e.tool.tool_json();
    v["name"] = json!(e.name);
    if let Some(d) = &e.description {
        v["description"] = json!(d);
    }
    v
}

/// A copy of `msg` with the string at `pointer` replaced (the upstream's own name for a thing).
fn rename(msg: &Message, pointer: &str, value: &str) -> Message {
    let mut v = msg.to_value();
    if let Some(slot) = v.pointer_mut(pointer) {
        *slot = json!(value);
    }
    jsonrpc::classify(v).expect("a renamed valid message stays valid")
}

fn resolve_uri<'c>(agg: &'c Aggregate<'_>, uri: &'c str) -> Result<(Rc<ServerRecord>, &'c str), GatewayError> {
    names::split_uri(uri)
        .filter(|_| agg.view == &View::All)
        .and_then(|(slug, original)| agg.catalog.server(slug).map(|s| (s.clone(), original)))
        .ok_or_else(|| record::denied(agg.svc, RpcError::invalid_params(format!("unknown resource: {uri}"))))
}

fn resolve_prompt<'c>(agg: &'c Aggregate<'_>, name: &'c str) -> Result<(Rc<ServerRecord>, &'c str), GatewayError> {
    names::split(name)
        .filter(|_| agg.view == &View::All)
        .and_then(|(slug, original)| agg.catalog.server(slug).map(|s| (s.clone(), original)))
        .ok_or_else(|| record::denied(agg.svc, RpcError::invalid_params(format!("unknown prompt: {name}"))))
}

/// Notes in the request's event the server a message is routed to and the original name of
/// what it names (capture follows the server's own setting).
async fn routed(agg: &Aggregate<'_>, server: &ServerRecord, original: &str, msg: &Message) {
    let Some(probe) = agg.svc.probe.as_ref().filter(|p| p.active()) else {
        return;
    };
    let org = match server.capture {
        Some(_) => None,
        None => super::endpoint::org_capture(agg.svc, &agg.principal.identity.org_id).await,
    };
    record::routed(probe, server, original, org, msg);
}

/// Routes a message to the owning server. On `/mcp`, resource URIs in what comes back are put
/// in the aggregated namespace, so the client can use them here again. `read_only_call`: a
/// `tools/call` of a tool the catalog declares read-only (repeatable).
async fn send(
    agg: &Aggregate<'_>,
    server: &ServerRecord,
    msg: &Message,
    read_only_call: bool,
) -> Result<HttpResponse, GatewayError> {
    let permit = agg.permit(server)?;
    let mut up = Upstream::open(agg.svc, &permit).await?;
    up.read_only_call = read_only_call;
    let log = agg.log.clone().map(|l| (l.next_stream(), l as Rc<dyn EventLog>));
    let slug = server.slug.clone();
    let post = (agg.view == &View::All).then(|| Rc::new(move |m| uris::namespace(&slug, m)) as PostFilter);
    link::send(&up, server, agg.links, msg, agg.client_era, log, post).await
}

/// One page of a list the gateway built, with a signed keyset cursor to the next: items are
/// ordered by their (namespaced, unique) key and a page starts after the last key returned, so
/// servers registered or removed mid-walk neither repeat nor skip anything (see `cursor`).
fn page(
    agg: &Aggregate<'_>,
    id: &RequestId,
    method: &str,
    params: &Value,
    key: &str,
    mut items: Vec<Value>,
) -> Result<HttpResponse, GatewayError> {
    let field = sort_field(key);
    items.sort_by(|a, b| sort_key(a, field).cmp(sort_key(b, field)));
    // A keyset needs unique keys; two items under one name could not be told apart anyway.
    items.dedup_by(|a, b| sort_key(a, field) == sort_key(b, field));
    page_sorted(agg, id, method, params, key, &items)
}

/// `page` of items already sorted by their key, one per key.
fn page_sorted(
    agg: &Aggregate<'_>,
    id: &RequestId,
    method: &str,
    params: &Value,
    key: &str,
    items: &[Value],
) -> Result<HttpResponse, GatewayError> {
    let list = format!("{method}:{}", agg.view.id());
    let cfg = agg.svc.config;
    let after = match params.get("cursor") {
        None | Some(Value::Null) => None,
        Some(c) => Some(
            c.as_str()
                .and_then(|c| cursor::decode(&cfg.cursor_key, &list, c))
                .ok_or_else(|| RpcError::invalid_params("invalid cursor"))?,
        ),
    };
    let result = page_result(agg, method, key, items, after.as_deref());
    Ok(HttpResponse::json(200, &jsonrpc::result(id, result)))
}

/// The `result` of one page of a sorted list: the items after `after`, the next cursor, and
/// what a modern client's results carry.
fn page_result(agg: &Aggregate<'_>, method: &str, key: &str, items: &[Value], after: Option<&str>) -> Value {
    let cfg = agg.svc.config;
    let list = format!("{method}:{}", agg.view.id());
    let field = sort_field(key);
    let (slice, next) = cursor::page(items, |v| sort_key(v, field), after, cfg.list_page_size);
    let mut result = Map::new();
    result.insert(key.into(), Value::Array(slice.to_vec()));
    if let Some(last) = next {
        result.insert(
            "nextCursor".into(),
            json!(cursor::encode(&cfg.cursor_key, &list, &last)),
        );
    }
    let mut reply = json!({ "result": result });
    if agg.client_era == Era::Modern {
        reply = translate::response_to_modern(reply, method);
    }
    reply["result"].take()
}

/// A JSON-RPC response around a result serialized beforehand.
fn with_result(id: &RequestId, result: &str) -> HttpResponse {
    let id = serde_json::to_string(id).unwrap_or_else(|_| "null".into());
    let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#);
    HttpResponse::typed(200, "application/json", body.into_bytes())
}

/// The member that identifies an item of a list (`key` is the list's result member).
fn sort_field(key: &str) -> &'static str {
    match key {
        "resources" => "uri",
        "resourceTemplates" => "uriTemplate",
        _ => "name",
    }
}

fn sort_key<'v>(item: &'v Value, field: &str) -> &'v str {
    item.get(field).and_then(Value::as_str).unwrap_or("")
}

/// Lists `key` items from every permitted server that has the capability, concurrently;
/// a server that fails is left out (and logged), the rest answer.
async fn fan_out(
    agg: &Aggregate<'_>,
    id: &RequestId,
    method: &str,
    params: &Value,
    key: &str,
) -> Result<HttpResponse, GatewayError> {
    let cap = if key == "prompts" { "prompts" } else { "resources" };
    let servers: Vec<&Rc<ServerRecord>> = match agg.view {
        View::All => agg
            .catalog
            .servers
            .values()
            .filter(|s| s.capabilities.as_ref().is_some_and(|c| c.get(cap).is_some()))
            .collect(),
        // Virtual servers curate tools only.
        View::Virtual(_) => Vec::new(),
    };
    let lists = futures_util::future::join_all(servers.iter().map(|s| list_upstream(agg, s, method, key))).await;
    let mut items = Vec::new();
    for (server, list) in servers.iter().zip(lists) {
        match list {
            Ok(list) => items.extend(list.into_iter().map(|item| namespace(&server.slug, key, item))),
            Err(e) => tracing::warn!(upstream = %server.slug, method, error = %e, "left out of an aggregated list"),
        }
    }
    page(agg, id, method, params, key, items)
}

async fn list_upstream(
    agg: &Aggregate<'_>,
    server: &ServerRecord,
    method: &str,
    key: &str,
) -> Result<Vec<Value>, GatewayError> {
    let permit = agg.permit(server)?;
    let mut up = Upstream::open(agg.svc, &permit).await?;
    // Each leg is an exchange of the request; its answer is merged, not the client's.
    up.answers_client = false;
    let mut items = Vec::new();
    let mut next: Option<String> = None;
    for n in 0..MAX_FANOUT_PAGES {
        let id = json!(format!("gw-list-{n}"));
        let params = next.take().map(|c| json!({"cursor": c})).unwrap_or(json!({}));
        let msg = Message::Request {
            id: id.clone(),
            method: method.into(),
            params: Some(params),
        };
        // Fan-out requests are made in the legacy shape; `link::send` adds `_meta` for modern upstreams.
        let resp = link::send(&up, server, agg.links, &msg, Era::Legacy, None, None).await?;
        let reply = upstream::read_response(resp, &id)
            .await
            .map_err(|e| GatewayError::upstream(&server.slug, e))?;
        let result = reply.get("result").ok_or_else(|| {
            GatewayError::upstream(
                &server.slug,
                upstream::UpstreamError::Garbage(format!("{method} failed")),
            )
        })?;
        items.extend(result.get(key).and_then(Value::as_array).cloned().unwrap_or_default());
        match result.get("nextCursor").and_then(Value::as_str) {
            Some(c) => next = Some(c.to_string()),
            None => break,
        }
    }
    Ok(items)
}

/// Rewrites an upstream's list item into the aggregated namespace.
fn namespace(slug: &str, key: &str, mut item: Value) -> Value {
    match key {
        "resources" => {
            if let Some(u) = item.get("uri").and_then(Value::as_str) {
                item["uri"] = json!(names::resource_uri(slug, u));
            }
        }
        "resourceTemplates" => {
            if let Some(u) = item.get("uriTemplate").and_then(Value::as_str) {
                item["uriTemplate"] = json!(names::resource_uri(slug, u));
            }
        }
        _ => {
            if let Some(n) = item.get("name").and_then(Value::as_str) {
                item["name"] = json!(format!("{slug}{}{n}", names::SEP));
            }
        }
    }
    item
}
