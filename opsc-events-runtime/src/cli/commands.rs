//! The `opsc` commands.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use serde_json::{Value, json};

use super::CliError;
use super::args::Filter;
use crate::dead_letter::{DeadLetter, DeadLetterFilter};
use crate::envelope::now_ms;
use crate::info::Entry;
use crate::message_id::MessageId;
use crate::runtime::Runtime;

/// How to print.
pub(super) struct Out {
    pub(super) json: bool,
}

impl Out {
    /// One result: `json` with `--json`, else `text()`.
    pub(super) fn line(&self, json: Value, text: impl FnOnce() -> String) -> Result<()> {
        if self.json {
            self.say(&json.to_string())
        } else {
            self.say(&text())
        }
    }

    /// A line of text. A closed stdout (`opsc tail x | head -1`) is an error, not a panic.
    pub(super) fn say(&self, line: &str) -> Result<()> {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{line}")
            .and_then(|()| stdout.flush())
            .map_err(CliError::Output)
    }
}

pub(super) type Result<T, E = CliError> = std::result::Result<T, E>;

fn age(ms: u64) -> String {
    let secs = now_ms().saturating_sub(ms) / 1000;
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// `line` with its control characters (line breaks, terminal escape sequences: anything a
/// terminal would act on) written as escapes (`\u{1b}`), for text output of what came from
/// Redis.
pub(super) fn printable(line: String) -> String {
    if !line.chars().any(char::is_control) {
        return line;
    }
    line.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// MessagePack as JSON; bytes that are not MessagePack as hex.
fn payload(data: &[u8]) -> Value {
    match rmp_serde::from_slice::<Value>(data) {
        Ok(v) => v,
        Err(_) => {
            let hex: String = data.iter().take(256).map(|b| format!("{b:02x}")).collect();
            json!({ "not_msgpack_hex": hex, "length": data.len() })
        }
    }
}

pub(super) async fn streams(rt: &Runtime, out: &Out) -> Result<()> {
    let names = rt.streams().await?;
    if names.is_empty() && !out.json {
        out.say(&format!("no streams under prefix `{}`", rt.keys().prefix()))?;
    }
    for name in names {
        let info = rt.stream_info(&name).await?;
        // The priority lanes other than `normal` the stream uses, each with its own groups.
        let mut lanes = Vec::new();
        for lane in rt.lanes(&name).await? {
            if lane != crate::Priority::Normal {
                lanes.push((lane, rt.lane_info(&name, lane).await?));
            }
        }
        let mut line = json!({
            "stream": name, "length": info.length, "dead_letters": info.dead_letters,
            "groups": groups_json(&info),
        });
        if !lanes.is_empty() {
            line["lanes"] = lanes
                .iter()
                .map(|(lane, l)| json!({ "priority": lane.as_str(), "length": l.length, "groups": groups_json(l) }))
                .collect();
        }
        out.line(line, || {
            let mut s = format!(
                "{name}: {} entries, {} dead letters, {} groups",
                info.length,
                info.dead_letters,
                info.groups.len()
            );
            groups_text(&mut s, &info, "  ");
            for (lane, l) in &lanes {
                s.push_str(&format!("\n  priority lane {lane}: {} entries", l.length));
                groups_text(&mut s, l, "    ");
            }
            s
        })?;
    }
    Ok(())
}

fn groups_json(info: &crate::StreamInfo) -> Vec<Value> {
    info.groups
        .iter()
        .map(|g| {
            json!({
                "group": g.name, "consumers": g.consumers, "lag": g.lag, "pending": g.pending,
                "scheduled": g.scheduled,
                "oldest_pending_age_ms": g.oldest_pending.map(|id| now_ms().saturating_sub(id.ms())),
            })
        })
        .collect()
}

fn groups_text(s: &mut String, info: &crate::StreamInfo, indent: &str) {
    for g in &info.groups {
        let lag = g.lag.map_or_else(|| "?".to_owned(), |l| l.to_string());
        let oldest = g.oldest_pending.map_or_else(String::new, |id| {
            format!(", oldest pending {}", age(id.ms()))
        });
        s.push_str(&format!(
            "\n{indent}{:<40} lag {lag}, pending {}, retrying {}, consumers {}{oldest}",
            g.name, g.pending, g.scheduled, g.consumers
        ));
    }
}

/// An entry as `opsc tail` prints it (public for tests that feed it arbitrary entries).
#[doc(hidden)]
pub fn entry_json(e: &Entry) -> Value {
    match e.envelope() {
        Ok(env) => json!({
            "id": e.id.to_string(),
            "event_type": env.event_type,
            "version": env.version,
            "schema": format!("{:016x}", env.fingerprint),
            "event_id": env.meta.event_id.to_string(),
            "service": env.meta.service,
            "timestamp": env.meta.timestamp_ms,
            "correlation_id": env.meta.correlation_id.to_string(),
            "causation_id": env.meta.causation_id.map(|c| c.to_string()),
            "headers": env.meta.headers,
            "data": payload(&env.data),
        }),
        Err(err) => {
            let fields: BTreeMap<&str, String> = e
                .fields
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str(),
                        String::from_utf8_lossy(&v[..v.len().min(256)]).into_owned(),
                    )
                })
                .collect();
            json!({ "id": e.id.to_string(), "error": err.to_string(), "fields": fields })
        }
    }
}

pub(super) async fn tail(
    rt: &Runtime,
    out: &Out,
    stream: &str,
    from_start: bool,
    count: Option<usize>,
) -> Result<()> {
    // "Now" is the client's clock: entries added in the same millisecond may be shown too.
    let mut after = (!from_start).then(|| MessageId::new(now_ms(), 0));
    let mut shown = 0usize;
    loop {
        let entries = rt.read(stream, after, 500).await?;
        for e in &entries {
            let j = entry_json(e);
            out.line(j.clone(), || {
                let kind = j["event_type"].as_str().unwrap_or("<undecodable>");
                printable(format!(
                    "{} {kind} {}",
                    e.id,
                    j.get("data").unwrap_or(&j["error"])
                ))
            })?;
            shown += 1;
            if count.is_some_and(|c| shown >= c) {
                return Ok(());
            }
        }
        match entries.last() {
            Some(last) => after = Some(last.id),
            None => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

pub(super) async fn schema(
    rt: &Runtime,
    out: &Out,
    only: Option<String>,
    scan: usize,
) -> Result<()> {
    let names = match only {
        Some(s) => vec![s],
        None => rt.streams().await?,
    };
    for name in names {
        // The newest `scan` entries: start that far before the end (approximately, by length).
        let info = rt.stream_info(&name).await?;
        let mut skip = info.length.saturating_sub(scan as u64);
        let mut after = None;
        let mut seen: BTreeMap<(String, u16, u64), (u64, MessageId)> = BTreeMap::new();
        loop {
            let page = rt.read(&name, after, 1000).await?;
            let Some(last) = page.last().map(|e| e.id) else {
                break;
            };
            for e in &page {
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                if let Ok(env) = e.envelope() {
                    let slot = seen
                        .entry((env.event_type, env.version, env.fingerprint))
                        .or_insert((0, e.id));
                    slot.0 += 1;
                    slot.1 = e.id;
                }
            }
            after = Some(last);
        }
        for ((event_type, version, fingerprint), (count, last)) in seen {
            out.line(
                json!({ "stream": name, "event_type": event_type, "version": version,
                        "schema": format!("{fingerprint:016x}"), "count": count, "last_id": last.to_string() }),
                || format!("{name}: {event_type} v{version} schema {fingerprint:016x} ({count} seen, last {last})"),
            )?;
        }
    }
    Ok(())
}

/// One filter per selected stream. The arguments were checked while parsing; only the list of
/// streams comes from Redis.
async fn filters(rt: &Runtime, f: &Filter) -> Result<Vec<DeadLetterFilter>> {
    let streams = match &f.stream {
        Some(s) => vec![s.clone()],
        None => rt.streams().await?,
    };
    // Ages count back from one instant, the same for every stream.
    let now = now_ms();
    Ok(streams
        .into_iter()
        .map(|s| {
            let mut filter = DeadLetterFilter::stream(s);
            if let Some(g) = &f.group {
                filter = filter.group(g.clone());
            }
            if let Some(r) = &f.reason {
                filter = filter.reason(r.clone());
            }
            if let Some(t) = f.since {
                filter = filter.since(t.resolve(now));
            }
            if let Some(t) = f.until {
                filter = filter.until(t.resolve(now));
            }
            if let Some(a) = f.after {
                filter = filter.after(a);
            }
            if let Some(n) = f.limit {
                filter = filter.limit(n);
            }
            filter
        })
        .collect())
}

/// A dead letter as `opsc dlq list` (`full`: `dlq show`) prints it with `--json`.
#[doc(hidden)]
pub fn letter_json(l: &DeadLetter, full: bool) -> Value {
    let mut j = json!({
        "id": l.id.to_string(), "stream": l.stream, "original_id": l.original_id.to_string(),
        "group": l.group, "handler": l.handler, "event_type": l.event_type, "version": l.version,
        "reason": l.reason.to_string(), "error": l.error, "attempts": l.attempts,
        "replays": l.replays, "first_failed_at": l.first_failed_at, "failed_at": l.failed_at,
    });
    if full {
        j["data"] = payload(&l.data);
    }
    j
}

/// A dead letter as `opsc dlq list` prints it for people.
#[doc(hidden)]
pub fn letter_line(l: &DeadLetter) -> String {
    printable(format!(
        "{} {} {} [{}] {} attempts, {} ago, group {}: {}",
        l.stream,
        l.id,
        l.event_type,
        l.reason,
        l.attempts,
        age(l.failed_at),
        l.group,
        l.error
    ))
}

pub(super) async fn dlq_list(rt: &Runtime, out: &Out, f: &Filter) -> Result<()> {
    let dl = rt.dead_letters();
    let mut total = 0;
    for filter in filters(rt, f).await? {
        for l in dl.list(&filter).await? {
            total += 1;
            out.line(letter_json(&l, false), || letter_line(&l))?;
        }
    }
    if total == 0 && !out.json {
        out.say("no dead letters")?;
    }
    Ok(())
}

pub(super) async fn dlq_show(rt: &Runtime, out: &Out, stream: &str, id: MessageId) -> Result<()> {
    match rt.dead_letters().get(stream, id).await? {
        Some(l) => {
            let j = letter_json(&l, true);
            out.line(j.clone(), || {
                serde_json::to_string_pretty(&j).unwrap_or_default()
            })?;
            Ok(())
        }
        None => Err(CliError::NoSuchLetter {
            stream: stream.to_owned(),
            id: id.to_string(),
        }),
    }
}

/// The filters of `delayed list`.
pub(super) struct DelayedQuery {
    pub(super) due_after: Option<super::values::Due>,
    pub(super) due_before: Option<super::values::Due>,
    pub(super) event_type: Option<String>,
    pub(super) limit: Option<usize>,
}

/// One scheduled event as JSON: its entry (decoded as `tail` shows one) with the due time.
fn delayed_json(stream: &str, d: &crate::delayed::DelayedEvent, with_data: bool) -> Value {
    let mut j = entry_json(&d.entry);
    if let Some(o) = j.as_object_mut() {
        o.remove("id");
        if !with_data {
            o.remove("data");
        }
        o.insert("stream".to_owned(), json!(stream));
        o.insert("event_id".to_owned(), json!(d.event_id.to_string()));
        o.insert("due".to_owned(), json!(d.due_ms));
    }
    j
}

/// How far ahead `ms` is: `in 5m`, or `due` once passed.
fn until(ms: u64) -> String {
    let secs = ms.saturating_sub(now_ms()) / 1000;
    match secs {
        0 => "due".to_owned(),
        s if s < 120 => format!("in {s}s"),
        s if s < 7200 => format!("in {}m", s / 60),
        s if s < 172_800 => format!("in {}h", s / 3600),
        s => format!("in {}d", s / 86_400),
    }
}

pub(super) async fn delayed_list(
    rt: &Runtime,
    out: &Out,
    stream: &str,
    q: DelayedQuery,
) -> Result<()> {
    let now = now_ms();
    let limit = q.limit.unwrap_or(100);
    let mut filter = crate::delayed::DelayedFilter::new();
    if let Some(a) = q.due_after {
        filter = filter.after_ms(a.resolve(now));
    }
    if let Some(b) = q.due_before {
        filter = filter.before_ms(b.resolve(now));
    }
    // Pages of the schedule, soonest first, until `limit` events of the type are listed.
    let mut shown = 0;
    let mut seen = std::collections::HashSet::new();
    loop {
        let page = rt.delayed(stream, &filter.clone().limit(1000)).await?;
        let last_due = page.last().map(|d| d.due_ms);
        let mut new = 0;
        for d in &page {
            if !seen.insert(d.event_id) {
                continue;
            }
            new += 1;
            let typ = d.entry.envelope().map(|e| e.event_type).ok();
            if q.event_type
                .as_deref()
                .is_some_and(|t| typ.as_deref() != Some(t))
            {
                continue;
            }
            if shown == limit {
                return Ok(());
            }
            shown += 1;
            out.line(delayed_json(stream, d, false), || {
                format!(
                    "{}  {:>8}  {}  {}",
                    d.due_ms,
                    until(d.due_ms),
                    d.event_id,
                    typ.as_deref().unwrap_or("<undecodable>")
                )
            })?;
        }
        // Events due at the same millisecond as the page's last are read again (and skipped).
        match last_due {
            Some(due) if page.len() == 1000 && new > 0 => filter = filter.after_ms(due),
            _ => return Ok(()),
        }
    }
}

/// The scheduled event `id` of `stream`, found by paging the schedule.
async fn find_delayed(
    rt: &Runtime,
    stream: &str,
    id: uuid::Uuid,
) -> Result<Option<crate::delayed::DelayedEvent>> {
    let mut filter = crate::delayed::DelayedFilter::new().limit(10_000);
    loop {
        let page = rt.delayed(stream, &filter).await?;
        if let Some(d) = page.iter().find(|d| d.event_id == id) {
            return Ok(Some(d.clone()));
        }
        match page.last() {
            Some(last) if page.len() == 10_000 && last.due_ms > filter.after_ms.unwrap_or(0) => {
                filter = filter.after_ms(last.due_ms);
            }
            _ => return Ok(None),
        }
    }
}

pub(super) async fn delayed_show(
    rt: &Runtime,
    out: &Out,
    stream: &str,
    id: uuid::Uuid,
) -> Result<()> {
    match find_delayed(rt, stream, id).await? {
        Some(d) => {
            let j = delayed_json(stream, &d, true);
            out.line(j.clone(), || {
                serde_json::to_string_pretty(&j).unwrap_or_default()
            })
        }
        None => Err(CliError::NoSuchDelayed {
            stream: stream.to_owned(),
            id: id.to_string(),
        }),
    }
}

pub(super) async fn delayed_cancel(
    rt: &Runtime,
    out: &Out,
    stream: &str,
    id: uuid::Uuid,
) -> Result<()> {
    let handle: crate::delayed::Delayed = format!("{stream}/{id}")
        .parse()
        .map_err(|e: crate::delayed::ParseDelayedError| CliError::Extension(Box::new(e)))?;
    if rt.publisher().cancel(&handle).await? {
        out.line(
            json!({"stream": stream, "event_id": id.to_string(), "cancelled": true}),
            || format!("cancelled {handle}"),
        )
    } else {
        Err(CliError::NoSuchDelayed {
            stream: stream.to_owned(),
            id: id.to_string(),
        })
    }
}

/// What `dlq replay` / `dlq purge` do.
pub(super) enum Change {
    Replay,
    Purge,
}

pub(super) async fn dlq_change(
    rt: &Runtime,
    out: &Out,
    f: &Filter,
    dry_run: bool,
    change: Change,
) -> Result<()> {
    let dl = rt.dead_letters();
    let verb = match change {
        Change::Replay => "replay",
        Change::Purge => "purge",
    };
    let mut total = 0usize;
    for filter in filters(rt, f).await? {
        let stream = filter.stream_name().to_owned();
        let n = if dry_run {
            let listed = dl
                .list(&filter.clone().limit(filter_limit(&filter)))
                .await?;
            for l in &listed {
                out.line(
                    json!({ "would": verb, "letter": letter_json(l, false) }),
                    || format!("would {verb}: {}", letter_line(l)),
                )?;
            }
            listed.len()
        } else {
            match change {
                Change::Replay => dl.replay(&filter).await?,
                Change::Purge => dl.purge(&filter).await?,
            }
        };
        total += n;
        if !dry_run {
            out.line(json!({ "stream": stream, verb: n }), || {
                format!("{stream}: {verb}ed {n}")
            })?;
        }
    }
    if dry_run && !out.json {
        out.say(&format!("dry run: {total} dead letters would be {verb}ed"))?;
    }
    Ok(())
}

fn filter_limit(f: &DeadLetterFilter) -> usize {
    f.limit.unwrap_or(usize::MAX)
}
