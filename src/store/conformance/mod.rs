//! The store conformance suite: one set of named checks of the contracts written on the store
//! traits, run against every backend — `MemoryStore` natively (`cargo test`), D1 and KV under
//! Miniflare through the test-only route of the `store-conformance` build
//! (`tests/store-conformance.test.mjs`) — so the backends cannot drift apart.
//!
//! Every check works on records whose ids only it uses, and reads lists through a filter on
//! those ids, so checks share one store in any order (the migrations' seed rows and other
//! checks' rows are simply not its business). Each check returns the first broken contract.

mod approvals;
mod audit;
mod changes;
mod directory;
mod keys_virtual;
mod limits;
mod oauth_secrets;
mod policies;
mod records;
mod registry;
mod usage;

use serde::Serialize;

use super::approvals::DecideError;
use super::usage::UsageStore;
use super::{Approvals, AuditStore, Counters, SecretStore, Store, StoreError};

/// The audit trail as the suite checks it: the chain store, and usage read from it.
pub trait AuditTrail: AuditStore + UsageStore {}
impl<T: AuditStore + UsageStore + ?Sized> AuditTrail for T {}

/// What a failed check says: the contract it found broken.
#[derive(Debug)]
pub struct Failure(pub String);

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure(format!("unexpected store error: {e}"))
    }
}

impl From<DecideError> for Failure {
    fn from(e: DecideError) -> Self {
        Failure(format!("unexpected decision error: {e}"))
    }
}

type Outcome = Result<(), Failure>;

/// The stateful services of policies as the suite checks them: counters and approvals, and
/// the time checks start from (the platform's clock there, so that what the Durable Objects
/// schedule lies ahead; any fixed time natively).
pub struct LimitStores<'a> {
    pub counters: &'a dyn Counters,
    pub approvals: &'a dyn Approvals,
    pub base_ms: u64,
}

/// Fails the check with a message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err($crate::store::conformance::Failure(format!($($msg)+)));
        }
    };
}

/// Fails the check unless `got == want`, showing both.
macro_rules! same {
    ($got:expr, $want:expr, $($what:tt)+) => {
        // `match` keeps temporaries alive to the end, as `assert_eq!` does.
        match (&$got, &$want) {
            (got, want) => {
                if got != want {
                    return Err($crate::store::conformance::Failure(format!(
                        "{}: expected {:?}, got {:?}",
                        format!($($what)+),
                        want,
                        got
                    )));
                }
            }
        }
    };
}
pub(crate) use {ensure, same};

/// One check's result, as the Miniflare route reports it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: &'static str,
    pub passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

macro_rules! suite {
    (
        stores: [$($group:ident :: $name:ident),* $(,)?],
        audit: [$($agroup:ident :: $aname:ident),* $(,)?] $(,)?
    ) => {
        /// Every check of the suite, by name, in its usual order.
        pub const CHECKS: &[&str] = &[$(stringify!($name),)* $(stringify!($aname)),*];

        /// Runs the check named `name`; `None` for an unknown name.
        pub async fn run_check<S: Store + ?Sized>(
            name: &str,
            store: &S,
            secrets: &dyn SecretStore,
            audit: &dyn AuditTrail,
        ) -> Option<CheckResult> {
            let outcome = match name {
                $(stringify!($name) => $group::$name(store, secrets).await,)*
                $(stringify!($aname) => $agroup::$aname(audit).await,)*
                _ => return None,
            };
            let name = CHECKS.iter().copied().find(|c| *c == name)?;
            Some(CheckResult {
                name,
                passed: outcome.is_ok(),
                detail: outcome.err().map(|f| f.0),
            })
        }

        /// Each check on a fresh `MemoryStore` with the migrations' seed rows, as its own test.
        #[cfg(test)]
        mod memory_store {
            $(
                #[test]
                fn $name() {
                    super::tests::on_fresh_memory_store(stringify!($name));
                }
            )*
            $(
                #[test]
                fn $aname() {
                    super::tests::on_fresh_memory_store(stringify!($aname));
                }
            )*
        }
    };
}

suite! {
    stores: [
    registry::registry_server_round_trips,
    registry::registry_duplicate_slug_conflicts,
    registry::registry_create_is_atomic,
    registry::registry_missing_server_reads_as_absent,
    registry::registry_servers_ordered_by_slug,
    registry::registry_update_keeps_owner_and_creation_time,
    registry::registry_delete_removes_catalog,
    registry::registry_replace_catalog_swaps_whole_catalog,
    registry::registry_replace_catalog_is_atomic,
    registry::registry_replace_catalog_never_recreates_a_deleted_server,
    registry::registry_all_tools_ordered_by_server_then_name,
    registry::registry_approve_pins_current_definition,
    registry::registry_catalog_generation_increases,
    keys_virtual::virtual_round_trips_in_slug_order,
    keys_virtual::virtual_duplicate_slug_conflicts,
    keys_virtual::virtual_update_keeps_owner_and_creation_time,
    keys_virtual::virtual_missing_reads_as_absent,
    keys_virtual::keys_round_trip_as_given,
    keys_virtual::keys_duplicate_id_or_hash_conflicts,
    keys_virtual::keys_listed_newest_first_then_by_id,
    keys_virtual::keys_revoked_once_and_still_found,
    directory::directory_entities_round_trip,
    directory::directory_duplicate_id_or_subject_conflicts,
    directory::directory_entities_keyset_pages,
    directory::directory_update_changes_name_and_email_only,
    directory::directory_delete_removes_memberships_and_roles,
    directory::directory_dependents_counted,
    directory::directory_memberships_idempotent_in_principal_order,
    directory::directory_identity_collects_groups_sorted,
    directory::directory_all_identities_in_principal_order,
    directory::directory_grants_by_id_and_conflict,
    directory::directory_grants_for_subjects,
    directory::directory_identity_providers,
    directory::directory_roles,
    oauth_secrets::oauth_client_round_trip_and_conflict,
    oauth_secrets::oauth_pending_single_use,
    oauth_secrets::oauth_pending_expires,
    oauth_secrets::oauth_token_round_trip_and_conflict,
    oauth_secrets::oauth_token_consumed_once,
    oauth_secrets::oauth_family_revocation,
    oauth_secrets::console_sessions_round_trip_touch_and_sweep,
    oauth_secrets::secrets_round_trip_and_overwrite,
    oauth_secrets::secrets_listed_by_prefix_in_key_order,
    oauth_secrets::secrets_listed_beyond_one_page,
    policies::policies_round_trip_per_org_in_creation_order,
    policies::policies_duplicate_id_or_name_conflicts,
    policies::policies_update_keeps_owner_and_creation_time,
    changes::changes_apply_every_kind_in_order,
    changes::changes_late_conflict_stores_nothing,
    changes::changes_absent_targets_change_nothing,
    ],
    audit: [
    audit::audit_chain_links_each_org_in_order,
    audit::audit_append_is_idempotent_by_event_id,
    audit::audit_concurrent_appends_never_fork,
    audit::audit_list_filters_newest_first,
    audit::audit_purge_keeps_chain_verifiable,
    usage::usage_groups_match_the_reference,
    usage::usage_last_use_matches_the_reference,
    ],
}

/// Runs every check, in the usual order, against one store.
pub async fn run_all<S: Store + ?Sized>(
    store: &S,
    secrets: &dyn SecretStore,
    audit: &dyn AuditTrail,
) -> Vec<CheckResult> {
    let mut out = Vec::with_capacity(CHECKS.len());
    for name in CHECKS {
        out.extend(run_check(name, store, secrets, audit).await);
    }
    out
}

macro_rules! limits_suite {
    ($($group:ident :: $name:ident),* $(,)?) => {
        /// Every check of `Counters` and `Approvals`, by name, in its usual order.
        pub const LIMIT_CHECKS: &[&str] = &[$(stringify!($name)),*];

        /// Runs the check of counters or approvals named `name`; `None` for an unknown name.
        pub async fn run_limit_check(name: &str, stores: &LimitStores<'_>) -> Option<CheckResult> {
            let outcome = match name {
                $(stringify!($name) => $group::$name(stores).await,)*
                _ => return None,
            };
            let name = LIMIT_CHECKS.iter().copied().find(|c| *c == name)?;
            Some(CheckResult {
                name,
                passed: outcome.is_ok(),
                detail: outcome.err().map(|f| f.0),
            })
        }

        /// Each check on fresh memory backends, as its own test.
        #[cfg(test)]
        mod memory_limits {
            $(
                #[test]
                fn $name() {
                    super::tests::on_fresh_memory_limits(stringify!($name));
                }
            )*
        }
    };
}

limits_suite! {
    limits::counters_fixed_window_counts_exactly,
    limits::counters_sliding_window_is_a_log,
    limits::counters_calendar_periods_are_utc,
    limits::counters_concurrent_takes_are_exact,
    limits::counters_listed_by_organization_prefix,
    approvals::approvals_request_is_idempotent_while_pending,
    approvals::approvals_listed_newest_first_by_status,
    approvals::approvals_decided_once,
    approvals::approvals_consumed_once_for_the_exact_call,
    approvals::approvals_concurrent_consumes_one_wins,
}

/// Runs every check of counters and approvals, in the usual order.
pub async fn run_all_limits(stores: &LimitStores<'_>) -> Vec<CheckResult> {
    let mut out = Vec::with_capacity(LIMIT_CHECKS.len());
    for name in LIMIT_CHECKS {
        out.extend(run_limit_check(name, stores).await);
    }
    out
}

#[cfg(test)]
mod tests {
    use futures_executor::block_on;

    use super::*;
    use crate::store::limits_memory::{MemoryApprovals, MemoryCounters};
    use crate::store::memory::MemoryStore;

    pub(super) fn on_fresh_memory_store(name: &str) {
        let store = MemoryStore::with_defaults();
        let result = block_on(run_check(name, &store, &store, &store)).expect("a check of the suite");
        assert!(result.passed, "{name}: {}", result.detail.unwrap_or_default());
    }

    /// All checks on one shared store, last first: no check depends on another's rows or order.
    #[test]
    fn every_check_passes_on_one_shared_store_in_reverse_order() {
        let store = MemoryStore::with_defaults();
        let failed: Vec<String> = CHECKS
            .iter()
            .rev()
            .filter_map(|name| block_on(run_check(name, &store, &store, &store)))
            .filter(|r| !r.passed)
            .map(|r| format!("{}: {}", r.name, r.detail.unwrap_or_default()))
            .collect();
        assert!(failed.is_empty(), "{failed:#?}");
    }

    /// 2026-01-01T00:00:00.123Z: not aligned to any window.
    const BASE_MS: u64 = 1_767_225_600_123;

    pub(super) fn on_fresh_memory_limits(name: &str) {
        let (counters, approvals) = (MemoryCounters::new(), MemoryApprovals::new());
        let stores = LimitStores {
            counters: &counters,
            approvals: &approvals,
            base_ms: BASE_MS,
        };
        let result = block_on(run_limit_check(name, &stores)).expect("a check of the suite");
        assert!(result.passed, "{name}: {}", result.detail.unwrap_or_default());
    }

    /// The checks of counters and approvals on one shared pair of backends, last first.
    #[test]
    fn every_limit_check_passes_on_shared_backends_in_reverse_order() {
        let (counters, approvals) = (MemoryCounters::new(), MemoryApprovals::new());
        let stores = LimitStores {
            counters: &counters,
            approvals: &approvals,
            base_ms: BASE_MS,
        };
        let failed: Vec<String> = LIMIT_CHECKS
            .iter()
            .rev()
            .filter_map(|name| block_on(run_limit_check(name, &stores)))
            .filter(|r| !r.passed)
            .map(|r| format!("{}: {}", r.name, r.detail.unwrap_or_default()))
            .collect();
        assert!(failed.is_empty(), "{failed:#?}");
    }

    #[test]
    fn check_names_are_unique_and_known() {
        let mut names = CHECKS.iter().chain(LIMIT_CHECKS).copied().collect::<Vec<_>>();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CHECKS.len() + LIMIT_CHECKS.len());
        let store = MemoryStore::new();
        assert!(block_on(run_check("no_such_check", &store, &store, &store)).is_none());
    }
}
