//! D1 implementation of the snapshot version (table `snapshot_version`, migration 0008).
use async_trait::async_trait;
use serde::Deserialize;

use super::D1Store;
use crate::store::{StoreResult, Versions};

#[derive(Deserialize)]
struct Row {
    version: f64,
}

#[async_trait(?Send)]
impl Versions for D1Store {
    async fn snapshot_version(&self) -> StoreResult<u64> {
        let row: Option<Row> = self
            .first("SELECT version FROM snapshot_version WHERE id = 1", &[])
            .await?;
        Ok(row.map(|r| r.version as u64).unwrap_or(0))
    }

    async fn bump_snapshot_version(&self) -> StoreResult<u64> {
        // One statement: the increment and the value it produced, so concurrent bumps each see
        // their own.
        let row: Option<Row> = self
            .first(
                "UPDATE snapshot_version SET version = version + 1 WHERE id = 1 RETURNING version",
                &[],
            )
            .await?;
        Ok(row.map(|r| r.version as u64).unwrap_or(0))
    }
}
