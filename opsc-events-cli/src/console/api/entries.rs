//! A stream's newest entries, search by event or correlation id, and the conversation of one
//! correlation id across streams.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use opsc_events_runtime::cli::entry_json;
use opsc_events_runtime::{MessageId, Runtime};
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::error::ApiError;
use super::{MAX_LIMIT, Result, limit, limit_scan, message_id, stream_name};

/// Entries read per page while searching.
const PAGE: usize = 500;

/// The query of `GET /api/streams/{stream}/entries`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::console) struct EntriesQuery {
    limit: Option<usize>,
    before: Option<String>,
    event_id: Option<String>,
    correlation_id: Option<String>,
    scan: Option<usize>,
}

/// Pages back from the newest entry of `stream`, keeping those `keep` accepts, until `limit`
/// are kept or `scan` entries were looked at.
async fn search(
    rt: &Runtime,
    stream: &str,
    mut before: Option<MessageId>,
    limit: usize,
    scan: usize,
    keep: impl Fn(&Value) -> bool,
) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut seen = 0usize;
    while out.len() < limit && seen < scan {
        let page = rt
            .read_newest(stream, before, PAGE.min(scan - seen))
            .await?;
        let Some(last) = page.last().map(|e| e.id) else {
            break;
        };
        seen += page.len();
        for e in &page {
            let j = entry_json(e);
            if keep(&j) {
                out.push(j);
                if out.len() == limit {
                    break;
                }
            }
        }
        before = Some(last);
    }
    Ok(out)
}

/// `GET /api/streams/{stream}/entries`: the newest entries decoded, newest first; with
/// `event_id` or `correlation_id`, only those that match (among the newest `scan`).
pub(in crate::console) async fn entries(
    State(st): State<Arc<AppState>>,
    Path(stream): Path<String>,
    Query(q): Query<EntriesQuery>,
) -> Result<Json<Value>> {
    let stream = stream_name(&stream)?;
    let limit = limit(q.limit, 50, MAX_LIMIT)?;
    let before = q.before.as_deref().map(message_id).transpose()?;
    let searching = q.event_id.is_some() || q.correlation_id.is_some();
    let scan = if searching {
        limit_scan(q.scan)?
    } else {
        limit
    };
    let (event_id, correlation_id) = (q.event_id, q.correlation_id);
    let found = search(&st.rt, &stream, before, limit, scan, |j| {
        event_id.as_deref().is_none_or(|id| j["event_id"] == id)
            && correlation_id
                .as_deref()
                .is_none_or(|id| j["correlation_id"] == id)
    })
    .await?;
    Ok(Json(json!({ "stream": stream, "entries": found })))
}

/// The query of `GET /api/correlation/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::console) struct CorrelationQuery {
    scan: Option<usize>,
}

/// `GET /api/correlation/{id}`: every event of one conversation (its correlation id) across
/// every stream, oldest first (by event time, then stream and id), among the newest `scan`
/// entries of each stream.
pub(in crate::console) async fn correlation(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<CorrelationQuery>,
) -> Result<Json<Value>> {
    let id = uuid::Uuid::parse_str(&id)
        .map_err(|_| ApiError::BadRequest(format!("`{id}` is not a correlation id (a UUID)")))?
        .to_string();
    let scan = limit_scan(q.scan)?;
    let mut events = Vec::new();
    for stream in st.rt.streams().await? {
        let found = search(&st.rt, &stream, None, MAX_LIMIT, scan, |j| {
            j["correlation_id"] == id.as_str()
        })
        .await?;
        for mut e in found {
            e["stream"] = json!(stream);
            events.push(e);
        }
    }
    events.sort_by(|a, b| {
        let key = |v: &Value| {
            (
                v["timestamp"].as_u64().unwrap_or(0),
                v["stream"].as_str().unwrap_or("").to_owned(),
                v["id"].as_str().and_then(|s| s.parse::<MessageId>().ok()),
            )
        };
        key(a).cmp(&key(b))
    });
    Ok(Json(json!({ "correlation_id": id, "events": events })))
}
