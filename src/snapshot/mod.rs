//! A per-isolate snapshot of what requests read from storage (keys, identities, grants, servers,
//! catalogs, virtual servers, OAuth access tokens, sealed credentials), revalidated against one
//! version that every write bumps, so that a request in the steady state reads no storage.
//!
//! The rule (docs/storage.md, "Isolate snapshot"): a snapshot validated less than `SOFT_MS` ago
//! is served; between `SOFT_MS` and `HARD_MS` it is served and revalidated in the background;
//! older, it is revalidated before serving. Revalidation reads the version; a version other
//! than the snapshot's drops the snapshot. A write made through the store bumps the version and
//! drops the writing isolate's snapshot at once. So a write acknowledged at time T is seen by
//! every request that starts after T + `HARD_MS`, in every isolate.
//!
//! The platform keeps one `Snapshot` per isolate (a thread-local) and wraps its stores in the
//! decorators of `cached`.
use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;

use futures_util::future::LocalBoxFuture;

use crate::store::{
    ApiKeyRecord, Grant, Identity, IdentityProvider, OAuthToken, PolicyRecord, ServerRecord, StoreResult, ToolRecord,
    Versions, VirtualServer,
};

pub mod cached;
mod memo;

pub use cached::{CachedSecrets, CachedStore};
pub use memo::Memo;

/// Younger than this, a snapshot is served without asking storage.
pub const SOFT_MS: u64 = 1_000;
/// Older than this, a snapshot is revalidated before it is served: the staleness bound.
pub const HARD_MS: u64 = 4_000;
/// A snapshot's content is rebuilt at least this often, whatever the version says (a safety
/// net for a write whose version bump was lost).
pub const MAX_AGE_MS: u64 = 60_000;

/// Caps of the memo tables (entries; a full table is emptied before the next insert).
pub const MAX_KEYS: usize = 4096;
pub const MAX_PRINCIPALS: usize = 4096;
pub const MAX_SERVERS: usize = 4096;
pub const MAX_CATALOGS: usize = 4096;
pub const MAX_VIRTUALS: usize = 1024;
pub const MAX_TOKENS: usize = 4096;
pub const MAX_SECRETS: usize = 4096;
pub const MAX_ISSUERS: usize = 256;
pub const MAX_ORGS: usize = 4096;
/// Organizations whose policies are kept.
pub const MAX_POLICY_ORGS: usize = 1024;
/// Values derived from the snapshot by higher layers (e.g. a merged `/mcp` view per access).
pub const MAX_DERIVED: usize = 256;
/// …and their total weight (a view weighs one per tool it holds): what bounds their memory, as
/// one view of a large deployment holds thousands of tools.
pub const MAX_DERIVED_WEIGHT: usize = 20_000;

/// How fresh a snapshot is, by the age of its last validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Serve it.
    Fresh,
    /// Serve it, and revalidate in the background.
    Stale,
    /// Revalidate before serving.
    Expired,
}

/// The freshness rule. `None`: never validated (or the last revalidation failed).
pub fn freshness(validated_at_ms: Option<u64>, now_ms: u64) -> Freshness {
    match validated_at_ms {
        None => Freshness::Expired,
        Some(at) => match now_ms.saturating_sub(at) {
            age if age < SOFT_MS => Freshness::Fresh,
            age if age < HARD_MS => Freshness::Stale,
            _ => Freshness::Expired,
        },
    }
}

/// What a read does before it is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    Serve,
    /// Serve, and this caller starts the (single) background revalidation.
    ServeAndRevalidate,
    RevalidateFirst,
}

/// The memo tables. `Option` values remember that something does not exist (a server slug
/// without a server, a key without a credential); key and token tables keep positives only.
pub struct Tables {
    pub keys: Memo<String, ApiKeyRecord>,
    pub identities: Memo<String, Option<Identity>>,
    pub grants: Memo<String, Vec<Grant>>,
    pub servers: Memo<String, Option<ServerRecord>>,
    pub server_list: Option<Vec<ServerRecord>>,
    pub tools: Memo<String, Rc<Vec<ToolRecord>>>,
    pub all_tools: Option<Vec<ToolRecord>>,
    pub virtuals: Memo<String, Option<VirtualServer>>,
    pub tokens: Memo<String, OAuthToken>,
    pub secrets: Memo<String, Option<String>>,
    pub issuers: Memo<String, Vec<IdentityProvider>>,
    /// Organizations' argument capture settings (`observe::CaptureMode`).
    pub org_capture: Memo<String, Option<crate::observe::CaptureMode>>,
    /// Each organization's policies, as stored (compiled sets are derived values).
    pub policies: Memo<String, Rc<Vec<PolicyRecord>>>,
    pub derived: Memo<String, Rc<dyn Any>>,
    pub derived_weight: usize,
}

impl Default for Tables {
    fn default() -> Self {
        Self {
            keys: Memo::new(MAX_KEYS),
            identities: Memo::new(MAX_PRINCIPALS),
            grants: Memo::new(MAX_PRINCIPALS),
            servers: Memo::new(MAX_SERVERS),
            server_list: None,
            tools: Memo::new(MAX_CATALOGS),
            all_tools: None,
            virtuals: Memo::new(MAX_VIRTUALS),
            tokens: Memo::new(MAX_TOKENS),
            secrets: Memo::new(MAX_SECRETS),
            issuers: Memo::new(MAX_ISSUERS),
            org_capture: Memo::new(MAX_ORGS),
            policies: Memo::new(MAX_POLICY_ORGS),
            derived: Memo::new(MAX_DERIVED),
            derived_weight: 0,
        }
    }
}

#[derive(Default)]
struct State {
    /// The version the tables were built from.
    version: Option<u64>,
    /// When the last successful validation was *issued* (a read issued later sees later writes).
    validated_at_ms: Option<u64>,
    /// When the tables were last emptied.
    built_at_ms: u64,
    /// Changes whenever the tables are emptied: a storage read that began under another epoch
    /// may predate the change, so its result is not kept.
    epoch: u64,
    revalidating: bool,
    /// The last catalog generation seen (a change announced to live streams forces revalidation).
    generation: Option<u64>,
    tables: Tables,
}

/// One isolate's snapshot. Plain data and rules; `Keeper` drives it against storage.
#[derive(Default)]
pub struct Snapshot {
    state: RefCell<State>,
}

impl Snapshot {
    pub fn new() -> Self {
        Self::default()
    }

    /// What a read at `now_ms` must do first.
    pub fn plan(&self, now_ms: u64) -> Plan {
        let mut s = self.state.borrow_mut();
        match freshness(s.validated_at_ms, now_ms) {
            Freshness::Fresh => Plan::Serve,
            Freshness::Stale if s.revalidating => Plan::Serve,
            Freshness::Stale => {
                s.revalidating = true;
                Plan::ServeAndRevalidate
            }
            Freshness::Expired => Plan::RevalidateFirst,
        }
    }

    /// A version read issued at `issued_at_ms` returned `version`.
    pub fn validated(&self, version: u64, issued_at_ms: u64) {
        let mut s = self.state.borrow_mut();
        s.revalidating = false;
        if s.version.is_some_and(|v| version < v) {
            // Issued before a bump this isolate already saw: it says nothing new.
            return;
        }
        if s.version != Some(version) || issued_at_ms.saturating_sub(s.built_at_ms) >= MAX_AGE_MS {
            s.reset(issued_at_ms);
            s.version = Some(version);
        }
        s.validated_at_ms = s.validated_at_ms.max(Some(issued_at_ms));
    }

    /// A version read failed: nothing is served from the snapshot until one succeeds.
    pub fn revalidation_failed(&self) {
        let mut s = self.state.borrow_mut();
        s.revalidating = false;
        s.reset(0);
        s.validated_at_ms = None;
    }

    /// A write went through; `bumped`: the version its bump produced, issued at `issued_at_ms`
    /// (`None` if the bump failed). The tables are emptied either way.
    pub fn after_write(&self, bumped: Option<u64>, issued_at_ms: u64) {
        let mut s = self.state.borrow_mut();
        s.reset(issued_at_ms);
        match bumped {
            Some(v) => {
                s.version = s.version.max(Some(v));
                s.validated_at_ms = s.validated_at_ms.max(Some(issued_at_ms));
            }
            None => s.validated_at_ms = None,
        }
    }

    /// The catalog generation read by a live stream: when it moved, the next read revalidates
    /// (a client told "list changed" must not be served the old list by this isolate).
    pub fn saw_generation(&self, generation: u64) {
        let mut s = self.state.borrow_mut();
        if s.generation.is_some_and(|g| g != generation) {
            s.validated_at_ms = None;
        }
        s.generation = Some(generation);
    }

    /// The current epoch: pass it back to `keep` with what a storage read returned.
    pub fn epoch(&self) -> u64 {
        self.state.borrow().epoch
    }

    /// Whether reads may be served from (and kept in) the tables at all.
    pub fn is_valid(&self) -> bool {
        self.state.borrow().validated_at_ms.is_some()
    }

    pub fn version(&self) -> Option<u64> {
        self.state.borrow().version
    }

    pub fn validated_at_ms(&self) -> Option<u64> {
        self.state.borrow().validated_at_ms
    }

    /// Looks something up in the tables (nothing while the snapshot is invalid).
    pub fn lookup<R>(&self, f: impl FnOnce(&mut Tables) -> Option<R>) -> Option<R> {
        let mut s = self.state.borrow_mut();
        s.validated_at_ms?;
        f(&mut s.tables)
    }

    /// Keeps what a read begun in `epoch` returned, unless the tables were emptied since (the
    /// result may predate that change) or the snapshot is invalid.
    pub fn keep(&self, epoch: u64, f: impl FnOnce(&mut Tables)) {
        let mut s = self.state.borrow_mut();
        if s.epoch == epoch && s.validated_at_ms.is_some() {
            f(&mut s.tables);
        }
    }
}

impl Tables {
    /// Keeps a derived value within `MAX_DERIVED` entries and `MAX_DERIVED_WEIGHT` in all
    /// (clear-on-full, like every table).
    pub fn keep_derived(&mut self, key: String, value: Rc<dyn Any>, weight: usize) {
        let weight = weight.max(1);
        if weight > MAX_DERIVED_WEIGHT {
            return;
        }
        if self.derived_weight + weight > MAX_DERIVED_WEIGHT || self.derived.len() >= MAX_DERIVED {
            self.derived.clear();
            self.derived_weight = 0;
        }
        self.derived.insert(key, value);
        self.derived_weight += weight;
    }
}

impl State {
    fn reset(&mut self, at_ms: u64) {
        self.tables = Tables::default();
        self.epoch += 1;
        self.built_at_ms = at_ms;
    }
}

/// Runs a future beyond the request that started it (`waitUntil` on the platform).
pub type Spawn = Rc<dyn Fn(LocalBoxFuture<'static, ()>)>;

/// Drives an isolate's snapshot against storage: revalidates by the freshness rule, and bumps
/// the version after writes.
pub struct Keeper {
    pub snapshot: Rc<Snapshot>,
    versions: Rc<dyn Versions>,
    now_ms: Rc<dyn Fn() -> u64>,
    spawn: Spawn,
}

impl Keeper {
    pub fn new(snapshot: Rc<Snapshot>, versions: Rc<dyn Versions>, now_ms: Rc<dyn Fn() -> u64>, spawn: Spawn) -> Self {
        Self {
            snapshot,
            versions,
            now_ms,
            spawn,
        }
    }

    /// Makes the snapshot fresh enough to serve a read now (see the module rule).
    pub async fn fresh(self: &Rc<Self>) {
        match self.snapshot.plan((self.now_ms)()) {
            Plan::Serve => {}
            Plan::ServeAndRevalidate => {
                let me = self.clone();
                (self.spawn)(Box::pin(async move { me.revalidate().await }));
            }
            Plan::RevalidateFirst => self.revalidate().await,
        }
    }

    async fn revalidate(&self) {
        let issued = (self.now_ms)();
        match self.versions.snapshot_version().await {
            Ok(v) => self.snapshot.validated(v, issued),
            Err(e) => {
                tracing::warn!(error = %e, "snapshot version read failed; reading storage directly");
                self.snapshot.revalidation_failed();
            }
        }
    }

    /// After a write: bumps the version (other isolates drop their snapshots within `HARD_MS`)
    /// and empties this isolate's at once. A failed bump is the write's failure: the change may
    /// not reach other isolates before `MAX_AGE_MS`.
    pub async fn wrote(&self) -> StoreResult<()> {
        let issued = (self.now_ms)();
        let bumped = self.versions.bump_snapshot_version().await;
        self.snapshot.after_write(bumped.as_ref().ok().copied(), issued);
        bumped.map(|_| ())
    }

    pub fn now_ms(&self) -> u64 {
        (self.now_ms)()
    }

    /// A value derived from the snapshot by a higher layer (`None` if absent or of another type).
    pub async fn derived<T: 'static>(self: &Rc<Self>, key: &str) -> Option<Rc<T>> {
        self.fresh().await;
        let v = self.snapshot.lookup(|t| t.derived.get(key).cloned())?;
        v.downcast::<T>().ok()
    }

    /// Keeps a derived value computed from reads begun in `epoch`; `weight`: see
    /// `MAX_DERIVED_WEIGHT` (a value heavier than all of it is not kept).
    pub fn keep_derived<T: 'static>(&self, epoch: u64, key: String, value: Rc<T>, weight: usize) {
        self.snapshot.keep(epoch, |t| t.keep_derived(key, value, weight));
    }
}

#[cfg(test)]
mod tests;
