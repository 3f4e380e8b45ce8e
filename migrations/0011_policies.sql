-- 0011: policies (docs/policies.md). One row per policy of an organization: its scope and rules
-- are kept as the JSON the admin API accepted (validated by `rules::parse_policy` before every
-- write), so a policy reads back exactly as it was written.

CREATE TABLE policies (
  id          TEXT PRIMARY KEY,          -- 'pol_' + random
  org_id      TEXT NOT NULL,             -- the owning organization (policies are never platform-wide)
  name        TEXT NOT NULL,
  mode        TEXT NOT NULL CHECK (mode IN ('enforce', 'monitor')),
  scope       TEXT NOT NULL,             -- JSON object: subject?, server?, tool?, virtual_server?
  rules       TEXT NOT NULL,             -- JSON array of rules
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL,
  UNIQUE (org_id, name)
);
CREATE INDEX policies_org ON policies(org_id, created_at, id);
