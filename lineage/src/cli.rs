//! `inlet lineage`: the command's arguments and its output, over any
//! [`LineageQuery`] (the metastore's REST API or the catalog database).

use std::fmt::Write;

use crate::query::*;

/// What to ask.
#[derive(Debug, clap::Subcommand)]
pub enum LineageCommand {
    /// Jobs and datasets upstream of a dataset or job (what it is made from).
    Upstream {
        #[command(flatten)]
        start: Start,
        /// Job hops at most.
        #[arg(long, default_value_t = 5)]
        depth: u32,
    },
    /// Jobs and datasets downstream of a dataset or job (what is made from it).
    Downstream {
        #[command(flatten)]
        start: Start,
        #[arg(long, default_value_t = 5)]
        depth: u32,
    },
    /// Runs of a job, newest first.
    Runs {
        /// The job, e.g. `ingest.orders` or `compaction.sales.orders`.
        #[arg(long)]
        job: String,
        #[arg(long)]
        job_namespace: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// A table's paths back to the topics it is made from.
    Sources {
        #[command(flatten)]
        start: Start,
        #[arg(long, default_value_t = 10)]
        depth: u32,
    },
    /// A table's freshness and end-to-end latency per stage.
    Latency {
        #[command(flatten)]
        start: Start,
        /// Newest commits the figures cover.
        #[arg(long, default_value_t = 1000)]
        commits: u32,
    },
    /// Every job the store knows.
    Jobs,
    /// Every dataset the store knows.
    Datasets,
}

/// A start node: `--table db.t`, `--dataset NAMESPACE NAME` or `--job NAME`.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct Start {
    /// A table by its catalog name, `db.table`.
    #[arg(long)]
    pub table: Option<String>,
    /// A dataset by OpenLineage namespace and name, e.g.
    /// `--dataset kafka://broker:9092 orders`.
    #[arg(long, num_args = 2, value_names = ["NAMESPACE", "NAME"])]
    pub dataset: Option<Vec<String>>,
    /// A job by name (namespace `--job-namespace`, default `inlet`).
    #[arg(long)]
    pub job: Option<String>,
    #[arg(long = "job-namespace", default_value = crate::naming::DEFAULT_JOB_NAMESPACE)]
    pub job_ns: String,
}

impl Start {
    pub fn node(&self) -> NodeRef {
        match (&self.table, &self.dataset, &self.job) {
            (Some(t), _, _) => NodeRef::Table { table: t.clone() },
            (_, Some(d), _) if d.len() == 2 => NodeRef::Dataset { namespace: d[0].clone(), name: d[1].clone() },
            (_, _, Some(j)) => NodeRef::Job { namespace: self.job_ns.clone(), name: j.clone() },
            // clap's group guarantees one of them.
            _ => NodeRef::Table { table: String::new() },
        }
    }
}

/// Runs a command; returns what to print (JSON when `json`).
pub async fn run(q: &dyn LineageQuery, cmd: &LineageCommand, json: bool) -> Result<String, QueryError> {
    let to_json = |v: serde_json::Result<String>| v.map_err(|e| QueryError::Unavailable(e.to_string()));
    Ok(match cmd {
        LineageCommand::Upstream { start, depth } | LineageCommand::Downstream { start, depth } => {
            let dir = if matches!(cmd, LineageCommand::Upstream { .. }) { Direction::Upstream } else { Direction::Downstream };
            let g = q.graph(&start.node(), dir, *depth).await?;
            if json { to_json(serde_json::to_string_pretty(&g))? } else { render_graph(&g) }
        }
        LineageCommand::Runs { job, job_namespace, limit } => {
            let node = NodeRef::Job { namespace: job_namespace.clone().unwrap_or_else(|| crate::naming::DEFAULT_JOB_NAMESPACE.into()), name: job.clone() };
            let runs = q.runs(&node, *limit).await?;
            if json { to_json(serde_json::to_string_pretty(&runs))? } else { render_runs(&runs) }
        }
        LineageCommand::Sources { start, depth } => {
            let s = q.sources(&start.node(), *depth).await?;
            if json { to_json(serde_json::to_string_pretty(&s))? } else { render_sources(&s) }
        }
        LineageCommand::Latency { start, commits } => {
            let l = q.latency(&start.node(), *commits).await?;
            if json { to_json(serde_json::to_string_pretty(&l))? } else { render_latency(&l) }
        }
        LineageCommand::Jobs => {
            let jobs = q.jobs().await?;
            if json {
                to_json(serde_json::to_string_pretty(&jobs))?
            } else {
                let mut out = String::new();
                for j in jobs {
                    let _ = writeln!(out, "{}/{}\t{}\t{}\t{}", j.namespace, j.name, j.processing_type.unwrap_or_default(), j.latest_run_state.unwrap_or_default(), j.updated_at);
                }
                out
            }
        }
        LineageCommand::Datasets => {
            let ds = q.datasets().await?;
            if json {
                to_json(serde_json::to_string_pretty(&ds))?
            } else {
                let mut out = String::new();
                for d in ds {
                    let links: Vec<String> = d.symlinks.iter().map(|s| s.to_string()).collect();
                    let _ = writeln!(out, "{}\tversion {}\t{}", crate::naming::DatasetId::new(&d.namespace, &d.name), d.version.map(|v| v.to_string()).unwrap_or("-".into()), links.join(", "));
                }
                out
            }
        }
    })
}

fn label(n: &GraphNode) -> String {
    let name = if n.kind == "job" { format!("job {}/{}", n.namespace, n.name) } else { crate::naming::DatasetId::new(&n.namespace, &n.name).to_string() };
    if n.symlinks.is_empty() { name } else { format!("{name} (= {})", n.symlinks.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")) }
}

pub fn render_graph(g: &Graph) -> String {
    let mut out = String::new();
    let arrow = if g.direction == Direction::Upstream { "<-" } else { "->" };
    let mut nodes = g.nodes.clone();
    nodes.sort_by(|a, b| a.depth.cmp(&b.depth).then(a.id.cmp(&b.id)));
    for n in &nodes {
        let _ = writeln!(out, "{}{} {}", "  ".repeat(n.depth as usize), if n.depth == 0 { "*" } else { arrow }, label(n));
    }
    if g.truncated {
        let _ = writeln!(out, "(cut at depth {}; use --depth for more)", g.depth);
    }
    out
}

pub fn render_runs(runs: &[RunView]) -> String {
    let mut out = String::new();
    for r in runs {
        let versions: Vec<String> = r.outputs.iter().map(|o| format!("{}@{}", o.name.rsplit('/').next().unwrap_or(&o.name), o.version)).collect();
        let _ = writeln!(
            out,
            "{}  {:<8}  {} -> {}  {} events  {}{}",
            r.run_id,
            r.state,
            r.started_at.as_deref().unwrap_or("?"),
            r.ended_at.as_deref().unwrap_or("…"),
            r.events,
            versions.join(" "),
            r.error_message.as_deref().map(|e| format!("  error: {e}")).unwrap_or_default()
        );
    }
    out
}

pub fn render_sources(s: &Sources) -> String {
    let by_id = |id: &str| s.nodes.iter().find(|n| n.id == id).map(label).unwrap_or_else(|| id.to_string());
    let mut out = String::new();
    let _ = writeln!(out, "{}", label(&s.table));
    for p in &s.paths {
        let _ = writeln!(out, "  {}", p.iter().map(|id| by_id(id)).collect::<Vec<_>>().join(" -> "));
    }
    for m in &s.maintained_by {
        let _ = writeln!(out, "  maintained by {}", by_id(m));
    }
    if s.paths.is_empty() {
        let _ = writeln!(out, "  (no recorded sources)");
    }
    out
}

pub fn render_latency(l: &LatencyView) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}{}", l.dataset, if l.symlinks.is_empty() { String::new() } else { format!(" (= {})", l.symlinks.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")) });
    let _ = writeln!(out, "  newest event   {}", l.newest_event_time.as_deref().unwrap_or("-"));
    let _ = writeln!(out, "  freshness      {}", l.freshness_seconds.map(|f| format!("{f:.1} s")).unwrap_or("-".into()));
    let _ = writeln!(out, "  last commit    version {} at {}", l.last_version.map(|v| v.to_string()).unwrap_or("-".into()), l.last_committed_at.as_deref().unwrap_or("-"));
    let _ = writeln!(out, "  over the newest {} commits (each at its oldest event):", l.commits);
    let f = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or("-".into());
    let _ = writeln!(out, "  {:<18} {:>6} {:>10} {:>10} {:>10} {:>10}", "stage", "n", "p50 s", "p90 s", "p99 s", "max s");
    for s in &l.stages {
        let _ = writeln!(out, "  {:<18} {:>6} {:>10} {:>10} {:>10} {:>10}", s.stage, s.count, f(s.p50_seconds), f(s.p90_seconds), f(s.p99_seconds), f(s.max_seconds));
    }
    out
}
