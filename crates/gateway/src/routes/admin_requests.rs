//! `GET /admin/requests`, `GET /admin/requests/{id}` and `GET /admin/usage`: reads of the request log
//! (SPEC-2 section 10), each on a blocking thread with its own read connection.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::{Path, Query, State};
use http::StatusCode;

use crate::error::{Api, ApiError};
use crate::state::AppState;
use crate::storage::{By, Cursor, Filter, Outcome, Page, Row, Storage, Usage, UsageQuery};

fn bad(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError::new(Api::OpenAi, status, message)
}

/// The database, or the 404 saying storage is off.
async fn storage(state: &AppState) -> Result<Arc<Storage>, ApiError> {
    state.log.storage().cloned().ok_or_else(|| {
        bad(StatusCode::NOT_FOUND, "the request log is off (storage.enabled = false); enable [storage] to keep it")
    })
}

/// Runs a blocking read.
async fn read<T: Send + 'static>(
    storage: Arc<Storage>,
    f: impl FnOnce(&Storage) -> Result<T, crate::storage::ReadError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(move || f(&storage)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => {
            tracing::warn!("{e}");
            Err(bad(StatusCode::SERVICE_UNAVAILABLE, "cannot read the request log; the gateway's log says why"))
        }
        Err(_) => Err(bad(StatusCode::INTERNAL_SERVER_ERROR, "the request log read stopped unexpectedly")),
    }
}

/// `since`/`until`: RFC 3339, or a duration back from now like `1h`.
pub(crate) fn parse_time(name: &str, text: &str) -> Result<SystemTime, String> {
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        return Ok(t);
    }
    let back = humantime::parse_duration(text)
        .map_err(|_| format!("{name}: expected RFC 3339 (2026-01-02T03:04:05Z) or a duration back from now (1h)"))?;
    Ok(SystemTime::now().checked_sub(back).unwrap_or(SystemTime::UNIX_EPOCH))
}

/// `GET /admin/requests?route=&target=&outcome=&key=&since=&until=&limit=&before=`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page>, ApiError> {
    let storage = storage(&state).await?;
    let filter = filter(&q).map_err(|message| bad(StatusCode::BAD_REQUEST, message))?;
    Ok(Json(read(storage, move |s| s.list(&filter)).await?))
}

fn filter(q: &HashMap<String, String>) -> Result<Filter, String> {
    let text = |k: &str| q.get(k).filter(|v| !v.is_empty()).cloned();
    let limit = match q.get("limit") {
        None => 50,
        Some(v) => v.parse::<usize>().ok().filter(|n| (1..=1000).contains(n)).ok_or("limit: expected 1 to 1000")?,
    };
    let outcome = match text("outcome") {
        None => None,
        Some(v) => Some(Outcome::parse(&v).ok_or("outcome: expected success, failed or cancelled")?),
    };
    let time = |k: &str| text(k).map(|v| parse_time(k, &v)).transpose();
    let before = match text("before") {
        None => None,
        Some(v) => Some(Cursor::parse(&v).ok_or("before: expected the \"next\" value of the previous page")?),
    };
    Ok(Filter {
        route: text("route"),
        target: text("target"),
        outcome,
        key: text("key"),
        since: time("since")?,
        until: time("until")?,
        before,
        limit,
    })
}

/// `GET /admin/requests/{id}`: the row with bodies.
pub async fn one(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Result<Json<Row>, ApiError> {
    let storage = storage(&state).await?;
    let wanted = id.clone();
    let row = read(storage, move |s| s.get(&wanted)).await?;
    row.map(Json).ok_or_else(|| bad(StatusCode::NOT_FOUND, format!("no request {id:?} in the log")))
}

/// `GET /admin/usage?since=&until=&bucket=&by=`.
pub async fn usage(
    State(state): State<Arc<AppState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Usage>, ApiError> {
    let storage = storage(&state).await?;
    let query = usage_query(&q).map_err(|message| bad(StatusCode::BAD_REQUEST, message))?;
    Ok(Json(read(storage, move |s| s.usage(&query)).await?))
}

fn usage_query(q: &HashMap<String, String>) -> Result<UsageQuery, String> {
    let since = match q.get("since") {
        Some(v) => parse_time("since", v)?,
        None => SystemTime::now().checked_sub(Duration::from_secs(86_400)).unwrap_or(SystemTime::UNIX_EPOCH),
    };
    let until = match q.get("until") {
        Some(v) => parse_time("until", v)?,
        None => SystemTime::now(),
    };
    let bucket_minutes = match q.get("bucket").map(String::as_str).unwrap_or("1h") {
        "1m" => 1,
        "1h" => 60,
        "1d" => 1440,
        _ => return Err("bucket: expected 1m, 1h or 1d".to_owned()),
    };
    let by = match q.get("by").map(String::as_str).unwrap_or("target") {
        "route" => By::Route,
        "target" => By::Target,
        "key" => By::Key,
        _ => return Err("by: expected route, target or key".to_owned()),
    };
    Ok(UsageQuery { since, until, bucket_minutes, by })
}
