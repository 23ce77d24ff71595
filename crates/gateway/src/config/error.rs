//! Config errors as data: each problem carries the key path it is about, so callers (the CLI, `/admin/reload`,
//! tests) can read the path without parsing the message.

use std::fmt;
use std::path::{Path, PathBuf};

/// A key path in the config file, e.g. `routes.default.targets[1].provider`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyPath(String);

impl KeyPath {
    /// The path as written in messages.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for KeyPath {
    fn from(path: String) -> Self {
        KeyPath(path)
    }
}

impl From<&str> for KeyPath {
    fn from(path: &str) -> Self {
        KeyPath(path.to_owned())
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One problem in a config: the key path at fault (and a second one when two keys conflict), and what is wrong
/// there with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", paths(path, also.as_ref()))]
pub struct Problem {
    /// The key path at fault.
    pub path: KeyPath,
    /// The other key path when two keys conflict.
    pub also: Option<KeyPath>,
    /// What is wrong, and what to do.
    pub message: String,
}

impl Problem {
    /// A problem at one key path.
    pub fn at(path: impl Into<KeyPath>, message: impl Into<String>) -> Self {
        Problem { path: path.into(), also: None, message: message.into() }
    }

    /// A conflict between two key paths.
    pub fn between(path: impl Into<KeyPath>, also: impl Into<KeyPath>, message: impl Into<String>) -> Self {
        Problem { path: path.into(), also: Some(also.into()), message: message.into() }
    }
}

fn paths(path: &KeyPath, also: Option<&KeyPath>) -> String {
    match also {
        Some(also) => format!("{path} and {also}"),
        None => path.to_string(),
    }
}

/// Why a config cannot be used. The message is one problem a line, each naming its key path; read from a
/// file, every line starts with the file's path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {message}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// What the operating system said.
        message: String,
    },
    /// The text is not TOML.
    #[error("{}", in_file(file.as_deref(), &format!("invalid TOML: {message}")))]
    Toml {
        /// The file, when read from one.
        file: Option<PathBuf>,
        /// What the TOML parser said.
        message: String,
    },
    /// The TOML is valid but the config is not; every problem found, not only the first.
    #[error("{}", in_file(file.as_deref(), &lines(problems)))]
    Invalid {
        /// The file, when read from one.
        file: Option<PathBuf>,
        /// The problems, in the order found.
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The problems with their key paths (none when the file could not be read or is not TOML).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid { problems, .. } => problems,
            ConfigError::Read { .. } | ConfigError::Toml { .. } => &[],
        }
    }

    /// The same error, said of `path` (every line then starts with it).
    pub(super) fn in_file(self, path: &Path) -> Self {
        match self {
            ConfigError::Toml { message, .. } => ConfigError::Toml { file: Some(path.to_owned()), message },
            ConfigError::Invalid { problems, .. } => ConfigError::Invalid { file: Some(path.to_owned()), problems },
            read @ ConfigError::Read { .. } => read,
        }
    }
}

impl From<Vec<Problem>> for ConfigError {
    fn from(problems: Vec<Problem>) -> Self {
        ConfigError::Invalid { file: None, problems }
    }
}

fn lines(problems: &[Problem]) -> String {
    problems.iter().map(Problem::to_string).collect::<Vec<_>>().join("\n")
}

/// `text` with every line prefixed by `file` when there is one.
fn in_file(file: Option<&Path>, text: &str) -> String {
    match file {
        Some(file) => text.lines().map(|line| format!("{}: {line}", file.display())).collect::<Vec<_>>().join("\n"),
        None => text.to_owned(),
    }
}
