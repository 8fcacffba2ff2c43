-- The commit log of `format: hive` tables (docs/hive-format.md). A Hive
-- table has no transaction log in storage, so its progress and the files
-- each commit makes visible are kept here, written in one transaction.
-- `table_key` is a SHA-256 of the table's location (locations are too long
-- for an InnoDB key): progress belongs to the data, not to a catalog name.

CREATE TABLE hive_tables (
    table_key  CHAR(64)      NOT NULL PRIMARY KEY,
    location   TEXT          NOT NULL,
    seq        BIGINT        NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE hive_progress (
    table_key  CHAR(64)      NOT NULL,
    app_id     VARCHAR(512)  NOT NULL,
    version    BIGINT        NOT NULL,
    updated_ms BIGINT        NOT NULL,
    PRIMARY KEY (table_key, app_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE hive_commits (
    table_key    CHAR(64)     NOT NULL,
    seq          BIGINT       NOT NULL,
    commit_id    VARCHAR(128) NOT NULL,
    state        VARCHAR(16)  NOT NULL,
    files_json   LONGTEXT     NOT NULL,
    num_rows     BIGINT       NOT NULL,
    num_bytes    BIGINT       NOT NULL,
    created_ms   BIGINT       NOT NULL,
    published_ms BIGINT       NULL,
    PRIMARY KEY (table_key, seq),
    KEY hive_commits_by_state (table_key, state)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE hive_partitions (
    table_key   CHAR(64)      NOT NULL,
    part_name   VARCHAR(700)  NOT NULL,
    location    TEXT          NOT NULL,
    num_files   BIGINT        NOT NULL,
    num_rows    BIGINT        NOT NULL,
    total_size  BIGINT        NOT NULL,
    commit_seq  BIGINT        NOT NULL,
    closed_ms   BIGINT        NULL,
    closed_seq  BIGINT        NULL,
    PRIMARY KEY (table_key, part_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE hive_pending_deletes (
    table_key  CHAR(64)      NOT NULL,
    path_hash  CHAR(64)      NOT NULL,
    path       TEXT          NOT NULL,
    due_ms     BIGINT        NOT NULL,
    PRIMARY KEY (table_key, path_hash),
    KEY hive_pending_deletes_by_due (due_ms)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
