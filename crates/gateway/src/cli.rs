//! Command-line interface of the `switchyard` binary.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Switchyard: an OpenAI- and Anthropic-compatible LLM gateway with retries, fallback and runtime control.
#[derive(Debug, Parser)]
#[command(name = "switchyard", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve(ServeArgs),
    /// Validate a config file without serving.
    Check(CheckArgs),
    /// Run the five seed examples through a real gateway backed by the simulated upstream.
    Demo,
    /// Send one prompt to a running gateway and stream the answer.
    Chat(ChatArgs),
    /// List, enable, disable or re-prioritise targets of a running gateway.
    Models(ModelsArgs),
    /// Show (or reset) the statistics of a running gateway.
    Stats(StatsArgs),
    /// Show the request log of a running gateway (or follow it, or one request with `logs show ID`).
    Logs(LogsArgs),
    /// Show token and request usage of a running gateway, per bucket and route, target or key.
    Usage(UsageArgs),
    /// Run the simulated OpenAI/Anthropic upstream (fault injection by model name).
    MockUpstream(MockUpstreamArgs),
}

/// `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Config file; default `./switchyard.toml` when present, else the built-in default.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Listen address, overriding `server.listen`.
    #[arg(long, short)]
    pub listen: Option<String>,
}

/// `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Config file to validate.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Also send a one-token request to every usable target.
    #[arg(long)]
    pub probe: bool,
    /// Also print what reloading this file would change in the gateway at `--url` (its `/admin/config`).
    #[arg(long)]
    pub diff: bool,
    /// The running gateway for `--diff`.
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// Where a running gateway is, and the key to use.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Gateway URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "SWITCHYARD_URL", hide_env_values = true)]
    pub url: String,
}

/// `chat`.
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// The prompt.
    pub prompt: String,
    /// Route (or target id `provider/model`) to send it to.
    #[arg(long, short, default_value = "default")]
    pub route: String,
    /// System prompt.
    #[arg(long)]
    pub system: Option<String>,
    /// Client key, when the gateway requires one.
    #[arg(long, env = "SWITCHYARD_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub server: ServerArgs,
}

/// `models`.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: ModelsAction,
    /// The gateway and its admin key.
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// `models` actions. Without `--route`, enable/disable apply to the target everywhere (every route and direct
/// requests, `PATCH /admin/targets/{id}`) and set-priority to every route that has the target.
#[derive(Debug, Subcommand)]
pub enum ModelsAction {
    /// Show every route's targets.
    List,
    /// Enable a target.
    Enable {
        /// Target id, e.g. `openai/gpt-4o`.
        id: String,
        /// Only in this route.
        #[arg(long)]
        route: Option<String>,
    },
    /// Disable a target.
    Disable {
        /// Target id.
        id: String,
        /// Only in this route.
        #[arg(long)]
        route: Option<String>,
    },
    /// Change a target's priority (lower is tried first).
    SetPriority {
        /// Target id.
        id: String,
        /// New priority.
        #[arg(allow_negative_numbers = true)]
        priority: i32,
        /// Only in this route.
        #[arg(long)]
        route: Option<String>,
    },
    /// Clear the admin overrides of a target (back to its config values).
    Reset {
        /// Target id.
        id: String,
        /// Only in this route.
        #[arg(long)]
        route: Option<String>,
    },
}

/// The admin key and URL of a running gateway.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Admin key of the gateway.
    #[arg(long, global = true, env = "SWITCHYARD_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// Gateway URL.
    #[arg(
        long,
        global = true,
        default_value = "http://127.0.0.1:8080",
        env = "SWITCHYARD_URL",
        hide_env_values = true
    )]
    pub url: String,
}

/// `logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// `show ID`: one request and its attempt timeline.
    #[command(subcommand)]
    pub show: Option<LogsAction>,
    /// Only this route.
    #[arg(long)]
    pub route: Option<String>,
    /// Only requests this target served or was attempted in.
    #[arg(long)]
    pub target: Option<String>,
    /// Only failed requests.
    #[arg(long)]
    pub failed: bool,
    /// Only requests since then: a duration back from now (`1h`) or RFC 3339.
    #[arg(long)]
    pub since: Option<String>,
    /// At most this many requests (1 to 1000).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Keep printing requests as they finish.
    #[arg(long)]
    pub follow: bool,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub admin: AdminArgs,
}

/// `logs` actions.
#[derive(Debug, Subcommand)]
pub enum LogsAction {
    /// One request with its attempt timeline.
    Show {
        /// The request id (`x-request-id`).
        id: String,
    },
}

/// `usage`.
#[derive(Debug, Args)]
pub struct UsageArgs {
    /// Group by `target`, `route` or `key`.
    #[arg(long, default_value = "target")]
    pub by: String,
    /// Window: a duration back from now (`24h`) or RFC 3339.
    #[arg(long, default_value = "24h")]
    pub since: String,
    /// Bucket width: `1m`, `1h` or `1d`.
    #[arg(long, default_value = "1h")]
    pub bucket: String,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub admin: AdminArgs,
}

/// `stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Reset the counters after showing them.
    #[arg(long)]
    pub reset: bool,
    /// Admin key of the gateway.
    #[arg(long, env = "SWITCHYARD_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub server: ServerArgs,
}

/// `mock-upstream`.
#[derive(Debug, Args)]
#[command(after_help = mock_upstream_help())]
pub struct MockUpstreamArgs {
    /// Address to listen on.
    #[arg(long, short, default_value = "127.0.0.1:9099")]
    pub listen: String,
}

/// The fault words and the expected key, under `mock-upstream --help`.
fn mock_upstream_help() -> String {
    let mut text = format!(
        "Expected key: {:?} (OpenAI: Authorization: Bearer KEY; Anthropic: x-api-key: KEY).\n\
         OpenAI base URL: http://ADDR/v1; Anthropic base URL: http://ADDR.\n\n\
         The model name's last `-`-separated word picks the behaviour (e.g. gpt-4o-flaky3):\n",
        switchyard_sim::DEFAULT_API_KEY
    );
    for (word, what) in switchyard_sim::FAULT_WORDS {
        text.push_str(&format!("  {word:<24} {what}\n"));
    }
    text
}
