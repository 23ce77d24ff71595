//! `switchyard serve` and `switchyard mock-upstream`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::cli::{MockUpstreamArgs, ServeArgs};
use crate::config::{Config, Readiness};
use crate::default_config::{self, Simulated};
use crate::reload::Trigger;
use crate::server;
use crate::state::{AppState, HttpProviders};
use crate::storage::Storage;

/// Where the config came from.
#[derive(Debug)]
pub enum Source {
    /// A file.
    File(PathBuf),
    /// The built-in default with real providers.
    Builtin,
    /// The built-in default with simulated providers; keep the upstream alive while serving.
    Simulated(switchyard_sim::Upstream, Simulated),
}

/// Picks and validates the config: `--config`, else `./switchyard.toml`, else the built-in default
/// (which starts the simulated upstream in-process when no provider key is set).
pub async fn resolve(config: Option<&Path>, listen: Option<&str>) -> anyhow::Result<(Config, Source)> {
    let lookup = |v: &str| std::env::var(v).ok();
    let file = match config {
        Some(path) => Some(path.to_path_buf()),
        None => Some(PathBuf::from("switchyard.toml")).filter(|p| p.exists()),
    };
    if let Some(path) = file {
        let config = Config::load(&path, listen)?;
        return Ok((config, Source::File(path)));
    }
    if default_config::any_key_set(&lookup) {
        let config = Config::parse(&default_config::builtin(&lookup, None), &lookup, listen)
            .context("the built-in default config")?;
        return Ok((config, Source::Builtin));
    }
    let upstream = switchyard_sim::Upstream::start(switchyard_sim::UpstreamConfig::default())
        .await
        .context("cannot start the simulated upstream")?;
    let sim = Simulated { url: upstream.url(), api_key: switchyard_sim::DEFAULT_API_KEY.to_owned() };
    let config = Config::parse(&default_config::builtin(&lookup, Some(&sim)), &lookup, listen)
        .context("the built-in default config")?;
    Ok((config, Source::Simulated(upstream, sim)))
}

/// Runs the gateway until SIGINT/SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let (config, source) = resolve(args.config.as_deref(), args.listen.as_deref()).await?;
    match &source {
        Source::File(path) => tracing::info!("config: {}", path.display()),
        Source::Builtin => tracing::info!("config: built-in default (real providers for the keys that are set)"),
        Source::Simulated(..) => tracing::info!("config: built-in default with simulated providers"),
    }
    // Each target once: a target that cannot serve is a warning, the others are information.
    for (state, line) in config.readiness() {
        match state {
            Readiness::Unavailable => tracing::warn!("{line}"),
            Readiness::Ready | Readiness::Disabled => tracing::info!("{line}"),
        }
    }
    crate::conn::raise_fd_limit();
    let factory = Arc::new(HttpProviders::default());
    let mut state = AppState::build(&config, factory.as_ref())?;
    if let Source::File(path) = &source {
        state = state.reloadable(path.clone(), args.listen.clone(), factory);
    }
    let storage = config.storage.as_ref().map(|c| {
        tracing::info!("storage: request log in {}", c.path.display());
        Arc::new(Storage::open(c))
    });
    if let Some(storage) = &storage {
        // Admin overrides also live in the storage database and survive restarts (with [state] backend =
        // "redis", Redis is the shared record and corrects what was loaded here once it answers).
        let sink: Arc<dyn crate::overrides::OverrideSink> = storage.clone();
        state = state.with_storage(storage.clone()).with_override_sink(sink);
        crate::storage::restore_overrides(storage, &state);
    }
    let state = Arc::new(state);
    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {} (server.listen)", config.server.listen))?;
    let addr = listener.local_addr()?;
    if config.server.api_keys.is_empty() && config.server.keys.is_empty() {
        tracing::warn!("no server.api_keys or server.keys: clients need no key");
    }
    if config.server.admin_key.is_none() {
        tracing::info!("no server.admin_key: /admin/* answers 403");
    }
    if let Source::Simulated(_, sim) = &source {
        let _ = writeln!(std::io::stderr(), "{}", default_config::simulated_banner(sim, &addr.to_string()));
    }
    // The current open breakers of the other replicas before the first request (at most 2 s).
    crate::shared_state::start(&state, addr).await;
    let on_hangup = {
        let state = Arc::downgrade(&state);
        move || {
            if let Some(state) = state.upgrade() {
                drop(tokio::task::spawn_blocking(move || state.reload(Trigger::Signal)));
            }
        }
    };
    let shutdown = server::shutdown_signal(on_hangup);
    if let (Source::File(path), true) = (&source, config.server.watch_config) {
        tracing::info!("watching {} for changes (server.watch_config)", path.display());
        crate::config_watch::spawn(Arc::downgrade(&state), path.clone());
    }
    tracing::info!(
        "switchyard listening on http://{addr} (routes: {})",
        config.routes.keys().cloned().collect::<Vec<_>>().join(", ")
    );
    server::serve(listener, state.clone(), shutdown, config.server.shutdown_timeout).await?;
    if let Some(shared) = &state.shared {
        shared.leave().await;
    }
    // Every finished request's row is written before the process exits.
    if let Some(storage) = storage {
        let _ = tokio::task::spawn_blocking(move || storage.close()).await;
    }
    tracing::info!("switchyard stopped");
    drop(source);
    Ok(())
}

/// Runs the simulated upstream until SIGINT/SIGTERM.
pub async fn mock_upstream(args: MockUpstreamArgs) -> anyhow::Result<()> {
    let listener =
        TcpListener::bind(&args.listen).await.with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(
        "simulated upstream on http://{addr} (OpenAI base URL http://{addr}/v1, Anthropic base URL http://{addr}); \
         expected key: {:?}; `switchyard mock-upstream --help` lists the fault words",
        switchyard_sim::DEFAULT_API_KEY
    );
    switchyard_sim::serve_upstream_until(
        listener,
        switchyard_sim::UpstreamConfig::default(),
        server::shutdown_signal(|| tracing::info!("SIGHUP received and ignored")),
    )
    .await?;
    Ok(())
}
