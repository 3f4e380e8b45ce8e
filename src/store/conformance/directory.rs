//! Checks of `Directory`: entries, memberships, identities, grants, identity providers, roles.
use super::records::*;
use super::{ensure, same, Outcome};
use crate::store::records::Role;
use crate::store::{Entity, EntityKind, Identity, SecretStore, Store, StoreError};

fn ids<T>(items: Vec<T>, id: impl Fn(&T) -> &str, prefix: &str) -> Vec<String> {
    items
        .iter()
        .map(|x| id(x).to_string())
        .filter(|x| x.starts_with(prefix))
        .collect()
}

pub async fn directory_entities_round_trip<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let org = entity("org_sc_ent", EntityKind::Org, None);
    let ws = entity("ws_sc_ent", EntityKind::Workspace, Some("org_sc_ent"));
    let team = entity("team_sc_ent", EntityKind::Team, Some("ws_sc_ent"));
    let user = entity("usr_sc_ent", EntityKind::User, Some("org_sc_ent"));
    let agent = entity("agt_sc_ent", EntityKind::Agent, Some("org_sc_ent"));
    for e in [&org, &ws, &team, &user, &agent] {
        s.create_entity(e).await?;
    }
    for e in [org, ws, team, user, agent] {
        same!(s.get_entity(&e.id).await?, Some(e.clone()), "get_entity of {}", e.id);
    }
    same!(
        s.get_entity("usr_sc_nobody").await?,
        None,
        "get_entity of an unknown id"
    );
    Ok(())
}

pub async fn directory_duplicate_id_or_subject_conflicts<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let (org, _) = org_with_workspace(s, "sc_edup").await?;
    let user = entity("usr_sc_edup", EntityKind::User, Some(&org));
    s.create_entity(&user).await?;
    let same_id = entity("usr_sc_edup", EntityKind::Agent, Some(&org));
    same!(
        s.create_entity(&same_id).await,
        Err(StoreError::Conflict),
        "create_entity with an id that exists"
    );
    let same_subject = Entity {
        id: "usr_sc_edup_2".into(),
        ..user.clone()
    };
    same!(
        s.create_entity(&same_subject).await,
        Err(StoreError::Conflict),
        "create_entity with an external subject that exists"
    );
    same!(
        s.get_entity("usr_sc_edup").await?,
        Some(user),
        "the first entry after the conflicts"
    );
    same!(
        s.get_entity("usr_sc_edup_2").await?,
        None,
        "nothing stored by the refused entry"
    );
    Ok(())
}

pub async fn directory_entities_keyset_pages<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let (org, _) = org_with_workspace(s, "sc_page").await?;
    let (other, _) = org_with_workspace(s, "sc_page_other").await?;
    for n in [3, 1, 5, 2, 4] {
        s.create_entity(&entity(&format!("usr_sc_page_{n}"), EntityKind::User, Some(&org)))
            .await?;
    }
    s.create_entity(&entity("agt_sc_page_1", EntityKind::Agent, Some(&org)))
        .await?;
    s.create_entity(&entity("usr_sc_page_0", EntityKind::User, Some(&other)))
        .await?;
    let page = |after: Option<&'static str>, limit: usize| {
        let org = org.clone();
        async move {
            s.list_entities(EntityKind::User, Some(&org), after, limit)
                .await
                .map(|es| es.into_iter().map(|e| e.id).collect::<Vec<_>>())
        }
    };
    same!(page(None, 2).await?, ["usr_sc_page_1", "usr_sc_page_2"], "first page");
    same!(
        page(Some("usr_sc_page_2"), 2).await?,
        ["usr_sc_page_3", "usr_sc_page_4"],
        "second page"
    );
    same!(page(Some("usr_sc_page_4"), 2).await?, ["usr_sc_page_5"], "last page");
    same!(
        page(Some("usr_sc_page_5"), 2).await?,
        Vec::<String>::new(),
        "after the last"
    );
    // Keyset, not offset: the position after a key that does not exist is still well defined.
    same!(
        page(Some("usr_sc_page_2a"), 2).await?,
        ["usr_sc_page_3", "usr_sc_page_4"],
        "after an absent key"
    );
    same!(page(None, 0).await?, Vec::<String>::new(), "a page of zero entries");
    let all_users = s
        .list_entities(EntityKind::User, None, Some("usr_sc_page_"), 1000)
        .await?;
    same!(
        ids(all_users, |e| &e.id, "usr_sc_page_"),
        [
            "usr_sc_page_0",
            "usr_sc_page_1",
            "usr_sc_page_2",
            "usr_sc_page_3",
            "usr_sc_page_4",
            "usr_sc_page_5"
        ],
        "every user of every organization, in id order"
    );
    Ok(())
}

pub async fn directory_update_changes_name_and_email_only<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let (org, _) = org_with_workspace(s, "sc_eupd").await?;
    let (other, _) = org_with_workspace(s, "sc_eupd_other").await?;
    let user = entity("usr_sc_eupd", EntityKind::User, Some(&org));
    s.create_entity(&user).await?;
    let changed = Entity {
        id: user.id.clone(),
        kind: EntityKind::Agent,
        parent_id: Some(other),
        name: "Renamed".into(),
        email: None,
        external_subject: Some("moved|elsewhere".into()),
        created_at: T2.into(),
    };
    same!(
        s.update_entity(&changed).await?,
        true,
        "update_entity of an existing entry"
    );
    let want = Entity {
        name: "Renamed".into(),
        email: None,
        ..user
    };
    same!(
        s.get_entity("usr_sc_eupd").await?,
        Some(want),
        "the entry after update_entity"
    );
    let ghost = Entity {
        id: "usr_sc_eupd_ghost".into(),
        ..changed
    };
    same!(s.update_entity(&ghost).await?, false, "update_entity of an unknown id");
    same!(
        s.get_entity("usr_sc_eupd_ghost").await?,
        None,
        "update_entity must not create"
    );
    Ok(())
}

pub async fn directory_delete_removes_memberships_and_roles<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let (org, ws) = org_with_workspace(s, "sc_edel").await?;
    s.create_entity(&entity("team_sc_edel", EntityKind::Team, Some(&ws)))
        .await?;
    let (user, agent) = ("usr_sc_edel", "agt_sc_edel");
    s.create_entity(&entity(user, EntityKind::User, Some(&org))).await?;
    s.create_entity(&entity(agent, EntityKind::Agent, Some(&org))).await?;
    for (p, g) in [
        (user, ws.as_str()),
        (user, "team_sc_edel"),
        (agent, ws.as_str()),
        (agent, "team_sc_edel"),
    ] {
        s.add_member(p, g, T0).await?;
    }
    s.create_role(&role("role_sc_edel", user, Role::OrgAdmin, &org, &org))
        .await?;
    s.create_role(&role("role_sc_edel_agent", agent, Role::Viewer, &org, &org))
        .await?;
    same!(
        s.delete_entity(user).await?,
        true,
        "delete_entity of an existing principal"
    );
    same!(s.get_entity(user).await?, None, "get_entity after delete_entity");
    same!(s.identity(user).await?, None, "identity after delete_entity");
    same!(
        s.list_members(&ws).await?,
        [agent],
        "workspace members after deleting a member"
    );
    same!(
        s.list_members("team_sc_edel").await?,
        [agent],
        "team members after deleting a member"
    );
    same!(s.roles_of(user).await?, vec![], "roles of a deleted principal");
    same!(
        ids(s.list_roles().await?, |r| &r.id, "role_sc_edel"),
        ["role_sc_edel_agent"],
        "list_roles after deleting a principal"
    );
    same!(s.delete_entity(user).await?, false, "delete_entity a second time");
    // Deleting a group ends its memberships too.
    same!(s.delete_entity("team_sc_edel").await?, true, "delete_entity of a team");
    let id = s.identity(agent).await?.unwrap_or_default();
    same!(
        id.team_ids,
        Vec::<String>::new(),
        "the agent's teams after its team was deleted"
    );
    same!(
        id.workspace_ids,
        [ws],
        "the agent's workspaces after its team was deleted"
    );
    Ok(())
}

pub async fn directory_dependents_counted<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    // What keeps an entry from being deleted: children, members, owned servers and virtual
    // servers, and, for an organization, the identity providers it trusts.
    let org = "org_sc_dep";
    s.create_entity(&entity(org, EntityKind::Org, None)).await?;
    same!(s.count_dependents(org).await?, 0, "an empty organization");
    s.create_server(&server("sc-dep", Some(org)), &[]).await?;
    same!(s.count_dependents(org).await?, 1, "an organization owning a server");
    s.create_virtual(&virtual_server("sc-dep", Some(org))).await?;
    same!(s.count_dependents(org).await?, 2, "… and a virtual server");
    s.create_idp(&idp("idp_sc_dep", org, "https://sc-dep.example")).await?;
    same!(s.count_dependents(org).await?, 3, "… and an identity provider");
    s.create_entity(&entity("ws_sc_dep", EntityKind::Workspace, Some(org)))
        .await?;
    same!(s.count_dependents(org).await?, 4, "… and a workspace");
    same!(s.count_dependents("ws_sc_dep").await?, 0, "an empty workspace");
    s.create_entity(&entity("agt_sc_dep", EntityKind::Agent, Some(org)))
        .await?;
    s.add_member("agt_sc_dep", "ws_sc_dep", T0).await?;
    same!(s.count_dependents("ws_sc_dep").await?, 1, "a workspace with a member");
    same!(s.count_dependents("org_sc_nothing").await?, 0, "an unknown id");
    Ok(())
}

pub async fn directory_memberships_idempotent_in_principal_order<S: Store + ?Sized>(
    s: &S,
    _: &dyn SecretStore,
) -> Outcome {
    let (org, ws) = org_with_workspace(s, "sc_mem").await?;
    for p in ["usr_sc_mem_z", "usr_sc_mem_a", "agt_sc_mem_m"] {
        let kind = if p.starts_with("agt") {
            EntityKind::Agent
        } else {
            EntityKind::User
        };
        s.create_entity(&entity(p, kind, Some(&org))).await?;
        s.add_member(p, &ws, T0).await?;
    }
    s.add_member("usr_sc_mem_a", &ws, T1).await?;
    same!(
        s.list_members(&ws).await?,
        ["agt_sc_mem_m", "usr_sc_mem_a", "usr_sc_mem_z"],
        "list_members: each once, ordered by principal id"
    );
    same!(
        s.remove_member("usr_sc_mem_a", &ws).await?,
        true,
        "remove_member of a member"
    );
    same!(
        s.remove_member("usr_sc_mem_a", &ws).await?,
        false,
        "remove_member a second time"
    );
    same!(
        s.remove_member("usr_sc_mem_z", "ws_sc_nothing").await?,
        false,
        "remove_member from an unknown group"
    );
    same!(
        s.list_members(&ws).await?,
        ["agt_sc_mem_m", "usr_sc_mem_z"],
        "list_members after remove_member"
    );
    same!(
        s.list_members("ws_sc_nothing").await?,
        Vec::<String>::new(),
        "members of an unknown group"
    );
    Ok(())
}

pub async fn directory_identity_collects_groups_sorted<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let (org, ws1) = org_with_workspace(s, "sc_idn").await?;
    let ws2 = "ws_sc_idn_2";
    s.create_entity(&entity(ws2, EntityKind::Workspace, Some(&org))).await?;
    s.create_entity(&entity("team_sc_idn_b", EntityKind::Team, Some(ws2)))
        .await?;
    s.create_entity(&entity("team_sc_idn_a", EntityKind::Team, Some(&ws1)))
        .await?;
    s.create_entity(&entity("usr_sc_idn", EntityKind::User, Some(&org)))
        .await?;
    s.create_entity(&entity("agt_sc_idn", EntityKind::Agent, Some(&org)))
        .await?;
    for g in ["team_sc_idn_b", ws1.as_str(), "team_sc_idn_a"] {
        s.add_member("usr_sc_idn", g, T0).await?;
    }
    let want = Identity {
        principal_id: "usr_sc_idn".into(),
        kind: "user".into(),
        org_id: org.clone(),
        workspace_ids: vec![ws1.clone(), ws2.into()],
        team_ids: vec!["team_sc_idn_a".into(), "team_sc_idn_b".into()],
    };
    same!(
        s.identity("usr_sc_idn").await?,
        Some(want),
        "identity: workspaces (direct and by team) and teams, sorted"
    );
    let agent = Identity {
        principal_id: "agt_sc_idn".into(),
        kind: "agent".into(),
        org_id: org.clone(),
        ..Default::default()
    };
    same!(
        s.identity("agt_sc_idn").await?,
        Some(agent),
        "identity of an agent in no group"
    );
    for not_principal in [org.as_str(), ws1.as_str(), "team_sc_idn_a", "usr_sc_idn_nobody"] {
        same!(s.identity(not_principal).await?, None, "identity of {not_principal}");
    }
    Ok(())
}

pub async fn directory_all_identities_in_principal_order<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let (org, ws) = org_with_workspace(s, "sc_all").await?;
    for p in ["usr_sc_all_c", "usr_sc_all_a", "usr_sc_all_b"] {
        s.create_entity(&entity(p, EntityKind::User, Some(&org))).await?;
    }
    s.add_member("usr_sc_all_b", &ws, T0).await?;
    let all: Vec<Identity> = s
        .all_identities()
        .await?
        .into_iter()
        .filter(|i| i.principal_id.starts_with("usr_sc_all_"))
        .collect();
    let mut want = Vec::new();
    for p in ["usr_sc_all_a", "usr_sc_all_b", "usr_sc_all_c"] {
        want.extend(s.identity(p).await?);
    }
    ensure!(want.len() == 3, "identity of each principal");
    same!(
        all,
        want,
        "all_identities: each principal's identity, ordered by principal id"
    );
    Ok(())
}

pub async fn directory_grants_by_id_and_conflict<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let (b, a) = (grant("grant_sc_g_b", "usr_sc_g"), grant("grant_sc_g_a", "usr_sc_g"));
    s.create_grant(&b).await?;
    s.create_grant(&a).await?;
    let mine = |gs: Vec<crate::store::Grant>| {
        gs.into_iter()
            .filter(|g| g.id.starts_with("grant_sc_g_"))
            .collect::<Vec<_>>()
    };
    same!(
        mine(s.list_grants().await?),
        vec![a.clone(), b.clone()],
        "list_grants: as stored, ordered by id"
    );
    let mut other = grant("grant_sc_g_b", "usr_sc_someone_else");
    other.tool = None;
    same!(
        s.create_grant(&other).await,
        Err(StoreError::Conflict),
        "create_grant with an id that exists"
    );
    same!(
        mine(s.list_grants().await?),
        vec![a, b.clone()],
        "the grants after the conflict"
    );
    same!(
        s.delete_grant("grant_sc_g_a").await?,
        true,
        "delete_grant of an existing grant"
    );
    same!(
        s.delete_grant("grant_sc_g_a").await?,
        false,
        "delete_grant a second time"
    );
    same!(mine(s.list_grants().await?), vec![b], "the grants after delete_grant");
    Ok(())
}

pub async fn directory_grants_for_subjects<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    for (id, subject) in [
        ("grant_sc_gf_3", "usr_sc_gf_1"),
        ("grant_sc_gf_1", "usr_sc_gf_2"),
        ("grant_sc_gf_2", "usr_sc_gf_1"),
        ("grant_sc_gf_4", "usr_sc_gf_3"),
    ] {
        s.create_grant(&grant(id, subject)).await?;
    }
    let subjects = ["usr_sc_gf_1".to_string(), "usr_sc_gf_2".to_string()];
    same!(
        ids(s.grants_for(&subjects).await?, |g| &g.id, ""),
        ["grant_sc_gf_1", "grant_sc_gf_2", "grant_sc_gf_3"],
        "grants_for two subjects: theirs only, ordered by id"
    );
    same!(s.grants_for(&[]).await?, vec![], "grants_for no subject");
    same!(
        s.grants_for(&["usr_sc_gf_none".into()]).await?,
        vec![],
        "grants_for a subject without grants"
    );
    Ok(())
}

pub async fn directory_identity_providers<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let (org1, _) = org_with_workspace(s, "sc_idp_1").await?;
    let (org2, _) = org_with_workspace(s, "sc_idp_2").await?;
    let shared = "https://sc-idp.example/shared";
    let b = idp("idp_sc_b", &org1, shared);
    let a = idp("idp_sc_a", &org2, shared);
    let c = idp("idp_sc_c", &org1, "https://sc-idp.example/own");
    for i in [&b, &a, &c] {
        s.create_idp(i).await?;
    }
    let mine = |v: Vec<crate::store::IdentityProvider>| {
        v.into_iter()
            .filter(|i| i.id.starts_with("idp_sc_"))
            .collect::<Vec<_>>()
    };
    let listed = mine(s.list_idps().await?);
    let listed: Vec<_> = listed
        .into_iter()
        .filter(|i| i.org_id == org1 || i.org_id == org2)
        .collect();
    same!(
        listed,
        vec![a.clone(), b.clone(), c],
        "list_idps: as stored, ordered by id"
    );
    same!(
        s.idps_by_issuer(shared).await?,
        vec![a.clone(), b.clone()],
        "idps_by_issuer of a shared issuer, ordered by id"
    );
    let again = idp("idp_sc_d", &org1, shared);
    same!(
        s.create_idp(&again).await,
        Err(StoreError::Conflict),
        "an organization trusting an issuer twice"
    );
    let same_id = idp("idp_sc_a", &org1, "https://sc-idp.example/third");
    same!(
        s.create_idp(&same_id).await,
        Err(StoreError::Conflict),
        "create_idp with an id that exists"
    );
    same!(
        s.idps_by_issuer("https://sc-idp.example/third").await?,
        vec![],
        "nothing stored by the refused one"
    );
    same!(s.delete_idp("idp_sc_b").await?, true, "delete_idp of an existing one");
    same!(s.delete_idp("idp_sc_b").await?, false, "delete_idp a second time");
    same!(
        s.idps_by_issuer(shared).await?,
        vec![a],
        "idps_by_issuer after delete_idp"
    );
    Ok(())
}

pub async fn directory_roles<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let (org, ws) = org_with_workspace(s, "sc_role").await?;
    let (u1, u2) = ("usr_sc_role_1", "usr_sc_role_2");
    s.create_entity(&entity(u1, EntityKind::User, Some(&org))).await?;
    s.create_entity(&entity(u2, EntityKind::User, Some(&org))).await?;
    let b = role("role_sc_b", u1, Role::OrgAdmin, &org, &org);
    let a = role("role_sc_a", u1, Role::WorkspaceAdmin, &ws, &org);
    let c = role("role_sc_c", u2, Role::Viewer, &org, &org);
    for r in [&b, &a, &c] {
        s.create_role(r).await?;
    }
    same!(
        s.roles_of(u1).await?,
        vec![a.clone(), b.clone()],
        "roles_of: as stored, ordered by id"
    );
    let mine = |v: Vec<crate::store::RoleAssignment>| {
        v.into_iter()
            .filter(|r| r.id.starts_with("role_sc_") && r.org_id == org)
            .collect::<Vec<_>>()
    };
    same!(
        mine(s.list_roles().await?),
        vec![a.clone(), b.clone(), c.clone()],
        "list_roles ordered by id"
    );
    let twice = role("role_sc_d", u1, Role::OrgAdmin, &org, &org);
    same!(
        s.create_role(&twice).await,
        Err(StoreError::Conflict),
        "the same role on the same scope twice"
    );
    let same_id = role("role_sc_a", u2, Role::OrgAdmin, &org, &org);
    same!(
        s.create_role(&same_id).await,
        Err(StoreError::Conflict),
        "create_role with an id that exists"
    );
    same!(
        s.roles_of(u2).await?,
        vec![c.clone()],
        "nothing stored by the refused roles"
    );
    let f = role("role_sc_f", u2, Role::Approver, &org, &org);
    s.create_role(&f).await?;
    same!(s.roles_of(u2).await?, vec![c, f], "an approver's role round-trips");
    let e = role("role_sc_e", u1, Role::Viewer, &org, &org);
    s.create_role(&e).await?;
    same!(
        s.delete_role("role_sc_b").await?,
        true,
        "delete_role of an existing role"
    );
    same!(s.delete_role("role_sc_b").await?, false, "delete_role a second time");
    same!(s.roles_of(u1).await?, vec![a, e], "roles_of after delete_role");
    Ok(())
}
