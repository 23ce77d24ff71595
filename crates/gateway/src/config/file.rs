//! The config as read: its text's hash and its tree with variables expanded, which `/admin/config` shows
//! (secrets redacted) and reloads compare. Being the file itself, it carries every key the file has, whatever
//! section defines it.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The file behind a [`Config`](super::Config). `Debug` shows only the hash: the tree holds secrets.
#[derive(Clone, Default)]
pub struct ConfigFile {
    /// sha256 of the text, in hex.
    pub hash: String,
    /// The file as JSON, variables expanded. Holds secrets: show it only through [`ConfigFile::redacted`].
    tree: Value,
}

impl ConfigFile {
    /// The file with this `text`, parsed and expanded into `tree`.
    pub(super) fn new(text: &str, tree: &toml::Value) -> Self {
        let hash = hash_of(text.as_bytes());
        let tree = serde_json::to_value(tree).unwrap_or(Value::Null);
        ConfigFile { hash, tree }
    }

    /// The tree with every secret replaced by `"<redacted>"`.
    pub fn redacted(&self) -> Value {
        super::redact::redacted(&self.tree)
    }

    /// The tree, secrets included: only to compare two files.
    pub(super) fn tree(&self) -> &Value {
        &self.tree
    }
}

impl std::fmt::Debug for ConfigFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigFile").field("hash", &self.hash).finish_non_exhaustive()
    }
}

/// sha256 of a file's bytes, in hex: what [`ConfigFile::hash`] holds.
pub fn hash_of(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
