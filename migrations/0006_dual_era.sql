-- A modern upstream that also accepts a legacy revision (server/discover lists it among
-- supportedVersions): legacy clients are then served in the legacy era end to end, so
-- server→client requests and resource subscriptions keep working for them. NULL: modern only,
-- or a legacy upstream (whose revision is protocol_version).
ALTER TABLE servers ADD COLUMN legacy_version TEXT;
