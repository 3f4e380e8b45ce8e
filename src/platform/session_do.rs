//! The `McpSession` Durable Object: one per legacy MCP session. Its SQLite storage holds the
//! session state (table `session`, one row per key: the state fixed at `initialize`, then the
//! log level and each upstream session, each written when it changes) and the resumable event
//! log (table `events`); an alarm deletes everything once the session has been idle for
//! `SESSION_IDLE_TTL_MS`. Requests of one session run concurrently here (they interleave at
//! every await), so nothing is written back at the end of a request, and every write is dropped
//! once the session has ended.
//!
//! Per message the object does as little storage work as it can (this is the legacy hot path):
//! the tables are created once per object instance, a request stream's readers are served from
//! memory (`Tails`; the log is written for resumption, read back only to resume), the state is
//! read from storage once per instance and then kept in step with every write, the log is
//! pruned every `PRUNE_EVERY` events, and the expiry alarm is moved at most every `REARM_MS`.
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use worker::{durable_object, DurableObject, Env, Request, RequestInit, Response, Result, SqlStorage, State};

use futures_util::StreamExt;

use super::{config, convert, Spawn, CTX_HEADER, SESSIONS_BINDING, SESSION_HEADER};
use crate::gateway::endpoint::SessionCtx;
use crate::gateway::record;
use crate::gateway::relay::EventLog;
use crate::gateway::s2c::{Outstanding, OutstandingBook};
use crate::gateway::session::{
    self, After, ReplayLog, SessionState, StateWrites, MAX_LOGGED_EVENTS, SESSION_IDLE_TTL_MS,
};
use crate::gateway::tail::{self, Tails};
use crate::gateway::upstream::UpstreamSession;
use crate::gateway::GatewayError;
use crate::gateway::Services;
use crate::http::{ByteStream, HttpRequest, HttpResponse};

/// Server→client requests kept awaiting the client's answer; older ones are pruned (their
/// upstreams have long given up).
const MAX_OUTSTANDING: i64 = 256;

/// Key of the state fixed at `initialize` (the whole `SessionState` as it was then).
const STATE_KEY: &str = "state";
/// Key of the log level set by `logging/setLevel`.
const LEVEL_KEY: &str = "level";
/// Key prefix of an upstream session, followed by the server's slug.
const UPSTREAM_KEY: &str = "up:";
/// Guard of every write: the session still exists (no DELETE or expiry removed it meanwhile;
/// a later request may have recreated the empty tables).
const WHILE_LIVE: &str = "EXISTS (SELECT 1 FROM session WHERE k = 'state')";
/// The event log is pruned to `MAX_LOGGED_EVENTS` once per this many appended events (so it
/// holds at most `MAX_LOGGED_EVENTS + PRUNE_EVERY - 1`).
const PRUNE_EVERY: u64 = 32;
/// The expiry alarm is moved forward at most this often: a session expires between
/// `SESSION_IDLE_TTL_MS - REARM_MS` and `SESSION_IDLE_TTL_MS` after its last request.
const REARM_MS: u64 = 60_000;

/// Sends a legacy-era request to its session's Durable Object (named by the session id).
pub async fn forward(env: &Env, req: &HttpRequest, session_id: &str, ctx: &SessionCtx) -> Result<Response> {
    let ns = env.durable_object(SESSIONS_BINDING)?;
    let stub = ns.id_from_name(session_id)?.get_stub()?;
    let headers = worker::Headers::new();
    for (k, v) in req.headers.iter() {
        headers.append(k, v)?;
    }
    headers.set(CTX_HEADER, &ctx.to_header()?)?;
    headers.set(SESSION_HEADER, session_id)?;
    let mut init = RequestInit::new();
    init.with_method(worker::Method::from(req.method.as_str().to_string()))
        .with_headers(headers);
    if !req.body.is_empty() {
        init.with_body(Some(js_sys::Uint8Array::from(req.body.as_slice()).into()));
    }
    let inner = Request::new_with_init(&format!("https://session.internal{}", req.path), &init)?;
    stub.fetch_with_request(inner).await
}

/// The session's event log in Durable Object SQLite, and the object's running request streams.
#[derive(Clone)]
struct SqlLog {
    sql: SqlStorage,
    tails: Rc<Tails>,
    spawn: Spawn,
    /// Events appended by this object instance (the pruning cadence).
    appended: Rc<Cell<u64>>,
    /// The session state as stored, kept in step with each write (`None`: read storage).
    state: Rc<RefCell<Option<SessionState>>>,
}

impl EventLog for SqlLog {
    /// A request's stream is relayed by a task of the object, so that it runs to its end (and is
    /// logged) even if the client disconnects; the client reads it from the log as it grows.
    fn detach(&self, stream: u64, relayed: ByteStream) -> ByteStream {
        self.tails.open(stream);
        let tails = self.tails.clone();
        (self.spawn)(Box::pin(async move {
            let mut relayed = relayed;
            while relayed.next().await.is_some() {}
            tails.end(stream);
        }));
        tail::follow(Rc::new(self.clone()), self.tails.clone(), stream, 0)
    }

    fn append(&self, stream: u64, seq: u64, data: &str) {
        let _ = self.sql.exec(
            &format!("INSERT OR REPLACE INTO events (stream, seq, data) SELECT ?, ?, ? WHERE {WHILE_LIVE}"),
            vec![(stream as i64).into(), (seq as i64).into(), data.into()],
        );
        // Keep the log bounded: drop the oldest events beyond the limit, every so often.
        let n = self.appended.get() + 1;
        self.appended.set(n);
        if n.is_multiple_of(PRUNE_EVERY) {
            let _ = self.sql.exec(
                "DELETE FROM events WHERE rowid <= (SELECT MAX(rowid) FROM events) - ?",
                vec![(MAX_LOGGED_EVENTS as i64).into()],
            );
        }
        self.tails.record(stream, seq, data);
        self.tails.notify(stream);
    }
}

impl OutstandingBook for SqlLog {
    fn remember(&self, gateway_id: &str, o: &Outstanding) {
        let Ok(v) = serde_json::to_string(o) else { return };
        let _ = self.sql.exec(
            &format!("INSERT OR REPLACE INTO outstanding (gid, v) SELECT ?, ? WHERE {WHILE_LIVE}"),
            vec![gateway_id.into(), v.into()],
        );
        let _ = self.sql.exec(
            "DELETE FROM outstanding WHERE rowid <= (SELECT MAX(rowid) FROM outstanding) - ?",
            vec![MAX_OUTSTANDING.into()],
        );
    }

    fn take(&self, gateway_id: &str) -> Option<Outstanding> {
        let rows: Vec<StateRow> = self
            .sql
            .exec("SELECT v FROM outstanding WHERE gid = ?", vec![gateway_id.into()])
            .ok()?
            .to_array()
            .ok()?;
        let _ = self
            .sql
            .exec("DELETE FROM outstanding WHERE gid = ?", vec![gateway_id.into()]);
        rows.into_iter().next().and_then(|r| serde_json::from_str(&r.v).ok())
    }
}

impl SqlLog {
    /// Writes one state key, unless the session has ended. Failures (the tables were dropped
    /// under a running request) are logged, never raised: the session is gone either way.
    fn put(&self, key: &str, v: String) {
        if let Err(e) = self.sql.exec(
            &format!("INSERT OR REPLACE INTO session (k, v) SELECT ?, ? WHERE {WHILE_LIVE}"),
            vec![key.into(), v.into()],
        ) {
            tracing::info!(error = %e, "session state not written (the session ended)");
        }
    }
}

impl StateWrites for SqlLog {
    fn set_log_level(&self, level: Option<&str>) {
        self.put(LEVEL_KEY, serde_json::to_string(&level).unwrap_or_default());
        if let Some(st) = self.state.borrow_mut().as_mut() {
            st.log_level = level.map(str::to_string);
        }
    }

    fn set_upstream(&self, slug: &str, session: Option<&UpstreamSession>) {
        let v = serde_json::to_string(&session).unwrap_or_default();
        self.put(&format!("{UPSTREAM_KEY}{slug}"), v);
        if let Some(st) = self.state.borrow_mut().as_mut() {
            match session {
                Some(us) => st.upstreams.insert(slug.to_string(), us.clone()),
                None => st.upstreams.remove(slug),
            };
        }
    }
}

#[derive(serde::Deserialize)]
struct Row {
    seq: f64,
    data: String,
}

#[derive(serde::Deserialize)]
struct Counter {
    n: f64,
}

impl ReplayLog for SqlLog {
    fn next_stream(&self) -> u64 {
        self.sql
            .exec("UPDATE meta SET v = v + 1 WHERE k = 'stream' RETURNING v AS n", None)
            .and_then(|c| c.one::<Counter>())
            .map(|c| c.n as u64)
            .unwrap_or(1)
    }

    fn replay(&self, stream: u64, after_seq: u64) -> Vec<(u64, String)> {
        self.sql
            .exec(
                "SELECT seq, data FROM events WHERE stream = ? AND seq > ? ORDER BY seq",
                vec![(stream as i64).into(), (after_seq as i64).into()],
            )
            .and_then(|c| c.to_array::<Row>())
            .map(|rows| rows.into_iter().map(|r| (r.seq as u64, r.data)).collect())
            .unwrap_or_default()
    }

    fn resume(&self, stream: u64, after_seq: u64) -> Option<ByteStream> {
        let log = Rc::new(self.clone());
        self.tails
            .knows(stream)
            .then(|| tail::follow(log, self.tails.clone(), stream, after_seq))
    }
}

#[durable_object]
pub struct McpSession {
    state: State,
    env: Env,
    /// The request streams this object relays (in memory: they live as long as the object).
    tails: Rc<Tails>,
    /// Whether this instance created the tables (since it started or last wiped its storage).
    schema: Cell<bool>,
    /// Bumped whenever the storage is wiped (DELETE, expiry): a request that saw it change ran
    /// while its session ended.
    wiped: Cell<u64>,
    /// When this instance last moved the expiry alarm (ms since the epoch; 0: never).
    armed_at: Cell<u64>,
    appended: Rc<Cell<u64>>,
    /// The session state, once read (see `SqlLog::state`).
    cached: Rc<RefCell<Option<SessionState>>>,
}

#[derive(serde::Deserialize)]
struct StateRow {
    v: String,
}

#[derive(serde::Deserialize)]
struct KeyRow {
    k: String,
    v: String,
}

impl McpSession {
    /// One request on this session: `initialize` creates it; anything else needs it to exist.
    async fn serve(
        &self,
        svc: &Services<'_>,
        ctx: &SessionCtx,
        session_id: &str,
        core_req: &HttpRequest,
    ) -> Result<HttpResponse> {
        let not_found = || crate::gateway::error::mcp_error_response(None, &GatewayError::SessionNotFound);
        let sql = self.sql();
        let current = self.current(&sql);
        if ctx.initialize {
            if current.is_some() {
                return Ok(not_found());
            }
            let (st, resp) = session::initialize(svc, ctx, session_id, core_req).await;
            if let Some(st) = st {
                Self::create(&sql, &st)?;
                *self.cached.borrow_mut() = Some(st);
                self.touch(true).await?;
            }
            return Ok(resp);
        }
        let Some(mut st) = current else {
            return Ok(not_found());
        };
        let log = Rc::new(SqlLog {
            sql: sql.clone(),
            tails: self.tails.clone(),
            spawn: super::spawn_local(),
            appended: self.appended.clone(),
            state: self.cached.clone(),
        });
        let wiped = self.wiped.get();
        let (resp, after) = session::handle(svc, ctx, &mut st, core_req, log).await;
        match after {
            // Every change was written when it was made. A request that ran while the session
            // was deleted answers as any request to a missing session does.
            After::Keep if self.wiped.get() != wiped => return Ok(not_found()),
            After::Keep => self.touch(false).await?,
            After::End => self.wipe().await?,
        }
        Ok(resp)
    }

    fn sql(&self) -> SqlStorage {
        let sql = self.state.storage().sql();
        if self.schema.replace(true) {
            return sql;
        }
        let _ = sql.exec(
            "CREATE TABLE IF NOT EXISTS session (k TEXT PRIMARY KEY, v TEXT NOT NULL)",
            None,
        );
        let _ = sql.exec(
            "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL)",
            None,
        );
        let _ = sql.exec("INSERT OR IGNORE INTO meta (k, v) VALUES ('stream', 0)", None);
        let _ = sql.exec(
            "CREATE TABLE IF NOT EXISTS outstanding (gid TEXT PRIMARY KEY, v TEXT NOT NULL)",
            None,
        );
        let _ = sql.exec(
            "CREATE TABLE IF NOT EXISTS events (stream INTEGER NOT NULL, seq INTEGER NOT NULL, data TEXT NOT NULL, \
             PRIMARY KEY (stream, seq))",
            None,
        );
        sql
    }

    /// The state as of now: kept in memory once read, every write applied to it as well.
    fn current(&self, sql: &SqlStorage) -> Option<SessionState> {
        if let Some(st) = self.cached.borrow().as_ref() {
            return Some(st.clone());
        }
        let st = Self::load(sql)?;
        *self.cached.borrow_mut() = Some(st.clone());
        Some(st)
    }

    /// The state as stored: what `initialize` stored, with every change written since.
    fn load(sql: &SqlStorage) -> Option<SessionState> {
        let rows: Vec<KeyRow> = sql.exec("SELECT k, v FROM session", None).ok()?.to_array().ok()?;
        let mut st: SessionState = rows
            .iter()
            .find(|r| r.k == STATE_KEY)
            .and_then(|r| serde_json::from_str(&r.v).ok())?;
        for r in &rows {
            if r.k == LEVEL_KEY {
                st.log_level = serde_json::from_str(&r.v).unwrap_or_default();
            } else if let Some(slug) = r.k.strip_prefix(UPSTREAM_KEY) {
                match serde_json::from_str::<Option<UpstreamSession>>(&r.v).ok().flatten() {
                    Some(us) => st.upstreams.insert(slug.to_string(), us),
                    None => st.upstreams.remove(slug),
                };
            }
        }
        Some(st)
    }

    fn create(sql: &SqlStorage, st: &SessionState) -> Result<()> {
        sql.exec(
            "INSERT INTO session (k, v) VALUES (?, ?)",
            vec![STATE_KEY.into(), serde_json::to_string(st)?.into()],
        )?;
        Ok(())
    }

    /// Moves the expiry alarm to `SESSION_IDLE_TTL_MS` from now, unless this instance did so
    /// less than `REARM_MS` ago (`force`: always).
    async fn touch(&self, force: bool) -> Result<()> {
        let now = super::now_ms();
        if !force && now.saturating_sub(self.armed_at.get()) < REARM_MS {
            return Ok(());
        }
        self.armed_at.set(now);
        self.state
            .storage()
            .set_alarm(Duration::from_millis(SESSION_IDLE_TTL_MS))
            .await
    }

    /// Deletes everything the session stored; the next request starts from empty tables.
    async fn wipe(&self) -> Result<()> {
        self.wiped.set(self.wiped.get() + 1);
        self.schema.set(false);
        *self.cached.borrow_mut() = None;
        self.armed_at.set(0);
        self.state.storage().delete_all().await
    }
}

impl DurableObject for McpSession {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            tails: Rc::new(Tails::default()),
            schema: Cell::new(false),
            wiped: Cell::new(0),
            armed_at: Cell::new(0),
            appended: Rc::new(Cell::new(0)),
            cached: Rc::new(RefCell::new(None)),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let mut ctx: SessionCtx = match req.headers().get(CTX_HEADER)?.and_then(|h| SessionCtx::from_header(&h)) {
            Some(c) => c,
            None => return Response::error("missing session context", 400),
        };
        let session_id = req.headers().get(SESSION_HEADER)?.unwrap_or_default();
        let cfg = config(&self.env);
        let deps = super::live_deps(&self.env, &cfg, super::spawn_local())?;
        // Sessions do not authenticate (the Worker did): no origin needed. The request's event,
        // begun by the Worker, is completed here (whatever the answer) and emitted once.
        let svc = deps.request_services("");
        let probe = session::probe(&svc, &mut ctx);
        let svc = svc.with_probe(probe.clone());
        let resp = match convert::request(req, crate::mcp::transport::MAX_BODY_BYTES).await {
            Ok(core_req) => self.serve(&svc, &ctx, &session_id, &core_req).await?,
            Err(resp) => resp,
        };
        convert::response(record::finish(probe, resp))
    }

    async fn alarm(&self) -> Result<Response> {
        self.wipe().await?;
        Response::ok("session expired")
    }
}
