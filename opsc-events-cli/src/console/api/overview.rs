//! `GET /api/overview` (paged) and `GET /api/streams`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use futures_util::{StreamExt, TryStreamExt};
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::history::{self, Point};
use super::{Result, limit, now_ms};

/// The throughput window of the overview.
const THROUGHPUT_WINDOW_MS: u64 = 60_000;
/// Streams on one overview page, unless `limit` says otherwise.
pub(super) const DEFAULT_PAGE: usize = 100;
/// The most streams on one overview page.
pub(super) const MAX_PAGE: usize = 1000;
/// Streams looked at concurrently (each look is a few round trips).
pub(super) const CONCURRENT_LOOKS: usize = 16;

/// The query of `GET /api/overview`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::console) struct OverviewQuery {
    /// Streams to skip (in name order).
    offset: Option<usize>,
    limit: Option<usize>,
}

/// `GET /api/streams`: the names of every stream, in order (cheap: no per-stream look).
pub(in crate::console) async fn stream_names(
    State(st): State<Arc<AppState>>,
) -> Result<Json<Value>> {
    let mut names = st.rt.streams().await?;
    names.sort_unstable();
    Ok(Json(json!({ "streams": names })))
}

/// `GET /api/overview`: one page of streams (in name order) with their length, throughput,
/// dead letters and groups, and their recent samples; `total` is the number of streams.
pub(in crate::console) async fn overview(
    State(st): State<Arc<AppState>>,
    Query(q): Query<OverviewQuery>,
) -> Result<Json<Value>> {
    let per_page = limit(q.limit, DEFAULT_PAGE, MAX_PAGE)?;
    let offset = q.offset.unwrap_or(0);
    let mut names = st.rt.streams().await?;
    names.sort_unstable();
    let total = names.len();
    let page: Vec<String> = names.iter().skip(offset).take(per_page).cloned().collect();
    // A few round trips per stream: looked at concurrently, answered in order.
    let infos: Vec<_> = futures_util::stream::iter(page)
        .map(|name| {
            let st = Arc::clone(&st);
            async move { st.rt.stream_info(&name).await }
        })
        .buffered(CONCURRENT_LOOKS)
        .try_collect()
        .await?;
    let now = now_ms();
    let mut out = Vec::with_capacity(infos.len());
    // The lock is held without awaiting.
    let mut hist = st
        .history
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    hist.retain(&names);
    for info in &infos {
        let lag: u64 = info.groups.iter().filter_map(|g| g.lag).sum();
        let points = hist.record(
            &info.stream,
            Point {
                at_ms: now,
                length: info.length,
                lag,
            },
        );
        let groups: Vec<Value> = info
            .groups
            .iter()
            .map(|g| {
                json!({
                    "group": g.name, "consumers": g.consumers, "lag": g.lag,
                    "pending": g.pending, "scheduled": g.scheduled,
                    "oldest_pending_age_ms": g.oldest_pending.map(|id| now.saturating_sub(id.ms())),
                    "stale": g.is_stale(st.stale_after),
                })
            })
            .collect();
        out.push(json!({
            "stream": info.stream,
            "length": info.length,
            "dead_letters": info.dead_letters,
            "throughput_per_s": history::throughput(&points, THROUGHPUT_WINDOW_MS),
            "groups": groups,
            "history": points,
        }));
    }
    Ok(Json(json!({
        "now_ms": now, "total": total, "offset": offset, "limit": per_page, "streams": out,
    })))
}
