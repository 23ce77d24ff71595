//! `switchyard check --config FILE [--probe]`.

use std::io::Write;
use std::time::Duration;

use switchyard::{ChatModel, ChatRequest};

use crate::cli::CheckArgs;
use crate::config::Config;
use crate::state::{AppState, HttpProviders};

/// Validates the file; with `--probe`, also sends a one-token request to every usable target.
/// Returns whether everything is fine.
pub async fn run(args: CheckArgs) -> anyhow::Result<bool> {
    let config = match Config::load(&args.config, None) {
        Ok(config) => config,
        Err(e) => {
            // Every problem, one a line, each naming its key path.
            let mut err = std::io::stderr().lock();
            writeln!(err, "{e}")?;
            writeln!(err, "{}: problems found", args.config.display())?;
            return Ok(false);
        }
    };
    let mut out = String::new();
    for (_, line) in config.readiness() {
        out.push_str(&line);
        out.push('\n');
    }
    let mut ok = true;
    if args.probe {
        let state = AppState::build(&config, &HttpProviders::default())?;
        for (id, route) in &state.current().direct {
            if route.manager.list_models().iter().all(|t| !t.enabled) {
                continue;
            }
            let mut request = ChatRequest::user("Reply with the word ok.");
            request.options.max_tokens = Some(1);
            let result = tokio::time::timeout(Duration::from_secs(30), route.manager.complete(request)).await;
            let line = match result {
                Ok(Ok(_)) => format!("probe {id}: ok"),
                Ok(Err(e)) => {
                    ok = false;
                    format!("probe {id}: FAILED: {e}")
                }
                Err(_) => {
                    ok = false;
                    format!("probe {id}: FAILED: no answer within 30s")
                }
            };
            out.push_str(&line);
            out.push('\n');
        }
    }
    if args.diff {
        let client = super::admin_client::AdminClient::new(&args.admin.url, args.admin.admin_key.clone())?;
        out.push_str(&super::check_diff::lines(&config, &client.config().await?, &args.admin.url));
    }
    out.push_str(&format!("{}: {}\n", args.config.display(), if ok { "ok" } else { "problems found" }));
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(ok)
}
