//! What clients may see of an engine error: target ids, error kinds, statuses and what the upstream said
//! about the request; never upstream URLs or OS errors. The log keeps the whole error.

use switchyard::{
    Error, ErrorKind,
    attempt::{Attempt, AttemptOutcome},
};

/// What a client is told about a failed connection; the URL and the OS error stay in the log.
const CONNECTION: &str = "the connection to the upstream failed or broke off (details in the gateway log)";

/// The error as clients see it.
pub fn for_client(e: &Error) -> Error {
    match e {
        Error::Connection { .. } => Error::Connection { message: CONNECTION.to_owned() },
        Error::AllFailed { attempts } => Error::AllFailed { attempts: attempts.iter().map(attempt).collect() },
        Error::DeadlineExceeded { attempts } => {
            Error::DeadlineExceeded { attempts: attempts.iter().map(attempt).collect() }
        }
        Error::TargetsLimited { retry_after, attempts } => {
            Error::TargetsLimited { retry_after: *retry_after, attempts: attempts.iter().map(attempt).collect() }
        }
        Error::Unavailable { reason, attempts } => {
            Error::Unavailable { reason: scrub(reason), attempts: attempts.iter().map(attempt).collect() }
        }
        Error::Server { status, message } => Error::Server { status: *status, message: scrub(message) },
        Error::Overloaded { status, message } => Error::Overloaded { status: *status, message: scrub(message) },
        Error::InvalidResponse { message } => Error::InvalidResponse { message: scrub(message) },
        Error::NotFound { message } => Error::NotFound { message: scrub(message) },
        Error::ContentFiltered { message, attempts } => {
            Error::ContentFiltered { message: message.clone(), attempts: attempts.iter().map(attempt).collect() }
        }
        Error::InvalidRequest { status, message, param, attempts } => Error::InvalidRequest {
            status: *status,
            message: message.clone(),
            param: param.clone(),
            attempts: attempts.iter().map(attempt).collect(),
        },
        other => other.clone(),
    }
}

/// One attempt as clients see it: a connection failure says only that.
fn attempt(a: &Attempt) -> Attempt {
    let outcome = match &a.outcome {
        AttemptOutcome::Failed { kind: ErrorKind::Connection, .. } => {
            AttemptOutcome::Failed { kind: ErrorKind::Connection, message: CONNECTION.to_owned() }
        }
        AttemptOutcome::Failed { kind, message } => AttemptOutcome::Failed { kind: *kind, message: scrub(message) },
        other => other.clone(),
    };
    Attempt { outcome, ..a.clone() }
}

/// The text with every URL replaced by `(upstream)`.
fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = ["http://", "https://"].iter().filter_map(|s| rest.find(s)).min() {
        out.push_str(&rest[..start]);
        out.push_str("(upstream)");
        let after = &rest[start..];
        let end = after.find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ')' | ',')).unwrap_or(after.len());
        // Punctuation that ends the sentence is not part of the URL.
        let url = after[..end].trim_end_matches([':', '.', ';']);
        rest = &after[url.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_scrubbed_and_connection_failures_say_only_that() {
        assert_eq!(scrub("404 from http://10.0.0.1:8000/v1/x: no such model"), "404 from (upstream): no such model");
        let e = Error::Connection { message: "request to http://127.0.0.1:1/v1 failed: refused (os error 111)".into() };
        assert_eq!(for_client(&e).to_string(), format!("connection failed: {CONNECTION}"));
    }
}
