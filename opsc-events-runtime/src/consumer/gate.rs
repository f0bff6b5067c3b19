//! The priority gate of one handler: when the handler reads more than one priority lane, each
//! lane has a consumer of its own (reads, read-ahead, reclaims, retries), and every call of
//! any of them first takes a *turn* from this gate. There are `concurrency` turns; a turn given
//! back goes to the waiting lane the weighted round-robin picks (`priority::Weighted`, 8:4:2:1),
//! so higher lanes go first and lower ones still progress, and the handler's concurrency bounds
//! the calls of all its lanes together.
//!
//! Until a second lane starts the gate is inactive: a turn is a load of one flag and nothing
//! else, so a handler whose stream has no lanes pays nothing for it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

use crate::priority::{Priority, Weighted};

#[derive(Debug)]
struct GateState {
    /// Turns not taken.
    free: usize,
    /// Callers waiting for a turn, per lane (`Priority::index`), in arrival order.
    waiting: [VecDeque<oneshot::Sender<Turn>>; 4],
    weighted: Weighted,
}

/// One handler's turns (see the module docs).
#[derive(Debug)]
pub(crate) struct PriorityGate {
    active: AtomicBool,
    state: Mutex<GateState>,
}

/// A turn to run one call; given back when dropped.
#[derive(Debug)]
pub(crate) struct Turn {
    gate: Option<Arc<PriorityGate>>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Some(gate) = self.gate.take() {
            gate.give_back();
        }
    }
}

impl PriorityGate {
    /// An inactive gate of `turns` turns (the handler's concurrency).
    pub(crate) fn new(turns: usize) -> Self {
        PriorityGate {
            active: AtomicBool::new(false),
            state: Mutex::new(GateState {
                free: turns.max(1),
                waiting: Default::default(),
                weighted: Weighted::default(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, GateState> {
        // Nothing panics while holding the lock; recover the state anyway.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// From now on calls take turns. Calls running when this happens took none: until they
    /// finish, up to twice the concurrency may run (once, when a stream's first lane appears).
    pub(crate) fn activate(&self) {
        self.active.store(true, Ordering::SeqCst);
    }

    /// Whether calls take turns.
    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Waits for a turn for a call of lane `lane`. Cancel-safe: a caller that stops waiting
    /// loses its place, and a turn handed to it meanwhile is given back.
    pub(crate) async fn turn(self: &Arc<Self>, lane: Priority) -> Turn {
        if !self.is_active() {
            return Turn { gate: None };
        }
        let rx = {
            let mut s = self.lock();
            if s.free > 0 && s.waiting.iter().all(VecDeque::is_empty) {
                s.free -= 1;
                return Turn {
                    gate: Some(self.clone()),
                };
            }
            let (tx, rx) = oneshot::channel();
            s.waiting[lane.index()].push_back(tx);
            rx
        };
        // The sender lives in the gate until it is used, so an error cannot happen; a turn
        // that is not tracked is the safe answer if it did.
        rx.await.unwrap_or(Turn { gate: None })
    }

    /// Gives `turn` back and waits for the next one for lane `lane`, as one step: the caller is
    /// counted waiting when its turn is handed out, so a lane that keeps working competes for
    /// the turn it gives back (otherwise two lanes would simply alternate, whatever their
    /// weights). A turn taken while the gate was inactive is simply dropped.
    pub(crate) async fn pass(self: &Arc<Self>, mut turn: Turn, lane: Priority) -> Turn {
        if turn.gate.take().is_none() {
            return self.turn(lane).await;
        }
        let rx = {
            let mut s = self.lock();
            let (tx, rx) = oneshot::channel();
            s.waiting[lane.index()].push_back(tx);
            self.hand_out(&mut s);
            rx
        };
        rx.await.unwrap_or(Turn { gate: None })
    }

    /// A turn came back.
    fn give_back(self: Arc<Self>) {
        let mut s = self.lock();
        self.hand_out(&mut s);
    }

    /// One turn to hand out: to the waiting lane the weighting picks, or to the free ones.
    fn hand_out(self: &Arc<Self>, s: &mut GateState) {
        loop {
            // Callers that stopped waiting are dropped first, so they are not counted waiting.
            for q in &mut s.waiting {
                while q.front().is_some_and(oneshot::Sender::is_closed) {
                    q.pop_front();
                }
            }
            let waiting: [bool; 4] = std::array::from_fn(|i| !s.waiting[i].is_empty());
            let Some(lane) = s.weighted.pick(waiting) else {
                s.free += 1;
                return;
            };
            let Some(tx) = s.waiting[lane.index()].pop_front() else {
                continue;
            };
            let turn = Turn {
                gate: Some(self.clone()),
            };
            match tx.send(turn) {
                Ok(()) => return,
                // The caller stopped waiting after the check: the turn goes to the next one
                // (without running its `Drop`, which would take the lock held here).
                Err(mut turn) => {
                    turn.gate = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_inactive_gate_never_waits() {
        let gate = Arc::new(PriorityGate::new(1));
        let a = gate.turn(Priority::Low).await;
        let b = gate.turn(Priority::Low).await;
        drop((a, b));
        assert_eq!(gate.lock().free, 1);
    }

    #[tokio::test]
    async fn turns_bound_the_calls_and_go_to_the_higher_lane_first() {
        let gate = Arc::new(PriorityGate::new(1));
        gate.activate();
        let first = gate.turn(Priority::Low).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for lane in [
            Priority::Low,
            Priority::Low,
            Priority::Critical,
            Priority::Normal,
        ] {
            let (g, order) = (gate.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _turn = g.turn(lane).await;
                order.lock().expect("not poisoned").push(lane);
            }));
            // Queued in this order.
            tokio::task::yield_now().await;
            while gate.lock().waiting.iter().map(VecDeque::len).sum::<usize>() < tasks.len() {
                tokio::task::yield_now().await;
            }
        }
        drop(first);
        for t in tasks {
            t.await.expect("the task finished");
        }
        let order = order.lock().expect("not poisoned").clone();
        assert_eq!(order[0], Priority::Critical);
        assert_eq!(order[1], Priority::Normal);
        assert_eq!(&order[2..], [Priority::Low, Priority::Low]);
        assert_eq!(gate.lock().free, 1, "every turn came back");
    }

    #[tokio::test]
    async fn a_lane_that_keeps_working_gets_its_weighted_share() {
        // One turn, two lanes that always have work: critical and low, each passing its turn
        // on after every call. Low gets 1 call in 9 (weights 8 and 1), not every other one.
        let gate = Arc::new(PriorityGate::new(1));
        gate.activate();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for lane in [Priority::Critical, Priority::Low] {
            let (g, order) = (gate.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let mut turn = g.turn(lane).await;
                loop {
                    {
                        let mut o = order.lock().expect("not poisoned");
                        if o.len() >= 90 {
                            return;
                        }
                        o.push(lane);
                    }
                    tokio::task::yield_now().await;
                    turn = g.pass(turn, lane).await;
                }
            }));
        }
        for t in tasks {
            t.await.expect("the task finished");
        }
        let order = order.lock().expect("not poisoned").clone();
        let low = order.iter().filter(|p| **p == Priority::Low).count();
        assert!((9..=11).contains(&low), "low got {low} of 90: {order:?}");
        assert_eq!(gate.lock().free, 1, "every turn came back");
    }

    #[tokio::test]
    async fn a_caller_that_stops_waiting_loses_no_turn() {
        let gate = Arc::new(PriorityGate::new(1));
        gate.activate();
        let held = gate.turn(Priority::Low).await;
        let waiting = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.turn(Priority::High).await })
        };
        while gate.lock().waiting[Priority::High.index()].is_empty() {
            tokio::task::yield_now().await;
        }
        waiting.abort();
        let _ = waiting.await;
        drop(held);
        let again =
            tokio::time::timeout(std::time::Duration::from_secs(1), gate.turn(Priority::Low))
                .await
                .expect("the turn came back");
        drop(again);
        assert_eq!(gate.lock().free, 1);
    }
}
