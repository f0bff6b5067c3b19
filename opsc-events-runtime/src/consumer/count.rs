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
//! - when a lane starts an entry, its count is set to 1 (one attempt).
//!
//! Both are `XCLAIM … 0 <ids> RETRYCOUNT <n> JUSTID` to the same consumer, queued in the order
//! they happen and sent by one flusher at a time, in that order, grouping consecutive ids of the
//! same kind into one command — one or two commands per batch, not per entry. An entry already
//! acknowledged (a fast handler) is no longer pending and is left alone.
//!
//! Windows (`docs/DESIGN.md`): a process that dies before the read's reset is sent charges the
//! batch one attempt; one that dies between a start and its mark (about one round trip) does
//! not count that attempt — a message that kills its process at once gets one run more than its
//! attempts before it is dead-lettered as `crashed`.

use std::sync::{Arc, Mutex, MutexGuard};

use super::HandlerPlan;
use crate::message_id::MessageId;
use crate::transport::Broker;

#[derive(Debug, Default)]
struct Queue {
    /// `(count to set, id)`, in the order they happened.
    ops: Vec<(u32, MessageId)>,
    /// A flusher is sending.
    flushing: bool,
}

/// The count changes of one handler's consumer, waiting to be sent.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    queue: Mutex<Queue>,
}

impl Counts {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while holding the lock; recover the queue anyway.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `ops`; true when the caller must start a flusher.
    fn add(&self, ops: impl IntoIterator<Item = (u32, MessageId)>) -> bool {
        let mut q = self.lock();
        q.ops.extend(ops);
        let start = !q.flushing && !q.ops.is_empty();
        q.flushing |= start;
        start
    }

    /// Entries just read ahead: not started, so not an attempt (count 0).
    pub(crate) fn read(&self, ids: &[MessageId]) -> bool {
        self.add(ids.iter().map(|&id| (0, id)))
    }

    /// An entry read ahead starts its first attempt (count 1).
    pub(crate) fn started(&self, id: MessageId) -> bool {
        self.add([(1, id)])
    }

    /// Sends what is queued, in order, until the queue is empty.
    pub(crate) async fn flush<B: Broker>(self: Arc<Self>, broker: B, plan: HandlerPlan) {
        loop {
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
            }
        }
    }
}
