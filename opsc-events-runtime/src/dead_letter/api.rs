//! `rt.dead_letters()`: list, get, replay and purge dead letters, on any transport.

use super::{DeadLetter, DeadLetterFilter};
use crate::error::Result;
use crate::keys::Keys;
use crate::message_id::MessageId;
use crate::transport::{Broker, ReplayOutcome, Transport, with_broker};

/// The most entries one read of the dead-letter stream takes.
const PAGE: usize = 200;
/// The entries the first read of a pass takes.
const FIRST_PAGE: usize = 1;
/// About how many bytes one read of the dead-letter stream takes (the next read's count is
/// chosen from the size of the letters just read).
const PAGE_BYTES: usize = 4 << 20;

/// A replay refuses letters replayed this often already (the loop guard), unless the runtime
/// was built with another limit.
pub const DEFAULT_MAX_REPLAYS: u32 = 5;

/// Dead letters of the runtime's key prefix. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DeadLetters {
    transport: Transport,
    keys: Keys,
    max_replays: u32,
}

impl DeadLetters {
    pub(crate) fn new(transport: Transport, keys: Keys, max_replays: u32) -> Self {
        DeadLetters {
            transport,
            keys,
            max_replays,
        }
    }

    /// The next page of letters matching `filter` after `cursor.after` (up to `cursor.until`),
    /// moving the cursor past what was read; `None` when there is nothing more to read. Pages
    /// are bounded in entries ([`PAGE`]) and, by adapting their count to the letters' size, in
    /// bytes (about [`PAGE_BYTES`]): letters of 10 MB are read a few at a time.
    async fn next_page(
        &self,
        filter: &DeadLetterFilter,
        cursor: &mut Cursor,
    ) -> Result<Option<Vec<DeadLetter>>> {
        if cursor.done {
            return Ok(None);
        }
        let keys = self.keys.stream(&filter.stream);
        let page = with_broker!(&self.transport, r => {
            r.read_dead_letters(&keys, cursor.after, cursor.until, cursor.count).await
        })?;
        let Some(last) = page.last().map(|e| e.id) else {
            cursor.done = true;
            return Ok(None);
        };
        cursor.after = Some(last);
        let bytes: usize = page
            .iter()
            .flat_map(|e| e.fields.iter().flatten())
            .map(|(k, v)| k.len() + v.len())
            .sum();
        let per_letter = (bytes / page.len()).max(1);
        cursor.count = (PAGE_BYTES / per_letter).clamp(1, PAGE);
        Ok(Some(
            page.into_iter()
                .map(|e| DeadLetter::from_fields(e.id, e.fields.unwrap_or_default()))
                .filter(|l| filter.matches(l))
                .collect(),
        ))
    }

    /// A cursor over the letters of `filter`; for changes (`snapshot`), only up to the newest
    /// letter that exists now, so that letters written meanwhile (a replayed message failing
    /// again) are not taken in the same pass.
    async fn cursor(&self, filter: &DeadLetterFilter, snapshot: bool) -> Result<Cursor> {
        let until = if snapshot {
            let keys = self.keys.stream(&filter.stream);
            let last = with_broker!(&self.transport, r => r.last_dead_letter(&keys).await)?;
            match last {
                Some(id) => Some(id),
                None => {
                    return Ok(Cursor {
                        done: true,
                        ..Cursor::new(filter, None)
                    });
                }
            }
        } else {
            None
        };
        Ok(Cursor::new(filter, until))
    }

    /// Letters matching `filter`, oldest first, at most its `limit` (default 100). The next
    /// page starts `.after(last.id)`.
    pub async fn list(&self, filter: &DeadLetterFilter) -> Result<Vec<DeadLetter>> {
        let limit = filter.limit.unwrap_or(100);
        let mut out = Vec::new();
        let mut cursor = self.cursor(filter, false).await?;
        while out.len() < limit {
            let Some(page) = self.next_page(filter, &mut cursor).await? else {
                break;
            };
            out.extend(page.into_iter().take(limit - out.len()));
        }
        Ok(out)
    }

    /// How many letters match `filter` (at most its `limit`, if set), and the first `sample` of
    /// them, oldest first: what a replay or purge with the same filter would take now. Reads
    /// page by page, so memory stays bounded however many letters match.
    pub async fn count(
        &self,
        filter: &DeadLetterFilter,
        sample: usize,
    ) -> Result<(usize, Vec<DeadLetter>)> {
        let limit = filter.limit.unwrap_or(usize::MAX);
        let mut count = 0usize;
        let mut first = Vec::new();
        let mut cursor = self.cursor(filter, true).await?;
        while count < limit {
            let Some(page) = self.next_page(filter, &mut cursor).await? else {
                break;
            };
            for l in page.into_iter().take(limit - count) {
                count += 1;
                if first.len() < sample {
                    first.push(l);
                }
            }
        }
        Ok((count, first))
    }

    /// One letter of `stream` by its dead-letter id.
    pub async fn get(&self, stream: &str, id: MessageId) -> Result<Option<DeadLetter>> {
        // Reads are exclusive of `after`: start just before `id`.
        let before = before(id);
        let keys = self.keys.stream(stream);
        let page = with_broker!(&self.transport, r => r.read_dead_letters(&keys, before, Some(id), 1).await?);
        Ok(page
            .into_iter()
            .find(|e| e.id == id)
            .map(|e| DeadLetter::from_fields(e.id, e.fields.unwrap_or_default())))
    }

    /// Puts every letter matching `filter` (at most its `limit`, if set) back into the retry
    /// schedule of the one group that failed it, due now, with a fresh attempt count; returns
    /// how many were replayed. Letters replayed too often already stay (the loop guard).
    /// Works page by page (memory stays bounded however many letters match), and only on the
    /// letters that existed when it started.
    pub async fn replay(&self, filter: &DeadLetterFilter) -> Result<usize> {
        let keys = self.keys.stream(&filter.stream);
        let mut left = filter.limit.unwrap_or(usize::MAX);
        let mut replayed = 0;
        let mut cursor = self.cursor(filter, true).await?;
        while left > 0 {
            let Some(page) = self.next_page(filter, &mut cursor).await? else {
                break;
            };
            for l in page.into_iter().take(left) {
                left -= 1;
                if l.group.is_empty() {
                    tracing::warn!(dead_letter_id = %l.id, "dead letter names no group; not replayed");
                    continue;
                }
                // Back into the retry schedule of the lane the entry was in.
                let keys = keys.lane(l.priority);
                let outcome = with_broker!(&self.transport, r => {
                    r.replay_dead_letter(&keys, l.id, &l.group, l.original_id, self.max_replays)
                        .await?
                });
                match outcome {
                    ReplayOutcome::Replayed => replayed += 1,
                    ReplayOutcome::LoopGuard => tracing::warn!(
                        dead_letter_id = %l.id, replays = l.replays, max = self.max_replays,
                        "dead letter was replayed too often; left in place"
                    ),
                    ReplayOutcome::Gone => {}
                }
            }
        }
        Ok(replayed)
    }

    /// Deletes every letter matching `filter` (at most its `limit`, if set); returns how many.
    /// Works page by page, on the letters that existed when it started.
    pub async fn purge(&self, filter: &DeadLetterFilter) -> Result<usize> {
        let keys = self.keys.stream(&filter.stream);
        let mut left = filter.limit.unwrap_or(usize::MAX);
        let mut purged = 0u64;
        let mut cursor = self.cursor(filter, true).await?;
        while left > 0 {
            let Some(page) = self.next_page(filter, &mut cursor).await? else {
                break;
            };
            let ids: Vec<MessageId> = page.iter().take(left).map(|l| l.id).collect();
            left -= ids.len();
            purged += with_broker!(&self.transport, r => r.delete_dead_letters(&keys, &ids).await?);
        }
        Ok(usize::try_from(purged).unwrap_or(usize::MAX))
    }
}

/// Where a pass over the dead letters is.
#[derive(Debug)]
struct Cursor {
    after: Option<MessageId>,
    until: Option<MessageId>,
    /// Entries the next read asks for.
    count: usize,
    done: bool,
}

impl Cursor {
    fn new(filter: &DeadLetterFilter, until: Option<MessageId>) -> Self {
        // A selection by id is read from just before its first id to its last one.
        let (after, until, done) = match &filter.ids {
            Some(ids) => match (ids.first(), ids.last()) {
                (Some(first), Some(last)) => (
                    filter.after.max(before(*first)),
                    Some(until.map_or(*last, |u| u.min(*last))),
                    false,
                ),
                _ => (filter.after, until, true),
            },
            None => (filter.after, until, false),
        };
        Cursor {
            after,
            until,
            // Small until the letters' size is known.
            count: FIRST_PAGE,
            done,
        }
    }
}

/// The id just before `id` (reads are exclusive of their start); `None` before the first id.
fn before(id: MessageId) -> Option<MessageId> {
    match (id.ms(), id.seq()) {
        (0, 0) => None,
        (ms, 0) => Some(MessageId::new(ms - 1, u64::MAX)),
        (ms, seq) => Some(MessageId::new(ms, seq - 1)),
    }
}
