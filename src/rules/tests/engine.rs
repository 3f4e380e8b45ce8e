//! Which policies apply (organization, scope), block conditions, annotation defaults, monitor
//! against enforce, precedence, and the counters rate limits and quotas ask for.
use serde_json::{json, Value};

use super::support::{set, target, user};
use crate::rules::{CallTarget, LimitCheck, Mode, Outcome, Per, Period, PolicySet, Verdict, Window};
use crate::store::records::Identity;

fn deny_when(when: Value) -> PolicySet {
    set(&[(
        "pol",
        "org_a",
        json!({"name": "b", "rules": [{"kind": "block", "when": when, "action": "deny"}]}),
    )])
}

fn check(s: &PolicySet, t: &CallTarget<'_>, mut args: Value) -> Verdict {
    let who = user();
    s.applicable(&who, t).check_call(&mut args)
}

fn denied(when: Value, t: &CallTarget<'_>, args: Value) -> bool {
    check(&deny_when(when), t, args).outcome != Outcome::Proceed
}

#[test]
fn tool_and_argument_conditions() {
    let t = target("fs", "delete_file");
    assert!(denied(json!({"tool": "delete_*"}), &t, json!({})));
    assert!(!denied(json!({"tool": "read_*"}), &t, json!({})));
    let args =
        json!({"path": "/etc/passwd", "n": 5, "mode": "w", "opts": {"force": true, "tags": ["a"]}, "nothing": null});
    let yes = [
        json!({"arg": "/path", "matches": "^/etc/"}),
        json!({"arg": "/n", ">": 4, "<": 5.5}),
        json!({"arg": "/n", "equals": 5.0}),
        json!({"arg": "/n", "matches": "^5$"}),
        json!({"arg": "/mode", "in": ["w", "a"]}),
        json!({"arg": "/opts/force", "equals": true}),
        json!({"arg": "/opts/tags/0", "equals": "a"}),
        json!({"arg": "/opts", "equals": {"tags": ["a"], "force": true}}),
        json!({"arg": "/nothing", "exists": true}),
        json!({"arg": "/missing", "exists": false}),
        json!({"all": [{"arg": "/path", "exists": true}, {"not": {"arg": "/mode", "equals": "r"}}]}),
        json!({"any": [{"tool": "nope"}, {"arg": "/n", "<": 10}]}),
        json!({"not": {"arg": "/missing", "equals": 1}}),
    ];
    for c in yes {
        assert!(denied(c.clone(), &t, args.clone()), "must hold: {c}");
    }
    let no = [
        json!({"arg": "/path", "matches": "^/home/"}),
        json!({"arg": "/n", ">": 5}),
        json!({"arg": "/n", "<": 5}),
        json!({"arg": "/path", "<": 5}),
        json!({"arg": "/mode", "in": ["r"]}),
        json!({"arg": "/opts", "matches": "force"}),
        json!({"arg": "/missing", "exists": true}),
        json!({"arg": "/missing", "equals": null}),
        json!({"arg": "/path", "exists": false}),
        json!({"arg": "/path", "exists": true, "equals": "/etc"}),
        json!({"all": [{"tool": "delete_*"}, {"arg": "/n", ">": 100}]}),
        json!({"any": [{"tool": "nope"}, {"arg": "/n", ">": 100}]}),
    ];
    for c in no {
        assert!(!denied(c.clone(), &t, args.clone()), "must not hold: {c}");
    }
    // Absent arguments are null: only the whole-document pointer exists.
    assert!(denied(json!({"arg": "", "exists": true}), &t, Value::Null));
    assert!(!denied(json!({"arg": "/x", "exists": true}), &t, Value::Null));
    // A request that names no tool matches no tool condition.
    let no_tool = CallTarget {
        server: "fs",
        ..Default::default()
    };
    assert!(!denied(json!({"tool": "*"}), &no_tool, json!({})));
    assert!(denied(json!({"not": {"tool": "*"}}), &no_tool, json!({})));
}

fn with_annotations<'a>(a: &'a Value) -> CallTarget<'a> {
    CallTarget {
        server: "s",
        tool: Some("t"),
        virtual_server: None,
        annotations: Some(a),
    }
}

#[test]
fn absent_hints_take_the_pessimistic_mcp_defaults() {
    let none = CallTarget {
        server: "s",
        tool: Some("t"),
        ..Default::default()
    };
    let empty = json!({});
    let garbage = json!({"readOnlyHint": "yes", "destructiveHint": 0, "openWorldHint": null});
    for t in [none, with_annotations(&empty), with_annotations(&garbage)] {
        assert!(denied(json!({"annotation": {"readOnlyHint": false}}), &t, json!({})));
        assert!(denied(json!({"annotation": {"destructiveHint": true}}), &t, json!({})));
        assert!(denied(json!({"annotation": {"idempotentHint": false}}), &t, json!({})));
        assert!(denied(json!({"annotation": {"openWorldHint": true}}), &t, json!({})));
        assert!(!denied(json!({"annotation": {"readOnlyHint": true}}), &t, json!({})));
        assert!(!denied(json!({"annotation": {"openWorldHint": false}}), &t, json!({})));
    }
    let closed = json!({"openWorldHint": false, "readOnlyHint": true});
    let t = with_annotations(&closed);
    assert!(!denied(json!({"annotation": {"openWorldHint": true}}), &t, json!({})));
    // Every hint listed must hold.
    assert!(denied(
        json!({"annotation": {"openWorldHint": false, "readOnlyHint": true}}),
        &t,
        json!({})
    ));
    assert!(!denied(
        json!({"annotation": {"openWorldHint": false, "readOnlyHint": false}}),
        &t,
        json!({})
    ));
}

#[test]
fn a_claim_cannot_escape_beyond_what_the_rule_asks() {
    // The spec calls destructiveHint meaningless for read-only tools; the engine does not
    // infer from it: a tool claiming readOnlyHint=true without destructiveHint is still
    // destructive by default, and caught by a destructiveHint rule.
    let claims_read_only = json!({"readOnlyHint": true});
    let t = with_annotations(&claims_read_only);
    assert!(denied(json!({"annotation": {"destructiveHint": true}}), &t, json!({})));
    assert!(denied(json!({"annotation": {"openWorldHint": true}}), &t, json!({})));
    assert!(denied(json!({"annotation": {"idempotentHint": false}}), &t, json!({})));
    // Rules on the tool or its arguments ignore annotations altogether.
    assert!(denied(json!({"tool": "t"}), &t, json!({})));
    assert!(denied(json!({"arg": "/p", "exists": true}), &t, json!({"p": 1})));
    // Only a rule that itself trusts the claim lets it through.
    assert!(!denied(
        json!({"not": {"annotation": {"readOnlyHint": true}}}),
        &t,
        json!({})
    ));
    // The same rule holds a tool that makes no claim.
    let none = CallTarget {
        server: "s",
        tool: Some("t"),
        ..Default::default()
    };
    assert!(denied(
        json!({"not": {"annotation": {"readOnlyHint": true}}}),
        &none,
        json!({})
    ));
}

fn policy(id: &str, org: &str, scope: Value) -> (String, String, Value) {
    (
        id.into(),
        org.into(),
        json!({"name": id, "scope": scope, "rules": [{"kind": "block", "when": {"tool": "*"}, "action": "deny"}]}),
    )
}

fn applicable_ids(s: &PolicySet, who: &Identity, t: &CallTarget<'_>) -> Vec<String> {
    s.applicable(who, t).policy_ids().map(String::from).collect()
}

#[test]
fn scope_matches_subjects_servers_tools_and_virtual_servers() {
    let ps: Vec<(String, String, Value)> = vec![
        policy("all", "org_a", json!({})),
        policy("org", "org_a", json!({"subject": {"kind": "org", "id": "org_a"}})),
        policy("ws", "org_a", json!({"subject": {"kind": "workspace", "id": "ws_1"}})),
        policy(
            "other-ws",
            "org_a",
            json!({"subject": {"kind": "workspace", "id": "ws_2"}}),
        ),
        policy("team", "org_a", json!({"subject": {"kind": "team", "id": "team_y"}})),
        policy("me", "org_a", json!({"subject": {"kind": "user", "id": "usr_1"}})),
        policy(
            "me-as-agent",
            "org_a",
            json!({"subject": {"kind": "agent", "id": "usr_1"}}),
        ),
        policy("crm", "org_a", json!({"server": "crm"})),
        policy("c-glob", "org_a", json!({"server": "c?m*"})),
        policy("gh", "org_a", json!({"server": "github"})),
        policy("creates", "org_a", json!({"tool": "create_*"})),
        policy("via-ops", "org_a", json!({"virtual_server": "ops"})),
        policy(
            "crm-creates-ops",
            "org_a",
            json!({"server": "crm", "tool": "create_*", "virtual_server": "ops"}),
        ),
    ];
    let refs: Vec<(&str, &str, Value)> = ps.iter().map(|(a, b, c)| (a.as_str(), b.as_str(), c.clone())).collect();
    let s = set(&refs);
    let who = user();
    assert_eq!(
        applicable_ids(&s, &who, &target("crm", "get_contact")),
        ["all", "org", "ws", "team", "me", "crm", "c-glob"]
    );
    let via_ops = CallTarget {
        server: "crm",
        tool: Some("create_contact"),
        virtual_server: Some("ops"),
        annotations: None,
    };
    assert_eq!(
        applicable_ids(&s, &who, &via_ops),
        [
            "all",
            "org",
            "ws",
            "team",
            "me",
            "crm",
            "c-glob",
            "creates",
            "via-ops",
            "crm-creates-ops"
        ]
    );
    // A resource read names no tool: tool-scoped policies stay out.
    let read = CallTarget {
        server: "github",
        ..Default::default()
    };
    assert_eq!(
        applicable_ids(&s, &who, &read),
        ["all", "org", "ws", "team", "me", "gh"]
    );
    // The same id as an agent is another subject.
    let agent = Identity {
        kind: "agent".into(),
        team_ids: vec![],
        workspace_ids: vec![],
        ..user()
    };
    assert_eq!(
        applicable_ids(&s, &agent, &target("x", "y")),
        ["all", "org", "me-as-agent"]
    );
}

#[test]
fn an_organizations_policy_never_applies_to_another() {
    let s = set(&[
        (
            "a-all",
            "org_a",
            json!({"name": "a", "rules": [{"kind": "block", "when": {"tool": "*"}, "action": "deny"}]}),
        ),
        // Naming org_b's team does not reach org_b's callers either.
        (
            "a-team-b",
            "org_a",
            json!({"name": "a", "scope": {"subject": {"kind": "team", "id": "team_b"}},
            "rules": [{"kind": "block", "when": {"tool": "*"}, "action": "deny"}]}),
        ),
        (
            "b-all",
            "org_b",
            json!({"name": "b", "rules": [{"kind": "rate_limit", "per": "org", "limit": 1, "window_s": 1}]}),
        ),
        (
            "platform",
            "",
            json!({"name": "p", "rules": [{"kind": "guardrail", "on": ["arguments"], "detect": ["secret"], "action": "redact"}]}),
        ),
    ]);
    let b_user = Identity {
        principal_id: "usr_b".into(),
        kind: "user".into(),
        org_id: "org_b".into(),
        workspace_ids: vec![],
        team_ids: vec!["team_b".into()],
    };
    assert_eq!(applicable_ids(&s, &b_user, &target("crm", "t")), ["b-all", "platform"]);
    assert_eq!(applicable_ids(&s, &user(), &target("crm", "t")), ["a-all", "platform"]);
    let mut args = json!({});
    let v = s.applicable(&b_user, &target("crm", "t")).check_call(&mut args);
    assert_eq!(v.outcome, Outcome::Proceed);
    assert_eq!(v.limits[0].key_suffix, "org:org_b");
    // A caller of no organization meets platform-wide policies only.
    let nobody = Identity {
        org_id: String::new(),
        ..user()
    };
    assert_eq!(applicable_ids(&s, &nobody, &target("crm", "t")), ["platform"]);
}

#[test]
fn monitor_records_and_enforce_acts() {
    let doc = |mode: &str| {
        json!({"name": "m", "mode": mode, "rules": [
        {"kind": "block", "when": {"tool": "*"}, "action": "deny"},
        {"kind": "guardrail", "on": ["arguments"], "detect": ["email"], "action": "redact"},
        {"kind": "guardrail", "on": ["arguments"], "detect": ["email"], "action": "block"},
        {"kind": "rate_limit", "per": "principal", "limit": 3, "window_s": 60}]})
    };
    let monitor = set(&[("mon", "org_a", doc("monitor"))]);
    let mut args = json!({"to": "a@b.io"});
    let who = user();
    let v = monitor.applicable(&who, &target("s", "t")).check_call(&mut args);
    assert_eq!(args["to"], "a@b.io", "monitor rewrites nothing");
    assert_eq!(v.outcome, Outcome::Proceed);
    let seen: Vec<_> = v
        .decisions
        .iter()
        .map(|d| (d.rule.as_str(), d.action.as_str(), d.mode.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("rules[0]", "deny", "monitor"),
            ("rules[1]", "redact", "monitor"),
            ("rules[2]", "block", "monitor")
        ]
    );
    assert_eq!(v.limits[0].mode, Mode::Monitor);

    let enforce = set(&[("enf", "org_a", doc("enforce"))]);
    let mut args = json!({"to": "a@b.io"});
    let v = enforce.applicable(&who, &target("s", "t")).check_call(&mut args);
    assert_eq!(args["to"], "[EMAIL]");
    assert_eq!(
        v.outcome,
        Outcome::Deny {
            policy_id: "enf".into(),
            rule: "rules[0]".into()
        }
    );
    assert!(v.decisions.iter().all(|d| d.mode == "enforce"));
    assert_eq!(v.limits[0].mode, Mode::Enforce);
}

#[test]
fn deny_beats_approval_and_any_enforce_block_wins() {
    let rule = |action: &str| json!([{"kind": "block", "when": {"tool": "*"}, "action": action}]);
    let s = set(&[
        (
            "mon-deny",
            "org_a",
            json!({"name": "a", "mode": "monitor", "rules": rule("deny")}),
        ),
        (
            "approve",
            "org_a",
            json!({"name": "b", "rules": rule("require_approval")}),
        ),
        (
            "approve-2",
            "org_a",
            json!({"name": "c", "rules": rule("require_approval")}),
        ),
    ]);
    let v = check(&s, &target("s", "t"), json!({}));
    assert_eq!(
        v.outcome,
        Outcome::RequireApproval {
            policy_id: "approve".into(),
            rule: "rules[0]".into()
        }
    );
    assert_eq!(v.decisions.len(), 3, "every decision is recorded");

    let s = set(&[
        (
            "approve",
            "org_a",
            json!({"name": "b", "rules": rule("require_approval")}),
        ),
        (
            "deny",
            "org_a",
            json!({"name": "d", "rules": [
            {"kind": "guardrail", "on": ["arguments"], "detect": ["email"], "action": "flag"},
            {"kind": "block", "when": {"arg": "/x", "exists": true}, "action": "deny"}]}),
        ),
    ]);
    let v = check(&s, &target("s", "t"), json!({"x": 1}));
    assert_eq!(
        v.outcome,
        Outcome::Deny {
            policy_id: "deny".into(),
            rule: "rules[1]".into()
        }
    );
    let v = check(&s, &target("s", "t"), json!({}));
    assert_eq!(
        v.outcome,
        Outcome::RequireApproval {
            policy_id: "approve".into(),
            rule: "rules[0]".into()
        }
    );
}

#[test]
fn conditions_see_the_arguments_before_guardrails_rewrite_them() {
    let s = set(&[(
        "p",
        "org_a",
        json!({"name": "p", "rules": [
        {"kind": "guardrail", "on": ["arguments"], "detect": ["email"], "action": "redact"},
        {"kind": "block", "when": {"arg": "/to", "matches": "@rival\\.com$"}, "action": "deny"}]}),
    )]);
    let mut args = json!({"to": "ceo@rival.com"});
    let who = user();
    let v = s.applicable(&who, &target("mail", "send")).check_call(&mut args);
    assert_eq!(args["to"], "[EMAIL]");
    assert_eq!(
        v.outcome,
        Outcome::Deny {
            policy_id: "p".into(),
            rule: "rules[1]".into()
        }
    );
}

#[test]
fn rate_limits_and_quotas_say_what_to_count() {
    let s = set(&[
        (
            "slow",
            "org_a",
            json!({"name": "slow-down", "scope": {"server": "github", "tool": "create_*"}, "rules": [
            {"kind": "rate_limit", "per": "principal", "limit": 10, "window_s": 60},
            {"kind": "quota", "per": "team", "limit": 500, "period": "month"},
            {"kind": "quota", "per": "org", "limit": 9000, "period": "day"}]}),
        ),
        (
            "team-x",
            "org_a",
            json!({"name": "tx", "scope": {"subject": {"kind": "team", "id": "team_x"}}, "rules": [
            {"kind": "rate_limit", "per": "team", "limit": 100, "window_s": 3600}]}),
        ),
    ]);
    let v = check(&s, &target("github", "create_issue"), json!({}));
    let lc = |policy: &str, i: usize, per: Per, window: Window, limit: u64, key: &str| LimitCheck {
        policy_id: policy.into(),
        rule_index: i,
        mode: Mode::Enforce,
        per,
        window,
        limit,
        key_suffix: key.into(),
    };
    assert_eq!(
        v.limits,
        [
            lc("slow", 0, Per::Principal, Window::Seconds(60), 10, "principal:usr_1"),
            lc("slow", 1, Per::Team, Window::Period(Period::Month), 500, "team:team_x"),
            lc("slow", 1, Per::Team, Window::Period(Period::Month), 500, "team:team_y"),
            lc("slow", 2, Per::Org, Window::Period(Period::Day), 9000, "org:org_a"),
            lc("team-x", 0, Per::Team, Window::Seconds(3600), 100, "team:team_x"),
        ]
    );
    assert_eq!(v.limits[0].key(), "slow/0/principal:usr_1");
    assert!(v.decisions.is_empty() && v.outcome == Outcome::Proceed);
    assert!(check(&s, &target("github", "list_issues"), json!({}))
        .limits
        .iter()
        .all(|l| l.policy_id == "team-x"));
    // A caller in no team is counted alone under a per-team rule.
    let loner = Identity {
        team_ids: vec![],
        ..user()
    };
    let mut args = json!({});
    let v = s
        .applicable(&loner, &target("github", "create_issue"))
        .check_call(&mut args);
    assert_eq!(v.limits[1].key_suffix, "principal:usr_1");
    // Results are not counted.
    let mut res = json!({});
    assert!(s
        .applicable(&user(), &target("github", "create_issue"))
        .check_result(&mut res)
        .limits
        .is_empty());
}
