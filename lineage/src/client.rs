//! [`LineageQuery`] over the metastore's REST API (`/api/v1/lineage/...`).

use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::query::*;

pub struct RestClient {
    base: String,
    client: reqwest::Client,
}

impl RestClient {
    /// `base` is the metastore's REST address, e.g. `http://metastore:8080`.
    pub fn new(base: &str) -> Result<RestClient, QueryError> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().map_err(|e| QueryError::Unavailable(e.to_string()))?;
        Ok(RestClient { base: base.trim_end_matches('/').to_string(), client })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<T, QueryError> {
        let url = format!("{}{path}", self.base);
        let resp = self.client.get(&url).query(query).send().await.map_err(|e| QueryError::Unavailable(format!("{url}: {e}")))?;
        let status = resp.status();
        if status.is_success() {
            return resp.json().await.map_err(|e| QueryError::Unavailable(format!("{url}: unexpected answer: {e}")));
        }
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        let msg = body.get("message").and_then(|m| m.as_str()).map(str::to_string).unwrap_or_else(|| status.to_string());
        Err(match status.as_u16() {
            404 => QueryError::NotFound(msg),
            400 => QueryError::Invalid(msg),
            _ => QueryError::Unavailable(format!("{url}: {msg}")),
        })
    }
}

#[async_trait::async_trait]
impl LineageQuery for RestClient {
    async fn jobs(&self) -> Result<Vec<JobView>, QueryError> {
        self.get("/api/v1/lineage/jobs", &[]).await
    }

    async fn datasets(&self) -> Result<Vec<DatasetView>, QueryError> {
        self.get("/api/v1/lineage/datasets", &[]).await
    }

    async fn graph(&self, start: &NodeRef, direction: Direction, depth: u32) -> Result<Graph, QueryError> {
        let mut q = start.to_query();
        q.push(("depth", depth.to_string()));
        let path = match direction {
            Direction::Upstream => "/api/v1/lineage/upstream",
            Direction::Downstream => "/api/v1/lineage/downstream",
        };
        self.get(path, &q).await
    }

    async fn runs(&self, job: &NodeRef, limit: u32) -> Result<Vec<RunView>, QueryError> {
        let mut q = job.to_query();
        q.push(("limit", limit.to_string()));
        self.get("/api/v1/lineage/runs", &q).await
    }

    async fn sources(&self, table: &NodeRef, depth: u32) -> Result<Sources, QueryError> {
        let mut q = table.to_query();
        q.push(("depth", depth.to_string()));
        self.get("/api/v1/lineage/sources", &q).await
    }

    async fn latency(&self, table: &NodeRef, commits: u32) -> Result<LatencyView, QueryError> {
        let mut q = table.to_query();
        q.push(("commits", commits.to_string()));
        self.get("/api/v1/lineage/latency", &q).await
    }
}
