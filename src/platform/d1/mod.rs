//! D1 implementations of the store traits (schema: migrations/, docs/storage.md), one file per
//! store; this file holds the connection and the helpers they share.
mod audit;
mod changes;
mod directory;
mod keys;
mod oauth;
mod policies;
mod registry;
mod usage;
mod version;
mod virtuals;

use serde_json::Value;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

use crate::store::{StoreError, StoreResult};

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
        crate::platform::delay::storage().await;
        self.stmt(sql, args)?
            .all()
            .await
            .map_err(backend)?
            .results()
            .map_err(backend)
    }

    /// The first row of a query, if any.
    async fn first<T: serde::de::DeserializeOwned>(&self, sql: &str, args: &[JsValue]) -> StoreResult<Option<T>> {
        crate::platform::delay::storage().await;
        self.stmt(sql, args)?.first(None).await.map_err(backend)
    }

    /// Runs statements in one D1 batch, which D1 executes as a single transaction.
    async fn batch(&self, stmts: Vec<D1PreparedStatement>) -> StoreResult<()> {
        crate::platform::delay::storage().await;
        self.db.batch(stmts).await.map_err(backend)?;
        Ok(())
    }

    /// Runs a statement; returns how many rows it changed.
    async fn run(&self, sql: &str, args: &[JsValue]) -> StoreResult<usize> {
        crate::platform::delay::storage().await;
        let res = self.stmt(sql, args)?.run().await.map_err(backend)?;
        Ok(res.meta().map_err(backend)?.and_then(|m| m.changes).unwrap_or(0))
    }
}

/// One statement as SQL and its arguments: run alone by a store method, or as part of a batch
/// (`changes.rs`), so both share the same SQL.
pub(super) struct Sql(pub String, pub Vec<JsValue>);

impl D1Store {
    fn prepared(&self, s: Sql) -> StoreResult<D1PreparedStatement> {
        self.stmt(&s.0, &s.1)
    }

    async fn run_sql(&self, s: Sql) -> StoreResult<usize> {
        self.run(&s.0, &s.1).await
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
