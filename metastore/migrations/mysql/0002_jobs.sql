-- Job lifecycle states (ingest pipelines, compaction policies).
-- `jobs` holds one row per job and the operator's intent (`desired`);
-- `job_instances` the state each running process reports for it;
-- `job_transitions` the history, with reasons. Application ids, no foreign
-- keys (TiDB).

CREATE TABLE jobs (
    job_id         VARCHAR(512)  NOT NULL PRIMARY KEY,
    kind           VARCHAR(32)   NOT NULL,
    name           VARCHAR(256)  NOT NULL,
    desired        VARCHAR(16)   NOT NULL,
    desired_reason TEXT          COLLATE utf8mb4_unicode_ci NOT NULL,
    desired_by     VARCHAR(256)  NOT NULL,
    desired_ms     BIGINT        NOT NULL,
    created_ms     BIGINT        NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE job_instances (
    job_id       VARCHAR(512)  NOT NULL,
    instance     VARCHAR(256)  NOT NULL,
    state        VARCHAR(16)   NOT NULL,
    reason       TEXT          COLLATE utf8mb4_unicode_ci NOT NULL,
    since_ms     BIGINT        NOT NULL,
    heartbeat_ms BIGINT        NOT NULL,
    PRIMARY KEY (job_id, instance)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE job_transitions (
    id         BIGINT        NOT NULL PRIMARY KEY,
    job_id     VARCHAR(512)  NOT NULL,
    instance   VARCHAR(256)  NOT NULL,
    from_state VARCHAR(16)   NOT NULL,
    to_state   VARCHAR(16)   NOT NULL,
    reason     TEXT          COLLATE utf8mb4_unicode_ci NOT NULL,
    at_ms      BIGINT        NOT NULL,
    KEY job_transitions_by_job (job_id, at_ms)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
