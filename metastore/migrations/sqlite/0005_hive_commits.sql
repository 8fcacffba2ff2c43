-- The commit log of `format: hive` tables (docs/hive-format.md). A Hive
-- table has no transaction log in storage, so its progress and the files
-- each commit makes visible are kept here, written in one transaction.
-- `table_key` is a SHA-256 of the table's location: progress belongs to
-- the data, not to a catalog name (a table can be renamed or re-registered).

CREATE TABLE hive_tables (
    table_key  TEXT    PRIMARY KEY,
    location   TEXT    NOT NULL,
    seq        INTEGER NOT NULL
);

CREATE TABLE hive_progress (
    table_key  TEXT    NOT NULL,
    app_id     TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (table_key, app_id)
);

CREATE TABLE hive_commits (
    table_key    TEXT    NOT NULL,
    seq          INTEGER NOT NULL,
    commit_id    TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    files_json   TEXT    NOT NULL,
    num_rows     INTEGER NOT NULL,
    num_bytes    INTEGER NOT NULL,
    created_ms   INTEGER NOT NULL,
    published_ms INTEGER,
    PRIMARY KEY (table_key, seq)
);
CREATE INDEX hive_commits_by_state ON hive_commits (table_key, state);

-- Per partition: its directory (relative to the table; compaction moves
-- it), what committed files hold, the newest commit that touched it
-- (compaction's fence) and when it was closed (partition commit).
CREATE TABLE hive_partitions (
    table_key   TEXT    NOT NULL,
    part_name   TEXT    NOT NULL,
    location    TEXT    NOT NULL,
    num_files   INTEGER NOT NULL,
    num_rows    INTEGER NOT NULL,
    total_size  INTEGER NOT NULL,
    commit_seq  INTEGER NOT NULL,
    closed_ms   INTEGER,
    closed_seq  INTEGER,
    PRIMARY KEY (table_key, part_name)
);

-- Files replaced by compaction, deleted once no query can still read them.
CREATE TABLE hive_pending_deletes (
    table_key  TEXT    NOT NULL,
    path_hash  TEXT    NOT NULL,
    path       TEXT    NOT NULL,
    due_ms     INTEGER NOT NULL,
    PRIMARY KEY (table_key, path_hash)
);
CREATE INDEX hive_pending_deletes_by_due ON hive_pending_deletes (due_ms);
