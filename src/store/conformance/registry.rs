//! Checks of `Registry`: servers and their tool catalogs.
use super::records::*;
use super::{ensure, same, Outcome};
use crate::store::{SecretStore, Store, StoreError, ToolRecord};

/// The tools of servers whose slug starts with `prefix`, as `list_all_tools` returns them.
async fn all_tools_under<S: Store + ?Sized>(s: &S, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
    Ok(s.list_all_tools()
        .await?
        .into_iter()
        .filter(|t| t.server_slug.starts_with(prefix))
        .map(|t| (t.server_slug, t.name))
        .collect())
}

fn names(tools: &[ToolRecord]) -> Vec<&str> {
    tools.iter().map(|t| t.name.as_str()).collect()
}

pub async fn registry_server_round_trips<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let sv = server("sc-rt", Some("org_sc_rt"));
    let mut quarantined = tool("sc-rt", "alpha");
    quarantined.status = "quarantined".into();
    quarantined.approved_hash = None;
    quarantined.approved_definition = None;
    quarantined.quarantine_reason = Some("tool poisoning: description: invisible characters".into());
    quarantined.title = None;
    quarantined.output_schema = None;
    s.create_server(&sv, &[tool("sc-rt", "zeta"), quarantined.clone()])
        .await?;
    same!(
        s.get_server("sc-rt").await?,
        Some(sv.clone()),
        "get_server after create_server"
    );
    let listed = s.list_servers().await?.into_iter().find(|x| x.slug == "sc-rt");
    same!(listed, Some(sv), "list_servers after create_server");
    same!(
        s.list_tools("sc-rt").await?,
        vec![quarantined, tool("sc-rt", "zeta")],
        "list_tools: the catalog as stored, ordered by name"
    );
    Ok(())
}

pub async fn registry_duplicate_slug_conflicts<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let first = server("sc-dup", None);
    s.create_server(&first, &[tool("sc-dup", "one")]).await?;
    let mut second = server("sc-dup", Some("org_other"));
    second.url = "https://elsewhere.example/mcp".into();
    same!(
        s.create_server(&second, &[tool("sc-dup", "two")]).await,
        Err(StoreError::Conflict),
        "create_server with a slug that exists"
    );
    same!(
        s.get_server("sc-dup").await?,
        Some(first),
        "the first server after the conflict"
    );
    same!(
        names(&s.list_tools("sc-dup").await?),
        vec!["one"],
        "the first catalog after the conflict"
    );
    Ok(())
}

pub async fn registry_create_is_atomic<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let twice = [tool("sc-atomic", "same"), tool("sc-atomic", "same")];
    same!(
        s.create_server(&server("sc-atomic", None), &twice).await,
        Err(StoreError::Conflict),
        "create_server with a tool name twice in its catalog"
    );
    same!(
        s.get_server("sc-atomic").await?,
        None,
        "the server after a refused create_server"
    );
    same!(
        s.list_tools("sc-atomic").await?,
        vec![],
        "its catalog after a refused create_server"
    );
    Ok(())
}

pub async fn registry_missing_server_reads_as_absent<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let ghost = server("sc-ghost", None);
    same!(s.get_server("sc-ghost").await?, None, "get_server of an unknown slug");
    same!(s.list_tools("sc-ghost").await?, vec![], "list_tools of an unknown slug");
    same!(
        s.update_server(&ghost).await?,
        false,
        "update_server of an unknown slug"
    );
    same!(
        s.delete_server("sc-ghost").await?,
        false,
        "delete_server of an unknown slug"
    );
    same!(
        s.approve_tool("sc-ghost", "x").await?,
        false,
        "approve_tool on an unknown slug"
    );
    same!(
        s.replace_catalog(&ghost, &[tool("sc-ghost", "x")]).await?,
        false,
        "replace_catalog of an unknown slug"
    );
    same!(s.get_server("sc-ghost").await?, None, "get_server after those");
    same!(s.list_tools("sc-ghost").await?, vec![], "list_tools after those");
    Ok(())
}

pub async fn registry_servers_ordered_by_slug<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    for slug in ["sc-ord-b", "sc-ord-c", "sc-ord-a", "sc-ord-a-2"] {
        s.create_server(&server(slug, None), &[]).await?;
    }
    let slugs: Vec<String> = s
        .list_servers()
        .await?
        .into_iter()
        .map(|x| x.slug)
        .filter(|x| x.starts_with("sc-ord-"))
        .collect();
    same!(
        slugs,
        ["sc-ord-a", "sc-ord-a-2", "sc-ord-b", "sc-ord-c"],
        "list_servers order"
    );
    Ok(())
}

pub async fn registry_update_keeps_owner_and_creation_time<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let sv = server("sc-upd", Some("org_sc_a"));
    s.create_server(&sv, &[tool("sc-upd", "t")]).await?;
    let mut changed = server("sc-upd", Some("org_sc_b"));
    changed.name = "Renamed".into();
    changed.status = "disabled".into();
    changed.era = None;
    changed.timeout_ms = None;
    changed.total_timeout_ms = None;
    changed.last_sync_error = Some("unreachable".into());
    changed.created_at = T2.into();
    changed.updated_at = T1.into();
    same!(
        s.update_server(&changed).await?,
        true,
        "update_server of an existing server"
    );
    let want = crate::store::ServerRecord {
        org_id: sv.org_id.clone(),
        created_at: sv.created_at.clone(),
        ..changed
    };
    same!(
        s.get_server("sc-upd").await?,
        Some(want),
        "the server after update_server"
    );
    same!(
        names(&s.list_tools("sc-upd").await?),
        vec!["t"],
        "its catalog after update_server"
    );
    Ok(())
}

pub async fn registry_delete_removes_catalog<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    s.create_server(&server("sc-del", None), &[tool("sc-del", "a"), tool("sc-del", "b")])
        .await?;
    s.create_server(&server("sc-del-kept", None), &[tool("sc-del-kept", "a")])
        .await?;
    same!(
        s.delete_server("sc-del").await?,
        true,
        "delete_server of an existing server"
    );
    same!(s.get_server("sc-del").await?, None, "get_server after delete_server");
    same!(s.list_tools("sc-del").await?, vec![], "list_tools after delete_server");
    same!(
        all_tools_under(s, "sc-del").await?,
        vec![("sc-del-kept".to_string(), "a".to_string())],
        "list_all_tools after delete_server (another server's catalog stays)"
    );
    same!(s.delete_server("sc-del").await?, false, "delete_server a second time");
    // The slug may be registered again, with nothing left over from before.
    s.create_server(&server("sc-del", None), &[]).await?;
    same!(
        s.list_tools("sc-del").await?,
        vec![],
        "the catalog of a re-registered slug"
    );
    Ok(())
}

pub async fn registry_replace_catalog_swaps_whole_catalog<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let sv = server("sc-rep", Some("org_sc_owner"));
    s.create_server(&sv, &[tool("sc-rep", "a"), tool("sc-rep", "b")])
        .await?;
    let mut synced = server("sc-rep", Some("org_sc_thief"));
    synced.protocol_version = Some("2025-11-25".into());
    synced.era = Some(crate::mcp::version::Era::Legacy);
    synced.created_at = T2.into();
    synced.updated_at = T1.into();
    let mut b2 = tool("sc-rep", "b");
    b2.description = Some("changed".into());
    b2.definition_hash = "hash-b-2".into();
    let new_catalog = vec![b2, tool("sc-rep", "c")];
    same!(
        s.replace_catalog(&synced, &new_catalog).await?,
        true,
        "replace_catalog of an existing server"
    );
    same!(
        s.list_tools("sc-rep").await?,
        new_catalog,
        "the catalog after replace_catalog"
    );
    let want = crate::store::ServerRecord {
        org_id: sv.org_id.clone(),
        created_at: sv.created_at.clone(),
        ..synced
    };
    same!(
        s.get_server("sc-rep").await?,
        Some(want),
        "the server after replace_catalog (owner and creation time fixed)"
    );
    Ok(())
}

pub async fn registry_replace_catalog_is_atomic<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let sv = server("sc-rep-atomic", None);
    s.create_server(&sv, &[tool("sc-rep-atomic", "a")]).await?;
    let mut synced = sv.clone();
    synced.name = "Half-written".into();
    let twice = [tool("sc-rep-atomic", "x"), tool("sc-rep-atomic", "x")];
    ensure!(
        s.replace_catalog(&synced, &twice).await.is_err(),
        "replace_catalog with a tool name twice must fail"
    );
    same!(
        s.get_server("sc-rep-atomic").await?,
        Some(sv),
        "the server after a failed replace_catalog"
    );
    same!(
        names(&s.list_tools("sc-rep-atomic").await?),
        vec!["a"],
        "the catalog after a failed replace_catalog"
    );
    Ok(())
}

pub async fn registry_replace_catalog_never_recreates_a_deleted_server<S: Store + ?Sized>(
    s: &S,
    _: &dyn SecretStore,
) -> Outcome {
    // A sync that finishes after an admin deleted the server must not bring it back.
    let sv = server("sc-resurrect", Some("org_sc_r"));
    s.create_server(&sv, &[tool("sc-resurrect", "a")]).await?;
    s.delete_server("sc-resurrect").await?;
    same!(
        s.replace_catalog(&sv, &[tool("sc-resurrect", "a")]).await?,
        false,
        "replace_catalog of a deleted server"
    );
    same!(
        s.get_server("sc-resurrect").await?,
        None,
        "the deleted server after replace_catalog"
    );
    same!(
        s.list_tools("sc-resurrect").await?,
        vec![],
        "its catalog after replace_catalog"
    );
    Ok(())
}

pub async fn registry_all_tools_ordered_by_server_then_name<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    s.create_server(
        &server("sc-all-b", None),
        &[tool("sc-all-b", "y"), tool("sc-all-b", "a")],
    )
    .await?;
    s.create_server(
        &server("sc-all-a", None),
        &[tool("sc-all-a", "z"), tool("sc-all-a", "b")],
    )
    .await?;
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    same!(
        all_tools_under(s, "sc-all-").await?,
        vec![
            pair("sc-all-a", "b"),
            pair("sc-all-a", "z"),
            pair("sc-all-b", "a"),
            pair("sc-all-b", "y")
        ],
        "list_all_tools order"
    );
    Ok(())
}

pub async fn registry_approve_pins_current_definition<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let mut changed = tool("sc-appr", "t");
    changed.definition_hash = "hash-t-2".into();
    changed.description = Some("now does something else".into());
    changed.status = "quarantined".into();
    changed.quarantine_reason = Some("definition changed since it was approved".into());
    let other = tool("sc-appr", "u");
    s.create_server(&server("sc-appr", None), &[changed.clone(), other.clone()])
        .await?;
    ensure!(
        !s.list_tools("sc-appr").await?[0].is_active(),
        "a quarantined tool must not read as active"
    );
    same!(
        s.approve_tool("sc-appr", "t").await?,
        true,
        "approve_tool of an existing tool"
    );
    let want = ToolRecord {
        status: "active".into(),
        approved_hash: Some("hash-t-2".into()),
        approved_definition: Some(changed.tool_json()),
        quarantine_reason: None,
        ..changed
    };
    same!(
        s.list_tools("sc-appr").await?,
        vec![want.clone(), other],
        "the catalog after approve_tool (only that tool changed)"
    );
    same!(
        s.approve_tool("sc-appr", "t").await?,
        true,
        "approve_tool a second time"
    );
    same!(
        s.list_tools("sc-appr").await?[0],
        want,
        "the tool after a second approve_tool"
    );
    same!(
        s.approve_tool("sc-appr", "nope").await?,
        false,
        "approve_tool of an unknown tool"
    );
    Ok(())
}

pub async fn registry_catalog_generation_increases<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let g0 = s.catalog_generation().await?;
    same!(s.catalog_generation().await?, g0, "catalog_generation read twice");
    s.bump_catalog_generation().await?;
    let g1 = s.catalog_generation().await?;
    ensure!(g1 > g0, "bump_catalog_generation: {g0} then {g1}");
    s.bump_catalog_generation().await?;
    let g2 = s.catalog_generation().await?;
    ensure!(g2 > g1, "a second bump_catalog_generation: {g1} then {g2}");
    Ok(())
}
