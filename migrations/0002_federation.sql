-- 0002: tool-definition pinning (quarantine until approved) and virtual servers.
-- Documented in docs/storage.md.

-- What a sync does with a tool it has not seen before on an already-registered server.
ALTER TABLE servers ADD COLUMN new_tool_policy TEXT NOT NULL DEFAULT 'approve'
  CHECK (new_tool_policy IN ('approve', 'quarantine'));

-- A tool is served only while its current definition hash equals the approved one.
ALTER TABLE tools ADD COLUMN status TEXT NOT NULL DEFAULT 'active'
  CHECK (status IN ('active', 'quarantined'));
ALTER TABLE tools ADD COLUMN approved_hash TEXT;        -- NULL: never approved
ALTER TABLE tools ADD COLUMN approved_definition TEXT;  -- JSON MCP Tool object, shown beside a changed one
UPDATE tools SET approved_hash = definition_hash;

CREATE TABLE virtual_servers (
  slug        TEXT PRIMARY KEY,                 -- [a-z0-9-]{1,32}, served at /mcp/v/{slug}
  name        TEXT NOT NULL,
  description TEXT,
  tools       TEXT NOT NULL,                    -- JSON array of {server, tool, name?, description?}
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
);

-- One row: bumped whenever what clients may list changes; live streams poll it and send
-- notifications/tools/list_changed.
CREATE TABLE catalog_state (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  generation  INTEGER NOT NULL
);
INSERT INTO catalog_state (id, generation) VALUES (1, 0);
