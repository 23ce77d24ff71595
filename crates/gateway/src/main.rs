//! The `switchyard` binary: parses the command line and runs one subcommand.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use switchyard_gateway::cli::{Cli, Command};
use switchyard_gateway::commands;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// mimalloc instead of the C library's malloc: a proxied request makes about 75 allocations, and glibc took
/// about 200 instructions per allocation and free, most of them on its slow path for blocks over 1 KiB (hyper's
/// read buffers, header maps). Whole answers went from 98k to 89k instructions, streamed ones from 223k to
/// 200k (`bench/instructions`). Its `no_thp` feature keeps transparent huge pages off: with them, memory per
/// open stream was 59 KB instead of 42 KB (glibc: 39 KB) and the idle gateway 22 MB instead of 13 MB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref(), &cli.command);
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal: escape codes in a log file or a pipe are noise.
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .finish()
        .with(filter)
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

/// `RUST_LOG` as a level and `target=level` pairs (`warn,switchyard_gateway::storage=debug`); unset or
/// unreadable, the command's default level. tracing-subscriber's `Targets`, not `EnvFilter`: its span and field
/// filters would bring a regex engine into the first build for a feature few use.
fn log_filter(rust_log: Option<&str>, command: &Command) -> Targets {
    rust_log
        .and_then(|text| text.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(default_level(command)))
}

/// Servers log at info; one-shot commands only show warnings (the demo only errors: its failures are
/// staged and reported in its own output), so their output stays readable.
fn default_level(command: &Command) -> LevelFilter {
    match command {
        Command::Serve(_) | Command::MockUpstream(_) => LevelFilter::INFO,
        Command::Demo => LevelFilter::ERROR,
        _ => LevelFilter::WARN,
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

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::{Command, log_filter};

    #[test]
    fn rust_log_takes_a_default_level_and_per_target_levels() {
        let filter = log_filter(Some("warn,switchyard_gateway::storage=debug"), &Command::Demo);
        assert!(filter.would_enable("switchyard_gateway::storage::writer", &Level::DEBUG));
        assert!(!filter.would_enable("switchyard_gateway::server", &Level::INFO));
        assert!(filter.would_enable("hyper", &Level::WARN));
    }

    #[test]
    fn without_a_readable_rust_log_the_command_picks_the_level() {
        for rust_log in [None, Some("switchyard=loud")] {
            let demo = log_filter(rust_log, &Command::Demo);
            assert!(demo.would_enable("switchyard_gateway", &Level::ERROR));
            assert!(!demo.would_enable("switchyard_gateway", &Level::WARN), "{rust_log:?}");
        }
    }
}
