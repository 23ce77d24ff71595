//! Named client keys at request time: which routes a key may use, and its `rpm`/`tpm` limits over the one
//! sliding window of the core ([`RateWindow`], cluster-wide through leases with Redis), with the
//! `x-ratelimit-*` headers its answers carry (as a response extension the connection writes into the head).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use http::StatusCode;
use switchyard::limits::{LeaseBoard, LimitScope, RateDenied, RateRemaining, RateReservation, RateWindow};
use tokio::time::Instant;

use crate::config::ClientKeyConfig;
use crate::error::{Api, ApiError};

/// One named client key (`[server.keys.NAME]`), shared by every request made with it.
#[derive(Debug)]
pub struct ClientKey {
    /// Shared with every log row of its requests.
    name: Arc<str>,
    /// Model names (routes and target ids) it may use; `None`: all.
    routes: Option<BTreeSet<String>>,
    /// Its `rpm`/`tpm` window; `None` when it has neither. Shared with the key it replaced on a reload
    /// when the limits did not change, so a reload does not give every key a fresh minute.
    window: Option<Arc<RateWindow>>,
}

impl ClientKey {
    /// The key of a validated config entry; `before`, the key of that name in the config it replaces, hands
    /// on its window when the limits are the same. With `leases`, its `rpm`/`tpm` are cluster-wide.
    pub fn new(config: &ClientKeyConfig, before: Option<&ClientKey>, leases: Option<&Arc<LeaseBoard>>) -> Self {
        let limited = config.rpm.is_some() || config.tpm.is_some();
        let kept =
            before.and_then(|b| b.window.as_ref()).filter(|w| w.rpm() == config.rpm && w.tpm() == config.tpm).cloned();
        let fresh = || match leases {
            Some(board) => board.window(LimitScope::Client(config.name.clone()), config.rpm, config.tpm),
            None => Arc::new(RateWindow::new(config.rpm, config.tpm)),
        };
        let window = kept.or_else(|| limited.then(fresh));
        ClientKey { name: Arc::from(config.name.as_str()), routes: config.routes.clone(), window }
    }

    /// Its name: what the log, the usage and error messages show instead of the key.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its name, shared (the log row of each of its requests holds it without a copy).
    pub fn shared_name(&self) -> &Arc<str> {
        &self.name
    }

    /// Whether it may name `model` (a route name or a target id).
    pub fn may_use(&self, model: &str) -> bool {
        self.routes.as_ref().is_none_or(|routes| routes.contains(model))
    }

    /// The 403 for a `model` it may not use.
    pub fn forbidden(&self, model: &str) -> KeyRefusal {
        KeyRefusal::Route { key: self.name.to_string(), model: model.to_owned() }
    }

    /// Admits a request to `model` reserving the `tokens` it estimates (asked only under `tpm`), or refuses it (route not allowed: 403; over a limit: 429).
    pub fn admit(self: &Arc<Self>, model: &str, tokens: impl FnOnce() -> u64) -> Result<Admitted, KeyRefusal> {
        if !self.may_use(model) {
            return Err(self.forbidden(model));
        }
        let Some(window) = &self.window else {
            return Ok(Admitted { ticket: None, headers: LimitHeaders::default() });
        };
        // The estimate walks every message: only a key with `tpm` needs it.
        let tokens = if window.tpm().is_some() { tokens() } else { 0 };
        let now = Instant::now();
        match window.try_acquire(now, tokens) {
            Ok((reservation, remaining)) => Ok(Admitted {
                ticket: window.tpm().is_some().then(|| KeyTicket { key: self.clone(), reservation }),
                headers: LimitHeaders::new(window, remaining),
            }),
            Err(denied) => Err(KeyRefusal::Limit {
                key: self.name.to_string(),
                denied,
                headers: LimitHeaders::new(window, window.remaining(now)),
            }),
        }
    }
}

/// An admitted request: its token reservation (when the key has `tpm`) and its answer's headers.
#[derive(Debug)]
pub struct Admitted {
    /// Settle it with the tokens the answer reports.
    pub ticket: Option<KeyTicket>,
    /// The `x-ratelimit-*` headers for the answer.
    pub headers: LimitHeaders,
}

/// A request's token reservation in its key's window. Dropped unsettled, the estimate stays counted.
#[derive(Debug)]
pub struct KeyTicket {
    key: Arc<ClientKey>,
    reservation: RateReservation,
}

impl KeyTicket {
    /// Replaces the estimate with the tokens really used (input plus output).
    pub fn settle(mut self, used: u64) {
        if let Some(window) = &self.key.window {
            window.settle(&mut self.reservation, used);
        }
    }
}

/// `x-ratelimit-limit-*` and `x-ratelimit-remaining-*`, each pair when its limit is set.
///
/// An answer carries them as a response extension, and the connection writes them into the head
/// ([`LimitHeaders::fields`]): inserting the four custom names into a `HeaderMap` hashed each name byte by
/// byte (~2k instructions an answer, measured with callgrind; the extension costs ~0.4k). A server other than
/// the gateway's own connection layer (the router served by hand) writes them from [`LimitHeaders::fields`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitHeaders {
    /// (`rpm`, requests left).
    requests: Option<(u64, u64)>,
    /// (`tpm`, tokens left).
    tokens: Option<(u64, u64)>,
}

impl LimitHeaders {
    fn new(window: &RateWindow, remaining: RateRemaining) -> Self {
        LimitHeaders { requests: window.rpm().zip(remaining.requests), tokens: window.tpm().zip(remaining.tokens) }
    }

    /// Puts the headers on an answer (before its body is sent, so streams carry them too); nothing when the
    /// key has no limits.
    pub fn stamp(self, response: &mut Response) {
        if self.requests.is_some() || self.tokens.is_some() {
            response.extensions_mut().insert(self);
        }
    }

    /// The header fields in the order they are written: name and value.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, u64)> {
        use crate::headers::{LIMIT_REQUESTS, LIMIT_TOKENS, REMAINING_REQUESTS, REMAINING_TOKENS};
        let requests =
            self.requests.into_iter().flat_map(|(limit, left)| [(LIMIT_REQUESTS, limit), (REMAINING_REQUESTS, left)]);
        let tokens =
            self.tokens.into_iter().flat_map(|(limit, left)| [(LIMIT_TOKENS, limit), (REMAINING_TOKENS, left)]);
        requests.chain(tokens)
    }
}

/// Why a named key's request was refused.
#[derive(Debug, Clone)]
pub enum KeyRefusal {
    /// The key may not use this route or target: 403.
    Route {
        /// The key's name.
        key: String,
        /// The `model` the request named.
        model: String,
    },
    /// The key is at its `rpm` or `tpm` limit: 429 with `Retry-After`.
    Limit {
        /// The key's name.
        key: String,
        /// Which limit, and until when.
        denied: RateDenied,
        /// The window's state, for the 429's headers.
        headers: LimitHeaders,
    },
}

/// A request whose token estimate alone exceeds `tpm` never fits; it is told to retry after a whole window.
const NEVER_FITS_RETRY: Duration = Duration::from_secs(60);

impl KeyRefusal {
    /// The error kind the request log records: a route the key may not use is an auth failure (403).
    pub fn kind(&self) -> switchyard::ErrorKind {
        match self {
            KeyRefusal::Route { .. } => switchyard::ErrorKind::Auth,
            KeyRefusal::Limit { .. } => switchyard::ErrorKind::RateLimited,
        }
    }

    /// The answer in the caller's API shape, with `Retry-After` and the limit headers on a 429.
    pub fn api_error(&self, api: Api) -> (ApiError, LimitHeaders) {
        match self {
            KeyRefusal::Route { key, model } => (
                ApiError::new(
                    api,
                    StatusCode::FORBIDDEN,
                    format!(
                        "client key {key:?} may not use {model:?}: name one of its routes \
                         (server.keys.{key}.routes); GET /v1/models lists them"
                    ),
                ),
                LimitHeaders::default(),
            ),
            KeyRefusal::Limit { key, denied, headers } => {
                let wait = denied.retry_after.unwrap_or(NEVER_FITS_RETRY);
                let secs = u64::try_from(wait.as_millis().div_ceil(1000)).unwrap_or(u64::MAX).max(1);
                let message = match denied.retry_after {
                    Some(_) => format!("client key {key:?}: {denied}; retry after {secs} s"),
                    None => format!("client key {key:?}: {denied}; shorten the prompt or lower max_tokens"),
                };
                let mut error = ApiError::new(api, StatusCode::TOO_MANY_REQUESTS, message);
                error.retry_after = Some(secs);
                (error, *headers)
            }
        }
    }
}
