//! The `CredentialRefresher` Durable Object: one per (server, user) connection. Its alarm fires
//! shortly before the user's upstream access token expires and refreshes it; its storage holds
//! only which connection it serves (table `target`).
use async_trait::async_trait;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use super::{config, storage_deps, REFRESHERS_BINDING};
use crate::upstream_auth::connect::{refresh_connection, RefreshScheduler};

/// Schedules alarms on the connection's Durable Object.
pub struct DoScheduler {
    pub env: Env,
}

#[async_trait(?Send)]
impl RefreshScheduler for DoScheduler {
    async fn schedule(&self, slug: &str, user: &str, at_ms: u64) {
        let r: Result<()> = async {
            let ns = self.env.durable_object(REFRESHERS_BINDING)?;
            let stub = ns.id_from_name(&format!("{slug}\n{user}"))?.get_stub()?;
            let url = format!(
                "https://refresher.internal/schedule?slug={}&user={}&at={at_ms}",
                enc(slug),
                enc(user)
            );
            stub.fetch_with_str(&url).await?;
            Ok(())
        }
        .await;
        if let Err(e) = r {
            tracing::warn!(upstream = %slug, error = %e, "could not schedule a token refresh");
        }
    }
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[durable_object]
pub struct CredentialRefresher {
    state: State,
    env: Env,
}

#[derive(serde::Deserialize)]
struct Target {
    slug: String,
    user: String,
}

impl DurableObject for CredentialRefresher {
    fn new(state: State, env: Env) -> Self {
        Self { state, env }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let url = req.url()?;
        let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
        let (Some(slug), Some(user), Some(at)) = (
            q.get("slug"),
            q.get("user"),
            q.get("at").and_then(|a| a.parse::<i64>().ok()),
        ) else {
            return Response::error("bad schedule request", 400);
        };
        let sql = self.state.storage().sql();
        sql.exec(
            "CREATE TABLE IF NOT EXISTS target (k INTEGER PRIMARY KEY, slug TEXT NOT NULL, user TEXT NOT NULL)",
            None,
        )?;
        sql.exec(
            "INSERT OR REPLACE INTO target (k, slug, user) VALUES (1, ?, ?)",
            vec![slug.as_str().into(), user.as_str().into()],
        )?;
        self.state
            .storage()
            .set_alarm(worker::ScheduledTime::new(js_sys::Date::new(&(at as f64).into())))
            .await?;
        Response::ok("scheduled")
    }

    async fn alarm(&self) -> Result<Response> {
        let sql = self.state.storage().sql();
        let rows: Vec<Target> = sql
            .exec("SELECT slug, user FROM target WHERE k = 1", None)?
            .to_array()?;
        if let Some(t) = rows.into_iter().next() {
            let cfg = config(&self.env);
            // Refresh tokens rotate: read them as stored, never from a snapshot.
            let deps = storage_deps(&self.env, &cfg, super::spawn_local())?;
            let svc = deps.request_services("");
            // Refreshing stores the new token and schedules the next alarm through this object.
            refresh_connection(&svc, &t.slug, &t.user).await;
        }
        Response::ok("refreshed")
    }
}
