//! Human approvals of tool calls: a policy that wants a person to approve a call asks for an
//! approval bound to exactly that call — organization, principal, server, tool and the hash of
//! its arguments — and the call goes through once an approver has approved it, once.
//!
//! Life of a record (`ApprovalStatus`):
//!
//! ```text
//! request ─▶ pending ──approve──▶ approved ──consume──▶ consumed
//!               │  └────deny───▶ denied        │
//!               └─ PENDING_TTL ─▶ expired ◀────┘ APPROVED_TTL
//! ```
//!
//! Expiry is computed, not written: a pending or approved record whose `expires_at_ms` has
//! passed reads as `expired` (`ApprovalRecord::at`). Every record is kept `RETAIN_MS` after it
//! ended (`purge_at_ms`), then deleted.
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{StoreError, StoreResult};

/// How long a pending request waits for a decision (the usual `ttl_ms` of `request`).
pub const PENDING_TTL_MS: u64 = 60 * 60 * 1000;
/// How long an approval may wait, after the decision, for the call it approves.
pub const APPROVED_TTL_MS: u64 = 15 * 60 * 1000;
/// How long a record is kept after it ended (expired, denied, consumed), for people to see.
pub const RETAIN_MS: u64 = 7 * 24 * 60 * 60 * 1000;
/// The largest page of `list`.
pub const MAX_PAGE: usize = 500;

/// What an approval is for: exactly one call shape of one principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalBinding {
    pub org_id: String,
    pub principal_id: String,
    /// The server slug.
    pub server: String,
    pub tool: String,
    /// Hex SHA-256 of the call's canonical arguments (computed by the caller).
    pub arguments_hash: String,
}

/// A request for an approval, as the policy that wants one makes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewApproval {
    pub binding: ApprovalBinding,
    /// The policy and the index of its rule that asked.
    pub policy_id: String,
    pub rule: u32,
    /// What approvers are shown of the arguments (the caller decides how much, as for events;
    /// `None`: nothing). Not part of the binding: the hash is.
    #[serde(default)]
    pub arguments: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Denied,
    Expired,
    Consumed,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Denied => "denied",
            ApprovalStatus::Expired => "expired",
            ApprovalStatus::Consumed => "consumed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            ApprovalStatus::Pending,
            ApprovalStatus::Approved,
            ApprovalStatus::Denied,
            ApprovalStatus::Expired,
            ApprovalStatus::Consumed,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// One approval request and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// `apr_{created_at_ms as 12 hex digits}{16 random hex digits}.{org_id}`: ids of one
    /// organization sort by creation time, and name the organization they belong to.
    pub id: String,
    #[serde(flatten)]
    pub binding: ApprovalBinding,
    pub policy_id: String,
    pub rule: u32,
    pub arguments: Option<Value>,
    /// As of the read (expiry applied).
    pub status: ApprovalStatus,
    pub created_at_ms: u64,
    /// Pending: the decision is due by then; approved: the call must come by then
    /// (`decided_at_ms + APPROVED_TTL_MS`).
    pub expires_at_ms: u64,
    pub decided_at_ms: Option<u64>,
    /// The principal who decided.
    pub decided_by: Option<String>,
    pub consumed_at_ms: Option<u64>,
}

impl ApprovalRecord {
    /// A new pending record for `new`, waiting `ttl_ms` from `now_ms`.
    pub fn pending(new: &NewApproval, ttl_ms: u64, now_ms: u64) -> Self {
        let random = hex::encode(crate::crypto::random_bytes::<8>());
        ApprovalRecord {
            id: format!("apr_{now_ms:012x}{random}.{}", new.binding.org_id),
            binding: new.binding.clone(),
            policy_id: new.policy_id.clone(),
            rule: new.rule,
            arguments: new.arguments.clone(),
            status: ApprovalStatus::Pending,
            created_at_ms: now_ms,
            expires_at_ms: now_ms.saturating_add(ttl_ms),
            decided_at_ms: None,
            decided_by: None,
            consumed_at_ms: None,
        }
    }

    /// The record as of `now_ms`: pending or approved past its expiry is `expired`.
    pub fn at(mut self, now_ms: u64) -> Self {
        self.status = self.status_at(now_ms);
        self
    }

    /// The status as of `now_ms` (see `at`).
    pub fn status_at(&self, now_ms: u64) -> ApprovalStatus {
        match self.status {
            ApprovalStatus::Pending | ApprovalStatus::Approved if now_ms >= self.expires_at_ms => {
                ApprovalStatus::Expired
            }
            s => s,
        }
    }

    /// When the record may be deleted: `RETAIN_MS` after it ended or will end.
    pub fn purge_at_ms(&self) -> u64 {
        let ended = match self.status {
            ApprovalStatus::Denied => self.decided_at_ms.unwrap_or(self.expires_at_ms),
            ApprovalStatus::Consumed => self.consumed_at_ms.unwrap_or(self.expires_at_ms),
            _ => self.expires_at_ms,
        };
        ended.saturating_add(RETAIN_MS)
    }

    /// Applies a decision to a record that is pending as of `now_ms` (the caller checked).
    pub fn decided(mut self, approve: bool, by: &str, now_ms: u64) -> Self {
        self.decided_at_ms = Some(now_ms);
        self.decided_by = Some(by.to_string());
        if approve {
            self.status = ApprovalStatus::Approved;
            self.expires_at_ms = now_ms.saturating_add(APPROVED_TTL_MS);
        } else {
            self.status = ApprovalStatus::Denied;
        }
        self
    }
}

/// The organization an approval id names (`None`: not an approval id).
pub fn org_of_id(id: &str) -> Option<&str> {
    let (head, org) = id.split_once('.')?;
    (head.starts_with("apr_") && !org.is_empty()).then_some(org)
}

/// Why a decision was not taken.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecideError {
    /// The approval was decided already, consumed or expired: it shows how (its status).
    #[error("the approval is already {}", .0.status.as_str())]
    NotPending(Box<ApprovalRecord>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Approval requests, per organization.
#[async_trait(?Send)]
pub trait Approvals {
    /// A pending approval for `new.binding`, expiring `ttl_ms` after `now_ms`. Idempotent: if
    /// one is pending (and unexpired) for the same binding, that one is returned as it is.
    async fn request(&self, new: &NewApproval, ttl_ms: u64, now_ms: u64) -> StoreResult<ApprovalRecord>;
    /// The record, as of `now_ms`; `None` if unknown in this organization (another
    /// organization's id included).
    async fn get(&self, org_id: &str, id: &str, now_ms: u64) -> StoreResult<Option<ApprovalRecord>>;
    /// An organization's records as of `now_ms`, newest first (by id), only those with
    /// `status` if given, only those after `after` in that order (a keyset page: `after` need
    /// not exist), at most `limit` (capped at `MAX_PAGE`).
    async fn list(
        &self,
        org_id: &str,
        status: Option<ApprovalStatus>,
        after: Option<&str>,
        limit: usize,
        now_ms: u64,
    ) -> StoreResult<Vec<ApprovalRecord>>;
    /// Approves (valid `APPROVED_TTL_MS` from now) or denies a pending, unexpired record,
    /// recording `by`. `Ok(None)`: unknown in this organization. A record that is not pending
    /// as of `now_ms` is `Err(NotPending)` with the record, unchanged: of two concurrent
    /// decisions exactly one is taken.
    async fn decide(
        &self,
        org_id: &str,
        id: &str,
        approve: bool,
        by: &str,
        now_ms: u64,
    ) -> Result<Option<ApprovalRecord>, DecideError>;
    /// Consumes an approved, unexpired approval of exactly this binding (the one expiring
    /// first, if several) and returns it, now `consumed`; `None` if there is none. Atomic:
    /// of concurrent consumes, one approval serves exactly one.
    async fn consume(&self, binding: &ApprovalBinding, now_ms: u64) -> StoreResult<Option<ApprovalRecord>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new() -> NewApproval {
        NewApproval {
            binding: ApprovalBinding {
                org_id: "org_a".into(),
                principal_id: "agt_1".into(),
                server: "s".into(),
                tool: "t".into(),
                arguments_hash: "h".into(),
            },
            policy_id: "pol_1".into(),
            rule: 0,
            arguments: None,
        }
    }

    #[test]
    fn ids_name_their_organization_and_sort_by_time() {
        let a = ApprovalRecord::pending(&new(), PENDING_TTL_MS, 1_000);
        let b = ApprovalRecord::pending(&new(), PENDING_TTL_MS, 1_001);
        assert!(a.id < b.id);
        assert_eq!(org_of_id(&a.id), Some("org_a"));
        assert_eq!(org_of_id("key_1.org_a"), None);
        assert_eq!(org_of_id("apr_1"), None);
    }

    #[test]
    fn expiry_is_read_not_written() {
        let r = ApprovalRecord::pending(&new(), 10, 1_000);
        assert_eq!(r.clone().at(1_009).status, ApprovalStatus::Pending);
        assert_eq!(r.clone().at(1_010).status, ApprovalStatus::Expired);
        let ok = r.decided(true, "usr_x", 1_005);
        assert_eq!(ok.expires_at_ms, 1_005 + APPROVED_TTL_MS);
        assert_eq!(ok.clone().at(1_010).status, ApprovalStatus::Approved);
        assert_eq!(ok.purge_at_ms(), 1_005 + APPROVED_TTL_MS + RETAIN_MS);
        assert_eq!(ApprovalStatus::parse("consumed"), Some(ApprovalStatus::Consumed));
        assert_eq!(ApprovalStatus::parse("nope"), None);
    }
}
