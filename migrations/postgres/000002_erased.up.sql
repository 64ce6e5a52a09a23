-- The logical clusters whose objects were erased. A write that would create an
-- object in one of them fails, checked inside the write's transaction while it
-- holds the revision lock, so a process still serving a deleted cluster cannot
-- leave a row behind the erase.
CREATE TABLE erased (
    cluster text COLLATE "C" PRIMARY KEY
);
