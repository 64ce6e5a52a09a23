-- The logical clusters whose objects were erased. A write that would create an
-- object in one of them fails, checked inside the write's transaction, so a
-- request still in flight for a deleted cluster cannot leave a row behind the
-- erase.
CREATE TABLE erased (
    cluster TEXT PRIMARY KEY
) WITHOUT ROWID;
