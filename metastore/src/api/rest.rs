//! The REST API: JSON views of databases, tables (with the Delta log's
//! current version, file count and size), partitions, the audit log and run
//! records; writes behind bearer tokens when tokens are configured; health,
//! readiness and metrics. Handlers only extract and delegate to the
//! catalog; errors map once to HTTP statuses.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use inlet_config::StorageConfig;
use inlet_hms_thrift::hive_metastore as hms;
use serde::Deserialize;
use serde_json::json;

use crate::catalog::{Actor, Catalog, CatalogError};
use crate::metrics::Metrics;
use crate::model::{DatabaseView, DeltaView, TableView};
use crate::store::audit::AuditQuery;

/// Every route, as the OpenAPI document lists it (a test keeps both equal).
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/health"),
    ("get", "/ready"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/api/v1/databases"),
    ("post", "/api/v1/databases"),
    ("get", "/api/v1/databases/{database}"),
    ("delete", "/api/v1/databases/{database}"),
    ("get", "/api/v1/databases/{database}/tables"),
    ("get", "/api/v1/databases/{database}/tables/{table}"),
    ("delete", "/api/v1/databases/{database}/tables/{table}"),
    ("get", "/api/v1/databases/{database}/tables/{table}/partitions"),
    ("get", "/api/v1/audit"),
    ("get", "/api/v1/runs"),
    ("post", "/api/v1/lineage"),
    ("get", "/api/v1/lineage/jobs"),
    ("get", "/api/v1/lineage/datasets"),
    ("get", "/api/v1/lineage/upstream"),
    ("get", "/api/v1/lineage/downstream"),
    ("get", "/api/v1/lineage/runs"),
    ("get", "/api/v1/lineage/sources"),
    ("get", "/api/v1/lineage/latency"),
    ("get", "/api/v1/jobs"),
    ("get", "/api/v1/jobs/{kind}/{name}"),
    ("post", "/api/v1/jobs/{kind}/{name}/pause"),
    ("post", "/api/v1/jobs/{kind}/{name}/resume"),
];

/// The OpenAPI 3.1 document served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

#[derive(Clone)]
pub struct RestState {
    pub catalog: Catalog,
    pub metrics: Metrics,
    /// token -> identity; writes are open when empty.
    pub tokens: Arc<BTreeMap<String, String>>,
    /// Storage settings to read Delta logs with (credentials, endpoint).
    pub storage: Option<Arc<StorageConfig>>,
}

pub fn router(state: RestState) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(|| async { ([("content-type", "application/json")], OPENAPI) }))
        .route("/api/v1/databases", get(list_databases).post(create_database))
        .route("/api/v1/databases/{database}", get(get_database).delete(drop_database))
        .route("/api/v1/databases/{database}/tables", get(list_tables))
        .route("/api/v1/databases/{database}/tables/{table}", get(get_table).delete(drop_table))
        .route("/api/v1/databases/{database}/tables/{table}/partitions", get(list_partitions))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/runs", get(runs))
        .route("/api/v1/lineage", axum::routing::post(super::lineage::receive))
        .route("/api/v1/lineage/jobs", get(super::lineage::jobs))
        .route("/api/v1/lineage/datasets", get(super::lineage::datasets))
        .route("/api/v1/lineage/upstream", get(super::lineage::upstream))
        .route("/api/v1/lineage/downstream", get(super::lineage::downstream))
        .route("/api/v1/lineage/runs", get(super::lineage::runs))
        .route("/api/v1/lineage/sources", get(super::lineage::sources))
        .route("/api/v1/lineage/latency", get(super::lineage::latency))
        .route("/api/v1/jobs", get(super::jobs::list))
        .route("/api/v1/jobs/{kind}/{name}", get(super::jobs::show))
        .route("/api/v1/jobs/{kind}/{name}/pause", axum::routing::post(super::jobs::pause))
        .route("/api/v1/jobs/{kind}/{name}/resume", axum::routing::post(super::jobs::resume))
        .with_state(state)
}

/// An error as the REST API answers it: a status and a JSON body naming the
/// kind of failure and the object.
pub struct ApiError(pub(super) StatusCode, pub(super) &'static str, pub(super) String);

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        let (status, kind) = match &e {
            CatalogError::NoSuchObject(_) => (StatusCode::NOT_FOUND, "not_found"),
            CatalogError::NoSuchLock(_) => (StatusCode::NOT_FOUND, "not_found"),
            CatalogError::AlreadyExists(_) => (StatusCode::CONFLICT, "already_exists"),
            CatalogError::InvalidOperation(_) => (StatusCode::CONFLICT, "invalid_operation"),
            CatalogError::InvalidObject(_) | CatalogError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
            CatalogError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            CatalogError::Storage(_) => (StatusCode::INTERNAL_SERVER_ERROR, "storage"),
            CatalogError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        };
        ApiError(status, kind, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1, "message": self.2 }))).into_response()
    }
}

pub(super) type ApiResult<T> = Result<Json<T>, ApiError>;

/// The identity behind a write, or 401.
pub(super) fn writer(state: &RestState, headers: &HeaderMap) -> Result<Actor, ApiError> {
    if state.tokens.is_empty() {
        return Ok(Actor::rest("anonymous"));
    }
    let token = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    match token.and_then(|t| state.tokens.get(t)) {
        Some(identity) => Ok(Actor::rest(identity)),
        None => Err(ApiError(StatusCode::UNAUTHORIZED, "unauthorized", "writes need `Authorization: Bearer <token>` with a configured token".into())),
    }
}

pub(super) fn timed(state: &RestState, method: &'static str, start: Instant, ok: bool) {
    state.metrics.observe("rest", method, if ok { "ok" } else { "exception" }, start.elapsed());
}

async fn ready(State(s): State<RestState>) -> Response {
    match s.store_ready().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("catalog database unavailable: {e}")).into_response(),
    }
}

impl RestState {
    async fn store_ready(&self) -> Result<(), CatalogError> {
        self.catalog.store().check_schema().await?;
        Ok(())
    }
}

async fn metrics(State(s): State<RestState>) -> impl IntoResponse {
    ([("content-type", "text/plain; version=0.0.4")], s.metrics.render())
}

#[derive(Deserialize)]
struct PatternQuery {
    pattern: Option<String>,
}

async fn list_databases(State(s): State<RestState>, Query(q): Query<PatternQuery>) -> ApiResult<Vec<DatabaseView>> {
    let start = Instant::now();
    let pattern = q.pattern.as_deref().unwrap_or("*");
    let r = async {
        let names = s.catalog.list_databases(Some(pattern)).await?;
        let all = s.catalog.all_databases().await?;
        Ok::<_, CatalogError>(all.iter().filter(|d| d.name.as_ref().is_some_and(|n| names.contains(n))).map(DatabaseView::from).collect())
    }
    .await;
    timed(&s, "list_databases", start, r.is_ok());
    Ok(Json(r?))
}

#[derive(Deserialize)]
struct NewDatabase {
    name: String,
    description: Option<String>,
    location: Option<String>,
    #[serde(default)]
    properties: BTreeMap<String, String>,
}

async fn create_database(State(s): State<RestState>, headers: HeaderMap, Json(body): Json<NewDatabase>) -> Result<(StatusCode, Json<DatabaseView>), ApiError> {
    let start = Instant::now();
    let actor = writer(&s, &headers)?;
    let db = hms::Database {
        name: Some(body.name.clone()),
        description: body.description,
        location_uri: body.location,
        parameters: Some(body.properties),
        owner_name: Some(actor.user.clone()),
        owner_type: Some(hms::PrincipalType::USER),
        ..Default::default()
    };
    let r = async {
        s.catalog.create_database(&actor, db).await?;
        s.catalog.get_database(&body.name).await
    }
    .await;
    timed(&s, "create_database", start, r.is_ok());
    Ok((StatusCode::CREATED, Json(DatabaseView::from(&r?))))
}

async fn get_database(State(s): State<RestState>, Path(database): Path<String>) -> ApiResult<DatabaseView> {
    let start = Instant::now();
    let r = s.catalog.get_database(&database).await;
    timed(&s, "get_database", start, r.is_ok());
    Ok(Json(DatabaseView::from(&r?)))
}

#[derive(Deserialize)]
struct DropQuery {
    #[serde(default)]
    cascade: bool,
    #[serde(default)]
    delete_data: bool,
}

async fn drop_database(State(s): State<RestState>, headers: HeaderMap, Path(database): Path<String>, Query(q): Query<DropQuery>) -> Result<StatusCode, ApiError> {
    let start = Instant::now();
    let actor = writer(&s, &headers)?;
    let r = s.catalog.drop_database(&actor, &database, q.delete_data, q.cascade).await;
    timed(&s, "drop_database", start, r.is_ok());
    r?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct TablesQuery {
    pattern: Option<String>,
    #[serde(rename = "type")]
    table_type: Option<String>,
}

async fn list_tables(State(s): State<RestState>, Path(database): Path<String>, Query(q): Query<TablesQuery>) -> ApiResult<Vec<TableView>> {
    let start = Instant::now();
    let r = async {
        s.catalog.get_database(&database).await?;
        let names = s.catalog.list_tables(&database, q.pattern.as_deref(), q.table_type.as_deref()).await?;
        let tables = s.catalog.get_tables_by_name(&database, &names).await?;
        Ok::<_, CatalogError>(tables.iter().map(TableView::from).collect())
    }
    .await;
    timed(&s, "list_tables", start, r.is_ok());
    Ok(Json(r?))
}

/// The Delta log's state of a table registered with provider `delta`.
async fn delta_view(storage: Option<&StorageConfig>, location: &str) -> Option<DeltaView> {
    let default_storage;
    let storage = match storage {
        Some(s) => s,
        None => {
            default_storage = StorageConfig { warehouse: location.to_string(), s3: None, options: Default::default() };
            &default_storage
        }
    };
    // Hadoop's `file:/path` form is a plain local path to the table crate.
    let local = crate::storage::local_path(location).map(|p| p.display().to_string());
    let loc = inlet_table::storage::Location::parse(local.as_deref().unwrap_or(location), storage).ok()?;
    let table = inlet_table::delta::DeltaTable::open(&loc).await.ok()??;
    let (files, size_bytes, _) = table.file_stats().ok()?;
    Some(DeltaView { version: table.version(), files, size_bytes })
}

async fn get_table(State(s): State<RestState>, Path((database, table)): Path<(String, String)>) -> ApiResult<TableView> {
    let start = Instant::now();
    let r = s.catalog.get_table(&database, &table).await;
    timed(&s, "get_table", start, r.is_ok());
    let t = r?;
    let mut view = TableView::from(&t);
    if view.format.provider.eq_ignore_ascii_case("delta") {
        if let Some(loc) = view.location.clone() {
            view.delta = delta_view(s.storage.as_deref(), &loc).await;
        }
    }
    Ok(Json(view))
}

async fn drop_table(State(s): State<RestState>, headers: HeaderMap, Path((database, table)): Path<(String, String)>, Query(q): Query<DropQuery>) -> Result<StatusCode, ApiError> {
    let start = Instant::now();
    let actor = writer(&s, &headers)?;
    let r = s.catalog.drop_table(&actor, &database, &table, q.delete_data).await;
    timed(&s, "drop_table", start, r.is_ok());
    r?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct PartitionsQuery {
    filter: Option<String>,
    limit: Option<i32>,
}

async fn list_partitions(State(s): State<RestState>, Path((database, table)): Path<(String, String)>, Query(q): Query<PartitionsQuery>) -> ApiResult<Vec<crate::model::PartitionView>> {
    let start = Instant::now();
    let r = s.catalog.partition_views(&database, &table, q.filter.as_deref(), q.limit.unwrap_or(-1)).await;
    timed(&s, "list_partitions", start, r.is_ok());
    Ok(Json(r?))
}

#[derive(Deserialize)]
struct AuditParams {
    object: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    since_ms: Option<i64>,
    until_ms: Option<i64>,
    limit: Option<i64>,
}

async fn audit(State(s): State<RestState>, Query(q): Query<AuditParams>) -> ApiResult<Vec<crate::store::audit::AuditEntry>> {
    let start = Instant::now();
    let query = AuditQuery { object: q.object, actor: q.actor, action: q.action, since_ms: q.since_ms, until_ms: q.until_ms, limit: q.limit.unwrap_or(100) };
    let r = s.catalog.audit(&query).await;
    timed(&s, "audit", start, r.is_ok());
    Ok(Json(r?))
}

#[derive(Deserialize)]
struct RunsParams {
    kind: Option<String>,
    object: Option<String>,
    limit: Option<i64>,
}

async fn runs(State(s): State<RestState>, Query(q): Query<RunsParams>) -> ApiResult<Vec<crate::store::runs::RunRecord>> {
    let start = Instant::now();
    let r = async {
        let mut conn = s.catalog.store().reader().await?;
        Ok::<_, CatalogError>(crate::store::runs::list(&mut conn, q.kind.as_deref(), q.object.as_deref(), q.limit.unwrap_or(100)).await?)
    }
    .await;
    timed(&s, "runs", start, r.is_ok());
    Ok(Json(r?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The OpenAPI document and the router list the same routes.
    #[test]
    fn openapi_document_matches_routes() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        let paths = doc["paths"].as_object().expect("paths");
        let mut documented: Vec<(String, String)> = Vec::new();
        for (path, ops) in paths {
            for (method, _) in ops.as_object().expect("operations") {
                if matches!(method.as_str(), "get" | "post" | "put" | "delete" | "patch") {
                    documented.push((method.clone(), path.clone()));
                }
            }
        }
        documented.sort();
        let mut routed: Vec<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
        routed.sort();
        assert_eq!(documented, routed, "docs and routes drifted apart: update metastore/src/api/openapi.json or ROUTES");
    }
}
