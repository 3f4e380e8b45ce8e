-- 0001: the registry (servers and their tool catalogs) and gateway API keys.
-- Documented in docs/storage.md.

CREATE TABLE servers (
  slug              TEXT PRIMARY KEY,            -- [a-z0-9-]{1,32}
  name              TEXT NOT NULL,
  url               TEXT NOT NULL,               -- upstream streamable HTTP endpoint
  description       TEXT,
  owner             TEXT,
  status            TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
  era               TEXT CHECK (era IN ('legacy', 'modern')),  -- detected at sync
  protocol_version  TEXT,                        -- negotiated with the upstream at sync
  timeout_ms        INTEGER,                     -- NULL: gateway default
  server_info       TEXT,                        -- JSON: the upstream's Implementation
  capabilities      TEXT,                        -- JSON: the upstream's ServerCapabilities
  instructions      TEXT,
  last_synced_at    TEXT,
  last_sync_error   TEXT,
  created_at        TEXT NOT NULL,
  updated_at        TEXT NOT NULL
);

CREATE TABLE tools (
  server_slug       TEXT NOT NULL REFERENCES servers(slug) ON DELETE CASCADE,
  name              TEXT NOT NULL,
  title             TEXT,
  description       TEXT,
  input_schema      TEXT NOT NULL,               -- JSON Schema
  output_schema     TEXT,                        -- JSON Schema
  annotations       TEXT,                        -- JSON
  definition_hash   TEXT NOT NULL,               -- hex SHA-256 of the canonical definition
  discovered_at     TEXT NOT NULL,
  PRIMARY KEY (server_slug, name)
);

CREATE TABLE api_keys (
  id                TEXT PRIMARY KEY,            -- key_<16 hex>
  name              TEXT NOT NULL,
  prefix            TEXT NOT NULL,               -- first 12 characters, for recognition
  key_hash          TEXT NOT NULL UNIQUE,        -- hex SHA-256 of the whole key; the key itself is never stored
  created_at        TEXT NOT NULL,
  last_used_at      TEXT,
  revoked_at        TEXT
);
