//! The isolate snapshot end to end: a `tools/call` through the real endpoint over a store that
//! counts what reaches it — the second identical call reads nothing — and two isolates (two
//! snapshots over one storage) seeing a revocation at once and within the bound.
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use async_trait::async_trait;
use futures_executor::block_on;
use futures_util::future::LocalBoxFuture;
use serde_json::{json, Value};

use crate::config::Config;
use crate::context::Services;
use crate::gateway::endpoint::{self, Routed};
use crate::gateway::upstream::{HttpClient, OutboundRequest, UpstreamError};
use crate::http::{Body, Headers, HttpRequest, HttpResponse, Method};
use crate::routes::Target;
use crate::snapshot::{CachedSecrets, CachedStore, Keeper, Snapshot, HARD_MS, SOFT_MS};
use crate::store::memory::MemoryStore;
use crate::store::*;

/// A store that records every call that reaches it (the "storage" under the snapshot).
#[derive(Default)]
struct Counting {
    inner: MemoryStore,
    calls: RefCell<Vec<&'static str>>,
}

impl Counting {
    fn hit(&self, name: &'static str) {
        self.calls.borrow_mut().push(name);
    }

    fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.calls.borrow_mut())
    }
}

#[async_trait(?Send)]
impl Registry for Counting {
    async fn create_server(&self, s: &ServerRecord, t: &[ToolRecord]) -> StoreResult<()> {
        self.hit("create_server");
        self.inner.create_server(s, t).await
    }
    async fn get_server(&self, slug: &str) -> StoreResult<Option<ServerRecord>> {
        self.hit("get_server");
        self.inner.get_server(slug).await
    }
    async fn list_servers(&self) -> StoreResult<Vec<ServerRecord>> {
        self.hit("list_servers");
        self.inner.list_servers().await
    }
    async fn update_server(&self, s: &ServerRecord) -> StoreResult<bool> {
        self.hit("update_server");
        self.inner.update_server(s).await
    }
    async fn delete_server(&self, slug: &str) -> StoreResult<bool> {
        self.hit("delete_server");
        self.inner.delete_server(slug).await
    }
    async fn replace_catalog(&self, s: &ServerRecord, t: &[ToolRecord]) -> StoreResult<bool> {
        self.hit("replace_catalog");
        self.inner.replace_catalog(s, t).await
    }
    async fn list_tools(&self, slug: &str) -> StoreResult<Vec<ToolRecord>> {
        self.hit("list_tools");
        self.inner.list_tools(slug).await
    }
    async fn list_all_tools(&self) -> StoreResult<Vec<ToolRecord>> {
        self.hit("list_all_tools");
        self.inner.list_all_tools().await
    }
    async fn approve_tool(&self, slug: &str, name: &str) -> StoreResult<bool> {
        self.hit("approve_tool");
        self.inner.approve_tool(slug, name).await
    }
    async fn catalog_generation(&self) -> StoreResult<u64> {
        self.hit("catalog_generation");
        self.inner.catalog_generation().await
    }
    async fn bump_catalog_generation(&self) -> StoreResult<()> {
        self.hit("bump_catalog_generation");
        self.inner.bump_catalog_generation().await
    }
}

#[async_trait(?Send)]
impl ApiKeys for Counting {
    async fn create_key(&self, k: &ApiKeyRecord) -> StoreResult<()> {
        self.hit("create_key");
        self.inner.create_key(k).await
    }
    async fn list_keys(&self) -> StoreResult<Vec<ApiKeyRecord>> {
        self.hit("list_keys");
        self.inner.list_keys().await
    }
    async fn find_key_by_hash(&self, h: &str) -> StoreResult<Option<ApiKeyRecord>> {
        self.hit("find_key_by_hash");
        self.inner.find_key_by_hash(h).await
    }
    async fn revoke_key(&self, id: &str, at: &str) -> StoreResult<bool> {
        self.hit("revoke_key");
        self.inner.revoke_key(id, at).await
    }
}

#[async_trait(?Send)]
impl VirtualServers for Counting {
    async fn create_virtual(&self, v: &VirtualServer) -> StoreResult<()> {
        self.hit("create_virtual");
        self.inner.create_virtual(v).await
    }
    async fn get_virtual(&self, slug: &str) -> StoreResult<Option<VirtualServer>> {
        self.hit("get_virtual");
        self.inner.get_virtual(slug).await
    }
    async fn list_virtual(&self) -> StoreResult<Vec<VirtualServer>> {
        self.hit("list_virtual");
        self.inner.list_virtual().await
    }
    async fn update_virtual(&self, v: &VirtualServer) -> StoreResult<bool> {
        self.hit("update_virtual");
        self.inner.update_virtual(v).await
    }
    async fn delete_virtual(&self, slug: &str) -> StoreResult<bool> {
        self.hit("delete_virtual");
        self.inner.delete_virtual(slug).await
    }
}

#[async_trait(?Send)]
impl Directory for Counting {
    async fn create_entity(&self, e: &Entity) -> StoreResult<()> {
        self.hit("create_entity");
        self.inner.create_entity(e).await
    }
    async fn get_entity(&self, id: &str) -> StoreResult<Option<Entity>> {
        self.hit("get_entity");
        self.inner.get_entity(id).await
    }
    async fn list_entities(
        &self,
        kind: EntityKind,
        parent: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Entity>> {
        self.hit("list_entities");
        self.inner.list_entities(kind, parent, after, limit).await
    }
    async fn update_entity(&self, e: &Entity) -> StoreResult<bool> {
        self.hit("update_entity");
        self.inner.update_entity(e).await
    }
    async fn delete_entity(&self, id: &str) -> StoreResult<bool> {
        self.hit("delete_entity");
        self.inner.delete_entity(id).await
    }
    async fn count_dependents(&self, id: &str) -> StoreResult<usize> {
        self.hit("count_dependents");
        self.inner.count_dependents(id).await
    }
    async fn add_member(&self, p: &str, g: &str, at: &str) -> StoreResult<()> {
        self.hit("add_member");
        self.inner.add_member(p, g, at).await
    }
    async fn remove_member(&self, p: &str, g: &str) -> StoreResult<bool> {
        self.hit("remove_member");
        self.inner.remove_member(p, g).await
    }
    async fn list_members(&self, g: &str) -> StoreResult<Vec<String>> {
        self.hit("list_members");
        self.inner.list_members(g).await
    }
    async fn identity(&self, p: &str) -> StoreResult<Option<Identity>> {
        self.hit("identity");
        self.inner.identity(p).await
    }
    async fn all_identities(&self) -> StoreResult<Vec<Identity>> {
        self.hit("all_identities");
        self.inner.all_identities().await
    }
    async fn create_grant(&self, g: &Grant) -> StoreResult<()> {
        self.hit("create_grant");
        self.inner.create_grant(g).await
    }
    async fn list_grants(&self) -> StoreResult<Vec<Grant>> {
        self.hit("list_grants");
        self.inner.list_grants().await
    }
    async fn delete_grant(&self, id: &str) -> StoreResult<bool> {
        self.hit("delete_grant");
        self.inner.delete_grant(id).await
    }
    async fn grants_for(&self, ids: &[String]) -> StoreResult<Vec<Grant>> {
        self.hit("grants_for");
        self.inner.grants_for(ids).await
    }
    async fn find_by_external_subject(&self, s: &str) -> StoreResult<Option<Entity>> {
        self.hit("find_by_external_subject");
        self.inner.find_by_external_subject(s).await
    }
    async fn create_idp(&self, i: &IdentityProvider) -> StoreResult<()> {
        self.hit("create_idp");
        self.inner.create_idp(i).await
    }
    async fn list_idps(&self) -> StoreResult<Vec<IdentityProvider>> {
        self.hit("list_idps");
        self.inner.list_idps().await
    }
    async fn idps_by_issuer(&self, i: &str) -> StoreResult<Vec<IdentityProvider>> {
        self.hit("idps_by_issuer");
        self.inner.idps_by_issuer(i).await
    }
    async fn delete_idp(&self, id: &str) -> StoreResult<bool> {
        self.hit("delete_idp");
        self.inner.delete_idp(id).await
    }
    async fn create_role(&self, r: &RoleAssignment) -> StoreResult<()> {
        self.hit("create_role");
        self.inner.create_role(r).await
    }
    async fn list_roles(&self) -> StoreResult<Vec<RoleAssignment>> {
        self.hit("list_roles");
        self.inner.list_roles().await
    }
    async fn roles_of(&self, p: &str) -> StoreResult<Vec<RoleAssignment>> {
        self.hit("roles_of");
        self.inner.roles_of(p).await
    }
    async fn delete_role(&self, id: &str) -> StoreResult<bool> {
        self.hit("delete_role");
        self.inner.delete_role(id).await
    }
    async fn org_capture(&self, org_id: &str) -> StoreResult<Option<crate::observe::CaptureMode>> {
        self.hit("org_capture");
        self.inner.org_capture(org_id).await
    }
    async fn set_org_capture(&self, org_id: &str, c: Option<crate::observe::CaptureMode>) -> StoreResult<()> {
        self.hit("set_org_capture");
        self.inner.set_org_capture(org_id, c).await
    }
}

#[async_trait(?Send)]
impl Policies for Counting {
    async fn create_policy(&self, p: &PolicyRecord) -> StoreResult<()> {
        self.hit("create_policy");
        self.inner.create_policy(p).await
    }
    async fn get_policy(&self, org_id: &str, id: &str) -> StoreResult<Option<PolicyRecord>> {
        self.hit("get_policy");
        self.inner.get_policy(org_id, id).await
    }
    async fn list_policies(&self, org_id: &str) -> StoreResult<Vec<PolicyRecord>> {
        self.hit("list_policies");
        self.inner.list_policies(org_id).await
    }
    async fn update_policy(&self, p: &PolicyRecord) -> StoreResult<bool> {
        self.hit("update_policy");
        self.inner.update_policy(p).await
    }
    async fn delete_policy(&self, org_id: &str, id: &str) -> StoreResult<bool> {
        self.hit("delete_policy");
        self.inner.delete_policy(org_id, id).await
    }
}

#[async_trait(?Send)]
impl crate::store::Changes for Counting {
    async fn apply(&self, writes: &[crate::store::Write]) -> StoreResult<()> {
        self.hit("apply");
        self.inner.apply(writes).await
    }
}

#[async_trait(?Send)]
impl OAuthStore for Counting {
    async fn put_client(&self, c: &OAuthClient) -> StoreResult<()> {
        self.hit("put_client");
        self.inner.put_client(c).await
    }
    async fn get_client(&self, id: &str) -> StoreResult<Option<OAuthClient>> {
        self.hit("get_client");
        self.inner.get_client(id).await
    }
    async fn put_pending(&self, id: &str, d: &Value, exp: u64) -> StoreResult<()> {
        self.hit("put_pending");
        self.inner.put_pending(id, d, exp).await
    }
    async fn take_pending(&self, id: &str, now: u64) -> StoreResult<Option<Value>> {
        self.hit("take_pending");
        self.inner.take_pending(id, now).await
    }
    async fn put_token(&self, t: &OAuthToken) -> StoreResult<()> {
        self.hit("put_token");
        self.inner.put_token(t).await
    }
    async fn get_token(&self, h: &str) -> StoreResult<Option<OAuthToken>> {
        self.hit("get_token");
        self.inner.get_token(h).await
    }
    async fn consume_token(&self, h: &str, now: u64) -> StoreResult<bool> {
        self.hit("consume_token");
        self.inner.consume_token(h, now).await
    }
    async fn revoke_family(&self, f: &str) -> StoreResult<()> {
        self.hit("revoke_family");
        self.inner.revoke_family(f).await
    }
    async fn put_console_session(&self, c: &crate::store::ConsoleSession) -> StoreResult<()> {
        self.hit("put_console_session");
        self.inner.put_console_session(c).await
    }
    async fn get_console_session(&self, h: &str) -> StoreResult<Option<crate::store::ConsoleSession>> {
        self.hit("get_console_session");
        self.inner.get_console_session(h).await
    }
    async fn touch_console_session(&self, h: &str, at: u64) -> StoreResult<bool> {
        self.hit("touch_console_session");
        self.inner.touch_console_session(h, at).await
    }
    async fn delete_console_session(&self, h: &str, now: u64) -> StoreResult<bool> {
        self.hit("delete_console_session");
        self.inner.delete_console_session(h, now).await
    }
}

#[async_trait(?Send)]
impl SecretStore for Counting {
    async fn get_secret(&self, k: &str) -> StoreResult<Option<String>> {
        self.hit("get_secret");
        self.inner.get_secret(k).await
    }
    async fn put_secret(&self, k: &str, v: &str) -> StoreResult<()> {
        self.hit("put_secret");
        self.inner.put_secret(k, v).await
    }
    async fn delete_secret(&self, k: &str) -> StoreResult<()> {
        self.hit("delete_secret");
        self.inner.delete_secret(k).await
    }
    async fn list_secrets(&self, p: &str) -> StoreResult<Vec<String>> {
        self.hit("list_secrets");
        self.inner.list_secrets(p).await
    }
}

#[async_trait(?Send)]
impl Versions for Counting {
    async fn snapshot_version(&self) -> StoreResult<u64> {
        self.hit("snapshot_version");
        self.inner.snapshot_version().await
    }
    async fn bump_snapshot_version(&self) -> StoreResult<u64> {
        self.hit("bump_snapshot_version");
        self.inner.bump_snapshot_version().await
    }
}

/// Answers a modern `tools/call` of `echo` (stands in for an upstream: no network natively).
struct EchoUpstream;

#[async_trait(?Send)]
impl HttpClient for EchoUpstream {
    async fn send(&self, req: OutboundRequest) -> Result<HttpResponse, UpstreamError> {
        let msg: Value = serde_json::from_slice(req.body.as_deref().unwrap_or(b"null")).unwrap();
        let result = json!({"content": [{"type": "text", "text": msg["params"]["arguments"]["message"]}]});
        Ok(HttpResponse::json(
            200,
            &json!({"jsonrpc": "2.0", "id": msg["id"], "result": result}),
        ))
    }
}

/// One isolate: its own snapshot over the shared storage, a clock, and background work that
/// the test runs when it chooses.
struct Isolate {
    store: CachedStore<Counting>,
    secrets: CachedSecrets,
    /// Usage is read from the audit trail, not through the snapshot: an empty one here.
    usage: crate::store::memory::MemoryStore,
    keeper: Rc<Keeper>,
    clock: Rc<Cell<u64>>,
    background: Rc<RefCell<Vec<LocalBoxFuture<'static, ()>>>>,
}

impl Isolate {
    fn new(storage: &Rc<Counting>, clock: &Rc<Cell<u64>>) -> Self {
        let background: Rc<RefCell<Vec<LocalBoxFuture<'static, ()>>>> = Rc::default();
        let queue = background.clone();
        let c = clock.clone();
        let keeper = Rc::new(Keeper::new(
            Rc::new(Snapshot::new()),
            storage.clone(),
            Rc::new(move || c.get()),
            Rc::new(move |f| queue.borrow_mut().push(f)),
        ));
        let secrets: Rc<dyn SecretStore> = storage.clone();
        Self {
            store: CachedStore::new(storage.clone(), keeper.clone(), true),
            secrets: CachedSecrets::new(secrets, keeper.clone(), true),
            usage: crate::store::memory::MemoryStore::new(),
            keeper,
            clock: clock.clone(),
            background,
        }
    }

    fn run_background(&self) {
        let jobs = std::mem::take(&mut *self.background.borrow_mut());
        for j in jobs {
            block_on(j);
        }
    }

    fn call(&self, key: &str, config: &Config) -> Value {
        let counters = crate::store::limits_memory::MemoryCounters::new();
        let approvals = crate::store::limits_memory::MemoryApprovals::new();
        let svc = Services {
            registry: &self.store,
            keys: &self.store,
            virtuals: &self.store,
            policies: &self.store,
            directory: &self.store,
            changes: &self.store,
            oauth: &self.store,
            secrets: &self.secrets,
            usage: &self.usage,
            audit: &self.usage,
            counters: &counters,
            approvals: &approvals,
            origin: "https://gateway.test",
            http: &EchoUpstream,
            config,
            live: None,
            now_ms: self.clock.get(),
            hooks: Rc::new(crate::context::NoHooks),
            // A sink that records: the event's capture settings are read too, from the snapshot.
            events: Rc::new(super::Recorded::default()),
            probe: None,
            url_elicitation: false,
        };
        let params = json!({"name": "echo", "arguments": {"message": "hi"},
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}});
        let req = HttpRequest {
            method: Method::Post,
            path: "/mcp/echo".into(),
            query: None,
            headers: Headers::new()
                .with("authorization", format!("Bearer {key}"))
                .with("content-type", "application/json")
                .with("accept", "application/json, text/event-stream")
                .with("mcp-protocol-version", "2026-07-28")
                .with("mcp-method", "tools/call")
                .with("mcp-name", "echo"),
            body: json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params})
                .to_string()
                .into_bytes(),
        };
        match block_on(endpoint::handle(&svc, &req, Target::Server("echo".into()))) {
            Routed::Respond(HttpResponse {
                status,
                body: Body::Bytes(b),
                ..
            }) => json!({"status": status, "body": serde_json::from_slice::<Value>(&b).unwrap_or(Value::Null)}),
            Routed::Respond(r) => json!({"status": r.status}),
            Routed::Session { .. } => panic!("a modern call is answered in the Worker"),
        }
    }
}

fn ok(v: &Value) -> bool {
    v["body"]["result"]["content"][0]["text"] == "hi"
}

/// Storage with a modern `echo` server and an API key of the default agent.
fn storage() -> (Rc<Counting>, String) {
    let storage = Rc::new(Counting {
        inner: MemoryStore::with_defaults(),
        ..Default::default()
    });
    let server: ServerRecord = serde_json::from_value(json!({
        "slug": "echo", "name": "Echo", "url": "https://echo.example/mcp", "description": null, "owner": null,
        "status": "active", "era": "modern", "protocol_version": "2026-07-28", "timeout_ms": null,
        "server_info": null, "capabilities": {"tools": {}}, "instructions": null, "last_synced_at": null,
        "last_sync_error": null, "new_tool_policy": "approve", "created_at": "", "updated_at": "",
    }))
    .unwrap();
    let tool = ToolRecord {
        server_slug: "echo".into(),
        name: "echo".into(),
        title: None,
        description: None,
        input_schema: json!({"type": "object"}),
        output_schema: None,
        annotations: None,
        definition_hash: "h".into(),
        discovered_at: "".into(),
        status: "active".into(),
        approved_hash: Some("h".into()),
        approved_definition: None,
        quarantine_reason: None,
    };
    block_on(storage.inner.create_server(&server, &[tool])).unwrap();
    let key = crate::crypto::new_api_key();
    block_on(storage.inner.create_key(&ApiKeyRecord {
        id: "key_a".into(),
        name: "a".into(),
        prefix: key[..12].into(),
        key_hash: crate::crypto::hash_secret(&key),
        created_at: "t".into(),
        last_used_at: None,
        revoked_at: None,
        principal_id: DEFAULT_AGENT.into(),
        expires_at: None,
    }))
    .unwrap();
    (storage, key)
}

#[test]
fn the_second_identical_call_reads_no_storage() {
    let (storage, key) = storage();
    let clock = Rc::new(Cell::new(1_000_000));
    let a = Isolate::new(&storage, &clock);
    let config = Config::from_lookup(|_| None);
    assert!(ok(&a.call(&key, &config)));
    let first = storage.take();
    for read in [
        "snapshot_version",
        "find_key_by_hash",
        "identity",
        "grants_for",
        "get_server",
        "list_tools",
        "get_secret",
    ] {
        assert!(first.contains(&read), "the first call reads {read}: {first:?}");
    }
    assert!(ok(&a.call(&key, &config)));
    assert_eq!(storage.take(), Vec::<&str>::new(), "the second call reads nothing");
    a.run_background();
    assert!(storage.take().is_empty(), "nor does it leave work behind");

    // Between SOFT and HARD: served from the snapshot, one version read in the background.
    clock.set(clock.get() + SOFT_MS);
    assert!(ok(&a.call(&key, &config)));
    assert!(ok(&a.call(&key, &config)));
    assert!(storage.take().is_empty(), "nothing read before answering");
    a.run_background();
    assert_eq!(storage.take(), vec!["snapshot_version"]);

    // After idle time beyond HARD: one version read before answering, nothing else.
    clock.set(clock.get() + HARD_MS);
    assert!(ok(&a.call(&key, &config)));
    assert_eq!(storage.take(), vec!["snapshot_version"]);
}

#[test]
fn a_revocation_is_seen_at_once_here_and_within_the_bound_elsewhere() {
    let (storage, key) = storage();
    let clock = Rc::new(Cell::new(1_000_000));
    let config = Config::from_lookup(|_| None);
    let (a, b) = (Isolate::new(&storage, &clock), Isolate::new(&storage, &clock));
    assert!(ok(&a.call(&key, &config)) && ok(&b.call(&key, &config)));

    assert!(block_on(a.store.revoke_key("key_a", "now")).unwrap());
    let revoked_at = clock.get();
    assert_eq!(
        a.call(&key, &config)["status"],
        401,
        "the isolate that wrote refuses at once"
    );

    // The other isolate: possibly served from its snapshot until HARD_MS after the write…
    let mut refused_at = None;
    for step in 0..=(HARD_MS / 250) {
        clock.set(revoked_at + step * 250);
        let r = b.call(&key, &config);
        b.run_background();
        if r["status"] == 401 {
            refused_at.get_or_insert(clock.get());
        } else {
            assert!(refused_at.is_none(), "once refused, never served again");
        }
    }
    // …and never after.
    let refused_at = refused_at.expect("refused within the bound");
    assert!(refused_at - revoked_at <= HARD_MS);
    assert_eq!(b.call(&key, &config)["status"], 401);
}

#[test]
fn grant_removal_and_new_keys_and_guessed_keys() {
    let (storage, key) = storage();
    let clock = Rc::new(Cell::new(1_000_000));
    let config = Config::from_lookup(|_| None);
    let a = Isolate::new(&storage, &clock);
    assert!(ok(&a.call(&key, &config)));
    storage.take();
    // Guessed keys are misses every time: never kept, so they cannot fill the table.
    for _ in 0..3 {
        assert_eq!(a.call(&crate::crypto::new_api_key(), &config)["status"], 401);
    }
    assert_eq!(storage.take().iter().filter(|c| **c == "find_key_by_hash").count(), 3);
    // Removing the default agent's server grant through this isolate takes effect at once.
    assert!(block_on(a.store.delete_grant("grant_default_servers")).unwrap());
    let r = a.call(&key, &config);
    assert!(!ok(&r), "denied after the grant is gone: {r}");
    assert!(a.keeper.snapshot.version().is_some());
}

#[test]
fn server_credentials_are_kept_and_user_tokens_never_are() {
    let (storage, _) = storage();
    let clock = Rc::new(Cell::new(1_000_000));
    let a = Isolate::new(&storage, &clock);
    for _ in 0..2 {
        assert_eq!(block_on(a.secrets.get_secret("cred:server:echo")).unwrap(), None);
        assert_eq!(block_on(a.secrets.get_secret("cred:user:echo:usr_1")).unwrap(), None);
    }
    let reads = storage.take();
    let count = |n: &str| reads.iter().filter(|c| **c == n).count();
    assert_eq!(
        count("get_secret"),
        3,
        "absent server credential read once, user tokens every time: {reads:?}"
    );
    // A write through the snapshot is visible at once.
    block_on(a.secrets.put_secret("cred:server:echo", "sealed")).unwrap();
    assert_eq!(
        block_on(a.secrets.get_secret("cred:server:echo")).unwrap().as_deref(),
        Some("sealed")
    );
}
