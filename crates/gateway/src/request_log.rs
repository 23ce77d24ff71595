//! The one place a finished request becomes a log row: whole answers and streams alike hand their facts to a
//! [`Recording`], which on finish (or on drop: the client went away) builds the [`Row`] and gives it to the
//! storage writer and to the `/admin/events` subscribers.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use switchyard::{
    Usage,
    attempt::{Attempt, AttemptOutcome},
};
use tokio::sync::broadcast;

use crate::client_keys::KeyTicket;
use crate::error::Api;
use crate::state::Route;
use crate::storage::{AttemptResult, AttemptRow, Outcome, Row, RowError, Storage};

/// Where finished requests go: the database (when on) and the live event stream.
#[derive(Debug)]
pub struct RequestLog {
    storage: Option<Arc<Storage>>,
    events: broadcast::Sender<Arc<Row>>,
}

impl Default for RequestLog {
    fn default() -> Self {
        RequestLog::new(None)
    }
}

impl RequestLog {
    /// A log writing to `storage` (None: events only).
    pub fn new(storage: Option<Arc<Storage>>) -> Self {
        RequestLog { storage, events: broadcast::channel(1024).0 }
    }

    /// The database, when storage is on.
    pub fn storage(&self) -> Option<&Arc<Storage>> {
        self.storage.as_ref()
    }

    /// Finished requests as they happen (rows without bodies).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Row>> {
        self.events.subscribe()
    }

    /// Starts recording a request that resolved to `route`, sent with the named client key `key` if any;
    /// None when nobody would read the row and no named key waits for the request's usage.
    pub fn start(
        self: &Arc<Self>,
        request_id: &str,
        route: &Arc<Route>,
        api: Api,
        stream: bool,
        started: Instant,
        key: Option<&Arc<str>>,
    ) -> Option<Recording> {
        if self.storage.is_none() && self.events.receiver_count() == 0 && key.is_none() {
            return None;
        }
        // The arrival time is set at the end, from the clock reading the latency takes there.
        let mut row = Row::arrived(request_id, SystemTime::UNIX_EPOCH, route.name.clone(), api, stream);
        row.key = key.cloned();
        Some(Recording { log: self.clone(), route: route.clone(), row: Some(Box::new(row)), started, ticket: None })
    }

    fn finished(&self, mut row: Box<Row>) {
        if self.events.receiver_count() > 0 {
            // Events carry no bodies: set them aside rather than copy up to 128 KiB only to drop it.
            let (request, response) = (row.request.take(), row.response.take());
            let _ = self.events.send(Arc::new(Row::clone(&row)));
            (row.request, row.response) = (request, response);
        }
        if let Some(storage) = &self.storage {
            storage.record(row);
        }
    }
}

/// One request being recorded; dropping it unfinished records a cancellation.
#[derive(Debug)]
pub struct Recording {
    log: Arc<RequestLog>,
    /// Target ids in the row are the route's own (shared, not copied).
    route: Arc<Route>,
    /// Boxed: the recording lives in the handler's future, which is moved as a whole (the row is 328 bytes).
    row: Option<Box<Row>>,
    started: Instant,
    /// The named key's token reservation, settled from the usage the request ends with.
    ticket: Option<KeyTicket>,
}

impl Recording {
    /// Holds the request's token reservation until it ends: every ending (whole answer, stream, failure,
    /// client gone) comes through here with its usage.
    pub fn hold(&mut self, ticket: KeyTicket) {
        self.ticket = Some(ticket);
    }

    /// The request was refused before any call (a named key's 403 or 429).
    pub fn refused(mut self, status: u16, kind: switchyard::ErrorKind, message: String) {
        if let Some(row) = &mut self.row {
            row.status = Some(status);
            row.error = Some(RowError { kind, message });
        }
        self.end(Outcome::Failed);
    }

    /// The request body as received, when bodies are kept.
    pub fn request_body(&mut self, body: &[u8]) {
        if self.log.storage.as_ref().is_some_and(|s| s.log_bodies())
            && let Some(row) = &mut self.row
        {
            row.request = Some(truncated(body));
        }
    }

    /// Whether the answer's body is wanted (`log_bodies`).
    pub fn wants_bodies(&self) -> bool {
        self.row.as_ref().is_some_and(|r| r.request.is_some())
    }

    /// The answer as sent (a stream: its SSE text), when bodies are kept.
    pub fn response_body(&mut self, body: &[u8]) {
        if let Some(row) = &mut self.row
            && row.request.is_some()
        {
            row.response = Some(truncated(body));
        }
    }

    /// The attempts made and the target that served (the first chunk, for a stream).
    pub fn served(&mut self, target: &str, attempts: &[Attempt]) {
        if let Some(row) = &mut self.row {
            let (_, fallback) = crate::routes::chat::calls_and_fallback(target, attempts);
            let served_by = self.route.target_id(target);
            row.fallback = fallback;
            // The serving target's attempts share the id just looked up (the usual request has only those).
            row.attempts = attempts
                .iter()
                .map(|a| {
                    let id = if a.target == target { served_by.clone() } else { self.route.target_id(&a.target) };
                    attempt_row(id, a)
                })
                .collect();
            row.served_by = Some(served_by);
            if row.stream {
                row.first_chunk_ms = Some(ms(self.started.elapsed()));
            }
        }
    }

    /// The status sent with the headers (a stream's commit, or a keep-alive stream's immediate 200).
    pub fn committed(&mut self) {
        if let Some(row) = &mut self.row {
            row.status = Some(200);
        }
    }

    /// The request ended with an answer in full.
    pub fn success(mut self, usage: Usage) {
        if let Some(row) = &mut self.row {
            row.status = Some(200);
            row.input_tokens = usage.input_tokens;
            row.output_tokens = usage.output_tokens;
        }
        self.end(Outcome::Success);
    }

    /// The request ended with an error; `status` is the one sent with the headers (200 after a commit).
    pub fn failed(mut self, status: u16, error: &switchyard::Error, message: String, usage: Usage) {
        if let Some(row) = &mut self.row {
            if row.served_by.is_none() {
                row.attempts =
                    error.attempts().iter().map(|a| attempt_row(self.route.target_id(&a.target), a)).collect();
            }
            row.status = Some(row.status.unwrap_or(status));
            row.input_tokens = usage.input_tokens;
            row.output_tokens = usage.output_tokens;
            row.error = Some(RowError { kind: error.kind(), message });
        }
        self.end(Outcome::Failed);
    }

    /// The client went away: usage seen so far is kept.
    pub fn cancelled(mut self, usage: Usage) {
        if let Some(row) = &mut self.row {
            row.input_tokens = usage.input_tokens;
            row.output_tokens = usage.output_tokens;
        }
        self.end(Outcome::Cancelled);
    }

    fn end(&mut self, outcome: Outcome) {
        let Some(mut row) = self.row.take() else { return };
        let used = row.input_tokens + row.output_tokens;
        // A client that left before any usage was reported may still have cost tokens upstream: its estimate
        // stays counted (the ticket dropped unsettled), so hanging up cannot dodge the key's `tpm`.
        if let Some(ticket) = self.ticket.take()
            && (used > 0 || outcome != Outcome::Cancelled)
        {
            ticket.settle(used);
        }
        row.outcome = outcome;
        let took = self.started.elapsed();
        row.latency_ms = ms(took);
        row.time = SystemTime::now().checked_sub(took).unwrap_or(SystemTime::UNIX_EPOCH);
        self.log.finished(row);
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        self.end(Outcome::Cancelled);
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Bodies are kept up to this many bytes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Bodies are kept up to 64 KiB.
fn truncated(body: &[u8]) -> String {
    let end = body.len().min(BODY_LIMIT);
    String::from_utf8_lossy(&body[..end]).into_owned()
}

/// An attempt as the log keeps it, under the route's shared `target` id.
fn attempt_row(target: Arc<str>, a: &Attempt) -> AttemptRow {
    let (outcome, kind, reason) = match &a.outcome {
        AttemptOutcome::Succeeded => (AttemptResult::Success, None, None),
        AttemptOutcome::Failed { kind, .. } => (AttemptResult::Failed, Some(*kind), None),
        AttemptOutcome::Skipped { reason } => (AttemptResult::Skipped, None, Some(reason.to_string())),
    };
    let called = a.was_called();
    AttemptRow {
        target,
        retry: called.then_some(a.retry),
        outcome,
        kind,
        status: None,
        latency_ms: called.then(|| ms(a.elapsed)),
        hedge: called.then_some(a.hedge),
        reason,
    }
}
