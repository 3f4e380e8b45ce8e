//! The configuration document of one organization (docs/config-as-code.md): its types, how a
//! request body becomes one (every error named by its path, `servers[2].url: …`), the rules
//! it must keep on its own (what needs no storage), and its sorted, deterministic form.
use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::gateway::names::MAX_TOOL_NAME;
use crate::observe::CaptureMode;
use crate::store::records::{Effect, ResourceKind, SubjectKind};
use crate::store::{EntityKind, VirtualTool};

use super::servers::{MAX_NAME_LEN, MAX_SLUG_LEN, MAX_TEXT_LEN};
use super::virtuals::MAX_VIRTUAL_TOOLS;

/// The document format's version; a document of another version is refused.
pub const CONFIG_VERSION: u64 = 1;
/// Longest directory id a document may give (ids the gateway makes are far shorter).
pub const MAX_ID_LEN: usize = 64;
/// Longest grant resource or tool pattern (as `/admin/v1/grants` allows).
pub const MAX_PATTERN_LEN: usize = 200;
/// Most entries of any one list of a document.
pub const MAX_LIST_LEN: usize = 5000;

/// One organization's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigDoc {
    pub version: u64,
    pub org: String,
    pub servers: Vec<ServerDoc>,
    pub virtual_servers: Vec<VirtualDoc>,
    pub workspaces: Vec<EntryDoc>,
    pub teams: Vec<TeamDoc>,
    pub users: Vec<UserDoc>,
    pub agents: Vec<EntryDoc>,
    pub memberships: Vec<MemberDoc>,
    pub grants: Vec<GrantDoc>,
    pub policies: Vec<PolicyDoc>,
}

/// A server as the admin API creates and patches it, without credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerDoc {
    pub slug: String,
    pub name: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default = "active")]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_timeout_ms: Option<u32>,
    #[serde(default = "approve")]
    pub new_tool_policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<CaptureMode>,
}

fn active() -> String {
    "active".into()
}
fn approve() -> String {
    "approve".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualDoc {
    pub slug: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub tools: Vec<VirtualTool>,
}

/// A workspace or an agent (both hang under the organization).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryDoc {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamDoc {
    pub id: String,
    pub workspace: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserDoc {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `{issuer}|{sub}` of a user provisioned from an identity provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_subject: Option<String>,
}

/// A user or agent in a workspace or team.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberDoc {
    pub group: String,
    pub principal: String,
}

/// A grant, known by what it says (grant ids are the gateway's own and not part of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantDoc {
    pub subject_kind: SubjectKind,
    pub subject_id: String,
    #[serde(default = "server_kind")]
    pub resource_kind: ResourceKind,
    pub resource: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    pub effect: Effect,
}

fn server_kind() -> ResourceKind {
    ResourceKind::Server
}

/// A policy, known by its name (unique in the organization), as `/admin/v1/policies` takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDoc {
    pub name: String,
    #[serde(default = "enforce")]
    pub mode: String,
    #[serde(default = "empty_scope")]
    pub scope: Value,
    pub rules: Value,
}

fn enforce() -> String {
    "enforce".into()
}
fn empty_scope() -> Value {
    Value::Object(Map::new())
}

impl GrantDoc {
    /// What identifies a grant in a document (and in a change): everything it says.
    pub fn key(&self) -> String {
        format!(
            "{}:{} {} {}:{}{}",
            enum_text(&self.subject_kind),
            self.subject_id,
            enum_text(&self.effect),
            enum_text(&self.resource_kind),
            self.resource,
            self.tool.as_deref().map(|t| format!("/{t}")).unwrap_or_default()
        )
    }
}

/// The lowercase name serde gives an enum value.
pub fn enum_text<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

impl ConfigDoc {
    /// Every list in its one order, so equal configurations serialize byte for byte alike.
    pub fn sort(&mut self) {
        self.servers.sort_by(|a, b| a.slug.cmp(&b.slug));
        self.virtual_servers.sort_by(|a, b| a.slug.cmp(&b.slug));
        self.workspaces.sort_by(|a, b| a.id.cmp(&b.id));
        self.teams.sort_by(|a, b| a.id.cmp(&b.id));
        self.users.sort_by(|a, b| a.id.cmp(&b.id));
        self.agents.sort_by(|a, b| a.id.cmp(&b.id));
        self.memberships.sort();
        self.grants.sort_by_key(GrantDoc::key);
        self.policies.sort_by(|a, b| a.name.cmp(&b.name));
    }
}

/// Reads a document from JSON, collecting every error with its path; validates what needs no
/// storage (`validate`). `Err` holds every problem found.
pub fn parse(v: &Value) -> Result<ConfigDoc, Vec<String>> {
    let mut errors = Vec::new();
    let Some(m) = v.as_object() else {
        return Err(vec!["the document must be a JSON object".into()]);
    };
    const KEYS: [&str; 11] = [
        "version",
        "org",
        "servers",
        "virtual_servers",
        "workspaces",
        "teams",
        "users",
        "agents",
        "memberships",
        "grants",
        "policies",
    ];
    for k in m.keys().filter(|k| !KEYS.contains(&k.as_str())) {
        errors.push(format!("{k}: unknown field"));
    }
    let version = match m.get("version") {
        Some(v) if v.as_u64() == Some(CONFIG_VERSION) => CONFIG_VERSION,
        _ => {
            errors.push(format!("version: must be {CONFIG_VERSION}"));
            0
        }
    };
    let org = match m.get("org").and_then(Value::as_str) {
        Some(o) => o.to_string(),
        None => {
            errors.push("org: must be the organization's id".into());
            String::new()
        }
    };
    let mut doc = ConfigDoc {
        version,
        org,
        servers: list(m, "servers", &mut errors),
        virtual_servers: list(m, "virtual_servers", &mut errors),
        workspaces: list(m, "workspaces", &mut errors),
        teams: list(m, "teams", &mut errors),
        users: list(m, "users", &mut errors),
        agents: list(m, "agents", &mut errors),
        memberships: list(m, "memberships", &mut errors),
        grants: list(m, "grants", &mut errors),
        policies: list(m, "policies", &mut errors),
    };
    // The rules run on whatever items were read, so one answer names every error.
    validate(&doc, &mut errors);
    if errors.is_empty() {
        normalize(&mut doc);
        doc.sort();
        Ok(doc)
    } else {
        Err(errors)
    }
}

/// One list of the document (absent: empty), each item read on its own so every bad one is
/// named; bad items are left out (the document is refused anyway).
fn list<T: DeserializeOwned>(m: &Map<String, Value>, key: &str, errors: &mut Vec<String>) -> Vec<T> {
    let Some(v) = m.get(key) else { return Vec::new() };
    let Some(items) = v.as_array() else {
        errors.push(format!("{key}: must be an array"));
        return Vec::new();
    };
    if items.len() > MAX_LIST_LEN {
        errors.push(format!("{key}: at most {MAX_LIST_LEN} entries"));
        return Vec::new();
    }
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| match serde_json::from_value(item.clone()) {
            Ok(t) => Some(t),
            Err(e) => {
                errors.push(format!("{key}[{i}]: {e}"));
                None
            }
        })
        .collect()
}

/// Whether `s` is a valid slug (`[a-z0-9-]{1,32}`, as servers and virtual servers take).
fn slug_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SLUG_LEN
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn name_ok(n: &str) -> bool {
    !n.trim().is_empty() && n.len() <= MAX_NAME_LEN
}

fn id_ok(id: &str, kind: EntityKind) -> bool {
    id.starts_with(kind.id_prefix())
        && id.len() > kind.id_prefix().len()
        && id.len() <= MAX_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The rules a document keeps on its own: each field's rule, unique keys, and links that stay
/// inside the document (a team's workspace, members, grant subjects).
fn validate(d: &ConfigDoc, errors: &mut Vec<String>) {
    let mut err = |path: String, msg: &str| errors.push(format!("{path}: {msg}"));
    let name_msg = format!("must be 1 to {MAX_NAME_LEN} characters");
    let text_msg = format!("exceeds {MAX_TEXT_LEN} characters");
    let long = |t: &Option<String>| t.as_ref().is_some_and(|t| t.len() > MAX_TEXT_LEN);

    let mut slugs = BTreeSet::new();
    for (i, s) in d.servers.iter().enumerate() {
        let p = format!("servers[{i}]");
        if !slug_ok(&s.slug) {
            err(
                format!("{p}.slug"),
                &format!("must match [a-z0-9-]{{1,{MAX_SLUG_LEN}}}"),
            );
        } else if !slugs.insert(s.slug.as_str()) {
            err(format!("{p}.slug"), &format!("'{}' appears twice", s.slug));
        }
        if !name_ok(&s.name) {
            err(format!("{p}.name"), &name_msg);
        }
        for (f, v) in [("description", &s.description), ("owner", &s.owner)] {
            if long(v) {
                err(format!("{p}.{f}"), &text_msg);
            }
        }
        if s.status != "active" && s.status != "disabled" {
            err(format!("{p}.status"), "must be \"active\" or \"disabled\"");
        }
        if s.new_tool_policy != "approve" && s.new_tool_policy != "quarantine" {
            err(format!("{p}.new_tool_policy"), "must be \"approve\" or \"quarantine\"");
        }
        if s.total_timeout_ms == Some(0) {
            err(format!("{p}.total_timeout_ms"), "must be positive");
        }
    }

    let mut vslugs = BTreeSet::new();
    for (i, v) in d.virtual_servers.iter().enumerate() {
        let p = format!("virtual_servers[{i}]");
        if !slug_ok(&v.slug) {
            err(
                format!("{p}.slug"),
                &format!("must match [a-z0-9-]{{1,{MAX_SLUG_LEN}}}"),
            );
        } else if !vslugs.insert(v.slug.as_str()) {
            err(format!("{p}.slug"), &format!("'{}' appears twice", v.slug));
        }
        if !name_ok(&v.name) {
            err(format!("{p}.name"), &name_msg);
        }
        if long(&v.description) {
            err(format!("{p}.description"), &text_msg);
        }
        if v.tools.len() > MAX_VIRTUAL_TOOLS {
            err(format!("{p}.tools"), &format!("at most {MAX_VIRTUAL_TOOLS} tools"));
        }
        let mut names = BTreeSet::new();
        for (j, t) in v.tools.iter().enumerate() {
            let exposed = t.name.clone().unwrap_or_else(|| t.tool.clone());
            if !super::virtuals::valid_exposed_name(&exposed) {
                err(
                    format!("{p}.tools[{j}]"),
                    &format!("tool name '{exposed}' must be 1 to {MAX_TOOL_NAME} characters of [A-Za-z0-9_.-]"),
                );
            } else if !names.insert(exposed.clone()) {
                err(
                    format!("{p}.tools[{j}]"),
                    &format!("tool name '{exposed}' appears twice"),
                );
            }
            if long(&t.description) {
                err(format!("{p}.tools[{j}].description"), &text_msg);
            }
        }
    }

    // Directory entries: ids of the right kind, each once across the document.
    let mut ids: BTreeMap<&str, EntityKind> = BTreeMap::new();
    let entries = d
        .workspaces
        .iter()
        .enumerate()
        .map(|(i, e)| ("workspaces", i, e.id.as_str(), e.name.as_str(), EntityKind::Workspace))
        .chain(
            d.teams
                .iter()
                .enumerate()
                .map(|(i, e)| ("teams", i, e.id.as_str(), e.name.as_str(), EntityKind::Team)),
        )
        .chain(
            d.users
                .iter()
                .enumerate()
                .map(|(i, e)| ("users", i, e.id.as_str(), e.name.as_str(), EntityKind::User)),
        )
        .chain(
            d.agents
                .iter()
                .enumerate()
                .map(|(i, e)| ("agents", i, e.id.as_str(), e.name.as_str(), EntityKind::Agent)),
        );
    for (list, i, id, name, kind) in entries {
        if !id_ok(id, kind) {
            err(
                format!("{list}[{i}].id"),
                &format!(
                    "must be '{}' and up to {MAX_ID_LEN} characters of [A-Za-z0-9_-]",
                    kind.id_prefix()
                ),
            );
        } else if ids.insert(id, kind).is_some() {
            err(format!("{list}[{i}].id"), &format!("'{id}' appears twice"));
        }
        if !name_ok(name) {
            err(format!("{list}[{i}].name"), &name_msg);
        }
    }
    for (i, t) in d.teams.iter().enumerate() {
        if ids.get(t.workspace.as_str()) != Some(&EntityKind::Workspace) {
            err(format!("teams[{i}].workspace"), "must name a workspace of the document");
        }
    }
    for (i, u) in d.users.iter().enumerate() {
        if u.email.as_ref().is_some_and(|e| e.len() > MAX_NAME_LEN) {
            err(format!("users[{i}].email"), &name_msg);
        }
        if long(&u.external_subject) {
            err(format!("users[{i}].external_subject"), &text_msg);
        }
    }
    let mut pairs = BTreeSet::new();
    for (i, m) in d.memberships.iter().enumerate() {
        if !matches!(
            ids.get(m.group.as_str()),
            Some(EntityKind::Workspace | EntityKind::Team)
        ) {
            err(
                format!("memberships[{i}].group"),
                "must name a workspace or team of the document",
            );
        }
        if !matches!(
            ids.get(m.principal.as_str()),
            Some(EntityKind::User | EntityKind::Agent)
        ) {
            err(
                format!("memberships[{i}].principal"),
                "must name a user or agent of the document",
            );
        }
        if !pairs.insert(m) {
            err(format!("memberships[{i}]"), "appears twice");
        }
    }
    let mut grants = BTreeSet::new();
    for (i, g) in d.grants.iter().enumerate() {
        let p = format!("grants[{i}]");
        let kind = EntityKind::parse(&enum_text(&g.subject_kind));
        let known = if kind == Some(EntityKind::Org) {
            g.subject_id == d.org
        } else {
            kind.is_some() && ids.get(g.subject_id.as_str()).copied() == kind
        };
        if !known {
            err(
                format!("{p}.subject_id"),
                &format!(
                    "must name the organization or a {} of the document",
                    enum_text(&g.subject_kind)
                ),
            );
        }
        if g.resource.is_empty() || g.resource.len() > MAX_PATTERN_LEN {
            err(
                format!("{p}.resource"),
                &format!("must be 1 to {MAX_PATTERN_LEN} characters"),
            );
        }
        if g.tool
            .as_ref()
            .is_some_and(|t| t.is_empty() || t.len() > MAX_PATTERN_LEN)
        {
            err(
                format!("{p}.tool"),
                &format!("must be 1 to {MAX_PATTERN_LEN} characters"),
            );
        }
        if g.resource_kind == ResourceKind::Virtual && g.tool.is_some() {
            err(format!("{p}.tool"), "a grant on a virtual server has no tool");
        }
        if !grants.insert(g.key()) {
            err(p, "appears twice");
        }
    }
    let mut names = BTreeSet::new();
    if d.policies.len() > super::policies::MAX_POLICIES_PER_ORG {
        err(
            "policies".into(),
            &format!("at most {} policies", super::policies::MAX_POLICIES_PER_ORG),
        );
    }
    for (i, p) in d.policies.iter().enumerate() {
        if let Err(e) = crate::rules::parse_policy(&p.as_value()) {
            let path = if e.path.is_empty() {
                format!("policies[{i}]")
            } else {
                format!("policies[{i}].{}", e.path)
            };
            err(path, &e.message);
        }
        if !names.insert(p.name.as_str()) {
            err(format!("policies[{i}].name"), &format!("'{}' appears twice", p.name));
        }
    }
}

/// Values as the gateway stores them, so a document compares equal to what applying it stores:
/// total deadlines clamped, policies in the normal form their parser gives (as
/// `/admin/v1/policies` stores them). Only for a document `validate` accepted.
fn normalize(d: &mut ConfigDoc) {
    for s in &mut d.servers {
        s.total_timeout_ms = s.total_timeout_ms.map(crate::config::clamp_total);
    }
    for p in &mut d.policies {
        if let Ok(spec) = crate::rules::parse_policy(&p.as_value()) {
            let v = serde_json::to_value(&spec).unwrap_or_default();
            p.mode = spec.mode.as_str().to_string();
            p.scope = v.get("scope").cloned().unwrap_or_else(empty_scope);
            p.rules = v.get("rules").cloned().unwrap_or_else(|| Value::Array(Vec::new()));
        }
    }
}

impl PolicyDoc {
    /// The policy as `/admin/v1/policies` takes it.
    pub fn as_value(&self) -> Value {
        serde_json::json!({"name": self.name, "mode": self.mode, "scope": self.scope, "rules": self.rules})
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
