//! Running a suspect entry alone in its runtime.
//!
//! An entry that was pending on consumers that died at least twice may be what kills them. It
//! runs alone: not only alone in its handler, but alone in the runtime — a process dies as a
//! whole, so whatever any other handler of the process runs beside it dies with it and is
//! charged an attempt. (Found by the fault suite: a worker running two handlers reclaimed, in
//! both, the entries its predecessor died with at the same moment; one handler's innocent entry
//! ran "alone" beside the other handler's crashing entry, three times, and was dead-lettered as
//! `crashed`.)
//!
//! Every consumer of a runtime registers here. To run an entry alone, a consumer takes the gate
//! (one at a time, so two never wait for each other's slots), pauses every consumer's read-ahead
//! lanes, takes every slot of every consumer, lets lanes restart (they wait for the slots), and
//! waits until every consumer has settled what it handled before (so none of it is pending if
//! the process dies next). The entry then runs holding all those slots. A reclaimer asks for
//! this *before* it claims a suspect entry (see `claim`), so a suspect never waits, claimed and
//! charged, behind another suspect that kills the process.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_util::sync::CancellationToken;

use super::ahead::ReadAhead;

/// What the isolation needs of one consumer.
pub(crate) struct Member {
    pub(crate) slots: Arc<Semaphore>,
    /// Its concurrency: every slot.
    pub(crate) total: u32,
    pub(crate) ahead: Arc<ReadAhead>,
    /// Outcomes sent to its settler, and settled.
    pub(crate) sent: Arc<AtomicU64>,
    pub(crate) settled: watch::Receiver<u64>,
    /// Undoes a pause of its lanes and starts lanes for what is queued.
    pub(crate) resume: Box<dyn Fn() + Send + Sync>,
}

impl fmt::Debug for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Member")
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

impl Member {
    async fn wait_settled(&self) {
        let mut settled = self.settled.clone();
        // An error means the settler is gone (shutdown): nothing more to wait for.
        let _ = settled
            .wait_for(|n| *n >= self.sent.load(Ordering::SeqCst))
            .await;
    }
}

/// The consumers of one runtime.
#[derive(Debug, Default)]
pub(crate) struct Isolation {
    gate: tokio::sync::Mutex<()>,
    members: Mutex<Vec<(u64, Arc<Member>)>>,
    next_id: AtomicU64,
}

/// Every slot of every consumer of the runtime: held, nothing else runs.
#[derive(Debug)]
pub(crate) struct Alone {
    _slots: Vec<OwnedSemaphorePermit>,
}

/// A consumer's membership; ends when dropped (before its dispatcher is dropped, so the
/// member's hold on it does not keep the settler waiting for outcomes).
#[derive(Debug)]
pub(crate) struct Membership {
    isolation: Arc<Isolation>,
    id: u64,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.isolation.lock().retain(|(id, _)| *id != self.id);
    }
}

impl Isolation {
    fn lock(&self) -> MutexGuard<'_, Vec<(u64, Arc<Member>)>> {
        // Nothing panics while holding the lock; recover the list anyway.
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn join(self: &Arc<Self>, member: Member) -> Membership {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().push((id, Arc::new(member)));
        Membership {
            isolation: self.clone(),
            id,
        }
    }

    /// Waits until nothing else runs in the runtime and everything handled before is settled,
    /// and returns the slots that keep it so. `None` when stopping. The caller must hold no
    /// slot (it would wait for itself).
    pub(crate) async fn alone(&self, stop: &CancellationToken) -> Option<Alone> {
        let _gate = tokio::select! {
            g = self.gate.lock() => g,
            () = stop.cancelled() => return None,
        };
        let members: Vec<Arc<Member>> = self.lock().iter().map(|(_, m)| m.clone()).collect();
        // Lanes stop after their current entry, so the slots come free.
        for m in &members {
            m.ahead.pause();
        }
        let mut slots = Vec::with_capacity(members.len());
        let mut stopped = false;
        for m in &members {
            tokio::select! {
                p = m.slots.clone().acquire_many_owned(m.total) => {
                    // The semaphores are never closed.
                    if let Ok(p) = p {
                        slots.push(p);
                    }
                }
                () = stop.cancelled() => {
                    stopped = true;
                    break;
                }
            }
        }
        // Lanes started now wait for the slots held here.
        for m in &members {
            (m.resume)();
        }
        if stopped {
            return None;
        }
        for m in &members {
            tokio::select! {
                () = m.wait_settled() => {}
                () = stop.cancelled() => return None,
            }
        }
        Some(Alone { _slots: slots })
    }
}
