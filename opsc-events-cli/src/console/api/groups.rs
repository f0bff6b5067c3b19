//! Consumer groups: list with stale ones flagged, and removal (as `opsc groups`).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Query, State};
use futures_util::{StreamExt, TryStreamExt};
use opsc_events_runtime::cli::{
    CliError, group_json, holders, parse_reset_to, remove_group, reset_group,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::error::ApiError;
use super::super::security::Actor;
use super::overview::{CONCURRENT_LOOKS, DEFAULT_PAGE, MAX_PAGE};
use super::{Result, group_name, limit, stream_name, streams};

/// The query of `GET /api/groups`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::console) struct GroupsQuery {
    stream: Option<String>,
    /// Streams to skip (in name order).
    offset: Option<usize>,
    limit: Option<usize>,
}

/// `GET /api/groups`: the groups of one page of streams (in name order; or of `stream`) with
/// their consumers, their idle time and pending entries, stale groups flagged (as
/// `opsc groups --json`); `total` is the number of streams.
pub(in crate::console) async fn groups(
    State(st): State<Arc<AppState>>,
    Query(q): Query<GroupsQuery>,
) -> Result<Json<Value>> {
    let per_page = limit(q.limit, DEFAULT_PAGE, MAX_PAGE)?;
    let offset = q.offset.unwrap_or(0);
    let mut names = streams(&st.rt, q.stream.as_deref()).await?;
    names.sort_unstable();
    let total = names.len();
    let page: Vec<String> = names.into_iter().skip(offset).take(per_page).collect();
    let infos: Vec<_> = futures_util::stream::iter(page)
        .map(|name| {
            let st = Arc::clone(&st);
            async move { st.rt.stream_info(&name).await }
        })
        .buffered(CONCURRENT_LOOKS)
        .try_collect()
        .await?;
    let mut out = Vec::with_capacity(infos.len());
    for info in infos {
        let stream = info.stream.clone();
        let holding = holders(&info);
        let groups: Vec<Value> = info
            .groups
            .iter()
            .map(|g| {
                group_json(
                    g,
                    g.is_stale(st.stale_after),
                    holding.iter().any(|h| h.name == g.name),
                )
            })
            .collect();
        out.push(json!({ "stream": stream, "length": info.length, "groups": groups }));
    }
    Ok(Json(json!({
        "total": total, "offset": offset, "limit": per_page, "streams": out,
    })))
}

/// The body of `POST /api/groups/remove`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::console) struct GroupRemoval {
    stream: String,
    group: String,
    /// Count what would go; change nothing.
    #[serde(default)]
    dry_run: bool,
}

/// `POST /api/groups/remove`: remove a consumer group with its retry schedule and attempt
/// records, as `opsc groups remove` does.
pub(in crate::console) async fn remove_group_route(
    State(st): State<Arc<AppState>>,
    Extension(actor): Extension<Actor>,
    body: std::result::Result<Json<GroupRemoval>, JsonRejection>,
) -> Result<Json<Value>> {
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let stream = stream_name(&req.stream)?;
    let group = group_name(&req.group)?;
    let outcome = remove_group(&st.rt, &stream, &group, req.dry_run).await;
    let (mut j, _) = match outcome {
        Ok(done) => done,
        Err(e) => {
            if !req.dry_run {
                tracing::warn!(
                    target: "opsc::console::audit",
                    who = %actor, action = "remove group", stream, group, error = %e,
                    "group removal failed"
                );
            }
            return Err(match e {
                CliError::NoSuchGroup { stream, group } => {
                    ApiError::NotFound(format!("no consumer group `{group}` on stream `{stream}`"))
                }
                CliError::Runtime(e) => ApiError::Broker(e),
                other => ApiError::BadRequest(other.to_string()),
            });
        }
    };
    j["dry_run"] = json!(req.dry_run);
    if !req.dry_run {
        tracing::info!(
            target: "opsc::console::audit",
            who = %actor, action = "remove group", stream, group, removed = %j,
            "group removed"
        );
    }
    Ok(Json(j))
}

/// The API error of a failed group command.
fn api_error(e: CliError) -> ApiError {
    match e {
        CliError::NoSuchGroup { stream, group } => {
            ApiError::NotFound(format!("no consumer group `{group}` on stream `{stream}`"))
        }
        CliError::Runtime(e) => ApiError::Broker(e),
        other => ApiError::BadRequest(other.to_string()),
    }
}

/// The body of `POST /api/groups/reset`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::console) struct GroupReset {
    stream: String,
    group: String,
    /// `latest`, `earliest` or an entry id.
    to: String,
    /// Report where the group is; change nothing.
    #[serde(default)]
    dry_run: bool,
}

/// `POST /api/groups/reset`: move a group's read position, as `opsc groups reset` does (Redis
/// only; pending entries stay pending).
pub(in crate::console) async fn reset_group_route(
    State(st): State<Arc<AppState>>,
    Extension(actor): Extension<Actor>,
    body: std::result::Result<Json<GroupReset>, JsonRejection>,
) -> Result<Json<Value>> {
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let stream = stream_name(&req.stream)?;
    let group = group_name(&req.group)?;
    let to = parse_reset_to(&req.to).map_err(ApiError::BadRequest)?;
    let (mut j, _) = match reset_group(&st.rt, &stream, &group, to, req.dry_run).await {
        Ok(done) => done,
        Err(e) => {
            if !req.dry_run {
                tracing::warn!(
                    target: "opsc::console::audit",
                    who = %actor, action = "reset group", stream, group, to = %to, error = %e,
                    "group reset failed"
                );
            }
            return Err(api_error(e));
        }
    };
    j["dry_run"] = json!(req.dry_run);
    if !req.dry_run {
        tracing::info!(
            target: "opsc::console::audit",
            who = %actor, action = "reset group", stream, group, to = %to, before = %j,
            "group reset"
        );
    }
    Ok(Json(j))
}
