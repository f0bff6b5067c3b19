//! `opsc groups`: every consumer group with its backlog and last activity, stale groups flagged,
//! and `groups remove` to delete one with its retry schedule and attempt records.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use serde_json::{Value, json};

use super::CliError;
use super::commands::{Out, Result, printable};
use crate::error::Error;
use crate::info::{GroupInfo, StreamInfo};
use crate::keys::StreamKeys;
use crate::message_id::MessageId;
use crate::runtime::Runtime;

/// Keys looked at per `SCAN` step while finding a group's attempt records.
const SCAN_PAGE: u64 = 1000;

/// `idle` for people: `850ms`, `42s`, `17m`, `5h`, `3d`.
fn short(idle: Duration) -> String {
    let ms = idle.as_millis();
    match ms / 1000 {
        0 => format!("{ms}ms"),
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// When the group was last active, for people: `3s ago`, `never` (no consumer), `unknown`.
fn last_active(g: &GroupInfo) -> String {
    match g.idle() {
        Some(idle) => format!("{} ago", short(idle)),
        None if g.has_consumers() => "unknown".to_owned(),
        None => "never".to_owned(),
    }
}

fn lag(g: &GroupInfo) -> String {
    g.lag.map_or_else(|| "?".to_owned(), |l| l.to_string())
}

/// The groups that hold back trimming: those at the trimming floor that still need an entry
/// (a group that has read and acknowledged everything holds nothing back).
#[doc(hidden)]
pub fn holders(info: &StreamInfo) -> Vec<&GroupInfo> {
    info.trim_floor()
        .map(|(_, groups)| {
            groups
                .into_iter()
                .filter(|g| g.pending > 0 || g.lag != Some(0))
                .collect()
        })
        .unwrap_or_default()
}

/// A group as `opsc groups --json` prints it (public for the console).
#[doc(hidden)]
pub fn group_json(g: &GroupInfo, stale: bool, holds: bool) -> Value {
    let consumers: Vec<Value> = g
        .consumer_list
        .iter()
        .map(|c| json!({ "name": c.name, "pending": c.pending, "idle_ms": c.idle.map(ms) }))
        .collect();
    json!({
        "group": g.name, "lag": g.lag, "pending": g.pending, "scheduled": g.scheduled,
        "consumers": g.consumers, "idle_ms": g.idle().map(ms),
        "never_active": !g.has_consumers(), "stale": stale, "holds_trim": holds,
        "last_delivered": g.last_delivered.map(|id| id.to_string()),
        "consumer_list": consumers,
    })
}

/// `opsc groups [STREAM...]`.
pub(super) async fn list(
    rt: &Runtime,
    out: &Out,
    only: Vec<String>,
    stale_after: Duration,
    verbose: bool,
) -> Result<()> {
    let names = if only.is_empty() {
        rt.streams().await?
    } else {
        only
    };
    if names.is_empty() && !out.json {
        out.say(&format!("no streams under prefix `{}`", rt.keys().prefix()))?;
    }
    for name in names {
        let info = rt.stream_info(&name).await?;
        let holding = holders(&info);
        let holds = |g: &GroupInfo| holding.iter().any(|h| h.name == g.name);
        let groups: Vec<Value> = info
            .groups
            .iter()
            .map(|g| group_json(g, g.is_stale(stale_after), holds(g)))
            .collect();
        let floor = info.trim_floor().map(|(id, _)| id.to_string());
        let json = json!({
            "stream": name, "length": info.length, "trim_floor": floor,
            "held_back_by": holding.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
            "stale_after_ms": ms(stale_after), "groups": groups,
        });
        out.line(json, || {
            let mut head = format!(
                "{name}: {} entries, {} groups",
                info.length,
                info.groups.len()
            );
            for g in &holding {
                head.push_str(&format!(
                    "; trimming held back by {} (lag {}, pending {})",
                    g.name,
                    lag(g),
                    g.pending
                ));
            }
            // Each line escaped on its own, so that only what came from Redis is.
            let mut lines = vec![printable(head)];
            for g in &info.groups {
                let mut flags = Vec::new();
                if g.is_stale(stale_after) {
                    flags.push("STALE");
                }
                if holds(g) {
                    flags.push("holds back trimming");
                }
                let flags = if flags.is_empty() {
                    String::new()
                } else {
                    format!("  [{}]", flags.join(", "))
                };
                lines.push(printable(format!(
                    "  {:<40} lag {}, pending {}, retrying {}, consumers {}, last active {}{flags}",
                    g.name,
                    lag(g),
                    g.pending,
                    g.scheduled,
                    g.consumers,
                    last_active(g),
                )));
                if verbose {
                    for c in &g.consumer_list {
                        let idle = c.idle.map_or_else(|| "unknown".to_owned(), short);
                        lines.push(printable(format!(
                            "    consumer {}: pending {}, idle {idle}",
                            c.name, c.pending
                        )));
                    }
                }
            }
            lines.join("\n")
        })?;
    }
    Ok(())
}

fn redis_error(command: &'static str, key: &str) -> impl FnOnce(redis::RedisError) -> CliError {
    let key = key.to_owned();
    move |source| {
        CliError::Runtime(Error::Redis {
            command,
            key,
            source,
        })
    }
}

/// The attempt records of `group`, one `SCAN` page at a time (`MATCH`, so only keys under the
/// stream's hash tag are returned); `each` gets every page's records. A record is
/// `<prefix>:{<stream>}:attempt:<group>:<entry id>`: a key whose rest is not an entry id belongs
/// to another group and is left alone (the records of `svc` and of `svc:2` both start with
/// `attempt:svc:` and a digit).
async fn records<F, Fut>(
    conn: &mut MultiplexedConnection,
    keys: &StreamKeys,
    group: &str,
    mut each: F,
) -> Result<u64>
where
    F: FnMut(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let prefix = keys.record_prefix(group);
    // Names allow no glob characters (`* ? [ ] \`), so the prefix matches itself.
    let pattern = format!("{prefix}[0-9]*");
    let (mut cursor, mut found) = (0u64, 0u64);
    loop {
        let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(SCAN_PAGE)
            .query_async(conn)
            .await
            .map_err(redis_error("SCAN", &pattern))?;
        let mine: Vec<String> = page
            .into_iter()
            .filter(|k| {
                k.strip_prefix(&prefix)
                    .is_some_and(|id| id.parse::<MessageId>().is_ok())
            })
            .collect();
        found += mine.len() as u64;
        if !mine.is_empty() {
            each(mine).await?;
        }
        if next == 0 {
            return Ok(found);
        }
        cursor = next;
    }
}

/// `opsc groups remove STREAM GROUP [--dry-run]`.
pub(super) async fn remove(
    rt: &Runtime,
    out: &Out,
    stream: &str,
    group: &str,
    dry_run: bool,
) -> Result<()> {
    let (j, text) = remove_group(rt, stream, group, dry_run).await?;
    out.line(j, || text)
}

/// Removes `group` of `stream` with its retry schedule and attempt records (with `dry_run`,
/// only counts them); the JSON `opsc groups remove --json` prints and the line for people.
/// Public (hidden) for the console. On Redis and on the embedded broker.
#[doc(hidden)]
pub async fn remove_group(
    rt: &Runtime,
    stream: &str,
    group: &str,
    dry_run: bool,
) -> Result<(Value, String)> {
    let keys = rt.keys().stream(stream);
    let info = rt.stream_info(stream).await?;
    let Some(g) = info.groups.iter().find(|g| g.name == group) else {
        return Err(CliError::NoSuchGroup {
            stream: stream.to_owned(),
            group: group.to_owned(),
        });
    };
    let what = |verb: &str, records: u64| {
        format!(
            "{verb} group {group} of stream {stream}: pending {}, lag {}, retrying {}, \
             {records} attempt records, last active {}",
            g.pending,
            lag(g),
            g.scheduled,
            last_active(g)
        )
    };
    let fields = |records: u64| {
        json!({
            "stream": stream, "group": group, "pending": g.pending, "lag": g.lag,
            "scheduled": g.scheduled, "attempt_records": records, "idle_ms": g.idle().map(ms),
        })
    };
    // The stream's priority lanes other than `normal`: the group is removed from each of them
    // too, before the `normal` one.
    let lanes: Vec<_> = rt
        .lanes(stream)
        .await?
        .into_iter()
        .filter(|p| *p != crate::Priority::Normal)
        .map(|p| keys.lane(p))
        .collect();
    if let Some(memory) = rt.memory_broker() {
        if dry_run {
            let mut n = memory.group_records(&keys, group);
            for lane in &lanes {
                n += memory.group_records(lane, group);
            }
            let mut j = fields(n);
            j["would"] = json!("remove");
            return Ok((j, printable(what("would remove", n))));
        }
        let mut n = 0;
        for lane in &lanes {
            n += memory.remove_group(lane, group).unwrap_or(0);
        }
        let Some(m) = memory.remove_group(&keys, group) else {
            return Err(CliError::NoSuchGroup {
                stream: stream.to_owned(),
                group: group.to_owned(),
            });
        };
        n += m;
        let mut j = fields(n);
        j["removed"] = json!(true);
        return Ok((j, printable(what("removed", n))));
    }
    let mut conn = rt.redis_connection().await?.ok_or_else(|| {
        CliError::Runtime(Error::UnexpectedReply {
            command: "CONNECT",
            key: keys.events.clone(),
            reply: "neither Redis nor the embedded broker".to_owned(),
        })
    })?;
    if dry_run {
        let mut n = records(&mut conn, &keys, group, |_| async { Ok(()) }).await?;
        for lane in &lanes {
            n += records(&mut conn, lane, group, |_| async { Ok(()) }).await?;
        }
        let mut j = fields(n);
        j["would"] = json!("remove");
        return Ok((j, printable(what("would remove", n))));
    }
    let mut del = conn.clone();
    let mut in_lanes = 0;
    for lane in &lanes {
        in_lanes += records(&mut conn, lane, group, |page| {
            let mut del = del.clone();
            async move {
                let _: u64 = redis::cmd("DEL")
                    .arg(&page)
                    .query_async(&mut del)
                    .await
                    .map_err(redis_error("DEL", page.first().map_or("", String::as_str)))?;
                Ok(())
            }
        })
        .await?;
        // The lane may not have the group (nor exist): nothing to destroy then.
        let exists: u64 = redis::cmd("EXISTS")
            .arg(&lane.events)
            .query_async(&mut del)
            .await
            .map_err(redis_error("EXISTS", &lane.events))?;
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("DEL").arg(lane.retry(group)).ignore();
        if exists == 1 {
            pipe.cmd("XGROUP")
                .arg("DESTROY")
                .arg(&lane.events)
                .arg(group)
                .ignore();
        }
        let () = pipe
            .query_async(&mut del)
            .await
            .map_err(redis_error("XGROUP DESTROY", &lane.events))?;
    }
    // Attempt records first, the group last: if this stops half-way, the group is still there
    // and running the command again finishes the work.
    let n = in_lanes
        + records(&mut conn, &keys, group, |page| {
            let mut del = del.clone();
            async move {
                let _: u64 = redis::cmd("DEL")
                    .arg(&page)
                    .query_async(&mut del)
                    .await
                    .map_err(redis_error("DEL", page.first().map_or("", String::as_str)))?;
                Ok(())
            }
        })
        .await?;
    // The schedule and the group go together (one transaction).
    let (_, destroyed): (u64, u64) = redis::pipe()
        .atomic()
        .cmd("DEL")
        .arg(keys.retry(group))
        .cmd("XGROUP")
        .arg("DESTROY")
        .arg(&keys.events)
        .arg(group)
        .query_async(&mut del)
        .await
        .map_err(redis_error("XGROUP DESTROY", &keys.events))?;
    if destroyed == 0 {
        return Err(CliError::NoSuchGroup {
            stream: stream.to_owned(),
            group: group.to_owned(),
        });
    }
    let mut j = fields(n);
    j["removed"] = json!(true);
    Ok((j, printable(what("removed", n))))
}

/// Where `groups reset` moves a group.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    /// After the newest entry: everything not yet delivered is skipped.
    Latest,
    /// Before the first entry: the whole stream is delivered again.
    Earliest,
    /// After this entry.
    After(MessageId),
}

impl std::fmt::Display for ResetTo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResetTo::Latest => f.write_str("latest"),
            ResetTo::Earliest => f.write_str("earliest"),
            ResetTo::After(id) => write!(f, "{id}"),
        }
    }
}

/// Moves `group` of `stream` to `to` (`XGROUP SETID`; with `dry_run`, only reports where it
/// is); the JSON `opsc groups reset --json` prints and the line for people. Pending entries stay
/// pending, the retry schedule stays. Public (hidden) for the console. On Redis and on the
/// embedded broker.
#[doc(hidden)]
pub async fn reset_group(
    rt: &Runtime,
    stream: &str,
    group: &str,
    to: ResetTo,
    dry_run: bool,
) -> Result<(Value, String)> {
    let keys = rt.keys().stream(stream);
    let info = rt.stream_info(stream).await?;
    let Some(g) = info.groups.iter().find(|g| g.name == group) else {
        return Err(CliError::NoSuchGroup {
            stream: stream.to_owned(),
            group: group.to_owned(),
        });
    };
    let mut j = json!({
        "stream": stream, "group": group, "to": to.to_string(),
        "last_delivered": g.last_delivered.map(|id| id.to_string()),
        "lag": g.lag, "pending": g.pending, "stream_length": info.length,
    });
    let what = |verb: &str| {
        printable(format!(
            "{verb} group {group} of stream {stream} to {to}: last delivered {}, lag {}, \
             pending {} (pending entries stay pending)",
            g.last_delivered
                .map_or_else(|| "none".to_owned(), |id| id.to_string()),
            lag(g),
            g.pending
        ))
    };
    if dry_run {
        j["would"] = json!("reset");
        return Ok((j, what("would reset")));
    }
    if let Some(memory) = rt.memory_broker() {
        let to_id = match to {
            ResetTo::Latest => None,
            ResetTo::Earliest => Some(MessageId::new(0, 0)),
            ResetTo::After(id) => Some(id),
        };
        if !memory.set_group_id(&keys.events, group, to_id) {
            return Err(CliError::NoSuchGroup {
                stream: stream.to_owned(),
                group: group.to_owned(),
            });
        }
        j["reset"] = json!(true);
        return Ok((j, what("reset")));
    }
    let mut conn = rt.redis_connection().await?.ok_or_else(|| {
        CliError::Runtime(Error::UnexpectedReply {
            command: "CONNECT",
            key: keys.events.clone(),
            reply: "neither Redis nor the embedded broker".to_owned(),
        })
    })?;
    let id = match to {
        ResetTo::Latest => "$".to_owned(),
        ResetTo::Earliest => "0".to_owned(),
        ResetTo::After(id) => id.to_string(),
    };
    let _: () = redis::cmd("XGROUP")
        .arg("SETID")
        .arg(&keys.events)
        .arg(group)
        .arg(&id)
        .query_async(&mut conn)
        .await
        .map_err(redis_error("XGROUP SETID", &keys.events))?;
    j["reset"] = json!(true);
    Ok((j, what("reset")))
}
