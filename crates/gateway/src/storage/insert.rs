//! Writing a batch of request rows: one `batches` row holding them all (see [`super::schema`]), and a
//! `bodies` row for each request whose bodies are kept.

use std::borrow::Borrow;
use std::sync::Arc;

use rusqlite::{Result, Transaction, params};

use super::bloom::{self, Tag};
use super::row::{Row, millis};
use super::schema::SLOTS;
use super::stored;

/// Writes `rows` (at most [`super::schema::BATCH_ROWS`]) as one batch, in arrival order; nothing for none.
pub(super) fn batch<R: Borrow<Row>>(tx: &Transaction<'_>, rows: &[R]) -> Result<()> {
    // Arrival order (rows come in the order requests finished), keeping the finishing order within a
    // millisecond: readers list newest first by (arrival, batch, position).
    let mut sorted: Vec<&Row> = rows.iter().map(Borrow::borrow).collect();
    sorted.sort_by_key(|row| row.time);
    let (Some(first), Some(last)) = (sorted.first(), sorted.last()) else {
        return Ok(());
    };
    let (first_ms, last_ms) = (millis(first.time), millis(last.time));
    let mut text = String::new();
    let mut names = Names::default();
    text.push('[');
    for (i, row) in sorted.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        stored::encode(row, &mut text);
        if i == 0 {
            // Room for rows like the first and then some, so the text is not copied as it grows.
            text.reserve((text.len() + 64) * sorted.len());
        }
        names.add_row(row);
    }
    text.push(']');
    let filter = bloom::build(&names.hashes);
    tx.prepare_cached("INSERT INTO batches (first_ms, last_ms, filter, rows) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![first_ms, last_ms, filter, text])?;
    let id = tx.last_insert_rowid();
    for (i, row) in sorted.iter().enumerate() {
        if row.request.is_some() || row.response.is_some() {
            tx.prepare_cached("INSERT INTO bodies (slot, request, response) VALUES (?1, ?2, ?3)")?.execute(params![
                id * SLOTS + i as i64,
                row.request,
                row.response
            ])?;
        }
    }
    Ok(())
}

/// The hashes a batch's filter holds: every id, and each name once. Names are the running config's shared
/// texts, so a name met before is known by its address without hashing it again.
#[derive(Default)]
struct Names {
    hashes: Vec<u64>,
    seen: Vec<(Tag, *const u8, usize)>,
    outcomes: [bool; 3],
}

/// Names remembered per batch; past this, a name is hashed each time (a filter may hold a hash twice).
const SEEN: usize = 64;

impl Names {
    fn add_row(&mut self, row: &Row) {
        self.hashes.push(bloom::hash(Tag::Id, row.id.as_bytes()));
        self.name(Tag::Route, &row.route);
        if let Some(key) = &row.key {
            self.name(Tag::Key, key);
        }
        if let Some(target) = &row.served_by {
            self.name(Tag::Target, target);
        }
        for attempt in row.attempts.iter() {
            self.name(Tag::Target, &attempt.target);
        }
        if let Some(seen) = self.outcomes.get_mut(row.outcome.code() as usize)
            && !*seen
        {
            *seen = true;
            self.hashes.push(bloom::outcome(row.outcome));
        }
    }

    fn name(&mut self, tag: Tag, text: &Arc<str>) {
        let at = (tag, text.as_ptr(), text.len());
        if self.seen.contains(&at) {
            return;
        }
        if self.seen.len() < SEEN {
            self.seen.push(at);
        }
        self.hashes.push(bloom::hash(tag, text.as_bytes()));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    use switchyard::ErrorKind;

    use crate::storage::{Api, Outcome, Row, RowError};

    /// Every field of a row, set or null, plain or needing escapes, reads back from its batch as written.
    #[test]
    fn every_field_of_a_row_reads_back_from_its_batch_as_written() {
        let path = std::env::temp_dir().join(format!("switchyard-insert-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let routes: [Arc<str>; 2] = [Arc::from("chat"), Arc::from("code")];
        // Two shared texts with the same content: the filter knows names by address, the rows by content.
        let targets: [Arc<str>; 3] = [Arc::from("oa/gpt-4o"), Arc::from("an/claude"), Arc::from("oa/gpt-4o")];
        let rows: Vec<Row> = (0..90u64)
            .map(|i| {
                let time = UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + i);
                let mut row =
                    Row::arrived(&format!("row-{i}"), time, routes[(i % 2) as usize].clone(), Api::OpenAi, i % 5 == 0);
                row.key = (i % 3 == 0).then(|| format!("key-{i}").into());
                row.status = (i % 4 != 1).then_some(200 + (i % 7) as u16);
                row.outcome = [Outcome::Success, Outcome::Failed, Outcome::Cancelled][(i % 3) as usize];
                row.served_by = (i % 5 != 2).then(|| targets[(i % 3) as usize].clone());
                row.fallback = i % 6 == 0;
                row.input_tokens = i;
                row.output_tokens = 2 * i;
                row.latency_ms = 3 * i;
                row.first_chunk_ms = (i % 2 == 0).then_some(i);
                row.error = (i % 4 == 3).then(|| RowError {
                    kind: ErrorKind::ALL[(i % 15) as usize],
                    message: format!("failed \"{i}\"\n\t\u{1} é"),
                });
                row.request = (i % 7 < 3).then(|| format!("{{\"n\":{i}}}"));
                row.response = (i % 7 == 1).then(|| format!("answer {i}"));
                row
            })
            .collect();
        crate::storage::write_rows(&path, &rows).unwrap();
        for row in &rows {
            let read = crate::storage::query::get(&path, &row.id).unwrap();
            assert_eq!(read.as_ref(), Some(row));
        }
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(path.with_extension("db-wal"));
        let _ = std::fs::remove_file(path.with_extension("db-shm"));
    }
}
