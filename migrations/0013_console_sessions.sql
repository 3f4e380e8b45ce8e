-- 0013: web console sessions (docs/console.md, docs/storage.md). Only the SHA-256 of a session
-- id is stored; the id itself lives in the browser's `__Host-mcpgw_console` cookie. A session
-- ends at `expires_at_ms` (8 h after sign-in) or after 1 h without a request (`last_seen_ms`).
CREATE TABLE console_sessions (
  hash TEXT PRIMARY KEY,
  principal_id TEXT NOT NULL,
  via TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  last_seen_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at_ms);
