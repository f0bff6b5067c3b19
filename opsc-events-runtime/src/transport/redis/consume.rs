//! The consumer side of the Redis transport: groups, blocking reads on dedicated connections,
//! acks, reclaim and consumer clean-up.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisWrite, Value};

use super::RedisTransport;
use super::reply;
use super::scripts;
use crate::envelope::EncodedEvent;
use crate::error::{Error, Result};
use crate::handler::Start;
use crate::keys::StreamKeys;
use crate::message_id::MessageId;
use crate::priority::{Lanes, Priority};
use crate::transport::{
    Broker, Claimed, Delivery, Letter, LetterOutcome, RawEntry, ReplayOutcome, Source, TrimCounts,
};

/// A dedicated connection for blocking reads.
pub(crate) struct RedisReader {
    conn: MultiplexedConnection,
}

/// Removes idle consumers that own nothing, atomically: the pending count is read and the
/// consumer deleted in one script, so a consumer that just took an entry is never removed.
const REMOVE_IDLE_CONSUMERS: &str = r"
local removed = {}
local consumers = redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
for _, c in ipairs(consumers) do
  local name, pending, idle
  for i = 1, #c, 2 do
    if c[i] == 'name' then name = c[i + 1]
    elseif c[i] == 'pending' then pending = c[i + 1]
    elseif c[i] == 'idle' then idle = c[i + 1] end
  end
  if name and name ~= ARGV[2] and pending == 0 and idle and idle >= tonumber(ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name)
    table.insert(removed, name)
  end
end
return removed
";

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl RedisTransport {
    pub(super) fn unexpected(command: &'static str, key: &str, reply: String) -> Error {
        Error::UnexpectedReply {
            command,
            key: key.to_owned(),
            reply,
        }
    }

    /// Delivery counts of `consumer`'s pending entries between the first and last of `ids`.
    async fn delivery_counts(
        &self,
        key: &str,
        group: &str,
        consumer: &str,
        ids: &[MessageId],
    ) -> Result<HashMap<MessageId, u32>> {
        let (Some(first), Some(last)) = (ids.iter().min(), ids.iter().max()) else {
            return Ok(HashMap::new());
        };
        let mut conn = self.conn.clone();
        let v: Value = redis::cmd("XPENDING")
            .arg(key)
            .arg(group)
            .arg(first.to_string())
            .arg(last.to_string())
            .arg(ids.len().max(1) * 2)
            .arg(consumer)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error("XPENDING", key, e))?;
        let pending = reply::pending_reply(v).map_err(|r| Self::unexpected("XPENDING", key, r))?;
        Ok(pending.into_iter().collect())
    }

    async fn with_counts(
        &self,
        key: &str,
        group: &str,
        consumer: &str,
        entries: Vec<RawEntry>,
    ) -> Result<Vec<Delivery>> {
        let ids: Vec<MessageId> = entries.iter().map(|e| e.id).collect();
        let counts = self.delivery_counts(key, group, consumer, &ids).await?;
        Ok(entries
            .into_iter()
            .map(|e| Delivery {
                delivery_count: counts.get(&e.id).copied().unwrap_or(1),
                id: e.id,
                fields: e.fields,
                source: Source::Pending,
            })
            .collect())
    }
}

impl Broker for RedisTransport {
    type Reader = RedisReader;

    async fn append(&self, key: &str, entry: &EncodedEvent) -> Result<MessageId> {
        self.bounded("XADD", key, self.append_one(key, entry)).await
    }

    async fn append_all(&self, key: &str, entries: &[EncodedEvent]) -> Result<Vec<MessageId>> {
        self.bounded("XADD", key, self.append_many(key, entries))
            .await
    }

    async fn ensure_group(&self, key: &str, group: &str, start: Start) -> Result<()> {
        let mut conn = self.conn.clone();
        let from = match start {
            Start::Latest => "$",
            Start::Earliest => "0",
        };
        let res: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(key)
            .arg(group)
            .arg(from)
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await;
        match res {
            Ok(()) => {
                tracing::info!(stream = key, group, from, "created consumer group");
                Ok(())
            }
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(self.error("XGROUP CREATE", key, e)),
        }
    }

    async fn reader(&self) -> Result<RedisReader> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.response_timeout))
            .set_response_timeout(Some(self.response_timeout + Duration::from_secs(5)));
        let conn = self
            .conn
            .master_client()
            .await
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| self.error("CONNECT", "reader", e))?;
        Ok(RedisReader { conn })
    }

    async fn read_new(
        &self,
        reader: &mut RedisReader,
        key: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>> {
        let v: Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(group)
            .arg(consumer)
            .arg("COUNT")
            .arg(count.max(1))
            .arg("BLOCK")
            .arg(ms(block).max(1))
            .arg("STREAMS")
            .arg(key)
            .arg(">")
            .query_async(&mut reader.conn)
            .await
            .map_err(|e| self.error("XREADGROUP", key, e))?;
        let entries = reply::read_reply(v).map_err(|r| Self::unexpected("XREADGROUP", key, r))?;
        Ok(entries
            .into_iter()
            .map(|e| Delivery {
                id: e.id,
                fields: e.fields,
                delivery_count: 1,
                source: Source::Pending,
            })
            .collect())
    }

    async fn read_own_pending(
        &self,
        reader: &mut RedisReader,
        key: &str,
        group: &str,
        consumer: &str,
        after: MessageId,
        count: usize,
    ) -> Result<Vec<Delivery>> {
        let v: Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(group)
            .arg(consumer)
            .arg("COUNT")
            .arg(count.max(1))
            .arg("STREAMS")
            .arg(key)
            .arg(after.to_string())
            .query_async(&mut reader.conn)
            .await
            .map_err(|e| self.error("XREADGROUP", key, e))?;
        let entries = reply::read_reply(v).map_err(|r| Self::unexpected("XREADGROUP", key, r))?;
        self.with_counts(key, group, consumer, entries).await
    }

    async fn ack(&self, key: &str, group: &str, ids: &[MessageId]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        // Ids are formatted straight into the command (no string per id).
        let mut cmd =
            redis::Cmd::with_capacity(3 + ids.len(), 8 + key.len() + group.len() + 24 * ids.len());
        cmd.arg("XACK").arg(key).arg(group);
        for id in ids {
            cmd.write_arg_fmt(id);
        }
        let mut conn = self.conn.clone();
        cmd.query_async::<i64>(&mut conn)
            .await
            .map_err(|e| self.error("XACK", key, e))?;
        Ok(())
    }

    async fn touch(
        &self,
        key: &str,
        group: &str,
        consumer: &str,
        ids: &[MessageId],
    ) -> Result<Vec<MessageId>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = scripts::TOUCH.key(key);
        invocation.arg(group).arg(consumer);
        for id in ids {
            invocation.arg(id.to_string());
        }
        let mut conn = self.conn.clone();
        let v: Value = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.error("EVALSHA touch", key, e))?;
        reply::array(v)
            .and_then(|ids| ids.into_iter().map(reply::id).collect())
            .map_err(|r| Self::unexpected("EVALSHA touch", key, r))
    }

    async fn set_delivery_counts(
        &self,
        key: &str,
        group: &str,
        consumer: &str,
        ids: &[MessageId],
        count: u32,
    ) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::Cmd::with_capacity(
            9 + ids.len(),
            40 + key.len() + group.len() + consumer.len() + 24 * ids.len(),
        );
        cmd.arg("XCLAIM").arg(key).arg(group).arg(consumer).arg(0);
        for id in ids {
            cmd.write_arg_fmt(id);
        }
        cmd.arg("RETRYCOUNT").arg(count).arg("JUSTID");
        let mut conn = self.conn.clone();
        cmd.query_async::<Value>(&mut conn)
            .await
            .map_err(|e| self.error("XCLAIM", key, e))?;
        Ok(())
    }

    async fn claim(
        &self,
        key: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        cursor: MessageId,
        alone_at: u32,
    ) -> Result<Claimed> {
        let mut conn = self.conn.clone();
        let v: Value = scripts::CLAIM_ONE
            .key(key)
            .arg(group)
            .arg(consumer)
            .arg(ms(min_idle))
            .arg(cursor.to_string())
            .arg(alone_at)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.error("EVALSHA claim-one", key, e))?;
        if let Some(suspect) =
            reply::suspect_reply(&v).map_err(|r| Self::unexpected("EVALSHA claim-one", key, r))?
        {
            return Ok(Claimed {
                next: cursor,
                suspect: Some(suspect),
                ..Claimed::default()
            });
        }
        let (next, entries, deleted) =
            reply::autoclaim_reply(v).map_err(|r| Self::unexpected("EVALSHA claim-one", key, r))?;
        let entries = self.with_counts(key, group, consumer, entries).await?;
        Ok(Claimed {
            next,
            entries,
            deleted,
            suspect: None,
        })
    }

    async fn schedule_retry(
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
        self.retry_later(keys, group, id, source, attempts, delay_ms, error, link)
            .await
    }

    async fn complete_retry(
        &self,
        keys: &StreamKeys,
        group: &str,
        id: MessageId,
        lease: &str,
    ) -> Result<bool> {
        self.retry_done(keys, group, id, lease).await
    }

    async fn dead_letter(
        &self,
        keys: &StreamKeys,
        group: &str,
        id: MessageId,
        source: &Source,
        letter: &Letter<'_>,
    ) -> Result<LetterOutcome> {
        self.give_up(keys, group, id, source, letter).await
    }

    async fn lease_retries(
        &self,
        keys: &StreamKeys,
        group: &str,
        lease_ms: u64,
        count: usize,
    ) -> Result<(Vec<Delivery>, Option<u64>)> {
        self.lease(keys, group, lease_ms, count).await
    }

    async fn read_dead_letters(
        &self,
        keys: &StreamKeys,
        after: Option<MessageId>,
        until: Option<MessageId>,
        count: usize,
    ) -> Result<Vec<RawEntry>> {
        self.letters(keys, after, until, count).await
    }

    async fn last_dead_letter(&self, keys: &StreamKeys) -> Result<Option<MessageId>> {
        self.last_letter(keys).await
    }

    async fn delete_dead_letters(&self, keys: &StreamKeys, ids: &[MessageId]) -> Result<u64> {
        self.delete_letters(keys, ids).await
    }

    async fn replay_dead_letter(
        &self,
        keys: &StreamKeys,
        letter_id: MessageId,
        group: &str,
        original_id: MessageId,
        max_replays: u32,
    ) -> Result<ReplayOutcome> {
        self.replay(keys, letter_id, group, original_id, max_replays)
            .await
    }

    async fn trim(
        &self,
        keys: &StreamKeys,
        max_len: Option<u64>,
        max_age: Option<Duration>,
        token: &str,
    ) -> Result<Option<TrimCounts>> {
        self.trim_stream(keys, max_len, max_age, token).await
    }

    async fn streams(&self, prefix: &str) -> Result<Vec<String>> {
        self.stream_names(prefix).await
    }

    async fn read_range(
        &self,
        key: &str,
        after: Option<MessageId>,
        count: usize,
    ) -> Result<Vec<RawEntry>> {
        self.range(key, after, count).await
    }

    async fn read_range_rev(
        &self,
        key: &str,
        before: Option<MessageId>,
        count: usize,
    ) -> Result<Vec<RawEntry>> {
        self.range_rev(key, before, count).await
    }

    async fn stream_info(&self, keys: &StreamKeys) -> Result<crate::info::StreamInfo> {
        self.info(keys).await
    }

    async fn remove_idle_consumers(
        &self,
        key: &str,
        group: &str,
        keep: &str,
        min_idle: Duration,
    ) -> Result<Vec<String>> {
        let mut conn = self.conn.clone();
        let removed: Vec<String> = redis::Script::new(REMOVE_IDLE_CONSUMERS)
            .key(key)
            .arg(group)
            .arg(keep)
            .arg(ms(min_idle))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.error("EVALSHA remove-idle-consumers", key, e))?;
        Ok(removed)
    }

    async fn schedule_delayed(
        &self,
        keys: &StreamKeys,
        event_id: &str,
        delay_ms: u64,
        packed: &[u8],
        lane: Priority,
    ) -> Result<Option<u64>> {
        self.schedule_delayed_now(keys, event_id, delay_ms, packed, lane)
            .await
    }

    async fn mark_lane(&self, keys: &StreamKeys, lane: Priority) -> Result<()> {
        let key = keys.lanes_marker();
        let mut conn = self.conn.clone();
        redis::cmd("SADD")
            .arg(&key)
            .arg(lane.as_str())
            .query_async::<i64>(&mut conn)
            .await
            .map_err(|e| self.error("SADD", &key, e))?;
        Ok(())
    }

    async fn lanes(&self, keys: &StreamKeys) -> Result<Lanes> {
        let key = keys.lanes_marker();
        let mut conn = self.conn.clone();
        // Bytes: a member another writer put there (not UTF-8, say) is ignored, not an error.
        let names: Vec<Vec<u8>> = redis::cmd("SMEMBERS")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error("SMEMBERS", &key, e))?;
        Ok(Lanes::from_names(names.iter().map(Vec::as_slice)))
    }

    async fn cancel_delayed(&self, keys: &StreamKeys, event_id: &str) -> Result<bool> {
        self.cancel_delayed_now(keys, event_id).await
    }

    async fn move_due(
        &self,
        keys: &StreamKeys,
        token: &str,
        lease_ms: u64,
        max: usize,
    ) -> Result<crate::delayed::Moved> {
        self.move_due_now(keys, token, lease_ms, max).await
    }

    async fn list_delayed(
        &self,
        keys: &StreamKeys,
        filter: &crate::delayed::DelayedFilter,
    ) -> Result<Vec<crate::delayed::DelayedEvent>> {
        self.list_delayed_now(keys, filter).await
    }

    async fn schema_registry(
        &self,
        key: &str,
        fields: &[(String, String)],
    ) -> Result<Vec<(String, String)>> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.atomic();
        if !fields.is_empty() {
            pipe.cmd("HSET").arg(key).arg(fields).ignore();
        }
        pipe.cmd("HGETALL").arg(key);
        let (all,): (Vec<(String, String)>,) = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error("HSET/HGETALL", key, e))?;
        Ok(all)
    }
}
