//! Delivery counts that count attempts started, not reads.
//!
//! Redis counts a delivery when `XREADGROUP` hands an entry out. An entry read ahead may wait
//! in the queue and never start: if its process dies, a reclaim would count that read as an
//! attempt, and the entries queued behind a message that kills its process would be pushed
//! towards `crashed` without ever running (found by the fault suite: a worker running two
//! handlers lost the second handler's whole queue at every death). So the counts of entries
//! read ahead are kept in step with what actually started:
//!
//! - right after a read, the batch's counts are set to 0 (read, not started);
//! - when a lane starts an entry whose call has to wait (it did not finish when first polled),
//!   its count is set to 1 (one attempt). A call that finishes at once is settled before a
//!   mark could matter, and marking every entry cost Redis an `XCLAIM` lookup per message (a
//!   100-handler process fell behind on its marks and grew to 224 MB).
//!
//! Both are `XCLAIM … 0 <ids> RETRYCOUNT <n> JUSTID` to the same consumer, queued in the order
//! they happen and sent by one flusher at a time, in that order, grouping consecutive ids of the
//! same kind into one command — one or two commands per batch, not per entry. An entry already
//! acknowledged (a fast handler) is no longer pending and is left alone.
//!
//! Windows (`docs/DESIGN.md`): a process that dies before the read's reset is sent charges the
//! batch one attempt; one that dies during a first attempt before its mark is sent (a call that
//! aborts the process before it first waits, or within a round trip of it) does not count that
//! attempt — a message that kills its process at once gets one run more than its attempts
//! before it is dead-lettered as `crashed`. The queue of changes is bounded
//! ([`MAX_QUEUED`]); past it, changes are dropped (logged): counts then fall back to Redis's
//! own, one read counted as one attempt.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use super::HandlerPlan;
use crate::message_id::MessageId;
use crate::transport::Broker;

/// The most count changes waiting to be sent, per handler.
pub(crate) const MAX_QUEUED: usize = 16_384;

#[derive(Debug, Default)]
struct Queue {
    /// `(count to set, id)`, in the order they happened.
    ops: Vec<(u32, MessageId)>,
    /// A flusher is sending.
    flushing: bool,
    /// Changes queued so far, in all.
    queued: u64,
}

/// The count changes of one handler's consumer, waiting to be sent.
#[derive(Debug)]
pub(crate) struct Counts {
    queue: Mutex<Queue>,
    /// Changes sent (or given up on) so far, in all: the reader waits for its batch's reset
    /// before reading again, so reads never outrun their resets (the queue stays small).
    sent: watch::Sender<u64>,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            queue: Mutex::default(),
            sent: watch::Sender::new(0),
        }
    }
}

impl Counts {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while holding the lock; recover the queue anyway.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues setting the counts of `ids` to `count`. Returns whether the caller must start a
    /// flusher, and the ticket to wait for with [`Counts::wait_sent`].
    fn add(&self, count: u32, ids: &[MessageId]) -> (bool, u64) {
        let mut q = self.lock();
        let take = ids.len().min(MAX_QUEUED.saturating_sub(q.ops.len()));
        q.ops.extend(ids[..take].iter().map(|&id| (count, id)));
        q.queued += take as u64;
        if take < ids.len() {
            tracing::warn!(
                dropped = ids.len() - take,
                "delivery-count changes are not sent as fast as they come; dropped (their counts stay Redis's own)"
            );
        }
        let start = !q.flushing && !q.ops.is_empty();
        q.flushing |= start;
        (start, q.queued)
    }

    /// Entries just read ahead: not started, so not an attempt (count 0).
    pub(crate) fn read(&self, ids: &[MessageId]) -> (bool, u64) {
        self.add(0, ids)
    }

    /// An entry read ahead starts its first attempt (count 1).
    pub(crate) fn started(&self, id: MessageId) -> bool {
        self.add(1, &[id]).0
    }

    /// Waits until the changes queued up to `ticket` are sent (or given up on).
    pub(crate) async fn wait_sent(&self, ticket: u64) {
        let mut sent = self.sent.subscribe();
        // The sender lives as long as `self`.
        let _ = sent.wait_for(|n| *n >= ticket).await;
    }

    /// Sends what is queued, in order, until the queue is empty.
    pub(crate) async fn flush<B: Broker>(self: Arc<Self>, broker: B, plan: HandlerPlan) {
        loop {
            crate::fault::hit(&plan.group, "counts").await;
            let ops = {
                let mut q = self.lock();
                if q.ops.is_empty() {
                    q.flushing = false;
                    return;
                }
                std::mem::take(&mut q.ops)
            };
            for run in ops.chunk_by(|a, b| a.0 == b.0) {
                let count = run[0].0;
                let ids: Vec<MessageId> = run.iter().map(|(_, id)| *id).collect();
                if let Err(e) = broker
                    .set_delivery_counts(&plan.key, &plan.group, &plan.consumer, &ids, count)
                    .await
                {
                    tracing::warn!(
                        group = %plan.group, error = %e, count,
                        "cannot set the delivery counts of entries read ahead: a crash now would count attempts wrongly for them (late or early dead letters, never a loss)"
                    );
                }
                self.sent.send_modify(|n| *n += run.len() as u64);
            }
        }
    }
}
