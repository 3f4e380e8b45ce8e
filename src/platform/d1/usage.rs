//! Usage figures in D1, computed in SQL over `audit_events` (`store::usage` holds the reference
//! semantics: the same groups, counts, nearest-rank percentiles and order).
use async_trait::async_trait;
use serde::Deserialize;
use wasm_bindgen::JsValue;

use crate::store::usage::{GroupBy, GroupUsage, LastUse, UsageQuery, UsageStore, CALL_METHODS, DAY_MS};
use crate::store::StoreResult;

use super::*;

/// `IN (…)` over the call methods, as SQL literals (constants, never client input).
fn call_methods() -> String {
    CALL_METHODS
        .iter()
        .map(|m| format!("'{m}'"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `AND e.org_id IN (?n, …)` for the chains a query covers, binding them after `args`.
fn org_filter(orgs: Option<&[String]>, args: &mut Vec<JsValue>) -> String {
    let Some(orgs) = orgs else { return String::new() };
    if orgs.is_empty() {
        return " AND 0".into();
    }
    let marks: Vec<String> = orgs
        .iter()
        .map(|o| {
            args.push(text(o));
            format!("?{}", args.len())
        })
        .collect();
    format!(" AND e.org_id IN ({})", marks.join(","))
}

#[derive(Deserialize)]
struct GroupRow {
    key: String,
    server: Option<String>,
    calls: f64,
    errors: f64,
    denied: f64,
    p50_ms: f64,
    p95_ms: f64,
    last_call_ms: f64,
}

#[derive(Deserialize)]
struct LastRow {
    server: String,
    tool: Option<String>,
    last_ms: f64,
    calls_7d: f64,
    calls_30d: f64,
}

#[async_trait(?Send)]
impl UsageStore for D1Store {
    async fn usage(&self, q: &UsageQuery) -> StoreResult<Vec<GroupUsage>> {
        // (grouped value, server column, extra join, extra condition) per grouping.
        let (key, server, join, cond) = match q.group_by {
            GroupBy::Server => ("e.server", "NULL", "", "e.server IS NOT NULL"),
            GroupBy::Tool => ("e.tool", "e.server", "", "e.server IS NOT NULL AND e.tool IS NOT NULL"),
            GroupBy::Agent => (
                "e.principal_id",
                "NULL",
                "",
                "e.principal_id != '' AND json_extract(e.body, '$.principal_kind') = 'agent'",
            ),
            GroupBy::User => (
                "e.principal_id",
                "NULL",
                "",
                "e.principal_id != '' AND json_extract(e.body, '$.principal_kind') = 'user'",
            ),
            GroupBy::Team => ("j.value", "NULL", ", json_each(e.team_ids) j", "1"),
            GroupBy::Workspace => ("j.value", "NULL", ", json_each(e.workspace_ids) j", "1"),
        };
        let mut args = vec![JsValue::from_f64(q.from_ms as f64), JsValue::from_f64(q.to_ms as f64)];
        let orgs = org_filter(q.orgs.as_deref(), &mut args);
        let sql = format!(
            "WITH calls AS ( \
               SELECT {key} AS k, {server} AS s, e.outcome, e.latency_ms, e.time_ms \
               FROM audit_events e{join} \
               WHERE e.kind = 'mcp' AND e.method IN ({methods}) AND e.time_ms >= ?1 AND e.time_ms < ?2 \
                 AND {cond}{orgs}), \
             ranked AS ( \
               SELECT *, ROW_NUMBER() OVER (PARTITION BY s, k ORDER BY latency_ms) AS rn, \
                      COUNT(*) OVER (PARTITION BY s, k) AS n FROM calls) \
             SELECT k AS key, s AS server, COUNT(*) AS calls, \
               SUM(outcome NOT IN ('ok', 'denied')) AS errors, SUM(outcome = 'denied') AS denied, \
               MAX(CASE WHEN rn = max(1, (n * 50 + 99) / 100) THEN latency_ms END) AS p50_ms, \
               MAX(CASE WHEN rn = max(1, (n * 95 + 99) / 100) THEN latency_ms END) AS p95_ms, \
               MAX(time_ms) AS last_call_ms \
             FROM ranked GROUP BY s, k ORDER BY calls DESC, s, k",
            methods = call_methods(),
        );
        let rows: Vec<GroupRow> = self.all(&sql, &args).await?;
        Ok(rows
            .into_iter()
            .map(|r| GroupUsage {
                key: r.key,
                server: r.server,
                calls: r.calls as u64,
                errors: r.errors as u64,
                denied: r.denied as u64,
                p50_ms: r.p50_ms,
                p95_ms: r.p95_ms,
                last_call_ms: r.last_call_ms as u64,
            })
            .collect())
    }

    async fn last_use(&self, orgs: Option<&[String]>, now_ms: u64) -> StoreResult<Vec<LastUse>> {
        let week = now_ms as f64 - (7 * DAY_MS) as f64;
        let month = now_ms as f64 - (30 * DAY_MS) as f64;
        let mut args = vec![JsValue::from_f64(week), JsValue::from_f64(month)];
        let orgs = org_filter(orgs, &mut args);
        let base = format!(
            "FROM audit_events e WHERE e.kind = 'mcp' AND e.method IN ({}) AND e.outcome != 'denied' \
             AND e.server IS NOT NULL{orgs}",
            call_methods()
        );
        let figures = "MAX(e.time_ms) AS last_ms, SUM(e.time_ms > ?1) AS calls_7d, SUM(e.time_ms > ?2) AS calls_30d";
        let sql = format!(
            "SELECT e.server AS server, NULL AS tool, {figures} {base} GROUP BY e.server \
             UNION ALL \
             SELECT e.server AS server, e.tool AS tool, {figures} {base} AND e.tool IS NOT NULL \
             GROUP BY e.server, e.tool \
             ORDER BY server, tool"
        );
        let rows: Vec<LastRow> = self.all(&sql, &args).await?;
        Ok(rows
            .into_iter()
            .map(|r| LastUse {
                server: r.server,
                tool: r.tool,
                last_ms: r.last_ms as u64,
                calls_7d: r.calls_7d as u64,
                calls_30d: r.calls_30d as u64,
            })
            .collect())
    }
}
