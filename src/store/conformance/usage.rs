//! Checks of `UsageStore`: the figures a backend computes (D1: SQL with window functions) equal
//! the reference semantics (`store::usage::aggregate` and `last_use`) over the same events.
//! Each check uses organizations of its own (`org_sc_us_*`).
use super::{same, AuditTrail, Outcome};
use crate::observe::event::OutcomeField;
use crate::observe::{Event, EventKind, Outcome as Ended};
use crate::store::usage::{self, GroupBy, UsageQuery, UsageRow, DAY_MS};

/// A spread of calls: two agents and a user, overlapping teams, three servers, every outcome,
/// a listing (not a call), an admin write (not a call), ties in latency and calls.
fn events(org: &str, base: u64) -> Vec<Event> {
    let ended = [
        Ended::Ok,
        Ended::ToolError,
        Ended::RpcError { code: -32602 },
        Ended::Denied { code: -32602 },
        Ended::UpstreamError {
            reason: "status 502".into(),
        },
        Ended::Timeout,
        Ended::Cancelled,
    ];
    let mut out = Vec::new();
    for i in 0..40u64 {
        let who = ["agt_sc_us_1", "agt_sc_us_2", "usr_sc_us_1"][(i % 3) as usize];
        out.push(Event {
            id: format!("ev_{org}_{i}"),
            kind: EventKind::Mcp,
            // Spread over 40 days before `base`, some on the same millisecond.
            time_ms: base - (i / 2) * DAY_MS,
            org_id: org.into(),
            principal_id: who.into(),
            principal_kind: if who.starts_with("usr") { "user" } else { "agent" }.into(),
            team_ids: match i % 4 {
                0 => vec!["team_sc_a".into()],
                1 => vec!["team_sc_a".into(), "team_sc_b".into()],
                2 => vec![],
                _ => vec!["team_sc_b".into()],
            },
            workspace_ids: vec!["ws_sc".into()],
            server: Some(["sc-a", "sc-b", "sc-c"][(i % 5 % 3) as usize].into()),
            method: Some(
                if i == 7 {
                    "tools/list"
                } else if i % 11 == 0 {
                    "prompts/get"
                } else {
                    "tools/call"
                }
                .into(),
            ),
            tool: (i % 11 != 0 && i != 7).then(|| ["echo", "add"][(i % 2) as usize].into()),
            prompt: (i % 11 == 0).then(|| "greet".into()),
            outcome: OutcomeField(ended[(i % 7) as usize].clone()),
            latency_ms: [3.5, 1.0, 7.25, 1.0, 40.0][(i % 5) as usize] + (i % 3) as f64,
            ..Event::default()
        });
    }
    let mut admin = out[0].clone();
    admin.id = format!("ev_{org}_admin");
    admin.kind = EventKind::Admin;
    out.push(admin);
    out
}

pub async fn usage_groups_match_the_reference(s: &dyn AuditTrail) -> Outcome {
    let org = "org_sc_us_groups";
    let base = 100 * DAY_MS;
    let evs = events(org, base);
    s.append(&evs).await?;
    let rows: Vec<UsageRow> = evs.iter().filter_map(UsageRow::of).collect();
    for group_by in [
        GroupBy::Server,
        GroupBy::Tool,
        GroupBy::Agent,
        GroupBy::User,
        GroupBy::Team,
        GroupBy::Workspace,
    ] {
        for (from_ms, to_ms) in [(0, base + 1), (base - 10 * DAY_MS, base), (base + 1, base + 2)] {
            let q = UsageQuery {
                orgs: Some(vec![org.into()]),
                from_ms,
                to_ms,
                group_by,
            };
            same!(
                s.usage(&q).await?,
                usage::aggregate(&rows, &q),
                "usage by {group_by:?} over [{from_ms}, {to_ms})"
            );
        }
    }
    let other = UsageQuery {
        orgs: Some(vec!["org_sc_us_nobody".into()]),
        from_ms: 0,
        to_ms: u64::MAX >> 12,
        group_by: GroupBy::Server,
    };
    same!(
        s.usage(&other).await?,
        Vec::<usage::GroupUsage>::new(),
        "another organization's chain is not read"
    );
    Ok(())
}

pub async fn usage_last_use_matches_the_reference(s: &dyn AuditTrail) -> Outcome {
    let org = "org_sc_us_last";
    let base = 200 * DAY_MS;
    let evs = events(org, base);
    s.append(&evs).await?;
    let rows: Vec<UsageRow> = evs.iter().filter_map(UsageRow::of).collect();
    let orgs = [org.to_string()];
    for now in [base, base + 3 * DAY_MS, base + 25 * DAY_MS] {
        same!(
            s.last_use(Some(&orgs), now).await?,
            usage::last_use(&rows, Some(&orgs), now),
            "last use at {now}"
        );
    }
    Ok(())
}
