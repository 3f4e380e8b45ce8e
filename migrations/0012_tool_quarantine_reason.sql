-- 0012: why a quarantined tool is held (docs/storage.md, docs/policies.md *Tool poisoning*):
-- a suspected tool poisoning found by the scan at sync (`tool poisoning: description: …`), a
-- definition changed since it was approved, or a new tool awaiting approval. NULL for an active
-- tool; approving a tool clears it.
ALTER TABLE tools ADD COLUMN quarantine_reason TEXT;
