//! REST routes of the lineage store (`/api/v1/lineage/...`): an OpenLineage
//! receiver (`POST /api/v1/lineage`, the same path as Marquez, so any
//! OpenLineage client can send here) and the graph, runs, sources and
//! latency queries. Handlers extract and delegate to
//! [`crate::store::lineage::LineageDb`].

use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use inlet_lineage::naming::DEFAULT_JOB_NAMESPACE;
use inlet_lineage::query::*;
use inlet_lineage::RunEvent;
use serde::Deserialize;

use super::rest::{timed, writer, ApiError, ApiResult, RestState};
use crate::store::lineage::LineageDb;

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::NotFound(m) => ApiError(StatusCode::NOT_FOUND, "not_found", m),
            QueryError::Invalid(m) => ApiError(StatusCode::BAD_REQUEST, "invalid", m),
            QueryError::Unavailable(m) => ApiError(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", m),
        }
    }
}

fn db(s: &RestState) -> LineageDb {
    LineageDb::new(s.catalog.store().clone())
}

/// Receives one OpenLineage run event (writes need a token when tokens are
/// configured).
pub async fn receive(State(s): State<RestState>, headers: HeaderMap, body: axum::body::Bytes) -> Result<StatusCode, ApiError> {
    let start = Instant::now();
    writer(&s, &headers)?;
    let event: RunEvent = serde_json::from_slice(&body).map_err(|e| ApiError(StatusCode::BAD_REQUEST, "invalid", format!("not an OpenLineage run event: {e}")))?;
    let r = db(&s).record_event(&event).await;
    timed(&s, "lineage_receive", start, r.is_ok());
    let recorded = r.map_err(|e| ApiError(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", e.to_string()))?;
    // The last stage of the latency path, for commits that reach the
    // catalog through this receiver rather than the catalog transport.
    let m = &inlet_lineage::metrics::METRICS;
    for (table, secs) in &recorded.commit_to_store_seconds {
        m.latency_seconds.with_label_values(&[table, "commit_to_catalog"]).observe(secs.max(0.0));
    }
    for (table, secs) in &recorded.event_to_store_seconds {
        m.latency_seconds.with_label_values(&[table, "event_to_catalog"]).observe(secs.max(0.0));
    }
    Ok(StatusCode::CREATED)
}

pub async fn jobs(State(s): State<RestState>) -> ApiResult<Vec<JobView>> {
    let start = Instant::now();
    let r = db(&s).jobs().await;
    timed(&s, "lineage_jobs", start, r.is_ok());
    Ok(Json(r?))
}

pub async fn datasets(State(s): State<RestState>) -> ApiResult<Vec<DatasetView>> {
    let start = Instant::now();
    let r = db(&s).datasets().await;
    timed(&s, "lineage_datasets", start, r.is_ok());
    Ok(Json(r?))
}

#[derive(Deserialize)]
pub struct GraphParams {
    #[serde(flatten)]
    node: NodeQuery,
    depth: Option<u32>,
    limit: Option<u32>,
    commits: Option<u32>,
}

async fn graph(s: &RestState, p: &GraphParams, direction: Direction) -> ApiResult<Graph> {
    let start = Instant::now();
    let node = NodeRef::from_query(&p.node, DEFAULT_JOB_NAMESPACE)?;
    let r = db(s).graph(&node, direction, p.depth.unwrap_or(5)).await;
    timed(s, if direction == Direction::Upstream { "lineage_upstream" } else { "lineage_downstream" }, start, r.is_ok());
    Ok(Json(r?))
}

pub async fn upstream(State(s): State<RestState>, Query(p): Query<GraphParams>) -> ApiResult<Graph> {
    graph(&s, &p, Direction::Upstream).await
}

pub async fn downstream(State(s): State<RestState>, Query(p): Query<GraphParams>) -> ApiResult<Graph> {
    graph(&s, &p, Direction::Downstream).await
}

pub async fn runs(State(s): State<RestState>, Query(p): Query<GraphParams>) -> ApiResult<Vec<RunView>> {
    let start = Instant::now();
    let node = NodeRef::from_query(&p.node, DEFAULT_JOB_NAMESPACE)?;
    let r = db(&s).runs(&node, p.limit.unwrap_or(20)).await;
    timed(&s, "lineage_runs", start, r.is_ok());
    Ok(Json(r?))
}

pub async fn sources(State(s): State<RestState>, Query(p): Query<GraphParams>) -> ApiResult<Sources> {
    let start = Instant::now();
    let node = NodeRef::from_query(&p.node, DEFAULT_JOB_NAMESPACE)?;
    let r = db(&s).sources(&node, p.depth.unwrap_or(10)).await;
    timed(&s, "lineage_sources", start, r.is_ok());
    Ok(Json(r?))
}

pub async fn latency(State(s): State<RestState>, Query(p): Query<GraphParams>) -> ApiResult<LatencyView> {
    let start = Instant::now();
    let node = NodeRef::from_query(&p.node, DEFAULT_JOB_NAMESPACE)?;
    let r = db(&s).latency(&node, p.commits.unwrap_or(1000)).await;
    timed(&s, "lineage_latency", start, r.is_ok());
    Ok(Json(r?))
}
