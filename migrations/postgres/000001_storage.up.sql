-- One shard's storage: the live objects, the log of changes, and the revision counter.
-- Every key column compares byte by byte (COLLATE "C"), the order etcd gives keys, so
-- that a list of a key prefix is one range scan of the primary key.

CREATE TABLE revision (
    id        smallint PRIMARY KEY CHECK (id = 1),
    -- The newest committed revision. Writers lock this row for the length of their
    -- transaction, which makes revision order equal commit order.
    current   bigint NOT NULL,
    -- The log holds every change after this revision; older ones are gone.
    compacted bigint NOT NULL
);

-- An empty store is at revision 1, as an empty etcd is.
INSERT INTO revision (id, current, compacted) VALUES (1, 1, 0);

CREATE TABLE objects (
    key        text COLLATE "C" PRIMARY KEY,
    -- cluster, namespace and name repeat parts of the key so that a logical cluster
    -- can be counted, exported or deleted with one indexed query.
    cluster    text COLLATE "C" NOT NULL,
    namespace  text COLLATE "C" NOT NULL,
    name       text COLLATE "C" NOT NULL,
    revision   bigint NOT NULL,
    -- Unix milliseconds after which the object is deleted; NULL for no TTL.
    expires_at bigint,
    value      bytea NOT NULL
);
CREATE INDEX objects_cluster ON objects (cluster);
CREATE INDEX objects_expires_at ON objects (expires_at) WHERE expires_at IS NOT NULL;

-- The log of changes. It does not repeat the value a change wrote: while that
-- version is current it is the objects row, and once replaced it is the prev_value
-- of the key's next change. So every version is stored once.
CREATE TABLE log (
    revision      bigint PRIMARY KEY,
    key           text COLLATE "C" NOT NULL,
    deleted       boolean NOT NULL,
    -- The revision and value the key had before this change; 0 and NULL when the
    -- change created it. Watchers need the previous object, and a list at an older
    -- revision reads it from the first change after that revision.
    prev_revision bigint NOT NULL,
    prev_value    bytea
);
CREATE INDEX log_key ON log (key, revision);
