//! Builders shared by the engine's tests.
use serde_json::Value;

use crate::rules::{parse_policy, CallTarget, PolicySet, PolicySpec};
use crate::store::records::Identity;

pub const KEY: [u8; 32] = [7; 32];

pub fn spec(v: Value) -> PolicySpec {
    parse_policy(&v).unwrap_or_else(|e| panic!("policy must parse: {e}"))
}

/// A set of `(id, org, document)`.
pub fn set(policies: &[(&str, &str, Value)]) -> PolicySet {
    PolicySet::compile(
        policies
            .iter()
            .map(|(id, org, v)| (id.to_string(), org.to_string(), spec(v.clone())))
            .collect::<Vec<_>>(),
        KEY,
    )
}

/// A user of org `org_a` in workspace `ws_1` and teams `team_x`, `team_y`.
pub fn user() -> Identity {
    Identity {
        principal_id: "usr_1".into(),
        kind: "user".into(),
        org_id: "org_a".into(),
        workspace_ids: vec!["ws_1".into()],
        team_ids: vec!["team_x".into(), "team_y".into()],
    }
}

pub fn target<'a>(server: &'a str, tool: &'a str) -> CallTarget<'a> {
    CallTarget {
        server,
        tool: Some(tool),
        virtual_server: None,
        annotations: None,
    }
}
