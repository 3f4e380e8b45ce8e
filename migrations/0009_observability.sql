-- 0009: observability (docs/observability.md). The audit trail: every event (one per MCP request,
-- one per admin write), hash-chained per organization; the head of each chain; and where
-- argument capture is set (per organization, per server).

CREATE TABLE audit_events (
  org_id        TEXT NOT NULL,            -- the chain: an org id, or '' for platform-wide events
  seq           INTEGER NOT NULL,         -- position in the chain, from 1, no gaps
  id            TEXT NOT NULL UNIQUE,     -- the event id (a queue redelivery is not stored twice)
  time_ms       INTEGER NOT NULL,         -- when the request arrived
  kind          TEXT NOT NULL,            -- 'mcp' | 'admin'
  principal_id  TEXT NOT NULL,            -- '' when unauthenticated
  team_ids      TEXT NOT NULL,            -- JSON array of the principal's teams at the time
  workspace_ids TEXT NOT NULL,            -- JSON array
  server        TEXT,                     -- slug
  method        TEXT,
  tool          TEXT,                     -- tool, prompt or resource name
  outcome       TEXT NOT NULL,            -- ok | tool_error | rpc_error | denied | upstream_error | timeout | cancelled
  latency_ms    REAL NOT NULL,
  trace_id      TEXT,
  body          TEXT NOT NULL,            -- the whole event as JSON, exactly as hashed
  prev_hash     TEXT NOT NULL,            -- hash of the previous record of the chain (or of the anchor)
  hash          TEXT NOT NULL,            -- hex SHA-256 over (prev_hash, seq, org_id, body): store/audit.rs link_hash
  PRIMARY KEY (org_id, seq)
);
CREATE INDEX audit_events_time ON audit_events(org_id, time_ms);
CREATE INDEX audit_events_server ON audit_events(org_id, server, time_ms);
CREATE INDEX audit_events_trace ON audit_events(trace_id);

-- The last record of each chain; after retention removes old records, `anchor_*` name the
-- newest removed one, so the oldest kept record still links to something verifiable.
CREATE TABLE audit_heads (
  org_id        TEXT PRIMARY KEY,
  seq           INTEGER NOT NULL,
  hash          TEXT NOT NULL,
  anchor_seq    INTEGER NOT NULL DEFAULT 0,
  anchor_hash   TEXT NOT NULL DEFAULT ''
);

-- Argument capture ('none' | 'keys' | 'full'; NULL = inherit: server → org → 'keys').
ALTER TABLE servers ADD COLUMN capture TEXT CHECK (capture IN ('none', 'keys', 'full'));
CREATE TABLE org_settings (
  org_id   TEXT PRIMARY KEY REFERENCES directory(id) ON DELETE CASCADE,
  capture  TEXT CHECK (capture IN ('none', 'keys', 'full'))
);
