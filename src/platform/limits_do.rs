//! The `RateCounter` Durable Object (binding `COUNTERS`) and `Counters` over it.
//!
//! Sharding: one object per counter key (`idFromName("c:{key}")`), so takes of one key are
//! serialized by its object — exact under any concurrency — and different keys never wait for
//! each other: there is no global hot spot. A take is one subrequest to the key's object; its
//! state is one SQLite row (`counter`), kept in memory too while the object lives (the object
//! is its only writer), and written only when a take changed it. An alarm at the end of the
//! state's life (`Counter::live_until_ms`; a sliding window's one window later, so that it is
//! moved at most once per window) deletes the object's storage.
//!
//! Listing: the same class, named `i:{org}`, is the organization's index (table `idx`: counter
//! key → until when it may count). A counter registers there when its state starts a new life
//! (at most once per window, awaited, failures logged), so an admin listing reads the index
//! by prefix and then peeks each listed counter's own object. The index prunes entries whose
//! time has passed, daily, and deletes itself once empty.
use std::cell::{Cell, RefCell};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, State};

use super::do_rpc::{self, answer};
use super::COUNTERS_BINDING;
use crate::store::limits::{org_of_key, Counter, CounterState, Counters, Take, Window, MAX_PEEK};
use crate::store::{StoreError, StoreResult};

/// How often an index prunes itself.
const INDEX_PRUNE_MS: u64 = 24 * 60 * 60 * 1000;
/// Index pages read per listing at most (a page may hold counters that stopped counting).
const MAX_LIST_ROUNDS: usize = 4;

fn counter_name(key: &str) -> String {
    format!("c:{key}")
}

fn index_name(org: &str) -> String {
    format!("i:{org}")
}

#[derive(Serialize, Deserialize)]
struct TakeReq {
    key: String,
    limit: u64,
    window: Window,
    now_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct PeekReq {
    key: String,
    now_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct RegisterReq {
    key: String,
    until_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct ListReq {
    prefix: String,
    after: Option<String>,
    limit: usize,
    now_ms: u64,
}

/// `Counters` over the `RateCounter` objects.
pub struct DoCounters {
    pub env: Env,
}

impl DoCounters {
    async fn peek_one(&self, key: &str, now_ms: u64) -> StoreResult<Option<CounterState>> {
        let req = PeekReq {
            key: key.to_string(),
            now_ms,
        };
        do_rpc::call(&self.env, COUNTERS_BINDING, &counter_name(key), "/peek", &req)
            .await?
            .json("counter peek")
    }
}

#[async_trait(?Send)]
impl Counters for DoCounters {
    async fn take(&self, key: &str, limit: u64, window: Window, now_ms: u64) -> StoreResult<Take> {
        window.check(limit).map_err(|m| StoreError::Backend(m.into()))?;
        let req = TakeReq {
            key: key.to_string(),
            limit,
            window,
            now_ms,
        };
        do_rpc::call(&self.env, COUNTERS_BINDING, &counter_name(key), "/take", &req)
            .await?
            .json("counter take")
    }

    async fn peek(&self, keys: &[String], now_ms: u64) -> StoreResult<Vec<CounterState>> {
        if keys.len() > MAX_PEEK {
            return Err(StoreError::Backend(format!("peek names at most {MAX_PEEK} keys")));
        }
        let states = join_all(keys.iter().map(|k| self.peek_one(k, now_ms))).await;
        let mut out = Vec::new();
        for s in states {
            out.extend(s?);
        }
        Ok(out)
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        now_ms: u64,
    ) -> StoreResult<Vec<CounterState>> {
        let limit = limit.min(MAX_PEEK);
        let index = index_name(org_of_key(prefix));
        let mut out = Vec::new();
        let mut after = after.map(str::to_string);
        for _ in 0..MAX_LIST_ROUNDS {
            if out.len() >= limit {
                break;
            }
            let req = ListReq {
                prefix: prefix.to_string(),
                after: after.clone(),
                limit: limit - out.len(),
                now_ms,
            };
            let keys: Vec<String> = do_rpc::call(&self.env, COUNTERS_BINDING, &index, "/index/list", &req)
                .await?
                .json("counter index")?;
            let Some(last) = keys.last().cloned() else { break };
            let full = keys.len() == req.limit;
            out.extend(self.peek(&keys, now_ms).await?);
            if !full {
                break;
            }
            after = Some(last);
        }
        Ok(out)
    }
}

#[durable_object]
pub struct RateCounter {
    state: State,
    env: Env,
    /// Whether this instance created its tables.
    schema: Cell<bool>,
    /// The counter as stored (`None`: not read yet).
    cached: RefCell<Option<Counter>>,
    /// Until when this counter is registered in its organization's index, as far as this
    /// instance knows (a new instance registers again: harmless).
    indexed_until: Cell<u64>,
    /// The alarm this instance set (ms since the epoch; 0: none known).
    alarm_at: Cell<u64>,
}

#[derive(Deserialize)]
struct StateRow {
    state: String,
}

#[derive(Deserialize)]
struct KeyRow {
    key: String,
}

impl RateCounter {
    fn sql(&self) -> SqlStorage {
        let sql = self.state.storage().sql();
        if !self.schema.replace(true) {
            let _ = sql.exec(
                "CREATE TABLE IF NOT EXISTS counter (k INTEGER PRIMARY KEY, key TEXT NOT NULL, state TEXT NOT NULL)",
                None,
            );
            let _ = sql.exec(
                "CREATE TABLE IF NOT EXISTS idx (key TEXT PRIMARY KEY, until_ms INTEGER NOT NULL)",
                None,
            );
        }
        sql
    }

    /// The storage, if this object holds any: reads never create it, so an object only ever
    /// read (a peek or listing of what does not exist) stays empty and leaves nothing behind.
    fn existing(&self) -> Result<Option<SqlStorage>> {
        let sql = self.state.storage().sql();
        if self.schema.get() {
            return Ok(Some(sql));
        }
        let rows: Vec<KeyRow> = sql
            .exec(
                "SELECT name AS key FROM sqlite_master WHERE type = 'table' AND name = 'counter'",
                None,
            )?
            .to_array()?;
        // Both tables are created together.
        self.schema.set(!rows.is_empty());
        Ok(self.schema.get().then_some(sql))
    }

    fn load(&self) -> Result<Counter> {
        if let Some(c) = self.cached.borrow().as_ref() {
            return Ok(c.clone());
        }
        let Some(sql) = self.existing()? else {
            return Ok(Counter::default());
        };
        let rows: Vec<StateRow> = sql.exec("SELECT state FROM counter WHERE k = 1", None)?.to_array()?;
        let c = rows
            .first()
            .and_then(|r| serde_json::from_str(&r.state).ok())
            .unwrap_or_default();
        *self.cached.borrow_mut() = Some(Counter::clone(&c));
        Ok(c)
    }

    async fn take(&self, req: TakeReq) -> Result<Response> {
        let before = self.load()?;
        let sql = self.sql();
        let mut c = before.clone();
        // Read, count and write without an await: takes of this key cannot interleave.
        let take = c.take(req.limit, req.window, req.now_ms);
        if c != before {
            sql.exec(
                "INSERT OR REPLACE INTO counter (k, key, state) VALUES (1, ?, ?)",
                vec![req.key.as_str().into(), serde_json::to_string(&c)?.into()],
            )?;
            *self.cached.borrow_mut() = Some(c.clone());
        }
        // Sliding windows move with every take: the alarm and the index look one window beyond,
        // so that each is written at most once per window.
        let until = match req.window {
            Window::Sliding { seconds } => c.live_until_ms() + seconds * 1000,
            _ => c.live_until_ms(),
        };
        if until > self.alarm_at.get() {
            self.alarm_at.set(until);
            self.state
                .storage()
                .set_alarm(worker::ScheduledTime::new(js_sys::Date::new(&(until as f64).into())))
                .await?;
        }
        if until > self.indexed_until.get() {
            self.indexed_until.set(until);
            let reg = RegisterReq {
                key: req.key.clone(),
                until_ms: until,
            };
            let index = index_name(org_of_key(&req.key));
            let r = do_rpc::call(&self.env, COUNTERS_BINDING, &index, "/index/register", &reg).await;
            if let Err(e) = r.and_then(|a| a.json::<bool>("counter index")) {
                self.indexed_until.set(0);
                tracing::warn!(error = %e, "could not list a counter in its organization's index");
            }
        }
        answer(200, &take)
    }

    fn register(&self, req: RegisterReq) -> Result<bool> {
        let sql = self.sql();
        sql.exec(
            "INSERT INTO idx (key, until_ms) VALUES (?, ?) \
             ON CONFLICT (key) DO UPDATE SET until_ms = max(until_ms, excluded.until_ms)",
            vec![req.key.as_str().into(), (req.until_ms as i64).into()],
        )?;
        Ok(true)
    }

    fn list(&self, req: ListReq) -> Result<Vec<String>> {
        let Some(sql) = self.existing()? else {
            return Ok(Vec::new());
        };
        let rows: Vec<KeyRow> = sql
            .exec(
                "SELECT key FROM idx WHERE substr(key, 1, ?) = ? AND key > ? AND until_ms > ? ORDER BY key LIMIT ?",
                vec![
                    (req.prefix.len() as i64).into(),
                    req.prefix.as_str().into(),
                    req.after.unwrap_or_default().into(),
                    (req.now_ms as i64).into(),
                    (req.limit.min(MAX_PEEK) as i64).into(),
                ],
            )?
            .to_array()?;
        Ok(rows.into_iter().map(|r| r.key).collect())
    }

    async fn arm_index_prune(&self) -> Result<()> {
        if self.alarm_at.get() == 0 {
            let at = super::now_ms() + INDEX_PRUNE_MS;
            self.alarm_at.set(at);
            self.state
                .storage()
                .set_alarm(Duration::from_millis(INDEX_PRUNE_MS))
                .await?;
        }
        Ok(())
    }

    async fn wipe(&self) -> Result<()> {
        *self.cached.borrow_mut() = None;
        self.schema.set(false);
        self.indexed_until.set(0);
        self.alarm_at.set(0);
        self.state.storage().delete_all().await
    }
}

#[derive(Deserialize)]
struct CountRow {
    n: f64,
}

impl DurableObject for RateCounter {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            schema: Cell::new(false),
            cached: RefCell::new(None),
            indexed_until: Cell::new(0),
            alarm_at: Cell::new(0),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        match req.path().as_str() {
            "/take" => self.take(do_rpc::body(req).await?).await,
            "/peek" => {
                let p: PeekReq = do_rpc::body(req).await?;
                let c = self.load()?;
                answer(200, &c.state(&p.key, p.now_ms))
            }
            "/index/register" => {
                let ok = self.register(do_rpc::body(req).await?)?;
                self.arm_index_prune().await?;
                answer(200, &ok)
            }
            "/index/list" => answer(200, &self.list(do_rpc::body(req).await?)?),
            _ => Response::error("not found", 404),
        }
    }

    /// A counter: its state stopped counting (storage deleted) or lives on (alarm moved). An
    /// index: entries whose time passed are pruned; an empty index deletes itself.
    async fn alarm(&self) -> Result<Response> {
        let now = super::now_ms();
        self.alarm_at.set(0);
        let counter = self.load()?;
        let until = counter.live_until_ms();
        if until > now {
            self.alarm_at.set(until);
            self.state
                .storage()
                .set_alarm(worker::ScheduledTime::new(js_sys::Date::new(&(until as f64).into())))
                .await?;
            return Response::ok("counting");
        }
        let Some(sql) = self.existing()? else {
            return Response::ok("empty");
        };
        sql.exec("DELETE FROM idx WHERE until_ms <= ?", vec![(now as i64).into()])?;
        let left: Vec<CountRow> = sql.exec("SELECT COUNT(*) AS n FROM idx", None)?.to_array()?;
        if left.first().is_some_and(|r| r.n > 0.0) {
            self.arm_index_prune().await?;
            return Response::ok("pruned");
        }
        self.wipe().await?;
        Response::ok("deleted")
    }
}
