//! POST to an OpenLineage receiver (Marquez's `/api/v1/lineage`, the
//! metastore's own, or any other), with a per-attempt timeout, retries with
//! exponential backoff and jitter, and an optional bearer token.

use std::time::Duration;

use reqwest::StatusCode;
use tracing::debug;

use crate::emitter::{Transport, TransportError};
use crate::metrics::METRICS;
use crate::model::RunEvent;

pub struct HttpTransport {
    client: reqwest::Client,
    url: String,
    token: Option<String>,
    retries: u32,
    backoff_start: Duration,
    backoff_max: Duration,
}

impl HttpTransport {
    pub fn new(url: &str, token: Option<String>, timeout: Duration, retries: u32) -> Result<HttpTransport, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("inlet/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(HttpTransport { client, url: url.to_string(), token, retries, backoff_start: Duration::from_millis(500), backoff_max: Duration::from_secs(30) })
    }

    /// Shorter backoff (tests).
    pub fn with_backoff(mut self, start: Duration, max: Duration) -> Self {
        self.backoff_start = start;
        self.backoff_max = max;
        self
    }

    async fn attempt(&self, body: &[u8]) -> Result<(), TransportError> {
        let mut req = self.client.post(&self.url).header("content-type", "application/json").body(body.to_vec());
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        match req.send().await {
            Ok(resp) if resp.status().is_success() => Ok(()),
            Ok(resp) => {
                let status = resp.status();
                let text: String = resp.text().await.unwrap_or_default().chars().take(300).collect();
                let msg = format!("{} answered {status}: {text}", self.url);
                if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT {
                    Err(TransportError::Transient(msg))
                } else {
                    Err(TransportError::Permanent(msg))
                }
            }
            Err(e) => Err(TransportError::Transient(format!("{}: {e}", self.url))),
        }
    }
}

#[async_trait::async_trait]
impl Transport for HttpTransport {
    fn name(&self) -> &str {
        "http"
    }

    async fn send(&self, event: &RunEvent) -> Result<(), TransportError> {
        let body = serde_json::to_vec(event).map_err(|e| TransportError::Permanent(e.to_string()))?;
        let mut attempt = 0u32;
        loop {
            match self.attempt(&body).await {
                Ok(()) => return Ok(()),
                Err(TransportError::Transient(e)) if attempt < self.retries => {
                    let exp = self.backoff_start.saturating_mul(1u32 << attempt.min(16)).min(self.backoff_max);
                    // Full jitter on the upper half: replicas do not retry in step.
                    let wait = exp / 2 + Duration::from_millis(rand::random::<u64>() % (exp.as_millis() as u64 / 2 + 1));
                    attempt += 1;
                    METRICS.send_retries.with_label_values(&["http"]).inc();
                    debug!(url = %self.url, attempt, wait_ms = wait.as_millis() as u64, error = %e, "lineage HTTP delivery failed; retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventType, Facets, Job, Run};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    fn event() -> RunEvent {
        RunEvent::new(EventType::Start, chrono::Utc::now(), Run { run_id: Run::new_id(), facets: Facets::new() }, Job { namespace: "t".into(), name: "j".into(), facets: Facets::new() })
    }

    /// A receiver that fails the first `fail` requests with 503, then
    /// records bodies and the authorization header.
    async fn receiver(fail: u32, status_after: u16) -> (String, Arc<parking_lot::Mutex<Vec<(Option<String>, serde_json::Value)>>>, Arc<AtomicU32>) {
        use axum::http::HeaderMap;
        let got = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let calls = Arc::new(AtomicU32::new(0));
        let (g, c) = (got.clone(), calls.clone());
        let app = axum::Router::new().route(
            "/api/v1/lineage",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let (g, c) = (g.clone(), c.clone());
                async move {
                    let n = c.fetch_add(1, Ordering::SeqCst);
                    if n < fail {
                        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
                    g.lock().push((auth, serde_json::from_slice(&body).unwrap()));
                    axum::http::StatusCode::from_u16(status_after).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}/api/v1/lineage"), got, calls)
    }

    #[tokio::test]
    async fn retries_transient_failures_then_delivers_with_the_token() {
        let (url, got, calls) = receiver(2, 201).await;
        let t = HttpTransport::new(&url, Some("s3cret".into()), Duration::from_secs(2), 3).unwrap().with_backoff(Duration::from_millis(10), Duration::from_millis(50));
        let e = event();
        t.send(&e).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        let got = got.lock();
        assert_eq!(got[0].0.as_deref(), Some("Bearer s3cret"));
        assert_eq!(got[0].1["run"]["runId"], e.run.run_id.to_string());
    }

    #[tokio::test]
    async fn gives_up_after_the_retries_and_never_retries_a_client_error() {
        let (url, _, calls) = receiver(100, 200).await;
        let t = HttpTransport::new(&url, None, Duration::from_secs(2), 2).unwrap().with_backoff(Duration::from_millis(5), Duration::from_millis(20));
        assert!(matches!(t.send(&event()).await, Err(TransportError::Transient(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        let (url, _, calls) = receiver(0, 400).await;
        let t = HttpTransport::new(&url, None, Duration::from_secs(2), 5).unwrap().with_backoff(Duration::from_millis(5), Duration::from_millis(20));
        assert!(matches!(t.send(&event()).await, Err(TransportError::Permanent(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_unreachable_receiver_is_a_transient_error_within_the_timeout() {
        // A bound but never accepting socket would hang; a closed port refuses.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let t = HttpTransport::new(&format!("http://127.0.0.1:{port}/x"), None, Duration::from_millis(500), 0).unwrap();
        let started = std::time::Instant::now();
        assert!(matches!(t.send(&event()).await, Err(TransportError::Transient(_))));
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
