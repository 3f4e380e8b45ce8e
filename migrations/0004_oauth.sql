-- 0004: the MCP authorization flow. Clients registered dynamically, pending authorizations
-- (between /oauth/authorize and the IdP's callback) and issued codes and tokens — stored in D1,
-- not KV, because single use and replay detection need strongly consistent reads.
-- Documented in docs/storage.md.

CREATE TABLE oauth_clients (
  client_id   TEXT PRIMARY KEY,             -- client_…
  metadata    TEXT NOT NULL,                -- JSON: client_name, redirect_uris
  created_at  TEXT NOT NULL
);

CREATE TABLE oauth_pending (
  id             TEXT PRIMARY KEY,          -- the `state` sent to the IdP (256 random bits)
  data           TEXT NOT NULL,             -- JSON: client, redirect, PKCE challenge, resource, upstream verifier, nonce
  expires_at_ms  INTEGER NOT NULL           -- 10 minutes
);

CREATE TABLE oauth_tokens (
  hash           TEXT PRIMARY KEY,          -- hex SHA-256 of the code or token; never the token
  kind           TEXT NOT NULL CHECK (kind IN ('code', 'access', 'refresh')),
  family         TEXT NOT NULL,             -- one authorization; replay revokes the family
  data           TEXT NOT NULL,             -- JSON OAuthToken
  expires_at_ms  INTEGER NOT NULL,          -- code 60 s, access 1 h, refresh 30 days
  consumed_at_ms INTEGER,                   -- codes and refresh tokens are single use
  revoked        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX oauth_tokens_family ON oauth_tokens(family);
