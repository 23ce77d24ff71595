//! The gateway's own header names, built once: a name given as text is parsed and checked on every use.

use http::HeaderName;

/// `x-request-id`.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `x-api-key` (Anthropic SDKs send the key here).
pub const API_KEY: HeaderName = HeaderName::from_static("x-api-key");
/// `x-switchyard-deadline-ms`: the caller's deadline for the whole request.
pub const DEADLINE_MS: HeaderName = HeaderName::from_static("x-switchyard-deadline-ms");
/// `x-switchyard-target`: the target that answered.
pub const TARGET: HeaderName = HeaderName::from_static("x-switchyard-target");
/// `x-switchyard-attempts`: upstream calls made.
pub const ATTEMPTS: HeaderName = HeaderName::from_static("x-switchyard-attempts");
/// `x-switchyard-fallback`: whether the answer came from another target than the first one called.
pub const FALLBACK: HeaderName = HeaderName::from_static("x-switchyard-fallback");
