//! Reading ahead: new entries are read in batches into a queue, and *lanes* — tasks that each
//! hold one concurrency slot — take them from the queue in stream order and run them one after
//! another. A handler with `concurrency = 1` has one lane, so its entries run in the stream's
//! order without a round trip (or a task) per entry.
//!
//! An entry read but not started sits in this consumer's pending list, and its idle time grows.
//! It must never become reclaimable while it waits here (another consumer would run it while it
//! is still ours — PITFALLS, "reclaiming work that is still running"). Three things keep it
//! from that (the argument is in `docs/DESIGN.md`):
//!
//! - the queue is bounded by the time it takes to drain: at most about `window` worth of calls
//!   at the handler's recent average call time, where `window = (claim_after − timeout) / 2`;
//! - a lane that takes an entry which has waited `window` or more first *refreshes* it, with
//!   every other entry queued long enough: `XCLAIM … JUSTID` to this same consumer, only for
//!   entries this consumer still owns (one script), which resets their idle time without
//!   counting a delivery. An entry found no longer ours is dropped from the queue, not run;
//! - an entry that waited past `claim_after − timeout` and could not be refreshed is not run
//!   (it stays pending and is reclaimed: a late delivery, never a double one).
//!
//! An entry read ahead is not an attempt until a lane starts it: its delivery count follows the
//! attempts started, not the reads (see `count`).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

use futures_util::FutureExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::dispatch::{Dispatcher, Runner};
use crate::handler::BatchSpec;
use crate::transport::{Broker, Delivery};

/// The most bytes of entries one consumer holds read ahead (a bound on memory whatever the
/// payload size: 256 entries of 4 KB fit).
const MAX_QUEUED_BYTES: usize = 1 << 20;

/// An entry read and not yet started.
#[derive(Debug)]
struct Queued {
    delivery: Delivery,
    /// When the read that delivered it was sent, or when it was last refreshed.
    since: Instant,
    bytes: usize,
}

#[derive(Debug, Default)]
struct Queue {
    entries: VecDeque<Queued>,
    bytes: usize,
    /// Lanes started and not finished (each holds, or waits for, one slot).
    lanes: usize,
    /// Calls that need every slot are waiting: lanes stop after their current entry.
    paused: usize,
}

/// The read-ahead queue of one handler's consumer.
#[derive(Debug)]
pub(crate) struct ReadAhead {
    queue: Mutex<Queue>,
    /// Woken when the queue has room for another read.
    room: Notify,
    /// Only one refresh at a time (lanes that need one wait, then find their entries fresh).
    refreshing: tokio::sync::Mutex<()>,
    concurrency: usize,
    /// How long an entry may wait before it is refreshed: `(claim_after − timeout) / 2`.
    window: Duration,
    /// How long an entry may wait at most without a refresh: `claim_after − timeout`.
    limit: Duration,
    /// Entries one call takes: 1, or a batch handler's `batch`.
    batch: usize,
    /// Woken when entries are queued (a batch lane lingering for more waits for it).
    arrived: Notify,
}

impl ReadAhead {
    pub(crate) fn new(concurrency: usize, timeout: Duration, claim_after: Duration) -> Self {
        // `claim_after > timeout` is a compile-time rule of `#[handler]`; saturate anyway.
        let limit = claim_after.saturating_sub(timeout);
        ReadAhead {
            queue: Mutex::default(),
            room: Notify::new(),
            refreshing: tokio::sync::Mutex::new(()),
            concurrency: concurrency.max(1),
            window: limit / 2,
            limit,
            batch: 1,
            arrived: Notify::new(),
        }
    }

    /// For a batch handler: each call takes up to `size` entries, so the queue holds up to
    /// `size` per lane.
    pub(crate) fn batched(mut self, size: u32) -> Self {
        self.batch = (size as usize).max(1);
        self
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while holding the lock; recover the queue anyway.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many entries the queue may hold now: as many as the lanes can start within
    /// `window` at the handler's recent call time (`handler_ns`), between the concurrency and
    /// `max_batch`.
    pub(crate) fn capacity(&self, handler_ns: u64, max_batch: usize) -> usize {
        let per_lane = self.concurrency.saturating_mul(self.batch);
        let max = max_batch.max(per_lane);
        if handler_ns == 0 {
            // Nothing measured yet: one entry (or one batch) per lane.
            return per_lane.min(max);
        }
        let window = u64::try_from(self.window.as_nanos()).unwrap_or(u64::MAX);
        let fits = window / handler_ns.max(1);
        let fits = usize::try_from(fits)
            .unwrap_or(usize::MAX)
            .saturating_mul(self.concurrency);
        fits.clamp(1, max)
    }

    /// Waits until the queue is at most half full (by entries and bytes) for `capacity`, and
    /// returns how many entries to read; `None` when stopping.
    pub(crate) async fn wait_room(
        &self,
        capacity: usize,
        stop: &CancellationToken,
    ) -> Option<usize> {
        loop {
            let notified = self.room.notified();
            {
                let q = self.lock();
                if q.entries.len() <= capacity / 2 && q.bytes <= MAX_QUEUED_BYTES / 2 {
                    return Some(capacity - q.entries.len());
                }
            }
            tokio::select! {
                () = notified => {}
                () = stop.cancelled() => return None,
            }
        }
    }

    /// Queues entries read at `since` (in stream order) and starts lanes for them.
    pub(crate) fn push<B: Broker>(
        &self,
        dispatcher: &Dispatcher,
        broker: &B,
        entries: Vec<Delivery>,
        since: Instant,
    ) {
        {
            let mut q = self.lock();
            for delivery in entries {
                let bytes = delivery.fields.as_ref().map_or(0, |f| {
                    f.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
                });
                q.bytes += bytes;
                q.entries.push_back(Queued {
                    delivery,
                    since,
                    bytes,
                });
            }
        }
        self.arrived.notify_waiters();
        self.start_lanes(dispatcher, broker);
    }

    /// Makes sure a lane runs while entries are queued. More lanes are started by lanes
    /// themselves, when a call has to wait (see [`ReadAhead::another_lane`]).
    pub(crate) fn start_lanes<B: Broker>(&self, dispatcher: &Dispatcher, broker: &B) {
        self.start_lane_if(dispatcher, broker, |q| q.lanes == 0);
    }

    /// A lane's call has to wait (it did not finish when first polled): if entries are queued
    /// and fewer than `concurrency` lanes run, another lane starts, so the next entry need not
    /// wait behind this call. A call that finishes at once never starts one: a handler that
    /// does not wait runs in one lane, without tasks handing entries to each other.
    pub(crate) fn another_lane<B: Broker>(&self, dispatcher: &Dispatcher, broker: &B) {
        self.start_lane_if(dispatcher, broker, |q| {
            q.lanes < self.concurrency && q.paused == 0
        });
    }

    /// Starts one lane if entries are queued and `wanted` holds, counting it under the lock.
    fn start_lane_if<B: Broker>(
        &self,
        dispatcher: &Dispatcher,
        broker: &B,
        wanted: impl FnOnce(&Queue) -> bool,
    ) {
        let start = {
            let mut q = self.lock();
            let start = !q.entries.is_empty() && wanted(&q);
            if start {
                q.lanes += 1;
            }
            start
        };
        if start {
            spawn_lane(dispatcher, broker);
        }
    }

    /// Lanes stop after their current entry, so that a call needing every slot gets them.
    pub(crate) fn pause(&self) {
        self.lock().paused += 1;
    }

    /// Undoes [`ReadAhead::pause`] and starts lanes for what is queued.
    pub(crate) fn resume<B: Broker>(&self, dispatcher: &Dispatcher, broker: &B) {
        {
            let mut q = self.lock();
            q.paused = q.paused.saturating_sub(1);
        }
        self.start_lanes(dispatcher, broker);
    }

    /// The next entry for a lane; `None` (and one lane fewer) when there is none or lanes are
    /// paused.
    fn next(&self, capacity_hint: usize) -> Option<Queued> {
        let mut q = self.lock();
        let next = if q.paused > 0 {
            None
        } else {
            q.entries.pop_front()
        };
        match &next {
            Some(e) => {
                q.bytes -= e.bytes;
                if q.entries.len() <= capacity_hint / 2 {
                    self.room.notify_one();
                }
            }
            None => q.lanes -= 1,
        }
        next
    }

    /// Up to `max` more entries for a lane that already has one (a batch lane); none when
    /// lanes are paused. Unlike [`ReadAhead::next`], the lane goes on either way.
    fn take_more(&self, max: usize, capacity_hint: usize) -> Vec<Queued> {
        let mut q = self.lock();
        if q.paused > 0 {
            return Vec::new();
        }
        let n = max.min(q.entries.len());
        let taken: Vec<Queued> = q.entries.drain(..n).collect();
        q.bytes -= taken.iter().map(|e| e.bytes).sum::<usize>();
        if n > 0 && q.entries.len() <= capacity_hint / 2 {
            self.room.notify_one();
        }
        taken
    }

    /// Refreshes `entry` and every queued entry that waited half the window, for `consumer`;
    /// returns whether `entry` may run.
    async fn refresh<B: Broker>(
        &self,
        broker: &B,
        dispatcher: &Dispatcher,
        entry: &Queued,
    ) -> bool {
        let _one = self.refreshing.lock().await;
        let plan = &dispatcher.plan;
        let now = Instant::now();
        let mut ids = vec![entry.delivery.id];
        {
            let q = self.lock();
            ids.extend(
                q.entries
                    .iter()
                    .filter(|e| now.duration_since(e.since) >= self.window / 2)
                    .map(|e| e.delivery.id),
            );
        }
        match broker
            .touch(&plan.key, &plan.group, &plan.consumer, &ids)
            .await
        {
            Ok(ours) => {
                let mut q = self.lock();
                let mut dropped = Vec::new();
                let mut freed = 0;
                q.entries.retain_mut(|e| {
                    if !ids.contains(&e.delivery.id) {
                        return true;
                    }
                    if ours.contains(&e.delivery.id) {
                        e.since = now;
                        true
                    } else {
                        dropped.push(e.delivery.id);
                        freed += e.bytes;
                        false
                    }
                });
                q.bytes -= freed;
                drop(q);
                let runs = ours.contains(&entry.delivery.id);
                if !runs {
                    dropped.push(entry.delivery.id);
                }
                if !dropped.is_empty() {
                    tracing::warn!(group = %plan.group, ids = ?dropped, "entries read ahead were taken over by another consumer before they started; left to it");
                }
                tracing::debug!(group = %plan.group, refreshed = ours.len(), "refreshed entries read ahead");
                runs
            }
            Err(e) => {
                let waited = now.duration_since(entry.since);
                let runs = waited < self.limit;
                tracing::warn!(
                    group = %plan.group, error = %e, message_id = %entry.delivery.id, waited = ?waited,
                    "cannot refresh an entry read ahead; {}",
                    if runs { "it is still safe to run" } else { "it is left pending for a reclaim" }
                );
                runs
            }
        }
    }
}

/// One lane: waits for a slot, then runs queued entries in order until the queue is empty, the
/// lanes are paused, or the shutdown timeout passed.
async fn lane<B: Broker>(dispatcher: Dispatcher, broker: B) {
    let ahead = dispatcher.ahead.clone();
    let runner = dispatcher.runner();
    let slot = tokio::select! {
        s = dispatcher.slots.clone().acquire_owned() => s.ok(),
        () = dispatcher.abort.cancelled() => None,
    };
    let Some(_slot) = slot else {
        ahead.lock().lanes -= 1;
        return;
    };
    let max_batch = dispatcher.max_batch;
    // With priority lanes: the turn this lane holds (see `gate`).
    let mut turn = None;
    loop {
        crate::fault::hit(&dispatcher.plan.group, "lane").await;
        if runner.aborted() {
            // Past the shutdown timeout: what is queued stays pending for another consumer.
            ahead.lock().lanes -= 1;
            return;
        }
        // With priority lanes, a turn before each entry (see `gate`): taken before the entry
        // leaves the queue, so that the wait for it counts as queued (refreshed if long).
        // The turn of the previous entry is passed on, so that this lane competes for it.
        if dispatcher.gate.is_active() {
            let next = match turn.take() {
                Some(t) => dispatcher.gate.pass(t, dispatcher.plan.lane).left_future(),
                None => dispatcher.gate.turn(dispatcher.plan.lane).right_future(),
            };
            tokio::select! {
                t = next => turn = Some(t),
                () = dispatcher.abort.cancelled() => {
                    ahead.lock().lanes -= 1;
                    return;
                }
            }
        }
        let hint = ahead.capacity(dispatcher.handler_ns.load(Ordering::Relaxed), max_batch);
        let Some(entry) = ahead.next(hint) else {
            return;
        };
        if let Some(spec) = dispatcher.plan.reg.batch {
            run_batch(&dispatcher, &broker, &runner, spec, entry, hint).await;
            continue;
        }
        if entry.since.elapsed() >= ahead.window
            && !ahead.refresh(&broker, &dispatcher, &entry).await
        {
            continue;
        }
        if let Some(ready) = dispatcher.prepare(entry.delivery) {
            let id = ready.id();
            runner
                .run(ready, || {
                    ahead.another_lane(&dispatcher, &broker);
                    // The first attempt has to wait: from now a crash would cut it short, so it
                    // is counted (see `count`). A call that finishes when first polled is never
                    // marked — it is settled before a mark could matter.
                    if dispatcher.counts.started(id) {
                        dispatcher.flush_counts(&broker);
                    }
                })
                .await;
        }
    }
}

/// A batch lane's call: `first` and the entries queued behind it, up to the handler's `batch`,
/// waiting up to `linger` after `first` for more, then one call for all of them (see
/// `handler::batch`). Entries of other types, or that need no call, are settled on the way and
/// do not count towards the batch.
async fn run_batch<B: Broker>(
    dispatcher: &Dispatcher,
    broker: &B,
    runner: &Runner,
    spec: BatchSpec,
    first: Queued,
    hint: usize,
) {
    let ahead = &dispatcher.ahead;
    let size = (spec.size as usize).max(1);
    let deadline = Instant::now() + spec.linger;
    let mut admitted = Vec::with_capacity(size.min(1024));
    let mut taken = vec![first];
    loop {
        for entry in taken.drain(..) {
            // An entry may wait up to `linger` more before its call starts: refresh it if that
            // could take it past the window (`linger` is below the window, checked by
            // `#[handler]`).
            if entry.since.elapsed() + spec.linger >= ahead.window
                && !ahead.refresh(broker, dispatcher, &entry).await
            {
                continue;
            }
            if let Some(a) = dispatcher.admit(entry.delivery) {
                admitted.push(a);
            }
        }
        if admitted.is_empty() || admitted.len() >= size {
            break;
        }
        let arrived = ahead.arrived.notified();
        tokio::pin!(arrived);
        arrived.as_mut().enable();
        taken = ahead.take_more(size - admitted.len(), hint);
        if !taken.is_empty() {
            continue;
        }
        if Instant::now() >= deadline || runner.aborted() || ahead.lock().paused > 0 {
            break;
        }
        tokio::select! {
            () = arrived => {}
            () = tokio::time::sleep_until(deadline) => {}
            () = dispatcher.abort.cancelled() => {}
        }
    }
    let Some(ready) = dispatcher.prepare_batch(admitted) else {
        return;
    };
    let ids: Vec<_> = ready.ids().collect();
    runner
        .run_batch(ready, || {
            ahead.another_lane(dispatcher, broker);
            // As for a single call (see `lane`): from now a crash would cut the attempts short.
            let mut flush = false;
            for id in ids {
                flush |= dispatcher.counts.started(id);
            }
            if flush {
                dispatcher.flush_counts(broker);
            }
        })
        .await;
}

/// Spawns a lane on the dispatcher's task tracker (so shutdown waits for it).
fn spawn_lane<B: Broker>(dispatcher: &Dispatcher, broker: &B) {
    dispatcher.tracker.spawn(
        dispatcher
            .supervisor
            .guard("lane", lane(dispatcher.clone(), broker.clone())),
    );
}
