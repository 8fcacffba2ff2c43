//! `inlet jobs`: list, show, pause and resume jobs, either straight on the
//! catalog database of a configuration or through a metastore's REST API.
//! Both return the same [`JobView`]s; this module renders them.

use std::fmt::Write as _;

use chrono::{TimeZone, Utc};

use super::{JobError, JobView, Jobs};
use crate::catalog::Actor;

/// Where the jobs are read and commanded.
pub enum Source {
    /// The catalog database itself (`--config`).
    Store(Jobs),
    /// A metastore's REST API (`--url`), with a bearer token for commands.
    Rest { url: String, token: Option<String> },
}

pub enum Command {
    List,
    Show { job: String, history: i64 },
    Pause { job: String, reason: String },
    Resume { job: String, reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Job(#[from] JobError),
    #[error("metastore REST API at {url}: {message}")]
    Rest { url: String, message: String },
}

/// Runs one command and returns what to print.
pub async fn run(source: &Source, command: Command, json: bool) -> Result<String, CliError> {
    let user = std::env::var("USER").unwrap_or_else(|_| "operator".into());
    let actor = Actor { user, via: "cli" };
    match command {
        Command::List => {
            let jobs: Vec<JobView> = match source {
                Source::Store(j) => j.list().await?,
                Source::Rest { url, token } => rest(url, token, reqwest::Method::GET, "/api/v1/jobs", None).await?,
            };
            Ok(if json { serde_json::to_string_pretty(&jobs).unwrap_or_default() + "\n" } else { table(&jobs) })
        }
        Command::Show { job, history } => {
            let view: JobView = match source {
                Source::Store(j) => j.show(&job, history).await?,
                Source::Rest { url, token } => rest(url, token, reqwest::Method::GET, &format!("/api/v1/jobs/{job}?history={history}"), None).await?,
            };
            Ok(if json { serde_json::to_string_pretty(&view).unwrap_or_default() + "\n" } else { detail(&view) })
        }
        Command::Pause { job, reason } => command_job(source, &actor, &job, &reason, "pause", json).await,
        Command::Resume { job, reason } => command_job(source, &actor, &job, &reason, "resume", json).await,
    }
}

async fn command_job(source: &Source, actor: &Actor, job: &str, reason: &str, command: &str, json: bool) -> Result<String, CliError> {
    let view: JobView = match source {
        Source::Store(j) if command == "pause" => j.pause(job, actor, reason).await?,
        Source::Store(j) => j.resume(job, actor, reason).await?,
        Source::Rest { url, token } => rest(url, token, reqwest::Method::POST, &format!("/api/v1/jobs/{job}/{command}"), Some(serde_json::json!({ "reason": reason }))).await?,
    };
    if json {
        return Ok(serde_json::to_string_pretty(&view).unwrap_or_default() + "\n");
    }
    let done = if command == "pause" { "asked to pause" } else { "asked to run" };
    Ok(format!("{}: {done}; now {} ({} instance{}); `inlet jobs show {}` follows it\n", view.job, view.state, view.instances.len(), if view.instances.len() == 1 { "" } else { "s" }, view.job))
}

async fn rest<T: serde::de::DeserializeOwned>(url: &str, token: &Option<String>, method: reqwest::Method, path: &str, body: Option<serde_json::Value>) -> Result<T, CliError> {
    let base = url.trim_end_matches('/');
    let fail = |message: String| CliError::Rest { url: base.to_string(), message };
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build().map_err(|e| fail(e.to_string()))?;
    let mut req = client.request(method, format!("{base}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.map_err(|e| fail(e.to_string()))?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| fail(e.to_string()))?;
    if !status.is_success() {
        let message = serde_json::from_str::<serde_json::Value>(&text).ok().and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string)).unwrap_or(text);
        return Err(fail(format!("{status}: {message}")));
    }
    serde_json::from_str(&text).map_err(|e| fail(format!("unexpected answer: {e}")))
}

fn when(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms).single().map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_else(|| ms.to_string())
}

fn table(jobs: &[JobView]) -> String {
    if jobs.is_empty() {
        return "no jobs yet: they appear when `inlet ingest` or `inlet compactor` first runs with this catalog\n".into();
    }
    let rows: Vec<[String; 5]> = jobs
        .iter()
        .map(|j| {
            let desired = if j.desired == "pause" { "pause".to_string() } else { String::new() };
            [j.job.clone(), j.state.clone(), desired, when(j.since_ms), j.reason.clone()]
        })
        .collect();
    let header = ["JOB", "STATE", "DESIRED", "SINCE", "REASON"];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()).take(4) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: [&str; 5]| {
        let _ = writeln!(out, "{:w0$}  {:w1$}  {:w2$}  {:w3$}  {}", cells[0], cells[1], cells[2], cells[3], cells[4], w0 = widths[0], w1 = widths[1], w2 = widths[2], w3 = widths[3]);
    };
    line(&mut out, header);
    for r in &rows {
        line(&mut out, [&r[0], &r[1], &r[2], &r[3], &r[4]]);
    }
    out
}

fn detail(j: &JobView) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}  ({} job {})", j.job, j.kind, j.name);
    let _ = writeln!(out, "  state:    {} since {}{}", j.state, when(j.since_ms), if j.reason.is_empty() { String::new() } else { format!(": {}", j.reason) });
    let _ = writeln!(out, "  desired:  {} (by {} at {}: {})", j.desired, j.desired_by, when(j.desired_ms), j.desired_reason);
    let _ = writeln!(out, "  instances:");
    for i in &j.instances {
        let _ = writeln!(out, "    {}  {} since {} (heartbeat {}): {}", i.instance, i.state, when(i.since_ms), when(i.heartbeat_ms), i.reason);
    }
    if let Some(h) = &j.history {
        let _ = writeln!(out, "  history (newest first):");
        for t in h {
            let _ = writeln!(out, "    {}  {}  {} -> {}: {}", when(t.at_ms), t.instance, t.from, t.to, t.reason);
        }
    }
    out
}
