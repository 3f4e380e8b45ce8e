//! D1 implementations of the registry and API-key stores (schema: migrations/, docs/storage.md).
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

use crate::mcp::version::Era;
use crate::policy::access::{Grant, Identity};
use crate::policy::oidc::IdentityProvider;
use crate::policy::roles::RoleAssignment;
use crate::store::{
    ApiKeyRecord, ApiKeys, Directory, Entity, EntityKind, Registry, ServerRecord, StoreError, StoreResult, ToolRecord,
    VirtualServer, VirtualServers,
};

pub struct D1Store {
    db: D1Database,
}

impl D1Store {
    pub fn new(db: D1Database) -> Self {
        Self { db }
    }

    fn stmt(&self, sql: &str, args: &[JsValue]) -> StoreResult<D1PreparedStatement> {
        self.db.prepare(sql).bind(args).map_err(backend)
    }

    /// Every row of a query.
    async fn all<T: serde::de::DeserializeOwned>(&self, sql: &str, args: &[JsValue]) -> StoreResult<Vec<T>> {
        self.stmt(sql, args)?
            .all()
            .await
            .map_err(backend)?
            .results()
            .map_err(backend)
    }

    /// The first row of a query, if any.
    async fn first<T: serde::de::DeserializeOwned>(&self, sql: &str, args: &[JsValue]) -> StoreResult<Option<T>> {
        self.stmt(sql, args)?.first(None).await.map_err(backend)
    }

    /// Runs a statement; returns how many rows it changed.
    async fn run(&self, sql: &str, args: &[JsValue]) -> StoreResult<usize> {
        let res = self.stmt(sql, args)?.run().await.map_err(backend)?;
        Ok(res.meta().map_err(backend)?.and_then(|m| m.changes).unwrap_or(0))
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    let text = e.to_string();
    if text.contains("UNIQUE constraint failed") || text.contains("PRIMARY KEY") {
        StoreError::Conflict
    } else {
        StoreError::Backend(text)
    }
}

fn text(v: &str) -> JsValue {
    JsValue::from_str(v)
}

fn opt(v: &Option<String>) -> JsValue {
    v.as_deref().map(JsValue::from_str).unwrap_or(JsValue::NULL)
}

fn json_opt(v: &Option<Value>) -> JsValue {
    v.as_ref()
        .map(|j| JsValue::from_str(&j.to_string()))
        .unwrap_or(JsValue::NULL)
}

fn parse_json(v: Option<String>) -> Option<Value> {
    v.and_then(|t| serde_json::from_str(&t).ok())
}

#[derive(Deserialize)]
struct ServerRow {
    slug: String,
    name: String,
    url: String,
    description: Option<String>,
    owner: Option<String>,
    status: String,
    era: Option<String>,
    protocol_version: Option<String>,
    timeout_ms: Option<f64>,
    server_info: Option<String>,
    capabilities: Option<String>,
    instructions: Option<String>,
    last_synced_at: Option<String>,
    last_sync_error: Option<String>,
    new_tool_policy: String,
    created_at: String,
    updated_at: String,
    org_id: Option<String>,
    legacy_version: Option<String>,
}

impl From<ServerRow> for ServerRecord {
    fn from(r: ServerRow) -> Self {
        ServerRecord {
            slug: r.slug,
            name: r.name,
            url: r.url,
            description: r.description,
            owner: r.owner,
            status: r.status,
            era: r.era.as_deref().and_then(Era::parse),
            protocol_version: r.protocol_version,
            timeout_ms: r.timeout_ms.map(|t| t as u32),
            server_info: parse_json(r.server_info),
            capabilities: parse_json(r.capabilities),
            instructions: r.instructions,
            last_synced_at: r.last_synced_at,
            last_sync_error: r.last_sync_error,
            new_tool_policy: r.new_tool_policy,
            created_at: r.created_at,
            updated_at: r.updated_at,
            org_id: r.org_id,
            legacy_version: r.legacy_version,
        }
    }
}

#[derive(Deserialize)]
struct ToolRow {
    server_slug: String,
    name: String,
    title: Option<String>,
    description: Option<String>,
    input_schema: String,
    output_schema: Option<String>,
    annotations: Option<String>,
    definition_hash: String,
    discovered_at: String,
    status: String,
    approved_hash: Option<String>,
    approved_definition: Option<String>,
}

impl From<ToolRow> for ToolRecord {
    fn from(r: ToolRow) -> Self {
        ToolRecord {
            server_slug: r.server_slug,
            name: r.name,
            title: r.title,
            description: r.description,
            input_schema: serde_json::from_str(&r.input_schema).unwrap_or(Value::Null),
            output_schema: parse_json(r.output_schema),
            annotations: parse_json(r.annotations),
            definition_hash: r.definition_hash,
            discovered_at: r.discovered_at,
            status: r.status,
            approved_hash: r.approved_hash,
            approved_definition: parse_json(r.approved_definition),
        }
    }
}

const SERVER_COLUMNS: &str = "slug, name, url, description, owner, status, era, protocol_version, timeout_ms, \
     server_info, capabilities, instructions, last_synced_at, last_sync_error, new_tool_policy, created_at, updated_at, org_id, legacy_version";

fn server_args(sv: &ServerRecord) -> Vec<JsValue> {
    vec![
        text(&sv.slug),
        text(&sv.name),
        text(&sv.url),
        opt(&sv.description),
        opt(&sv.owner),
        text(&sv.status),
        sv.era.map(|e| JsValue::from_str(e.as_str())).unwrap_or(JsValue::NULL),
        opt(&sv.protocol_version),
        sv.timeout_ms
            .map(|t| JsValue::from_f64(t as f64))
            .unwrap_or(JsValue::NULL),
        json_opt(&sv.server_info),
        json_opt(&sv.capabilities),
        opt(&sv.instructions),
        opt(&sv.last_synced_at),
        opt(&sv.last_sync_error),
        text(&sv.new_tool_policy),
        text(&sv.created_at),
        text(&sv.updated_at),
        opt(&sv.org_id),
        opt(&sv.legacy_version),
    ]
}

impl D1Store {
    fn upsert_server(&self, server: &ServerRecord, insert_only: bool) -> StoreResult<D1PreparedStatement> {
        let verb = if insert_only { "INSERT" } else { "INSERT OR REPLACE" };
        self.stmt(
            &format!("{verb} INTO servers ({SERVER_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19)"),
            &server_args(server),
        )
    }

    fn tool_inserts(&self, tools: &[ToolRecord]) -> StoreResult<Vec<D1PreparedStatement>> {
        tools
            .iter()
            .map(|t| {
                self.stmt(
                    "INSERT INTO tools (server_slug, name, title, description, input_schema, output_schema, annotations, \
                     definition_hash, discovered_at, status, approved_hash, approved_definition) \
                     VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
                    &[
                        text(&t.server_slug),
                        text(&t.name),
                        opt(&t.title),
                        opt(&t.description),
                        text(&t.input_schema.to_string()),
                        json_opt(&t.output_schema),
                        json_opt(&t.annotations),
                        text(&t.definition_hash),
                        text(&t.discovered_at),
                        text(&t.status),
                        opt(&t.approved_hash),
                        json_opt(&t.approved_definition),
                    ],
                )
            })
            .collect()
    }

    /// Runs statements in one D1 batch, which D1 executes as a single transaction.
    async fn batch(&self, stmts: Vec<D1PreparedStatement>) -> StoreResult<()> {
        self.db.batch(stmts).await.map_err(backend)?;
        Ok(())
    }
}

#[async_trait(?Send)]
impl Registry for D1Store {
    async fn create_server(&self, server: &ServerRecord, tools: &[ToolRecord]) -> StoreResult<()> {
        let mut stmts = vec![self.upsert_server(server, true)?];
        stmts.extend(self.tool_inserts(tools)?);
        self.batch(stmts).await
    }

    async fn get_server(&self, slug: &str) -> StoreResult<Option<ServerRecord>> {
        let sql = format!("SELECT {SERVER_COLUMNS} FROM servers WHERE slug = ?1");
        Ok(self.first::<ServerRow>(&sql, &[text(slug)]).await?.map(Into::into))
    }

    async fn list_servers(&self) -> StoreResult<Vec<ServerRecord>> {
        let sql = format!("SELECT {SERVER_COLUMNS} FROM servers ORDER BY slug");
        Ok(self
            .all::<ServerRow>(&sql, &[])
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    async fn update_server(&self, server: &ServerRecord) -> StoreResult<bool> {
        // Same arguments as the INSERT: created_at (?16) and the owner (?18) are bound but not
        // used, so they stay as they were.
        let changed = self
            .run(
                "UPDATE servers SET name=?2, url=?3, description=?4, owner=?5, status=?6, era=?7, protocol_version=?8, \
                 timeout_ms=?9, server_info=?10, capabilities=?11, instructions=?12, last_synced_at=?13, \
                 last_sync_error=?14, new_tool_policy=?15, updated_at=?17, legacy_version=?19 WHERE slug=?1",
                &server_args(server),
            )
            .await?;
        Ok(changed > 0)
    }

    async fn delete_server(&self, slug: &str) -> StoreResult<bool> {
        if self.get_server(slug).await?.is_none() {
            return Ok(false);
        }
        self.batch(vec![
            self.stmt("DELETE FROM tools WHERE server_slug = ?1", &[text(slug)])?,
            self.stmt("DELETE FROM servers WHERE slug = ?1", &[text(slug)])?,
        ])
        .await?;
        Ok(true)
    }

    async fn replace_catalog(&self, server: &ServerRecord, tools: &[ToolRecord]) -> StoreResult<()> {
        let mut stmts = vec![
            self.stmt("DELETE FROM tools WHERE server_slug = ?1", &[text(&server.slug)])?,
            self.upsert_server(server, false)?,
        ];
        stmts.extend(self.tool_inserts(tools)?);
        self.batch(stmts).await
    }

    async fn list_tools(&self, slug: &str) -> StoreResult<Vec<ToolRecord>> {
        self.tools_where("WHERE server_slug = ?1 ORDER BY name", &[text(slug)])
            .await
    }

    async fn list_all_tools(&self) -> StoreResult<Vec<ToolRecord>> {
        self.tools_where("ORDER BY server_slug, name", &[]).await
    }

    async fn approve_tool(&self, slug: &str, name: &str) -> StoreResult<bool> {
        let Some(t) = self.list_tools(slug).await?.into_iter().find(|t| t.name == name) else {
            return Ok(false);
        };
        let approved = t.tool_json().to_string();
        self.run(
            "UPDATE tools SET status = 'active', approved_hash = definition_hash, approved_definition = ?3 \
             WHERE server_slug = ?1 AND name = ?2",
            &[text(slug), text(name), text(&approved)],
        )
        .await?;
        Ok(true)
    }

    async fn catalog_generation(&self) -> StoreResult<u64> {
        #[derive(Deserialize)]
        struct Gen {
            generation: f64,
        }
        let row: Option<Gen> = self
            .first("SELECT generation FROM catalog_state WHERE id = 1", &[])
            .await?;
        Ok(row.map(|g| g.generation as u64).unwrap_or(0))
    }

    async fn bump_catalog_generation(&self) -> StoreResult<()> {
        self.run("UPDATE catalog_state SET generation = generation + 1 WHERE id = 1", &[])
            .await?;
        Ok(())
    }
}

impl D1Store {
    async fn tools_where(&self, clause: &str, args: &[JsValue]) -> StoreResult<Vec<ToolRecord>> {
        let rows: Vec<ToolRow> = self.all(&format!("SELECT * FROM tools {clause}"), args).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}

#[derive(Deserialize)]
struct VirtualRow {
    slug: String,
    name: String,
    description: Option<String>,
    tools: String,
    created_at: String,
    updated_at: String,
    org_id: Option<String>,
}

impl From<VirtualRow> for VirtualServer {
    fn from(r: VirtualRow) -> Self {
        VirtualServer {
            slug: r.slug,
            name: r.name,
            description: r.description,
            tools: serde_json::from_str(&r.tools).unwrap_or_default(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            org_id: r.org_id,
        }
    }
}

fn virtual_args(v: &VirtualServer) -> Vec<JsValue> {
    vec![
        text(&v.slug),
        text(&v.name),
        opt(&v.description),
        text(&serde_json::to_string(&v.tools).unwrap_or_else(|_| "[]".into())),
        text(&v.created_at),
        text(&v.updated_at),
        opt(&v.org_id),
    ]
}

#[async_trait(?Send)]
impl VirtualServers for D1Store {
    async fn create_virtual(&self, v: &VirtualServer) -> StoreResult<()> {
        self.run(
            "INSERT INTO virtual_servers (slug, name, description, tools, created_at, updated_at, org_id) VALUES (?1,?2,?3,?4,?5,?6,?7)",
            &virtual_args(v),
        )
        .await?;
        Ok(())
    }

    async fn get_virtual(&self, slug: &str) -> StoreResult<Option<VirtualServer>> {
        let row: Option<VirtualRow> = self
            .first("SELECT * FROM virtual_servers WHERE slug = ?1", &[text(slug)])
            .await?;
        Ok(row.map(Into::into))
    }

    async fn list_virtual(&self) -> StoreResult<Vec<VirtualServer>> {
        let rows: Vec<VirtualRow> = self.all("SELECT * FROM virtual_servers ORDER BY slug", &[]).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn update_virtual(&self, v: &VirtualServer) -> StoreResult<bool> {
        let sql = "UPDATE virtual_servers SET name=?2, description=?3, tools=?4, updated_at=?6 WHERE slug=?1";
        // Without the owner (?7), which never changes.
        Ok(self.run(sql, &virtual_args(v)[..6]).await? > 0)
    }

    async fn delete_virtual(&self, slug: &str) -> StoreResult<bool> {
        Ok(self
            .run("DELETE FROM virtual_servers WHERE slug = ?1", &[text(slug)])
            .await?
            > 0)
    }
}

#[derive(Deserialize)]
struct KeyRow {
    id: String,
    name: String,
    prefix: String,
    key_hash: String,
    created_at: String,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
    principal_id: String,
    expires_at: Option<String>,
}

impl From<KeyRow> for ApiKeyRecord {
    fn from(r: KeyRow) -> Self {
        ApiKeyRecord {
            id: r.id,
            name: r.name,
            prefix: r.prefix,
            key_hash: r.key_hash,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
            principal_id: r.principal_id,
            expires_at: r.expires_at,
        }
    }
}

#[async_trait(?Send)]
impl ApiKeys for D1Store {
    async fn create_key(&self, k: &ApiKeyRecord) -> StoreResult<()> {
        self.run(
            "INSERT INTO api_keys (id, name, prefix, key_hash, created_at, principal_id, expires_at) \
             VALUES (?1,?2,?3,?4,?5,?6,?7)",
            &[
                text(&k.id),
                text(&k.name),
                text(&k.prefix),
                text(&k.key_hash),
                text(&k.created_at),
                text(&k.principal_id),
                opt(&k.expires_at),
            ],
        )
        .await?;
        Ok(())
    }

    async fn list_keys(&self) -> StoreResult<Vec<ApiKeyRecord>> {
        let rows: Vec<KeyRow> = self
            .all("SELECT * FROM api_keys ORDER BY created_at DESC, id", &[])
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn find_key_by_hash(&self, hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let row: Option<KeyRow> = self
            .first("SELECT * FROM api_keys WHERE key_hash = ?1", &[text(hash)])
            .await?;
        Ok(row.map(Into::into))
    }

    async fn revoke_key(&self, id: &str, at: &str) -> StoreResult<bool> {
        let sql = "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL";
        Ok(self.run(sql, &[text(id), text(at)]).await? > 0)
    }
}

#[derive(Deserialize)]
struct EntityRow {
    id: String,
    kind: String,
    parent_id: Option<String>,
    name: String,
    email: Option<String>,
    external_subject: Option<String>,
    created_at: String,
}

impl EntityRow {
    fn into_entity(self) -> Option<Entity> {
        Some(Entity {
            id: self.id,
            kind: EntityKind::parse(&self.kind)?,
            parent_id: self.parent_id,
            name: self.name,
            email: self.email,
            external_subject: self.external_subject,
            created_at: self.created_at,
        })
    }
}

#[derive(Deserialize)]
struct GrantRow {
    id: String,
    subject_kind: String,
    subject_id: String,
    resource_kind: String,
    resource: String,
    tool: Option<String>,
    effect: String,
    created_at: String,
}

impl GrantRow {
    /// Rows are checked by the schema; one that still does not parse is skipped (fail closed).
    fn into_grant(self) -> Option<Grant> {
        Some(Grant {
            id: self.id,
            subject_kind: parse_enum(&self.subject_kind)?,
            subject_id: self.subject_id,
            resource_kind: parse_enum(&self.resource_kind)?,
            resource: self.resource,
            tool: self.tool,
            effect: parse_enum(&self.effect)?,
            created_at: self.created_at,
        })
    }
}

fn parse_enum<T: serde::de::DeserializeOwned>(s: &str) -> Option<T> {
    serde_json::from_value(Value::String(s.to_string())).ok()
}

fn enum_text<T: serde::Serialize>(v: &T) -> JsValue {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => JsValue::from_str(&s),
        _ => JsValue::NULL,
    }
}

#[derive(Deserialize)]
struct RoleRow {
    id: String,
    principal_id: String,
    role: String,
    scope_id: String,
    org_id: String,
    created_at: String,
}

impl RoleRow {
    fn into_role(self) -> Option<RoleAssignment> {
        Some(RoleAssignment {
            id: self.id,
            principal_id: self.principal_id,
            role: parse_enum(&self.role)?,
            scope_id: self.scope_id,
            org_id: self.org_id,
            created_at: self.created_at,
        })
    }
}

#[derive(Deserialize)]
struct IdpRow {
    config: String,
}

#[derive(Deserialize)]
struct MemberRow {
    principal_id: String,
    group_id: String,
    kind: String,
    parent_id: Option<String>,
}

const ENTITY_COLUMNS: &str = "id, kind, parent_id, name, email, external_subject, created_at";

impl D1Store {
    /// Identities of the given principals (all of them when `only` is `None`).
    async fn identities(&self, only: Option<&str>) -> StoreResult<Vec<Identity>> {
        let (filter, args) = match only {
            Some(id) => ("AND id = ?1", vec![text(id)]),
            None => ("", vec![]),
        };
        let principals: Vec<EntityRow> = self
            .all(
                &format!("SELECT {ENTITY_COLUMNS} FROM directory WHERE kind IN ('user', 'agent') {filter}"),
                &args,
            )
            .await?;
        let mfilter = if only.is_some() {
            "WHERE m.principal_id = ?1"
        } else {
            ""
        };
        let members: Vec<MemberRow> = self
            .all(
                &format!(
                    "SELECT m.principal_id, m.group_id, d.kind, d.parent_id FROM memberships m \
                     JOIN directory d ON d.id = m.group_id {mfilter}"
                ),
                &args,
            )
            .await?;
        Ok(principals
            .into_iter()
            .map(|p| {
                let mut id = Identity {
                    principal_id: p.id.clone(),
                    kind: p.kind.clone(),
                    org_id: p.parent_id.clone().unwrap_or_default(),
                    ..Default::default()
                };
                for m in members.iter().filter(|m| m.principal_id == p.id) {
                    match m.kind.as_str() {
                        "team" => {
                            id.team_ids.push(m.group_id.clone());
                            id.workspace_ids.extend(m.parent_id.clone());
                        }
                        "workspace" => id.workspace_ids.push(m.group_id.clone()),
                        _ => {}
                    }
                }
                id.workspace_ids.sort();
                id.workspace_ids.dedup();
                id
            })
            .collect())
    }
}

#[async_trait(?Send)]
impl Directory for D1Store {
    async fn create_entity(&self, e: &Entity) -> StoreResult<()> {
        self.run(
            &format!("INSERT INTO directory ({ENTITY_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7)"),
            &[
                text(&e.id),
                text(e.kind.as_str()),
                opt(&e.parent_id),
                text(&e.name),
                opt(&e.email),
                opt(&e.external_subject),
                text(&e.created_at),
            ],
        )
        .await?;
        Ok(())
    }

    async fn get_entity(&self, id: &str) -> StoreResult<Option<Entity>> {
        let row: Option<EntityRow> = self
            .first(
                &format!("SELECT {ENTITY_COLUMNS} FROM directory WHERE id = ?1"),
                &[text(id)],
            )
            .await?;
        Ok(row.and_then(EntityRow::into_entity))
    }

    async fn list_entities(
        &self,
        kind: EntityKind,
        parent: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Entity>> {
        let rows: Vec<EntityRow> = self
            .all(
                &format!(
                    "SELECT {ENTITY_COLUMNS} FROM directory WHERE kind = ?1 AND (?2 IS NULL OR parent_id = ?2) \
                     AND (?3 IS NULL OR id > ?3) ORDER BY id LIMIT ?4"
                ),
                &[
                    text(kind.as_str()),
                    parent.map(JsValue::from_str).unwrap_or(JsValue::NULL),
                    after.map(JsValue::from_str).unwrap_or(JsValue::NULL),
                    JsValue::from_f64(limit as f64),
                ],
            )
            .await?;
        Ok(rows.into_iter().filter_map(EntityRow::into_entity).collect())
    }

    async fn update_entity(&self, e: &Entity) -> StoreResult<bool> {
        let sql = "UPDATE directory SET name = ?2, email = ?3 WHERE id = ?1";
        Ok(self.run(sql, &[text(&e.id), text(&e.name), opt(&e.email)]).await? > 0)
    }

    async fn delete_entity(&self, id: &str) -> StoreResult<bool> {
        let existed = self.get_entity(id).await?.is_some();
        self.batch(vec![
            self.stmt(
                "DELETE FROM memberships WHERE principal_id = ?1 OR group_id = ?1",
                &[text(id)],
            )?,
            self.stmt("DELETE FROM directory WHERE id = ?1", &[text(id)])?,
        ])
        .await?;
        Ok(existed)
    }

    async fn count_dependents(&self, id: &str) -> StoreResult<usize> {
        #[derive(Deserialize)]
        struct N {
            n: f64,
        }
        let row: Option<N> = self
            .first(
                "SELECT (SELECT COUNT(*) FROM directory WHERE parent_id = ?1) + \
                 (SELECT COUNT(*) FROM memberships WHERE group_id = ?1) + \
                 (SELECT COUNT(*) FROM servers WHERE org_id = ?1) + \
                 (SELECT COUNT(*) FROM virtual_servers WHERE org_id = ?1) AS n",
                &[text(id)],
            )
            .await?;
        Ok(row.map(|r| r.n as usize).unwrap_or(0))
    }

    async fn add_member(&self, principal_id: &str, group_id: &str, at: &str) -> StoreResult<()> {
        let sql = "INSERT OR IGNORE INTO memberships (principal_id, group_id, created_at) VALUES (?1, ?2, ?3)";
        self.run(sql, &[text(principal_id), text(group_id), text(at)]).await?;
        Ok(())
    }

    async fn remove_member(&self, principal_id: &str, group_id: &str) -> StoreResult<bool> {
        let sql = "DELETE FROM memberships WHERE principal_id = ?1 AND group_id = ?2";
        Ok(self.run(sql, &[text(principal_id), text(group_id)]).await? > 0)
    }

    async fn list_members(&self, group_id: &str) -> StoreResult<Vec<String>> {
        #[derive(Deserialize)]
        struct P {
            principal_id: String,
        }
        let rows: Vec<P> = self
            .all(
                "SELECT principal_id FROM memberships WHERE group_id = ?1 ORDER BY principal_id",
                &[text(group_id)],
            )
            .await?;
        Ok(rows.into_iter().map(|r| r.principal_id).collect())
    }

    async fn identity(&self, principal_id: &str) -> StoreResult<Option<Identity>> {
        Ok(self.identities(Some(principal_id)).await?.into_iter().next())
    }

    async fn all_identities(&self) -> StoreResult<Vec<Identity>> {
        self.identities(None).await
    }

    async fn create_grant(&self, g: &Grant) -> StoreResult<()> {
        self.run(
            "INSERT INTO grants (id, subject_kind, subject_id, resource_kind, resource, tool, effect, created_at) \
             VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
            &[
                text(&g.id),
                enum_text(&g.subject_kind),
                text(&g.subject_id),
                enum_text(&g.resource_kind),
                text(&g.resource),
                opt(&g.tool),
                enum_text(&g.effect),
                text(&g.created_at),
            ],
        )
        .await?;
        Ok(())
    }

    async fn list_grants(&self) -> StoreResult<Vec<Grant>> {
        let rows: Vec<GrantRow> = self.all("SELECT * FROM grants ORDER BY id", &[]).await?;
        Ok(rows.into_iter().filter_map(GrantRow::into_grant).collect())
    }

    async fn delete_grant(&self, id: &str) -> StoreResult<bool> {
        Ok(self.run("DELETE FROM grants WHERE id = ?1", &[text(id)]).await? > 0)
    }

    async fn find_by_external_subject(&self, external_subject: &str) -> StoreResult<Option<Entity>> {
        let sql = format!("SELECT {ENTITY_COLUMNS} FROM directory WHERE external_subject = ?1");
        let row: Option<EntityRow> = self.first(&sql, &[text(external_subject)]).await?;
        Ok(row.and_then(EntityRow::into_entity))
    }

    async fn create_idp(&self, idp: &IdentityProvider) -> StoreResult<()> {
        let config = serde_json::to_string(idp).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.run(
            "INSERT INTO identity_providers (id, org_id, issuer, config, created_at) VALUES (?1,?2,?3,?4,?5)",
            &[
                text(&idp.id),
                text(&idp.org_id),
                text(&idp.issuer),
                text(&config),
                text(&idp.created_at),
            ],
        )
        .await?;
        Ok(())
    }

    async fn list_idps(&self) -> StoreResult<Vec<IdentityProvider>> {
        let rows: Vec<IdpRow> = self
            .all("SELECT config FROM identity_providers ORDER BY id", &[])
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| serde_json::from_str(&r.config).ok())
            .collect())
    }

    async fn idps_by_issuer(&self, issuer: &str) -> StoreResult<Vec<IdentityProvider>> {
        let rows: Vec<IdpRow> = self
            .all(
                "SELECT config FROM identity_providers WHERE issuer = ?1 ORDER BY id",
                &[text(issuer)],
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| serde_json::from_str(&r.config).ok())
            .collect())
    }

    async fn delete_idp(&self, id: &str) -> StoreResult<bool> {
        Ok(self
            .run("DELETE FROM identity_providers WHERE id = ?1", &[text(id)])
            .await?
            > 0)
    }

    async fn create_role(&self, r: &RoleAssignment) -> StoreResult<()> {
        self.run(
            "INSERT INTO admin_roles (id, principal_id, role, scope_id, org_id, created_at) VALUES (?1,?2,?3,?4,?5,?6)",
            &[
                text(&r.id),
                text(&r.principal_id),
                enum_text(&r.role),
                text(&r.scope_id),
                text(&r.org_id),
                text(&r.created_at),
            ],
        )
        .await?;
        Ok(())
    }

    async fn list_roles(&self) -> StoreResult<Vec<RoleAssignment>> {
        let rows: Vec<RoleRow> = self.all("SELECT * FROM admin_roles ORDER BY id", &[]).await?;
        Ok(rows.into_iter().filter_map(RoleRow::into_role).collect())
    }

    async fn roles_of(&self, principal_id: &str) -> StoreResult<Vec<RoleAssignment>> {
        let sql = "SELECT * FROM admin_roles WHERE principal_id = ?1 ORDER BY id";
        let rows: Vec<RoleRow> = self.all(sql, &[text(principal_id)]).await?;
        Ok(rows.into_iter().filter_map(RoleRow::into_role).collect())
    }

    async fn delete_role(&self, id: &str) -> StoreResult<bool> {
        Ok(self.run("DELETE FROM admin_roles WHERE id = ?1", &[text(id)]).await? > 0)
    }

    async fn grants_for(&self, subject_ids: &[String]) -> StoreResult<Vec<Grant>> {
        if subject_ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (1..=subject_ids.len()).map(|i| format!("?{i}")).collect();
        let args: Vec<JsValue> = subject_ids.iter().map(|s| text(s)).collect();
        let sql = format!(
            "SELECT * FROM grants WHERE subject_id IN ({}) ORDER BY id",
            marks.join(",")
        );
        let rows: Vec<GrantRow> = self.all(&sql, &args).await?;
        Ok(rows.into_iter().filter_map(GrantRow::into_grant).collect())
    }
}

#[derive(Deserialize)]
struct DataRow {
    data: String,
}

#[async_trait(?Send)]
impl crate::store::OAuthStore for D1Store {
    async fn put_client(&self, c: &crate::store::OAuthClient) -> StoreResult<()> {
        let meta = serde_json::to_string(c).map_err(|e| StoreError::Backend(e.to_string()))?;
        let sql = "INSERT INTO oauth_clients (client_id, metadata, created_at) VALUES (?1, ?2, ?3)";
        self.run(sql, &[text(&c.client_id), text(&meta), text(&c.created_at)])
            .await?;
        Ok(())
    }

    async fn get_client(&self, client_id: &str) -> StoreResult<Option<crate::store::OAuthClient>> {
        #[derive(Deserialize)]
        struct R {
            metadata: String,
        }
        let row: Option<R> = self
            .first(
                "SELECT metadata FROM oauth_clients WHERE client_id = ?1",
                &[text(client_id)],
            )
            .await?;
        Ok(row.and_then(|r| serde_json::from_str(&r.metadata).ok()))
    }

    async fn put_pending(&self, id: &str, data: &Value, expires_at_ms: u64) -> StoreResult<()> {
        let sql = "INSERT INTO oauth_pending (id, data, expires_at_ms) VALUES (?1, ?2, ?3)";
        self.run(
            sql,
            &[
                text(id),
                text(&data.to_string()),
                JsValue::from_f64(expires_at_ms as f64),
            ],
        )
        .await?;
        Ok(())
    }

    async fn take_pending(&self, id: &str, now_ms: u64) -> StoreResult<Option<Value>> {
        let row: Option<DataRow> = self
            .first(
                "SELECT data FROM oauth_pending WHERE id = ?1 AND expires_at_ms > ?2",
                &[text(id), JsValue::from_f64(now_ms as f64)],
            )
            .await?;
        // Single use: whoever deletes the row owns it.
        let deleted = self.run("DELETE FROM oauth_pending WHERE id = ?1", &[text(id)]).await?;
        Ok(row
            .filter(|_| deleted > 0)
            .and_then(|r| serde_json::from_str(&r.data).ok()))
    }

    async fn put_token(&self, t: &crate::store::OAuthToken) -> StoreResult<()> {
        let data = serde_json::to_string(t).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.run(
            "INSERT INTO oauth_tokens (hash, kind, family, data, expires_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            &[
                text(&t.hash),
                text(&t.kind),
                text(&t.family),
                text(&data),
                JsValue::from_f64(t.expires_at_ms as f64),
            ],
        )
        .await?;
        Ok(())
    }

    async fn get_token(&self, hash: &str) -> StoreResult<Option<crate::store::OAuthToken>> {
        let row: Option<DataRow> = self
            .first(
                "SELECT data FROM oauth_tokens t WHERE hash = ?1 AND revoked = 0 \
                 AND NOT EXISTS (SELECT 1 FROM oauth_tokens f WHERE f.family = t.family AND f.revoked = 1)",
                &[text(hash)],
            )
            .await?;
        Ok(row.and_then(|r| serde_json::from_str(&r.data).ok()))
    }

    async fn consume_token(&self, hash: &str, now_ms: u64) -> StoreResult<bool> {
        let sql = "UPDATE oauth_tokens SET consumed_at_ms = ?2 WHERE hash = ?1 AND consumed_at_ms IS NULL";
        Ok(self.run(sql, &[text(hash), JsValue::from_f64(now_ms as f64)]).await? > 0)
    }

    async fn revoke_family(&self, family: &str) -> StoreResult<()> {
        self.run("UPDATE oauth_tokens SET revoked = 1 WHERE family = ?1", &[text(family)])
            .await?;
        Ok(())
    }
}
