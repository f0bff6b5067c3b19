//! `GET /api/overview`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::history::{self, Point};
use super::{Result, now_ms};

/// The throughput window of the overview.
const THROUGHPUT_WINDOW_MS: u64 = 60_000;

/// `GET /api/overview`: every stream with its length, throughput, dead letters and groups,
/// and its recent samples.
pub(in crate::console) async fn overview(State(st): State<Arc<AppState>>) -> Result<Json<Value>> {
    let names = st.rt.streams().await?;
    let mut infos = Vec::with_capacity(names.len());
    for name in &names {
        infos.push(st.rt.stream_info(name).await?);
    }
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
    Ok(Json(json!({ "now_ms": now, "streams": out })))
}
