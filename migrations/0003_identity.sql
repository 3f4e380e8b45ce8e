-- 0003: organizations ⊃ workspaces ⊃ teams, users and agents, memberships, grants; API keys
-- bound to a principal, with optional expiry. Documented in docs/storage.md and docs/identity.md.

CREATE TABLE directory (
  id                TEXT PRIMARY KEY,      -- org_… ws_… team_… usr_… agt_… (unique across kinds)
  kind              TEXT NOT NULL CHECK (kind IN ('org', 'workspace', 'team', 'user', 'agent')),
  parent_id         TEXT REFERENCES directory(id),  -- workspace/user/agent → org; team → workspace
  name              TEXT NOT NULL,
  email             TEXT,
  external_subject  TEXT UNIQUE,           -- users from an identity provider: "{issuer}|{sub}"
  created_at        TEXT NOT NULL
);
CREATE INDEX directory_kind_parent ON directory(kind, parent_id, id);

CREATE TABLE memberships (
  principal_id  TEXT NOT NULL REFERENCES directory(id) ON DELETE CASCADE,
  group_id      TEXT NOT NULL REFERENCES directory(id) ON DELETE CASCADE,  -- a workspace or team
  created_at    TEXT NOT NULL,
  PRIMARY KEY (principal_id, group_id)
);
CREATE INDEX memberships_group ON memberships(group_id);

CREATE TABLE grants (
  id             TEXT PRIMARY KEY,
  subject_kind   TEXT NOT NULL CHECK (subject_kind IN ('org', 'workspace', 'team', 'user', 'agent')),
  subject_id     TEXT NOT NULL,
  resource_kind  TEXT NOT NULL CHECK (resource_kind IN ('server', 'virtual')),
  resource       TEXT NOT NULL,            -- slug or glob
  tool           TEXT,                     -- tool name or glob; NULL = the whole server
  effect         TEXT NOT NULL CHECK (effect IN ('allow', 'deny')),
  created_at     TEXT NOT NULL
);
CREATE INDEX grants_subject ON grants(subject_id);

-- Keys issued before identities act as the default agent, which keeps access to everything,
-- so nothing in use breaks. New users and agents get nothing until granted (deny by default).
INSERT INTO directory (id, kind, parent_id, name, created_at) VALUES
  ('org_default', 'org', NULL, 'Default organization', strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  ('ws_default', 'workspace', 'org_default', 'Default workspace', strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  ('agt_default', 'agent', 'org_default', 'Default agent (keys issued without a principal)', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
INSERT INTO memberships (principal_id, group_id, created_at) VALUES
  ('agt_default', 'ws_default', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
INSERT INTO grants (id, subject_kind, subject_id, resource_kind, resource, tool, effect, created_at) VALUES
  ('grant_default_servers', 'agent', 'agt_default', 'server', '*', NULL, 'allow', strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  ('grant_default_virtual', 'agent', 'agt_default', 'virtual', '*', NULL, 'allow', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));

ALTER TABLE api_keys ADD COLUMN principal_id TEXT NOT NULL DEFAULT 'agt_default';
ALTER TABLE api_keys ADD COLUMN expires_at TEXT;

-- Trusted OIDC issuers, per organization. `config` is the JSON of audiences, claim names and
-- the IdP-group → team mapping (see docs/identity.md).
CREATE TABLE identity_providers (
  id          TEXT PRIMARY KEY,              -- idp_…
  org_id      TEXT NOT NULL REFERENCES directory(id),
  issuer      TEXT NOT NULL UNIQUE,          -- exactly the tokens' `iss`
  config      TEXT NOT NULL,
  created_at  TEXT NOT NULL
);

-- Admin roles: org_admin and viewer on an organization, workspace_admin on a workspace.
CREATE TABLE admin_roles (
  id            TEXT PRIMARY KEY,              -- role_…
  principal_id  TEXT NOT NULL REFERENCES directory(id) ON DELETE CASCADE,
  role          TEXT NOT NULL CHECK (role IN ('org_admin', 'workspace_admin', 'viewer')),
  scope_id      TEXT NOT NULL,                 -- the org or workspace
  org_id        TEXT NOT NULL,
  created_at    TEXT NOT NULL,
  UNIQUE (principal_id, role, scope_id)
);
