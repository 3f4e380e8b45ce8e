//! Storage traits: what the core needs from D1/KV, with documented contracts. The platform
//! module implements them over Cloudflare bindings; `memory` implements them for native tests.
//!
//! The contracts on the traits hold for every backend, and `conformance` checks each of them by
//! name against each backend (docs/storage.md, *Store conformance*). Common to all: a read of
//! something absent is `Ok(None)` / an empty list, never an error; an update or delete of it is
//! `Ok(false)`; an insert whose key exists is `Err(Conflict)` and changes nothing; a write that
//! fails stores nothing of itself; records read back equal the records written (except fields a
//! contract says are fixed); lists have the stated order whatever order rows were written in.
//!
//! Traits are `?Send` because Workers handles are not `Send`.
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::mcp::version::Era;
pub use approvals::Approvals;
pub use audit::AuditStore;
pub use changes::{Changes, Write};
pub use limits::Counters;
pub use policies::{Policies, PolicyRecord};
pub use records::{Grant, Identity, IdentityProvider, RoleAssignment};

pub mod approvals;
pub mod audit;
pub mod audit_memory;
pub mod changes;
#[cfg(any(test, feature = "store-conformance"))]
pub mod conformance;
pub mod directory_memory;
pub mod limits;
pub mod limits_memory;
pub mod memory;
pub mod policies;
pub mod records;
pub mod usage;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// A unique key already exists (e.g. a server slug).
    #[error("already exists")]
    Conflict,
    /// The backing store failed; the text is for logs, never for clients.
    #[error("storage backend failed: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A registered upstream MCP server (D1 table `servers`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerRecord {
    pub slug: String,
    pub name: String,
    pub url: String,
    pub description: Option<String>,
    pub owner: Option<String>,
    /// `active` or `disabled`; disabled servers are not served.
    pub status: String,
    /// The MCP era the upstream speaks, detected at sync.
    pub era: Option<Era>,
    /// The revision negotiated with the upstream at the last sync.
    pub protocol_version: Option<String>,
    /// Per-server idle deadline (ms); `None` uses the gateway default.
    pub timeout_ms: Option<u32>,
    /// Per-server total deadline of one request/response exchange (ms); `None` uses the
    /// gateway default (`UPSTREAM_TOTAL_TIMEOUT_MS`).
    #[serde(default)]
    pub total_timeout_ms: Option<u32>,
    /// What the upstream said about itself at the last sync (capabilities, serverInfo, instructions).
    pub server_info: Option<Value>,
    pub capabilities: Option<Value>,
    pub instructions: Option<String>,
    pub last_synced_at: Option<String>,
    pub last_sync_error: Option<String>,
    /// What a sync does with a tool it has not seen before: `approve` or `quarantine`.
    pub new_tool_policy: String,
    pub created_at: String,
    pub updated_at: String,
    /// The organization that owns the server (and its credentials); `None`: platform-wide,
    /// managed only by the bootstrap admin. Fixed at registration. See docs/tenancy.md.
    #[serde(default)]
    pub org_id: Option<String>,
    /// For a modern upstream, the newest legacy revision it also accepts (from `server/discover`);
    /// legacy clients are served in that era end to end (see `for_client`).
    #[serde(default)]
    pub legacy_version: Option<String>,
    /// What events keep of a call's arguments on this server (`None`: the organization's
    /// setting, else `keys`; docs/observability.md, *Events*).
    #[serde(default)]
    pub capture: Option<crate::observe::CaptureMode>,
}

/// RFC 3339 timestamp (milliseconds, UTC) of `ms` since the Unix epoch: how rows record time.
pub fn timestamp(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl ToolRecord {
    /// The tool as an MCP `Tool` object (lists served from the catalog, approved definitions).
    pub fn tool_json(&self) -> Value {
        let mut v = serde_json::json!({"name": self.name, "inputSchema": self.input_schema});
        if let Some(x) = &self.title {
            v["title"] = serde_json::json!(x);
        }
        if let Some(x) = &self.description {
            v["description"] = serde_json::json!(x);
        }
        if let Some(x) = &self.output_schema {
            v["outputSchema"] = x.clone();
        }
        if let Some(x) = &self.annotations {
            v["annotations"] = x.clone();
        }
        v
    }
}

impl ServerRecord {
    /// The record as a client of `era` uses it: a dual-era upstream is spoken to in the client's
    /// own era, so nothing needs translating (a legacy client keeps server→client requests and
    /// subscriptions, which a stateless 2026-07-28 request cannot carry).
    pub fn for_client(mut self, era: Era) -> ServerRecord {
        if era == Era::Legacy && self.era == Some(Era::Modern) {
            if let Some(v) = self.legacy_version.take() {
                self.era = Some(Era::Legacy);
                self.protocol_version = Some(v);
            }
        }
        self
    }
}

/// One tool of a server's catalog (D1 table `tools`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolRecord {
    pub server_slug: String,
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub input_schema: Value,
    pub output_schema: Option<Value>,
    pub annotations: Option<Value>,
    /// SHA-256 over the canonical JSON of the definition (see `gateway::catalog`).
    pub definition_hash: String,
    pub discovered_at: String,
    /// `active` (served) or `quarantined` (hidden and refused until an admin approves it).
    pub status: String,
    /// Hash of the definition an admin (or the server's policy) approved; `None` = never.
    pub approved_hash: Option<String>,
    /// The approved definition as an MCP `Tool` object, kept to show beside a changed one.
    pub approved_definition: Option<Value>,
    /// Why a quarantined tool is held (a suspected tool poisoning, a changed definition, a new
    /// tool awaiting approval); `None` for an active one (D1 column since migration 0012).
    #[serde(default)]
    pub quarantine_reason: Option<String>,
}

impl ToolRecord {
    pub fn is_active(&self) -> bool {
        self.status == "active" && self.approved_hash.as_deref() == Some(self.definition_hash.as_str())
    }
}

/// One tool of a virtual server: a tool of a registered server, optionally renamed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualTool {
    pub server: String,
    pub tool: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A curated tool set served at `/mcp/v/{slug}` (D1 table `virtual_servers`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VirtualServer {
    pub slug: String,
    pub name: String,
    pub description: Option<String>,
    pub tools: Vec<VirtualTool>,
    pub created_at: String,
    pub updated_at: String,
    /// The owning organization; `None`: platform-wide. Fixed at creation.
    #[serde(default)]
    pub org_id: Option<String>,
}

/// The organization, workspace and agent that migration 0003 creates, so that API keys issued
/// before identities existed keep working: such keys act as `DEFAULT_AGENT`, which has a grant
/// to every server and virtual server. New users and agents get nothing until granted.
pub const DEFAULT_ORG: &str = "org_default";
pub const DEFAULT_WORKSPACE: &str = "ws_default";
pub const DEFAULT_AGENT: &str = "agt_default";

/// Kinds of directory entries: the hierarchy and the principals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntityKind {
    Org,
    Workspace,
    Team,
    User,
    Agent,
}

impl EntityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Org => "org",
            EntityKind::Workspace => "workspace",
            EntityKind::Team => "team",
            EntityKind::User => "user",
            EntityKind::Agent => "agent",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "org" => EntityKind::Org,
            "workspace" => EntityKind::Workspace,
            "team" => EntityKind::Team,
            "user" => EntityKind::User,
            "agent" => EntityKind::Agent,
            _ => return None,
        })
    }

    /// The id prefix of this kind (ids are unique across kinds).
    pub fn id_prefix(self) -> &'static str {
        match self {
            EntityKind::Org => "org_",
            EntityKind::Workspace => "ws_",
            EntityKind::Team => "team_",
            EntityKind::User => "usr_",
            EntityKind::Agent => "agt_",
        }
    }

    /// The kind an entry of this kind hangs under (`None` for organizations).
    pub fn parent(self) -> Option<EntityKind> {
        match self {
            EntityKind::Org => None,
            EntityKind::Workspace | EntityKind::User | EntityKind::Agent => Some(EntityKind::Org),
            EntityKind::Team => Some(EntityKind::Workspace),
        }
    }

    pub fn is_principal(self) -> bool {
        matches!(self, EntityKind::User | EntityKind::Agent)
    }
}

/// One entry of the directory (D1 table `directory`): an organization, workspace, team, user
/// or agent. Workspaces, users and agents belong to an org; teams to a workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    pub id: String,
    pub kind: EntityKind,
    pub parent_id: Option<String>,
    pub name: String,
    /// Users: e-mail from the identity provider.
    pub email: Option<String>,
    /// Users provisioned from an identity provider: `{issuer}|{sub}`.
    pub external_subject: Option<String>,
    pub created_at: String,
}

/// The directory: hierarchy, principals, memberships and grants. Callers check that the
/// entries they link (parents, members, groups, an IdP's organization) exist; D1 also refuses
/// dangling links by foreign key.
#[async_trait(?Send)]
pub trait Directory {
    /// `Conflict` if the id (or external subject) exists.
    async fn create_entity(&self, e: &Entity) -> StoreResult<()>;
    async fn get_entity(&self, id: &str) -> StoreResult<Option<Entity>>;
    /// Entries of a kind (under `parent` if given), ordered by id, after `after`, at most `limit`:
    /// a keyset page, so `after` need not exist and rows added or removed elsewhere in the
    /// walk neither repeat nor skip the others.
    async fn list_entities(
        &self,
        kind: EntityKind,
        parent: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Entity>>;
    /// Replaces name and email only (kind, parent, external subject and creation time are
    /// fixed); `false` if no such entry.
    async fn update_entity(&self, e: &Entity) -> StoreResult<bool>;
    /// Deletes an entry with its memberships (as member or as group) and, for a principal,
    /// its admin roles; `false` if no such entry. Callers first check `count_dependents`.
    async fn delete_entity(&self, id: &str) -> StoreResult<bool>;
    /// Entries whose parent is `id`, members of it, servers and virtual servers it owns, and
    /// identity providers it trusts (a non-empty group or an organization that owns or trusts
    /// something cannot be deleted). 0 for an unknown id.
    async fn count_dependents(&self, id: &str) -> StoreResult<usize>;
    /// Idempotent: adding a member twice leaves one membership.
    async fn add_member(&self, principal_id: &str, group_id: &str, at: &str) -> StoreResult<()>;
    /// `false` if it was not a member.
    async fn remove_member(&self, principal_id: &str, group_id: &str) -> StoreResult<bool>;
    /// Principal ids that are members of a workspace or team, each once, ordered by id.
    async fn list_members(&self, group_id: &str) -> StoreResult<Vec<String>>;
    /// A principal with its org, workspaces (direct, and those of its teams; sorted, each once)
    /// and teams (sorted); `None` for an unknown id or an entry that is not a user or agent.
    async fn identity(&self, principal_id: &str) -> StoreResult<Option<Identity>>;
    /// Every principal's identity (for "who can use …" questions), ordered by principal id.
    async fn all_identities(&self) -> StoreResult<Vec<Identity>>;
    /// `Conflict` if the id exists.
    async fn create_grant(&self, g: &Grant) -> StoreResult<()>;
    /// All grants, ordered by id.
    async fn list_grants(&self) -> StoreResult<Vec<Grant>>;
    async fn delete_grant(&self, id: &str) -> StoreResult<bool>;
    /// Grants whose subject is one of `subject_ids`, ordered by id (none for an empty slice).
    async fn grants_for(&self, subject_ids: &[String]) -> StoreResult<Vec<Grant>>;
    /// The user provisioned from an identity provider with this `{issuer}|{sub}`.
    async fn find_by_external_subject(&self, external_subject: &str) -> StoreResult<Option<Entity>>;
    /// `Conflict` if the id exists or the organization already trusts the issuer.
    async fn create_idp(&self, idp: &IdentityProvider) -> StoreResult<()>;
    /// Every identity provider, ordered by id.
    async fn list_idps(&self) -> StoreResult<Vec<IdentityProvider>>;
    /// Every organization's trust of this issuer (several may share one), ordered by id.
    async fn idps_by_issuer(&self, issuer: &str) -> StoreResult<Vec<IdentityProvider>>;
    async fn delete_idp(&self, id: &str) -> StoreResult<bool>;
    /// `Conflict` if the id exists or the same role on the same scope is already held.
    async fn create_role(&self, r: &RoleAssignment) -> StoreResult<()>;
    /// Every role assignment, ordered by id.
    async fn list_roles(&self) -> StoreResult<Vec<RoleAssignment>>;
    /// A principal's role assignments, ordered by id.
    async fn roles_of(&self, principal_id: &str) -> StoreResult<Vec<RoleAssignment>>;
    async fn delete_role(&self, id: &str) -> StoreResult<bool>;
    /// The organization's argument capture setting (`None`: not set, or no such organization).
    async fn org_capture(&self, org_id: &str) -> StoreResult<Option<crate::observe::CaptureMode>>;
    /// Sets (or, with `None`, clears) an organization's argument capture setting. The caller
    /// checks that the organization exists; the setting goes when the organization does.
    async fn set_org_capture(&self, org_id: &str, capture: Option<crate::observe::CaptureMode>) -> StoreResult<()>;
}

/// A gateway API key (D1 table `api_keys`). The secret itself is never stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub id: String,
    pub name: String,
    /// The first characters of the key, for people to recognise it.
    pub prefix: String,
    /// Hex SHA-256 of the whole key.
    #[serde(skip_serializing)]
    pub key_hash: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    /// The user or agent the key acts as.
    pub principal_id: String,
    /// RFC 3339; the key fails after it.
    pub expires_at: Option<String>,
}

/// Servers and their tool catalogs. A catalog names each tool once.
#[async_trait(?Send)]
pub trait Registry {
    /// Inserts a server and its catalog atomically. `Conflict` if the slug exists or the
    /// catalog names a tool twice; then nothing is stored.
    async fn create_server(&self, server: &ServerRecord, tools: &[ToolRecord]) -> StoreResult<()>;
    async fn get_server(&self, slug: &str) -> StoreResult<Option<ServerRecord>>;
    /// All servers, ordered by slug.
    async fn list_servers(&self) -> StoreResult<Vec<ServerRecord>>;
    /// Replaces the mutable fields of an existing server (all but the owner `org_id` and
    /// `created_at`, fixed at registration); its catalog is untouched; `false` if it does not
    /// exist (nothing is created).
    async fn update_server(&self, server: &ServerRecord) -> StoreResult<bool>;
    /// Deletes a server and its catalog; `false` if it did not exist.
    async fn delete_server(&self, slug: &str) -> StoreResult<bool>;
    /// Updates the server as `update_server` does and replaces its whole catalog in one
    /// transaction: readers see the old catalog or the new one, never a mix, and a refused
    /// catalog leaves both as they were. `false`, storing nothing, if the server does not exist
    /// — a sync that ends after the server was deleted never brings it back.
    async fn replace_catalog(&self, server: &ServerRecord, tools: &[ToolRecord]) -> StoreResult<bool>;
    /// A server's tools, ordered by name (empty for an unknown server).
    async fn list_tools(&self, slug: &str) -> StoreResult<Vec<ToolRecord>>;
    /// The same, shared: a store that keeps catalogs (the isolate snapshot) hands out the one it
    /// holds instead of a copy, for the per-call reads (pinning a call to its catalog).
    async fn tools_of(&self, slug: &str) -> StoreResult<std::rc::Rc<Vec<ToolRecord>>> {
        Ok(std::rc::Rc::new(self.list_tools(slug).await?))
    }
    /// Every tool of every server, ordered by server slug then name (one query, for `/mcp`).
    async fn list_all_tools(&self) -> StoreResult<Vec<ToolRecord>>;
    /// Approves a tool's current definition (status `active`, approved hash and definition
    /// set from it, no quarantine reason); idempotent; `false` if no such tool.
    async fn approve_tool(&self, slug: &str, name: &str) -> StoreResult<bool>;
    /// A counter that changes whenever what some client may list changes (catalogs, approvals,
    /// servers, virtual servers); live streams poll it to send `list_changed`. Each bump makes
    /// it strictly larger.
    async fn catalog_generation(&self) -> StoreResult<u64>;
    async fn bump_catalog_generation(&self) -> StoreResult<()>;
}

/// A client registered for the MCP OAuth flow (dynamic registration; metadata-document clients
/// are fetched, not stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub created_at: String,
}

/// An authorization code, access token or refresh token of the MCP OAuth flow, stored only as
/// a hash (D1 table `oauth_tokens`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OAuthToken {
    /// Hex SHA-256 of the token.
    pub hash: String,
    /// `code`, `access` or `refresh`.
    pub kind: String,
    /// Every token descending from one authorization shares a family; replay revokes it.
    pub family: String,
    pub client_id: String,
    pub user_id: String,
    /// The protected resource (RFC 8707) the token is for.
    pub resource: String,
    pub scope: String,
    /// Codes: where they may be redeemed and the PKCE challenge.
    pub redirect_uri: Option<String>,
    pub code_challenge: Option<String>,
    /// Milliseconds since the epoch.
    pub expires_at_ms: u64,
}

/// OAuth state of the MCP authorization flow. Nothing here is ever overwritten: every insert
/// of an existing key is `Conflict` (a registered client's redirect URIs, a pending
/// authorization and a token are each written once).
#[async_trait(?Send)]
pub trait OAuthStore {
    /// `Conflict` if the client id exists.
    async fn put_client(&self, c: &OAuthClient) -> StoreResult<()>;
    async fn get_client(&self, client_id: &str) -> StoreResult<Option<OAuthClient>>;
    /// A pending authorization (between `/oauth/authorize` and `/oauth/callback`, or a connect
    /// ticket); `Conflict` if the id exists.
    async fn put_pending(&self, id: &str, data: &Value, expires_at_ms: u64) -> StoreResult<()>;
    /// Reads and deletes a pending authorization (single use); `None` if absent or expired
    /// (`now_ms >= expires_at_ms`). An expired entry is deleted too.
    async fn take_pending(&self, id: &str, now_ms: u64) -> StoreResult<Option<Value>>;
    /// `Conflict` if the hash exists.
    async fn put_token(&self, t: &OAuthToken) -> StoreResult<()>;
    /// The token, if it exists and its family is not revoked (expiry and consumption are the
    /// caller's checks: expired and consumed tokens are returned).
    async fn get_token(&self, hash: &str) -> StoreResult<Option<OAuthToken>>;
    /// Marks a single-use token used; `false` if it already was (a replay) or is unknown.
    async fn consume_token(&self, hash: &str, now_ms: u64) -> StoreResult<bool>;
    /// Revokes every token of a family, including tokens stored in it afterwards (a refresh
    /// racing the replay that revoked it); idempotent.
    async fn revoke_family(&self, family: &str) -> StoreResult<()>;
    /// A new web console session (D1 table `console_sessions`); `Conflict` if the hash exists.
    async fn put_console_session(&self, s: &ConsoleSession) -> StoreResult<()>;
    /// The session with this id hash, expired or not (expiry is the caller's check).
    async fn get_console_session(&self, hash: &str) -> StoreResult<Option<ConsoleSession>>;
    /// Records activity on a session (its idle deadline moves); `false` if it is gone.
    async fn touch_console_session(&self, hash: &str, last_seen_ms: u64) -> StoreResult<bool>;
    /// Ends a session (sign-out, expiry); `false` if it was gone already. Also drops every
    /// session whose absolute deadline passed before `now_ms`.
    async fn delete_console_session(&self, hash: &str, now_ms: u64) -> StoreResult<bool>;
}

/// A signed-in web console session (docs/console.md), stored only by the SHA-256 of its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsoleSession {
    /// Hex SHA-256 of the session id (the id itself lives only in the browser's cookie).
    pub hash: String,
    /// The principal the session acts as, or `bootstrap:{hash}` for the bootstrap admin token
    /// (a hash of the token, so rotating `ADMIN_TOKEN` ends those sessions).
    pub principal_id: String,
    /// How it signed in: `oidc` or `key`.
    pub via: String,
    pub created_at_ms: u64,
    pub last_seen_ms: u64,
    /// The absolute deadline.
    pub expires_at_ms: u64,
}

/// Key–value storage for sealed secrets and their metadata (Workers KV). Values under `cred:`
/// are sealed by `crate::vault`; keys are documented in docs/storage.md.
#[async_trait(?Send)]
pub trait SecretStore {
    async fn get_secret(&self, key: &str) -> StoreResult<Option<String>>;
    /// Stores or replaces the value.
    async fn put_secret(&self, key: &str, value: &str) -> StoreResult<()>;
    /// Idempotent: deleting an absent key is `Ok`.
    async fn delete_secret(&self, key: &str) -> StoreResult<()>;
    /// Every key under `prefix`, in key order, however many pages the backend needs.
    async fn list_secrets(&self, prefix: &str) -> StoreResult<Vec<String>>;
}

/// The version of the stored state as isolates snapshot it (D1 table `snapshot_version`): every
/// write bumps it, so an isolate whose snapshot was built from an older version drops it.
#[async_trait(?Send)]
pub trait Versions {
    async fn snapshot_version(&self) -> StoreResult<u64>;
    /// Adds one and returns the new version (atomically: concurrent bumps each get their own).
    async fn bump_snapshot_version(&self) -> StoreResult<u64>;
}

/// Everything the gateway stores, as one handle (for work that outlives a request's borrows).
pub trait Store: Registry + ApiKeys + VirtualServers + Directory + OAuthStore + Policies + Changes {}
impl<T: Registry + ApiKeys + VirtualServers + Directory + OAuthStore + Policies + Changes> Store for T {}

/// Virtual servers.
#[async_trait(?Send)]
pub trait VirtualServers {
    /// `Conflict` if the slug exists.
    async fn create_virtual(&self, v: &VirtualServer) -> StoreResult<()>;
    async fn get_virtual(&self, slug: &str) -> StoreResult<Option<VirtualServer>>;
    /// All, ordered by slug.
    async fn list_virtual(&self) -> StoreResult<Vec<VirtualServer>>;
    /// Replaces all but the owner `org_id` and `created_at` (fixed at creation); `false` if it
    /// does not exist (nothing is created).
    async fn update_virtual(&self, v: &VirtualServer) -> StoreResult<bool>;
    async fn delete_virtual(&self, slug: &str) -> StoreResult<bool>;
}

/// Gateway API keys.
#[async_trait(?Send)]
pub trait ApiKeys {
    /// Stores the record as given; `Conflict` if the id or the hash exists.
    async fn create_key(&self, key: &ApiKeyRecord) -> StoreResult<()>;
    /// All keys, revoked ones included, newest first (`created_at` descending, then id).
    async fn list_keys(&self) -> StoreResult<Vec<ApiKeyRecord>>;
    /// The key with this hash, revoked or expired or not (callers decide).
    async fn find_key_by_hash(&self, hash: &str) -> StoreResult<Option<ApiKeyRecord>>;
    /// Marks a key revoked at `at`; `false` if no such key or already revoked (the first
    /// revocation time stays).
    async fn revoke_key(&self, id: &str, at: &str) -> StoreResult<bool>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(era: Era, legacy_version: Option<&str>) -> ServerRecord {
        serde_json::from_value(serde_json::json!({
            "slug": "s", "name": "S", "url": "https://s.example/mcp", "description": null, "owner": null,
            "status": "active", "era": era, "protocol_version": "2026-07-28", "timeout_ms": null,
            "server_info": null, "capabilities": null, "instructions": null, "last_synced_at": null,
            "last_sync_error": null, "new_tool_policy": "approve", "created_at": "", "updated_at": "",
            "legacy_version": legacy_version,
        }))
        .unwrap()
    }

    #[test]
    fn dual_era_servers_meet_each_client_in_its_own_era() {
        let dual = server(Era::Modern, Some("2025-11-25"));
        let legacy = dual.clone().for_client(Era::Legacy);
        assert_eq!(legacy.era, Some(Era::Legacy));
        assert_eq!(legacy.protocol_version.as_deref(), Some("2025-11-25"));
        assert_eq!(dual.clone().for_client(Era::Modern), dual);
        // Modern only: a legacy client is translated for, as before.
        let modern = server(Era::Modern, None);
        assert_eq!(modern.clone().for_client(Era::Legacy), modern);
    }
}
