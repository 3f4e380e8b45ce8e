//! In-memory implementations of the store traits, for native tests. Same contracts as D1.
use std::cell::RefCell;
use std::collections::BTreeMap;

use async_trait::async_trait;

use super::*;

#[derive(Default)]
pub struct MemoryStore {
    pub(super) servers: RefCell<BTreeMap<String, ServerRecord>>,
    pub(super) tools: RefCell<BTreeMap<String, Vec<ToolRecord>>>,
    keys: RefCell<Vec<ApiKeyRecord>>,
    pub(super) virtuals: RefCell<BTreeMap<String, VirtualServer>>,
    generation: std::cell::Cell<u64>,
    snapshot_version: std::cell::Cell<u64>,
    pub(super) directory: super::directory_memory::MemoryDirectory,
    oauth_clients: RefCell<BTreeMap<String, OAuthClient>>,
    pending: RefCell<BTreeMap<String, (serde_json::Value, u64)>>,
    tokens: RefCell<BTreeMap<String, (OAuthToken, bool)>>,
    revoked_families: RefCell<Vec<String>>,
    console_sessions: RefCell<BTreeMap<String, ConsoleSession>>,
    secrets: RefCell<BTreeMap<String, String>>,
    /// Policies by id (`policies.rs` implements the trait).
    pub(super) policies: RefCell<BTreeMap<String, PolicyRecord>>,
    /// The audit trail (`audit_memory.rs`).
    pub(super) audit: super::audit_memory::MemoryAudit,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding what the migrations create: the default org, workspace and agent, and
    /// the default agent's grants.
    pub fn with_defaults() -> Self {
        use crate::store::records::{Effect, ResourceKind, SubjectKind};
        let s = Self::default();
        let entity = |id: &str, kind, parent: Option<&str>, name: &str| Entity {
            id: id.into(),
            kind,
            parent_id: parent.map(str::to_string),
            name: name.into(),
            email: None,
            external_subject: None,
            created_at: "1970-01-01T00:00:00.000Z".into(),
        };
        let d = &s.directory;
        let seed = async {
            d.create_entity(&entity(DEFAULT_ORG, EntityKind::Org, None, "Default organization"))
                .await?;
            d.create_entity(&entity(
                DEFAULT_WORKSPACE,
                EntityKind::Workspace,
                Some(DEFAULT_ORG),
                "Default workspace",
            ))
            .await?;
            d.create_entity(&entity(
                DEFAULT_AGENT,
                EntityKind::Agent,
                Some(DEFAULT_ORG),
                "Default agent",
            ))
            .await?;
            d.add_member(DEFAULT_AGENT, DEFAULT_WORKSPACE, "").await?;
            for (id, kind) in [
                ("grant_default_servers", ResourceKind::Server),
                ("grant_default_virtual", ResourceKind::Virtual),
            ] {
                d.create_grant(&Grant {
                    id: id.into(),
                    subject_kind: SubjectKind::Agent,
                    subject_id: DEFAULT_AGENT.into(),
                    resource_kind: kind,
                    resource: "*".into(),
                    tool: None,
                    effect: Effect::Allow,
                    created_at: "1970-01-01T00:00:00.000Z".into(),
                })
                .await?;
            }
            Ok::<(), StoreError>(())
        };
        futures_util::FutureExt::now_or_never(seed)
            .expect("in-memory futures are ready")
            .expect("seed");
        s
    }
}

/// A catalog ordered by name; `Conflict` if a name appears twice (D1's primary key).
fn catalog(tools: &[ToolRecord]) -> StoreResult<Vec<ToolRecord>> {
    let mut tools = tools.to_vec();
    tools.sort_by(|a, b| a.name.cmp(&b.name));
    if tools.windows(2).any(|w| w[0].name == w[1].name) {
        return Err(StoreError::Conflict);
    }
    Ok(tools)
}

/// `Conflict` if `key` is taken; otherwise stores `value` under it (a primary key's insert).
fn insert_new<V: Clone>(map: &RefCell<BTreeMap<String, V>>, key: &str, value: &V) -> StoreResult<()> {
    let mut m = map.borrow_mut();
    if m.contains_key(key) {
        return Err(StoreError::Conflict);
    }
    m.insert(key.to_string(), value.clone());
    Ok(())
}

#[async_trait(?Send)]
impl Registry for MemoryStore {
    async fn create_server(&self, server: &ServerRecord, tools: &[ToolRecord]) -> StoreResult<()> {
        let tools = catalog(tools)?;
        insert_new(&self.servers, &server.slug, server)?;
        self.tools.borrow_mut().insert(server.slug.clone(), tools);
        Ok(())
    }

    async fn get_server(&self, slug: &str) -> StoreResult<Option<ServerRecord>> {
        Ok(self.servers.borrow().get(slug).cloned())
    }

    async fn list_servers(&self) -> StoreResult<Vec<ServerRecord>> {
        Ok(self.servers.borrow().values().cloned().collect())
    }

    async fn update_server(&self, server: &ServerRecord) -> StoreResult<bool> {
        Ok(match self.servers.borrow_mut().get_mut(&server.slug) {
            // The owner and the creation time are fixed at registration.
            Some(s) => {
                *s = ServerRecord {
                    org_id: s.org_id.clone(),
                    created_at: s.created_at.clone(),
                    ..server.clone()
                };
                true
            }
            None => false,
        })
    }

    async fn delete_server(&self, slug: &str) -> StoreResult<bool> {
        self.tools.borrow_mut().remove(slug);
        Ok(self.servers.borrow_mut().remove(slug).is_some())
    }

    async fn replace_catalog(&self, server: &ServerRecord, tools: &[ToolRecord]) -> StoreResult<bool> {
        // Checked before anything changes: the old catalog stays if the new one is refused.
        let tools = catalog(tools)?;
        if !self.update_server(server).await? {
            return Ok(false);
        }
        self.tools.borrow_mut().insert(server.slug.clone(), tools);
        Ok(true)
    }

    async fn list_tools(&self, slug: &str) -> StoreResult<Vec<ToolRecord>> {
        Ok(self.tools.borrow().get(slug).cloned().unwrap_or_default())
    }

    async fn list_all_tools(&self) -> StoreResult<Vec<ToolRecord>> {
        Ok(self.tools.borrow().values().flatten().cloned().collect())
    }

    async fn approve_tool(&self, slug: &str, name: &str) -> StoreResult<bool> {
        let mut tools = self.tools.borrow_mut();
        let Some(t) = tools
            .get_mut(slug)
            .and_then(|ts| ts.iter_mut().find(|t| t.name == name))
        else {
            return Ok(false);
        };
        t.status = "active".into();
        t.approved_hash = Some(t.definition_hash.clone());
        t.approved_definition = Some(t.tool_json());
        t.quarantine_reason = None;
        Ok(true)
    }

    async fn catalog_generation(&self) -> StoreResult<u64> {
        Ok(self.generation.get())
    }

    async fn bump_catalog_generation(&self) -> StoreResult<()> {
        self.generation.set(self.generation.get() + 1);
        Ok(())
    }
}

#[async_trait(?Send)]
impl Versions for MemoryStore {
    async fn snapshot_version(&self) -> StoreResult<u64> {
        Ok(self.snapshot_version.get())
    }

    async fn bump_snapshot_version(&self) -> StoreResult<u64> {
        self.snapshot_version.set(self.snapshot_version.get() + 1);
        Ok(self.snapshot_version.get())
    }
}

#[async_trait(?Send)]
impl VirtualServers for MemoryStore {
    async fn create_virtual(&self, v: &VirtualServer) -> StoreResult<()> {
        insert_new(&self.virtuals, &v.slug, v)
    }

    async fn get_virtual(&self, slug: &str) -> StoreResult<Option<VirtualServer>> {
        Ok(self.virtuals.borrow().get(slug).cloned())
    }

    async fn list_virtual(&self) -> StoreResult<Vec<VirtualServer>> {
        Ok(self.virtuals.borrow().values().cloned().collect())
    }

    async fn update_virtual(&self, v: &VirtualServer) -> StoreResult<bool> {
        Ok(match self.virtuals.borrow_mut().get_mut(&v.slug) {
            Some(x) => {
                *x = VirtualServer {
                    org_id: x.org_id.clone(),
                    created_at: x.created_at.clone(),
                    ..v.clone()
                };
                true
            }
            None => false,
        })
    }

    async fn delete_virtual(&self, slug: &str) -> StoreResult<bool> {
        Ok(self.virtuals.borrow_mut().remove(slug).is_some())
    }
}

#[async_trait(?Send)]
impl ApiKeys for MemoryStore {
    async fn create_key(&self, key: &ApiKeyRecord) -> StoreResult<()> {
        let mut keys = self.keys.borrow_mut();
        if keys.iter().any(|k| k.id == key.id || k.key_hash == key.key_hash) {
            return Err(StoreError::Conflict);
        }
        keys.push(key.clone());
        Ok(())
    }

    async fn list_keys(&self) -> StoreResult<Vec<ApiKeyRecord>> {
        let mut keys = self.keys.borrow().clone();
        keys.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id)));
        Ok(keys)
    }

    async fn find_key_by_hash(&self, hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        Ok(self.keys.borrow().iter().find(|k| k.key_hash == hash).cloned())
    }

    async fn revoke_key(&self, id: &str, at: &str) -> StoreResult<bool> {
        Ok(
            match self
                .keys
                .borrow_mut()
                .iter_mut()
                .find(|k| k.id == id && k.revoked_at.is_none())
            {
                Some(k) => {
                    k.revoked_at = Some(at.to_string());
                    true
                }
                None => false,
            },
        )
    }
}

/// The directory part delegates to `MemoryDirectory`.
#[async_trait(?Send)]
impl Directory for MemoryStore {
    async fn create_entity(&self, e: &Entity) -> StoreResult<()> {
        self.directory.create_entity(e).await
    }
    async fn get_entity(&self, id: &str) -> StoreResult<Option<Entity>> {
        self.directory.get_entity(id).await
    }
    async fn list_entities(
        &self,
        kind: EntityKind,
        parent: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Entity>> {
        self.directory.list_entities(kind, parent, after, limit).await
    }
    async fn update_entity(&self, e: &Entity) -> StoreResult<bool> {
        self.directory.update_entity(e).await
    }
    async fn delete_entity(&self, id: &str) -> StoreResult<bool> {
        self.directory.delete_entity(id).await
    }
    async fn count_dependents(&self, id: &str) -> StoreResult<usize> {
        let owned = self
            .servers
            .borrow()
            .values()
            .filter(|s| s.org_id.as_deref() == Some(id))
            .count()
            + self
                .virtuals
                .borrow()
                .values()
                .filter(|v| v.org_id.as_deref() == Some(id))
                .count();
        Ok(self.directory.count_dependents(id).await? + owned)
    }
    async fn add_member(&self, principal_id: &str, group_id: &str, at: &str) -> StoreResult<()> {
        self.directory.add_member(principal_id, group_id, at).await
    }
    async fn remove_member(&self, principal_id: &str, group_id: &str) -> StoreResult<bool> {
        self.directory.remove_member(principal_id, group_id).await
    }
    async fn list_members(&self, group_id: &str) -> StoreResult<Vec<String>> {
        self.directory.list_members(group_id).await
    }
    async fn identity(&self, principal_id: &str) -> StoreResult<Option<Identity>> {
        self.directory.identity(principal_id).await
    }
    async fn all_identities(&self) -> StoreResult<Vec<Identity>> {
        self.directory.all_identities().await
    }
    async fn create_grant(&self, g: &Grant) -> StoreResult<()> {
        self.directory.create_grant(g).await
    }
    async fn list_grants(&self) -> StoreResult<Vec<Grant>> {
        self.directory.list_grants().await
    }
    async fn delete_grant(&self, id: &str) -> StoreResult<bool> {
        self.directory.delete_grant(id).await
    }
    async fn grants_for(&self, subject_ids: &[String]) -> StoreResult<Vec<Grant>> {
        self.directory.grants_for(subject_ids).await
    }
    async fn find_by_external_subject(&self, external_subject: &str) -> StoreResult<Option<Entity>> {
        self.directory.find_by_external_subject(external_subject).await
    }
    async fn create_idp(&self, idp: &IdentityProvider) -> StoreResult<()> {
        self.directory.create_idp(idp).await
    }
    async fn list_idps(&self) -> StoreResult<Vec<IdentityProvider>> {
        self.directory.list_idps().await
    }
    async fn idps_by_issuer(&self, issuer: &str) -> StoreResult<Vec<IdentityProvider>> {
        self.directory.idps_by_issuer(issuer).await
    }
    async fn delete_idp(&self, id: &str) -> StoreResult<bool> {
        self.directory.delete_idp(id).await
    }
    async fn create_role(&self, r: &RoleAssignment) -> StoreResult<()> {
        self.directory.create_role(r).await
    }
    async fn list_roles(&self) -> StoreResult<Vec<RoleAssignment>> {
        self.directory.list_roles().await
    }
    async fn roles_of(&self, principal_id: &str) -> StoreResult<Vec<RoleAssignment>> {
        self.directory.roles_of(principal_id).await
    }
    async fn delete_role(&self, id: &str) -> StoreResult<bool> {
        self.directory.delete_role(id).await
    }
    async fn org_capture(&self, org_id: &str) -> StoreResult<Option<crate::observe::CaptureMode>> {
        self.directory.org_capture(org_id).await
    }
    async fn set_org_capture(&self, org_id: &str, capture: Option<crate::observe::CaptureMode>) -> StoreResult<()> {
        self.directory.set_org_capture(org_id, capture).await
    }
}

#[async_trait(?Send)]
impl OAuthStore for MemoryStore {
    async fn put_client(&self, c: &OAuthClient) -> StoreResult<()> {
        insert_new(&self.oauth_clients, &c.client_id, c)
    }

    async fn get_client(&self, client_id: &str) -> StoreResult<Option<OAuthClient>> {
        Ok(self.oauth_clients.borrow().get(client_id).cloned())
    }

    async fn put_pending(&self, id: &str, data: &serde_json::Value, expires_at_ms: u64) -> StoreResult<()> {
        insert_new(&self.pending, id, &(data.clone(), expires_at_ms))
    }

    async fn take_pending(&self, id: &str, now_ms: u64) -> StoreResult<Option<serde_json::Value>> {
        Ok(self
            .pending
            .borrow_mut()
            .remove(id)
            .filter(|(_, exp)| *exp > now_ms)
            .map(|(v, _)| v))
    }

    async fn put_token(&self, t: &OAuthToken) -> StoreResult<()> {
        insert_new(&self.tokens, &t.hash, &(t.clone(), false))
    }

    async fn get_token(&self, hash: &str) -> StoreResult<Option<OAuthToken>> {
        let revoked = self.revoked_families.borrow();
        Ok(self
            .tokens
            .borrow()
            .get(hash)
            .map(|(t, _)| t.clone())
            .filter(|t| !revoked.contains(&t.family)))
    }

    async fn consume_token(&self, hash: &str, _now_ms: u64) -> StoreResult<bool> {
        Ok(match self.tokens.borrow_mut().get_mut(hash) {
            Some((_, used)) if !*used => {
                *used = true;
                true
            }
            _ => false,
        })
    }

    async fn revoke_family(&self, family: &str) -> StoreResult<()> {
        self.revoked_families.borrow_mut().push(family.to_string());
        Ok(())
    }

    async fn put_console_session(&self, c: &ConsoleSession) -> StoreResult<()> {
        insert_new(&self.console_sessions, &c.hash, c)
    }

    async fn get_console_session(&self, hash: &str) -> StoreResult<Option<ConsoleSession>> {
        Ok(self.console_sessions.borrow().get(hash).cloned())
    }

    async fn touch_console_session(&self, hash: &str, last_seen_ms: u64) -> StoreResult<bool> {
        Ok(match self.console_sessions.borrow_mut().get_mut(hash) {
            Some(c) => {
                c.last_seen_ms = last_seen_ms;
                true
            }
            None => false,
        })
    }

    async fn delete_console_session(&self, hash: &str, now_ms: u64) -> StoreResult<bool> {
        let mut all = self.console_sessions.borrow_mut();
        let gone = all.remove(hash).is_some();
        all.retain(|_, c| c.expires_at_ms > now_ms);
        Ok(gone)
    }
}

#[async_trait(?Send)]
impl SecretStore for MemoryStore {
    async fn get_secret(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(self.secrets.borrow().get(key).cloned())
    }

    async fn put_secret(&self, key: &str, value: &str) -> StoreResult<()> {
        self.secrets.borrow_mut().insert(key.into(), value.into());
        Ok(())
    }

    async fn delete_secret(&self, key: &str) -> StoreResult<()> {
        self.secrets.borrow_mut().remove(key);
        Ok(())
    }

    async fn list_secrets(&self, prefix: &str) -> StoreResult<Vec<String>> {
        Ok(self
            .secrets
            .borrow()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
}

/// Usage over the rows of the memory store's audit trail, by the reference semantics.
#[async_trait::async_trait(?Send)]
impl crate::store::usage::UsageStore for MemoryStore {
    async fn usage(&self, q: &crate::store::usage::UsageQuery) -> StoreResult<Vec<crate::store::usage::GroupUsage>> {
        Ok(crate::store::usage::aggregate(&self.audit.usage_rows(), q))
    }

    async fn last_use(&self, orgs: Option<&[String]>, now_ms: u64) -> StoreResult<Vec<crate::store::usage::LastUse>> {
        Ok(crate::store::usage::last_use(&self.audit.usage_rows(), orgs, now_ms))
    }
}
