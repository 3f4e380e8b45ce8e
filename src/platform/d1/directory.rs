//! The directory in D1: organizations, workspaces, teams, users and agents, memberships, grants, identity providers and admin roles.
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use wasm_bindgen::JsValue;

use crate::policy::access::{Grant, Identity};
use crate::policy::oidc::IdentityProvider;
use crate::policy::roles::RoleAssignment;
use crate::store::{Directory, Entity, EntityKind, StoreError, StoreResult};

use super::*;

#[derive(Deserialize)]
struct EntityRow {
    id: String,
    kind: String,
    parent_id: Option<String>,
    name: String,
    email: Option<String>,
    external_subject: Option<String>,
    created_at: String,
}

impl EntityRow {
    fn into_entity(self) -> Option<Entity> {
        Some(Entity {
            id: self.id,
            kind: EntityKind::parse(&self.kind)?,
            parent_id: self.parent_id,
            name: self.name,
            email: self.email,
            external_subject: self.external_subject,
            created_at: self.created_at,
        })
    }
}

#[derive(Deserialize)]
struct GrantRow {
    id: String,
    subject_kind: String,
    subject_id: String,
    resource_kind: String,
    resource: String,
    tool: Option<String>,
    effect: String,
    created_at: String,
}

impl GrantRow {
    /// Rows are checked by the schema; one that still does not parse is skipped (fail closed).
    fn into_grant(self) -> Option<Grant> {
        Some(Grant {
            id: self.id,
            subject_kind: parse_enum(&self.subject_kind)?,
            subject_id: self.subject_id,
            resource_kind: parse_enum(&self.resource_kind)?,
            resource: self.resource,
            tool: self.tool,
            effect: parse_enum(&self.effect)?,
            created_at: self.created_at,
        })
    }
}

fn parse_enum<T: serde::de::DeserializeOwned>(s: &str) -> Option<T> {
    serde_json::from_value(Value::String(s.to_string())).ok()
}

fn enum_text<T: serde::Serialize>(v: &T) -> JsValue {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => JsValue::from_str(&s),
        _ => JsValue::NULL,
    }
}

#[derive(Deserialize)]
struct RoleRow {
    id: String,
    principal_id: String,
    role: String,
    scope_id: String,
    org_id: String,
    created_at: String,
}

impl RoleRow {
    fn into_role(self) -> Option<RoleAssignment> {
        Some(RoleAssignment {
            id: self.id,
            principal_id: self.principal_id,
            role: parse_enum(&self.role)?,
            scope_id: self.scope_id,
            org_id: self.org_id,
            created_at: self.created_at,
        })
    }
}

#[derive(Deserialize)]
struct IdpRow {
    config: String,
}

#[derive(Deserialize)]
struct MemberRow {
    principal_id: String,
    group_id: String,
    kind: String,
    parent_id: Option<String>,
}

const ENTITY_COLUMNS: &str = "id, kind, parent_id, name, email, external_subject, created_at";

impl D1Store {
    /// Identities of the given principals (all of them when `only` is `None`).
    async fn identities(&self, only: Option<&str>) -> StoreResult<Vec<Identity>> {
        let (filter, args) = match only {
            Some(id) => ("AND id = ?1", vec![text(id)]),
            None => ("", vec![]),
        };
        let principals: Vec<EntityRow> = self
            .all(
                &format!("SELECT {ENTITY_COLUMNS} FROM directory WHERE kind IN ('user', 'agent') {filter} ORDER BY id"),
                &args,
            )
            .await?;
        let mfilter = if only.is_some() {
            "WHERE m.principal_id = ?1"
        } else {
            ""
        };
        let members: Vec<MemberRow> = self
            .all(
                &format!(
                    "SELECT m.principal_id, m.group_id, d.kind, d.parent_id FROM memberships m \
                     JOIN directory d ON d.id = m.group_id {mfilter}"
                ),
                &args,
            )
            .await?;
        Ok(principals
            .into_iter()
            .map(|p| {
                let mut id = Identity {
                    principal_id: p.id.clone(),
                    kind: p.kind.clone(),
                    org_id: p.parent_id.clone().unwrap_or_default(),
                    ..Default::default()
                };
                for m in members.iter().filter(|m| m.principal_id == p.id) {
                    match m.kind.as_str() {
                        "team" => {
                            id.team_ids.push(m.group_id.clone());
                            id.workspace_ids.extend(m.parent_id.clone());
                        }
                        "workspace" => id.workspace_ids.push(m.group_id.clone()),
                        _ => {}
                    }
                }
                id.workspace_ids.sort();
                id.workspace_ids.dedup();
                id.team_ids.sort();
                id
            })
            .collect())
    }
}

pub(super) fn insert_entity(e: &Entity) -> Sql {
    Sql(
        format!("INSERT INTO directory ({ENTITY_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7)"),
        vec![
            text(&e.id),
            text(e.kind.as_str()),
            opt(&e.parent_id),
            text(&e.name),
            opt(&e.email),
            opt(&e.external_subject),
            text(&e.created_at),
        ],
    )
}

pub(super) fn update_entity(e: &Entity) -> Sql {
    Sql(
        "UPDATE directory SET name = ?2, email = ?3 WHERE id = ?1".into(),
        vec![text(&e.id), text(&e.name), opt(&e.email)],
    )
}

/// An entry's memberships, then the entry (its admin roles and settings go by foreign key).
pub(super) fn delete_entity(id: &str) -> [Sql; 2] {
    [
        Sql(
            "DELETE FROM memberships WHERE principal_id = ?1 OR group_id = ?1".into(),
            vec![text(id)],
        ),
        Sql("DELETE FROM directory WHERE id = ?1".into(), vec![text(id)]),
    ]
}

pub(super) fn add_member(principal_id: &str, group_id: &str, at: &str) -> Sql {
    Sql(
        "INSERT OR IGNORE INTO memberships (principal_id, group_id, created_at) VALUES (?1, ?2, ?3)".into(),
        vec![text(principal_id), text(group_id), text(at)],
    )
}

pub(super) fn remove_member(principal_id: &str, group_id: &str) -> Sql {
    Sql(
        "DELETE FROM memberships WHERE principal_id = ?1 AND group_id = ?2".into(),
        vec![text(principal_id), text(group_id)],
    )
}

pub(super) fn insert_grant(g: &Grant) -> Sql {
    Sql(
        "INSERT INTO grants (id, subject_kind, subject_id, resource_kind, resource, tool, effect, created_at) \
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8)"
            .into(),
        vec![
            text(&g.id),
            enum_text(&g.subject_kind),
            text(&g.subject_id),
            enum_text(&g.resource_kind),
            text(&g.resource),
            opt(&g.tool),
            enum_text(&g.effect),
            text(&g.created_at),
        ],
    )
}

pub(super) fn delete_grant(id: &str) -> Sql {
    Sql("DELETE FROM grants WHERE id = ?1".into(), vec![text(id)])
}

#[async_trait(?Send)]
impl Directory for D1Store {
    async fn create_entity(&self, e: &Entity) -> StoreResult<()> {
        self.run_sql(insert_entity(e)).await?;
        Ok(())
    }

    async fn get_entity(&self, id: &str) -> StoreResult<Option<Entity>> {
        let row: Option<EntityRow> = self
            .first(
                &format!("SELECT {ENTITY_COLUMNS} FROM directory WHERE id = ?1"),
                &[text(id)],
            )
            .await?;
        Ok(row.and_then(EntityRow::into_entity))
    }

    async fn list_entities(
        &self,
        kind: EntityKind,
        parent: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Entity>> {
        let rows: Vec<EntityRow> = self
            .all(
                &format!(
                    "SELECT {ENTITY_COLUMNS} FROM directory WHERE kind = ?1 AND (?2 IS NULL OR parent_id = ?2) \
                     AND (?3 IS NULL OR id > ?3) ORDER BY id LIMIT ?4"
                ),
                &[
                    text(kind.as_str()),
                    parent.map(JsValue::from_str).unwrap_or(JsValue::NULL),
                    after.map(JsValue::from_str).unwrap_or(JsValue::NULL),
                    JsValue::from_f64(limit as f64),
                ],
            )
            .await?;
        Ok(rows.into_iter().filter_map(EntityRow::into_entity).collect())
    }

    async fn update_entity(&self, e: &Entity) -> StoreResult<bool> {
        Ok(self.run_sql(update_entity(e)).await? > 0)
    }

    async fn delete_entity(&self, id: &str) -> StoreResult<bool> {
        let existed = self.get_entity(id).await?.is_some();
        let stmts = delete_entity(id)
            .into_iter()
            .map(|s| self.prepared(s))
            .collect::<StoreResult<Vec<_>>>()?;
        self.batch(stmts).await?;
        Ok(existed)
    }

    async fn count_dependents(&self, id: &str) -> StoreResult<usize> {
        #[derive(Deserialize)]
        struct N {
            n: f64,
        }
        let row: Option<N> = self
            .first(
                "SELECT (SELECT COUNT(*) FROM directory WHERE parent_id = ?1) + \
                 (SELECT COUNT(*) FROM memberships WHERE group_id = ?1) + \
                 (SELECT COUNT(*) FROM servers WHERE org_id = ?1) + \
                 (SELECT COUNT(*) FROM virtual_servers WHERE org_id = ?1) + \
                 (SELECT COUNT(*) FROM identity_providers WHERE org_id = ?1) AS n",
                &[text(id)],
            )
            .await?;
        Ok(row.map(|r| r.n as usize).unwrap_or(0))
    }

    async fn add_member(&self, principal_id: &str, group_id: &str, at: &str) -> StoreResult<()> {
        self.run_sql(add_member(principal_id, group_id, at)).await?;
        Ok(())
    }

    async fn remove_member(&self, principal_id: &str, group_id: &str) -> StoreResult<bool> {
        Ok(self.run_sql(remove_member(principal_id, group_id)).await? > 0)
    }

    async fn list_members(&self, group_id: &str) -> StoreResult<Vec<String>> {
        #[derive(Deserialize)]
        struct P {
            principal_id: String,
        }
        let rows: Vec<P> = self
            .all(
                "SELECT principal_id FROM memberships WHERE group_id = ?1 ORDER BY principal_id",
                &[text(group_id)],
            )
            .await?;
        Ok(rows.into_iter().map(|r| r.principal_id).collect())
    }

    async fn identity(&self, principal_id: &str) -> StoreResult<Option<Identity>> {
        Ok(self.identities(Some(principal_id)).await?.into_iter().next())
    }

    async fn all_identities(&self) -> StoreResult<Vec<Identity>> {
        self.identities(None).await
    }

    async fn create_grant(&self, g: &Grant) -> StoreResult<()> {
        self.run_sql(insert_grant(g)).await?;
        Ok(())
    }

    async fn list_grants(&self) -> StoreResult<Vec<Grant>> {
        let rows: Vec<GrantRow> = self.all("SELECT * FROM grants ORDER BY id", &[]).await?;
        Ok(rows.into_iter().filter_map(GrantRow::into_grant).collect())
    }

    async fn delete_grant(&self, id: &str) -> StoreResult<bool> {
        Ok(self.run_sql(delete_grant(id)).await? > 0)
    }

    async fn find_by_external_subject(&self, external_subject: &str) -> StoreResult<Option<Entity>> {
        let sql = format!("SELECT {ENTITY_COLUMNS} FROM directory WHERE external_subject = ?1");
        let row: Option<EntityRow> = self.first(&sql, &[text(external_subject)]).await?;
        Ok(row.and_then(EntityRow::into_entity))
    }

    async fn create_idp(&self, idp: &IdentityProvider) -> StoreResult<()> {
        let config = serde_json::to_string(idp).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.run(
            "INSERT INTO identity_providers (id, org_id, issuer, config, created_at) VALUES (?1,?2,?3,?4,?5)",
            &[
                text(&idp.id),
                text(&idp.org_id),
                text(&idp.issuer),
                text(&config),
                text(&idp.created_at),
            ],
        )
        .await?;
        Ok(())
    }

    async fn list_idps(&self) -> StoreResult<Vec<IdentityProvider>> {
        let rows: Vec<IdpRow> = self
            .all("SELECT config FROM identity_providers ORDER BY id", &[])
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| serde_json::from_str(&r.config).ok())
            .collect())
    }

    async fn idps_by_issuer(&self, issuer: &str) -> StoreResult<Vec<IdentityProvider>> {
        let rows: Vec<IdpRow> = self
            .all(
                "SELECT config FROM identity_providers WHERE issuer = ?1 ORDER BY id",
                &[text(issuer)],
            )
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| serde_json::from_str(&r.config).ok())
            .collect())
    }

    async fn delete_idp(&self, id: &str) -> StoreResult<bool> {
        Ok(self
            .run("DELETE FROM identity_providers WHERE id = ?1", &[text(id)])
            .await?
            > 0)
    }

    async fn create_role(&self, r: &RoleAssignment) -> StoreResult<()> {
        self.run(
            "INSERT INTO admin_roles (id, principal_id, role, scope_id, org_id, created_at) VALUES (?1,?2,?3,?4,?5,?6)",
            &[
                text(&r.id),
                text(&r.principal_id),
                enum_text(&r.role),
                text(&r.scope_id),
                text(&r.org_id),
                text(&r.created_at),
            ],
        )
        .await?;
        Ok(())
    }

    async fn list_roles(&self) -> StoreResult<Vec<RoleAssignment>> {
        let rows: Vec<RoleRow> = self.all("SELECT * FROM admin_roles ORDER BY id", &[]).await?;
        Ok(rows.into_iter().filter_map(RoleRow::into_role).collect())
    }

    async fn roles_of(&self, principal_id: &str) -> StoreResult<Vec<RoleAssignment>> {
        let sql = "SELECT * FROM admin_roles WHERE principal_id = ?1 ORDER BY id";
        let rows: Vec<RoleRow> = self.all(sql, &[text(principal_id)]).await?;
        Ok(rows.into_iter().filter_map(RoleRow::into_role).collect())
    }

    async fn delete_role(&self, id: &str) -> StoreResult<bool> {
        Ok(self.run("DELETE FROM admin_roles WHERE id = ?1", &[text(id)]).await? > 0)
    }

    async fn org_capture(&self, org_id: &str) -> StoreResult<Option<crate::observe::CaptureMode>> {
        #[derive(Deserialize)]
        struct Row {
            capture: Option<String>,
        }
        let rows: Vec<Row> = self
            .all("SELECT capture FROM org_settings WHERE org_id = ?1", &[text(org_id)])
            .await?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|r| r.capture)
            .and_then(|c| crate::observe::CaptureMode::parse(&c)))
    }

    async fn set_org_capture(&self, org_id: &str, capture: Option<crate::observe::CaptureMode>) -> StoreResult<()> {
        let value = capture.map(|c| text(c.as_str())).unwrap_or(JsValue::NULL);
        self.run(
            "INSERT INTO org_settings (org_id, capture) VALUES (?1, ?2) \
             ON CONFLICT (org_id) DO UPDATE SET capture = excluded.capture",
            &[text(org_id), value],
        )
        .await?;
        Ok(())
    }

    async fn grants_for(&self, subject_ids: &[String]) -> StoreResult<Vec<Grant>> {
        if subject_ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (1..=subject_ids.len()).map(|i| format!("?{i}")).collect();
        let args: Vec<JsValue> = subject_ids.iter().map(|s| text(s)).collect();
        let sql = format!(
            "SELECT * FROM grants WHERE subject_id IN ({}) ORDER BY id",
            marks.join(",")
        );
        let rows: Vec<GrantRow> = self.all(&sql, &args).await?;
        Ok(rows.into_iter().filter_map(GrantRow::into_grant).collect())
    }
}
