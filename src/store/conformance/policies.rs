//! Checks of `Policies`.
use serde_json::json;

use super::records::*;
use super::{same, Outcome};
use crate::store::{PolicyRecord, SecretStore, Store, StoreError};

fn policy(id: &str, org: &str, name: &str, created_at: &str) -> PolicyRecord {
    PolicyRecord {
        id: id.into(),
        org_id: org.into(),
        name: name.into(),
        mode: "monitor".into(),
        scope: json!({"server": "crm", "subject": {"kind": "team", "id": "team_x"}}),
        rules: json!([{"kind": "rate_limit", "per": "principal", "limit": 10, "window_s": 60, "x": 1.25}]),
        created_at: created_at.into(),
        updated_at: created_at.into(),
    }
}

pub async fn policies_round_trip_per_org_in_creation_order<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let late = policy("pol_sc_rt_a", "org_sc_pol_rt", "late", T2);
    let early = policy("pol_sc_rt_b", "org_sc_pol_rt", "early", T0);
    let other = policy("pol_sc_rt_c", "org_sc_pol_rt_other", "early", T1);
    s.create_policy(&late).await?;
    s.create_policy(&early).await?;
    s.create_policy(&other).await?;
    same!(
        s.get_policy("org_sc_pol_rt", "pol_sc_rt_a").await?,
        Some(late.clone()),
        "get_policy after create_policy"
    );
    same!(
        s.list_policies("org_sc_pol_rt").await?,
        vec![early, late],
        "list_policies: the org's own, by created_at"
    );
    same!(
        s.get_policy("org_sc_pol_rt", "pol_sc_rt_c").await?,
        None,
        "get_policy of another org's id"
    );
    Ok(())
}

pub async fn policies_duplicate_id_or_name_conflicts<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let first = policy("pol_sc_dup_a", "org_sc_pol_dup", "same", T0);
    s.create_policy(&first).await?;
    same!(
        s.create_policy(&policy("pol_sc_dup_b", "org_sc_pol_dup", "same", T1))
            .await,
        Err(StoreError::Conflict),
        "create_policy with a name the org has"
    );
    same!(
        s.create_policy(&policy("pol_sc_dup_a", "org_sc_pol_dup2", "other", T1))
            .await,
        Err(StoreError::Conflict),
        "create_policy with an id that exists"
    );
    same!(
        s.list_policies("org_sc_pol_dup").await?,
        vec![first],
        "the first after the conflicts"
    );
    // Names are unique per organization only.
    s.create_policy(&policy("pol_sc_dup_c", "org_sc_pol_dup3", "same", T1))
        .await?;
    Ok(())
}

pub async fn policies_update_keeps_owner_and_creation_time<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let p = policy("pol_sc_upd", "org_sc_pol_upd", "before", T0);
    s.create_policy(&p).await?;
    s.create_policy(&policy("pol_sc_upd_2", "org_sc_pol_upd", "taken", T0))
        .await?;
    let mut changed = p.clone();
    changed.name = "after".into();
    changed.mode = "enforce".into();
    changed.rules = json!([]);
    changed.created_at = T2.into();
    changed.updated_at = T1.into();
    same!(
        s.update_policy(&changed).await?,
        true,
        "update_policy of an existing one"
    );
    let want = PolicyRecord {
        created_at: p.created_at.clone(),
        ..changed.clone()
    };
    same!(
        s.get_policy("org_sc_pol_upd", "pol_sc_upd").await?,
        Some(want),
        "after update"
    );
    let mut clash = changed.clone();
    clash.name = "taken".into();
    same!(
        s.update_policy(&clash).await,
        Err(StoreError::Conflict),
        "update_policy to another policy's name"
    );
    let mut foreign = changed.clone();
    foreign.org_id = "org_sc_pol_upd_other".into();
    same!(
        s.update_policy(&foreign).await?,
        false,
        "update_policy naming another org"
    );
    same!(
        s.delete_policy("org_sc_pol_upd_other", "pol_sc_upd").await?,
        false,
        "delete_policy naming another org"
    );
    same!(
        s.delete_policy("org_sc_pol_upd", "pol_sc_upd").await?,
        true,
        "delete_policy"
    );
    same!(
        s.get_policy("org_sc_pol_upd", "pol_sc_upd").await?,
        None,
        "after delete"
    );
    same!(
        s.delete_policy("org_sc_pol_upd", "pol_sc_upd").await?,
        false,
        "delete twice"
    );
    Ok(())
}
