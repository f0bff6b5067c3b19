//! `rt.dead_letters()`: list, get, replay and purge dead letters, on any transport.

use super::{DeadLetter, DeadLetterFilter};
use crate::envelope::now_ms;
use crate::error::Result;
use crate::keys::Keys;
use crate::message_id::MessageId;
use crate::transport::{Broker, RawEntry, ReplayOutcome, Transport, with_broker};

/// How many entries one read of the dead-letter stream takes.
const PAGE: usize = 200;

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

    async fn read(
        &self,
        filter: &DeadLetterFilter,
        after: Option<MessageId>,
    ) -> Result<Vec<RawEntry>> {
        let keys = self.keys.stream(&filter.stream);
        with_broker!(&self.transport, r => r.read_dead_letters(&keys, after, PAGE).await)
    }

    /// Calls `each` with every letter matching `filter`, oldest first, until it returns false
    /// or `limit` letters were seen.
    async fn scan(
        &self,
        filter: &DeadLetterFilter,
        limit: Option<usize>,
        mut each: impl FnMut(DeadLetter) -> bool,
    ) -> Result<()> {
        let mut after = filter.after;
        let mut seen = 0usize;
        loop {
            let page = self.read(filter, after).await?;
            let last = page.last().map(|e| e.id);
            for entry in page {
                let letter = DeadLetter::from_fields(entry.id, entry.fields.unwrap_or_default());
                if filter.matches(&letter) {
                    seen += 1;
                    if !each(letter) || limit.is_some_and(|l| seen >= l) {
                        return Ok(());
                    }
                }
            }
            match last {
                Some(id) => after = Some(id),
                None => return Ok(()),
            }
        }
    }

    /// Letters matching `filter`, oldest first, at most its `limit` (default 100). The next
    /// page starts `.after(last.id)`.
    pub async fn list(&self, filter: &DeadLetterFilter) -> Result<Vec<DeadLetter>> {
        let mut out = Vec::new();
        let limit = filter.limit.unwrap_or(100);
        if limit == 0 {
            return Ok(out);
        }
        self.scan(filter, Some(limit), |l| {
            out.push(l);
            true
        })
        .await?;
        Ok(out)
    }

    /// One letter of `stream` by its dead-letter id.
    pub async fn get(&self, stream: &str, id: MessageId) -> Result<Option<DeadLetter>> {
        // Reads are exclusive of `after`: start just before `id`.
        let before = match (id.ms(), id.seq()) {
            (0, 0) => None,
            (ms, 0) => Some(MessageId::new(ms - 1, u64::MAX)),
            (ms, seq) => Some(MessageId::new(ms, seq - 1)),
        };
        let keys = self.keys.stream(stream);
        let page = with_broker!(&self.transport, r => r.read_dead_letters(&keys, before, 1).await?);
        Ok(page
            .into_iter()
            .find(|e| e.id == id)
            .map(|e| DeadLetter::from_fields(e.id, e.fields.unwrap_or_default())))
    }

    /// Puts every letter matching `filter` (at most its `limit`, if set) back into the retry
    /// schedule of the one group that failed it, due now, with a fresh attempt count; returns
    /// how many were replayed. Letters replayed too often already stay (the loop guard).
    pub async fn replay(&self, filter: &DeadLetterFilter) -> Result<usize> {
        let mut letters = Vec::new();
        self.scan(filter, filter.limit, |l| {
            letters.push(l);
            true
        })
        .await?;
        let keys = self.keys.stream(&filter.stream);
        let mut replayed = 0;
        for l in letters {
            if l.group.is_empty() {
                tracing::warn!(dead_letter_id = %l.id, "dead letter names no group; not replayed");
                continue;
            }
            let outcome = with_broker!(&self.transport, r => {
                r.replay_dead_letter(&keys, l.id, &l.group, l.original_id, self.max_replays, now_ms())
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
        Ok(replayed)
    }

    /// Deletes every letter matching `filter` (at most its `limit`, if set); returns how many.
    pub async fn purge(&self, filter: &DeadLetterFilter) -> Result<usize> {
        let mut ids = Vec::new();
        self.scan(filter, filter.limit, |l| {
            ids.push(l.id);
            true
        })
        .await?;
        let keys = self.keys.stream(&filter.stream);
        let mut purged = 0u64;
        for chunk in ids.chunks(PAGE) {
            purged +=
                with_broker!(&self.transport, r => r.delete_dead_letters(&keys, chunk).await?);
        }
        Ok(usize::try_from(purged).unwrap_or(usize::MAX))
    }
}
