//! Delayed events on Redis: the schedule scripts (see `crate::delayed`).

use redis::Value;
use uuid::Uuid;

use super::RedisTransport;
use super::reply;
use super::scripts;
use crate::delayed::{DelayedEvent, DelayedFilter, Moved, entry_of, unpack};
use crate::error::Result;
use crate::keys::StreamKeys;
use crate::priority::Priority;

/// The most events one listing returns.
const MAX_LIST: usize = 10_000;

impl RedisTransport {
    pub(super) async fn schedule_delayed_now(
        &self,
        keys: &StreamKeys,
        event_id: &str,
        delay_ms: u64,
        packed: &[u8],
        lane: Priority,
    ) -> Result<Option<u64>> {
        let mut conn = self.conn.clone();
        let lane = if lane == Priority::Normal {
            ""
        } else {
            lane.as_str()
        };
        let due: i64 = scripts::SCHEDULE_DELAYED
            .key(keys.delayed())
            .key(keys.delayed_data())
            .key(keys.delayed_lane())
            .arg(event_id)
            .arg(delay_ms)
            .arg(packed)
            .arg(lane)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.error("EVALSHA schedule-delayed", &keys.events, e))?;
        Ok(u64::try_from(due).ok())
    }

    pub(super) async fn cancel_delayed_now(
        &self,
        keys: &StreamKeys,
        event_id: &str,
    ) -> Result<bool> {
        let mut conn = self.conn.clone();
        let n: i64 = scripts::CANCEL_DELAYED
            .key(keys.delayed())
            .key(keys.delayed_data())
            .key(keys.delayed_lane())
            .arg(event_id)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.error("EVALSHA cancel-delayed", &keys.events, e))?;
        Ok(n == 1)
    }

    pub(super) async fn move_due_now(
        &self,
        keys: &StreamKeys,
        token: &str,
        lease_ms: u64,
        max: usize,
    ) -> Result<Moved> {
        let mut conn = self.conn.clone();
        let v: Value = scripts::MOVE_DUE
            .key(keys.delayed())
            .key(keys.delayed_data())
            .key(&keys.events)
            .key(keys.delayed_lease())
            .key(keys.delayed_lane())
            .key(keys.lane(Priority::Low).events)
            .key(keys.lane(Priority::High).events)
            .key(keys.lane(Priority::Critical).events)
            .arg(token)
            .arg(lease_ms)
            .arg(max)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.error("EVALSHA move-due", &keys.events, e))?;
        let parse = |v: Value| -> reply::ReplyResult<Moved> {
            let mut n = reply::array(v)?.into_iter().map(reply::int);
            let mut next = || n.next().unwrap_or(Err("short reply".to_owned()));
            let (moved, dropped, next_in, elsewhere) = (next()?, next()?, next()?, next()?);
            Ok(Moved {
                moved: usize::try_from(moved).unwrap_or(0),
                dropped: usize::try_from(dropped).unwrap_or(0),
                next_in_ms: u64::try_from(next_in).ok(),
                elsewhere: elsewhere == 1,
            })
        };
        parse(v).map_err(|r| Self::unexpected("EVALSHA move-due", &keys.events, r))
    }

    pub(super) async fn list_delayed_now(
        &self,
        keys: &StreamKeys,
        filter: &DelayedFilter,
    ) -> Result<Vec<DelayedEvent>> {
        let min = filter
            .after_ms
            .map_or_else(|| "-inf".to_owned(), |ms| ms.to_string());
        let max = filter
            .before_ms
            .map_or_else(|| "+inf".to_owned(), |ms| format!("({ms}"));
        let limit = filter.limit.unwrap_or(100).min(MAX_LIST);
        let mut conn = self.conn.clone();
        let v: Value = scripts::LIST_DELAYED
            .key(keys.delayed())
            .key(keys.delayed_data())
            .arg(min)
            .arg(max)
            .arg(limit)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.error("EVALSHA list-delayed", &keys.events, e))?;
        let parse = |v: Value| -> reply::ReplyResult<Vec<DelayedEvent>> {
            let mut out = Vec::new();
            let mut parts = reply::array(v)?.into_iter();
            while let (Some(id), Some(due), Some(packed)) =
                (parts.next(), parts.next(), parts.next())
            {
                let id = reply::bytes(id)?;
                let due = reply::bytes(due)?;
                let packed = reply::bytes(packed)?;
                // Members this runtime did not write are skipped, not fatal.
                let Some(event_id) = std::str::from_utf8(&id)
                    .ok()
                    .and_then(|s| Uuid::parse_str(s).ok())
                else {
                    continue;
                };
                let due_ms = std::str::from_utf8(&due)
                    .ok()
                    .and_then(|s| s.parse::<f64>().ok())
                    .map_or(0, |f| f as u64);
                let fields = unpack(&packed).unwrap_or_default();
                out.push(DelayedEvent {
                    event_id,
                    due_ms,
                    entry: entry_of(fields),
                });
            }
            Ok(out)
        };
        parse(v).map_err(|r| Self::unexpected("EVALSHA list-delayed", &keys.events, r))
    }
}
