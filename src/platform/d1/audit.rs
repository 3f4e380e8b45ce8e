//! The audit trail in D1 (`audit_events`, `audit_heads`; migration 0009). A whole batch is one
//! D1 transaction: each chain's next positions are taken from its head, and the primary key
//! `(org_id, seq)` makes the loser of a race fail whole, re-read the heads and try again.
use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use serde::Deserialize;
use wasm_bindgen::JsValue;

use crate::observe::Event;
use crate::store::audit::{chain_records, AuditHead, AuditQuery, AuditRecord, AuditStore, APPEND_ATTEMPTS};
use crate::store::{StoreError, StoreResult};

use super::*;

/// Most values bound to one `IN (…)` list (D1 allows 100 bound parameters per statement).
const IN_CHUNK: usize = 90;

#[derive(Deserialize)]
struct Row {
    org_id: String,
    seq: f64,
    id: String,
    time_ms: f64,
    kind: String,
    principal_id: String,
    team_ids: String,
    workspace_ids: String,
    server: Option<String>,
    method: Option<String>,
    tool: Option<String>,
    outcome: String,
    latency_ms: f64,
    trace_id: Option<String>,
    body: String,
    prev_hash: String,
    hash: String,
}

impl From<Row> for AuditRecord {
    fn from(r: Row) -> Self {
        // A list column that is not a JSON list of strings reads as one that cannot match the
        // body, so `verify` reports the record instead of the read failing.
        let list = |t: &str| serde_json::from_str(t).unwrap_or_else(|_| vec![format!("\u{0}{t}")]);
        AuditRecord {
            org_id: r.org_id,
            seq: r.seq as u64,
            id: r.id,
            time_ms: r.time_ms as u64,
            kind: r.kind,
            principal_id: r.principal_id,
            team_ids: list(&r.team_ids),
            workspace_ids: list(&r.workspace_ids),
            server: r.server,
            method: r.method,
            tool: r.tool,
            outcome: r.outcome,
            latency_ms: r.latency_ms,
            trace_id: r.trace_id,
            body: r.body,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

#[derive(Deserialize)]
struct HeadRow {
    org_id: String,
    seq: f64,
    hash: String,
    anchor_seq: f64,
    anchor_hash: String,
}

impl From<HeadRow> for AuditHead {
    fn from(r: HeadRow) -> Self {
        AuditHead {
            org_id: r.org_id,
            seq: r.seq as u64,
            hash: r.hash,
            anchor_seq: r.anchor_seq as u64,
            anchor_hash: r.anchor_hash,
        }
    }
}

#[derive(Deserialize)]
struct IdRow {
    id: String,
}

#[derive(Deserialize)]
struct PurgeRow {
    org_id: String,
    anchor_seq: f64,
    seq: f64,
    keep_from: Option<f64>,
}

fn num(n: u64) -> JsValue {
    JsValue::from_f64(n as f64)
}

fn placeholders(n: usize) -> String {
    (1..=n).map(|i| format!("?{i}")).collect::<Vec<_>>().join(",")
}

impl D1Store {
    /// One attempt at appending `events`; `Err(Conflict)` when another append took a position
    /// (or stored an event) first.
    async fn append_once(&self, events: &[Event]) -> StoreResult<usize> {
        let mut orgs: Vec<&str> = Vec::new();
        for e in events {
            if !orgs.contains(&e.org_id.as_str()) {
                orgs.push(&e.org_id);
            }
        }
        let mut heads: HashMap<String, AuditHead> = HashMap::new();
        for chunk in orgs.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT * FROM audit_heads WHERE org_id IN ({})",
                placeholders(chunk.len())
            );
            let args: Vec<JsValue> = chunk.iter().map(|o| text(o)).collect();
            for h in self.all::<HeadRow>(&sql, &args).await? {
                heads.insert(h.org_id.clone(), h.into());
            }
        }
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        let mut stored: HashSet<String> = HashSet::new();
        for chunk in ids.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT id FROM audit_events WHERE id IN ({})",
                placeholders(chunk.len())
            );
            let args: Vec<JsValue> = chunk.iter().map(|i| text(i)).collect();
            stored.extend(self.all::<IdRow>(&sql, &args).await?.into_iter().map(|r| r.id));
        }
        let mut stmts = Vec::new();
        let mut count = 0;
        for org in orgs {
            let records = chain_records(events.iter().filter(|e| e.org_id == org), heads.get(org), |id| {
                stored.contains(id)
            });
            let Some(last) = records.last() else { continue };
            stmts.push(self.stmt(
                "INSERT INTO audit_heads (org_id, seq, hash) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(org_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                &[text(org), num(last.seq), text(&last.hash)],
            )?);
            count += records.len();
            for r in &records {
                stmts.push(self.insert(r)?);
            }
        }
        if !stmts.is_empty() {
            self.batch(stmts).await?;
        }
        Ok(count)
    }

    fn insert(&self, r: &AuditRecord) -> StoreResult<D1PreparedStatement> {
        let list = |v: &[String]| text(&serde_json::to_string(v).unwrap_or_else(|_| "[]".into()));
        self.stmt(
            "INSERT INTO audit_events (org_id, seq, id, time_ms, kind, principal_id, team_ids, \
             workspace_ids, server, method, tool, outcome, latency_ms, trace_id, body, prev_hash, hash) \
             VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)",
            &[
                text(&r.org_id),
                num(r.seq),
                text(&r.id),
                num(r.time_ms),
                text(&r.kind),
                text(&r.principal_id),
                list(&r.team_ids),
                list(&r.workspace_ids),
                opt(&r.server),
                opt(&r.method),
                opt(&r.tool),
                text(&r.outcome),
                JsValue::from_f64(r.latency_ms),
                opt(&r.trace_id),
                text(&r.body),
                text(&r.prev_hash),
                text(&r.hash),
            ],
        )
    }
}

#[async_trait(?Send)]
impl AuditStore for D1Store {
    async fn append(&self, events: &[Event]) -> StoreResult<usize> {
        let mut attempt = 1;
        loop {
            match self.append_once(events).await {
                Err(StoreError::Conflict) if attempt < APPEND_ATTEMPTS => attempt += 1,
                other => return other,
            }
        }
    }

    async fn list_audit(&self, q: &AuditQuery) -> StoreResult<Vec<AuditRecord>> {
        let sql = "SELECT * FROM audit_events WHERE org_id = ?1 \
             AND (?2 IS NULL OR time_ms >= ?2) AND (?3 IS NULL OR time_ms < ?3) \
             AND (?4 IS NULL OR server = ?4) AND (?5 IS NULL OR tool = ?5) \
             AND (?6 IS NULL OR principal_id = ?6) \
             AND (?7 IS NULL OR EXISTS (SELECT 1 FROM json_each(audit_events.team_ids) WHERE value = ?7)) \
             AND (?8 IS NULL OR outcome = ?8) AND (?9 IS NULL OR trace_id = ?9) AND (?10 IS NULL OR kind = ?10) \
             AND (?11 IS NULL OR time_ms < ?11 OR (time_ms = ?11 AND seq < ?12)) \
             ORDER BY time_ms DESC, seq DESC LIMIT ?13";
        let n = |v: Option<u64>| v.map(num).unwrap_or(JsValue::NULL);
        let rows: Vec<Row> = self
            .all(
                sql,
                &[
                    text(&q.org_id),
                    n(q.from_ms),
                    n(q.to_ms),
                    opt(&q.server),
                    opt(&q.tool),
                    opt(&q.principal_id),
                    opt(&q.team_id),
                    opt(&q.outcome),
                    opt(&q.trace_id),
                    opt(&q.kind),
                    n(q.before.map(|b| b.0)),
                    n(q.before.map(|b| b.1)),
                    num(q.limit as u64),
                ],
            )
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn audit_head(&self, org_id: &str) -> StoreResult<Option<AuditHead>> {
        let row: Option<HeadRow> = self
            .first("SELECT * FROM audit_heads WHERE org_id = ?1", &[text(org_id)])
            .await?;
        Ok(row.map(Into::into))
    }

    async fn audit_chain(&self, org_id: &str, after_seq: u64, limit: usize) -> StoreResult<Vec<AuditRecord>> {
        let rows: Vec<Row> = self
            .all(
                "SELECT * FROM audit_events WHERE org_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                &[text(org_id), num(after_seq), num(limit as u64)],
            )
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn purge_audit(&self, before_ms: u64) -> StoreResult<usize> {
        // Per chain: everything before its first record that is not older than the cutoff (or
        // the whole chain, if none is).
        let chains: Vec<PurgeRow> = self
            .all(
                "SELECT h.org_id, h.anchor_seq, h.seq, \
                 (SELECT MIN(e.seq) FROM audit_events e WHERE e.org_id = h.org_id AND e.time_ms >= ?1) AS keep_from \
                 FROM audit_heads h",
                &[num(before_ms)],
            )
            .await?;
        let mut removed = 0;
        for c in chains {
            let cut = c.keep_from.map_or(c.seq, |k| k - 1.0) as u64;
            if cut <= c.anchor_seq as u64 {
                continue;
            }
            let (org, cut_js) = (text(&c.org_id), num(cut));
            // The anchor first, from the record it names, then the records: one transaction.
            self.batch(vec![
                self.stmt(
                    "UPDATE audit_heads SET anchor_seq = ?2, anchor_hash = \
                     (SELECT hash FROM audit_events WHERE org_id = ?1 AND seq = ?2) \
                     WHERE org_id = ?1 AND EXISTS (SELECT 1 FROM audit_events WHERE org_id = ?1 AND seq = ?2)",
                    &[org.clone(), cut_js.clone()],
                )?,
                self.stmt(
                    "DELETE FROM audit_events WHERE org_id = ?1 AND seq <= ?2 \
                     AND EXISTS (SELECT 1 FROM audit_heads WHERE org_id = ?1 AND anchor_seq = ?2)",
                    &[org, cut_js],
                )?,
            ])
            .await?;
            removed += (cut - c.anchor_seq as u64) as usize;
        }
        Ok(removed)
    }
}
