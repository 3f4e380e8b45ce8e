//! The difference between an organization's configuration as stored and a desired document:
//! the list of changes applying it makes (`{op, kind, id, before?, after?}`), in the order
//! they are applied — creates and updates parents first, then deletes children first — and the
//! changes a document may not ask for (moving a team, re-keying a user).
use serde::Serialize;
use serde_json::Value;

use super::config_doc::{ConfigDoc, GrantDoc, MemberDoc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Create,
    Update,
    Delete,
}

/// What a kind of thing is called in a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Workspace,
    Team,
    User,
    Agent,
    Server,
    VirtualServer,
    Membership,
    Grant,
    Policy,
}

/// One change: what it does to which thing, with the thing as the document shows it before
/// (updates, deletes) and after (creates, updates).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub op: Op,
    pub kind: Kind,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

fn value<T: Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or_default()
}

/// Creates and updates (`upserts`) and deletes of one list, matched by key.
fn keyed<T: Serialize + PartialEq>(
    kind: Kind,
    current: &[T],
    desired: &[T],
    key: impl Fn(&T) -> String,
) -> (Vec<Change>, Vec<Change>) {
    let mut upserts = Vec::new();
    let mut deletes = Vec::new();
    for d in desired {
        let k = key(d);
        match current.iter().find(|c| key(c) == k) {
            None => upserts.push(Change {
                op: Op::Create,
                kind,
                id: k,
                before: None,
                after: Some(value(d)),
            }),
            Some(c) if c != d => upserts.push(Change {
                op: Op::Update,
                kind,
                id: k,
                before: Some(value(c)),
                after: Some(value(d)),
            }),
            Some(_) => {}
        }
    }
    for c in current {
        let k = key(c);
        if !desired.iter().any(|d| key(d) == k) {
            deletes.push(Change {
                op: Op::Delete,
                kind,
                id: k,
                before: Some(value(c)),
                after: None,
            });
        }
    }
    (upserts, deletes)
}

fn member_key(m: &MemberDoc) -> String {
    format!("{}/{}", m.group, m.principal)
}

/// The changes that turn `current` into `desired` (both sorted documents of one organization),
/// in the order they apply: parents are created before what hangs under them and deleted after.
/// Empty when nothing would change.
pub fn diff(current: &ConfigDoc, desired: &ConfigDoc) -> Vec<Change> {
    let parts = [
        keyed(Kind::Workspace, &current.workspaces, &desired.workspaces, |e| {
            e.id.clone()
        }),
        keyed(Kind::Team, &current.teams, &desired.teams, |e| e.id.clone()),
        keyed(Kind::User, &current.users, &desired.users, |e| e.id.clone()),
        keyed(Kind::Agent, &current.agents, &desired.agents, |e| e.id.clone()),
        keyed(Kind::Server, &current.servers, &desired.servers, |s| s.slug.clone()),
        keyed(
            Kind::VirtualServer,
            &current.virtual_servers,
            &desired.virtual_servers,
            |v| v.slug.clone(),
        ),
        keyed(Kind::Membership, &current.memberships, &desired.memberships, member_key),
        keyed(Kind::Grant, &current.grants, &desired.grants, GrantDoc::key),
        keyed(Kind::Policy, &current.policies, &desired.policies, |p| p.name.clone()),
    ];
    let mut upserts = Vec::new();
    let mut deletes = Vec::new();
    for (u, d) in parts {
        upserts.extend(u);
        deletes.push(d);
    }
    // Deletes in the reverse order of kinds: grants and memberships before the entries they
    // name, teams before their workspaces.
    for d in deletes.into_iter().rev() {
        upserts.extend(d);
    }
    upserts
}

/// Updates a document may not make, each named by its path in `desired`: a team moved to
/// another workspace, a user's external subject changed (both fixed at creation; delete the
/// entry and create a new one instead).
pub fn fixed_fields(current: &ConfigDoc, desired: &ConfigDoc) -> Vec<String> {
    let mut errors = Vec::new();
    for (i, t) in desired.teams.iter().enumerate() {
        if let Some(c) = current.teams.iter().find(|c| c.id == t.id) {
            if c.workspace != t.workspace {
                errors.push(format!(
                    "teams[{i}].workspace: team '{}' is in '{}'; a team cannot move",
                    t.id, c.workspace
                ));
            }
        }
    }
    for (i, u) in desired.users.iter().enumerate() {
        if let Some(c) = current.users.iter().find(|c| c.id == u.id) {
            if c.external_subject != u.external_subject {
                errors.push(format!(
                    "users[{i}].external_subject: fixed when the user was provisioned"
                ));
            }
        }
    }
    errors
}
