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
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
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
