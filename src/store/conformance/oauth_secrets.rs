//! Checks of `OAuthStore` (clients, pending authorizations, single-use tokens, families) and
//! `SecretStore` (the KV vault).
use serde_json::json;

use super::records::*;
use super::{same, Outcome};
use crate::store::{ConsoleSession, OAuthClient, SecretStore, Store, StoreError};

/// Far in the future, in milliseconds: tokens and pending entries that do not expire in a check.
const LATER_MS: u64 = 4_102_444_800_000;
/// More keys than one Workers KV list page holds (1,000), so listing must follow the cursor.
const MORE_THAN_A_KV_PAGE: usize = 1_001;

pub async fn oauth_client_round_trip_and_conflict<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let c = client("client_sc_rt");
    s.put_client(&c).await?;
    same!(
        s.get_client("client_sc_rt").await?,
        Some(c.clone()),
        "get_client after put_client"
    );
    // A registered client is never overwritten: its redirect URIs are what codes are sent to.
    let hijack = OAuthClient {
        redirect_uris: vec!["https://attacker.example/cb".into()],
        ..c.clone()
    };
    same!(
        s.put_client(&hijack).await,
        Err(StoreError::Conflict),
        "put_client with a client id that exists"
    );
    same!(
        s.get_client("client_sc_rt").await?,
        Some(c),
        "the client after the conflict"
    );
    same!(
        s.get_client("client_sc_nobody").await?,
        None,
        "get_client of an unknown id"
    );
    Ok(())
}

pub async fn oauth_pending_single_use<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let data = json!({"client": "c", "challenge": "x", "n": [1, 2.5, null]});
    s.put_pending("pending_sc_once", &data, LATER_MS).await?;
    s.put_pending("pending_sc_once_other", &json!({"other": true}), LATER_MS)
        .await?;
    same!(
        s.put_pending("pending_sc_once", &json!({"replaced": true}), LATER_MS)
            .await,
        Err(StoreError::Conflict),
        "put_pending with an id that exists"
    );
    same!(
        s.take_pending("pending_sc_once", 1_000).await?,
        Some(data),
        "take_pending of a live entry"
    );
    same!(
        s.take_pending("pending_sc_once", 1_000).await?,
        None,
        "take_pending a second time"
    );
    same!(
        s.take_pending("pending_sc_nothing", 1_000).await?,
        None,
        "take_pending of an unknown id"
    );
    same!(
        s.take_pending("pending_sc_once_other", 1_000).await?,
        Some(json!({"other": true})),
        "another entry after those"
    );
    Ok(())
}

pub async fn oauth_pending_expires<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    s.put_pending("pending_sc_exp_live", &json!(1), 5_000).await?;
    s.put_pending("pending_sc_exp_dead", &json!(2), 5_000).await?;
    same!(
        s.take_pending("pending_sc_exp_live", 4_999).await?,
        Some(json!(1)),
        "take_pending just before expiry"
    );
    same!(
        s.take_pending("pending_sc_exp_dead", 5_000).await?,
        None,
        "take_pending at expiry"
    );
    // An expired entry is gone, not waiting for a clock that goes back.
    same!(
        s.take_pending("pending_sc_exp_dead", 4_000).await?,
        None,
        "take_pending after an expired take"
    );
    Ok(())
}

pub async fn oauth_token_round_trip_and_conflict<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let code = token("tok_sc_rt_code", "code", "fam_sc_rt", LATER_MS);
    let mut access = token("tok_sc_rt_access", "access", "fam_sc_rt", 1);
    access.redirect_uri = None;
    access.code_challenge = None;
    s.put_token(&code).await?;
    s.put_token(&access).await?;
    same!(
        s.get_token("tok_sc_rt_code").await?,
        Some(code.clone()),
        "get_token after put_token"
    );
    // Expiry is the caller's check: an expired token is still returned.
    same!(
        s.get_token("tok_sc_rt_access").await?,
        Some(access),
        "get_token of an expired token"
    );
    let other = token("tok_sc_rt_code", "refresh", "fam_sc_other", LATER_MS);
    same!(
        s.put_token(&other).await,
        Err(StoreError::Conflict),
        "put_token with a hash that exists"
    );
    same!(
        s.get_token("tok_sc_rt_code").await?,
        Some(code),
        "the token after the conflict"
    );
    same!(
        s.get_token("tok_sc_nothing").await?,
        None,
        "get_token of an unknown hash"
    );
    Ok(())
}

pub async fn oauth_token_consumed_once<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let t = token("tok_sc_use", "refresh", "fam_sc_use", LATER_MS);
    s.put_token(&t).await?;
    same!(
        s.consume_token("tok_sc_use", 10).await?,
        true,
        "consume_token of a fresh token"
    );
    same!(
        s.consume_token("tok_sc_use", 11).await?,
        false,
        "consume_token a second time (a replay)"
    );
    same!(
        s.consume_token("tok_sc_nothing", 10).await?,
        false,
        "consume_token of an unknown hash"
    );
    same!(
        s.get_token("tok_sc_use").await?,
        Some(t),
        "a consumed token is still found (replays are detected by it)"
    );
    Ok(())
}

pub async fn oauth_family_revocation<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let a1 = token("tok_sc_fam_a1", "access", "fam_sc_a", LATER_MS);
    let a2 = token("tok_sc_fam_a2", "refresh", "fam_sc_a", LATER_MS);
    let b = token("tok_sc_fam_b", "access", "fam_sc_b", LATER_MS);
    for t in [&a1, &a2, &b] {
        s.put_token(t).await?;
    }
    s.revoke_family("fam_sc_a").await?;
    same!(s.get_token("tok_sc_fam_a1").await?, None, "a token of a revoked family");
    same!(
        s.get_token("tok_sc_fam_a2").await?,
        None,
        "another token of a revoked family"
    );
    same!(s.get_token("tok_sc_fam_b").await?, Some(b), "a token of another family");
    // A token issued into the family after the revocation (a refresh racing a replay) is dead too.
    s.put_token(&token("tok_sc_fam_a3", "access", "fam_sc_a", LATER_MS))
        .await?;
    same!(
        s.get_token("tok_sc_fam_a3").await?,
        None,
        "a token stored in a revoked family later"
    );
    s.revoke_family("fam_sc_a").await?;
    s.revoke_family("fam_sc_nothing").await?;
    same!(
        s.get_token("tok_sc_fam_a1").await?,
        None,
        "after revoking a family again"
    );
    Ok(())
}

/// Console sessions: stored once by hash, read back exactly, activity recorded, deleted at
/// sign-out, and sessions past their absolute deadline swept by any deletion.
pub async fn console_sessions_round_trip_touch_and_sweep<S: Store + ?Sized>(s: &S, _: &dyn SecretStore) -> Outcome {
    let live = ConsoleSession {
        hash: "sc_console_live".into(),
        principal_id: "usr_sc_console".into(),
        via: "oidc".into(),
        created_at_ms: 1_000,
        last_seen_ms: 1_000,
        expires_at_ms: LATER_MS,
    };
    s.put_console_session(&live).await?;
    same!(
        s.get_console_session("sc_console_live").await?,
        Some(live.clone()),
        "get_console_session after put"
    );
    same!(
        s.put_console_session(&live).await,
        Err(StoreError::Conflict),
        "put_console_session with a hash that exists"
    );
    same!(
        s.touch_console_session("sc_console_live", 61_000).await?,
        true,
        "touch of a live session"
    );
    same!(
        s.get_console_session("sc_console_live").await?.map(|c| c.last_seen_ms),
        Some(61_000),
        "last_seen_ms after touch"
    );
    same!(
        s.touch_console_session("sc_console_nobody", 1).await?,
        false,
        "touch of an unknown session"
    );
    let stale = ConsoleSession {
        hash: "sc_console_stale".into(),
        expires_at_ms: 5_000,
        ..live.clone()
    };
    s.put_console_session(&stale).await?;
    same!(
        s.delete_console_session("sc_console_live", 10_000).await?,
        true,
        "delete of a live session"
    );
    same!(
        s.get_console_session("sc_console_live").await?,
        None,
        "a deleted session"
    );
    same!(
        s.get_console_session("sc_console_stale").await?,
        None,
        "a session past its deadline, swept by the deletion"
    );
    same!(
        s.delete_console_session("sc_console_live", 10_000).await?,
        false,
        "a second delete"
    );
    Ok(())
}

pub async fn secrets_round_trip_and_overwrite<S: Store + ?Sized>(_: &S, k: &dyn SecretStore) -> Outcome {
    let key = "sc:rt:cred:server:x";
    same!(k.get_secret(key).await?, None, "get_secret of an unknown key");
    k.put_secret(key, "sealed-1").await?;
    same!(
        k.get_secret(key).await?.as_deref(),
        Some("sealed-1"),
        "get_secret after put_secret"
    );
    k.put_secret(key, "sealed-2").await?;
    same!(
        k.get_secret(key).await?.as_deref(),
        Some("sealed-2"),
        "put_secret replaces the value"
    );
    k.delete_secret(key).await?;
    same!(k.get_secret(key).await?, None, "get_secret after delete_secret");
    k.delete_secret(key).await?;
    same!(
        k.list_secrets("sc:rt:").await?,
        Vec::<String>::new(),
        "list_secrets after delete_secret"
    );
    Ok(())
}

pub async fn secrets_listed_by_prefix_in_key_order<S: Store + ?Sized>(_: &S, k: &dyn SecretStore) -> Outcome {
    for key in ["sc:ls:b", "sc:ls:a:2", "sc:ls:a", "sc:lsx", "sc:l"] {
        k.put_secret(key, "v").await?;
    }
    same!(
        k.list_secrets("sc:ls:").await?,
        ["sc:ls:a", "sc:ls:a:2", "sc:ls:b"],
        "list_secrets: every key under the prefix, in key order"
    );
    same!(
        k.list_secrets("sc:ls:a").await?,
        ["sc:ls:a", "sc:ls:a:2"],
        "a prefix that is also a key"
    );
    same!(
        k.list_secrets("sc:none:").await?,
        Vec::<String>::new(),
        "a prefix with no keys"
    );
    Ok(())
}

pub async fn secrets_listed_beyond_one_page<S: Store + ?Sized>(_: &S, k: &dyn SecretStore) -> Outcome {
    let keys: Vec<String> = (0..MORE_THAN_A_KV_PAGE).map(|i| format!("sc:page:{i:05}")).collect();
    for key in &keys {
        k.put_secret(key, "v").await?;
    }
    let listed = k.list_secrets("sc:page:").await?;
    same!(listed.len(), keys.len(), "how many keys list_secrets returns");
    same!(listed, keys, "list_secrets over several pages");
    Ok(())
}
