//! Dead letters: list, show, and replay or purge (one, a selection or a filter; a dry run
//! first), through the runtime's `DeadLetters` as `opsc dlq` does.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, Query, State};
use opsc_events_runtime::cli::letter_json;
use opsc_events_runtime::{DeadLetterFilter, DeadLetterReason, Runtime};
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::AppState;
use super::super::error::ApiError;
use super::super::security::Actor;
use super::{MAX_LIMIT, Result, group_name, limit, message_id, stream_name, streams};

/// Letters a dry run lists (the count covers them all).
const DRY_RUN_SAMPLE: usize = 50;

/// The query of `GET /api/dead-letters`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::console) struct LettersQuery {
    stream: Option<String>,
    group: Option<String>,
    reason: Option<String>,
    /// Dead-lettered at or after (milliseconds since the epoch).
    since: Option<u64>,
    /// Dead-lettered before (milliseconds since the epoch).
    until: Option<u64>,
    /// After this dead-letter id (the last of the previous page; with `stream`).
    after: Option<String>,
    limit: Option<usize>,
}

/// The filter parts every stream shares.
#[derive(Debug, Clone, Default)]
struct Criteria {
    group: Option<String>,
    reason: Option<DeadLetterReason>,
    since: Option<u64>,
    until: Option<u64>,
}

impl Criteria {
    fn parse(
        group: Option<&str>,
        reason: Option<&str>,
        since: Option<u64>,
        until: Option<u64>,
    ) -> Result<Criteria> {
        if let (Some(s), Some(u)) = (since, until)
            && s >= u
        {
            return Err(ApiError::BadRequest(
                "`since` is not before `until`: the filter would select nothing".to_owned(),
            ));
        }
        Ok(Criteria {
            group: group.map(group_name).transpose()?,
            reason: reason
                .map(|r| {
                    if r.is_empty() || r.len() > 64 {
                        Err(ApiError::BadRequest(format!("`{r}` is not a reason")))
                    } else {
                        Ok(DeadLetterReason::from_str(r).unwrap_or_else(|e| match e {}))
                    }
                })
                .transpose()?,
            since,
            until,
        })
    }

    fn filter(&self, stream: &str) -> DeadLetterFilter {
        let mut f = DeadLetterFilter::stream(stream);
        if let Some(g) = &self.group {
            f = f.group(g.clone());
        }
        if let Some(r) = &self.reason {
            f = f.reason(r.clone());
        }
        if let Some(t) = self.since {
            f = f.since(t);
        }
        if let Some(t) = self.until {
            f = f.until(t);
        }
        f
    }
}

/// `GET /api/dead-letters`: letters matching the filter, oldest first, per stream.
pub(in crate::console) async fn letters(
    State(st): State<Arc<AppState>>,
    Query(q): Query<LettersQuery>,
) -> Result<Json<Value>> {
    let crit = Criteria::parse(q.group.as_deref(), q.reason.as_deref(), q.since, q.until)?;
    let limit = limit(q.limit, 100, MAX_LIMIT)?;
    let after = q.after.as_deref().map(message_id).transpose()?;
    if after.is_some() && q.stream.is_none() {
        return Err(ApiError::BadRequest(
            "`after` is a dead-letter id of one stream: give `stream` too".to_owned(),
        ));
    }
    let dl = st.rt.dead_letters();
    let mut out = Vec::new();
    for stream in streams(&st.rt, q.stream.as_deref()).await? {
        if out.len() >= limit {
            break;
        }
        let mut f = crit.filter(&stream).limit(limit - out.len());
        if let Some(a) = after {
            f = f.after(a);
        }
        out.extend(dl.list(&f).await?.iter().map(|l| letter_json(l, false)));
    }
    Ok(Json(json!({ "letters": out, "limit": limit })))
}

/// `GET /api/dead-letters/{stream}/{id}`: one letter in full, its payload decoded.
pub(in crate::console) async fn letter(
    State(st): State<Arc<AppState>>,
    Path((stream, id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let stream = stream_name(&stream)?;
    let id = message_id(&id)?;
    match st.rt.dead_letters().get(&stream, id).await? {
        Some(l) => Ok(Json(letter_json(&l, true))),
        None => Err(ApiError::NotFound(format!(
            "no dead letter `{id}` on stream `{stream}`"
        ))),
    }
}

/// The body of `POST /api/dead-letters/replay` and `/purge`: the letters (by id, or by
/// filter), and whether only to count them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::console) struct Selection {
    stream: Option<String>,
    /// Dead-letter ids of `stream` (one letter or a selection).
    ids: Option<Vec<String>>,
    group: Option<String>,
    reason: Option<String>,
    since: Option<u64>,
    until: Option<u64>,
    /// Count (and list the first few of) the letters that would change; change nothing.
    #[serde(default)]
    dry_run: bool,
}

/// What a write does.
#[derive(Debug, Clone, Copy)]
enum Change {
    Replay,
    Purge,
}

impl Change {
    fn verb(self) -> &'static str {
        match self {
            Change::Replay => "replay",
            Change::Purge => "purge",
        }
    }
}

/// The filters of a selection, one per stream.
async fn selection_filters(rt: &Runtime, sel: &Selection) -> Result<Vec<DeadLetterFilter>> {
    let crit = Criteria::parse(
        sel.group.as_deref(),
        sel.reason.as_deref(),
        sel.since,
        sel.until,
    )?;
    let ids = match &sel.ids {
        Some(ids) => {
            if sel.stream.is_none() {
                return Err(ApiError::BadRequest(
                    "`ids` are dead-letter ids of one stream: give `stream` too".to_owned(),
                ));
            }
            if ids.is_empty() || ids.len() > MAX_LIMIT {
                return Err(ApiError::BadRequest(format!(
                    "`ids` holds 1 to {MAX_LIMIT} ids"
                )));
            }
            Some(
                ids.iter()
                    .map(|s| message_id(s))
                    .collect::<Result<Vec<_>>>()?,
            )
        }
        None => None,
    };
    Ok(streams(rt, sel.stream.as_deref())
        .await?
        .iter()
        .map(|s| {
            let f = crit.filter(s);
            match &ids {
                Some(ids) => f.ids(ids.iter().copied()),
                None => f,
            }
        })
        .collect())
}

async fn change(
    st: &AppState,
    actor: &Actor,
    body: std::result::Result<Json<Selection>, JsonRejection>,
    change: Change,
) -> Result<Json<Value>> {
    let Json(sel) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let filters = selection_filters(&st.rt, &sel).await?;
    let dl = st.rt.dead_letters();
    let verb = change.verb();
    if sel.dry_run {
        let mut count = 0usize;
        let mut sample = Vec::new();
        for f in &filters {
            let room = DRY_RUN_SAMPLE.saturating_sub(sample.len());
            let (n, first) = dl.count(f, room).await?;
            count += n;
            sample.extend(first.iter().map(|l| letter_json(l, false)));
        }
        return Ok(Json(json!({
            "dry_run": true, "action": verb, "count": count, "letters": sample,
        })));
    }
    let mut count = 0usize;
    let mut per_stream = BTreeMap::new();
    for f in &filters {
        let n = match change {
            Change::Replay => dl.replay(f).await,
            Change::Purge => dl.purge(f).await,
        };
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(
                    target: "opsc::console::audit",
                    who = %actor, action = verb, stream = f.stream_name(), selection = ?sel,
                    done_before_the_failure = count, error = %e,
                    "dead-letter {verb} failed"
                );
                return Err(e.into());
            }
        };
        count += n;
        if n > 0 {
            per_stream.insert(f.stream_name().to_owned(), n);
        }
    }
    tracing::info!(
        target: "opsc::console::audit",
        who = %actor, action = verb, selection = ?sel, count, streams = ?per_stream,
        "dead letters {verb}ed"
    );
    Ok(Json(json!({
        "dry_run": false, "action": verb, "count": count, "streams": per_stream,
    })))
}

/// `POST /api/dead-letters/replay`: put the selected letters back into their group's retry
/// schedule (the runtime's replay, with its loop guard).
pub(in crate::console) async fn replay(
    State(st): State<Arc<AppState>>,
    Extension(actor): Extension<Actor>,
    body: std::result::Result<Json<Selection>, JsonRejection>,
) -> Result<Json<Value>> {
    change(&st, &actor, body, Change::Replay).await
}

/// `POST /api/dead-letters/purge`: delete the selected letters.
pub(in crate::console) async fn purge(
    State(st): State<Arc<AppState>>,
    Extension(actor): Extension<Actor>,
    body: std::result::Result<Json<Selection>, JsonRejection>,
) -> Result<Json<Value>> {
    change(&st, &actor, body, Change::Purge).await
}
