//! The audit trail in memory, for native tests: the same contract as D1 (`AuditStore`).
use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};

use async_trait::async_trait;

use super::audit::{chain_records, AuditHead, AuditQuery, AuditRecord, AuditStore};
use super::memory::MemoryStore;
use super::StoreResult;
use crate::observe::Event;

#[derive(Default)]
pub struct MemoryAudit {
    /// By (chain, seq); usage reads the events they hold, as D1's usage queries read the table.
    records: RefCell<BTreeMap<(String, u64), AuditRecord>>,
    heads: RefCell<BTreeMap<String, AuditHead>>,
    ids: RefCell<HashSet<String>>,
}

impl MemoryAudit {
    /// Changes a stored record in place, as someone with direct access to storage could
    /// (tests of `verify`).
    #[cfg(test)]
    pub fn tamper(&self, org_id: &str, seq: u64, f: impl FnOnce(&mut Option<AuditRecord>)) {
        let mut records = self.records.borrow_mut();
        let key = (org_id.to_string(), seq);
        let mut slot = records.remove(&key);
        f(&mut slot);
        if let Some(r) = slot {
            records.insert(key, r);
        }
    }
}

impl MemoryAudit {
    /// The usage rows of every retained `mcp` event.
    pub(super) fn usage_rows(&self) -> Vec<super::usage::UsageRow> {
        self.records
            .borrow()
            .values()
            .filter_map(AuditRecord::event)
            .filter_map(|e| super::usage::UsageRow::of(&e))
            .collect()
    }
}

#[async_trait(?Send)]
impl AuditStore for MemoryStore {
    async fn append(&self, events: &[Event]) -> StoreResult<usize> {
        let a = &self.audit;
        let mut orgs: Vec<&str> = events.iter().map(|e| e.org_id.as_str()).collect();
        orgs.dedup();
        let mut stored = 0;
        let mut done = HashSet::new();
        for org in orgs {
            if !done.insert(org) {
                continue;
            }
            let head = a.heads.borrow().get(org).cloned();
            let ids = a.ids.borrow().clone();
            let batch = chain_records(events.iter().filter(|e| e.org_id == org), head.as_ref(), |id| {
                ids.contains(id)
            });
            let Some(last) = batch.last() else { continue };
            let mut heads = a.heads.borrow_mut();
            let h = heads.entry(org.to_string()).or_insert_with(|| AuditHead {
                org_id: org.to_string(),
                ..AuditHead::default()
            });
            h.seq = last.seq;
            h.hash = last.hash.clone();
            stored += batch.len();
            for r in batch {
                a.ids.borrow_mut().insert(r.id.clone());
                a.records.borrow_mut().insert((r.org_id.clone(), r.seq), r);
            }
        }
        Ok(stored)
    }

    async fn list_audit(&self, q: &AuditQuery) -> StoreResult<Vec<AuditRecord>> {
        let mut out: Vec<AuditRecord> = self
            .audit
            .records
            .borrow()
            .values()
            .filter(|r| q.matches(r))
            .cloned()
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse((r.time_ms, r.seq)));
        out.truncate(q.limit);
        Ok(out)
    }

    async fn audit_head(&self, org_id: &str) -> StoreResult<Option<AuditHead>> {
        Ok(self.audit.heads.borrow().get(org_id).cloned())
    }

    async fn audit_chain(&self, org_id: &str, after_seq: u64, limit: usize) -> StoreResult<Vec<AuditRecord>> {
        let from = (org_id.to_string(), after_seq.saturating_add(1));
        let to = (org_id.to_string(), u64::MAX);
        Ok(self
            .audit
            .records
            .borrow()
            .range(from..=to)
            .take(limit)
            .map(|(_, r)| r.clone())
            .collect())
    }

    async fn purge_audit(&self, before_ms: u64) -> StoreResult<usize> {
        let a = &self.audit;
        let mut removed = 0;
        for h in a.heads.borrow_mut().values_mut() {
            let mut records = a.records.borrow_mut();
            let chain: Vec<(u64, u64, String)> = records
                .range((h.org_id.clone(), 0)..=(h.org_id.clone(), u64::MAX))
                .map(|(_, r)| (r.seq, r.time_ms, r.hash.clone()))
                .collect();
            let cut: Vec<&(u64, u64, String)> = chain.iter().take_while(|(_, t, _)| *t < before_ms).collect();
            let Some((seq, _, hash)) = cut.last() else { continue };
            for (s, _, _) in &cut {
                if let Some(r) = records.remove(&(h.org_id.clone(), *s)) {
                    a.ids.borrow_mut().remove(&r.id);
                }
            }
            h.anchor_seq = *seq;
            h.anchor_hash = hash.clone();
            removed += cut.len();
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use futures_executor::block_on;

    use super::*;
    use crate::store::audit::verify;

    fn store_with_chain(n: u64) -> MemoryStore {
        let s = MemoryStore::new();
        let evs: Vec<Event> = (1..=n)
            .map(|i| Event {
                id: format!("ev_{i}"),
                org_id: "org_a".into(),
                time_ms: i,
                ..Event::default()
            })
            .collect();
        block_on(s.append(&evs)).unwrap();
        s
    }

    fn first_broken(s: &MemoryStore) -> (bool, u64, Option<(u64, Option<String>)>) {
        let v = block_on(verify(s, "org_a")).unwrap();
        (v.ok, v.checked, v.first_broken.map(|b| (b.seq, b.id)))
    }

    #[test]
    fn verify_names_the_altered_or_missing_record() {
        let s = store_with_chain(5);
        assert_eq!(first_broken(&s), (true, 5, None));

        s.audit.tamper("org_a", 3, |r| {
            r.as_mut().unwrap().body = r.as_ref().unwrap().body.replace("ev_3", "ev_9")
        });
        assert_eq!(first_broken(&s), (false, 3, Some((3, Some("ev_3".into())))));

        let s = store_with_chain(5);
        s.audit
            .tamper("org_a", 2, |r| r.as_mut().unwrap().outcome = "ok".into());
        assert_eq!(first_broken(&s).2, Some((2, Some("ev_2".into()))));

        let s = store_with_chain(5);
        s.audit.tamper("org_a", 4, |r| *r = None);
        assert_eq!(first_broken(&s).2, Some((4, None)));

        let s = store_with_chain(5);
        s.audit.tamper("org_a", 5, |r| *r = None);
        assert_eq!(first_broken(&s).2, Some((5, None)), "the newest record deleted");

        // A record rewritten with a recomputed hash still breaks the next link.
        let s = store_with_chain(5);
        s.audit.tamper("org_a", 2, |r| {
            let r = r.as_mut().unwrap();
            r.body = r.body.replace("\"time_ms\":2", "\"time_ms\":7");
            r.time_ms = 7;
            r.hash = crate::store::audit::link_hash(&r.prev_hash, 2, "org_a", &r.body);
        });
        assert_eq!(first_broken(&s).2, Some((3, Some("ev_3".into()))));
    }
}
