//! Moving a log of an earlier layout (a `requests` table, one SQLite row per request) into batches, once, when
//! a newer build first opens it. Rows keep their order: by arrival, then as they were written.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension};

use super::row::{Api, Attempts, Outcome, Row, RowError, from_millis, parse_kind};
use super::schema::BATCH_ROWS;
use super::{insert, stored};

/// Moves every row of the `requests` table into batches and drops the table. One transaction: a failure leaves
/// the old table as it was.
pub(super) fn earlier_layouts(conn: &mut Connection) -> rusqlite::Result<()> {
    tracing::info!("storage: moving the request log to the new layout (once; a big log takes a while)");
    let tx = conn.transaction()?;
    // The first layout had a `time` column and `seq` in the order rows were written; layout 2 kept the time in
    // `seq` itself (arrival in ms times 4096, plus a number telling apart rows of one millisecond).
    let first = tx
        .query_row("SELECT 1 FROM pragma_table_info('requests') WHERE name = 'time'", [], |_| Ok(()))
        .optional()?
        .is_some();
    let (time, order) = if first { ("time", "time, seq") } else { ("seq / 4096", "seq") };
    {
        let mut stmt = tx.prepare(&format!(
            "SELECT {time}, id, route, api, stream, key, status, outcome, served_by, fallback, attempts, input_tokens, \
             output_tokens, latency_ms, first_chunk_ms, error_kind, error_message, request, response FROM requests \
             ORDER BY {order}"
        ))?;
        let mut rows = stmt.query([])?;
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        while let Some(r) = rows.next()? {
            batch.push(read_row(r)?);
            if batch.len() == BATCH_ROWS {
                insert::batch(&tx, &batch)?;
                batch.clear();
            }
        }
        insert::batch(&tx, &batch)?;
    }
    tx.execute_batch("DROP TABLE requests;")?;
    tx.commit()
}

/// A row of an earlier layout, with its bodies.
fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let attempts: String = r.get(10)?;
    let error_kind: Option<String> = r.get(15)?;
    let error_message: Option<String> = r.get(16)?;
    let count = |i: usize| -> rusqlite::Result<u64> { Ok(u64::try_from(r.get::<_, i64>(i)?).unwrap_or(0)) };
    Ok(Row {
        id: r.get(1)?,
        time: from_millis(r.get(0)?),
        route: Arc::from(r.get::<_, String>(2)?),
        api: Api::from_code(r.get(3)?),
        stream: r.get(4)?,
        key: r.get::<_, Option<String>>(5)?.map(Arc::from),
        status: r.get(6)?,
        outcome: Outcome::from_code(r.get(7)?),
        served_by: r.get::<_, Option<String>>(8)?.map(Arc::from),
        fallback: r.get(9)?,
        attempts: read_attempts(&attempts),
        input_tokens: count(11)?,
        output_tokens: count(12)?,
        latency_ms: count(13)?,
        first_chunk_ms: r.get::<_, Option<i64>>(14)?.map(|v| u64::try_from(v).unwrap_or(0)),
        error: error_kind.map(|kind| RowError { kind: parse_kind(&kind), message: error_message.unwrap_or_default() }),
        request: r.get(17)?,
        response: r.get(18)?,
    })
}

/// A row's attempts column; an attempt this build cannot read is left out rather than the whole list.
fn read_attempts(text: &str) -> Attempts {
    serde_json::from_str(text)
        .unwrap_or_else(|_| stored::attempts_leniently(serde_json::from_str(text).unwrap_or_default()))
}
