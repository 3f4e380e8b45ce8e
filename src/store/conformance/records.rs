//! Records the checks store: every optional field filled, so a backend that drops or mangles a
//! column fails the round trip.
use serde_json::json;

use crate::mcp::version::Era;
use crate::store::records::{Effect, ResourceKind, Role, SubjectKind};
use crate::store::*;

pub const T0: &str = "2026-01-01T00:00:00.000Z";
pub const T1: &str = "2026-01-02T00:00:00.000Z";
pub const T2: &str = "2026-01-03T00:00:00.000Z";

pub fn server(slug: &str, org: Option<&str>) -> ServerRecord {
    ServerRecord {
        slug: slug.into(),
        name: format!("Server {slug}"),
        url: format!("https://{slug}.example/mcp"),
        description: Some("a server of the conformance suite".into()),
        owner: Some("ops".into()),
        status: "active".into(),
        era: Some(Era::Modern),
        protocol_version: Some("2026-07-28".into()),
        timeout_ms: Some(1500),
        server_info: Some(json!({"name": slug, "version": "1.0.0"})),
        capabilities: Some(json!({"tools": {"listChanged": true}, "n": 1.25})),
        instructions: Some("use it well".into()),
        last_synced_at: Some(T0.into()),
        last_sync_error: None,
        new_tool_policy: "approve".into(),
        created_at: T0.into(),
        updated_at: T0.into(),
        org_id: org.map(str::to_string),
        legacy_version: Some("2025-11-25".into()),
        total_timeout_ms: Some(60_000),
        capture: Some(crate::observe::CaptureMode::Full),
    }
}

pub fn tool(slug: &str, name: &str) -> ToolRecord {
    let mut t = ToolRecord {
        server_slug: slug.into(),
        name: name.into(),
        title: Some(format!("Tool {name}")),
        description: Some("does a thing".into()),
        input_schema: json!({"type": "object", "properties": {"x": {"type": "number", "maximum": 0.1}}}),
        output_schema: Some(json!({"type": "object"})),
        annotations: Some(json!({"readOnlyHint": true})),
        definition_hash: format!("hash-{name}"),
        discovered_at: T0.into(),
        status: "active".into(),
        approved_hash: None,
        approved_definition: None,
        quarantine_reason: None,
    };
    t.approved_hash = Some(t.definition_hash.clone());
    t.approved_definition = Some(t.tool_json());
    t
}

pub fn virtual_server(slug: &str, org: Option<&str>) -> VirtualServer {
    VirtualServer {
        slug: slug.into(),
        name: format!("Virtual {slug}"),
        description: Some("chosen tools".into()),
        tools: vec![
            VirtualTool {
                server: "a".into(),
                tool: "echo".into(),
                name: Some("say".into()),
                description: Some("says it".into()),
            },
            VirtualTool {
                server: "b".into(),
                tool: "add".into(),
                name: None,
                description: None,
            },
        ],
        created_at: T0.into(),
        updated_at: T0.into(),
        org_id: org.map(str::to_string),
    }
}

pub fn key(id: &str, created_at: &str) -> ApiKeyRecord {
    ApiKeyRecord {
        id: id.into(),
        name: format!("key {id}"),
        prefix: "mcpgw_abcdef".into(),
        key_hash: format!("hash-of-{id}"),
        created_at: created_at.into(),
        last_used_at: None,
        revoked_at: None,
        principal_id: DEFAULT_AGENT.into(),
        expires_at: Some(T2.into()),
    }
}

pub fn entity(id: &str, kind: EntityKind, parent: Option<&str>) -> Entity {
    let user = kind == EntityKind::User;
    Entity {
        id: id.into(),
        kind,
        parent_id: parent.map(str::to_string),
        name: format!("Entry {id}"),
        email: user.then(|| format!("{id}@example.com")),
        external_subject: user.then(|| format!("{}|https://idp.example|{id}", parent.unwrap_or(""))),
        created_at: T0.into(),
    }
}

pub fn grant(id: &str, subject: &str) -> Grant {
    Grant {
        id: id.into(),
        subject_kind: SubjectKind::User,
        subject_id: subject.into(),
        resource_kind: ResourceKind::Server,
        resource: "sc-*".into(),
        tool: Some("echo".into()),
        effect: Effect::Deny,
        created_at: T0.into(),
    }
}

pub fn idp(id: &str, org: &str, issuer: &str) -> IdentityProvider {
    IdentityProvider {
        id: id.into(),
        org_id: org.into(),
        issuer: issuer.into(),
        audiences: vec!["gateway".into(), format!("aud-{id}")],
        subject_claim: "oid".into(),
        email_claim: "upn".into(),
        groups_claim: "roles".into(),
        group_teams: [("engineers".to_string(), "team_x".to_string())].into(),
        login_client_id: Some("login-client".into()),
        created_at: T0.into(),
    }
}

pub fn role(id: &str, principal: &str, role: Role, scope: &str, org: &str) -> RoleAssignment {
    RoleAssignment {
        id: id.into(),
        principal_id: principal.into(),
        role,
        scope_id: scope.into(),
        org_id: org.into(),
        created_at: T0.into(),
    }
}

pub fn client(id: &str) -> OAuthClient {
    OAuthClient {
        client_id: id.into(),
        client_name: Some("Agent".into()),
        redirect_uris: vec!["http://127.0.0.1:9/cb".into(), "https://agent.example/cb".into()],
        created_at: T0.into(),
    }
}

pub fn token(hash: &str, kind: &str, family: &str, expires_at_ms: u64) -> OAuthToken {
    OAuthToken {
        hash: hash.into(),
        kind: kind.into(),
        family: family.into(),
        client_id: "client".into(),
        user_id: "usr_x".into(),
        resource: "https://gw.example/mcp".into(),
        scope: "mcp".into(),
        redirect_uri: Some("https://agent.example/cb".into()),
        code_challenge: Some("challenge".into()),
        expires_at_ms,
    }
}

/// An organization with one workspace, for checks that need a place in the directory. Ids
/// start with `p` (the check's own prefix).
pub async fn org_with_workspace<S: Store + ?Sized>(s: &S, p: &str) -> StoreResult<(String, String)> {
    let (org, ws) = (format!("org_{p}"), format!("ws_{p}"));
    s.create_entity(&entity(&org, EntityKind::Org, None)).await?;
    s.create_entity(&entity(&ws, EntityKind::Workspace, Some(&org))).await?;
    Ok((org, ws))
}
