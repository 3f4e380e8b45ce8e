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

/// The error a document gives, as displayed.
fn error(v: Value) -> String {
    parse_policy(&v).expect_err("must be refused").to_string()
}

fn with_rule(rule: Value) -> Value {
    json!({ "name": "p", "rules": [rule] })
}

#[test]
fn mode_defaults_to_enforce_and_scope_to_everything() {
    let spec = parse_policy(&with_rule(
        json!({"kind": "quota", "per": "org", "limit": 5, "period": "month"}),
    ))
    .unwrap();
    assert_eq!(spec.mode, crate::rules::Mode::Enforce);
    assert_eq!(spec.scope, crate::rules::Scope::default());
    let back = serde_json::to_value(&spec).unwrap();
    assert_eq!(back["mode"], "enforce");
    assert_eq!(back["scope"], json!({}));
    assert_eq!(parse_policy(&back).unwrap(), spec);
}

#[test]
fn every_condition_and_rule_kind_round_trips() {
    let doc = json!({ "name": "all-kinds", "scope": { "subject": { "kind": "agent", "id": "agt_1" }, "server": "gh-*", "tool": "create_?", "virtual_server": "ops" },
        "mode": "monitor", "rules": [
        { "kind": "guardrail", "on": ["results"], "detect": ["secret", "prompt_injection"], "patterns": ["(?i)project\\s+\\d+"], "deny_words": ["codename zeus", "c++"], "action": "hash" },
        { "kind": "guardrail", "on": ["arguments"], "patterns": ["\\bACME-\\d{4}\\b"], "action": "flag" },
        { "kind": "block", "when": { "all": [
            { "not": { "annotation": { "readOnlyHint": true, "idempotentHint": false } } },
            { "arg": "/amount", ">": 100, "<": 1.5e3 },
            { "arg": "/to", "in": ["a", 1, null] },
            { "arg": "/x~1y", "equals": { "k": [1] }, "exists": true } ] }, "action": "deny" },
        { "kind": "rate_limit", "per": "team", "limit": 1, "window_s": 86400 },
        { "kind": "quota", "per": "org", "limit": 1000, "period": "day" } ] });
    let spec = parse_policy(&doc).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(serde_json::to_value(&spec).unwrap(), doc);
    // Stored documents read back through the same checks.
    let again: crate::rules::PolicySpec = serde_json::from_value(doc).unwrap();
    assert_eq!(again, spec);
}

#[test]
fn mistakes_are_named_by_their_path() {
    let g = |extra: Value| {
        let mut r = json!({"kind": "guardrail", "on": ["arguments"], "detect": ["email"], "action": "redact"});
        r.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        with_rule(r)
    };
    let cases = [
        (
            g(json!({"detect": ["email", "foo"]})),
            r#"rules[0].detect[1]: unknown detector "foo""#,
        ),
        (
            g(json!({"detect": ["email", "email"]})),
            "rules[0].detect[1]: listed twice",
        ),
        (g(json!({"colour": 1})), r#"rules[0]: unknown field "colour""#),
        (
            g(json!({"on": []})),
            r#"rules[0].on: must name "arguments", "results" or both"#,
        ),
        (
            g(json!({"on": ["args"]})),
            r#"rules[0].on[0]: must be "arguments" or "results""#,
        ),
        (
            g(json!({"action": "erase"})),
            "rules[0].action: must be one of redact, hash, block, flag",
        ),
        (
            g(json!({"patterns": ["(unclosed"]})),
            "rules[0].patterns[0]: invalid regex: unclosed group",
        ),
        (
            g(json!({"patterns": ["x*"]})),
            "rules[0].patterns[0]: matches the empty string",
        ),
        (
            g(json!({"deny_words": [" "]})),
            "rules[0].deny_words[0]: must not be blank",
        ),
        (
            g(json!({"detect": []})),
            "rules[0]: a guardrail needs detect, patterns or deny_words",
        ),
        (json!({"name": "p", "rules": [], "x": 1}), r#"unknown field "x""#),
        (json!({"rules": []}), "name: is required"),
        (json!({"name": "", "rules": []}), "name: must not be empty"),
        (json!({"name": "p", "rules": []}), "rules: must hold at least one rule"),
        (
            json!({"name": "p", "mode": "audit", "rules": []}),
            r#"mode: must be "enforce" or "monitor""#,
        ),
        (
            json!({"name": "p", "scope": {"subject": {"kind": "group", "id": "g"}}, "rules": []}),
            "scope.subject.kind: must be one of workspace, team, user, agent, org",
        ),
        (
            json!({"name": "p", "scope": {"server": "CRM"}, "rules": []}),
            "scope.server: must be a server slug or glob ([a-z0-9-], * and ?)",
        ),
        (
            json!({"name": "p", "scope": {"virtual_server": "a*"}, "rules": []}),
            "scope.virtual_server: must be a virtual-server slug ([a-z0-9-])",
        ),
        (
            json!({"name": "p", "scope": {"tenant": "a"}, "rules": []}),
            r#"scope: unknown field "tenant""#,
        ),
        (
            with_rule(json!({"kind": "allow"})),
            r#"rules[0].kind: unknown kind "allow" (expected guardrail, block, rate_limit or quota)"#,
        ),
        (
            with_rule(json!({"kind": "rate_limit", "per": "principal", "limit": 0, "window_s": 60})),
            "rules[0].limit: must be an integer from 1 to 1000000000",
        ),
        (
            with_rule(json!({"kind": "rate_limit", "per": "principal", "limit": 2.5, "window_s": 60})),
            "rules[0].limit: must be an integer from 1 to 1000000000",
        ),
        (
            with_rule(json!({"kind": "rate_limit", "per": "principal", "limit": 1, "window_s": 86401})),
            "rules[0].window_s: must be an integer from 1 to 86400",
        ),
        (
            with_rule(json!({"kind": "rate_limit", "per": "user", "limit": 1, "window_s": 1})),
            "rules[0].per: must be one of principal, team, org",
        ),
        (
            with_rule(json!({"kind": "quota", "per": "org", "limit": 1, "period": "week"})),
            r#"rules[0].period: must be "day" or "month""#,
        ),
        (
            with_rule(json!({"kind": "block", "when": {"tool": "x"}, "action": "hold"})),
            r#"rules[0].action: must be "deny" or "require_approval""#,
        ),
        (
            with_rule(json!({"kind": "block", "when": {"tool": "x", "not": {"tool": "y"}}, "action": "deny"})),
            "rules[0].when: a condition has exactly one of all, any, not, tool, annotation or arg",
        ),
        (
            with_rule(json!({"kind": "block", "when": {"some": []}, "action": "deny"})),
            r#"rules[0].when: unknown condition "some" (expected all, any, not, tool, annotation or arg)"#,
        ),
        (
            with_rule(json!({"kind": "block", "when": {"any": []}, "action": "deny"})),
            "rules[0].when.any: must hold at least one condition",
        ),
        (
            with_rule(
                json!({"kind": "block", "when": {"any": [{"tool": "a"}, {"annotation": {"sideEffects": true}}]}, "action": "deny"}),
            ),
            r#"rules[0].when.any[1].annotation: unknown field "sideEffects""#,
        ),
        (
            with_rule(json!({"kind": "block", "when": {"annotation": {"readOnlyHint": "yes"}}, "action": "deny"})),
            "rules[0].when.annotation.readOnlyHint: must be true or false",
        ),
        (
            with_rule(json!({"kind": "block", "when": {"annotation": {}}, "action": "deny"})),
            "rules[0].when.annotation: must name at least one hint",
        ),
        (
            with_rule(json!({"kind": "block", "when": {"arg": "path", "exists": true}, "action": "deny"})),
            "rules[0].when.arg: must be a JSON pointer (\"/name\", \"/list/0\"; ~0 and ~1 escapes)",
        ),
        (
            with_rule(json!({"kind": "block", "when": {"arg": "/a~2", "exists": true}, "action": "deny"})),
            "rules[0].when.arg: must be a JSON pointer (\"/name\", \"/list/0\"; ~0 and ~1 escapes)",
        ),
        (
            with_rule(json!({"kind": "block", "when": {"arg": "/a"}, "action": "deny"})),
            "rules[0].when: an arg condition needs equals, in, matches, <, > or exists",
        ),
        (
            with_rule(json!({"kind": "block", "when": {"arg": "/a", "<": "5"}, "action": "deny"})),
            "rules[0].when.<: must be a number",
        ),
        (
            with_rule(json!({"kind": "block", "when": {"arg": "/a", "matches": "["}, "action": "deny"})),
            "rules[0].when.matches: invalid regex: unclosed character class",
        ),
        (
            with_rule(json!({"kind": "block", "when": {"arg": "/a", "exists": true, "like": 1}, "action": "deny"})),
            r#"rules[0].when: unknown field "like""#,
        ),
        (
            with_rule(json!({"kind": "block", "action": "deny"})),
            "rules[0].when: is required",
        ),
    ];
    for (doc, want) in cases {
        assert_eq!(error(doc.clone()), want, "for {doc}");
    }
}

#[test]
fn limits_are_enforced() {
    use crate::rules::{MAX_COND_DEPTH, MAX_COND_NODES, MAX_DENY_WORDS, MAX_PATTERNS, MAX_PATTERN_LEN, MAX_RULES};
    let rule = json!({"kind": "rate_limit", "per": "org", "limit": 1, "window_s": 1});
    let many = json!({"name": "p", "rules": vec![rule; MAX_RULES + 1]});
    assert_eq!(error(many), format!("rules: may hold at most {MAX_RULES} entries"));

    let mut deep = json!({"tool": "x"});
    for _ in 0..MAX_COND_DEPTH {
        deep = json!({"not": deep});
    }
    assert!(
        error(with_rule(json!({"kind": "block", "when": deep, "action": "deny"})))
            .contains("conditions nest deeper than 8")
    );
    let wide = json!({"any": vec![json!({"tool": "x"}); MAX_COND_NODES]});
    assert!(
        error(with_rule(json!({"kind": "block", "when": wide, "action": "deny"})))
            .ends_with("a rule may hold at most 64 conditions")
    );

    let g = |k: &str, v: Value| with_rule(json!({"kind": "guardrail", "on": ["results"], k: v, "action": "flag"}));
    assert!(error(g("patterns", json!(vec!["a"; MAX_PATTERNS + 1]))).ends_with("may hold at most 32 entries"));
    assert!(error(g("patterns", json!(["a".repeat(MAX_PATTERN_LEN + 1)]))).ends_with("longer than 1024 characters"));
    assert!(error(g("deny_words", json!(vec!["w"; MAX_DENY_WORDS + 1]))).ends_with("may hold at most 256 entries"));
    // A pattern that compiles to more than the size limit.
    assert!(error(g("patterns", json!(["(?:\\w{50}){50}"]))).contains("regex too large"));
    // `\p{..}` is refused in the Worker only (docs/policies.md, *Regex dialect*): native test
    // builds get regex-syntax's Unicode tables through proptest, so tests/policies.test.mjs checks it.
    assert!(error(json!({"name": "n".repeat(101), "rules": []})).starts_with("name: longer than 100"));
}
