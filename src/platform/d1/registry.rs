//! The server registry and tool catalogs in D1 (`servers`, `tools`, `catalog_generation`).
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use wasm_bindgen::JsValue;

use crate::mcp::version::Era;
use crate::store::{Registry, ServerRecord, StoreResult, ToolRecord};

use super::*;

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
    total_timeout_ms: Option<f64>,
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
    #[serde(default)]
    capture: Option<String>,
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
            total_timeout_ms: r.total_timeout_ms.map(|t| t as u32),
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
            capture: r.capture.as_deref().and_then(crate::observe::CaptureMode::parse),
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
    #[serde(default)]
    quarantine_reason: Option<String>,
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
            quarantine_reason: r.quarantine_reason,
        }
    }
}

const SERVER_COLUMNS: &str = "slug, name, url, description, owner, status, era, protocol_version, timeout_ms, \
     server_info, capabilities, instructions, last_synced_at, last_sync_error, new_tool_policy, created_at, updated_at, org_id, legacy_version, total_timeout_ms, capture";

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
        sv.total_timeout_ms
            .map(|t| JsValue::from_f64(t as f64))
            .unwrap_or(JsValue::NULL),
        sv.capture
            .map(|c| JsValue::from_str(c.as_str()))
            .unwrap_or(JsValue::NULL),
    ]
}

/// Same arguments as the INSERT: created_at (?16) and the owner (?18) are bound but not used,
/// so they stay as registered.
const UPDATE_SERVER: &str = "UPDATE servers SET name=?2, url=?3, description=?4, owner=?5, status=?6, era=?7, \
     protocol_version=?8, timeout_ms=?9, server_info=?10, capabilities=?11, instructions=?12, last_synced_at=?13, \
     last_sync_error=?14, new_tool_policy=?15, updated_at=?17, legacy_version=?19, total_timeout_ms=?20, capture=?21 WHERE slug=?1";

pub(super) fn update_server(sv: &ServerRecord) -> Sql {
    Sql(UPDATE_SERVER.into(), server_args(sv))
}

pub(super) fn delete_tools(slug: &str) -> Sql {
    Sql("DELETE FROM tools WHERE server_slug = ?1".into(), vec![text(slug)])
}

/// A server's catalog, then the server.
pub(super) fn delete_server(slug: &str) -> [Sql; 2] {
    [
        delete_tools(slug),
        Sql("DELETE FROM servers WHERE slug = ?1".into(), vec![text(slug)]),
    ]
}

impl D1Store {
    pub(super) fn insert_server(&self, server: &ServerRecord) -> StoreResult<D1PreparedStatement> {
        self.stmt(
            &format!("INSERT INTO servers ({SERVER_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21)"),
            &server_args(server),
        )
    }

    pub(super) fn tool_inserts(&self, tools: &[ToolRecord]) -> StoreResult<Vec<D1PreparedStatement>> {
        tools
            .iter()
            .map(|t| {
                self.stmt(
                    "INSERT INTO tools (server_slug, name, title, description, input_schema, output_schema, annotations, \
                     definition_hash, discovered_at, status, approved_hash, approved_definition, quarantine_reason) \
                     VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)",
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
                        opt(&t.quarantine_reason),
                    ],
                )
            })
            .collect()
    }
}

#[async_trait(?Send)]
impl Registry for D1Store {
    async fn create_server(&self, server: &ServerRecord, tools: &[ToolRecord]) -> StoreResult<()> {
        let mut stmts = vec![self.insert_server(server)?];
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
        Ok(self.run(UPDATE_SERVER, &server_args(server)).await? > 0)
    }

    async fn delete_server(&self, slug: &str) -> StoreResult<bool> {
        if self.get_server(slug).await?.is_none() {
            return Ok(false);
        }
        let stmts = delete_server(slug)
            .into_iter()
            .map(|s| self.prepared(s))
            .collect::<StoreResult<Vec<_>>>()?;
        self.batch(stmts).await?;
        Ok(true)
    }

    async fn replace_catalog(&self, server: &ServerRecord, tools: &[ToolRecord]) -> StoreResult<bool> {
        // An UPDATE, not an upsert: a server deleted while its upstream was read stays deleted
        // (its tools then fail the foreign key and the batch rolls back), and the owner and
        // creation time stay as registered.
        let mut stmts = vec![
            self.stmt(UPDATE_SERVER, &server_args(server))?,
            self.stmt("DELETE FROM tools WHERE server_slug = ?1", &[text(&server.slug)])?,
        ];
        stmts.extend(self.tool_inserts(tools)?);
        // The batch's own results say whether the UPDATE found the server.
        crate::platform::delay::storage().await;
        let results = match self.db.batch(stmts).await.map_err(backend) {
            Err(StoreError::Backend(e)) if e.contains("FOREIGN KEY") => return Ok(false),
            other => other?,
        };
        let updated = results
            .first()
            .and_then(|r| r.meta().ok().flatten())
            .and_then(|m| m.changes);
        Ok(updated.unwrap_or(0) > 0)
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
            "UPDATE tools SET status = 'active', approved_hash = definition_hash, approved_definition = ?3, \
             quarantine_reason = NULL WHERE server_slug = ?1 AND name = ?2",
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
