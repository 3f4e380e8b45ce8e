//! API keys in D1 (`api_keys`; only hashes are stored).
use async_trait::async_trait;
use serde::Deserialize;

use crate::store::{ApiKeyRecord, ApiKeys, StoreResult};

use super::*;

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
            "INSERT INTO api_keys (id, name, prefix, key_hash, created_at, principal_id, expires_at, last_used_at, revoked_at) \
             VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
            &[
                text(&k.id),
                text(&k.name),
                text(&k.prefix),
                text(&k.key_hash),
                text(&k.created_at),
                text(&k.principal_id),
                opt(&k.expires_at),
                opt(&k.last_used_at),
                opt(&k.revoked_at),
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
