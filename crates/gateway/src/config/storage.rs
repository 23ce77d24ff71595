//! `[storage]`: the request log's database (SPEC-2 section 10).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::Problem;
use super::duration::Dur;
use crate::storage::StorageConfig;

/// `[storage]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// Database file; relative to the config file's folder (or the working directory without a file).
    #[serde(default)]
    pub path: Option<String>,
    /// Rows older than this are deleted (default 7 days).
    #[serde(default)]
    pub retention: Option<Dur>,
    /// Also keep request and answer bodies.
    #[serde(default)]
    pub log_bodies: bool,
    /// False: no database at all (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Rows queued for the writer before new ones are dropped (default 50,000).
    #[serde(default)]
    pub queue: Option<usize>,
}

impl StorageSection {
    /// The validated section, or None when storage is off.
    pub(super) fn validate(self) -> Result<Option<StorageConfig>, Problem> {
        if self.enabled == Some(false) {
            return Ok(None);
        }
        let retention = self.retention.map_or(Duration::from_secs(7 * 86_400), |d| d.0);
        if retention.is_zero() {
            return Err(Problem::at("storage.retention", "must be above 0; write e.g. \"7d\""));
        }
        let queue = self.queue.unwrap_or(50_000);
        if queue == 0 {
            return Err(Problem::at("storage.queue", "must be at least 1"));
        }
        let path = PathBuf::from(self.path.unwrap_or_else(|| "switchyard.db".to_owned()));
        Ok(Some(StorageConfig { path, retention, log_bodies: self.log_bodies, queue }))
    }
}

/// A relative database path is taken from the config file's folder.
pub(super) fn relative_to(config: &mut Option<StorageConfig>, file: &Path) {
    if let Some(storage) = config
        && storage.path.is_relative()
        && let Some(folder) = file.parent()
    {
        storage.path = folder.join(&storage.path);
    }
}
