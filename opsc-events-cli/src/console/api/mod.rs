//! The JSON API under `/api` (documented in docs/OPERATIONS.md § Console API). Reads are
//! `GET`; writes are `POST` with a JSON body. Replay and purge go through the runtime's
//! `DeadLetters`, as `opsc dlq` does.

mod entries;
mod groups;
mod letters;
mod overview;

use std::str::FromStr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use opsc_events_runtime::keys::{GROUP_NAME, STREAM_NAME};
use opsc_events_runtime::{MessageId, Runtime};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;

pub(super) use entries::{correlation, entries};
pub(super) use groups::{groups, remove_group_route, reset_group_route};
pub(super) use letters::{letter, letters, purge, replay};
pub(super) use overview::{overview, stream_names};

type Result<T, E = ApiError> = std::result::Result<T, E>;

/// The most entries or letters one answer holds.
const MAX_LIMIT: usize = 1000;
/// Entries of each stream a search looks at, unless `scan` says otherwise.
const DEFAULT_SCAN: usize = 10_000;
/// The most entries of each stream a search may look at.
const MAX_SCAN: usize = 1_000_000;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn stream_name(s: &str) -> Result<String> {
    STREAM_NAME
        .check(s)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(s.to_owned())
}

fn group_name(s: &str) -> Result<String> {
    GROUP_NAME
        .check(s)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(s.to_owned())
}

fn message_id(s: &str) -> Result<MessageId> {
    MessageId::from_str(s).map_err(|_| {
        ApiError::BadRequest(format!(
            "`{s}` is not an entry id such as `1700000000000-0`"
        ))
    })
}

fn limit(n: Option<usize>, default: usize, max: usize) -> Result<usize> {
    match n {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::BadRequest(format!(
            "`{n}` is out of range: 1 to {max}"
        ))),
    }
}

/// The streams to look at: `only`, or every stream.
async fn streams(rt: &Runtime, only: Option<&str>) -> Result<Vec<String>> {
    match only {
        Some(s) => Ok(vec![stream_name(s)?]),
        None => Ok(rt.streams().await?),
    }
}

fn limit_scan(scan: Option<usize>) -> Result<usize> {
    limit(scan, DEFAULT_SCAN, MAX_SCAN)
}

/// `GET /api/session`: what the page needs to know before it draws anything.
pub(super) async fn session(State(st): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({
        "writes": st.writes,
        "csrf": st.csrf.expose(),
        "transport": st.rt.transport_name(),
        "prefix": st.rt.keys().prefix(),
        "stale_after_ms": u64::try_from(st.stale_after.as_millis()).unwrap_or(u64::MAX),
    }))
}

/// Anything else: 404 (JSON under `/api`).
pub(super) async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no such page or endpoint: `{}`", uri.path()))
}
