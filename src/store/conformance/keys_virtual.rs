//! Checks of `VirtualServers` and `ApiKeys`.
use super::records::*;
use super::{same, Outcome};
use crate::store::{ApiKeyRecord, SecretStore, Store, StoreError, VirtualServer};

async fn virtual_slugs<S: Store + ?Sized>(s: &S, prefix: &str) -> Result<Vec<String>, StoreError> {
    Ok(s.list_virtual()
        .await?
        .into_iter()
        .map(|v| v.slug)
        .filter(|v| v.starts_with(prefix))
        .collect())
}

pub async fn virtual_round_trips_in_slug_order<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let b = virtual_server("sc-v-rt-b", Some("org_sc_v"));
    let a = virtual_server("sc-v-rt-a", None);
    s.create_virtual(&b).await?;
    s.create_virtual(&a).await?;
    same!(
        s.get_virtual("sc-v-rt-b").await?,
        Some(b.clone()),
        "get_virtual after create_virtual"
    );
    let listed: Vec<VirtualServer> = s
        .list_virtual()
        .await?
        .into_iter()
        .filter(|v| v.slug.starts_with("sc-v-rt-"))
        .collect();
    same!(listed, vec![a, b], "list_virtual: as stored, ordered by slug");
    Ok(())
}

pub async fn virtual_duplicate_slug_conflicts<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let first = virtual_server("sc-v-dup", None);
    s.create_virtual(&first).await?;
    let mut second = virtual_server("sc-v-dup", Some("org_sc_other"));
    second.tools.clear();
    same!(
        s.create_virtual(&second).await,
        Err(StoreError::Conflict),
        "create_virtual with a slug that exists"
    );
    same!(
        s.get_virtual("sc-v-dup").await?,
        Some(first),
        "the first after the conflict"
    );
    Ok(())
}

pub async fn virtual_update_keeps_owner_and_creation_time<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let v = virtual_server("sc-v-upd", Some("org_sc_a"));
    s.create_virtual(&v).await?;
    let mut changed = virtual_server("sc-v-upd", Some("org_sc_b"));
    changed.name = "Renamed".into();
    changed.description = None;
    changed.tools.truncate(1);
    changed.created_at = T2.into();
    changed.updated_at = T1.into();
    same!(
        s.update_virtual(&changed).await?,
        true,
        "update_virtual of an existing one"
    );
    let want = VirtualServer {
        org_id: v.org_id.clone(),
        created_at: v.created_at.clone(),
        ..changed
    };
    same!(s.get_virtual("sc-v-upd").await?, Some(want), "after update_virtual");
    Ok(())
}

pub async fn virtual_missing_reads_as_absent<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let v = virtual_server("sc-v-gone", None);
    same!(
        s.get_virtual("sc-v-gone").await?,
        None,
        "get_virtual of an unknown slug"
    );
    same!(s.update_virtual(&v).await?, false, "update_virtual of an unknown slug");
    same!(
        s.delete_virtual("sc-v-gone").await?,
        false,
        "delete_virtual of an unknown slug"
    );
    same!(
        s.get_virtual("sc-v-gone").await?,
        None,
        "update_virtual must not create"
    );
    s.create_virtual(&v).await?;
    s.create_virtual(&virtual_server("sc-v-gone-kept", None)).await?;
    same!(
        s.delete_virtual("sc-v-gone").await?,
        true,
        "delete_virtual of an existing one"
    );
    same!(
        s.delete_virtual("sc-v-gone").await?,
        false,
        "delete_virtual a second time"
    );
    same!(
        s.get_virtual("sc-v-gone").await?,
        None,
        "get_virtual after delete_virtual"
    );
    same!(
        virtual_slugs(s, "sc-v-gone").await?,
        ["sc-v-gone-kept"],
        "list_virtual after delete_virtual"
    );
    Ok(())
}

async fn find<S: Store + ?Sized>(s: &S, k: &ApiKeyRecord) -> Result<Option<ApiKeyRecord>, StoreError> {
    s.find_key_by_hash(&k.key_hash).await
}

pub async fn keys_round_trip_as_given<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let plain = key("key_sc_rt_plain", T0);
    let mut full = key("key_sc_rt_full", T1);
    full.last_used_at = Some(T1.into());
    full.revoked_at = Some(T2.into());
    full.principal_id = "usr_sc_rt".into();
    full.expires_at = None;
    s.create_key(&plain).await?;
    s.create_key(&full).await?;
    same!(
        find(s, &plain).await?,
        Some(plain.clone()),
        "find_key_by_hash after create_key"
    );
    same!(
        find(s, &full).await?,
        Some(full.clone()),
        "find_key_by_hash of a key stored with every field set"
    );
    let listed = s.list_keys().await?.into_iter().find(|k| k.id == full.id);
    same!(listed, Some(full), "list_keys after create_key");
    same!(
        s.find_key_by_hash("hash-of-nothing").await?,
        None,
        "find_key_by_hash of an unknown hash"
    );
    Ok(())
}

pub async fn keys_duplicate_id_or_hash_conflicts<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let first = key("key_sc_dup", T0);
    s.create_key(&first).await?;
    let same_id = ApiKeyRecord {
        key_hash: "hash-other".into(),
        ..first.clone()
    };
    same!(
        s.create_key(&same_id).await,
        Err(StoreError::Conflict),
        "create_key with an id that exists"
    );
    let same_hash = ApiKeyRecord {
        id: "key_sc_dup_2".into(),
        ..first.clone()
    };
    same!(
        s.create_key(&same_hash).await,
        Err(StoreError::Conflict),
        "create_key with a hash that exists"
    );
    same!(find(s, &first).await?, Some(first), "the first key after the conflicts");
    same!(
        s.find_key_by_hash("hash-other").await?,
        None,
        "nothing stored by the refused key"
    );
    Ok(())
}

pub async fn keys_listed_newest_first_then_by_id<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    // Two keys created in the same millisecond are listed by id, whatever order they arrived in.
    for (id, at) in [
        ("key_sc_ord_m", T1),
        ("key_sc_ord_z", T2),
        ("key_sc_ord_o", T0),
        ("key_sc_ord_b", T2),
    ] {
        s.create_key(&key(id, at)).await?;
    }
    let ids: Vec<String> = s
        .list_keys()
        .await?
        .into_iter()
        .map(|k| k.id)
        .filter(|k| k.starts_with("key_sc_ord_"))
        .collect();
    same!(
        ids,
        ["key_sc_ord_b", "key_sc_ord_z", "key_sc_ord_m", "key_sc_ord_o"],
        "list_keys order"
    );
    Ok(())
}

pub async fn keys_revoked_once_and_still_found<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let mut k = key("key_sc_rev", T0);
    // Expired long ago: expiry is the caller's check, the store still finds it.
    k.expires_at = Some("2000-01-01T00:00:00.000Z".into());
    let other = key("key_sc_rev_other", T0);
    s.create_key(&k).await?;
    s.create_key(&other).await?;
    same!(s.revoke_key("key_sc_rev", T1).await?, true, "revoke_key of a live key");
    same!(s.revoke_key("key_sc_rev", T2).await?, false, "revoke_key a second time");
    same!(
        s.revoke_key("key_sc_nothing", T2).await?,
        false,
        "revoke_key of an unknown id"
    );
    let want = ApiKeyRecord {
        revoked_at: Some(T1.into()),
        ..k.clone()
    };
    same!(
        find(s, &k).await?,
        Some(want),
        "a revoked key is still found, revoked at the first time"
    );
    same!(find(s, &other).await?, Some(other), "another key after revoke_key");
    Ok(())
}
