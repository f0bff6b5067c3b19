//! Fault injection for the runtime's own tests: make one task of one consumer group panic or
//! hang at its next step, to check that the runtime notices (a supervised task that dies ends
//! `run()` with an error; one that hangs shows in `health()`).
//!
//! Compiled only with the `fault-injection` feature, which no service should enable; without it
//! every injection point is an empty inline function.

#[cfg(feature = "fault-injection")]
mod armed {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// What an armed fault does.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Fault {
        /// The task panics.
        Panic,
        /// The task waits forever (a stuck `await`).
        Hang,
        /// The task's Redis operation fails with a timeout, every time, until
        /// [`disarm`]ed (only where it is checked: `"ack"`, `"reclaim"`).
        Fail,
    }

    static ANY: AtomicBool = AtomicBool::new(false);
    static ARMED: Mutex<Vec<(String, &'static str, Fault)>> = Mutex::new(Vec::new());

    /// Arms `fault` for the next step of `task` (`"read"`, `"lane"`, `"counts"`, `"settle"`,
    /// `"retry"`, `"reclaim"`, `"cleanup"`) of the consumer of `group`; it fires once.
    pub fn arm(group: &str, task: &'static str, fault: Fault) {
        ARMED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((group.to_owned(), task, fault));
        ANY.store(true, Ordering::SeqCst);
    }

    /// Removes the faults armed for `task` of `group`.
    pub fn disarm(group: &str, task: &'static str) {
        ARMED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(g, t, _)| !(g == group && *t == task));
    }

    static FAILED: Mutex<Vec<(String, &'static str)>> = Mutex::new(Vec::new());

    /// Whether a [`Fault::Fail`] is armed for `task` of `group` (it stays armed); each `true`
    /// is counted (see [`failures`]).
    pub(crate) fn failing(group: &str, task: &'static str) -> bool {
        let armed = ANY.load(Ordering::Relaxed)
            && ARMED
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .any(|(g, t, f)| g == group && *t == task && *f == Fault::Fail);
        if armed {
            FAILED
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((group.to_owned(), task));
        }
        armed
    }

    /// How many operations of `task` of `group` a [`Fault::Fail`] failed so far.
    pub fn failures(group: &str, task: &'static str) -> usize {
        FAILED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(g, t)| g == group && *t == task)
            .count()
    }

    pub(crate) async fn hit(group: &str, task: &'static str) {
        if !ANY.load(Ordering::Relaxed) {
            return;
        }
        let fault = {
            let mut armed = ARMED.lock().unwrap_or_else(|e| e.into_inner());
            let at = armed
                .iter()
                .position(|(g, t, f)| g == group && *t == task && *f != Fault::Fail);
            at.map(|i| armed.swap_remove(i).2)
        };
        match fault {
            Some(Fault::Panic) => {
                panic!("fault injected into the `{task}` task of group `{group}`")
            }
            Some(Fault::Hang) => std::future::pending::<()>().await,
            Some(Fault::Fail) | None => {}
        }
    }
}

#[cfg(feature = "fault-injection")]
pub use armed::{Fault, arm, disarm, failures};
#[cfg(feature = "fault-injection")]
pub(crate) use armed::{failing, hit};

/// The offset of this process's wall clock, in milliseconds, from the environment variable
/// `OPSC_FAULT_CLOCK_OFFSET_MS` (read once): a host whose clock is skewed.
#[cfg(feature = "fault-injection")]
pub(crate) fn clock_offset_ms() -> i64 {
    static OFFSET: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *OFFSET.get_or_init(|| {
        std::env::var("OPSC_FAULT_CLOCK_OFFSET_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    })
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn clock_offset_ms() -> i64 {
    0
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) async fn hit(_group: &str, _task: &'static str) {}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn failing(_group: &str, _task: &'static str) -> bool {
    false
}
