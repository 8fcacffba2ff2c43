//! REST handlers of job states: list, show, pause, resume. The state
//! machine and its refusals live in [`crate::jobs`]; here only extraction
//! and the mapping of refusals to `409 Conflict`.

use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;

use super::rest::{timed, writer, ApiError, ApiResult, RestState};
use crate::jobs::{Desired, JobError, JobView, Jobs};

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        match &e {
            JobError::NotFound(_) => ApiError(StatusCode::NOT_FOUND, "not_found", e.to_string()),
            JobError::Illegal { .. } => ApiError(StatusCode::CONFLICT, "illegal_transition", e.to_string()),
            JobError::Store(_) => ApiError(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", e.to_string()),
        }
    }
}

fn jobs(s: &RestState) -> Jobs {
    Jobs::new(s.catalog.store().clone())
}

pub(super) async fn list(State(s): State<RestState>) -> ApiResult<Vec<JobView>> {
    let start = Instant::now();
    let r = jobs(&s).list().await;
    timed(&s, "list_jobs", start, r.is_ok());
    Ok(Json(r?))
}

#[derive(Deserialize)]
pub(super) struct ShowParams {
    history: Option<i64>,
}

pub(super) async fn show(State(s): State<RestState>, Path((kind, name)): Path<(String, String)>, Query(q): Query<ShowParams>) -> ApiResult<JobView> {
    let start = Instant::now();
    let r = jobs(&s).show(&format!("{kind}/{name}"), q.history.unwrap_or(50)).await;
    timed(&s, "show_job", start, r.is_ok());
    Ok(Json(r?))
}

#[derive(Deserialize, Default)]
pub(super) struct CommandBody {
    #[serde(default)]
    reason: String,
}

pub(super) async fn pause(State(s): State<RestState>, headers: HeaderMap, Path((kind, name)): Path<(String, String)>, body: Option<Json<CommandBody>>) -> ApiResult<JobView> {
    command(s, headers, format!("{kind}/{name}"), body, Desired::Pause).await
}

pub(super) async fn resume(State(s): State<RestState>, headers: HeaderMap, Path((kind, name)): Path<(String, String)>, body: Option<Json<CommandBody>>) -> ApiResult<JobView> {
    command(s, headers, format!("{kind}/{name}"), body, Desired::Run).await
}

async fn command(s: RestState, headers: HeaderMap, job: String, body: Option<Json<CommandBody>>, desired: Desired) -> ApiResult<JobView> {
    let start = Instant::now();
    let actor = writer(&s, &headers)?;
    let reason = body.map(|b| b.0.reason).unwrap_or_default();
    let jobs = jobs(&s);
    let (r, method) = match desired {
        Desired::Pause => (jobs.pause(&job, &actor, &reason).await, "pause_job"),
        Desired::Run => (jobs.resume(&job, &actor, &reason).await, "resume_job"),
    };
    timed(&s, method, start, r.is_ok());
    Ok(Json(r?))
}
