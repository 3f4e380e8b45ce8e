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

pub(super) fn insert_virtual(v: &VirtualServer) -> Sql {
    Sql(
        "INSERT INTO virtual_servers (slug, name, description, tools, created_at, updated_at, org_id) VALUES (?1,?2,?3,?4,?5,?6,?7)".into(),
        virtual_args(v),
    )
}

/// Without the owner (?7), which never changes.
pub(super) fn update_virtual(v: &VirtualServer) -> Sql {
    let mut args = virtual_args(v);
    args.truncate(6);
    Sql(
        "UPDATE virtual_servers SET name=?2, description=?3, tools=?4, updated_at=?6 WHERE slug=?1".into(),
        args,
    )
}

pub(super) fn delete_virtual(slug: &str) -> Sql {
    Sql("DELETE FROM virtual_servers WHERE slug = ?1".into(), vec![text(slug)])
}

#[async_trait(?Send)]
impl VirtualServers for D1Store {
    async fn create_virtual(&self, v: &VirtualServer) -> StoreResult<()> {
        self.run_sql(insert_virtual(v)).await?;
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
        Ok(self.run_sql(update_virtual(v)).await? > 0)
    }

    async fn delete_virtual(&self, slug: &str) -> StoreResult<bool> {
        Ok(self.run_sql(delete_virtual(slug)).await? > 0)
    }
}
