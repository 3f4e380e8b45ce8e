-- 0010: the `approver` admin role (docs/identity.md): reads an organization as a viewer does and
-- decides its approval requests. SQLite cannot change a CHECK constraint in place, so the table
-- is rebuilt with its rows (no other table refers to it).

CREATE TABLE admin_roles_new (
  id            TEXT PRIMARY KEY,              -- role_…
  principal_id  TEXT NOT NULL REFERENCES directory(id) ON DELETE CASCADE,
  role          TEXT NOT NULL CHECK (role IN ('org_admin', 'workspace_admin', 'viewer', 'approver')),
  scope_id      TEXT NOT NULL,                 -- the org or workspace
  org_id        TEXT NOT NULL,
  created_at    TEXT NOT NULL,
  UNIQUE (principal_id, role, scope_id)
);
INSERT INTO admin_roles_new (id, principal_id, role, scope_id, org_id, created_at)
  SELECT id, principal_id, role, scope_id, org_id, created_at FROM admin_roles;
DROP TABLE admin_roles;
ALTER TABLE admin_roles_new RENAME TO admin_roles;
