-- A counter bumped by every transaction that adds, drops or renames a
-- table's partitions: metastores cache a table's partition values and
-- check this one number instead of re-reading them on every filter call.
ALTER TABLE tbls ADD COLUMN part_gen BIGINT NOT NULL DEFAULT 0;
