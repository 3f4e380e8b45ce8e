//! The `Approvals` Durable Object (binding `APPROVALS`) and the `Approvals` store over it.
//!
//! One object per organization (`idFromName(org_id)`): every request, decision and consumption
//! of an organization's approvals runs in its object, whose SQLite table `approvals` holds one
//! row per record (the record as JSON, with the columns its queries need). Each operation
//! reads and writes without an await in between, so the object serializes them: one decision
//! per record, one consumption per approval. Records past their retention
//! (`ApprovalRecord::purge_at_ms`) are deleted on every write and by a daily alarm; an
//! object left empty deletes its storage.
use std::cell::Cell;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, State};

use super::do_rpc::{self, answer};
use super::APPROVALS_BINDING;
use crate::store::approvals::{
    ApprovalBinding, ApprovalRecord, ApprovalStatus, Approvals as ApprovalStore, DecideError, NewApproval, MAX_PAGE,
};
use crate::store::{StoreError, StoreResult};

/// How often an object prunes records past their retention.
const PRUNE_EVERY_MS: u64 = 24 * 60 * 60 * 1000;

#[derive(Serialize, Deserialize)]
struct RequestReq {
    new: NewApproval,
    ttl_ms: u64,
    now_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct GetReq {
    id: String,
    now_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct ListReq {
    status: Option<ApprovalStatus>,
    after: Option<String>,
    limit: usize,
    now_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct DecideReq {
    id: String,
    approve: bool,
    by: String,
    now_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct ConsumeReq {
    binding: ApprovalBinding,
    now_ms: u64,
}

/// `Approvals` over the organizations' `Approvals` objects.
pub struct DoApprovals {
    pub env: Env,
}

impl DoApprovals {
    async fn call(&self, org: &str, path: &str, body: &impl Serialize) -> StoreResult<do_rpc::Answer> {
        do_rpc::call(&self.env, APPROVALS_BINDING, org, path, body).await
    }
}

#[async_trait(?Send)]
impl ApprovalStore for DoApprovals {
    async fn request(&self, new: &NewApproval, ttl_ms: u64, now_ms: u64) -> StoreResult<ApprovalRecord> {
        let req = RequestReq {
            new: new.clone(),
            ttl_ms,
            now_ms,
        };
        self.call(&new.binding.org_id, "/request", &req)
            .await?
            .json("approval request")
    }

    async fn get(&self, org_id: &str, id: &str, now_ms: u64) -> StoreResult<Option<ApprovalRecord>> {
        let req = GetReq { id: id.into(), now_ms };
        self.call(org_id, "/get", &req).await?.json("approval get")
    }

    async fn list(
        &self,
        org_id: &str,
        status: Option<ApprovalStatus>,
        after: Option<&str>,
        limit: usize,
        now_ms: u64,
    ) -> StoreResult<Vec<ApprovalRecord>> {
        let req = ListReq {
            status,
            after: after.map(str::to_string),
            limit,
            now_ms,
        };
        self.call(org_id, "/list", &req).await?.json("approval list")
    }

    async fn decide(
        &self,
        org_id: &str,
        id: &str,
        approve: bool,
        by: &str,
        now_ms: u64,
    ) -> Result<Option<ApprovalRecord>, DecideError> {
        let req = DecideReq {
            id: id.into(),
            approve,
            by: by.into(),
            now_ms,
        };
        let a = self.call(org_id, "/decide", &req).await?;
        match a.status {
            404 => Ok(None),
            409 => Err(DecideError::NotPending(Box::new(
                serde_json::from_str(&a.body).map_err(|e| StoreError::Backend(format!("approval decide: {e}")))?,
            ))),
            _ => Ok(Some(a.json("approval decide")?)),
        }
    }

    async fn consume(&self, binding: &ApprovalBinding, now_ms: u64) -> StoreResult<Option<ApprovalRecord>> {
        let req = ConsumeReq {
            binding: binding.clone(),
            now_ms,
        };
        self.call(&binding.org_id, "/consume", &req)
            .await?
            .json("approval consume")
    }
}

/// What identifies a call within an organization (the binding without its organization).
fn call_key(b: &ApprovalBinding) -> String {
    format!("{}\n{}\n{}\n{}", b.principal_id, b.server, b.tool, b.arguments_hash)
}

#[durable_object]
pub struct Approvals {
    state: State,
    /// Whether this instance created its table.
    schema: Cell<bool>,
    /// Whether this instance set the pruning alarm.
    armed: Cell<bool>,
}

/// What a decision did: taken (200), refused for a record that is not pending (409, with the
/// record), or nothing to decide (404).
enum Decided {
    Taken(ApprovalRecord),
    NotPending(ApprovalRecord),
    Unknown,
}

#[derive(Deserialize)]
struct RecordRow {
    record: String,
}

#[derive(Deserialize)]
struct CountRow {
    n: f64,
}

impl Approvals {
    fn sql(&self) -> SqlStorage {
        let sql = self.state.storage().sql();
        if !self.schema.replace(true) {
            let _ = sql.exec(
                "CREATE TABLE IF NOT EXISTS approvals (id TEXT PRIMARY KEY, call TEXT NOT NULL, status TEXT NOT NULL, \
                 expires_at_ms INTEGER NOT NULL, purge_at_ms INTEGER NOT NULL, record TEXT NOT NULL)",
                None,
            );
            let _ = sql.exec(
                "CREATE INDEX IF NOT EXISTS approvals_call ON approvals (call, status, expires_at_ms)",
                None,
            );
            let _ = sql.exec(
                "CREATE INDEX IF NOT EXISTS approvals_purge ON approvals (purge_at_ms)",
                None,
            );
        }
        sql
    }

    /// The storage, if this object holds any: reads never create it, so an organization's
    /// object that was only ever read (a listing, a lookup, a consume) stays empty.
    fn existing(&self) -> Result<Option<SqlStorage>> {
        let sql = self.state.storage().sql();
        if self.schema.get() {
            return Ok(Some(sql));
        }
        let rows: Vec<CountRow> = sql
            .exec(
                "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'approvals'",
                None,
            )?
            .to_array()?;
        self.schema.set(rows.first().is_some_and(|r| r.n > 0.0));
        Ok(self.schema.get().then_some(sql))
    }

    fn records(sql: &SqlStorage, query: &str, params: Vec<worker::SqlStorageValue>) -> Result<Vec<ApprovalRecord>> {
        let rows: Vec<RecordRow> = sql.exec(query, params)?.to_array()?;
        rows.iter()
            .map(|r| serde_json::from_str(&r.record).map_err(worker::Error::from))
            .collect()
    }

    /// Writes a record as it now is (status as stored: expiry stays computed).
    fn put(sql: &SqlStorage, r: &ApprovalRecord) -> Result<()> {
        sql.exec(
            "INSERT OR REPLACE INTO approvals (id, call, status, expires_at_ms, purge_at_ms, record) \
             VALUES (?, ?, ?, ?, ?, ?)",
            vec![
                r.id.as_str().into(),
                call_key(&r.binding).into(),
                r.status.as_str().into(),
                (r.expires_at_ms as i64).into(),
                (r.purge_at_ms() as i64).into(),
                serde_json::to_string(r)?.into(),
            ],
        )?;
        Ok(())
    }

    fn purge(sql: &SqlStorage, now_ms: u64) -> Result<()> {
        sql.exec(
            "DELETE FROM approvals WHERE purge_at_ms <= ?",
            vec![(now_ms as i64).into()],
        )?;
        Ok(())
    }

    fn request(&self, req: RequestReq) -> Result<ApprovalRecord> {
        let sql = self.sql();
        Self::purge(&sql, req.now_ms)?;
        let pending = Self::records(
            &sql,
            "SELECT record FROM approvals WHERE call = ? AND status = 'pending' AND expires_at_ms > ? ORDER BY id LIMIT 1",
            vec![call_key(&req.new.binding).into(), (req.now_ms as i64).into()],
        )?;
        if let Some(r) = pending.into_iter().next() {
            return Ok(r);
        }
        let r = ApprovalRecord::pending(&req.new, req.ttl_ms, req.now_ms);
        Self::put(&sql, &r)?;
        Ok(r)
    }

    fn get(&self, id: &str, now_ms: u64) -> Result<Option<ApprovalRecord>> {
        let Some(sql) = self.existing()? else {
            return Ok(None);
        };
        let found = Self::records(&sql, "SELECT record FROM approvals WHERE id = ?", vec![id.into()])?;
        Ok(found.into_iter().next().map(|r| r.at(now_ms)))
    }

    fn list(&self, req: ListReq) -> Result<Vec<ApprovalRecord>> {
        let Some(sql) = self.existing()? else {
            return Ok(Vec::new());
        };
        let now = (req.now_ms as i64).into();
        let (filter, mut params): (&str, Vec<worker::SqlStorageValue>) = match req.status {
            None => ("1", vec![]),
            Some(s @ (ApprovalStatus::Pending | ApprovalStatus::Approved)) => {
                ("status = ? AND expires_at_ms > ?", vec![s.as_str().into(), now])
            }
            Some(ApprovalStatus::Expired) => ("status IN ('pending', 'approved') AND expires_at_ms <= ?", vec![now]),
            Some(s) => ("status = ?", vec![s.as_str().into()]),
        };
        let after = match &req.after {
            Some(a) => {
                params.push(a.as_str().into());
                "AND id < ?"
            }
            None => "",
        };
        params.push((req.limit.min(MAX_PAGE) as i64).into());
        let q = format!("SELECT record FROM approvals WHERE {filter} {after} ORDER BY id DESC LIMIT ?");
        Ok(Self::records(&sql, &q, params)?
            .into_iter()
            .map(|r| r.at(req.now_ms))
            .collect())
    }

    fn decide(&self, req: DecideReq) -> Result<Decided> {
        let Some(sql) = self.existing()? else {
            return Ok(Decided::Unknown);
        };
        Self::purge(&sql, req.now_ms)?;
        let Some(current) = self.get(&req.id, req.now_ms)? else {
            return Ok(Decided::Unknown);
        };
        if current.status != ApprovalStatus::Pending {
            return Ok(Decided::NotPending(current));
        }
        let decided = current.decided(req.approve, &req.by, req.now_ms);
        Self::put(&sql, &decided)?;
        Ok(Decided::Taken(decided))
    }

    fn consume(&self, req: ConsumeReq) -> Result<Option<ApprovalRecord>> {
        let Some(sql) = self.existing()? else {
            return Ok(None);
        };
        let found = Self::records(
            &sql,
            "SELECT record FROM approvals WHERE call = ? AND status = 'approved' AND expires_at_ms > ? \
             ORDER BY expires_at_ms, id LIMIT 1",
            vec![call_key(&req.binding).into(), (req.now_ms as i64).into()],
        )?;
        let Some(mut r) = found.into_iter().next().filter(|r| r.binding == req.binding) else {
            return Ok(None);
        };
        r.status = ApprovalStatus::Consumed;
        r.consumed_at_ms = Some(req.now_ms);
        Self::put(&sql, &r)?;
        Ok(Some(r))
    }

    /// Sets the daily pruning alarm, once per instance (an alarm already set is moved: harmless).
    async fn arm(&self) -> Result<()> {
        if !self.armed.replace(true) {
            self.state
                .storage()
                .set_alarm(Duration::from_millis(PRUNE_EVERY_MS))
                .await?;
        }
        Ok(())
    }
}

impl DurableObject for Approvals {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            schema: Cell::new(false),
            armed: Cell::new(false),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        match req.path().as_str() {
            "/request" => {
                let r = self.request(do_rpc::body(req).await?)?;
                self.arm().await?;
                answer(200, &r)
            }
            "/get" => {
                let g: GetReq = do_rpc::body(req).await?;
                answer(200, &self.get(&g.id, g.now_ms)?)
            }
            "/list" => answer(200, &self.list(do_rpc::body(req).await?)?),
            "/decide" => match self.decide(do_rpc::body(req).await?)? {
                Decided::Taken(r) => answer(200, &r),
                Decided::NotPending(r) => answer(409, &r),
                Decided::Unknown => answer(404, &serde_json::Value::Null),
            },
            "/consume" => answer(200, &self.consume(do_rpc::body(req).await?)?),
            _ => Response::error("not found", 404),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        self.armed.set(false);
        let Some(sql) = self.existing()? else {
            return Response::ok("empty");
        };
        Self::purge(&sql, super::now_ms())?;
        let left: Vec<CountRow> = sql.exec("SELECT COUNT(*) AS n FROM approvals", None)?.to_array()?;
        if left.first().is_some_and(|r| r.n > 0.0) {
            self.arm().await?;
            return Response::ok("pruned");
        }
        self.schema.set(false);
        self.state.storage().delete_all().await?;
        Response::ok("deleted")
    }
}
