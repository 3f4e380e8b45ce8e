//! The policy document: the issue's examples parse and serialize back to themselves; every
//! kind of mistake is refused with the path of the offending value.
use serde_json::{json, Value};

use crate::rules::parse_policy;

fn examples() -> Vec<Value> {
    vec![
        json!({ "name": "no-pii", "scope": { "server": "crm" }, "mode": "enforce", "rules": [
            { "kind": "guardrail", "on": ["arguments", "results"], "detect": ["email", "credit_card"], "action": "redact" } ] }),
        json!({ "name": "no-open-world", "scope": {}, "mode": "enforce", "rules": [
            { "kind": "block", "when": { "annotation": { "openWorldHint": true } }, "action": "deny" } ] }),
        json!({ "name": "careful-deletes", "scope": { "subject": { "kind": "team", "id": "team_x" } }, "mode": "enforce", "rules": [
            { "kind": "block", "when": { "any": [ { "tool": "delete_*" }, { "arg": "/path", "matches": "^/etc/" } ] }, "action": "require_approval" } ] }),
        json!({ "name": "slow-down", "scope": { "server": "github", "tool": "create_*" }, "mode": "enforce", "rules": [
            { "kind": "rate_limit", "per": "principal", "limit": 10, "window_s": 60 } ] }),
    ]
}

#[test]
fn the_issue_examples_round_trip_exactly() {
    for ex in examples() {
        let spec = parse_policy(&ex).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(serde_json::to_value(&spec).unwrap(), ex);
    }
}
