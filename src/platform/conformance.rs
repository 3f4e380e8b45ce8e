//! Test-only, compiled into the `store-conformance` build alone: `POST /__store_conformance`
//! runs the store conformance suite (`store::conformance`) against this Worker's D1 and KV
//! bindings and its counters and approvals Durable Objects, and answers each check's result as
//! JSON. `tests/store-conformance.test.mjs` runs it on fresh storage under Miniflare. Two more
//! routes let integration tests drive the objects from outside:
//! `POST /__store_conformance/counters/take` (`{key, limit, window}`: one take now, answered as
//! the `Take`) and `POST /__store_conformance/approvals` (a `NewApproval`, optionally with
//! `ttl_ms`: the pending record). Only the admin token may call them; anyone else gets the
//! same 404 as for any unknown path.
use serde::Deserialize;
use worker::{Env, Method, Request, Response, Result};

use super::approvals_do::DoApprovals;
use super::limits_do::DoCounters;
use super::{d1::D1Store, kv::KvSecrets, DB_BINDING, VAULT_BINDING};
use crate::store::approvals::{NewApproval, PENDING_TTL_MS};
use crate::store::conformance::{self, LimitStores};
use crate::store::limits::Window;
use crate::store::{Approvals, Counters};

pub const PATH: &str = "/__store_conformance";

/// Whether `path` is one of this module's routes.
pub fn serves(path: &str) -> bool {
    path.strip_prefix(PATH)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[derive(Deserialize)]
struct TakeBody {
    key: String,
    limit: u64,
    window: Window,
}

#[derive(Deserialize)]
struct RequestBody {
    #[serde(flatten)]
    new: NewApproval,
    ttl_ms: Option<u64>,
}

fn not_found() -> Result<Response> {
    Response::from_json(&serde_json::json!({"error": "not found"})).map(|r| r.with_status(404))
}

fn store_error(e: crate::store::StoreError) -> Result<Response> {
    Response::from_json(&serde_json::json!({"error": e.to_string()})).map(|r| r.with_status(500))
}

pub async fn handle(mut req: Request, env: &Env) -> Result<Response> {
    let token = super::config(env).admin_token;
    let bearer = req.headers().get("authorization")?;
    let allowed = match (token, bearer.as_deref().and_then(|h| h.strip_prefix("Bearer "))) {
        (Some(t), Some(b)) => crate::crypto::secrets_equal(&t, b),
        _ => false,
    };
    if !allowed || req.method() != Method::Post {
        return not_found();
    }
    let counters = DoCounters { env: env.clone() };
    let approvals = DoApprovals { env: env.clone() };
    match req.path().strip_prefix(PATH).unwrap_or_default() {
        "" => {}
        "/counters/take" => {
            let b: TakeBody = req.json().await?;
            return match counters.take(&b.key, b.limit, b.window, super::now_ms()).await {
                Ok(t) => Response::from_json(&t),
                Err(e) => store_error(e),
            };
        }
        "/approvals" => {
            let b: RequestBody = req.json().await?;
            let ttl = b.ttl_ms.unwrap_or(PENDING_TTL_MS);
            return match approvals.request(&b.new, ttl, super::now_ms()).await {
                Ok(r) => Response::from_json(&r),
                Err(e) => store_error(e),
            };
        }
        _ => return not_found(),
    }
    let store = D1Store::new(env.d1(DB_BINDING)?);
    let secrets = KvSecrets::new(env.kv(VAULT_BINDING)?);
    let limits = LimitStores {
        counters: &counters,
        approvals: &approvals,
        base_ms: super::now_ms(),
    };
    // `?check=name` runs one check; without it, the whole suite in its usual order.
    let only = req
        .url()?
        .query_pairs()
        .find(|(k, _)| k == "check")
        .map(|(_, v)| v.into_owned());
    let checks = match only {
        Some(name) => match conformance::run_check(&name, &store, &secrets, &store).await {
            Some(c) => vec![c],
            None => conformance::run_limit_check(&name, &limits).await.into_iter().collect(),
        },
        None => {
            let mut all = conformance::run_all(&store, &secrets, &store).await;
            all.extend(conformance::run_all_limits(&limits).await);
            all
        }
    };
    Response::from_json(&serde_json::json!({ "checks": checks }))
}
