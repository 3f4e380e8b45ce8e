-- Per-server total deadline of one upstream request/response exchange, in milliseconds
-- (headers and body; see docs/upstream-io.md). NULL: the gateway's UPSTREAM_TOTAL_TIMEOUT_MS.
ALTER TABLE servers ADD COLUMN total_timeout_ms INTEGER;
