//! Usage read from the audit trail: calls, errors, denials and latency percentiles per group
//! (`GET /admin/v1/usage`), and when each server and tool was last used (the registry's
//! `last_used_at`, 7- and 30-day counts, idle listing). A *call* is a request that names a tool,
//! prompt or resource (`CALL_METHODS`); listing, `initialize` and notifications are not use.
//!
//! `aggregate` and `last_use` are the reference semantics: `MemoryStore` applies them to its rows
//! and the D1 store computes the same in SQL; the store conformance suite holds them together.
use async_trait::async_trait;
use serde::Serialize;

use super::StoreResult;

/// The methods that count as a call.
pub const CALL_METHODS: &[&str] = &["tools/call", "prompts/get", "resources/read"];

/// How usage is grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Server,
    /// By (server, tool): tools of different servers may share a name.
    Tool,
    Agent,
    User,
    /// A call counts for every team its principal was in at the time.
    Team,
    Workspace,
}

impl GroupBy {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "server" => Self::Server,
            "tool" => Self::Tool,
            "agent" => Self::Agent,
            "user" => Self::User,
            "team" => Self::Team,
            "workspace" => Self::Workspace,
            _ => return None,
        })
    }
}

/// Which calls a usage query covers.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageQuery {
    /// The organizations whose chains are read; `None`: every chain (the bootstrap admin).
    pub orgs: Option<Vec<String>>,
    /// Inclusive lower and exclusive upper bound on the arrival time (ms since the epoch).
    pub from_ms: u64,
    pub to_ms: u64,
    pub group_by: GroupBy,
}

/// One call as usage sees it (the columns of `audit_events` it reads).
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRow {
    pub org_id: String,
    pub time_ms: u64,
    pub principal_id: String,
    /// `user` or `agent` (empty when unauthenticated).
    pub principal_kind: String,
    pub team_ids: Vec<String>,
    pub workspace_ids: Vec<String>,
    pub server: Option<String>,
    pub method: Option<String>,
    pub tool: Option<String>,
    pub outcome: String,
    pub latency_ms: f64,
}

impl UsageRow {
    /// The row an `mcp` event makes (`None` for admin events).
    pub fn of(ev: &crate::observe::Event) -> Option<Self> {
        (ev.kind == crate::observe::EventKind::Mcp).then(|| Self {
            org_id: ev.org_id.clone(),
            time_ms: ev.time_ms,
            principal_id: ev.principal_id.clone(),
            principal_kind: ev.principal_kind.clone(),
            team_ids: ev.team_ids.clone(),
            workspace_ids: ev.workspace_ids.clone(),
            server: ev.server.clone(),
            method: ev.method.clone(),
            tool: ev.subject().cloned(),
            outcome: ev.outcome.0.name().to_string(),
            latency_ms: ev.latency_ms,
        })
    }
}

/// The figures of one group. `server` and `tool` are set for `Tool` grouping (`server` alone for
/// `Server`); `key` is the grouped value (server slug, tool name, principal, team or workspace id).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupUsage {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    pub calls: u64,
    /// Calls that ended in an error (`tool_error`, `rpc_error`, `upstream_error`, `timeout`,
    /// `cancelled`); denials are counted apart.
    pub errors: u64,
    pub denied: u64,
    /// Nearest-rank percentiles of the calls' total latency.
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub last_call_ms: u64,
}

/// When a server (`tool: None`) or one of its tools was last used, and how often recently.
/// Denied calls are not use: the server never saw them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastUse {
    pub server: String,
    pub tool: Option<String>,
    pub last_ms: u64,
    pub calls_7d: u64,
    pub calls_30d: u64,
}

pub const DAY_MS: u64 = 86_400_000;

/// Usage figures, read from the audit trail (its `mcp` events).
#[async_trait(?Send)]
pub trait UsageStore {
    /// One entry per group with at least one call in the window, ordered by calls (most first),
    /// then key; exactly `aggregate` over the rows the query covers.
    async fn usage(&self, q: &UsageQuery) -> StoreResult<Vec<GroupUsage>>;
    /// Every server, and every (server, tool), with at least one non-denied call ever (still
    /// retained) in the given chains, ordered by server then tool (the server's own entry first);
    /// exactly `last_use` over the rows.
    async fn last_use(&self, orgs: Option<&[String]>, now_ms: u64) -> StoreResult<Vec<LastUse>>;
}

/// `ceil(n × pct / 100)`, the 1-based nearest rank (at least 1).
pub fn rank(n: u64, pct: u64) -> u64 {
    (n * pct).div_ceil(100).max(1)
}

fn covers(orgs: Option<&[String]>, org: &str) -> bool {
    orgs.is_none_or(|o| o.iter().any(|x| x == org))
}

fn is_call(r: &UsageRow) -> bool {
    r.method.as_deref().is_some_and(|m| CALL_METHODS.contains(&m))
}

/// The reference semantics of `UsageStore::usage`.
pub fn aggregate<'a>(rows: impl IntoIterator<Item = &'a UsageRow>, q: &UsageQuery) -> Vec<GroupUsage> {
    use std::collections::BTreeMap;
    let mut groups: BTreeMap<(Option<String>, String), Vec<&UsageRow>> = BTreeMap::new();
    for r in rows {
        if !covers(q.orgs.as_deref(), &r.org_id) || !is_call(r) || r.time_ms < q.from_ms || r.time_ms >= q.to_ms {
            continue;
        }
        let keys: Vec<(Option<String>, String)> = match q.group_by {
            GroupBy::Server => r.server.iter().map(|s| (None, s.clone())).collect(),
            GroupBy::Tool => match (&r.server, &r.tool) {
                (Some(s), Some(t)) => vec![(Some(s.clone()), t.clone())],
                _ => vec![],
            },
            GroupBy::Agent | GroupBy::User => {
                let kind = if q.group_by == GroupBy::Agent { "agent" } else { "user" };
                (r.principal_kind == kind && !r.principal_id.is_empty())
                    .then(|| (None, r.principal_id.clone()))
                    .into_iter()
                    .collect()
            }
            GroupBy::Team => r.team_ids.iter().map(|t| (None, t.clone())).collect(),
            GroupBy::Workspace => r.workspace_ids.iter().map(|w| (None, w.clone())).collect(),
        };
        for k in keys {
            groups.entry(k).or_default().push(r);
        }
    }
    let mut out: Vec<GroupUsage> = groups
        .into_iter()
        .map(|((server, key), rows)| {
            let mut lat: Vec<f64> = rows.iter().map(|r| r.latency_ms).collect();
            lat.sort_by(f64::total_cmp);
            let n = lat.len() as u64;
            let at = |pct| lat[(rank(n, pct) - 1) as usize];
            GroupUsage {
                key,
                server,
                calls: n,
                errors: rows.iter().filter(|r| is_error(&r.outcome)).count() as u64,
                denied: rows.iter().filter(|r| r.outcome == "denied").count() as u64,
                p50_ms: at(50),
                p95_ms: at(95),
                last_call_ms: rows.iter().map(|r| r.time_ms).max().unwrap_or(0),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.calls
            .cmp(&a.calls)
            .then_with(|| (&a.server, &a.key).cmp(&(&b.server, &b.key)))
    });
    out
}

/// Outcomes counted as errors (everything but `ok` and `denied`).
pub fn is_error(outcome: &str) -> bool {
    outcome != "ok" && outcome != "denied"
}

/// The reference semantics of `UsageStore::last_use`.
pub fn last_use<'a>(
    rows: impl IntoIterator<Item = &'a UsageRow>,
    orgs: Option<&[String]>,
    now_ms: u64,
) -> Vec<LastUse> {
    use std::collections::BTreeMap;
    let mut by: BTreeMap<(String, Option<String>), LastUse> = BTreeMap::new();
    for r in rows {
        let Some(server) = &r.server else { continue };
        if !covers(orgs, &r.org_id) || !is_call(r) || r.outcome == "denied" {
            continue;
        }
        // The server's own entry, and the tool's when the call named one.
        let tools = std::iter::once(None).chain(r.tool.clone().map(Some));
        for tool in tools {
            let e = by.entry((server.clone(), tool.clone())).or_insert_with(|| LastUse {
                server: server.clone(),
                tool,
                last_ms: 0,
                calls_7d: 0,
                calls_30d: 0,
            });
            e.last_ms = e.last_ms.max(r.time_ms);
            let age = now_ms.saturating_sub(r.time_ms);
            e.calls_7d += u64::from(age < 7 * DAY_MS);
            e.calls_30d += u64::from(age < 30 * DAY_MS);
        }
    }
    by.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::too_many_arguments)]
    fn row(
        org: &str,
        t: u64,
        who: (&str, &str),
        teams: &[&str],
        server: &str,
        tool: &str,
        outcome: &str,
        lat: f64,
    ) -> UsageRow {
        UsageRow {
            org_id: org.into(),
            time_ms: t,
            principal_id: who.0.into(),
            principal_kind: who.1.into(),
            team_ids: teams.iter().map(|s| s.to_string()).collect(),
            workspace_ids: vec!["ws".into()],
            server: Some(server.into()),
            method: Some("tools/call".into()),
            tool: Some(tool.into()),
            outcome: outcome.into(),
            latency_ms: lat,
        }
    }

    #[test]
    fn groups_count_calls_errors_denials_and_nearest_rank_percentiles() {
        let a = ("agt_a", "agent");
        let u = ("usr_u", "user");
        let mut rows: Vec<UsageRow> = (1..=20)
            .map(|i| row("o1", i, a, &["t1"], "py", "echo", "ok", i as f64))
            .collect();
        rows.push(row("o1", 30, u, &["t1", "t2"], "py", "add", "tool_error", 100.0));
        rows.push(row("o1", 31, u, &["t2"], "ev", "echo", "denied", 1.0));
        rows.push(row("o2", 32, a, &["t9"], "py", "echo", "ok", 1.0)); // another org
        let mut list = row("o1", 33, a, &["t1"], "py", "echo", "ok", 1.0);
        list.method = Some("tools/list".into()); // not a call
        rows.push(list);
        let q = |g| UsageQuery {
            orgs: Some(vec!["o1".into()]),
            from_ms: 0,
            to_ms: 100,
            group_by: g,
        };

        let by_server = aggregate(&rows, &q(GroupBy::Server));
        assert_eq!(
            by_server.iter().map(|g| (g.key.as_str(), g.calls)).collect::<Vec<_>>(),
            [("py", 21), ("ev", 1)]
        );
        assert_eq!(
            (by_server[0].errors, by_server[0].denied, by_server[0].last_call_ms),
            (1, 0, 30)
        );
        // 21 latencies 1..=20 and 100: rank ceil(10.5)=11 → 11; rank ceil(19.95)=20 → 20.
        assert_eq!((by_server[0].p50_ms, by_server[0].p95_ms), (11.0, 20.0));
        assert_eq!(by_server[1].denied, 1);

        let by_tool = aggregate(&rows, &q(GroupBy::Tool));
        let keys: Vec<_> = by_tool
            .iter()
            .map(|g| (g.server.as_deref().unwrap(), g.key.as_str(), g.calls))
            .collect();
        assert_eq!(keys, [("py", "echo", 20), ("ev", "echo", 1), ("py", "add", 1)]);

        let by_team = aggregate(&rows, &q(GroupBy::Team));
        let keys: Vec<_> = by_team.iter().map(|g| (g.key.as_str(), g.calls)).collect();
        assert_eq!(keys, [("t1", 21), ("t2", 2)]);
        assert_eq!(aggregate(&rows, &q(GroupBy::Agent)).len(), 1);
        assert_eq!(aggregate(&rows, &q(GroupBy::User))[0].calls, 2);

        let window = UsageQuery {
            from_ms: 5,
            to_ms: 10,
            ..q(GroupBy::Server)
        };
        assert_eq!(aggregate(&rows, &window)[0].calls, 5);
        assert_eq!(
            aggregate(
                &rows,
                &UsageQuery {
                    orgs: None,
                    ..q(GroupBy::Server)
                }
            )[0]
            .calls,
            22
        );
    }

    #[test]
    fn last_use_skips_denials_and_counts_recent_windows() {
        let a = ("agt_a", "agent");
        let now = 40 * DAY_MS;
        let rows = vec![
            row("o1", now - DAY_MS, a, &[], "py", "echo", "ok", 1.0),
            row("o1", now - 10 * DAY_MS, a, &[], "py", "add", "tool_error", 1.0),
            row("o1", now - 35 * DAY_MS, a, &[], "py", "echo", "ok", 1.0),
            row("o1", now, a, &[], "ev", "echo", "denied", 1.0),
        ];
        let got = last_use(&rows, Some(&["o1".to_string()]), now);
        let view: Vec<_> = got
            .iter()
            .map(|l| (l.server.as_str(), l.tool.as_deref(), l.last_ms, l.calls_7d, l.calls_30d))
            .collect();
        assert_eq!(
            view,
            [
                ("py", None, now - DAY_MS, 1, 2),
                ("py", Some("add"), now - 10 * DAY_MS, 0, 1),
                ("py", Some("echo"), now - DAY_MS, 1, 1),
            ]
        );
        assert!(last_use(&rows, Some(&["o2".to_string()]), now).is_empty());
    }
}
