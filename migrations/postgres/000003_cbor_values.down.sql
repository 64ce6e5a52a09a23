-- Values written as CBOR stay CBOR: only a warren that reads them can serve the
-- shard, whatever its schema version says.
SELECT 1;
