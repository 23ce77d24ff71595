//! Reading every key matching a pattern, with its value (SCAN then MGET): background and admin use only.

use redis::aio::MultiplexedConnection;

use super::connection::Lost;

/// Every (key, value) matching `pattern`; keys that vanished between SCAN and MGET are left out.
pub(crate) async fn values(conn: &mut MultiplexedConnection, pattern: &str) -> Result<Vec<(String, String)>, Lost> {
    let keys = keys(conn, pattern).await?;
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let values: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query_async(conn).await?;
    Ok(keys.into_iter().zip(values).filter_map(|(k, v)| Some((k, v?))).collect())
}

/// Every key matching `pattern`, sorted.
pub(crate) async fn keys(conn: &mut MultiplexedConnection, pattern: &str) -> Result<Vec<String>, Lost> {
    let mut keys: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) =
            redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(500).query_async(conn).await?;
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys.sort_unstable();
    keys.dedup();
    Ok(keys)
}
