//! Tests whose environment must hold proxy variables run as children: the parent runs one ignored test of its
//! own binary in a new process with only the variables it names.

use std::process::Command;

/// Every variable that can route a request through a proxy (and `REQUEST_METHOD`, which makes the matcher
/// ignore `HTTP_PROXY` as in CGI).
pub const PROXY_VARIABLES: [&str; 9] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "REQUEST_METHOD",
];

/// Runs the ignored test `name` of this binary in a child process with only `env` as proxy settings.
pub async fn run_child(name: &'static str, env: Vec<(&'static str, String)>) {
    let output = tokio::task::spawn_blocking(move || {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command.args(["--exact", name, "--ignored", "--nocapture"]);
        for variable in PROXY_VARIABLES {
            command.env_remove(variable);
        }
        command.envs(env).output().unwrap()
    })
    .await
    .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{name} failed:\n{text}");
    assert!(text.contains("1 passed"), "{name} did not run:\n{text}");
}
