-- 0005: tenancy. Servers and virtual servers belong to an organization (`org_id`) or, with
-- NULL, to the platform (managed only by the bootstrap ADMIN_TOKEN). Existing rows become
-- platform-wide, so nothing in use changes. One OIDC issuer may be trusted by several
-- organizations (a shared Entra tenant, Google), each with its own audiences, so the issuer is
-- no longer unique on its own; users provisioned from an issuer are keyed per organization.
-- Documented in docs/storage.md and docs/tenancy.md.

ALTER TABLE servers ADD COLUMN org_id TEXT;          -- NULL: platform-wide
CREATE INDEX servers_org ON servers(org_id);
ALTER TABLE virtual_servers ADD COLUMN org_id TEXT;  -- NULL: platform-wide

CREATE TABLE identity_providers_v2 (
  id          TEXT PRIMARY KEY,              -- idp_…
  org_id      TEXT NOT NULL REFERENCES directory(id),
  issuer      TEXT NOT NULL,                 -- exactly the tokens' `iss`
  config      TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  UNIQUE (issuer, org_id)
);
INSERT INTO identity_providers_v2 (id, org_id, issuer, config, created_at)
  SELECT id, org_id, issuer, config, created_at FROM identity_providers;
DROP TABLE identity_providers;
ALTER TABLE identity_providers_v2 RENAME TO identity_providers;
CREATE INDEX identity_providers_issuer ON identity_providers(issuer);

-- `{issuer}|{sub}` → `{org}|{issuer}|{sub}`: the same person at a shared issuer is a different
-- user in each organization that trusts it.
UPDATE directory SET external_subject = parent_id || '|' || external_subject
  WHERE kind = 'user' AND external_subject IS NOT NULL AND parent_id IS NOT NULL;
