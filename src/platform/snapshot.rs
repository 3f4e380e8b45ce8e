//! The isolate's snapshot (`crate::snapshot`): one per isolate, kept in a thread-local (an
//! isolate runs one thread), wrapped around the D1 and KV stores of every request — in the
//! Worker and in the Durable Objects alike.
use std::rc::Rc;

use worker::{Env, Result};

use super::{d1::D1Store, kv::KvSecrets, Spawn, DB_BINDING, VAULT_BINDING};
use crate::snapshot::{CachedSecrets, CachedStore, Keeper, Snapshot};
use crate::store::{SecretStore, Store};

/// The relational stores, the secret store, and the keeper of the snapshot under both.
pub type Stores = (Rc<dyn Store>, Rc<dyn SecretStore>, Rc<Keeper>);

thread_local! {
    static SNAPSHOT: Rc<Snapshot> = Rc::new(Snapshot::new());
}

/// The stores of one request. `cache_reads`: serve reads from the snapshot (off for the admin
/// API, which reads storage as it is; its writes bump the version either way). Background
/// revalidation runs under `spawn`.
pub fn stores(env: &Env, spawn: Spawn, cache_reads: bool) -> Result<Stores> {
    let d1 = Rc::new(D1Store::new(env.d1(DB_BINDING)?));
    let kv: Rc<dyn SecretStore> = Rc::new(KvSecrets::new(env.kv(VAULT_BINDING)?));
    let keeper = Rc::new(Keeper::new(
        SNAPSHOT.with(Rc::clone),
        d1.clone(),
        Rc::new(super::now_ms),
        spawn,
    ));
    Ok((
        Rc::new(CachedStore::new(d1, keeper.clone(), cache_reads)),
        Rc::new(CachedSecrets::new(kv, keeper.clone(), cache_reads)),
        keeper,
    ))
}
