//! `[server] watch_config = true`: the config file is read every second and reloaded when its content
//! changed. Polling the content (not file events) follows editors that write by rename and symlink swaps
//! alike, with nothing to re-arm; a one-second read of a small file costs nothing.

use std::path::PathBuf;
use std::sync::Weak;
use std::time::Duration;

use crate::config::hash_of;
use crate::reload::Trigger;
use crate::state::AppState;

/// How often the file is read.
const EVERY: Duration = Duration::from_secs(1);

/// Watches `path` for as long as `state` lives.
pub fn spawn(state: Weak<AppState>, path: PathBuf) {
    tokio::spawn(async move {
        // The last content tried, so an invalid file is reported once, not every second.
        let mut tried: Option<String> = None;
        let mut ticks = tokio::time::interval(EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(state) = state.upgrade() else { return };
            // A file missing for a moment (mid-rename) is read again at the next tick.
            let Ok(bytes) = tokio::fs::read(&path).await else { continue };
            let hash = hash_of(&bytes);
            if hash == state.current().config.file.hash || tried.as_ref() == Some(&hash) {
                continue;
            }
            tried = Some(hash);
            let _ = tokio::task::spawn_blocking(move || state.reload(Trigger::Watch)).await;
        }
    });
}
