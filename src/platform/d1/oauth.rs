//! The gateway's OAuth server state in D1: clients, pending authorizations and tokens (hashes).
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use wasm_bindgen::JsValue;

use crate::store::{StoreError, StoreResult};

use super::*;

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

    async fn put_console_session(&self, c: &crate::store::ConsoleSession) -> StoreResult<()> {
        let ms = |v: u64| JsValue::from_f64(v as f64);
        self.run(
            "INSERT INTO console_sessions (hash, principal_id, via, created_at_ms, last_seen_ms, expires_at_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &[
                text(&c.hash),
                text(&c.principal_id),
                text(&c.via),
                ms(c.created_at_ms),
                ms(c.last_seen_ms),
                ms(c.expires_at_ms),
            ],
        )
        .await?;
        Ok(())
    }

    async fn get_console_session(&self, hash: &str) -> StoreResult<Option<crate::store::ConsoleSession>> {
        #[derive(Deserialize)]
        struct R {
            hash: String,
            principal_id: String,
            via: String,
            created_at_ms: f64,
            last_seen_ms: f64,
            expires_at_ms: f64,
        }
        let row: Option<R> = self
            .first(
                "SELECT hash, principal_id, via, created_at_ms, last_seen_ms, expires_at_ms \
                 FROM console_sessions WHERE hash = ?1",
                &[text(hash)],
            )
            .await?;
        Ok(row.map(|r| crate::store::ConsoleSession {
            hash: r.hash,
            principal_id: r.principal_id,
            via: r.via,
            created_at_ms: r.created_at_ms as u64,
            last_seen_ms: r.last_seen_ms as u64,
            expires_at_ms: r.expires_at_ms as u64,
        }))
    }

    async fn touch_console_session(&self, hash: &str, last_seen_ms: u64) -> StoreResult<bool> {
        let n = self
            .run(
                "UPDATE console_sessions SET last_seen_ms = ?2 WHERE hash = ?1",
                &[text(hash), JsValue::from_f64(last_seen_ms as f64)],
            )
            .await?;
        Ok(n > 0)
    }

    async fn delete_console_session(&self, hash: &str, now_ms: u64) -> StoreResult<bool> {
        let n = self
            .run("DELETE FROM console_sessions WHERE hash = ?1", &[text(hash)])
            .await?;
        self.run(
            "DELETE FROM console_sessions WHERE expires_at_ms <= ?1",
            &[JsValue::from_f64(now_ms as f64)],
        )
        .await?;
        Ok(n > 0)
    }
}
