//! What is used, by whom, and what sits idle: `GET /admin/v1/usage` (calls, errors, denials and
//! latency percentiles per server, tool, agent, user, team or workspace), the use figures the
//! registry shows on servers and tools, and `GET /admin/v1/servers?idle_days=N`. Everything is
//! read from the caller's organizations' audit trail (docs/observability.md, "Usage").
use std::collections::HashMap;

use serde_json::{json, Value};

use crate::gateway::Services;
use crate::http::HttpRequest;
use crate::policy::AdminPermit;
use crate::store::timestamp;
use crate::store::usage::{GroupBy, LastUse, UsageQuery, DAY_MS};
use crate::store::ServerRecord;

use super::servers::query_param;
use super::{json, ApiError, ApiResult};

/// The window a usage query covers when it names none (ending now).
pub const DEFAULT_WINDOW_MS: u64 = 7 * DAY_MS;
/// The longest window one usage query may cover.
pub const MAX_WINDOW_MS: u64 = 366 * DAY_MS;
/// The largest `idle_days`.
pub const MAX_IDLE_DAYS: u64 = 3650;

/// A time parameter: milliseconds since the epoch, or an RFC 3339 timestamp.
pub fn parse_time(name: &str, v: &str) -> Result<u64, ApiError> {
    let v = v
        .replace("%3A", ":")
        .replace("%3a", ":")
        .replace("%2B", "+")
        .replace("%2b", "+");
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v
            .parse()
            .map_err(|_| ApiError::Validation(format!("{name} is out of range")));
    }
    chrono::DateTime::parse_from_rfc3339(&v)
        .ok()
        .and_then(|t| u64::try_from(t.timestamp_millis()).ok())
        .ok_or_else(|| {
            ApiError::Validation(format!(
                "{name} must be an RFC 3339 time or milliseconds since the epoch"
            ))
        })
}

/// The chains the caller may read, narrowed to `org` when it names one (an organization the
/// caller cannot read answers like one without data: an empty list of chains).
pub fn chains(permit: &AdminPermit, org: Option<&str>) -> Option<Vec<String>> {
    match (permit.readable_orgs(), org) {
        (None, None) => None,
        (None, Some(o)) => Some(vec![o.to_string()]),
        (Some(mine), None) => Some(mine),
        (Some(mine), Some(o)) => Some(mine.into_iter().filter(|m| m == o).collect()),
    }
}

/// `GET /admin/v1/usage?from=&to=&group_by=&org=`.
pub async fn usage(svc: &Services<'_>, permit: &AdminPermit, req: &HttpRequest) -> ApiResult {
    let to = match query_param(req, "to") {
        Some(v) => parse_time("to", &v)?,
        None => svc.now_ms,
    };
    let from = match query_param(req, "from") {
        Some(v) => parse_time("from", &v)?,
        None => to.saturating_sub(DEFAULT_WINDOW_MS),
    };
    if from > to {
        return Err(ApiError::Validation("from must not be after to".into()));
    }
    if to - from > MAX_WINDOW_MS {
        return Err(ApiError::Validation(format!(
            "the window may cover at most {} days",
            MAX_WINDOW_MS / DAY_MS
        )));
    }
    let group = query_param(req, "group_by").unwrap_or_else(|| "server".into());
    let group_by = GroupBy::parse(&group).ok_or_else(|| {
        ApiError::Validation("group_by must be one of server, tool, agent, user, team, workspace".into())
    })?;
    let q = UsageQuery {
        orgs: chains(permit, query_param(req, "org").as_deref()),
        from_ms: from,
        to_ms: to,
        group_by,
    };
    let groups: Vec<Value> = svc
        .usage
        .usage(&q)
        .await?
        .into_iter()
        .map(|g| {
            let mut v = json!({
                "calls": g.calls,
                "errors": g.errors,
                "denied": g.denied,
                "p50_ms": g.p50_ms,
                "p95_ms": g.p95_ms,
                "last_call_at": timestamp(g.last_call_ms),
            });
            if let Some(s) = g.server {
                v["server"] = json!(s);
            }
            v[group.as_str()] = json!(g.key);
            v
        })
        .collect();
    json(
        200,
        &json!({"from": timestamp(from), "to": timestamp(to), "group_by": group, "groups": groups}),
    )
}

/// Use figures by server and by (server, tool), for the caller's chains.
pub struct Uses(HashMap<(String, Option<String>), LastUse>);

impl Uses {
    pub async fn load(svc: &Services<'_>, permit: &AdminPermit) -> Result<Self, ApiError> {
        let orgs = chains(permit, None);
        let list = svc.usage.last_use(orgs.as_deref(), svc.now_ms).await?;
        Ok(Self(
            list.into_iter()
                .map(|u| ((u.server.clone(), u.tool.clone()), u))
                .collect(),
        ))
    }

    fn get(&self, server: &str, tool: Option<&str>) -> Option<&LastUse> {
        self.0.get(&(server.to_string(), tool.map(str::to_string)))
    }

    /// Adds `last_used_at`, `calls_7d` and `calls_30d` to a server's or tool's document.
    pub fn annotate(&self, doc: &mut Value, server: &str, tool: Option<&str>) {
        let u = self.get(server, tool);
        doc["last_used_at"] = u.map(|u| json!(timestamp(u.last_ms))).unwrap_or(Value::Null);
        doc["calls_7d"] = json!(u.map_or(0, |u| u.calls_7d));
        doc["calls_30d"] = json!(u.map_or(0, |u| u.calls_30d));
    }

    /// Whether nothing used it since `since_ms` (never used included).
    fn idle(&self, server: &str, tool: Option<&str>, since_ms: u64) -> bool {
        self.get(server, tool).is_none_or(|u| u.last_ms < since_ms)
    }
}

/// The server list with use figures; with `idle_days`, only the servers not called in that many
/// days, and (`idle_tools`) every visible server's tools not called in that many days.
pub async fn servers(
    svc: &Services<'_>,
    permit: &AdminPermit,
    req: &HttpRequest,
    visible: Vec<ServerRecord>,
) -> ApiResult {
    let idle_days = match query_param(req, "idle_days") {
        Some(v) => Some(
            v.parse::<u64>()
                .ok()
                .filter(|d| (1..=MAX_IDLE_DAYS).contains(d))
                .ok_or_else(|| {
                    ApiError::Validation(format!("idle_days must be an integer from 1 to {MAX_IDLE_DAYS}"))
                })?,
        ),
        None => None,
    };
    let uses = Uses::load(svc, permit).await?;
    // The registry view's tool counts, from one read of every catalog.
    let mut counts: HashMap<String, (u64, u64)> = HashMap::new();
    for t in svc.registry.list_all_tools().await? {
        let c = counts.entry(t.server_slug.clone()).or_default();
        c.0 += 1;
        if !t.is_active() {
            c.1 += 1;
        }
    }
    let since = idle_days.map(|d| svc.now_ms.saturating_sub(d * DAY_MS));
    let mut servers = Vec::new();
    let mut idle_tools = Vec::new();
    for s in visible {
        if let Some(since) = since {
            for t in svc.registry.list_tools(&s.slug).await? {
                if uses.idle(&s.slug, Some(&t.name), since) {
                    let mut doc = json!({"server": s.slug, "tool": t.name, "status": t.status});
                    uses.annotate(&mut doc, &s.slug, Some(&t.name));
                    idle_tools.push(doc);
                }
            }
            if !uses.idle(&s.slug, None, since) {
                continue;
            }
        }
        let mut doc = serde_json::to_value(&s).map_err(|e| ApiError::Validation(e.to_string()))?;
        uses.annotate(&mut doc, &s.slug, None);
        let (tools, quarantined) = counts.get(&s.slug).copied().unwrap_or_default();
        doc["tool_count"] = json!(tools);
        doc["quarantined_count"] = json!(quarantined);
        servers.push(doc);
    }
    match idle_days {
        Some(d) => json(
            200,
            &json!({"idle_days": d, "servers": servers, "idle_tools": idle_tools}),
        ),
        None => json(200, &json!({"servers": servers})),
    }
}
