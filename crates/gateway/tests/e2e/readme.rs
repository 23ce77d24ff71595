//! Every complete config in the README (each ```toml block with a `[providers.…]` table) passes
//! `switchyard check`, with the variables it references set to placeholders.

use std::process::Command;

/// The ```toml blocks of the README that hold a provider table.
fn readme_configs() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```toml") => current = Some(String::new()),
            (Some(_), l) if l.starts_with("```") => blocks.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks.into_iter().filter(|b| b.lines().any(|l| l.trim_start().starts_with("[providers."))).collect()
}

/// The `${VAR}` names a config references.
fn variables(text: &str) -> Vec<String> {
    text.split("${").skip(1).filter_map(|rest| rest.split_once('}')).map(|(var, _)| var.to_owned()).collect()
}

#[test]
fn every_complete_config_in_the_readme_passes_check() {
    let configs = readme_configs();
    assert!(!configs.is_empty(), "the README shows at least one complete config");
    for (i, text) in configs.iter().enumerate() {
        let path = std::env::temp_dir().join(format!("switchyard-readme-{}-{i}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        let mut check = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        check.args(["check", "--config", path.to_str().unwrap()]).env("NO_COLOR", "1");
        // Each its own value: two keys with one secret are a config error.
        for var in variables(text) {
            check.env(&var, format!("placeholder-{var}"));
        }
        let out = check.output().unwrap();
        let _ = std::fs::remove_file(&path);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && !stdout.contains("unavailable"),
            "README config {i} fails check:\n{}{stdout}\n--- config ---\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
