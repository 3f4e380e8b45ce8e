//! Virtual servers in D1 (`virtual_servers`).
use async_trait::async_trait;
use serde::Deserialize;
use wasm_bindgen::JsValue;

use crate::store::{StoreResult, VirtualServer, VirtualServers};

use super::*;

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
