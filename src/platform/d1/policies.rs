//! Policies in D1 (`policies`).
use async_trait::async_trait;
use serde::Deserialize;
use wasm_bindgen::JsValue;

use crate::store::{Policies, PolicyRecord, StoreResult};

use super::*;

#[derive(Deserialize)]
struct PolicyRow {
    id: String,
    org_id: String,
    name: String,
    mode: String,
    scope: String,
    rules: String,
    created_at: String,
    updated_at: String,
}

impl From<PolicyRow> for PolicyRecord {
    fn from(r: PolicyRow) -> Self {
        PolicyRecord {
            id: r.id,
            org_id: r.org_id,
            name: r.name,
            mode: r.mode,
            // Written by `policy_args` from valid JSON; a row altered by hand reads as empty.
            scope: serde_json::from_str(&r.scope).unwrap_or(Value::Null),
            rules: serde_json::from_str(&r.rules).unwrap_or(Value::Null),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

fn policy_args(p: &PolicyRecord) -> Vec<JsValue> {
    vec![
        text(&p.id),
        text(&p.org_id),
        text(&p.name),
        text(&p.mode),
        text(&p.scope.to_string()),
        text(&p.rules.to_string()),
        text(&p.created_at),
        text(&p.updated_at),
    ]
}

pub(super) fn insert_policy(p: &PolicyRecord) -> Sql {
    Sql(
        "INSERT INTO policies (id, org_id, name, mode, scope, rules, created_at, updated_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)".into(),
        policy_args(p),
    )
}

pub(super) fn update_policy(p: &PolicyRecord) -> Sql {
    let mut args = policy_args(p);
    args[6] = JsValue::NULL; // ?7 (created_at) is fixed at creation; bound but unused
    Sql(
        "UPDATE policies SET name=?3, mode=?4, scope=?5, rules=?6, updated_at=?8 WHERE id=?1 AND org_id=?2".into(),
        args,
    )
}

pub(super) fn delete_policy(org_id: &str, id: &str) -> Sql {
    Sql(
        "DELETE FROM policies WHERE id = ?1 AND org_id = ?2".into(),
        vec![text(id), text(org_id)],
    )
}

#[async_trait(?Send)]
impl Policies for D1Store {
    async fn create_policy(&self, p: &PolicyRecord) -> StoreResult<()> {
        self.run_sql(insert_policy(p)).await?;
        Ok(())
    }

    async fn get_policy(&self, org_id: &str, id: &str) -> StoreResult<Option<PolicyRecord>> {
        let row: Option<PolicyRow> = self
            .first(
                "SELECT * FROM policies WHERE id = ?1 AND org_id = ?2",
                &[text(id), text(org_id)],
            )
            .await?;
        Ok(row.map(Into::into))
    }

    async fn list_policies(&self, org_id: &str) -> StoreResult<Vec<PolicyRecord>> {
        let rows: Vec<PolicyRow> = self
            .all(
                "SELECT * FROM policies WHERE org_id = ?1 ORDER BY created_at, id",
                &[text(org_id)],
            )
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn update_policy(&self, p: &PolicyRecord) -> StoreResult<bool> {
        Ok(self.run_sql(update_policy(p)).await? > 0)
    }

    async fn delete_policy(&self, org_id: &str, id: &str) -> StoreResult<bool> {
        Ok(self.run_sql(delete_policy(org_id, id)).await? > 0)
    }
}
