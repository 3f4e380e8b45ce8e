//! `Changes` in D1: every write of a batch becomes its statements (the same SQL the single store
//! methods run), sent as one D1 batch, which D1 runs as one transaction.
use async_trait::async_trait;

use crate::store::{Changes, StoreResult, Write};

use super::{directory, policies, registry, virtuals, D1Store, Sql};

impl D1Store {
    fn statements(&self, w: &Write) -> StoreResult<Vec<worker::D1PreparedStatement>> {
        let sql: Vec<Sql> = match w {
            Write::CreateServer { server, tools } => {
                let mut v = vec![self.insert_server(server)?];
                v.extend(self.tool_inserts(tools)?);
                return Ok(v);
            }
            Write::ReplaceCatalog { server, tools } => {
                let mut v = vec![
                    self.prepared(registry::update_server(server))?,
                    self.prepared(registry::delete_tools(&server.slug))?,
                ];
                v.extend(self.tool_inserts(tools)?);
                return Ok(v);
            }
            Write::UpdateServer(s) => vec![registry::update_server(s)],
            Write::DeleteServer(slug) => registry::delete_server(slug).into(),
            Write::CreateVirtual(v) => vec![virtuals::insert_virtual(v)],
            Write::UpdateVirtual(v) => vec![virtuals::update_virtual(v)],
            Write::DeleteVirtual(slug) => vec![virtuals::delete_virtual(slug)],
            Write::CreateEntity(e) => vec![directory::insert_entity(e)],
            Write::UpdateEntity(e) => vec![directory::update_entity(e)],
            Write::DeleteEntity(id) => directory::delete_entity(id).into(),
            Write::AddMember {
                principal_id,
                group_id,
                at,
            } => vec![directory::add_member(principal_id, group_id, at)],
            Write::RemoveMember { principal_id, group_id } => vec![directory::remove_member(principal_id, group_id)],
            Write::CreateGrant(g) => vec![directory::insert_grant(g)],
            Write::DeleteGrant(id) => vec![directory::delete_grant(id)],
            Write::CreatePolicy(p) => vec![policies::insert_policy(p)],
            Write::UpdatePolicy(p) => vec![policies::update_policy(p)],
            Write::DeletePolicy { org_id, id } => vec![policies::delete_policy(org_id, id)],
        };
        sql.into_iter().map(|s| self.prepared(s)).collect()
    }
}

#[async_trait(?Send)]
impl Changes for D1Store {
    async fn apply(&self, writes: &[Write]) -> StoreResult<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let mut stmts = Vec::new();
        for w in writes {
            stmts.extend(self.statements(w)?);
        }
        self.batch(stmts).await
    }
}
