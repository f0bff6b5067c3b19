//! Retry schedules, dead letters and trimming on Redis: each change is one Lua script (see
//! `scripts.rs`), so every crash window leaves a message in exactly one place.

use std::sync::Arc;

use redis::Value;

use super::RedisTransport;
use super::reply;
use super::scripts;
use crate::error::{Error, Result};
use crate::keys::StreamKeys;
use crate::message_id::MessageId;
use crate::transport::{
    Delivery, Letter, LetterOutcome, RawEntry, ReplayOutcome, Source, TrimCounts,
};

/// The field/value pairs of an `XINFO` item: a map (RESP3) or a flat array (RESP2).
fn pairs(v: Value) -> reply::ReplyResult<Vec<(Vec<u8>, Value)>> {
    match v {
        Value::Map(m) => m
            .into_iter()
            .map(|(k, v)| Ok((reply::bytes(k)?, v)))
            .collect(),
        other => {
            let mut out = Vec::new();
            let mut it = reply::array(other)?.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                out.push((reply::bytes(k)?, v));
            }
            Ok(out)
        }
    }
}

/// One consumer of an `XINFO CONSUMERS` reply; `None` without a name. Its idle time is the
/// smaller of `idle` and (Redis 7.2+) `inactive`; a negative (`inactive` -1: never active) or
/// malformed value is unknown.
fn consumer(v: Value) -> reply::ReplyResult<Option<crate::info::ConsumerInfo>> {
    let (mut name, mut pending, mut idle) = (None, 0, None::<u64>);
    for (k, v) in pairs(v)? {
        let ms = || {
            reply::int(v.clone())
                .ok()
                .and_then(|n| u64::try_from(n).ok())
        };
        match k.as_slice() {
            b"name" => {
                name = reply::bytes(v)
                    .ok()
                    .map(|n| String::from_utf8_lossy(&n).into_owned());
            }
            b"pending" => pending = ms().unwrap_or(0),
            b"idle" | b"inactive" => {
                if let Some(ms) = ms() {
                    idle = Some(idle.map_or(ms, |i| i.min(ms)));
                }
            }
            _ => {}
        }
    }
    Ok(name.map(|name| crate::info::ConsumerInfo {
        name,
        pending,
        idle: idle.map(std::time::Duration::from_millis),
    }))
}

impl RedisTransport {
    fn bad_reply(command: &'static str, key: &str, reply: String) -> Error {
        Error::UnexpectedReply {
            command,
            key: key.to_owned(),
            reply,
        }
    }

    #[allow(clippy::too_many_arguments)] // mirrors Broker::schedule_retry
    pub(super) async fn retry_later(
        &self,
        keys: &StreamKeys,
        group: &str,
        id: MessageId,
        source: &Source,
        attempts: u32,
        delay_ms: u64,
        error: &str,
        link: Option<&str>,
    ) -> Result<bool> {
        let id_s = id.to_string();
        let record = keys.record(group, &id_s);
        let link = link.unwrap_or("");
        let mut conn = self.conn.clone();
        let done: i64 = match source {
            Source::Pending => scripts::RETRY_FROM_PENDING
                .key(&keys.events)
                .key(keys.retry(group))
                .key(&record)
                .arg(group)
                .arg(&id_s)
                .arg(attempts)
                .arg(delay_ms)
                .arg(error)
                .arg(link)
                .invoke_async(&mut conn)
                .await
                .map_err(|e| self.error("EVALSHA retry-from-pending", &keys.events, e))?,
            Source::Scheduled { lease, .. } => scripts::RETRY_AGAIN
                .key(keys.retry(group))
                .key(&record)
                .arg(&id_s)
                .arg(&**lease)
                .arg(delay_ms)
                .arg(error)
                .arg(link)
                .invoke_async(&mut conn)
                .await
                .map_err(|e| self.error("EVALSHA retry-again", &keys.events, e))?,
        };
        Ok(done == 1)
    }

    pub(super) async fn retry_done(
        &self,
        keys: &StreamKeys,
        group: &str,
        id: MessageId,
        lease: &str,
    ) -> Result<bool> {
        let id_s = id.to_string();
        let mut conn = self.conn.clone();
        let done: i64 = scripts::COMPLETE_RETRY
            .key(keys.retry(group))
            .key(keys.record(group, &id_s))
            .arg(&id_s)
            .arg(lease)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.error("EVALSHA complete-retry", &keys.events, e))?;
        Ok(done == 1)
    }

    pub(super) async fn give_up(
        &self,
        keys: &StreamKeys,
        group: &str,
        id: MessageId,
        source: &Source,
        letter: &Letter<'_>,
    ) -> Result<LetterOutcome> {
        let id_s = id.to_string();
        let (source_s, lease) = match source {
            Source::Pending => ("pending", ""),
            Source::Scheduled { lease, .. } => ("scheduled", &**lease),
        };
        let mut conn = self.conn.clone();
        let v: Value = scripts::DEAD_LETTER
            .key(&keys.events)
            .key(&keys.dead_letter)
            .key(keys.retry(group))
            .key(keys.record(group, &id_s))
            .arg(source_s)
            .arg(if letter.keep { "1" } else { "0" })
            .arg(group)
            .arg(&id_s)
            .arg(lease)
            .arg(&keys.stream)
            .arg(letter.handler)
            .arg(letter.reason)
            .arg(letter.error)
            .arg(letter.attempts)
            .arg(match keys.priority() {
                crate::priority::Priority::Normal => "",
                lane => lane.as_str(),
            })
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.error("EVALSHA dead-letter", &keys.dead_letter, e))?;
        match v {
            Value::Nil | Value::Boolean(false) => Ok(LetterOutcome::NotOurs),
            Value::Int(_) => Ok(LetterOutcome::Dropped),
            other => {
                let id = reply::id(other)
                    .map_err(|r| Self::bad_reply("EVALSHA dead-letter", &keys.dead_letter, r))?;
                Ok(LetterOutcome::Stored(id))
            }
        }
    }

    pub(super) async fn lease(
        &self,
        keys: &StreamKeys,
        group: &str,
        lease_ms: u64,
        count: usize,
    ) -> Result<(Vec<Delivery>, Option<u64>)> {
        let token: Arc<str> = format!("{:016x}", crate::util::random_u64()).into();
        let mut conn = self.conn.clone();
        let v: Value = scripts::LEASE_RETRIES
            .key(&keys.events)
            .key(keys.retry(group))
            .arg(keys.record_prefix(group))
            .arg(lease_ms)
            .arg(count.max(1))
            .arg(&*token)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.error("EVALSHA lease-retries", &keys.events, e))?;
        let bad = |r: String| Self::bad_reply("EVALSHA lease-retries", &keys.events, r);
        let mut parts = reply::array(v).map_err(bad)?.into_iter();
        let leased = reply::array(parts.next().unwrap_or(Value::Nil)).map_err(bad)?;
        // Milliseconds until the next due retry (a Lua number: an integer reply).
        let next_due = match parts.next() {
            None | Some(Value::Nil) | Some(Value::Boolean(false)) => None,
            Some(v) => Some(u64::try_from(reply::int(v).map_err(bad)?.max(0)).unwrap_or(0)),
        };
        let mut out = Vec::with_capacity(leased.len());
        for item in leased {
            let mut p = reply::array(item).map_err(bad)?.into_iter();
            let (Some(id), Some(attempt), Some(_first), Some(fields)) =
                (p.next(), p.next(), p.next(), p.next())
            else {
                return Err(bad("leased retry with fewer than four elements".to_owned()));
            };
            // The first traced attempt's context; anything but a non-empty string is no link.
            let link = p
                .next()
                .and_then(|v| reply::bytes(v).ok())
                .filter(|l| !l.is_empty())
                .and_then(|l| String::from_utf8(l).ok())
                .map(Arc::<str>::from);
            let id = reply::id(id).map_err(bad)?;
            let attempt =
                u32::try_from(reply::int(attempt).map_err(bad)?.max(0)).unwrap_or(u32::MAX);
            let entry = reply::entries(Value::Array(vec![Value::Array(vec![
                Value::BulkString(id.to_string().into_bytes()),
                fields,
            ])]))
            .map_err(bad)?;
            let fields = entry
                .into_iter()
                .next()
                .and_then(|e| e.fields)
                .filter(|f| !f.is_empty());
            out.push(Delivery {
                id,
                fields,
                delivery_count: attempt,
                source: Source::Scheduled {
                    lease: token.clone(),
                    link,
                },
            });
        }
        Ok((out, next_due))
    }

    pub(super) async fn letters(
        &self,
        keys: &StreamKeys,
        after: Option<MessageId>,
        until: Option<MessageId>,
        count: usize,
    ) -> Result<Vec<RawEntry>> {
        let start = after.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
        let end = until.map_or_else(|| "+".to_owned(), |id| id.to_string());
        let mut conn = self.conn.clone();
        let v: Value = redis::cmd("XRANGE")
            .arg(&keys.dead_letter)
            .arg(start)
            .arg(end)
            .arg("COUNT")
            .arg(count.max(1))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error("XRANGE", &keys.dead_letter, e))?;
        reply::entries(v).map_err(|r| Self::bad_reply("XRANGE", &keys.dead_letter, r))
    }

    pub(super) async fn last_letter(&self, keys: &StreamKeys) -> Result<Option<MessageId>> {
        let mut conn = self.conn.clone();
        let v: Value = redis::cmd("XREVRANGE")
            .arg(&keys.dead_letter)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error("XREVRANGE", &keys.dead_letter, e))?;
        let entries =
            reply::entries(v).map_err(|r| Self::bad_reply("XREVRANGE", &keys.dead_letter, r))?;
        Ok(entries.first().map(|e| e.id))
    }

    pub(super) async fn delete_letters(&self, keys: &StreamKeys, ids: &[MessageId]) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut cmd = redis::cmd("XDEL");
        cmd.arg(&keys.dead_letter);
        for id in ids {
            cmd.arg(id.to_string());
        }
        let mut conn = self.conn.clone();
        let n: u64 = cmd
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error("XDEL", &keys.dead_letter, e))?;
        Ok(n)
    }

    pub(super) async fn replay(
        &self,
        keys: &StreamKeys,
        letter_id: MessageId,
        group: &str,
        original_id: MessageId,
        max_replays: u32,
    ) -> Result<ReplayOutcome> {
        let original = original_id.to_string();
        let mut conn = self.conn.clone();
        let r: i64 = scripts::REPLAY
            .key(&keys.dead_letter)
            .key(keys.retry(group))
            .key(keys.record(group, &original))
            .arg(letter_id.to_string())
            .arg(group)
            .arg(&original)
            .arg(max_replays)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.error("EVALSHA replay", &keys.dead_letter, e))?;
        Ok(match r {
            1 => ReplayOutcome::Replayed,
            -2 => ReplayOutcome::LoopGuard,
            -3 => {
                return Err(Self::bad_reply(
                    "EVALSHA replay",
                    &keys.dead_letter,
                    format!("dead letter {letter_id}: its packed `original_fields` cannot be read"),
                ));
            }
            _ => ReplayOutcome::Gone,
        })
    }

    pub(super) async fn trim_stream(
        &self,
        keys: &StreamKeys,
        max_len: Option<u64>,
        max_age: Option<std::time::Duration>,
        token: &str,
    ) -> Result<Option<TrimCounts>> {
        // `<prefix>:{<stream>}:trim_lock`, under the stream's hash tag like its other keys.
        let lock = keys.trim_lock();
        let mut conn = self.conn.clone();
        let counts: Vec<i64> = scripts::TRIM
            .key(&keys.events)
            .key(&lock)
            .arg(max_len.unwrap_or(0))
            .arg(max_age.map_or(0, |a| u64::try_from(a.as_millis()).unwrap_or(u64::MAX)))
            .arg(scripts::TRIM_STEP)
            .arg(token)
            .arg(scripts::TRIM_LOCK_MS)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.error("EVALSHA trim", &keys.events, e))?;
        if counts.first() == Some(&-2) {
            return Ok(None);
        }
        let n = |i: usize| counts.get(i).copied().unwrap_or(0).max(0) as u64;
        Ok(Some(TrimCounts {
            trimmed: n(0),
            capped: n(1),
            capped_needed: n(2),
            more: n(3) == 1,
        }))
    }

    pub(super) async fn info(&self, keys: &StreamKeys) -> Result<crate::info::StreamInfo> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.cmd("XLEN")
            .arg(&keys.events)
            .cmd("XLEN")
            .arg(&keys.dead_letter);
        let (length, dead_letters): (u64, u64) = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error("XLEN", &keys.events, e))?;
        let res: redis::RedisResult<Value> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&keys.events)
            .query_async(&mut conn)
            .await;
        let raw = match res {
            Ok(v) => v,
            Err(e) if e.to_string().contains("no such key") => Value::Array(Vec::new()),
            Err(e) => return Err(self.error("XINFO GROUPS", &keys.events, e)),
        };
        let bad = |r: String| Self::bad_reply("XINFO GROUPS", &keys.events, r);
        let mut groups = Vec::new();
        for g in reply::array(raw).map_err(bad)? {
            let pairs = pairs(g).map_err(bad)?;
            let mut name = String::new();
            let (mut consumers, mut pending, mut lag, mut last_delivered) = (0, 0, None, None);
            for (k, v) in pairs {
                match k.as_slice() {
                    b"name" => {
                        name = String::from_utf8_lossy(&reply::bytes(v).map_err(bad)?).into_owned()
                    }
                    b"consumers" => consumers = reply::int(v).map_err(bad)?.max(0) as u64,
                    b"pending" => pending = reply::int(v).map_err(bad)?.max(0) as u64,
                    b"lag" => lag = reply::int(v).ok().map(|l| l.max(0) as u64),
                    b"last-delivered-id" => last_delivered = reply::id(v).ok(),
                    _ => {}
                }
            }
            let consumer_list = self.consumers(keys, &name).await?;
            let scheduled: u64 = redis::cmd("ZCARD")
                .arg(keys.retry(&name))
                .query_async(&mut conn)
                .await
                .map_err(|e| self.error("ZCARD", &keys.events, e))?;
            let oldest_pending = if pending > 0 {
                let summary: Value = redis::cmd("XPENDING")
                    .arg(&keys.events)
                    .arg(&name)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| self.error("XPENDING", &keys.events, e))?;
                reply::array(summary)
                    .ok()
                    .and_then(|s| s.into_iter().nth(1))
                    .and_then(|v| reply::id(v).ok())
            } else {
                None
            };
            groups.push(crate::info::GroupInfo {
                name,
                consumers,
                pending,
                lag,
                scheduled,
                oldest_pending,
                last_delivered,
                consumer_list,
            });
        }
        Ok(crate::info::StreamInfo {
            stream: keys.stream.clone(),
            length,
            dead_letters,
            groups,
        })
    }

    /// The group's consumers (`XINFO CONSUMERS`): name, pending, and the time since the most
    /// recent of their `seen-time` (`idle`) and, on Redis 7.2 and later, `active-time`
    /// (`inactive`, -1 when never active). A field missing or malformed is unknown, not an
    /// error; a group removed meanwhile has no consumers.
    async fn consumers(
        &self,
        keys: &StreamKeys,
        group: &str,
    ) -> Result<Vec<crate::info::ConsumerInfo>> {
        let mut conn = self.conn.clone();
        let res: redis::RedisResult<Value> = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(&keys.events)
            .arg(group)
            .query_async(&mut conn)
            .await;
        let raw = match res {
            Ok(v) => v,
            Err(e) if e.code() == Some("NOGROUP") || e.to_string().contains("no such key") => {
                return Ok(Vec::new());
            }
            Err(e) => return Err(self.error("XINFO CONSUMERS", &keys.events, e)),
        };
        let bad = |r: String| Self::bad_reply("XINFO CONSUMERS", &keys.events, r);
        let mut out = Vec::new();
        for c in reply::array(raw).map_err(bad)? {
            out.extend(consumer(c).map_err(bad)?);
        }
        Ok(out)
    }

    pub(super) async fn range(
        &self,
        key: &str,
        after: Option<MessageId>,
        count: usize,
    ) -> Result<Vec<RawEntry>> {
        let start = after.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
        let mut conn = self.conn.clone();
        let v: Value = redis::cmd("XRANGE")
            .arg(key)
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(count.max(1))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error("XRANGE", key, e))?;
        reply::entries(v).map_err(|r| Self::bad_reply("XRANGE", key, r))
    }

    /// `XREVRANGE`: up to `count` entries before `before` (exclusive), newest first.
    pub(super) async fn range_rev(
        &self,
        key: &str,
        before: Option<MessageId>,
        count: usize,
    ) -> Result<Vec<RawEntry>> {
        let end = before.map_or_else(|| "+".to_owned(), |id| format!("({id}"));
        let mut conn = self.conn.clone();
        let v: Value = redis::cmd("XREVRANGE")
            .arg(key)
            .arg(end)
            .arg("-")
            .arg("COUNT")
            .arg(count.max(1))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error("XREVRANGE", key, e))?;
        reply::entries(v).map_err(|r| Self::bad_reply("XREVRANGE", key, r))
    }

    pub(super) async fn stream_names(&self, prefix: &str) -> Result<Vec<String>> {
        let pattern = format!("{prefix}:{{*}}:events");
        let head = format!("{prefix}:{{");
        let mut conn = self.conn.clone();
        let mut cursor = 0u64;
        let mut names = Vec::new();
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .arg("TYPE")
                .arg("stream")
                .query_async(&mut conn)
                .await
                .map_err(|e| self.error("SCAN", &pattern, e))?;
            names.extend(keys.iter().filter_map(|k| {
                k.strip_prefix(&head)?
                    .strip_suffix("}:events")
                    .map(str::to_owned)
            }));
            if next == 0 {
                break;
            }
            cursor = next;
        }
        names.sort();
        names.dedup();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use redis::Value;

    use super::consumer;

    fn s(x: &str) -> Value {
        Value::BulkString(x.as_bytes().to_vec())
    }

    #[test]
    fn consumer_idle_is_read_from_redis_7_0_and_7_2_replies() {
        // Redis 7.0: name, pending, idle.
        let v70 = Value::Array(vec![
            s("name"),
            s("c1"),
            s("pending"),
            Value::Int(2),
            s("idle"),
            Value::Int(1500),
        ]);
        let c = consumer(v70).expect("parses").expect("a named consumer");
        assert_eq!((c.name.as_str(), c.pending), ("c1", 2));
        assert_eq!(c.idle, Some(Duration::from_millis(1500)));
        // Redis 7.2 (RESP3 map): `inactive` -1 (never active) is unknown, `idle` counts.
        let v72 = Value::Map(vec![
            (s("name"), s("c2")),
            (s("pending"), Value::Int(0)),
            (s("idle"), Value::Int(40)),
            (s("inactive"), Value::Int(-1)),
        ]);
        assert_eq!(
            consumer(v72)
                .expect("parses")
                .expect("a named consumer")
                .idle,
            Some(Duration::from_millis(40))
        );
        // The most recent activity of the two counts.
        let both = Value::Array(vec![
            s("name"),
            s("c3"),
            s("idle"),
            Value::Int(900),
            s("inactive"),
            Value::Int(300),
        ]);
        assert_eq!(
            consumer(both)
                .expect("parses")
                .expect("a named consumer")
                .idle,
            Some(Duration::from_millis(300))
        );
        // Missing or malformed fields are unknown, not errors; no name, no consumer.
        let odd = Value::Array(vec![s("name"), s("c4"), s("idle"), s("soon")]);
        let c = consumer(odd).expect("parses").expect("a named consumer");
        assert_eq!((c.pending, c.idle), (0, None));
        assert_eq!(
            consumer(Value::Array(vec![s("idle"), Value::Int(1)])).expect("parses"),
            None
        );
        assert!(consumer(Value::Int(3)).is_err(), "not a consumer at all");
    }
}
