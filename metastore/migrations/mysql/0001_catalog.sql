-- inlet catalog schema, MySQL / MariaDB / TiDB flavour.
-- JSON text columns use a non-binary collation: with a `_bin` collation MySQL
-- reports TEXT as BLOB on the wire, and nothing compares them anyway.
-- Made for TiDB too: ids come from the application (TiDB's AUTO_INCREMENT is
-- not monotonic across servers), no foreign keys or cascades (children are
-- deleted explicitly, in batches), binary collation with identifiers stored
-- lower-cased. Objects are compact-protocol Thrift blobs (`object`); the
-- columns beside them are the ones queries filter on.

CREATE TABLE dbs (
    db_id      BIGINT        NOT NULL PRIMARY KEY,
    name       VARCHAR(128)  NOT NULL,
    location   VARCHAR(4000),
    owner      VARCHAR(128),
    created_at BIGINT        NOT NULL,
    object     LONGBLOB      NOT NULL,
    UNIQUE KEY dbs_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE tbls (
    tbl_id     BIGINT        NOT NULL PRIMARY KEY,
    db_id      BIGINT        NOT NULL,
    name       VARCHAR(256)  NOT NULL,
    table_type VARCHAR(64)   NOT NULL,
    provider   VARCHAR(64),
    location   VARCHAR(4000),
    owner      VARCHAR(128),
    created_at BIGINT        NOT NULL,
    updated_at BIGINT        NOT NULL,
    object     LONGBLOB      NOT NULL,
    UNIQUE KEY tbls_name (db_id, name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE partitions (
    part_id    BIGINT        NOT NULL PRIMARY KEY,
    tbl_id     BIGINT        NOT NULL,
    part_name  VARCHAR(767)  NOT NULL,
    vals       MEDIUMTEXT    COLLATE utf8mb4_unicode_ci NOT NULL,
    location   VARCHAR(4000),
    created_at BIGINT        NOT NULL,
    object     LONGBLOB      NOT NULL,
    UNIQUE KEY partitions_name (tbl_id, part_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE column_stats (
    tbl_id      BIGINT        NOT NULL,
    part_id     BIGINT        NOT NULL,
    column_name VARCHAR(512)  NOT NULL,
    updated_at  BIGINT        NOT NULL,
    object      LONGBLOB      NOT NULL,
    PRIMARY KEY (tbl_id, part_id, column_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE functions (
    func_id    BIGINT        NOT NULL PRIMARY KEY,
    db_id      BIGINT        NOT NULL,
    name       VARCHAR(256)  NOT NULL,
    created_at BIGINT        NOT NULL,
    object     LONGBLOB      NOT NULL,
    UNIQUE KEY functions_name (db_id, name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE locks (
    lock_id      BIGINT        NOT NULL PRIMARY KEY,
    db_name      VARCHAR(128)  NOT NULL,
    tbl_name     VARCHAR(256),
    part_name    VARCHAR(767),
    lock_type    VARCHAR(32)   NOT NULL,
    state        VARCHAR(32)   NOT NULL,
    txn_id       BIGINT        NOT NULL,
    user_name    VARCHAR(256)  NOT NULL,
    host_name    VARCHAR(256)  NOT NULL,
    acquired_at  BIGINT,
    heartbeat_at BIGINT        NOT NULL,
    KEY locks_by_table (db_name, tbl_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE audit_log (
    audit_id    BIGINT        NOT NULL PRIMARY KEY,
    at_ms       BIGINT        NOT NULL,
    actor       VARCHAR(256)  NOT NULL,
    via         VARCHAR(16)   NOT NULL,
    action      VARCHAR(64)   NOT NULL,
    object_type VARCHAR(32)   NOT NULL,
    object_name VARCHAR(1024) NOT NULL,
    before_json LONGTEXT      COLLATE utf8mb4_unicode_ci,
    after_json  LONGTEXT      COLLATE utf8mb4_unicode_ci,
    KEY audit_by_time (at_ms),
    KEY audit_by_object (object_name(255))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE leases (
    name          VARCHAR(512)  NOT NULL PRIMARY KEY,
    owner         VARCHAR(256)  NOT NULL,
    version       BIGINT        NOT NULL,
    expires_at_ms BIGINT        NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE runs (
    run_id      VARCHAR(64)   NOT NULL PRIMARY KEY,
    kind        VARCHAR(32)   NOT NULL,
    object_name VARCHAR(512)  NOT NULL,
    started_ms  BIGINT        NOT NULL,
    finished_ms BIGINT,
    outcome     VARCHAR(32)   NOT NULL,
    detail_json LONGTEXT      COLLATE utf8mb4_unicode_ci NOT NULL,
    KEY runs_by_object (object_name, started_ms)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
