//! The `switchyard` binary.

use std::process::ExitCode;

use clap::Parser;
use switchyard_gateway::cli::{Cli, Command};
use switchyard_gateway::config::Config;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check(args) => {
            let config = Config::load(&args.config, None)?;
            for line in config.readiness() {
                eprintln!("{line}");
            }
            eprintln!("{}: ok", args.config.display());
            Ok(ExitCode::SUCCESS)
        }
        _ => anyhow::bail!("this command is not built yet"),
    }
}
