-- Values of tenancy.kcp.io and core.kcp.io objects may be CBOR from this
-- version on. Nothing in the tables changes: the version is a mark that a
-- warren whose migrations end before it refuses, as it could not read them.
SELECT 1;
