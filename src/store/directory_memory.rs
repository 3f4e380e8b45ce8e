//! In-memory `Directory`, for native tests. Same contracts as D1.
use std::cell::RefCell;
use std::collections::BTreeMap;

use async_trait::async_trait;

use super::*;

#[derive(Default, Clone)]
pub struct MemoryDirectory {
    entities: RefCell<BTreeMap<String, Entity>>,
    members: RefCell<Vec<(String, String)>>,
    grants: RefCell<BTreeMap<String, Grant>>,
    idps: RefCell<Vec<IdentityProvider>>,
    roles: RefCell<Vec<RoleAssignment>>,
    capture: RefCell<BTreeMap<String, crate::observe::CaptureMode>>,
}

impl MemoryDirectory {
    /// Puts back everything a saved copy held (a failed batch, `store::changes`).
    pub(super) fn replace_with(&self, saved: MemoryDirectory) {
        *self.entities.borrow_mut() = saved.entities.into_inner();
        *self.members.borrow_mut() = saved.members.into_inner();
        *self.grants.borrow_mut() = saved.grants.into_inner();
        *self.idps.borrow_mut() = saved.idps.into_inner();
        *self.roles.borrow_mut() = saved.roles.into_inner();
        *self.capture.borrow_mut() = saved.capture.into_inner();
    }
}

#[async_trait(?Send)]
impl Directory for MemoryDirectory {
    async fn create_entity(&self, e: &Entity) -> StoreResult<()> {
        let mut m = self.entities.borrow_mut();
        let dup_subject = e.external_subject.is_some() && m.values().any(|x| x.external_subject == e.external_subject);
        if m.contains_key(&e.id) || dup_subject {
            return Err(StoreError::Conflict);
        }
        m.insert(e.id.clone(), e.clone());
        Ok(())
    }

    async fn get_entity(&self, id: &str) -> StoreResult<Option<Entity>> {
        Ok(self.entities.borrow().get(id).cloned())
    }

    async fn list_entities(
        &self,
        kind: EntityKind,
        parent: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Entity>> {
        Ok(self
            .entities
            .borrow()
            .values()
            .filter(|e| e.kind == kind && parent.is_none_or(|p| e.parent_id.as_deref() == Some(p)))
            .filter(|e| after.is_none_or(|a| e.id.as_str() > a))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn update_entity(&self, e: &Entity) -> StoreResult<bool> {
        Ok(match self.entities.borrow_mut().get_mut(&e.id) {
            Some(x) => {
                x.name = e.name.clone();
                x.email = e.email.clone();
                true
            }
            None => false,
        })
    }

    async fn delete_entity(&self, id: &str) -> StoreResult<bool> {
        self.members.borrow_mut().retain(|(p, g)| p != id && g != id);
        self.roles.borrow_mut().retain(|r| r.principal_id != id);
        self.capture.borrow_mut().remove(id);
        Ok(self.entities.borrow_mut().remove(id).is_some())
    }

    async fn count_dependents(&self, id: &str) -> StoreResult<usize> {
        let children = self
            .entities
            .borrow()
            .values()
            .filter(|e| e.parent_id.as_deref() == Some(id))
            .count();
        let members = self.members.borrow().iter().filter(|(_, g)| g == id).count();
        let idps = self.idps.borrow().iter().filter(|i| i.org_id == id).count();
        Ok(children + members + idps)
    }

    async fn add_member(&self, principal_id: &str, group_id: &str, _at: &str) -> StoreResult<()> {
        let mut m = self.members.borrow_mut();
        let pair = (principal_id.to_string(), group_id.to_string());
        if !m.contains(&pair) {
            m.push(pair);
        }
        Ok(())
    }

    async fn remove_member(&self, principal_id: &str, group_id: &str) -> StoreResult<bool> {
        let mut m = self.members.borrow_mut();
        let before = m.len();
        m.retain(|(p, g)| !(p == principal_id && g == group_id));
        Ok(m.len() < before)
    }

    async fn list_members(&self, group_id: &str) -> StoreResult<Vec<String>> {
        let mut ids: Vec<String> = self
            .members
            .borrow()
            .iter()
            .filter(|(_, g)| g == group_id)
            .map(|(p, _)| p.clone())
            .collect();
        ids.sort();
        Ok(ids)
    }

    async fn identity(&self, principal_id: &str) -> StoreResult<Option<Identity>> {
        let entities = self.entities.borrow();
        let Some(p) = entities.get(principal_id).filter(|e| e.kind.is_principal()) else {
            return Ok(None);
        };
        let mut id = Identity {
            principal_id: p.id.clone(),
            kind: p.kind.as_str().to_string(),
            org_id: p.parent_id.clone().unwrap_or_default(),
            ..Default::default()
        };
        for (_, g) in self.members.borrow().iter().filter(|(m, _)| m == principal_id) {
            match entities.get(g) {
                Some(e) if e.kind == EntityKind::Team => {
                    id.team_ids.push(e.id.clone());
                    id.workspace_ids.extend(e.parent_id.clone());
                }
                Some(e) if e.kind == EntityKind::Workspace => id.workspace_ids.push(e.id.clone()),
                _ => {}
            }
        }
        id.workspace_ids.sort();
        id.workspace_ids.dedup();
        id.team_ids.sort();
        Ok(Some(id))
    }

    async fn all_identities(&self) -> StoreResult<Vec<Identity>> {
        let ids: Vec<String> = self
            .entities
            .borrow()
            .values()
            .filter(|e| e.kind.is_principal())
            .map(|e| e.id.clone())
            .collect();
        let mut out = Vec::new();
        for id in ids {
            out.extend(self.identity(&id).await?);
        }
        Ok(out)
    }

    async fn create_grant(&self, g: &Grant) -> StoreResult<()> {
        let mut m = self.grants.borrow_mut();
        if m.contains_key(&g.id) {
            return Err(StoreError::Conflict);
        }
        m.insert(g.id.clone(), g.clone());
        Ok(())
    }

    async fn list_grants(&self) -> StoreResult<Vec<Grant>> {
        Ok(self.grants.borrow().values().cloned().collect())
    }

    async fn delete_grant(&self, id: &str) -> StoreResult<bool> {
        Ok(self.grants.borrow_mut().remove(id).is_some())
    }

    async fn grants_for(&self, subject_ids: &[String]) -> StoreResult<Vec<Grant>> {
        Ok(self
            .grants
            .borrow()
            .values()
            .filter(|g| subject_ids.contains(&g.subject_id))
            .cloned()
            .collect())
    }

    async fn find_by_external_subject(&self, external_subject: &str) -> StoreResult<Option<Entity>> {
        Ok(self
            .entities
            .borrow()
            .values()
            .find(|e| e.external_subject.as_deref() == Some(external_subject))
            .cloned())
    }

    async fn create_idp(&self, idp: &IdentityProvider) -> StoreResult<()> {
        let mut v = self.idps.borrow_mut();
        if v.iter()
            .any(|i| (i.issuer == idp.issuer && i.org_id == idp.org_id) || i.id == idp.id)
        {
            return Err(StoreError::Conflict);
        }
        v.push(idp.clone());
        // Kept in id order, the order every list of them is read in.
        v.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(())
    }

    async fn list_idps(&self) -> StoreResult<Vec<IdentityProvider>> {
        Ok(self.idps.borrow().clone())
    }

    async fn idps_by_issuer(&self, issuer: &str) -> StoreResult<Vec<IdentityProvider>> {
        Ok(self
            .idps
            .borrow()
            .iter()
            .filter(|i| i.issuer == issuer)
            .cloned()
            .collect())
    }

    async fn delete_idp(&self, id: &str) -> StoreResult<bool> {
        let mut v = self.idps.borrow_mut();
        let before = v.len();
        v.retain(|i| i.id != id);
        Ok(v.len() < before)
    }

    async fn create_role(&self, r: &RoleAssignment) -> StoreResult<()> {
        let mut v = self.roles.borrow_mut();
        if v.iter()
            .any(|x| x.id == r.id || (x.principal_id == r.principal_id && x.role == r.role && x.scope_id == r.scope_id))
        {
            return Err(StoreError::Conflict);
        }
        v.push(r.clone());
        // Kept in id order, the order every list of roles is read in.
        v.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(())
    }

    async fn list_roles(&self) -> StoreResult<Vec<RoleAssignment>> {
        Ok(self.roles.borrow().clone())
    }

    async fn roles_of(&self, principal_id: &str) -> StoreResult<Vec<RoleAssignment>> {
        Ok(self
            .roles
            .borrow()
            .iter()
            .filter(|r| r.principal_id == principal_id)
            .cloned()
            .collect())
    }

    async fn delete_role(&self, id: &str) -> StoreResult<bool> {
        let mut v = self.roles.borrow_mut();
        let before = v.len();
        v.retain(|r| r.id != id);
        Ok(v.len() < before)
    }

    async fn org_capture(&self, org_id: &str) -> StoreResult<Option<crate::observe::CaptureMode>> {
        Ok(self.capture.borrow().get(org_id).copied())
    }

    async fn set_org_capture(&self, org_id: &str, capture: Option<crate::observe::CaptureMode>) -> StoreResult<()> {
        let mut m = self.capture.borrow_mut();
        match capture {
            Some(c) => m.insert(org_id.to_string(), c),
            None => m.remove(org_id),
        };
        Ok(())
    }
}
