//! Who may drive the admin API, and how far: the bootstrap token (super-admin), and principals
//! holding an admin role — org admin, workspace admin, read-only viewer, or approver (a viewer
//! who also decides the organization's approval requests).
pub use crate::store::records::{Role, RoleAssignment};

/// What a write touches, for the scope check.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// Platform-wide things (servers and virtual servers without an owner, vault rotation, new
    /// organizations): the bootstrap admin only.
    Global,
    /// Something inside an organization (its workspaces, users, agents, keys, grants, issuers).
    Org(String),
    /// Something inside a workspace (its teams, memberships, grants on them).
    Workspace { org: String, workspace: String },
}

/// The principal the audit trail records for the bootstrap `ADMIN_TOKEN`.
pub const SUPER_ADMIN_PRINCIPAL: &str = "admin_token";

/// Proof that the caller of the admin API was authenticated, with what it may change.
#[derive(Debug, Clone)]
pub struct AdminPermit {
    super_admin: bool,
    roles: Vec<RoleAssignment>,
    /// Who acts (recorded in the audit trail): the principal and the key it used.
    principal_id: String,
    key_id: String,
}

impl AdminPermit {
    pub(crate) fn super_admin() -> Self {
        Self {
            super_admin: true,
            roles: Vec::new(),
            principal_id: SUPER_ADMIN_PRINCIPAL.into(),
            key_id: String::new(),
        }
    }

    pub(crate) fn with_roles(roles: Vec<RoleAssignment>) -> Option<Self> {
        (!roles.is_empty()).then_some(Self {
            super_admin: false,
            roles,
            principal_id: String::new(),
            key_id: String::new(),
        })
    }

    /// The permit of `principal_id`, authenticated with key `key_id` (empty for a token).
    pub(crate) fn acting_as(mut self, principal_id: &str, key_id: &str) -> Self {
        self.principal_id = principal_id.into();
        self.key_id = key_id.into();
        self
    }

    /// The admin roles the caller holds (none for the bootstrap admin, who holds every power).
    pub fn roles(&self) -> &[RoleAssignment] {
        &self.roles
    }

    /// Who acts: `(principal id, key id)`; the bootstrap token is `SUPER_ADMIN_PRINCIPAL`.
    pub fn actor(&self) -> (&str, &str) {
        (&self.principal_id, &self.key_id)
    }

    /// Every admin may read — within its organizations (see `may_read_org`).
    pub fn may_read(&self) -> bool {
        true
    }

    /// The organizations whose data the caller may read (`None`: every one, the bootstrap admin).
    pub fn readable_orgs(&self) -> Option<Vec<String>> {
        if self.super_admin {
            return None;
        }
        let mut orgs: Vec<String> = self.roles.iter().map(|r| r.org_id.clone()).collect();
        orgs.sort_unstable();
        orgs.dedup();
        Some(orgs)
    }

    pub fn is_super_admin(&self) -> bool {
        self.super_admin
    }

    /// Whether the caller may see what organization `org` holds: the bootstrap admin sees
    /// everything; anyone else only the organizations it holds a role in. To everyone else, an
    /// organization's things answer exactly as missing ones.
    pub fn may_read_org(&self, org: &str) -> bool {
        self.super_admin || self.roles.iter().any(|r| r.org_id == org)
    }

    /// Whether the caller may see a server or virtual server with this owner (`None`:
    /// platform-wide, which every admin may see, since organizations grant their members
    /// access to it).
    pub fn may_see(&self, owner: Option<&str>) -> bool {
        owner.is_none_or(|o| self.may_read_org(o))
    }

    /// Whether the caller may change a server or virtual server with this owner: platform-wide
    /// ones only the bootstrap admin; an organization's, its org admins.
    pub fn may_manage(&self, owner: Option<&str>) -> bool {
        match owner {
            None => self.may_write(&Scope::Global),
            Some(o) => self.may_write(&Scope::Org(o.to_string())),
        }
    }

    /// The organization a new server or virtual server belongs to when the request names none:
    /// platform-wide for the bootstrap admin; the organization the caller is org admin of, if
    /// exactly one.
    pub fn default_owner(&self) -> Result<Option<String>, &'static str> {
        if self.super_admin {
            return Ok(None);
        }
        let mut orgs: Vec<&str> = self
            .roles
            .iter()
            .filter(|r| r.role == Role::OrgAdmin)
            .map(|r| r.org_id.as_str())
            .collect();
        orgs.sort_unstable();
        orgs.dedup();
        match orgs.as_slice() {
            [one] => Ok(Some(one.to_string())),
            [] => Err("only an org admin registers servers"),
            _ => Err("you administer several organizations: name one with org_id"),
        }
    }

    /// Whether the caller may change something in `scope`. Platform-wide things and creating
    /// organizations need the bootstrap token (see `may_create_org`).
    pub fn may_write(&self, scope: &Scope) -> bool {
        if self.super_admin {
            return true;
        }
        self.roles.iter().any(|r| match (r.role, scope) {
            (Role::Viewer | Role::Approver, _) => false,
            (Role::OrgAdmin, Scope::Global) => false,
            (Role::OrgAdmin, Scope::Org(o)) | (Role::OrgAdmin, Scope::Workspace { org: o, .. }) => &r.org_id == o,
            (Role::WorkspaceAdmin, Scope::Workspace { workspace, .. }) => &r.scope_id == workspace,
            (Role::WorkspaceAdmin, _) => false,
        })
    }

    pub fn may_create_org(&self) -> bool {
        self.super_admin
    }

    /// Whether the caller holds any role that allows writes at all (viewers and approvers do
    /// not; an approver's decisions are checked by `may_decide`).
    pub fn may_write_anything(&self) -> bool {
        self.super_admin
            || self
                .roles
                .iter()
                .any(|r| !matches!(r.role, Role::Viewer | Role::Approver))
    }

    /// Whether the caller may see and decide organization `org`'s approval requests: the
    /// bootstrap admin, the org's admins and its approvers.
    pub fn may_decide(&self, org: &str) -> bool {
        self.super_admin
            || self
                .roles
                .iter()
                .any(|r| r.org_id == org && matches!(r.role, Role::OrgAdmin | Role::Approver))
    }

    /// The organizations whose approval requests the caller decides, sorted (`None`: every
    /// one, the bootstrap admin).
    pub fn deciding_orgs(&self) -> Option<Vec<String>> {
        if self.super_admin {
            return None;
        }
        let mut orgs: Vec<String> = self
            .roles
            .iter()
            .filter(|r| matches!(r.role, Role::OrgAdmin | Role::Approver))
            .map(|r| r.org_id.clone())
            .collect();
        orgs.sort_unstable();
        orgs.dedup();
        Some(orgs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(role: Role, scope: &str, org: &str) -> RoleAssignment {
        RoleAssignment {
            id: "r".into(),
            principal_id: "usr_a".into(),
            role,
            scope_id: scope.into(),
            org_id: org.into(),
            created_at: "t".into(),
        }
    }

    #[test]
    fn scopes() {
        let ws = |o: &str, w: &str| Scope::Workspace {
            org: o.into(),
            workspace: w.into(),
        };
        let viewer = AdminPermit::with_roles(vec![role(Role::Viewer, "org_a", "org_a")]).unwrap();
        assert!(viewer.may_read() && !viewer.may_write_anything() && !viewer.may_write(&Scope::Org("org_a".into())));
        let oa = AdminPermit::with_roles(vec![role(Role::OrgAdmin, "org_a", "org_a")]).unwrap();
        assert!(oa.may_write(&Scope::Org("org_a".into())) && oa.may_write(&ws("org_a", "ws_1")));
        assert!(!oa.may_write(&Scope::Org("org_b".into())) && !oa.may_create_org());
        // Platform-wide things belong to the bootstrap admin; another org's are invisible.
        assert!(!oa.may_write(&Scope::Global) && !oa.may_manage(None) && oa.may_see(None));
        assert!(oa.may_see(Some("org_a")) && oa.may_manage(Some("org_a")));
        assert!(!oa.may_see(Some("org_b")) && !oa.may_manage(Some("org_b")) && !oa.may_read_org("org_b"));
        assert_eq!(oa.default_owner(), Ok(Some("org_a".into())));
        assert!(viewer.may_see(Some("org_a")) && !viewer.may_manage(Some("org_a")));
        assert!(viewer.default_owner().is_err());
        assert_eq!(AdminPermit::super_admin().default_owner(), Ok(None));
        let wa = AdminPermit::with_roles(vec![role(Role::WorkspaceAdmin, "ws_1", "org_a")]).unwrap();
        assert!(wa.may_write(&ws("org_a", "ws_1")) && !wa.may_write(&ws("org_a", "ws_2")));
        assert!(!wa.may_write(&Scope::Org("org_a".into())) && !wa.may_write(&Scope::Global));
        assert!(AdminPermit::with_roles(vec![]).is_none());
        assert!(AdminPermit::super_admin().may_create_org());
    }

    #[test]
    fn approvers_read_and_decide_only() {
        let ap = AdminPermit::with_roles(vec![role(Role::Approver, "org_a", "org_a")]).unwrap();
        assert!(ap.may_read_org("org_a") && ap.may_decide("org_a") && !ap.may_decide("org_b"));
        assert!(!ap.may_write_anything() && !ap.may_write(&Scope::Org("org_a".into())));
        assert!(!ap.may_manage(Some("org_a")) && ap.default_owner().is_err());
        assert_eq!(ap.deciding_orgs(), Some(vec!["org_a".to_string()]));
        let viewer = AdminPermit::with_roles(vec![role(Role::Viewer, "org_a", "org_a")]).unwrap();
        assert!(!viewer.may_decide("org_a") && viewer.deciding_orgs() == Some(vec![]));
        let oa = AdminPermit::with_roles(vec![role(Role::OrgAdmin, "org_a", "org_a")]).unwrap();
        assert!(oa.may_decide("org_a") && !oa.may_decide("org_b"));
        let wa = AdminPermit::with_roles(vec![role(Role::WorkspaceAdmin, "ws_1", "org_a")]).unwrap();
        assert!(!wa.may_decide("org_a"));
        assert!(AdminPermit::super_admin().may_decide("org_x") && AdminPermit::super_admin().deciding_orgs().is_none());
    }
}
