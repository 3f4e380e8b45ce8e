//! The audit trail's storage: every event (one per MCP request, one per admin write) kept in its
//! organization's hash chain, and the rules that make the chain tamper-evident — how a record
//! is built from an event, how its hash is computed, and how a chain is verified
//! (docs/observability.md, *Audit trail*; tables in docs/storage.md).
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreResult;
use crate::observe::{Event, EventKind};

/// `prev_hash` of a chain's first record (and `anchor_hash` before anything was purged).
pub const GENESIS_HASH: &str = "";

/// How many times an append retries after losing a race for the chain's next position.
pub const APPEND_ATTEMPTS: usize = 8;

/// Records read per step while verifying a chain.
pub const VERIFY_PAGE: usize = 500;

/// One stored audit record (D1 table `audit_events`): the event as JSON (`body`), exactly as
/// hashed, its place in the chain, and filter columns copied from the body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub org_id: String,
    pub seq: u64,
    pub id: String,
    pub time_ms: u64,
    pub kind: String,
    pub principal_id: String,
    pub team_ids: Vec<String>,
    pub workspace_ids: Vec<String>,
    pub server: Option<String>,
    pub method: Option<String>,
    pub tool: Option<String>,
    pub outcome: String,
    pub latency_ms: f64,
    pub trace_id: Option<String>,
    pub body: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The head of a chain (D1 table `audit_heads`): its last record, and the anchor — the newest
/// record retention removed (`anchor_seq` 0 and `GENESIS_HASH` while none was).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AuditHead {
    pub org_id: String,
    pub seq: u64,
    pub hash: String,
    pub anchor_seq: u64,
    pub anchor_hash: String,
}

/// The hash of a record: lowercase hex SHA-256 over the UTF-8 bytes of
/// `prev_hash "\n" seq "\n" len(org_id) ":" org_id "\n" body`, where `seq` and `len(org_id)`
/// (in bytes) are decimal. The previous hash is hex (or empty), the numbers have no newline and
/// the organization is length-prefixed, so no two different records encode alike.
pub fn link_hash(prev_hash: &str, seq: u64, org_id: &str, body: &str) -> String {
    let encoded = format!("{prev_hash}\n{seq}\n{}:{org_id}\n{body}", org_id.len());
    crate::crypto::sha256_hex(encoded.as_bytes())
}

/// The filter columns of a record as its body says they are.
#[derive(Debug, PartialEq)]
struct Columns {
    org_id: String,
    id: String,
    time_ms: u64,
    kind: String,
    principal_id: String,
    team_ids: Vec<String>,
    workspace_ids: Vec<String>,
    server: Option<String>,
    method: Option<String>,
    tool: Option<String>,
    outcome: String,
    latency_ms: f64,
    trace_id: Option<String>,
}

fn columns(e: &Event) -> Columns {
    Columns {
        org_id: e.org_id.clone(),
        id: e.id.clone(),
        time_ms: e.time_ms,
        kind: match e.kind {
            EventKind::Mcp => "mcp",
            EventKind::Admin => "admin",
        }
        .to_string(),
        principal_id: e.principal_id.clone(),
        team_ids: e.team_ids.clone(),
        workspace_ids: e.workspace_ids.clone(),
        server: e.server.clone(),
        method: e.method.clone(),
        tool: e.subject().cloned(),
        outcome: e.outcome.0.name().to_string(),
        latency_ms: e.latency_ms,
        trace_id: e.trace.as_ref().map(|t| t.trace_id.clone()),
    }
}

impl AuditRecord {
    /// The record `event` becomes at position `seq` of its organization's chain, after the
    /// record (or anchor) whose hash is `prev_hash`.
    pub fn new(event: &Event, seq: u64, prev_hash: &str) -> Self {
        let body = serde_json::to_string(event).unwrap_or_default();
        let c = columns(event);
        let hash = link_hash(prev_hash, seq, &c.org_id, &body);
        Self {
            org_id: c.org_id,
            seq,
            id: c.id,
            time_ms: c.time_ms,
            kind: c.kind,
            principal_id: c.principal_id,
            team_ids: c.team_ids,
            workspace_ids: c.workspace_ids,
            server: c.server,
            method: c.method,
            tool: c.tool,
            outcome: c.outcome,
            latency_ms: c.latency_ms,
            trace_id: c.trace_id,
            body,
            prev_hash: prev_hash.to_string(),
            hash,
        }
    }

    /// The event the record holds.
    pub fn event(&self) -> Option<Event> {
        serde_json::from_str(&self.body).ok()
    }

    /// Why this record, found after the record (or anchor) hashed `prev`, breaks the chain.
    fn fault(&self, prev: &str) -> Option<&'static str> {
        if self.prev_hash != prev {
            return Some("prev_hash does not match the previous record");
        }
        if !crate::crypto::hashes_equal(&link_hash(prev, self.seq, &self.org_id, &self.body), &self.hash) {
            return Some("hash does not match the record");
        }
        let Some(event) = self.event() else {
            return Some("body is not an event");
        };
        let stored = Columns {
            org_id: self.org_id.clone(),
            id: self.id.clone(),
            time_ms: self.time_ms,
            kind: self.kind.clone(),
            principal_id: self.principal_id.clone(),
            team_ids: self.team_ids.clone(),
            workspace_ids: self.workspace_ids.clone(),
            server: self.server.clone(),
            method: self.method.clone(),
            tool: self.tool.clone(),
            outcome: self.outcome.clone(),
            latency_ms: self.latency_ms,
            trace_id: self.trace_id.clone(),
        };
        (stored != columns(&event)).then_some("a column differs from the body")
    }
}

/// Which records a listing returns. Every listing is of one organization's chain.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    pub org_id: String,
    /// Bounds on `time_ms`: `from_ms` inclusive, `to_ms` exclusive.
    pub from_ms: Option<u64>,
    pub to_ms: Option<u64>,
    pub server: Option<String>,
    pub tool: Option<String>,
    pub principal_id: Option<String>,
    /// A team the principal was in at the time.
    pub team_id: Option<String>,
    pub outcome: Option<String>,
    pub trace_id: Option<String>,
    pub kind: Option<String>,
    /// Only records strictly older than this `(time_ms, seq)` (the previous page's last).
    pub before: Option<(u64, u64)>,
    pub limit: usize,
}

impl AuditQuery {
    /// Whether `r` is selected (the memory store's filter; D1 says the same in SQL).
    pub fn matches(&self, r: &AuditRecord) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| want.as_deref().is_none_or(|w| have == Some(w));
        r.org_id == self.org_id
            && self.from_ms.is_none_or(|t| r.time_ms >= t)
            && self.to_ms.is_none_or(|t| r.time_ms < t)
            && eq(&self.server, r.server.as_deref())
            && eq(&self.tool, r.tool.as_deref())
            && eq(&self.principal_id, Some(&r.principal_id))
            && self.team_id.as_ref().is_none_or(|t| r.team_ids.contains(t))
            && eq(&self.outcome, Some(&r.outcome))
            && eq(&self.trace_id, r.trace_id.as_deref())
            && eq(&self.kind, Some(&r.kind))
            && self.before.is_none_or(|b| (r.time_ms, r.seq) < b)
    }
}

/// The audit trail's storage. Deliberately not part of `Store`: it is never served from the
/// isolate snapshot and its writes are not configuration, so they do not bump its version.
///
/// Contract:
/// - `append` adds each event to the end of its organization's chain (`event.org_id`; `""` is
///   the platform-wide chain) as `AuditRecord::new(event, head.seq + 1, head.hash)`, in the
///   order given, and returns how many it stored. An event whose id is already stored (a queue
///   redelivery), or repeated within the batch, is skipped. Concurrent appends never fork a
///   chain: positions are unique per organization and the loser of a race re-reads the head
///   and tries again (at most `APPEND_ATTEMPTS` times, then `Err`). A failed append stores
///   nothing of its batch.
/// - `list_audit` returns at most `limit` records of `q.org_id` matching `q`, newest first by
///   `(time_ms, seq)` descending.
/// - `audit_head` is `None` for an organization with no chain.
/// - `audit_chain` returns at most `limit` records with `seq > after_seq`, in `seq` order.
/// - `purge_audit` removes, in each chain, the longest prefix of records older than
///   `before_ms` (a chain is only ever cut at its start, so what is kept stays linked) and
///   records the newest removed one as the chain's anchor; the head is kept even when every
///   record went, so the chain continues from it. Returns how many records it removed.
#[async_trait(?Send)]
pub trait AuditStore {
    async fn append(&self, events: &[Event]) -> StoreResult<usize>;
    async fn list_audit(&self, q: &AuditQuery) -> StoreResult<Vec<AuditRecord>>;
    async fn audit_head(&self, org_id: &str) -> StoreResult<Option<AuditHead>>;
    async fn audit_chain(&self, org_id: &str, after_seq: u64, limit: usize) -> StoreResult<Vec<AuditRecord>>;
    async fn purge_audit(&self, before_ms: u64) -> StoreResult<usize>;
}

/// The records of a batch for one chain, after `head`: the events of `org_id` in order, minus
/// those already stored (`stored`) or repeated. Shared by every backend's `append`.
pub fn chain_records<'a>(
    events: impl IntoIterator<Item = &'a Event>,
    head: Option<&AuditHead>,
    mut stored: impl FnMut(&str) -> bool,
) -> Vec<AuditRecord> {
    let (mut seq, mut prev) = head.map_or((0, GENESIS_HASH.to_string()), |h| (h.seq, h.hash.clone()));
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for e in events {
        if stored(&e.id) || !seen.insert(e.id.as_str()) {
            continue;
        }
        seq += 1;
        let r = AuditRecord::new(e, seq, &prev);
        prev = r.hash.clone();
        out.push(r);
    }
    out
}

/// The first broken link of a chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Broken {
    pub seq: u64,
    /// The record's event id (`None` when the record is missing).
    pub id: Option<String>,
    pub reason: String,
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verification {
    pub ok: bool,
    /// Records checked (up to and including the first broken one).
    pub checked: u64,
    pub first_broken: Option<Broken>,
}

/// Walks `org_id`'s chain from its anchor to its head: every position present, each record
/// linked to the one before by `prev_hash`, its hash matching its content, its filter columns
/// matching its body, and the last record being the head. Reports the first broken link.
pub async fn verify(store: &dyn AuditStore, org_id: &str) -> StoreResult<Verification> {
    let head = store.audit_head(org_id).await?;
    let (mut expected, mut prev) = head.as_ref().map_or((1, GENESIS_HASH.to_string()), |h| {
        (h.anchor_seq + 1, h.anchor_hash.clone())
    });
    let mut checked = 0;
    let broken = |checked, seq, id: Option<&str>, reason: &str| Verification {
        ok: false,
        checked,
        first_broken: Some(Broken {
            seq,
            id: id.map(str::to_string),
            reason: reason.to_string(),
        }),
    };
    let mut after = expected - 1;
    loop {
        let page = store.audit_chain(org_id, after, VERIFY_PAGE).await?;
        for r in &page {
            if r.seq != expected {
                return Ok(broken(checked, expected, None, "record missing"));
            }
            checked += 1;
            if let Some(reason) = r.fault(&prev) {
                return Ok(broken(checked, r.seq, Some(&r.id), reason));
            }
            prev = r.hash.clone();
            expected += 1;
        }
        match page.last() {
            Some(last) if page.len() == VERIFY_PAGE => after = last.seq,
            _ => break,
        }
    }
    let (head_seq, head_hash) = head.map_or((0, GENESIS_HASH.to_string()), |h| (h.seq, h.hash));
    if expected - 1 < head_seq {
        return Ok(broken(checked, expected, None, "record missing"));
    }
    if expected - 1 > head_seq || prev != head_hash {
        return Ok(broken(checked, expected - 1, None, "chain does not end at its head"));
    }
    Ok(Verification {
        ok: true,
        checked,
        first_broken: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_encoding_is_fixed_and_unambiguous() {
        // Pinned: the documented encoding, so a change to it cannot pass unnoticed.
        assert_eq!(
            link_hash("", 1, "org_a", "{}"),
            crate::crypto::sha256_hex(b"\n1\n5:org_a\n{}")
        );
        assert_ne!(link_hash("", 1, "a\n1", "x"), link_hash("", 1, "a", "1\nx"));
    }

    #[test]
    fn a_record_names_its_columns_from_the_event() {
        let ev = Event {
            id: "ev_1".into(),
            org_id: "org_a".into(),
            prompt: Some("greet".into()),
            team_ids: vec!["team_x".into()],
            ..Event::default()
        };
        let r = AuditRecord::new(&ev, 3, "abc");
        assert_eq!(
            (r.tool.as_deref(), r.outcome.as_str(), r.kind.as_str()),
            (Some("greet"), "cancelled", "mcp")
        );
        assert_eq!(r.fault("abc"), None);
        assert_eq!(r.fault("abd"), Some("prev_hash does not match the previous record"));
        let mut changed = r.clone();
        changed.outcome = "ok".into();
        assert_eq!(changed.fault("abc"), Some("a column differs from the body"));
        let mut changed = r.clone();
        changed.body = changed.body.replace("greet", "other");
        assert_eq!(changed.fault("abc"), Some("hash does not match the record"));
    }
}
