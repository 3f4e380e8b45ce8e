-- The version of everything an isolate keeps in its snapshot (src/snapshot/): every write
-- through the store bumps it; isolates compare it with the version their snapshot was built
-- from and drop the snapshot when it moved (docs/storage.md, "Isolate snapshot").
CREATE TABLE snapshot_version (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  version INTEGER NOT NULL
);
INSERT INTO snapshot_version (id, version) VALUES (1, 0);
