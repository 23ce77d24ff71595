//! The public after-commit policy: what a committed stream does when it breaks.

/// What a committed stream does when it breaks (SPEC section 6). Written `error` / `continue` in config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AfterCommit {
    /// End with one typed error (never a clean end). The default.
    #[default]
    Error,
    /// A text-only stream is continued by the next target, from the partial answer, spliced into the
    /// same stream; a stream that carried tool-call fragments still ends with the error.
    Continue,
}
