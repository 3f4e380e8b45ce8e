//! Several writes applied as one: the `Changes` store, which applies a list of writes to the
//! registry, virtual servers, directory and policies all-or-nothing (configuration as code,
//! docs/config-as-code.md, applies a whole organization's document this way).
use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{
    Directory, Entity, Grant, Policies, PolicyRecord, Registry, ServerRecord, StoreError, StoreResult, ToolRecord,
    VirtualServer, VirtualServers,
};

/// One write of a batch. Each means what the store method of the same name does.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    CreateServer {
        server: ServerRecord,
        tools: Vec<ToolRecord>,
    },
    UpdateServer(ServerRecord),
    /// `update_server` and the whole catalog replaced (a server whose URL changed).
    ReplaceCatalog {
        server: ServerRecord,
        tools: Vec<ToolRecord>,
    },
    DeleteServer(String),
    CreateVirtual(VirtualServer),
    UpdateVirtual(VirtualServer),
    DeleteVirtual(String),
    CreateEntity(Entity),
    UpdateEntity(Entity),
    DeleteEntity(String),
    AddMember {
        principal_id: String,
        group_id: String,
        at: String,
    },
    RemoveMember {
        principal_id: String,
        group_id: String,
    },
    CreateGrant(Grant),
    DeleteGrant(String),
    CreatePolicy(PolicyRecord),
    UpdatePolicy(PolicyRecord),
    DeletePolicy {
        org_id: String,
        id: String,
    },
}

/// Writes applied together.
///
/// Contract: `apply` runs the writes in order, as one transaction: afterwards either all of them
/// are stored or none is, and readers never see a part. Each write keeps the contract of its
/// own method, with one difference: what would make that method answer `false` (an update,
/// delete or removal of something absent) changes nothing and does not fail the batch — except
/// a `ReplaceCatalog` of an absent server with a non-empty catalog, which fails it (`Backend`:
/// D1 refuses the tools by foreign key). A create
/// whose key exists (server slug, virtual server slug, entry id or external subject, grant id,
/// policy id or an organization's policy name) or a catalog naming a tool twice fails the
/// whole batch with `Conflict`; a backend failure fails it with `Backend`; either way nothing
/// of the batch is stored. An empty batch changes nothing. The catalog generation and the
/// snapshot version are the caller's (and the snapshot decorator's) to bump.
#[async_trait(?Send)]
pub trait Changes {
    async fn apply(&self, writes: &[Write]) -> StoreResult<()>;
}

/// What a memory store's batch may change, saved to be put back if a write fails.
pub(super) struct Saved {
    servers: BTreeMap<String, ServerRecord>,
    tools: BTreeMap<String, Vec<ToolRecord>>,
    virtuals: BTreeMap<String, VirtualServer>,
    directory: super::directory_memory::MemoryDirectory,
    policies: BTreeMap<String, PolicyRecord>,
}

impl super::memory::MemoryStore {
    /// One write through the store's own methods (`false` answers are not failures here).
    async fn write_one(&self, w: &Write) -> StoreResult<()> {
        match w {
            Write::CreateServer { server, tools } => self.create_server(server, tools).await,
            Write::UpdateServer(s) => self.update_server(s).await.map(drop),
            // D1 refuses the tools of an absent server by foreign key: so does this store.
            Write::ReplaceCatalog { server, tools } => match self.replace_catalog(server, tools).await? {
                false if !tools.is_empty() => Err(StoreError::Backend("catalog of an absent server".into())),
                _ => Ok(()),
            },
            Write::DeleteServer(slug) => self.delete_server(slug).await.map(drop),
            Write::CreateVirtual(v) => self.create_virtual(v).await,
            Write::UpdateVirtual(v) => self.update_virtual(v).await.map(drop),
            Write::DeleteVirtual(slug) => self.delete_virtual(slug).await.map(drop),
            Write::CreateEntity(e) => self.create_entity(e).await,
            Write::UpdateEntity(e) => self.update_entity(e).await.map(drop),
            Write::DeleteEntity(id) => self.delete_entity(id).await.map(drop),
            Write::AddMember {
                principal_id,
                group_id,
                at,
            } => self.add_member(principal_id, group_id, at).await,
            Write::RemoveMember { principal_id, group_id } => {
                self.remove_member(principal_id, group_id).await.map(drop)
            }
            Write::CreateGrant(g) => self.create_grant(g).await,
            Write::DeleteGrant(id) => self.delete_grant(id).await.map(drop),
            Write::CreatePolicy(p) => self.create_policy(p).await,
            Write::UpdatePolicy(p) => self.update_policy(p).await.map(drop),
            Write::DeletePolicy { org_id, id } => self.delete_policy(org_id, id).await.map(drop),
        }
    }
}

#[async_trait(?Send)]
impl Changes for super::memory::MemoryStore {
    async fn apply(&self, writes: &[Write]) -> StoreResult<()> {
        let saved = self.save();
        for w in writes {
            if let Err(e) = self.write_one(w).await {
                self.restore(saved);
                return Err(e);
            }
        }
        Ok(())
    }
}

impl super::memory::MemoryStore {
    pub(super) fn save(&self) -> Saved {
        Saved {
            servers: self.servers.borrow().clone(),
            tools: self.tools.borrow().clone(),
            virtuals: self.virtuals.borrow().clone(),
            directory: self.directory.clone(),
            policies: self.policies.borrow().clone(),
        }
    }

    pub(super) fn restore(&self, s: Saved) {
        *self.servers.borrow_mut() = s.servers;
        *self.tools.borrow_mut() = s.tools;
        *self.virtuals.borrow_mut() = s.virtuals;
        self.directory.replace_with(s.directory);
        *self.policies.borrow_mut() = s.policies;
    }
}
