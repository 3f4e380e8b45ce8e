//! Tests of the configuration document (parsing, validation, sorted form) and of the diff.
use serde_json::{json, Value};

use super::super::config_diff::{diff, fixed_fields, Kind, Op};
use super::*;

fn doc() -> Value {
    json!({
        "version": 1,
        "org": "org_a",
        "servers": [
            {"slug": "zeta", "name": "Z", "url": "https://z.example/mcp"},
            {"slug": "alpha", "name": "A", "url": "https://a.example/mcp", "total_timeout_ms": 10,
             "new_tool_policy": "quarantine", "capture": "full"}
        ],
        "virtual_servers": [{"slug": "v", "name": "V", "tools": [{"server": "alpha", "tool": "echo", "name": "say"}]}],
        "workspaces": [{"id": "ws_b", "name": "B"}, {"id": "ws_a", "name": "A"}],
        "teams": [{"id": "team_a", "workspace": "ws_a", "name": "T"}],
        "users": [{"id": "usr_a", "name": "Ada", "email": "ada@example.com"}],
        "agents": [{"id": "agt_a", "name": "bot"}],
        "memberships": [{"group": "team_a", "principal": "agt_a"}, {"group": "ws_a", "principal": "usr_a"}],
        "grants": [
            {"subject_kind": "team", "subject_id": "team_a", "resource": "alpha", "effect": "allow"},
            {"subject_kind": "org", "subject_id": "org_a", "resource_kind": "virtual", "resource": "*", "effect": "allow"}
        ],
        "policies": [{"name": "no-etc", "rules": [{"kind": "block", "when": {"arg": "/path", "matches": "^/etc/"}, "action": "deny"}]}]
    })
}

fn parsed(v: &Value) -> ConfigDoc {
    parse(v).unwrap_or_else(|e| panic!("{e:?}"))
}

#[test]
fn a_document_is_sorted_normalized_and_serializes_deterministically() {
    let d = parsed(&doc());
    assert_eq!(
        d.servers.iter().map(|s| s.slug.as_str()).collect::<Vec<_>>(),
        ["alpha", "zeta"]
    );
    assert_eq!(d.workspaces[0].id, "ws_a");
    assert_eq!(d.servers[1].status, "active", "defaults filled in");
    assert_eq!(
        d.servers[0].total_timeout_ms,
        Some(crate::config::clamp_total(10)),
        "stored as clamped"
    );
    assert_eq!(d.policies[0].mode, "enforce");
    // Any order of the same content gives the same bytes; parsing what it serializes is stable.
    let mut shuffled = doc();
    shuffled["servers"].as_array_mut().unwrap().reverse();
    shuffled["grants"].as_array_mut().unwrap().reverse();
    shuffled["memberships"].as_array_mut().unwrap().reverse();
    let a = serde_json::to_string(&d).unwrap();
    assert_eq!(serde_json::to_string(&parsed(&shuffled)).unwrap(), a);
    let again = parsed(&serde_json::from_str(&a).unwrap());
    assert_eq!(serde_json::to_string(&again).unwrap(), a);
}

#[test]
fn every_error_is_named_by_its_path() {
    let mut bad = doc();
    bad["servers"][0]["slug"] = json!("Not_A_Slug");
    bad["servers"][1]["status"] = json!("paused");
    bad["servers"][1]["surprise"] = json!(true);
    bad["teams"][0]["workspace"] = json!("ws_missing");
    bad["agents"][0]["id"] = json!("usr_wrong_prefix");
    bad["memberships"][1]["principal"] = json!("usr_nobody");
    bad["grants"][0]["subject_id"] = json!("team_elsewhere");
    bad["policies"][0]["rules"][0]["action"] = json!("explode");
    bad["extra"] = json!(1);
    let errors = parse(&bad).unwrap_err();
    let paths: Vec<&str> = errors.iter().map(|e| e.split(':').next().unwrap()).collect();
    // The item that does not deserialize is reported whole; the rest field by field (after it
    // is fixed, the document's own rules run).
    assert!(paths.contains(&"servers[1]"), "{errors:?}");
    assert!(paths.contains(&"extra"), "{errors:?}");
    bad["servers"][1].as_object_mut().unwrap().remove("surprise");
    bad.as_object_mut().unwrap().remove("extra");
    let errors = parse(&bad).unwrap_err();
    let paths: Vec<&str> = errors.iter().map(|e| e.split(':').next().unwrap()).collect();
    for want in [
        "servers[0].slug",
        "servers[1].status",
        "teams[0].workspace",
        "agents[0].id",
        "memberships[1].principal",
        "grants[0].subject_id",
        "policies[0].rules[0].action",
    ] {
        assert!(paths.contains(&want), "{want} missing from {errors:?}");
    }
}

#[test]
fn duplicates_and_wrong_versions_are_refused() {
    let mut d = doc();
    d["version"] = json!(2);
    d["workspaces"][1]["id"] = json!("ws_b");
    d["grants"][1] = d["grants"][0].clone();
    d["virtual_servers"][0]["tools"]
        .as_array_mut()
        .unwrap()
        .push(json!({"server": "zeta", "tool": "x", "name": "say"}));
    let errors = parse(&d).unwrap_err().join("\n");
    for want in [
        "version:",
        "workspaces[1].id: 'ws_b' appears twice",
        "grants[1]: appears twice",
        "tool name 'say' appears twice",
    ] {
        assert!(errors.contains(want), "{want} missing from {errors}");
    }
    assert!(parse(&json!([])).is_err());
}

#[test]
fn the_same_document_has_no_changes() {
    let d = parsed(&doc());
    assert!(diff(&d, &d).is_empty());
}

#[test]
fn a_diff_creates_parents_first_and_deletes_children_first() {
    let empty = parsed(&json!({"version": 1, "org": "org_a"}));
    let d = parsed(&doc());
    let up = diff(&empty, &d);
    assert!(up
        .iter()
        .all(|c| c.op == Op::Create && c.before.is_none() && c.after.is_some()));
    let kinds: Vec<Kind> = up.iter().map(|c| c.kind).collect();
    let pos = |k| kinds.iter().position(|x| *x == k).unwrap();
    assert!(pos(Kind::Workspace) < pos(Kind::Team) && pos(Kind::Team) < pos(Kind::Membership));
    assert!(pos(Kind::Server) < pos(Kind::VirtualServer));
    let down = diff(&d, &empty);
    assert_eq!(down.len(), up.len());
    let kinds: Vec<Kind> = down.iter().map(|c| c.kind).collect();
    let pos = |k| kinds.iter().position(|x| *x == k).unwrap();
    assert!(pos(Kind::Membership) < pos(Kind::Team) && pos(Kind::Team) < pos(Kind::Workspace));
    assert!(pos(Kind::Grant) < pos(Kind::Agent) && pos(Kind::VirtualServer) < pos(Kind::Server));
    assert!(down.iter().all(|c| c.op == Op::Delete && c.after.is_none()));
}

#[test]
fn a_diff_lists_exactly_what_differs() {
    let current = parsed(&doc());
    let mut want = doc();
    want["agents"][0]["name"] = json!("bot 2");
    want["grants"].as_array_mut().unwrap().remove(0);
    want["workspaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "ws_c", "name": "C"}));
    want["policies"][0]["mode"] = json!("monitor");
    let changes = diff(&current, &parsed(&want));
    let summary: Vec<String> = changes
        .iter()
        .map(|c| format!("{:?} {:?} {}", c.op, c.kind, c.id))
        .collect();
    assert_eq!(
        summary,
        [
            "Create Workspace ws_c",
            "Update Agent agt_a",
            "Update Policy no-etc",
            "Delete Grant team:team_a allow server:alpha",
        ]
    );
    assert_eq!(changes[1].before.as_ref().unwrap()["name"], "bot");
    assert_eq!(changes[1].after.as_ref().unwrap()["name"], "bot 2");
}

#[test]
fn moving_a_team_or_re_keying_a_user_is_refused() {
    let current = parsed(&doc());
    let mut want = doc();
    want["teams"][0]["workspace"] = json!("ws_b");
    want["users"][0]["external_subject"] = json!("https://idp|u1");
    let errors = fixed_fields(&current, &parsed(&want));
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("teams[0].workspace:"));
    assert!(errors[1].starts_with("users[0].external_subject:"));
}
