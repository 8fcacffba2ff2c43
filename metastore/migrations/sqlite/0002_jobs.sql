-- Job lifecycle states (ingest pipelines, compaction policies).
-- `jobs` holds one row per job and the operator's intent (`desired`);
-- `job_instances` the state each running process reports for it;
-- `job_transitions` the history, with reasons.

CREATE TABLE jobs (
    job_id         TEXT    PRIMARY KEY,
    kind           TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    desired        TEXT    NOT NULL,
    desired_reason TEXT    NOT NULL,
    desired_by     TEXT    NOT NULL,
    desired_ms     INTEGER NOT NULL,
    created_ms     INTEGER NOT NULL
);

CREATE TABLE job_instances (
    job_id       TEXT    NOT NULL,
    instance     TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    since_ms     INTEGER NOT NULL,
    heartbeat_ms INTEGER NOT NULL,
    PRIMARY KEY (job_id, instance)
);

CREATE TABLE job_transitions (
    id         INTEGER PRIMARY KEY,
    job_id     TEXT    NOT NULL,
    instance   TEXT    NOT NULL,
    from_state TEXT    NOT NULL,
    to_state   TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    at_ms      INTEGER NOT NULL
);
CREATE INDEX job_transitions_by_job ON job_transitions (job_id, at_ms);
