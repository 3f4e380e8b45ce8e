//! Authorization by grants: a subject (org, workspace, team, user, agent) × a resource (a
//! server, a virtual server, or tools of a server, by exact name or glob) × allow or deny.
//! The rule: a matching deny wins; otherwise a matching allow grants; otherwise denied.
//! Pure functions over loaded state; decisions are values the dispatcher carries.
use serde::{Deserialize, Serialize};
use wildmatch::WildMatch;

pub use crate::store::records::{Effect, Grant, Identity, ResourceKind, SubjectKind};

impl Identity {
    /// Every subject id the caller answers to (ids are unique across kinds: `org_…`, `ws_…`, …).
    pub fn subject_ids(&self) -> Vec<String> {
        let mut v = vec![self.principal_id.clone(), self.org_id.clone()];
        v.extend(self.workspace_ids.iter().cloned());
        v.extend(self.team_ids.iter().cloned());
        v
    }

    fn is(&self, g: &Grant) -> bool {
        match g.subject_kind {
            SubjectKind::Org => g.subject_id == self.org_id,
            SubjectKind::Workspace => self.workspace_ids.contains(&g.subject_id),
            SubjectKind::Team => self.team_ids.contains(&g.subject_id),
            SubjectKind::User => self.kind == "user" && g.subject_id == self.principal_id,
            SubjectKind::Agent => self.kind == "agent" && g.subject_id == self.principal_id,
        }
    }
}

/// The grants that apply to one caller, ready to answer questions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Access {
    grants: Vec<Grant>,
}

fn glob(pattern: &str, value: &str) -> bool {
    WildMatch::new(pattern).matches(value)
}

impl Access {
    /// Keeps the grants whose subject is this identity.
    pub fn new(identity: &Identity, grants: impl IntoIterator<Item = Grant>) -> Self {
        Self {
            grants: grants.into_iter().filter(|g| identity.is(g)).collect(),
        }
    }

    fn matching<'a>(&'a self, kind: ResourceKind, slug: &'a str) -> impl Iterator<Item = &'a Grant> + 'a {
        self.grants
            .iter()
            .filter(move |g| g.resource_kind == kind && glob(&g.resource, slug))
    }

    /// May the caller use server `slug` at all? Some allow must reach it (for any tool), and no
    /// server-wide deny may.
    pub fn server_allowed(&self, slug: &str) -> bool {
        let mut allowed = false;
        for g in self.matching(ResourceKind::Server, slug) {
            match (g.effect, &g.tool) {
                (Effect::Deny, None) => return false,
                (Effect::Allow, _) => allowed = true,
                (Effect::Deny, Some(_)) => {}
            }
        }
        allowed
    }

    /// May the caller use `tool` of server `slug`? Deny wins; no allow means no.
    pub fn tool_allowed(&self, slug: &str, tool: &str) -> bool {
        let mut allowed = false;
        for g in self.matching(ResourceKind::Server, slug) {
            let reaches = g.tool.as_deref().is_none_or(|t| glob(t, tool));
            match (g.effect, reaches) {
                (Effect::Deny, true) => return false,
                (Effect::Allow, true) => allowed = true,
                _ => {}
            }
        }
        allowed
    }

    /// May the caller use virtual server `slug`? (Its tools then need no grant of their own,
    /// but a deny on the underlying server or tool still wins: see `virtual_tool_allowed`.)
    pub fn virtual_allowed(&self, slug: &str) -> bool {
        let mut allowed = false;
        for g in self.matching(ResourceKind::Virtual, slug) {
            match g.effect {
                Effect::Deny => return false,
                Effect::Allow => allowed = true,
            }
        }
        allowed
    }

    /// A tool of a virtual server the caller may use: visible unless explicitly denied.
    pub fn virtual_tool_allowed(&self, slug: &str, tool: &str) -> bool {
        !self
            .matching(ResourceKind::Server, slug)
            .any(|g| g.effect == Effect::Deny && g.tool.as_deref().is_none_or(|t| glob(t, tool)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(kind: SubjectKind, subject: &str, resource: &str, tool: Option<&str>, effect: Effect) -> Grant {
        Grant {
            id: format!("g-{subject}-{resource}-{tool:?}"),
            subject_kind: kind,
            subject_id: subject.into(),
            resource_kind: ResourceKind::Server,
            resource: resource.into(),
            tool: tool.map(str::to_string),
            effect,
            created_at: "t".into(),
        }
    }

    fn alice() -> Identity {
        Identity {
            principal_id: "usr_alice".into(),
            kind: "user".into(),
            org_id: "org_a".into(),
            workspace_ids: vec!["ws_a".into()],
            team_ids: vec!["team_a".into()],
        }
    }

    /// The rule as a matrix: each subject level × allow/deny × server/tool scope, alone and
    /// against an allow at another level.
    #[test]
    fn matrix_each_level_allow_deny_server_tool() {
        let levels = [
            (SubjectKind::Org, "org_a"),
            (SubjectKind::Workspace, "ws_a"),
            (SubjectKind::Team, "team_a"),
            (SubjectKind::User, "usr_alice"),
        ];
        for (kind, id) in levels {
            // Allow at this level, server-wide: the server and its tools are usable.
            let a = Access::new(&alice(), [grant(kind, id, "github", None, Effect::Allow)]);
            assert!(
                a.server_allowed("github") && a.tool_allowed("github", "create_issue"),
                "{kind:?} allow server"
            );
            assert!(
                !a.server_allowed("jira") && !a.tool_allowed("jira", "x"),
                "{kind:?} allow is scoped"
            );
            // Allow one tool: the server is visible, only that tool usable.
            let a = Access::new(&alice(), [grant(kind, id, "github", Some("create_*"), Effect::Allow)]);
            assert!(a.server_allowed("github"));
            assert!(
                a.tool_allowed("github", "create_issue") && !a.tool_allowed("github", "delete_repo"),
                "{kind:?} allow tool"
            );
            // Deny at this level beats an org-wide allow, server-wide and per tool.
            let org_allow = grant(SubjectKind::Org, "org_a", "*", None, Effect::Allow);
            let a = Access::new(
                &alice(),
                [org_allow.clone(), grant(kind, id, "github", None, Effect::Deny)],
            );
            assert!(
                !a.server_allowed("github") && !a.tool_allowed("github", "create_issue"),
                "{kind:?} deny server"
            );
            assert!(a.server_allowed("jira"), "{kind:?} deny is scoped");
            let a = Access::new(
                &alice(),
                [org_allow, grant(kind, id, "github", Some("delete_repo"), Effect::Deny)],
            );
            assert!(
                a.server_allowed("github") && a.tool_allowed("github", "create_issue"),
                "{kind:?} tool deny keeps server"
            );
            assert!(!a.tool_allowed("github", "delete_repo"), "{kind:?} deny tool");
        }
    }

    #[test]
    fn default_deny_and_other_subjects_do_not_apply() {
        assert!(!Access::new(&alice(), []).server_allowed("github"));
        let others = [
            grant(SubjectKind::Org, "org_b", "*", None, Effect::Allow),
            grant(SubjectKind::Team, "team_b", "*", None, Effect::Allow),
            grant(SubjectKind::Agent, "usr_alice", "*", None, Effect::Allow), // kind must match too
        ];
        assert!(!Access::new(&alice(), others).server_allowed("github"));
    }

    #[test]
    fn virtual_servers() {
        let mut v = grant(SubjectKind::Team, "team_a", "support", None, Effect::Allow);
        v.resource_kind = ResourceKind::Virtual;
        let deny_tool = grant(
            SubjectKind::User,
            "usr_alice",
            "github",
            Some("delete_repo"),
            Effect::Deny,
        );
        let a = Access::new(&alice(), [v, deny_tool]);
        assert!(a.virtual_allowed("support") && !a.virtual_allowed("ops"));
        assert!(a.virtual_tool_allowed("github", "create_issue"));
        assert!(!a.virtual_tool_allowed("github", "delete_repo"));
        assert!(
            !a.server_allowed("github"),
            "a virtual grant does not open the whole server"
        );
    }
}
