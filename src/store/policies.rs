//! Policies as stored (D1 table `policies`): an organization's rules about *how* calls may be made,
//! kept as the JSON the admin API accepted. What they mean (parsing, compiling, evaluating) lives
//! in `rules`; this layer only keeps them.
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::StoreResult;

/// One policy. `scope` and `rules` are the admin API's JSON, validated before every write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyRecord {
    pub id: String,
    /// The owning organization; fixed at creation.
    pub org_id: String,
    /// Unique within the organization.
    pub name: String,
    /// `enforce` or `monitor`.
    pub mode: String,
    pub scope: Value,
    pub rules: Value,
    pub created_at: String,
    pub updated_at: String,
}

/// An organization's policies.
///
/// Contract: `create_policy` is `Conflict` when the id exists or the organization already has a
/// policy of that name, and stores nothing then; `list_policies` is ordered by `created_at`, then
/// `id`; `update_policy` replaces all but `org_id` and `created_at` (fixed at creation) and is
/// `Conflict` when the new name is another policy's of the same organization; reads and deletes
/// name the organization, so one organization's id never reaches another's policy.
#[async_trait(?Send)]
pub trait Policies {
    async fn create_policy(&self, p: &PolicyRecord) -> StoreResult<()>;
    async fn get_policy(&self, org_id: &str, id: &str) -> StoreResult<Option<PolicyRecord>>;
    async fn list_policies(&self, org_id: &str) -> StoreResult<Vec<PolicyRecord>>;
    /// `false` if no such policy of that organization (nothing is created).
    async fn update_policy(&self, p: &PolicyRecord) -> StoreResult<bool>;
    async fn delete_policy(&self, org_id: &str, id: &str) -> StoreResult<bool>;
}

#[async_trait(?Send)]
impl Policies for super::memory::MemoryStore {
    async fn create_policy(&self, p: &PolicyRecord) -> StoreResult<()> {
        let mut all = self.policies.borrow_mut();
        if all.contains_key(&p.id) || all.values().any(|q| q.org_id == p.org_id && q.name == p.name) {
            return Err(super::StoreError::Conflict);
        }
        all.insert(p.id.clone(), p.clone());
        Ok(())
    }

    async fn get_policy(&self, org_id: &str, id: &str) -> StoreResult<Option<PolicyRecord>> {
        Ok(self.policies.borrow().get(id).filter(|p| p.org_id == org_id).cloned())
    }

    async fn list_policies(&self, org_id: &str) -> StoreResult<Vec<PolicyRecord>> {
        let mut v: Vec<PolicyRecord> = self
            .policies
            .borrow()
            .values()
            .filter(|p| p.org_id == org_id)
            .cloned()
            .collect();
        v.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
        Ok(v)
    }

    async fn update_policy(&self, p: &PolicyRecord) -> StoreResult<bool> {
        let mut all = self.policies.borrow_mut();
        let Some(old) = all.get(&p.id).filter(|o| o.org_id == p.org_id).cloned() else {
            return Ok(false);
        };
        if all
            .values()
            .any(|q| q.id != p.id && q.org_id == old.org_id && q.name == p.name)
        {
            return Err(super::StoreError::Conflict);
        }
        all.insert(
            p.id.clone(),
            PolicyRecord {
                org_id: old.org_id,
                created_at: old.created_at,
                ..p.clone()
            },
        );
        Ok(true)
    }

    async fn delete_policy(&self, org_id: &str, id: &str) -> StoreResult<bool> {
        let mut all = self.policies.borrow_mut();
        if all.get(id).is_some_and(|p| p.org_id == org_id) {
            all.remove(id);
            return Ok(true);
        }
        Ok(false)
    }
}
