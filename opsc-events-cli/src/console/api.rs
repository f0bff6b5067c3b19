//! The JSON API under `/api` (documented in docs/OPERATIONS.md § Console API). Reads are
//! `GET`; writes are `POST` with a JSON body. Replay and purge go through the runtime's
//! `DeadLetters`, as `opsc dlq` does.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, Query, State};
use opsc_events_runtime::cli::{
    CliError, entry_json, group_json, holders, letter_json, remove_group,
};
use opsc_events_runtime::keys::{GROUP_NAME, STREAM_NAME};
use opsc_events_runtime::{DeadLetterFilter, DeadLetterReason, MessageId, Runtime};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::history::{self, Point};
use super::security::Actor;

type Result<T, E = ApiError> = std::result::Result<T, E>;

/// The most entries or letters one answer holds.
const MAX_LIMIT: usize = 1000;
/// Entries of each stream a search looks at, unless `scan` says otherwise.
const DEFAULT_SCAN: usize = 10_000;
/// The most entries of each stream a search may look at.
const MAX_SCAN: usize = 1_000_000;
/// Letters a dry run lists (the count covers them all).
const DRY_RUN_SAMPLE: usize = 50;
/// Entries read per page while searching.
const PAGE: usize = 500;
/// The throughput window of the overview.
const THROUGHPUT_WINDOW_MS: u64 = 60_000;

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

/// `GET /api/overview`: every stream with its length, throughput, dead letters and groups,
/// and its recent samples.
pub(super) async fn overview(State(st): State<Arc<AppState>>) -> Result<Json<Value>> {
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

/// The query of `GET /api/streams/{stream}/entries`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EntriesQuery {
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
pub(super) async fn entries(
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

fn limit_scan(scan: Option<usize>) -> Result<usize> {
    limit(scan, DEFAULT_SCAN, MAX_SCAN)
}

/// The query of `GET /api/correlation/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CorrelationQuery {
    scan: Option<usize>,
}

/// `GET /api/correlation/{id}`: every event of one conversation (its correlation id) across
/// every stream, oldest first (by event time, then stream and id), among the newest `scan`
/// entries of each stream.
pub(super) async fn correlation(
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

/// The query of `GET /api/dead-letters`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LettersQuery {
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
pub(super) async fn letters(
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
pub(super) async fn letter(
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
pub(super) struct Selection {
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
            let listed = dl.list(&f.clone().limit(usize::MAX)).await?;
            count += listed.len();
            let room = DRY_RUN_SAMPLE.saturating_sub(sample.len());
            sample.extend(listed.iter().take(room).map(|l| letter_json(l, false)));
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
pub(super) async fn replay(
    State(st): State<Arc<AppState>>,
    Extension(actor): Extension<Actor>,
    body: std::result::Result<Json<Selection>, JsonRejection>,
) -> Result<Json<Value>> {
    change(&st, &actor, body, Change::Replay).await
}

/// `POST /api/dead-letters/purge`: delete the selected letters.
pub(super) async fn purge(
    State(st): State<Arc<AppState>>,
    Extension(actor): Extension<Actor>,
    body: std::result::Result<Json<Selection>, JsonRejection>,
) -> Result<Json<Value>> {
    change(&st, &actor, body, Change::Purge).await
}

/// The query of `GET /api/groups`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GroupsQuery {
    stream: Option<String>,
}

/// `GET /api/groups`: every group of every stream (or of `stream`) with its consumers, their
/// idle time and pending entries, stale groups flagged (as `opsc groups --json`).
pub(super) async fn groups(
    State(st): State<Arc<AppState>>,
    Query(q): Query<GroupsQuery>,
) -> Result<Json<Value>> {
    let mut out = Vec::new();
    for stream in streams(&st.rt, q.stream.as_deref()).await? {
        let info = st.rt.stream_info(&stream).await?;
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
    Ok(Json(json!({ "streams": out })))
}

/// The body of `POST /api/groups/remove`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GroupRemoval {
    stream: String,
    group: String,
    /// Count what would go; change nothing.
    #[serde(default)]
    dry_run: bool,
}

/// `POST /api/groups/remove`: remove a consumer group with its retry schedule and attempt
/// records, as `opsc groups remove` does (Redis only).
pub(super) async fn remove_group_route(
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

/// Anything else: 404 (JSON under `/api`).
pub(super) async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no such page or endpoint: `{}`", uri.path()))
}
