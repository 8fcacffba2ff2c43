-- Lineage store, MySQL / MariaDB / TiDB flavour (see the SQLite file for the
-- model). Ids of jobs and datasets are application-computed 63-bit hashes of
-- namespace and name: idempotent upserts, no AUTO_INCREMENT, no foreign keys.
-- Names are free text (URIs, paths), so they are not unique-indexed: the
-- hashed id is the key. Text columns use a non-binary collation so that they
-- arrive as text on the wire.

CREATE TABLE lineage_jobs (
    job_id          BIGINT        NOT NULL PRIMARY KEY,
    namespace       VARCHAR(1024) COLLATE utf8mb4_unicode_ci NOT NULL,
    name            VARCHAR(1024) COLLATE utf8mb4_unicode_ci NOT NULL,
    processing_type VARCHAR(32)   COLLATE utf8mb4_unicode_ci,
    integration     VARCHAR(64)   COLLATE utf8mb4_unicode_ci,
    job_type        VARCHAR(64)   COLLATE utf8mb4_unicode_ci,
    latest_run_id   VARCHAR(64)   COLLATE utf8mb4_unicode_ci,
    created_ms      BIGINT        NOT NULL,
    updated_ms      BIGINT        NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE lineage_datasets (
    dataset_id      BIGINT        NOT NULL PRIMARY KEY,
    namespace       VARCHAR(1024) COLLATE utf8mb4_unicode_ci NOT NULL,
    name            VARCHAR(4000) COLLATE utf8mb4_unicode_ci NOT NULL,
    current_version BIGINT,
    newest_event_ms BIGINT,
    created_ms      BIGINT        NOT NULL,
    updated_ms      BIGINT        NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE lineage_symlinks (
    dataset_id BIGINT      NOT NULL,
    alias_id   BIGINT      NOT NULL,
    link_type  VARCHAR(64) COLLATE utf8mb4_unicode_ci NOT NULL,
    updated_ms BIGINT      NOT NULL,
    PRIMARY KEY (dataset_id, alias_id),
    KEY lineage_symlinks_by_alias (alias_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE lineage_runs (
    run_id        VARCHAR(64) NOT NULL PRIMARY KEY,
    job_id        BIGINT      NOT NULL,
    state         VARCHAR(16) COLLATE utf8mb4_unicode_ci NOT NULL,
    started_ms    BIGINT,
    ended_ms      BIGINT,
    state_ms      BIGINT      NOT NULL,
    updated_ms    BIGINT      NOT NULL,
    events        BIGINT      NOT NULL,
    error_message MEDIUMTEXT  COLLATE utf8mb4_unicode_ci,
    facets_json   MEDIUMTEXT  COLLATE utf8mb4_unicode_ci,
    KEY lineage_runs_by_job (job_id, state_ms),
    KEY lineage_runs_by_end (ended_ms)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE lineage_edges (
    job_id        BIGINT      NOT NULL,
    dataset_id    BIGINT      NOT NULL,
    direction     VARCHAR(8)  COLLATE utf8mb4_unicode_ci NOT NULL,
    first_seen_ms BIGINT      NOT NULL,
    last_seen_ms  BIGINT      NOT NULL,
    last_run_id   VARCHAR(64) COLLATE utf8mb4_unicode_ci NOT NULL,
    PRIMARY KEY (job_id, dataset_id, direction),
    KEY lineage_edges_by_dataset (dataset_id, direction)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE lineage_versions (
    dataset_id      BIGINT      NOT NULL,
    version         BIGINT      NOT NULL,
    run_id          VARCHAR(64) NOT NULL,
    role            VARCHAR(8)  NOT NULL,
    job_id          BIGINT      NOT NULL,
    committed_ms    BIGINT,
    stored_ms       BIGINT      NOT NULL,
    oldest_event_ms BIGINT,
    newest_event_ms BIGINT,
    oldest_kafka_ms BIGINT,
    newest_kafka_ms BIGINT,
    row_count       BIGINT,
    size_bytes      BIGINT,
    file_count      BIGINT,
    PRIMARY KEY (dataset_id, version, run_id, role),
    KEY lineage_versions_by_run (run_id),
    KEY lineage_versions_by_stored (stored_ms)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
