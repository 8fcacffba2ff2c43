-- Lineage store (OpenLineage events of inlet's jobs and of other producers
-- posting to /api/v1/lineage). Ids of jobs and datasets are 63-bit FNV-1a
-- hashes of their namespace and name computed by the application, so that
-- recording an event is a set of idempotent upserts with no lookups and no
-- AUTO_INCREMENT; no foreign keys.

CREATE TABLE lineage_jobs (
    job_id          INTEGER PRIMARY KEY,
    namespace       TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    processing_type TEXT,
    integration     TEXT,
    job_type        TEXT,
    latest_run_id   TEXT,
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL
);

CREATE TABLE lineage_datasets (
    dataset_id      INTEGER PRIMARY KEY,
    namespace       TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    current_version INTEGER,
    newest_event_ms INTEGER,
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL
);

-- Other names of a dataset (its catalog table): alias -> physical dataset.
CREATE TABLE lineage_symlinks (
    dataset_id INTEGER NOT NULL,
    alias_id   INTEGER NOT NULL,
    link_type  TEXT    NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (dataset_id, alias_id)
);
CREATE INDEX lineage_symlinks_by_alias ON lineage_symlinks (alias_id);

CREATE TABLE lineage_runs (
    run_id        TEXT    PRIMARY KEY,
    job_id        INTEGER NOT NULL,
    state         TEXT    NOT NULL,
    started_ms    INTEGER,
    ended_ms      INTEGER,
    state_ms      INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL,
    events        INTEGER NOT NULL,
    error_message TEXT,
    facets_json   TEXT
);
CREATE INDEX lineage_runs_by_job ON lineage_runs (job_id, state_ms);
CREATE INDEX lineage_runs_by_end ON lineage_runs (ended_ms);

-- Data flow: a job reads (`input`) or writes (`output`) a dataset.
CREATE TABLE lineage_edges (
    job_id        INTEGER NOT NULL,
    dataset_id    INTEGER NOT NULL,
    direction     TEXT    NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    last_run_id   TEXT    NOT NULL,
    PRIMARY KEY (job_id, dataset_id, direction)
);
CREATE INDEX lineage_edges_by_dataset ON lineage_edges (dataset_id, direction);

-- Dataset versions runs read and wrote, with the times of the latency path
-- (event time -> Kafka -> commit -> stored here) for inlet's commits.
CREATE TABLE lineage_versions (
    dataset_id      INTEGER NOT NULL,
    version         INTEGER NOT NULL,
    run_id          TEXT    NOT NULL,
    role            TEXT    NOT NULL,
    job_id          INTEGER NOT NULL,
    committed_ms    INTEGER,
    stored_ms       INTEGER NOT NULL,
    oldest_event_ms INTEGER,
    newest_event_ms INTEGER,
    oldest_kafka_ms INTEGER,
    newest_kafka_ms INTEGER,
    row_count       INTEGER,
    size_bytes      INTEGER,
    file_count      INTEGER,
    PRIMARY KEY (dataset_id, version, run_id, role)
);
CREATE INDEX lineage_versions_by_run ON lineage_versions (run_id);
CREATE INDEX lineage_versions_by_stored ON lineage_versions (stored_ms);
