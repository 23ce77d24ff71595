//! The `switchyard` binary: parses the command line and runs one subcommand.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use switchyard_gateway::cli::{Cli, Command};
use switchyard_gateway::commands;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter(&cli.command).into()),
        )
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal: escape codes in a log file or a pipe are noise.
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .init();
    let runtime = match runtime_builder().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(run(cli.command)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => fail(&format!("{e:#}")),
    }
}

/// A CLI error: plain text on stderr (no log prefix), each line starting with `error:`.
fn fail(message: &str) -> ExitCode {
    let mut err = std::io::stderr().lock();
    for line in message.lines() {
        let _ = writeln!(err, "error: {line}");
    }
    ExitCode::FAILURE
}

/// The multi-threaded runtime, except with `TOKIO_WORKER_THREADS=1`: then one thread runs everything, without
/// the work-stealing scheduler's cross-thread hand-offs (the accept loop on the main thread, connections on the
/// worker) on every request.
fn runtime_builder() -> tokio::runtime::Builder {
    match std::env::var("TOKIO_WORKER_THREADS").as_deref().map(str::trim) {
        Ok("1") => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    }
}

/// Servers log at info; one-shot commands only show warnings (the demo only errors: its failures are
/// staged and reported in its own output), so their output stays readable.
fn default_filter(command: &Command) -> &'static str {
    match command {
        Command::Serve(_) | Command::MockUpstream(_) => "info",
        Command::Demo => "error",
        _ => "warn",
    }
}

async fn run(command: Command) -> anyhow::Result<bool> {
    match command {
        Command::Serve(args) => commands::serve::run(args).await.map(|()| true),
        Command::Check(args) => commands::check::run(args).await,
        Command::Demo => commands::demo::run().await,
        Command::Chat(args) => commands::chat::run(args).await.map(|()| true),
        Command::Models(args) => commands::models::run(args).await.map(|()| true),
        Command::Stats(args) => commands::models::stats(args).await.map(|()| true),
        Command::Logs(args) => commands::logs::run(args).await.map(|()| true),
        Command::Usage(args) => commands::logs::usage(args).await.map(|()| true),
        Command::MockUpstream(args) => commands::serve::mock_upstream(args).await.map(|()| true),
    }
}
