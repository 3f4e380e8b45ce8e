//! Counters and approvals in memory, for native tests: the same contracts as the Durable
//! Objects (`Counters`, `Approvals`). Every operation runs without an await between its read
//! and its write, so concurrent calls are serialized as a Durable Object serializes them.
use std::cell::RefCell;
use std::collections::BTreeMap;

use async_trait::async_trait;

use super::approvals::{
    ApprovalBinding, ApprovalRecord, ApprovalStatus, Approvals, DecideError, NewApproval, MAX_PAGE,
};
use super::limits::{Counter, CounterState, Counters, Take, Window, MAX_PEEK};
use super::{StoreError, StoreResult};

#[derive(Default)]
pub struct MemoryCounters {
    counters: RefCell<BTreeMap<String, Counter>>,
}

impl MemoryCounters {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait(?Send)]
impl Counters for MemoryCounters {
    async fn take(&self, key: &str, limit: u64, window: Window, now_ms: u64) -> StoreResult<Take> {
        window.check(limit).map_err(|m| StoreError::Backend(m.into()))?;
        let mut counters = self.counters.borrow_mut();
        Ok(counters.entry(key.to_string()).or_default().take(limit, window, now_ms))
    }

    async fn peek(&self, keys: &[String], now_ms: u64) -> StoreResult<Vec<CounterState>> {
        if keys.len() > MAX_PEEK {
            return Err(StoreError::Backend(format!("peek names at most {MAX_PEEK} keys")));
        }
        let counters = self.counters.borrow();
        Ok(keys.iter().filter_map(|k| counters.get(k)?.state(k, now_ms)).collect())
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        now_ms: u64,
    ) -> StoreResult<Vec<CounterState>> {
        let counters = self.counters.borrow();
        Ok(counters
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| after.is_none_or(|a| k.as_str() > a))
            .filter_map(|(k, c)| c.state(k, now_ms))
            .take(limit.min(MAX_PEEK))
            .collect())
    }
}

#[derive(Default)]
pub struct MemoryApprovals {
    /// By (organization, id).
    records: RefCell<BTreeMap<(String, String), ApprovalRecord>>,
}

impl MemoryApprovals {
    pub fn new() -> Self {
        Self::default()
    }

    /// Deletes records past their retention (as the Durable Object does on its writes).
    fn purge(&self, now_ms: u64) {
        self.records.borrow_mut().retain(|_, r| r.purge_at_ms() > now_ms);
    }
}

#[async_trait(?Send)]
impl Approvals for MemoryApprovals {
    async fn request(&self, new: &NewApproval, ttl_ms: u64, now_ms: u64) -> StoreResult<ApprovalRecord> {
        self.purge(now_ms);
        let mut records = self.records.borrow_mut();
        let pending = records
            .values()
            .find(|r| r.binding == new.binding && r.status_at(now_ms) == ApprovalStatus::Pending);
        if let Some(r) = pending {
            return Ok(r.clone());
        }
        let r = ApprovalRecord::pending(new, ttl_ms, now_ms);
        records.insert((r.binding.org_id.clone(), r.id.clone()), r.clone());
        Ok(r)
    }

    async fn get(&self, org_id: &str, id: &str, now_ms: u64) -> StoreResult<Option<ApprovalRecord>> {
        let records = self.records.borrow();
        Ok(records
            .get(&(org_id.to_string(), id.to_string()))
            .map(|r| r.clone().at(now_ms)))
    }

    async fn list(
        &self,
        org_id: &str,
        status: Option<ApprovalStatus>,
        after: Option<&str>,
        limit: usize,
        now_ms: u64,
    ) -> StoreResult<Vec<ApprovalRecord>> {
        let records = self.records.borrow();
        Ok(records
            .iter()
            .rev()
            .filter(|((org, id), _)| org == org_id && after.is_none_or(|a| id.as_str() < a))
            .map(|(_, r)| r.clone().at(now_ms))
            .filter(|r| status.is_none_or(|s| r.status == s))
            .take(limit.min(MAX_PAGE))
            .collect())
    }

    async fn decide(
        &self,
        org_id: &str,
        id: &str,
        approve: bool,
        by: &str,
        now_ms: u64,
    ) -> Result<Option<ApprovalRecord>, DecideError> {
        self.purge(now_ms);
        let mut records = self.records.borrow_mut();
        let Some(slot) = records.get_mut(&(org_id.to_string(), id.to_string())) else {
            return Ok(None);
        };
        let current = slot.clone().at(now_ms);
        if current.status != ApprovalStatus::Pending {
            return Err(DecideError::NotPending(Box::new(current)));
        }
        *slot = current.decided(approve, by, now_ms);
        Ok(Some(slot.clone()))
    }

    async fn consume(&self, binding: &ApprovalBinding, now_ms: u64) -> StoreResult<Option<ApprovalRecord>> {
        let mut records = self.records.borrow_mut();
        let slot = records
            .values_mut()
            .filter(|r| &r.binding == binding && r.status_at(now_ms) == ApprovalStatus::Approved)
            .min_by(|a, b| (a.expires_at_ms, &a.id).cmp(&(b.expires_at_ms, &b.id)));
        Ok(slot.map(|r| {
            r.status = ApprovalStatus::Consumed;
            r.consumed_at_ms = Some(now_ms);
            r.clone()
        }))
    }
}
