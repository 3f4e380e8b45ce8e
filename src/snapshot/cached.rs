//! Store decorators over the isolate snapshot: the reads a request makes (key, identity, grants,
//! issuers, servers, catalogs, virtual servers, access tokens, credentials) are served from the
//! snapshot when it is fresh; every write passes through, then bumps the version and empties
//! this isolate's snapshot. Reads nobody makes per request (admin listings, roles, clients)
//! always pass through. With `cache_reads` off (the admin API), every read passes through and
//! writes still bump, so admin reads see storage as it is.
use std::future::Future;
use std::rc::Rc;

use async_trait::async_trait;
use serde_json::Value;

use super::{Keeper, Tables};
use crate::store::{
    ApiKeyRecord, ApiKeys, Changes, Directory, Entity, EntityKind, Grant, Identity, IdentityProvider, OAuthClient,
    OAuthStore, OAuthToken, Policies, PolicyRecord, Registry, RoleAssignment, SecretStore, ServerRecord, StoreError,
    StoreResult, ToolRecord, VirtualServer, VirtualServers, Write,
};

/// The relational stores (D1), cached.
pub struct CachedStore<S> {
    inner: Rc<S>,
    keeper: Rc<Keeper>,
    cache_reads: bool,
}

/// The secret store (KV), cached.
pub struct CachedSecrets {
    inner: Rc<dyn SecretStore>,
    keeper: Rc<Keeper>,
    cache_reads: bool,
}

/// What both decorators share: a cached read and a write that bumps.
struct Through<'a> {
    keeper: &'a Rc<Keeper>,
    cache_reads: bool,
}

impl Through<'_> {
    async fn read<R: Clone>(
        &self,
        hit: impl FnOnce(&mut Tables) -> Option<R>,
        load: impl Future<Output = StoreResult<R>>,
        keep: impl FnOnce(&mut Tables, R),
    ) -> StoreResult<R> {
        if !self.cache_reads {
            return load.await;
        }
        self.keeper.fresh().await;
        let snap = &self.keeper.snapshot;
        if let Some(v) = snap.lookup(hit) {
            return Ok(v);
        }
        // Taken before the read starts: a change that empties the snapshot meanwhile makes
        // this result unkeepable (it may predate the change).
        let epoch = snap.epoch();
        let v = load.await?;
        snap.keep(epoch, |t| keep(t, v.clone()));
        Ok(v)
    }

    /// A write's result, after bumping the version if it may have changed anything (`false`
    /// results and conflicts change nothing; a backend error might have).
    async fn wrote<R>(&self, r: StoreResult<R>, changed: impl FnOnce(&R) -> bool) -> StoreResult<R> {
        let bump = match &r {
            Ok(v) => changed(v),
            Err(StoreError::Conflict) => false,
            Err(_) => true,
        };
        if bump {
            let bumped = self.keeper.wrote().await;
            let v = r?;
            bumped?;
            return Ok(v);
        }
        r
    }
}

fn always<R>(_: &R) -> bool {
    true
}

fn if_true(b: &bool) -> bool {
    *b
}

impl<S> CachedStore<S> {
    pub fn new(inner: Rc<S>, keeper: Rc<Keeper>, cache_reads: bool) -> Self {
        Self {
            inner,
            keeper,
            cache_reads,
        }
    }

    fn through(&self) -> Through<'_> {
        Through {
            keeper: &self.keeper,
            cache_reads: self.cache_reads,
        }
    }
}

impl CachedSecrets {
    pub fn new(inner: Rc<dyn SecretStore>, keeper: Rc<Keeper>, cache_reads: bool) -> Self {
        Self {
            inner,
            keeper,
            cache_reads,
        }
    }

    fn through(&self) -> Through<'_> {
        Through {
            keeper: &self.keeper,
            cache_reads: self.cache_reads,
        }
    }
}

#[async_trait(?Send)]
impl<S: Registry> Registry for CachedStore<S> {
    async fn create_server(&self, server: &ServerRecord, tools: &[ToolRecord]) -> StoreResult<()> {
        let r = self.inner.create_server(server, tools).await;
        self.through().wrote(r, always).await
    }

    async fn get_server(&self, slug: &str) -> StoreResult<Option<ServerRecord>> {
        self.through()
            .read(
                |t| t.servers.get(slug).cloned(),
                self.inner.get_server(slug),
                |t, v| t.servers.insert(slug.to_string(), v),
            )
            .await
    }

    async fn list_servers(&self) -> StoreResult<Vec<ServerRecord>> {
        self.through()
            .read(
                |t| t.server_list.clone(),
                self.inner.list_servers(),
                |t, v| t.server_list = Some(v),
            )
            .await
    }

    async fn update_server(&self, server: &ServerRecord) -> StoreResult<bool> {
        let r = self.inner.update_server(server).await;
        self.through().wrote(r, if_true).await
    }

    async fn delete_server(&self, slug: &str) -> StoreResult<bool> {
        let r = self.inner.delete_server(slug).await;
        self.through().wrote(r, if_true).await
    }

    async fn replace_catalog(&self, server: &ServerRecord, tools: &[ToolRecord]) -> StoreResult<bool> {
        let r = self.inner.replace_catalog(server, tools).await;
        self.through().wrote(r, if_true).await
    }

    async fn list_tools(&self, slug: &str) -> StoreResult<Vec<ToolRecord>> {
        Ok(self.tools_of(slug).await?.as_ref().clone())
    }

    async fn tools_of(&self, slug: &str) -> StoreResult<Rc<Vec<ToolRecord>>> {
        self.through()
            .read(
                |t| t.tools.get(slug).cloned(),
                async { Ok(Rc::new(self.inner.list_tools(slug).await?)) },
                |t, v| t.tools.insert(slug.to_string(), v),
            )
            .await
    }

    async fn list_all_tools(&self) -> StoreResult<Vec<ToolRecord>> {
        self.through()
            .read(
                |t| t.all_tools.clone(),
                self.inner.list_all_tools(),
                |t, v| t.all_tools = Some(v),
            )
            .await
    }

    async fn approve_tool(&self, slug: &str, name: &str) -> StoreResult<bool> {
        let r = self.inner.approve_tool(slug, name).await;
        self.through().wrote(r, if_true).await
    }

    /// Always read from storage (live streams poll it); a change makes the next read revalidate.
    async fn catalog_generation(&self) -> StoreResult<u64> {
        let g = self.inner.catalog_generation().await?;
        self.keeper.snapshot.saw_generation(g);
        Ok(g)
    }

    async fn bump_catalog_generation(&self) -> StoreResult<()> {
        let r = self.inner.bump_catalog_generation().await;
        self.through().wrote(r, always).await
    }
}

#[async_trait(?Send)]
impl<S: ApiKeys> ApiKeys for CachedStore<S> {
    async fn create_key(&self, key: &ApiKeyRecord) -> StoreResult<()> {
        let r = self.inner.create_key(key).await;
        self.through().wrote(r, always).await
    }

    async fn list_keys(&self) -> StoreResult<Vec<ApiKeyRecord>> {
        self.inner.list_keys().await
    }

    /// Keys that exist are kept (revoked or not: the caller decides); a miss is never kept, so
    /// guessed keys cannot fill the table and a new key works at once.
    async fn find_key_by_hash(&self, hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        self.through()
            .read(
                |t| t.keys.get(hash).cloned().map(Some),
                self.inner.find_key_by_hash(hash),
                |t, v| {
                    if let Some(k) = v {
                        t.keys.insert(hash.to_string(), k)
                    }
                },
            )
            .await
    }

    async fn revoke_key(&self, id: &str, at: &str) -> StoreResult<bool> {
        let r = self.inner.revoke_key(id, at).await;
        self.through().wrote(r, if_true).await
    }
}

#[async_trait(?Send)]
impl<S: VirtualServers> VirtualServers for CachedStore<S> {
    async fn create_virtual(&self, v: &VirtualServer) -> StoreResult<()> {
        let r = self.inner.create_virtual(v).await;
        self.through().wrote(r, always).await
    }

    async fn get_virtual(&self, slug: &str) -> StoreResult<Option<VirtualServer>> {
        self.through()
            .read(
                |t| t.virtuals.get(slug).cloned(),
                self.inner.get_virtual(slug),
                |t, v| t.virtuals.insert(slug.to_string(), v),
            )
            .await
    }

    async fn list_virtual(&self) -> StoreResult<Vec<VirtualServer>> {
        self.inner.list_virtual().await
    }

    async fn update_virtual(&self, v: &VirtualServer) -> StoreResult<bool> {
        let r = self.inner.update_virtual(v).await;
        self.through().wrote(r, if_true).await
    }

    async fn delete_virtual(&self, slug: &str) -> StoreResult<bool> {
        let r = self.inner.delete_virtual(slug).await;
        self.through().wrote(r, if_true).await
    }
}

#[async_trait(?Send)]
impl<S: Directory> Directory for CachedStore<S> {
    async fn create_entity(&self, e: &Entity) -> StoreResult<()> {
        let r = self.inner.create_entity(e).await;
        self.through().wrote(r, always).await
    }

    async fn get_entity(&self, id: &str) -> StoreResult<Option<Entity>> {
        self.inner.get_entity(id).await
    }

    async fn list_entities(
        &self,
        kind: EntityKind,
        parent: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Entity>> {
        self.inner.list_entities(kind, parent, after, limit).await
    }

    async fn update_entity(&self, e: &Entity) -> StoreResult<bool> {
        let r = self.inner.update_entity(e).await;
        self.through().wrote(r, if_true).await
    }

    async fn delete_entity(&self, id: &str) -> StoreResult<bool> {
        let r = self.inner.delete_entity(id).await;
        self.through().wrote(r, if_true).await
    }

    async fn count_dependents(&self, id: &str) -> StoreResult<usize> {
        self.inner.count_dependents(id).await
    }

    async fn add_member(&self, principal_id: &str, group_id: &str, at: &str) -> StoreResult<()> {
        let r = self.inner.add_member(principal_id, group_id, at).await;
        self.through().wrote(r, always).await
    }

    async fn remove_member(&self, principal_id: &str, group_id: &str) -> StoreResult<bool> {
        let r = self.inner.remove_member(principal_id, group_id).await;
        self.through().wrote(r, if_true).await
    }

    async fn list_members(&self, group_id: &str) -> StoreResult<Vec<String>> {
        self.inner.list_members(group_id).await
    }

    async fn identity(&self, principal_id: &str) -> StoreResult<Option<Identity>> {
        self.through()
            .read(
                |t| t.identities.get(principal_id).cloned(),
                self.inner.identity(principal_id),
                |t, v| t.identities.insert(principal_id.to_string(), v),
            )
            .await
    }

    async fn all_identities(&self) -> StoreResult<Vec<Identity>> {
        self.inner.all_identities().await
    }

    async fn create_grant(&self, g: &Grant) -> StoreResult<()> {
        let r = self.inner.create_grant(g).await;
        self.through().wrote(r, always).await
    }

    async fn list_grants(&self) -> StoreResult<Vec<Grant>> {
        self.inner.list_grants().await
    }

    async fn delete_grant(&self, id: &str) -> StoreResult<bool> {
        let r = self.inner.delete_grant(id).await;
        self.through().wrote(r, if_true).await
    }

    async fn grants_for(&self, subject_ids: &[String]) -> StoreResult<Vec<Grant>> {
        let key = subject_ids.join("\n");
        self.through()
            .read(
                |t| t.grants.get(&key).cloned(),
                self.inner.grants_for(subject_ids),
                |t, v| t.grants.insert(key.clone(), v),
            )
            .await
    }

    async fn find_by_external_subject(&self, external_subject: &str) -> StoreResult<Option<Entity>> {
        self.inner.find_by_external_subject(external_subject).await
    }

    async fn create_idp(&self, idp: &IdentityProvider) -> StoreResult<()> {
        let r = self.inner.create_idp(idp).await;
        self.through().wrote(r, always).await
    }

    async fn list_idps(&self) -> StoreResult<Vec<IdentityProvider>> {
        self.inner.list_idps().await
    }

    async fn idps_by_issuer(&self, issuer: &str) -> StoreResult<Vec<IdentityProvider>> {
        self.through()
            .read(
                |t| t.issuers.get(issuer).cloned(),
                self.inner.idps_by_issuer(issuer),
                |t, v| t.issuers.insert(issuer.to_string(), v),
            )
            .await
    }

    async fn delete_idp(&self, id: &str) -> StoreResult<bool> {
        let r = self.inner.delete_idp(id).await;
        self.through().wrote(r, if_true).await
    }

    async fn create_role(&self, r: &RoleAssignment) -> StoreResult<()> {
        let res = self.inner.create_role(r).await;
        self.through().wrote(res, always).await
    }

    async fn list_roles(&self) -> StoreResult<Vec<RoleAssignment>> {
        self.inner.list_roles().await
    }

    async fn roles_of(&self, principal_id: &str) -> StoreResult<Vec<RoleAssignment>> {
        self.inner.roles_of(principal_id).await
    }

    async fn delete_role(&self, id: &str) -> StoreResult<bool> {
        let r = self.inner.delete_role(id).await;
        self.through().wrote(r, if_true).await
    }

    /// Read on every MCP request (the capture mode of its event): served from the snapshot.
    async fn org_capture(&self, org_id: &str) -> StoreResult<Option<crate::observe::CaptureMode>> {
        self.through()
            .read(
                |t| t.org_capture.get(org_id).copied(),
                self.inner.org_capture(org_id),
                |t, v| t.org_capture.insert(org_id.to_string(), v),
            )
            .await
    }

    async fn set_org_capture(&self, org_id: &str, capture: Option<crate::observe::CaptureMode>) -> StoreResult<()> {
        let r = self.inner.set_org_capture(org_id, capture).await;
        self.through().wrote(r, always).await
    }
}

/// Only access tokens are kept (positive, until they expire): codes and refresh tokens are
/// single use, decided by `consume_token` in storage, which is never cached.
#[async_trait(?Send)]
impl<S: OAuthStore> OAuthStore for CachedStore<S> {
    async fn put_client(&self, c: &OAuthClient) -> StoreResult<()> {
        self.inner.put_client(c).await
    }

    async fn get_client(&self, client_id: &str) -> StoreResult<Option<OAuthClient>> {
        self.inner.get_client(client_id).await
    }

    async fn put_pending(&self, id: &str, data: &Value, expires_at_ms: u64) -> StoreResult<()> {
        self.inner.put_pending(id, data, expires_at_ms).await
    }

    async fn take_pending(&self, id: &str, now_ms: u64) -> StoreResult<Option<Value>> {
        self.inner.take_pending(id, now_ms).await
    }

    /// A new token is no change to the snapshot (misses are never kept).
    async fn put_token(&self, t: &OAuthToken) -> StoreResult<()> {
        self.inner.put_token(t).await
    }

    async fn get_token(&self, hash: &str) -> StoreResult<Option<OAuthToken>> {
        let now = self.keeper.now_ms();
        self.through()
            .read(
                |t| match t.tokens.get(hash) {
                    Some(tok) if tok.expires_at_ms > now => Some(Some(tok.clone())),
                    Some(_) => {
                        t.tokens.remove(hash);
                        None
                    }
                    None => None,
                },
                self.inner.get_token(hash),
                |t, v| {
                    if let Some(tok) = v.filter(|tok| tok.kind == "access" && tok.expires_at_ms > now) {
                        t.tokens.insert(hash.to_string(), tok)
                    }
                },
            )
            .await
    }

    async fn consume_token(&self, hash: &str, now_ms: u64) -> StoreResult<bool> {
        self.inner.consume_token(hash, now_ms).await
    }

    /// Revokes a family: kept access tokens of it must go, here and in every isolate.
    async fn revoke_family(&self, family: &str) -> StoreResult<()> {
        let r = self.inner.revoke_family(family).await;
        self.through().wrote(r, always).await
    }

    /// Console sessions are never cached: sign-out must end a session at once everywhere.
    async fn put_console_session(&self, c: &crate::store::ConsoleSession) -> StoreResult<()> {
        self.inner.put_console_session(c).await
    }

    async fn get_console_session(&self, hash: &str) -> StoreResult<Option<crate::store::ConsoleSession>> {
        self.inner.get_console_session(hash).await
    }

    async fn touch_console_session(&self, hash: &str, last_seen_ms: u64) -> StoreResult<bool> {
        self.inner.touch_console_session(hash, last_seen_ms).await
    }

    async fn delete_console_session(&self, hash: &str, now_ms: u64) -> StoreResult<bool> {
        self.inner.delete_console_session(hash, now_ms).await
    }
}

/// Keys under these prefixes are always read from storage: a user's upstream tokens rotate
/// (a refresh with a superseded refresh token fails and disconnects the user), so they are
/// never served from a snapshot.
const UNCACHED_SECRETS: &[&str] = &["cred:user:", "credmeta:user:"];

/// Credentials are kept present or absent (most servers have none, and that is asked on every
/// call too).
#[async_trait(?Send)]
impl SecretStore for CachedSecrets {
    async fn get_secret(&self, key: &str) -> StoreResult<Option<String>> {
        if UNCACHED_SECRETS.iter().any(|p| key.starts_with(p)) {
            return self.inner.get_secret(key).await;
        }
        self.through()
            .read(
                |t| t.secrets.get(key).cloned(),
                self.inner.get_secret(key),
                |t, v| t.secrets.insert(key.to_string(), v),
            )
            .await
    }

    async fn put_secret(&self, key: &str, value: &str) -> StoreResult<()> {
        let r = self.inner.put_secret(key, value).await;
        self.through().wrote(r, always).await
    }

    async fn delete_secret(&self, key: &str) -> StoreResult<()> {
        let r = self.inner.delete_secret(key).await;
        self.through().wrote(r, always).await
    }

    async fn list_secrets(&self, prefix: &str) -> StoreResult<Vec<String>> {
        self.inner.list_secrets(prefix).await
    }
}

#[async_trait(?Send)]
impl<S: Policies> Policies for CachedStore<S> {
    async fn create_policy(&self, p: &PolicyRecord) -> StoreResult<()> {
        let r = self.inner.create_policy(p).await;
        self.through().wrote(r, always).await
    }

    async fn get_policy(&self, org_id: &str, id: &str) -> StoreResult<Option<PolicyRecord>> {
        self.inner.get_policy(org_id, id).await
    }

    /// Served from the snapshot: every call of the organization reads it.
    async fn list_policies(&self, org_id: &str) -> StoreResult<Vec<PolicyRecord>> {
        let list = self
            .through()
            .read(
                |t| t.policies.get(org_id).cloned(),
                async { self.inner.list_policies(org_id).await.map(Rc::new) },
                |t, v| t.policies.insert(org_id.to_string(), v),
            )
            .await?;
        Ok((*list).clone())
    }

    async fn update_policy(&self, p: &PolicyRecord) -> StoreResult<bool> {
        let r = self.inner.update_policy(p).await;
        self.through().wrote(r, if_true).await
    }

    async fn delete_policy(&self, org_id: &str, id: &str) -> StoreResult<bool> {
        let r = self.inner.delete_policy(org_id, id).await;
        self.through().wrote(r, if_true).await
    }
}

#[async_trait(?Send)]
impl<S: Changes> Changes for CachedStore<S> {
    /// One version bump for the whole batch (none for an empty one or a conflict).
    async fn apply(&self, writes: &[Write]) -> StoreResult<()> {
        let r = self.inner.apply(writes).await;
        self.through().wrote(r, |_| !writes.is_empty()).await
    }
}
