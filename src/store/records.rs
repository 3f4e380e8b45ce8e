//! The access-control records the stores keep: grants, caller identities, admin role
//! assignments and trusted identity providers. They are plain data here, below every layer that
//! uses them; what they mean (evaluation, scoping, token checks) lives in `policy`.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectKind {
    Org,
    Workspace,
    Team,
    User,
    Agent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    /// A registered server (`resource` is a slug or glob; `tool` narrows it to tools).
    Server,
    /// A virtual server (`resource` is its slug or a glob).
    Virtual,
}

/// One grant (D1 table `grants`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    pub id: String,
    pub subject_kind: SubjectKind,
    pub subject_id: String,
    pub resource_kind: ResourceKind,
    /// Slug or glob (`*`, `?`) of servers or virtual servers.
    pub resource: String,
    /// Tool name or glob; `None` = the whole server.
    pub tool: Option<String>,
    pub effect: Effect,
    pub created_at: String,
}

/// Who a caller is, as far as grants are concerned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub principal_id: String,
    /// `user` or `agent`.
    pub kind: String,
    pub org_id: String,
    pub workspace_ids: Vec<String>,
    pub team_ids: Vec<String>,
}

/// A role assignment (D1 table `admin_roles`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleAssignment {
    pub id: String,
    pub principal_id: String,
    pub role: Role,
    /// The org (org_admin, viewer, approver) or workspace (workspace_admin) the role covers.
    pub scope_id: String,
    /// The org of the scope (for checks without another lookup).
    pub org_id: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    OrgAdmin,
    WorkspaceAdmin,
    Viewer,
    /// Reads as a viewer does, and decides the organization's approval requests (nothing else).
    Approver,
}

/// A trusted issuer of an organization (D1 table `identity_providers`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityProvider {
    pub id: String,
    pub org_id: String,
    /// Exactly the `iss` its tokens carry.
    pub issuer: String,
    /// Accepted `aud` values (at least one must be in the token).
    pub audiences: Vec<String>,
    #[serde(default = "default_sub")]
    pub subject_claim: String,
    #[serde(default = "default_email")]
    pub email_claim: String,
    #[serde(default = "default_groups")]
    pub groups_claim: String,
    /// IdP group name → team id: members of the group are kept members of the team.
    #[serde(default)]
    pub group_teams: BTreeMap<String, String>,
    /// The gateway's client id at this issuer, for user login during the MCP OAuth flow
    /// (a public client with PKCE; `None`: this issuer is not used for login).
    #[serde(default)]
    pub login_client_id: Option<String>,
    pub created_at: String,
}

fn default_sub() -> String {
    "sub".into()
}
fn default_email() -> String {
    "email".into()
}
fn default_groups() -> String {
    "groups".into()
}
