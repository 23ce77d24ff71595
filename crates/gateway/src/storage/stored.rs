//! A row as the log stores it: a JSON array of its fields by position, bodies apart (see [`super::schema`]).
//!
//! Positions: 0 arrival (ms since the epoch), 1 id, 2 route, 3 api, 4 stream, 5 key, 6 status, 7 outcome,
//! 8 served_by, 9 fallback, 10 attempts, 11 input_tokens, 12 output_tokens, 13 latency_ms, 14 first_chunk_ms,
//! 15 error kind, 16 error message. A reader skips positions after the ones it knows (a newer version's).

use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};

use super::row::{
    Api, AttemptResult, AttemptRow, Attempts, Outcome, Row, RowError, RowId, from_millis, millis, parse_kind,
};

/// Appends `row` (without bodies) to `out` as its stored JSON array.
pub(super) fn encode(row: &Row, out: &mut String) {
    out.push('[');
    push_number(out, millis(row.time));
    out.push(',');
    json_str(&row.id, out);
    out.push(',');
    json_str(&row.route, out);
    out.push(',');
    json_str(row.api.as_str(), out);
    out.push_str(if row.stream { ",true," } else { ",false," });
    opt_str(row.key.as_deref(), out);
    out.push(',');
    match row.status {
        Some(status) => push_number(out, status),
        None => out.push_str("null"),
    }
    out.push_str(match row.outcome {
        Outcome::Success => ",\"success\",",
        Outcome::Failed => ",\"failed\",",
        Outcome::Cancelled => ",\"cancelled\",",
    });
    opt_str(row.served_by.as_deref(), out);
    out.push_str(if row.fallback { ",true," } else { ",false," });
    attempts_text(&row.attempts, out);
    for n in [row.input_tokens, row.output_tokens, row.latency_ms] {
        out.push(',');
        push_number(out, n);
    }
    out.push(',');
    match row.first_chunk_ms {
        Some(ms) => push_number(out, ms),
        None => out.push_str("null"),
    }
    out.push(',');
    opt_str(row.error.as_ref().map(|e| e.kind.as_str()), out);
    out.push(',');
    opt_str(row.error.as_ref().map(|e| e.message.as_str()), out);
    out.push(']');
}

/// The rows of a batch's stored text, in their stored order. An attempt this build cannot read (a newer
/// version wrote it) is left out rather than the whole row.
pub(super) fn decode(text: &str) -> Result<Vec<Row>, serde_json::Error> {
    match serde_json::from_str::<Vec<Stored<Strict>>>(text) {
        Ok(rows) => Ok(rows.into_iter().map(|s| s.0).collect()),
        Err(_) => Ok(serde_json::from_str::<Vec<Stored<Lenient>>>(text)?.into_iter().map(|s| s.0).collect()),
    }
}

/// How attempts are read: typed (fast), or each on its own, leaving out those that do not read.
trait AttemptsMode {
    fn read<'de, A: SeqAccess<'de>>(seq: &mut A) -> Result<Option<Attempts>, A::Error>;
}

struct Strict;
struct Lenient;

impl AttemptsMode for Strict {
    fn read<'de, A: SeqAccess<'de>>(seq: &mut A) -> Result<Option<Attempts>, A::Error> {
        seq.next_element::<Attempts>()
    }
}

impl AttemptsMode for Lenient {
    fn read<'de, A: SeqAccess<'de>>(seq: &mut A) -> Result<Option<Attempts>, A::Error> {
        let items: Option<Vec<serde_json::Value>> = seq.next_element()?;
        Ok(items.map(attempts_leniently))
    }
}

/// The attempts among `items` that this build can read (a newer version may write attempts it cannot).
pub(super) fn attempts_leniently(items: Vec<serde_json::Value>) -> Attempts {
    items.into_iter().filter_map(|item| serde_json::from_value(item).ok()).collect()
}

/// A row read from its stored array.
struct Stored<M>(Row, std::marker::PhantomData<M>);

impl<'de, M: AttemptsMode> de::Deserialize<'de> for Stored<M> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(RowVisitor::<M>(std::marker::PhantomData))
    }
}

struct RowVisitor<M>(std::marker::PhantomData<M>);

/// The next position, which must be there.
fn next<'de, A: SeqAccess<'de>, T: de::Deserialize<'de>>(seq: &mut A, at: usize) -> Result<T, A::Error> {
    seq.next_element()?.ok_or_else(|| de::Error::invalid_length(at, &"a stored row of 17 fields"))
}

impl<'de, M: AttemptsMode> Visitor<'de> for RowVisitor<M> {
    type Value = Stored<M>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a stored row (a JSON array)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let time: i64 = next(&mut seq, 0)?;
        let id: RowId = next(&mut seq, 1)?;
        let route: String = next(&mut seq, 2)?;
        let api: Api = next(&mut seq, 3)?;
        let stream: bool = next(&mut seq, 4)?;
        let key: Option<String> = next(&mut seq, 5)?;
        let status: Option<u16> = next(&mut seq, 6)?;
        let outcome: Outcome = next(&mut seq, 7)?;
        let served_by: Option<String> = next(&mut seq, 8)?;
        let fallback: bool = next(&mut seq, 9)?;
        let attempts = M::read(&mut seq)?.ok_or_else(|| de::Error::invalid_length(10, &self))?;
        let input_tokens: u64 = next(&mut seq, 11)?;
        let output_tokens: u64 = next(&mut seq, 12)?;
        let latency_ms: u64 = next(&mut seq, 13)?;
        let first_chunk_ms: Option<u64> = next(&mut seq, 14)?;
        let error_kind: Option<String> = next(&mut seq, 15)?;
        let error_message: Option<String> = next(&mut seq, 16)?;
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        let row = Row {
            id,
            time: from_millis(time),
            route: Arc::from(route),
            api,
            stream,
            key: key.map(Arc::from),
            status,
            outcome,
            served_by: served_by.map(Arc::from),
            fallback,
            attempts,
            input_tokens,
            output_tokens,
            latency_ms,
            first_chunk_ms,
            error: error_kind
                .map(|kind| RowError { kind: parse_kind(&kind), message: error_message.unwrap_or_default() }),
            request: None,
            response: None,
        };
        Ok(Stored(row, std::marker::PhantomData))
    }
}

/// The attempts as compact JSON text, appended to `out`: the text serde_json writes for them, written here
/// field by field because serde's generic path cost about 1.4k instructions per row, a tenth of the writer's
/// work when it was measured.
pub(super) fn attempts_text(attempts: &[AttemptRow], out: &mut String) {
    out.push('[');
    for (i, a) in attempts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"target\":");
        json_str(&a.target, out);
        if let Some(retry) = a.retry {
            out.push_str(",\"retry\":");
            push_number(out, retry);
        }
        out.push_str(match a.outcome {
            AttemptResult::Success => ",\"outcome\":\"success\"",
            AttemptResult::Failed => ",\"outcome\":\"failed\"",
            AttemptResult::Skipped => ",\"outcome\":\"skipped\"",
        });
        if let Some(kind) = a.kind {
            out.push_str(",\"kind\":\"");
            out.push_str(kind.as_str());
            out.push('"');
        }
        if let Some(status) = a.status {
            out.push_str(",\"status\":");
            push_number(out, status);
        }
        if let Some(ms) = a.latency_ms {
            out.push_str(",\"latency_ms\":");
            push_number(out, ms);
        }
        if let Some(hedge) = a.hedge {
            out.push_str(if hedge { ",\"hedge\":true" } else { ",\"hedge\":false" });
        }
        if let Some(reason) = &a.reason {
            out.push_str(",\"reason\":");
            json_str(reason, out);
        }
        out.push('}');
    }
    out.push(']');
}

/// `text` as a JSON string or `null`.
fn opt_str(text: Option<&str>, out: &mut String) {
    match text {
        Some(text) => json_str(text, out),
        None => out.push_str("null"),
    }
}

/// `text` as a JSON string: as it is when nothing in it needs escaping (ids and names, mostly), else escaped
/// by serde_json.
fn json_str(text: &str, out: &mut String) {
    if switchyard_providers::plain_run(text.as_bytes(), 0) == text.len() {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned()));
    }
}

/// `n` in decimal digits.
fn push_number(out: &mut String, n: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(n));
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use switchyard::ErrorKind;

    use super::attempts_text;
    use crate::storage::{AttemptResult, AttemptRow};

    fn attempt(target: &str, outcome: AttemptResult) -> AttemptRow {
        AttemptRow {
            target: Arc::from(target),
            retry: None,
            outcome,
            kind: None,
            status: None,
            latency_ms: None,
            hedge: None,
            reason: None,
        }
    }

    /// The stored text is what serde_json writes for the attempts, so every reader (and every older build)
    /// parses it as before.
    #[test]
    fn attempts_text_is_what_serde_json_writes() {
        let mut lists = vec![Vec::new()];
        for outcome in [AttemptResult::Success, AttemptResult::Failed, AttemptResult::Skipped] {
            lists.push(vec![attempt("oa/gpt-4o", outcome)]);
        }
        let mut full = attempt("oa-a", AttemptResult::Failed);
        full.retry = Some(u32::MAX);
        full.status = Some(503);
        full.latency_ms = Some(u64::MAX);
        full.hedge = Some(true);
        let mut lists_of_kinds = Vec::new();
        for kind in ErrorKind::ALL {
            let mut a = full.clone();
            a.kind = Some(kind);
            lists_of_kinds.push(a);
        }
        lists.push(lists_of_kinds);
        let mut odd = attempt("quote\" back\\ tab\t nl\n ctl\u{1} del\u{7f} é 🚀", AttemptResult::Skipped);
        odd.reason = Some("breaker open: \"oa\"\r\n\u{0}".to_owned());
        odd.retry = Some(0);
        odd.latency_ms = Some(0);
        odd.hedge = Some(false);
        let mut skipped = attempt("b", AttemptResult::Skipped);
        skipped.reason = Some("over its rpm".to_owned());
        lists.push(vec![odd, skipped, full]);
        let mut out = String::from("left over");
        for list in lists {
            out.clear();
            attempts_text(&list, &mut out);
            assert_eq!(out, serde_json::to_string(&list).unwrap(), "{list:?}");
            let back: Vec<AttemptRow> = serde_json::from_str(&out).unwrap();
            assert_eq!(back, list);
        }
    }
}
