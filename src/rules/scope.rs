//! Whether a policy applies to a caller and a call: its organization, then its scope.
use super::model::{Scope, Subject};
use super::CallTarget;
use crate::store::records::{Identity, SubjectKind};

/// A policy of organization `org_id` applies to callers of that organization only; a
/// platform-wide policy (`org_id` empty) applies to every caller. No other policy ever
/// reaches across organizations.
pub(crate) fn org_applies(org_id: &str, who: &Identity) -> bool {
    org_id.is_empty() || org_id == who.org_id
}

/// Every field the scope gives matches (absent fields match everything). A scope naming a tool
/// never matches a request that names none (`resources/read`, `prompts/get`); one naming a
/// virtual server matches only calls made through it.
pub(crate) fn scope_matches(s: &Scope, who: &Identity, t: &CallTarget<'_>) -> bool {
    s.subject.as_ref().is_none_or(|subj| subject_is(subj, who))
        && s.server.as_ref().is_none_or(|g| g.matches(t.server))
        && s.tool
            .as_ref()
            .is_none_or(|g| t.tool.is_some_and(|tool| g.matches(tool)))
        && s.virtual_server
            .as_ref()
            .is_none_or(|v| t.virtual_server == Some(v.as_str()))
}

/// The subject covers the caller (as grants do): its org, one of its workspaces or teams, or
/// the caller itself with the right kind.
fn subject_is(s: &Subject, who: &Identity) -> bool {
    match s.kind {
        SubjectKind::Org => s.id == who.org_id,
        SubjectKind::Workspace => who.workspace_ids.contains(&s.id),
        SubjectKind::Team => who.team_ids.contains(&s.id),
        SubjectKind::User => who.kind == "user" && s.id == who.principal_id,
        SubjectKind::Agent => who.kind == "agent" && s.id == who.principal_id,
    }
}
