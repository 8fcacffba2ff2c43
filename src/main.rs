//! The `inlet` command: parses the command line and hands over to the crates.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "inlet", version, about = "Kafka to Delta Lake, exactly once; compaction; a Hive-compatible catalog")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a configuration file without running anything.
    Validate {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run the ingestion pipelines of a configuration.
    Ingest {
        #[arg(long, short)]
        config: PathBuf,
        /// Exit after committing everything up to the offsets that were the
        /// latest when the pipelines started.
        #[arg(long)]
        until_caught_up: bool,
        /// Run only this pipeline (repeatable).
        #[arg(long = "pipeline")]
        pipelines: Vec<String>,
    },
    /// Produce sample JSON events to a topic (quickstart, tests, benchmarks).
    SampleEvents {
        #[arg(long, default_value = "127.0.0.1:9092")]
        brokers: String,
        #[arg(long)]
        topic: String,
        #[arg(long, default_value_t = 4)]
        partitions: i32,
        #[arg(long, default_value_t = 100_000)]
        count: u64,
        /// Events per second (0: as fast as possible).
        #[arg(long, default_value_t = 0)]
        rate: u64,
        #[arg(long, default_value_t = 0)]
        start_id: u64,
        /// Make every n-th event malformed (0: none).
        #[arg(long, default_value_t = 0)]
        bad_every: u64,
    },
    // --- compaction ---------------------------------------------------------
    /// Compact one table once: rewrite small files into fewer, larger ones.
    Compact {
        #[arg(long, short)]
        config: PathBuf,
        /// The table: a compaction policy's pipeline or location, a pipeline
        /// name, or a table location.
        #[arg(long)]
        table: String,
        /// Only partitions matching `column=value` (repeatable; all must match).
        #[arg(long = "partition")]
        partitions: Vec<String>,
        /// Print the plan (bins, input files and bytes, expected output
        /// files) and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Vacuum afterwards with the policy's retention.
        #[arg(long)]
        vacuum: bool,
        /// Allow a vacuum retention below the safe minimum of 7 days.
        #[arg(long)]
        force: bool,
        /// Override the policy's vacuum retention.
        #[arg(long)]
        retention_hours: Option<u64>,
        /// Print the run's record as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Run the compaction service: every `compaction.tables[]` policy on its
    /// schedule and triggers, until SIGTERM/SIGINT.
    Compactor {
        #[arg(long, short)]
        config: PathBuf,
    },
    // --- end compaction -----------------------------------------------------
    /// The Hive-compatible metastore service.
    Metastore {
        #[command(subcommand)]
        command: MetastoreCommand,
    },
    /// Job states of ingest pipelines and compaction policies: list, show,
    /// pause, resume. Reads the catalog database of `--config`, or a
    /// metastore's REST API at `--url`.
    Jobs {
        /// A configuration whose `catalog` names the database.
        #[arg(long, short, global = true, conflicts_with = "url")]
        config: Option<PathBuf>,
        /// A metastore's REST API, e.g. http://metastore:8080.
        #[arg(long, global = true, env = "INLET_METASTORE_URL")]
        url: Option<String>,
        /// Bearer token for pause/resume through `--url`.
        #[arg(long, global = true, env = "INLET_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Print JSON.
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Lineage: upstream and downstream of a table, topic or job, runs of a
    /// job, a table's path back to its topics, freshness and latency. Reads
    /// the catalog database of `--config`, or a metastore's REST API at `--url`.
    Lineage {
        /// A configuration whose `catalog` names the database.
        #[arg(long, short, global = true, conflicts_with = "url")]
        config: Option<PathBuf>,
        /// A metastore's REST API, e.g. http://metastore:8080.
        #[arg(long, global = true, env = "INLET_METASTORE_URL")]
        url: Option<String>,
        /// Print JSON.
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        command: inlet_lineage::cli::LineageCommand,
    },
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum MetastoreCommand {
    /// Serve the Hive Metastore Thrift API and the REST API until
    /// SIGTERM/SIGINT (migrating the catalog database first when
    /// `catalog.migrate_on_start`).
    Serve {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Apply pending schema migrations to the catalog database.
    Migrate {
        #[arg(long, short)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum JobsCommand {
    /// Every job with its state.
    List,
    /// One job (`ingest/<pipeline>` or `compaction/<policy>`), its instances
    /// and its transition history.
    Show {
        job: String,
        /// Transitions to show.
        #[arg(long, default_value_t = 20)]
        history: i64,
    },
    /// Ask a job to pause: ingest commits what it buffered and consumes
    /// nothing; compaction starts no new run.
    Pause {
        job: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Let a paused job run again.
    Resume {
        job: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the configuration reference (docs/configuration.md).
    Reference,
    /// Print the JSON Schema of the configuration file.
    Schema,
}

/// Exit code for an invalid configuration, distinct from runtime failures.
const EXIT_BAD_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("INLET_LOG").unwrap_or_else(|_| "info,deltalake=warn,deltalake_core=warn,buoyant_kernel=warn,opendal=warn".into()))
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Validate { config } => match inlet_config::load(&config) {
            Ok(c) => {
                println!("{}: ok ({} pipeline{})", config.display(), c.pipelines.len(), if c.pipelines.len() == 1 { "" } else { "s" });
                ExitCode::SUCCESS
            }
            Err(e) => report_config_error(e),
        },
        Command::Ingest { config, until_caught_up, pipelines } => {
            let config = match inlet_config::load(&config) {
                Ok(c) => c,
                Err(e) => return report_config_error(e),
            };
            let rt = runtime();
            match rt.block_on(inlet_ingest::run(config, inlet_ingest::RunOptions { until_caught_up, pipelines })) {
                Ok(summary) => {
                    for (name, s) in summary {
                        eprintln!("pipeline {name}: {} rows in {} commits, {} dead letters", s.rows, s.commits, s.dead_letters);
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Command::SampleEvents { brokers, topic, partitions, count, rate, start_id, bad_every } => {
            let opts = inlet_ingest::sample::SampleOptions { brokers, topic, partitions, count, rate, start_id, bad_every };
            match runtime().block_on(inlet_ingest::sample::produce(&opts)) {
                Ok(n) => {
                    println!("produced {n} events to {}", opts.topic);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Command::Compact { config, table, partitions, dry_run, vacuum, force, retention_hours, json } => {
            let config = match inlet_config::load(&config) {
                Ok(c) => c,
                Err(e) => return report_config_error(e),
            };
            let opts = compact_cli::Options { table, partitions, dry_run, vacuum, force, retention_hours, json };
            match runtime().block_on(compact_cli::compact(&config, opts)) {
                Ok(code) => code,
                Err(e) => fail(e.as_ref()),
            }
        }
        Command::Compactor { config } => {
            let config = match inlet_config::load(&config) {
                Ok(c) => c,
                Err(e) => return report_config_error(e),
            };
            match runtime().block_on(compact_cli::service(&config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(e.as_ref()),
            }
        }
        Command::Metastore { command } => {
            let (path, serve) = match command {
                MetastoreCommand::Serve { config } => (config, true),
                MetastoreCommand::Migrate { config } => (config, false),
            };
            let config = match inlet_config::load(&path) {
                Ok(c) => c,
                Err(e) => return report_config_error(e),
            };
            let result = if serve { runtime().block_on(inlet_metastore::server::serve(&config)) } else { runtime().block_on(inlet_metastore::server::migrate(&config)) };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
        Command::Jobs { config, url, token, json, command } => {
            use inlet_metastore::jobs::cli;
            let command = match command {
                JobsCommand::List => cli::Command::List,
                JobsCommand::Show { job, history } => cli::Command::Show { job, history },
                JobsCommand::Pause { job, reason } => cli::Command::Pause { job, reason },
                JobsCommand::Resume { job, reason } => cli::Command::Resume { job, reason },
            };
            let rt = runtime();
            let source = match (config, url) {
                (_, Some(url)) => cli::Source::Rest { url, token },
                (Some(path), None) => {
                    let config = match inlet_config::load(&path) {
                        Ok(c) => c,
                        Err(e) => return report_config_error(e),
                    };
                    match rt.block_on(inlet_metastore::server::open_store(&config)) {
                        Ok(store) => cli::Source::Store(inlet_metastore::jobs::Jobs::new(store)),
                        Err(e) => return fail(&e),
                    }
                }
                (None, None) => {
                    eprintln!("error: `inlet jobs` needs --config FILE (its catalog database) or --url http://metastore:8080");
                    return ExitCode::from(2);
                }
            };
            match rt.block_on(cli::run(&source, command, json)) {
                Ok(out) => {
                    print!("{out}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Command::Lineage { config, url, json, command } => {
            let rt = runtime();
            let source: Box<dyn inlet_lineage::query::LineageQuery> = match (config, url) {
                (_, Some(url)) => match inlet_lineage::client::RestClient::new(&url) {
                    Ok(c) => Box::new(c),
                    Err(e) => return fail(&e),
                },
                (Some(path), None) => {
                    let config = match inlet_config::load(&path) {
                        Ok(c) => c,
                        Err(e) => return report_config_error(e),
                    };
                    match rt.block_on(inlet_metastore::server::open_store(&config)) {
                        Ok(store) => Box::new(inlet_metastore::store::lineage::LineageDb::new(store)),
                        Err(e) => return fail(&e),
                    }
                }
                (None, None) => {
                    eprintln!("error: `inlet lineage` needs --config FILE (its catalog database) or --url http://metastore:8080");
                    return ExitCode::from(2);
                }
            };
            match rt.block_on(inlet_lineage::cli::run(source.as_ref(), &command, json)) {
                Ok(out) => {
                    print!("{out}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Command::Config { command: ConfigCommand::Reference } => {
            print!("{}", inlet_config::reference::markdown());
            ExitCode::SUCCESS
        }
        Command::Config { command: ConfigCommand::Schema } => {
            println!("{}", serde_json::to_string_pretty(&inlet_config::json_schema()).unwrap_or_default());
            ExitCode::SUCCESS
        }
    }
}

/// Glue of `inlet compact` and `inlet compactor`.
mod compact_cli {
    use std::io::{IsTerminal, Write};
    use std::process::ExitCode;
    use std::sync::Arc;

    use inlet_compactor::plan::{human_bytes, parse_partition_filter};
    use inlet_compactor::{Compaction, InProcessLedger, Ledger, MemoryBudget, Policy, Progress};
    use inlet_config::Config;

    pub struct Options {
        pub table: String,
        pub partitions: Vec<String>,
        pub dry_run: bool,
        pub vacuum: bool,
        pub force: bool,
        pub retention_hours: Option<u64>,
        pub json: bool,
    }

    /// The ledger: over the catalog database when the configuration names
    /// one (leases shared by every compactor on it, runs recorded, table
    /// statistics updated), otherwise in memory (leases protect within this
    /// process only).
    async fn ledger(config: &Config) -> Result<Arc<dyn Ledger>, Box<dyn std::error::Error>> {
        match &config.catalog {
            Some(_) => {
                let store = inlet_metastore::server::open_store(config).await?;
                let catalog = inlet_metastore::Catalog::new(store, &inlet_metastore::server::warehouse_uri(config));
                Ok(Arc::new(inlet_compactor::CatalogLedger::new(catalog)))
            }
            None => Ok(Arc::new(InProcessLedger::new())),
        }
    }

    pub async fn compact(config: &Config, o: Options) -> Result<ExitCode, Box<dyn std::error::Error>> {
        let mut policy = Policy::find(config, &o.table)?;
        if let Some(h) = o.retention_hours {
            policy.vacuum.retention_hours = h;
        }
        policy.vacuum.force |= o.force;
        let filters = o.partitions.iter().map(|p| parse_partition_filter(p)).collect::<Result<Vec<_>, _>>()?;
        let policy_for_lineage = policy.clone();
        let mut run = Compaction::new(policy, ledger(config).await?, MemoryBudget::new(config.compaction.memory_budget_bytes))
            .with_partitions(filters)
            .with_dry_run(o.dry_run)
            .with_vacuum(o.vacuum)
            .with_lease_ttl(std::time::Duration::from_secs(config.compaction.lease_ttl_secs));
        let terminal = std::io::stderr().is_terminal();
        if terminal && !o.dry_run {
            run = run.with_progress(Arc::new(|p: Progress| {
                let mut e = std::io::stderr();
                let _ = write!(e, "\r[{}/{} bins] {} / {}   ", p.bins_done, p.bins_total, human_bytes(p.bytes_done), human_bytes(p.bytes_total));
                if p.bins_done == p.bins_total {
                    let _ = writeln!(e);
                }
            }));
        }
        let lineage = inlet_compactor::lineage::CompactionLineage::new(config);
        let report = if o.dry_run { run.await? } else { lineage.observe(&policy_for_lineage, run).await? };
        lineage.finish().await;
        if o.dry_run {
            if let Some(plan) = &report.plan {
                if o.json {
                    println!("{}", serde_json::to_string(plan)?);
                } else {
                    print!("{}", plan.describe());
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        let r = &report.run;
        if o.json {
            println!("{}", serde_json::to_string(r)?);
        } else {
            println!(
                "{}: {}: {} files ({}) -> {} files ({}) in {:.1} s, versions {:?}",
                r.table,
                r.outcome.as_str(),
                r.files_in,
                human_bytes(r.bytes_in),
                r.files_out,
                human_bytes(r.bytes_out),
                (r.finished - r.started).num_milliseconds() as f64 / 1000.0,
                r.versions
            );
            if let Some(v) = &report.vacuum {
                println!("vacuum deleted {} file(s)", v.files_deleted.len());
            }
        }
        for f in &report.failures {
            eprintln!("error: {f}");
        }
        Ok(if report.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    }

    pub async fn service(config: &Config) -> Result<(), Box<dyn std::error::Error>> {
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        // Policies' job states go to the catalog database, when there is one.
        let store = match &config.catalog {
            Some(_) => Some(inlet_metastore::server::open_store(config).await?),
            None => None,
        };
        let reporter = inlet_metastore::jobs::reporter::Reporter::start(store, inlet_metastore::jobs::reporter::instance_name(), Some(inlet_compactor::metrics::job_state_gauge()));
        Ok(inlet_compactor::service::run(config, ledger(config).await?, reporter, shutdown).await?)
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime")
}

fn report_config_error(e: inlet_config::LoadError) -> ExitCode {
    eprintln!("{e}");
    ExitCode::from(EXIT_BAD_CONFIG)
}

fn fail(e: &dyn std::error::Error) -> ExitCode {
    let mut msg = format!("error: {e}");
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(&format!("\n  caused by: {s}"));
        source = s.source();
    }
    eprintln!("{msg}");
    ExitCode::FAILURE
}
