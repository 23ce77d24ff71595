//! The process's open-file limit: raised to the hard limit at start, and the default connection cap under it.

/// Cap when the limit cannot be read (or the platform has none).
const FALLBACK_CAP: usize = 1024;

/// Raises the soft limit on open files to the hard limit; returns the soft limit in force afterwards.
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let before = rlimit::Resource::NOFILE.get_soft().ok();
        match rlimit::increase_nofile_limit(u64::MAX) {
            Ok(now) => {
                if before.is_some_and(|b| b < now) {
                    tracing::info!("open-file limit raised from {} to {now}", before.unwrap_or_default());
                }
                Some(now)
            }
            Err(e) => {
                tracing::warn!("cannot raise the open-file limit: {e}");
                before
            }
        }
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// 80% of the soft limit on open files: the rest stays for upstream connections, the log and the listener.
pub(crate) fn default_max_connections() -> usize {
    #[cfg(unix)]
    let soft = rlimit::Resource::NOFILE.get_soft().ok();
    #[cfg(not(unix))]
    let soft: Option<u64> = None;
    soft.and_then(|s| usize::try_from(s.saturating_mul(8) / 10).ok()).filter(|n| *n > 0).unwrap_or(FALLBACK_CAP)
}
