//! Test-only, compiled into the `store-conformance` build alone: `POST /__store_conformance`
//! runs the store conformance suite (`store::conformance`) against this Worker's D1 and KV
//! bindings and answers each check's result as JSON. `tests/store-conformance.test.mjs` runs it
//! on fresh storage under Miniflare. Only the admin token may call it; anyone else gets the
//! same 404 as for any unknown path.
use worker::{Env, Method, Request, Response, Result};

use super::{d1::D1Store, kv::KvSecrets, DB_BINDING, VAULT_BINDING};
use crate::store::conformance;

pub const PATH: &str = "/__store_conformance";

pub async fn handle(req: &Request, env: &Env) -> Result<Response> {
    let token = super::config(env).admin_token;
    let bearer = req.headers().get("authorization")?;
    let allowed = match (token, bearer.as_deref().and_then(|h| h.strip_prefix("Bearer "))) {
        (Some(t), Some(b)) => crate::crypto::secrets_equal(&t, b),
        _ => false,
    };
    if !allowed || req.method() != Method::Post {
        return Response::from_json(&serde_json::json!({"error": "not found"})).map(|r| r.with_status(404));
    }
    let store = D1Store::new(env.d1(DB_BINDING)?);
    let secrets = KvSecrets::new(env.kv(VAULT_BINDING)?);
    // `?check=name` runs one check; without it, the whole suite in its usual order.
    let only = req
        .url()?
        .query_pairs()
        .find(|(k, _)| k == "check")
        .map(|(_, v)| v.into_owned());
    let checks = match only {
        Some(name) => conformance::run_check(&name, &store, &secrets, &store)
            .await
            .into_iter()
            .collect(),
        None => conformance::run_all(&store, &secrets, &store).await,
    };
    Response::from_json(&serde_json::json!({ "checks": checks }))
}
