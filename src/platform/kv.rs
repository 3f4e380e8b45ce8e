//! Workers KV implementation of the secret store (binding `VAULT`; keys in docs/storage.md).
use async_trait::async_trait;
use worker::kv::KvStore;

use crate::store::{SecretStore, StoreError, StoreResult};

pub struct KvSecrets {
    kv: KvStore,
}

impl KvSecrets {
    pub fn new(kv: KvStore) -> Self {
        Self { kv }
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

#[async_trait(?Send)]
impl SecretStore for KvSecrets {
    async fn get_secret(&self, key: &str) -> StoreResult<Option<String>> {
        super::delay::storage().await;
        self.kv.get(key).text().await.map_err(backend)
    }

    async fn put_secret(&self, key: &str, value: &str) -> StoreResult<()> {
        super::delay::storage().await;
        self.kv
            .put(key, value)
            .map_err(backend)?
            .execute()
            .await
            .map_err(backend)
    }

    async fn delete_secret(&self, key: &str) -> StoreResult<()> {
        super::delay::storage().await;
        self.kv.delete(key).await.map_err(backend)
    }

    async fn list_secrets(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let mut keys = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut req = self.kv.list().prefix(prefix.to_string());
            if let Some(c) = cursor.take() {
                req = req.cursor(c);
            }
            super::delay::storage().await;
            let page = req.execute().await.map_err(backend)?;
            keys.extend(page.keys.into_iter().map(|k| k.name));
            match page.cursor {
                Some(c) if !page.list_complete => cursor = Some(c),
                _ => return Ok(keys),
            }
        }
    }
}
