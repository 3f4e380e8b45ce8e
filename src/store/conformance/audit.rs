//! Checks of `AuditStore`: chains per organization, idempotent appends, concurrent appends that
//! never fork a chain, filtered listings newest first, and retention that keeps chains
//! verifiable. Each check uses organizations of its own (`org_sc_au_*`).
use serde_json::json;

use super::{ensure, same, Outcome};
use crate::observe::{AdminChange, Event, EventKind, Outcome as Ended, TraceContext};
use crate::store::audit::{self, link_hash, AuditQuery, AuditStore, GENESIS_HASH};

/// An event with every field the filter columns read filled in.
fn event(id: &str, org: &str, time_ms: u64, outcome: Ended) -> Event {
    Event {
        id: id.into(),
        kind: EventKind::Mcp,
        time_ms,
        trace: Some(TraceContext::join(None, None, None)),
        org_id: org.into(),
        workspace_ids: vec!["ws_sc".into()],
        team_ids: vec!["team_sc_a".into(), "team_sc_b".into()],
        principal_id: "agt_sc".into(),
        principal_kind: "agent".into(),
        endpoint: "server".into(),
        server: Some("sc-srv".into()),
        method: Some("tools/call".into()),
        tool: Some("echo".into()),
        arguments: Some(json!({"message": "hi", "n": 1.5})),
        outcome: crate::observe::event::OutcomeField(outcome),
        latency_ms: 12.625,
        ..Event::default()
    }
}

fn ids(records: &[audit::AuditRecord]) -> Vec<String> {
    records.iter().map(|r| r.id.clone()).collect()
}

pub async fn audit_chain_links_each_org_in_order(s: &dyn AuditStore) -> Outcome {
    let (a, b) = ("org_sc_au_chain_a", "org_sc_au_chain_b");
    let mut admin = event("ev_sc_chain_3", b, 1_000_003, Ended::Ok);
    admin.kind = EventKind::Admin;
    admin.admin = Some(AdminChange {
        http_method: "PATCH".into(),
        path: "/admin/v1/servers/x".into(),
        status: 200,
        before: Some(json!({"name": "x"})),
        after: None,
    });
    let batch = [
        event("ev_sc_chain_1", a, 1_000_001, Ended::Ok),
        event("ev_sc_chain_2", b, 1_000_002, Ended::ToolError),
        admin,
        event("ev_sc_chain_4", a, 1_000_000, Ended::RpcError { code: -32602 }),
    ];
    same!(s.append(&batch[..2]).await?, 2, "append: events stored");
    same!(s.append(&batch[2..]).await?, 2, "append: events stored");
    let chain = s.audit_chain(a, 0, 10).await?;
    same!(
        ids(&chain),
        vec!["ev_sc_chain_1", "ev_sc_chain_4"],
        "org a's chain, in append order"
    );
    same!(
        chain.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1, 2],
        "positions from 1"
    );
    same!(
        chain[0].prev_hash,
        GENESIS_HASH,
        "the first record follows the genesis hash"
    );
    same!(chain[1].prev_hash, chain[0].hash, "each record links to the one before");
    same!(
        chain[1].hash,
        link_hash(&chain[0].hash, 2, a, &chain[1].body),
        "the documented hash"
    );
    same!(chain[1].event(), Some(batch[3].clone()), "the body is the event");
    same!(chain[1].outcome, "rpc_error", "the outcome column");
    same!(chain[1].latency_ms, 12.625, "the latency column");
    let head = s.audit_head(a).await?;
    same!(
        head.map(|h| (h.seq, h.hash)),
        Some((2, chain[1].hash.clone())),
        "org a's head"
    );
    same!(
        ids(&s.audit_chain(b, 1, 10).await?),
        vec!["ev_sc_chain_3"],
        "a chain read after a position"
    );
    same!(s.audit_head("org_sc_au_none").await?, None, "no chain: no head");
    for org in [a, b] {
        let v = audit::verify(s, org).await?;
        ensure!(v.ok && v.checked == 2, "verify {org}: {v:?}");
    }
    Ok(())
}

pub async fn audit_append_is_idempotent_by_event_id(s: &dyn AuditStore) -> Outcome {
    let org = "org_sc_au_idem";
    let e1 = event("ev_sc_idem_1", org, 1_000_010, Ended::Ok);
    let e2 = event("ev_sc_idem_2", org, 1_000_011, Ended::Ok);
    same!(
        s.append(&[e1.clone(), e1.clone()]).await?,
        1,
        "a repeat within a batch is stored once"
    );
    same!(s.append(&[e1.clone(), e2]).await?, 1, "a redelivered event is skipped");
    same!(s.append(&[e1]).await?, 0, "a whole redelivered batch stores nothing");
    same!(
        ids(&s.audit_chain(org, 0, 10).await?),
        vec!["ev_sc_idem_1", "ev_sc_idem_2"],
        "each event once, no gap"
    );
    ensure!(audit::verify(s, org).await?.ok, "the chain verifies");
    Ok(())
}

pub async fn audit_concurrent_appends_never_fork(s: &dyn AuditStore) -> Outcome {
    let org = "org_sc_au_race";
    let batches: Vec<Vec<Event>> = (0..4)
        .map(|b| {
            (0..3)
                .map(|i| event(&format!("ev_sc_race_{b}_{i}"), org, 1_000_100 + i, Ended::Ok))
                .collect()
        })
        .collect();
    let results = futures_util::future::join_all(batches.iter().map(|b| s.append(b))).await;
    for r in results {
        same!(r?, 3, "each concurrent batch stored whole");
    }
    let chain = s.audit_chain(org, 0, 100).await?;
    same!(chain.len(), 12, "every event once");
    same!(
        chain.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (1..=12).collect::<Vec<u64>>(),
        "one chain, no gap"
    );
    let v = audit::verify(s, org).await?;
    ensure!(v.ok && v.checked == 12, "verify after concurrent appends: {v:?}");
    Ok(())
}

pub async fn audit_list_filters_newest_first(s: &dyn AuditStore) -> Outcome {
    let org = "org_sc_au_list";
    let mut evs: Vec<Event> = (0..6)
        .map(|i| event(&format!("ev_sc_list_{i}"), org, 2_000_000 + (i % 3) * 10, Ended::Ok))
        .collect();
    evs[1].outcome = crate::observe::event::OutcomeField(Ended::Denied { code: -32001 });
    evs[2].server = Some("sc-other".into());
    evs[3].team_ids = vec!["team_sc_c".into()];
    evs[3].principal_id = "usr_sc".into();
    evs[4].kind = EventKind::Admin;
    evs[5].prompt = Some("p".into());
    evs[5].tool = None;
    s.append(&evs).await?;
    s.append(&[event("ev_sc_list_other", "org_sc_au_list_b", 2_000_000, Ended::Ok)])
        .await?;
    let q = |f: &dyn Fn(&mut AuditQuery)| {
        let mut q = AuditQuery {
            org_id: org.into(),
            limit: 100,
            ..AuditQuery::default()
        };
        f(&mut q);
        q
    };
    // Times: 0,3 → +0; 1,4 → +10; 2,5 → +20. Newest first, then by position descending.
    same!(
        ids(&s.list_audit(&q(&|_| {})).await?),
        vec![
            "ev_sc_list_5",
            "ev_sc_list_2",
            "ev_sc_list_4",
            "ev_sc_list_1",
            "ev_sc_list_3",
            "ev_sc_list_0"
        ],
        "one org's records, newest first"
    );
    let page = s.list_audit(&q(&|q| q.limit = 2)).await?;
    same!(ids(&page), vec!["ev_sc_list_5", "ev_sc_list_2"], "first page");
    let last = page.last().map(|r| (r.time_ms, r.seq));
    same!(
        ids(&s.list_audit(&q(&|q| (q.limit, q.before) = (3, last))).await?),
        vec!["ev_sc_list_4", "ev_sc_list_1", "ev_sc_list_3"],
        "the next page starts after the cursor"
    );
    type Case<'a> = (Box<dyn Fn(&mut AuditQuery) + 'a>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (Box::new(|q| q.outcome = Some("denied".into())), vec!["ev_sc_list_1"]),
        (Box::new(|q| q.server = Some("sc-other".into())), vec!["ev_sc_list_2"]),
        (Box::new(|q| q.team_id = Some("team_sc_c".into())), vec!["ev_sc_list_3"]),
        (
            Box::new(|q| q.principal_id = Some("usr_sc".into())),
            vec!["ev_sc_list_3"],
        ),
        (Box::new(|q| q.kind = Some("admin".into())), vec!["ev_sc_list_4"]),
        (Box::new(|q| q.tool = Some("p".into())), vec!["ev_sc_list_5"]),
        (
            Box::new(|q| (q.from_ms, q.to_ms) = (Some(2_000_010), Some(2_000_020))),
            vec!["ev_sc_list_4", "ev_sc_list_1"],
        ),
        (
            Box::new(|q| q.trace_id = evs[0].trace.as_ref().map(|t| t.trace_id.clone())),
            vec!["ev_sc_list_0"],
        ),
        (Box::new(|q| q.team_id = Some("team_sc".into())), vec![]),
    ];
    for (i, (f, want)) in cases.iter().enumerate() {
        same!(ids(&s.list_audit(&q(&**f)).await?), *want, "filter case {i}");
    }
    Ok(())
}

pub async fn audit_purge_keeps_chain_verifiable(s: &dyn AuditStore) -> Outcome {
    let org = "org_sc_au_purge";
    // Times below every other check's, so the purge touches no other check's records.
    let evs = [
        event("ev_sc_purge_1", org, 100, Ended::Ok),
        event("ev_sc_purge_2", org, 300, Ended::Ok),
        event("ev_sc_purge_3", org, 200, Ended::Ok),
        event("ev_sc_purge_4", org, 400, Ended::Ok),
    ];
    s.append(&evs).await?;
    // Cut at 250: 1 goes; 2 is newer, so 3 (older, but after it in the chain) stays too.
    same!(s.purge_audit(250).await?, 1, "records purged");
    same!(ids(&s.audit_chain(org, 0, 10).await?).len(), 3, "the rest kept");
    let head = s.audit_head(org).await?.unwrap_or_default();
    same!(
        (head.anchor_seq, head.seq),
        (1, 4),
        "the anchor is the newest purged record"
    );
    let v = audit::verify(s, org).await?;
    ensure!(v.ok && v.checked == 3, "verify after a purge: {v:?}");
    same!(s.purge_audit(1_000).await?, 3, "everything older purged");
    let v = audit::verify(s, org).await?;
    ensure!(v.ok && v.checked == 0, "verify of a chain purged whole: {v:?}");
    s.append(&[event("ev_sc_purge_5", org, 500, Ended::Ok)]).await?;
    let chain = s.audit_chain(org, 0, 10).await?;
    same!(
        chain.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![5],
        "the chain continues from its head"
    );
    ensure!(
        audit::verify(s, org).await?.ok,
        "verify after appending to a purged chain"
    );
    Ok(())
}
