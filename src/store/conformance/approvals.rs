//! Checks of `Approvals`: idempotent requests, lists per organization, one decision per
//! request, single-use consumption bound to the exact call, expiry, and concurrency. Each
//! check uses an organization of its own (`org_sc_apr_{check}_{base}`) and times within a day
//! of `base_ms` (nothing reaches its retention, so checks share one backend in any order).
use futures_util::future::{join, join_all};
use serde_json::json;

use super::{ensure, same, LimitStores, Outcome};
use crate::store::approvals::{
    ApprovalBinding, ApprovalStatus, DecideError, NewApproval, APPROVED_TTL_MS, PENDING_TTL_MS,
};

fn org(check: &str, s: &LimitStores<'_>) -> String {
    format!("org_sc_apr_{check}_{}", s.base_ms)
}

fn binding(org: &str, who: &str, args: &str) -> ApprovalBinding {
    ApprovalBinding {
        org_id: org.into(),
        principal_id: who.into(),
        server: "sc-srv".into(),
        tool: "delete_everything".into(),
        arguments_hash: args.into(),
    }
}

fn new(b: ApprovalBinding) -> NewApproval {
    NewApproval {
        binding: b,
        policy_id: "pol_sc".into(),
        rule: 2,
        arguments: Some(json!({"path": "/", "force": true})),
    }
}

fn status(r: &Result<Option<crate::store::approvals::ApprovalRecord>, DecideError>) -> Option<ApprovalStatus> {
    match r {
        Err(DecideError::NotPending(rec)) => Some(rec.status),
        _ => None,
    }
}

pub async fn approvals_request_is_idempotent_while_pending(s: &LimitStores<'_>) -> Outcome {
    let a = s.approvals;
    let o = org("request", s);
    let t = s.base_ms;
    let first = a.request(&new(binding(&o, "agt_1", "h1")), PENDING_TTL_MS, t).await?;
    same!(first.status, ApprovalStatus::Pending, "a new request");
    same!(first.expires_at_ms, t + PENDING_TTL_MS, "a pending request's expiry");
    same!(first.binding, binding(&o, "agt_1", "h1"), "the binding");
    same!((first.policy_id.as_str(), first.rule), ("pol_sc", 2), "policy and rule");
    same!(
        first.arguments,
        Some(json!({"path": "/", "force": true})),
        "what approvers see"
    );
    same!(a.get(&o, &first.id, t).await?, Some(first.clone()), "read back");
    let again = a
        .request(&new(binding(&o, "agt_1", "h1")), PENDING_TTL_MS, t + 1_000)
        .await?;
    same!(again, first, "an identical pending request is the existing one");
    let other_args = a.request(&new(binding(&o, "agt_1", "h2")), PENDING_TTL_MS, t).await?;
    ensure!(other_args.id != first.id, "other arguments are another request");
    let other_who = a.request(&new(binding(&o, "agt_2", "h1")), PENDING_TTL_MS, t).await?;
    ensure!(other_who.id != first.id, "another principal is another request");
    // Once the first expired, the same call asks anew.
    let later = t + PENDING_TTL_MS;
    same!(
        a.get(&o, &first.id, later).await?.map(|r| r.status),
        Some(ApprovalStatus::Expired),
        "a pending request past its expiry"
    );
    let renewed = a
        .request(&new(binding(&o, "agt_1", "h1")), PENDING_TTL_MS, later)
        .await?;
    ensure!(renewed.id != first.id, "an expired request is not reused");
    same!(
        a.get(&org("request_other", s), &first.id, t).await?,
        None,
        "another organization's id"
    );
    same!(a.get(&o, "apr_nope", t).await?, None, "an unknown id");
    Ok(())
}

pub async fn approvals_listed_newest_first_by_status(s: &LimitStores<'_>) -> Outcome {
    let a = s.approvals;
    let o = org("list", s);
    let t = s.base_ms;
    let mut ids = Vec::new();
    for (i, h) in ["h1", "h2", "h3", "h4"].into_iter().enumerate() {
        let ttl = if h == "h4" { 1_000 } else { PENDING_TTL_MS };
        ids.push(a.request(&new(binding(&o, "agt_1", h)), ttl, t + i as u64).await?.id);
    }
    a.request(&new(binding(&org("list_other", s), "agt_1", "h1")), PENDING_TTL_MS, t)
        .await?;
    let now = t + 5_000;
    ensure!(
        a.decide(&o, &ids[0], true, "usr_boss", now).await?.is_some(),
        "approve h1"
    );
    ensure!(
        a.decide(&o, &ids[1], false, "usr_boss", now).await?.is_some(),
        "deny h2"
    );
    let all = a.list(&o, None, None, 10, now).await?;
    same!(
        all.iter().map(|r| (r.id.clone(), r.status)).collect::<Vec<_>>(),
        vec![
            (ids[3].clone(), ApprovalStatus::Expired),
            (ids[2].clone(), ApprovalStatus::Pending),
            (ids[1].clone(), ApprovalStatus::Denied),
            (ids[0].clone(), ApprovalStatus::Approved),
        ],
        "an organization's requests, newest first, as of now"
    );
    for (st, want) in [
        (ApprovalStatus::Pending, vec![ids[2].clone()]),
        (ApprovalStatus::Approved, vec![ids[0].clone()]),
        (ApprovalStatus::Denied, vec![ids[1].clone()]),
        (ApprovalStatus::Expired, vec![ids[3].clone()]),
        (ApprovalStatus::Consumed, vec![]),
    ] {
        let got = a.list(&o, Some(st), None, 10, now).await?;
        same!(
            got.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
            want,
            "status {st:?}"
        );
    }
    let page = a.list(&o, None, Some(&ids[2]), 2, now).await?;
    same!(
        page.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        vec![ids[1].clone(), ids[0].clone()],
        "a keyset page after the second newest"
    );
    ensure!(
        a.list(&org("list_nobody", s), None, None, 10, now).await?.is_empty(),
        "an organization without requests lists none"
    );
    Ok(())
}

pub async fn approvals_decided_once(s: &LimitStores<'_>) -> Outcome {
    let a = s.approvals;
    let o = org("decide", s);
    let t = s.base_ms;
    let r = a.request(&new(binding(&o, "agt_1", "h1")), PENDING_TTL_MS, t).await?;
    let now = t + 60_000;
    let ok = a.decide(&o, &r.id, true, "usr_boss", now).await?;
    let ok = match ok {
        Some(x) => x,
        None => return Err(super::Failure("approving a pending request found nothing".into())),
    };
    same!(ok.status, ApprovalStatus::Approved, "approved");
    same!(
        (ok.decided_at_ms, ok.decided_by.as_deref(), ok.expires_at_ms),
        (Some(now), Some("usr_boss"), now + APPROVED_TTL_MS),
        "who decided, when, and how long the approval waits"
    );
    same!(a.get(&o, &r.id, now).await?, Some(ok.clone()), "the decision is stored");
    let second = a.decide(&o, &r.id, false, "usr_other", now + 1).await;
    same!(
        status(&second),
        Some(ApprovalStatus::Approved),
        "a second decision is refused"
    );
    same!(a.get(&o, &r.id, now + 1).await?, Some(ok), "and changes nothing");
    // Denied, then refused too.
    let d = a.request(&new(binding(&o, "agt_1", "h2")), PENDING_TTL_MS, t).await?;
    let denied = a.decide(&o, &d.id, false, "usr_boss", now).await?;
    same!(denied.map(|x| x.status), Some(ApprovalStatus::Denied), "denied");
    same!(
        status(&a.decide(&o, &d.id, true, "usr_boss", now).await),
        Some(ApprovalStatus::Denied),
        "a denied request cannot be approved"
    );
    // Expired requests cannot be decided.
    let e = a.request(&new(binding(&o, "agt_1", "h3")), 1_000, t).await?;
    same!(
        status(&a.decide(&o, &e.id, true, "usr_boss", t + 1_000).await),
        Some(ApprovalStatus::Expired),
        "an expired request"
    );
    // Unknown, or another organization's: nothing.
    let p = a.request(&new(binding(&o, "agt_1", "h4")), PENDING_TTL_MS, t).await?;
    ensure!(
        matches!(
            a.decide(&org("decide_other", s), &p.id, true, "usr_x", now).await,
            Ok(None)
        ),
        "another organization cannot decide it"
    );
    ensure!(
        matches!(a.decide(&o, "apr_nope", true, "usr_x", now).await, Ok(None)),
        "an unknown id"
    );
    same!(
        a.get(&o, &p.id, now).await?.map(|x| x.status),
        Some(ApprovalStatus::Pending),
        "still pending"
    );
    // Two concurrent decisions: exactly one is taken.
    let (x, y) = join(
        a.decide(&o, &p.id, true, "usr_1", now),
        a.decide(&o, &p.id, false, "usr_2", now),
    )
    .await;
    let taken = [&x, &y].iter().filter(|r| matches!(r, Ok(Some(_)))).count();
    let refused = [&x, &y].iter().filter(|r| status(r).is_some()).count();
    same!((taken, refused), (1, 1), "two concurrent decisions");
    Ok(())
}

pub async fn approvals_consumed_once_for_the_exact_call(s: &LimitStores<'_>) -> Outcome {
    let a = s.approvals;
    let o = org("consume", s);
    let t = s.base_ms;
    let b = binding(&o, "agt_1", "h1");
    let r = a.request(&new(b.clone()), PENDING_TTL_MS, t).await?;
    same!(a.consume(&b, t + 1).await?, None, "a pending request serves no call");
    a.decide(&o, &r.id, true, "usr_boss", t + 10).await?;
    for other in [
        binding(&o, "agt_1", "h2"),
        binding(&o, "agt_2", "h1"),
        ApprovalBinding {
            tool: "other_tool".into(),
            ..b.clone()
        },
        ApprovalBinding {
            server: "other-srv".into(),
            ..b.clone()
        },
        binding(&org("consume_other", s), "agt_1", "h1"),
    ] {
        same!(a.consume(&other, t + 20).await?, None, "another call: {other:?}");
    }
    let used = a.consume(&b, t + 30).await?;
    same!(
        used.as_ref().map(|x| (x.id.clone(), x.status, x.consumed_at_ms)),
        Some((r.id.clone(), ApprovalStatus::Consumed, Some(t + 30))),
        "the approved call"
    );
    same!(a.consume(&b, t + 31).await?, None, "single use");
    same!(
        a.get(&o, &r.id, t + 40).await?.map(|x| x.status),
        Some(ApprovalStatus::Consumed),
        "read back consumed"
    );
    ensure!(
        matches!(
            a.decide(&o, &r.id, true, "usr_boss", t + 41).await,
            Err(DecideError::NotPending(_))
        ),
        "a consumed approval cannot be decided"
    );
    // An approval waits APPROVED_TTL_MS for its call, no longer.
    let late = a.request(&new(b.clone()), PENDING_TTL_MS, t + 100).await?;
    a.decide(&o, &late.id, true, "usr_boss", t + 200).await?;
    same!(
        a.consume(&b, t + 200 + APPROVED_TTL_MS).await?,
        None,
        "an expired approval"
    );
    same!(
        a.get(&o, &late.id, t + 200 + APPROVED_TTL_MS).await?.map(|x| x.status),
        Some(ApprovalStatus::Expired),
        "read back expired"
    );
    Ok(())
}

pub async fn approvals_concurrent_consumes_one_wins(s: &LimitStores<'_>) -> Outcome {
    let a = s.approvals;
    let o = org("race", s);
    let t = s.base_ms;
    let b = binding(&o, "agt_1", "h1");
    let r = a.request(&new(b.clone()), PENDING_TTL_MS, t).await?;
    a.decide(&o, &r.id, true, "usr_boss", t + 1).await?;
    let (x, y) = join(a.consume(&b, t + 2), a.consume(&b, t + 2)).await;
    let won = [x?, y?].into_iter().flatten().count();
    same!(won, 1, "two concurrent consumes of one approval");
    // Two approvals of the same call serve two calls, the one expiring first first.
    let r1 = a.request(&new(b.clone()), PENDING_TTL_MS, t + 10).await?;
    a.decide(&o, &r1.id, true, "usr_boss", t + 11).await?;
    let r2 = a.request(&new(b.clone()), PENDING_TTL_MS, t + 12).await?;
    a.decide(&o, &r2.id, true, "usr_boss", t + 13).await?;
    let many = join_all((0..5).map(|_| a.consume(&b, t + 20))).await;
    let mut got = Vec::new();
    for m in many {
        got.extend(m?.map(|x| x.id));
    }
    got.sort();
    let mut want = vec![r1.id, r2.id];
    want.sort();
    same!(got, want, "five concurrent consumes of two approvals");
    Ok(())
}
