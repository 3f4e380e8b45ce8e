//! Checks of `Changes`: a batch of writes is applied in order and all-or-nothing.
use serde_json::json;

use super::records::*;
use super::{ensure, same, Outcome};
use crate::store::{EntityKind, PolicyRecord, SecretStore, Store, StoreError, Write};

fn policy(id: &str, org: &str, name: &str) -> PolicyRecord {
    PolicyRecord {
        id: id.into(),
        org_id: org.into(),
        name: name.into(),
        mode: "enforce".into(),
        scope: json!({"server": "sc-ch-*"}),
        rules: json!([{"kind": "block", "tools": ["rm"]}]),
        created_at: T0.into(),
        updated_at: T0.into(),
    }
}

pub async fn changes_apply_every_kind_in_order<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let org = "org_sc_ch_all";
    let ws = entity("ws_sc_ch_all", EntityKind::Workspace, Some(org));
    let team = entity("team_sc_ch_all", EntityKind::Team, Some("ws_sc_ch_all"));
    let agent = entity("agt_sc_ch_all", EntityKind::Agent, Some(org));
    let g = grant("grant_sc_ch_all", "agt_sc_ch_all");
    let srv = server("sc-ch-all", Some(org));
    let v = virtual_server("sc-ch-all-v", Some(org));
    let p = policy("pol_sc_ch_all", org, "all");
    let writes = vec![
        Write::CreateEntity(entity(org, EntityKind::Org, None)),
        Write::CreateEntity(ws.clone()),
        Write::CreateEntity(team.clone()),
        Write::CreateEntity(agent.clone()),
        Write::AddMember {
            principal_id: agent.id.clone(),
            group_id: team.id.clone(),
            at: T0.into(),
        },
        Write::CreateGrant(g.clone()),
        Write::CreateServer {
            server: srv.clone(),
            tools: vec![tool("sc-ch-all", "echo")],
        },
        Write::CreateVirtual(v.clone()),
        Write::CreatePolicy(p.clone()),
    ];
    s.apply(&writes).await?;
    same!(
        s.get_entity(&team.id).await?,
        Some(team.clone()),
        "a team created in the batch"
    );
    same!(
        s.list_members(&team.id).await?,
        vec![agent.id.clone()],
        "a membership created in the batch"
    );
    ensure!(
        s.list_grants().await?.contains(&g),
        "a grant created in the batch is listed"
    );
    same!(
        s.get_server("sc-ch-all").await?,
        Some(srv.clone()),
        "a server created in the batch"
    );
    same!(
        s.list_tools("sc-ch-all").await?,
        vec![tool("sc-ch-all", "echo")],
        "its catalog"
    );
    same!(
        s.get_virtual("sc-ch-all-v").await?,
        Some(v.clone()),
        "a virtual server created in the batch"
    );
    same!(
        s.get_policy(org, &p.id).await?,
        Some(p.clone()),
        "a policy created in the batch"
    );

    // Updates, a catalog replaced, then everything removed again, children first.
    let mut renamed = agent.clone();
    renamed.name = "Renamed".into();
    let mut moved = srv.clone();
    moved.url = "https://moved.example/mcp".into();
    moved.updated_at = T1.into();
    let mut p2 = p.clone();
    p2.mode = "monitor".into();
    p2.updated_at = T1.into();
    s.apply(&[
        Write::UpdateEntity(renamed.clone()),
        Write::ReplaceCatalog {
            server: moved.clone(),
            tools: vec![tool("sc-ch-all", "add")],
        },
        Write::UpdatePolicy(p2.clone()),
    ])
    .await?;
    same!(
        s.get_entity(&agent.id).await?,
        Some(renamed),
        "an entry updated in a batch"
    );
    same!(
        s.get_server("sc-ch-all").await?,
        Some(moved),
        "a server updated in a batch"
    );
    same!(
        s.list_tools("sc-ch-all").await?,
        vec![tool("sc-ch-all", "add")],
        "its catalog replaced"
    );
    same!(s.get_policy(org, &p.id).await?, Some(p2), "a policy updated in a batch");
    s.apply(&[
        Write::DeletePolicy {
            org_id: org.into(),
            id: p.id.clone(),
        },
        Write::DeleteVirtual(v.slug.clone()),
        Write::DeleteServer(srv.slug.clone()),
        Write::DeleteGrant(g.id.clone()),
        Write::RemoveMember {
            principal_id: agent.id.clone(),
            group_id: team.id.clone(),
        },
        Write::DeleteEntity(team.id.clone()),
        Write::DeleteEntity(agent.id.clone()),
        Write::DeleteEntity(ws.id.clone()),
    ])
    .await?;
    same!(s.get_server("sc-ch-all").await?, None, "a server deleted in a batch");
    same!(s.list_tools("sc-ch-all").await?, vec![], "its catalog");
    same!(
        s.get_virtual("sc-ch-all-v").await?,
        None,
        "a virtual server deleted in a batch"
    );
    same!(s.get_policy(org, &p.id).await?, None, "a policy deleted in a batch");
    ensure!(
        !s.list_grants().await?.contains(&g),
        "a grant deleted in a batch is gone"
    );
    for id in [&team.id, &agent.id, &ws.id] {
        same!(s.get_entity(id).await?, None, "entry {id} deleted in a batch");
    }
    Ok(())
}

pub async fn changes_late_conflict_stores_nothing<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let org = "org_sc_ch_late";
    let before = server("sc-ch-late-old", Some(org));
    s.create_entity(&entity(org, EntityKind::Org, None)).await?;
    s.create_entity(&entity("agt_sc_ch_late_taken", EntityKind::Agent, Some(org)))
        .await?;
    s.create_server(&before, &[tool("sc-ch-late-old", "echo")]).await?;
    let mut changed = before.clone();
    changed.name = "Changed".into();
    let writes = vec![
        Write::CreateEntity(entity("ws_sc_ch_late", EntityKind::Workspace, Some(org))),
        Write::CreateServer {
            server: server("sc-ch-late-new", Some(org)),
            tools: vec![tool("sc-ch-late-new", "echo")],
        },
        Write::UpdateServer(changed),
        Write::DeleteServer("sc-ch-late-old".into()),
        Write::CreateGrant(grant("grant_sc_ch_late", "agt_sc_ch_late_taken")),
        Write::CreatePolicy(policy("pol_sc_ch_late", org, "late")),
        // The last write meets an existing id.
        Write::CreateEntity(entity("agt_sc_ch_late_taken", EntityKind::Agent, Some(org))),
    ];
    same!(
        s.apply(&writes).await,
        Err(StoreError::Conflict),
        "a batch whose last create conflicts"
    );
    same!(
        s.get_entity("ws_sc_ch_late").await?,
        None,
        "an entry created earlier in the failed batch"
    );
    same!(
        s.get_server("sc-ch-late-new").await?,
        None,
        "a server created earlier in the failed batch"
    );
    same!(s.list_tools("sc-ch-late-new").await?, vec![], "its catalog");
    same!(
        s.get_server("sc-ch-late-old").await?,
        Some(before),
        "a server updated, then deleted, in the failed batch"
    );
    same!(
        s.list_tools("sc-ch-late-old").await?,
        vec![tool("sc-ch-late-old", "echo")],
        "its catalog"
    );
    ensure!(
        !s.list_grants().await?.iter().any(|g| g.id == "grant_sc_ch_late"),
        "a grant created in the failed batch is not stored"
    );
    same!(
        s.list_policies(org).await?,
        vec![],
        "a policy created in the failed batch"
    );
    Ok(())
}

pub async fn changes_absent_targets_change_nothing<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let org = "org_sc_ch_absent";
    let mut ghost = server("sc-ch-absent-ghost", Some(org));
    ghost.name = "Ghost".into();
    s.apply(&[
        Write::CreateEntity(entity(org, EntityKind::Org, None)),
        Write::UpdateServer(ghost),
        Write::DeleteServer("sc-ch-absent-ghost".into()),
        Write::UpdateEntity(entity("agt_sc_ch_absent_ghost", EntityKind::Agent, Some(org))),
        Write::DeleteEntity("agt_sc_ch_absent_ghost".into()),
        Write::DeleteGrant("grant_sc_ch_absent_ghost".into()),
        Write::DeleteVirtual("sc-ch-absent-ghost".into()),
        Write::UpdatePolicy(policy("pol_sc_ch_absent", org, "ghost")),
        Write::DeletePolicy {
            org_id: org.into(),
            id: "pol_sc_ch_absent".into(),
        },
    ])
    .await?;
    ensure!(s.get_entity(org).await?.is_some(), "the batch's create is stored");
    same!(
        s.get_server("sc-ch-absent-ghost").await?,
        None,
        "an update of an absent server creates nothing"
    );
    same!(
        s.get_entity("agt_sc_ch_absent_ghost").await?,
        None,
        "an update of an absent entry creates nothing"
    );
    same!(
        s.list_policies(org).await?,
        vec![],
        "an update of an absent policy creates nothing"
    );
    s.apply(&[]).await?;
    Ok(())
}
