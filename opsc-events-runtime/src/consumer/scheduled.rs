//! The retry loop: takes due retries from the group's schedule under a lease, only as many as
//! there are free slots, and dispatches them like any other delivery. A message waiting for its
//! retry holds no slot and no task: it is only a member of a sorted set in Redis.

use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::ConsumerSettings;
use super::dispatch::Dispatcher;
use crate::transport::Broker;

/// The longest sleep between looks at the schedule (retries scheduled by other processes of
/// the group are seen at most this late).
const MAX_SLEEP: Duration = Duration::from_secs(1);

pub(super) async fn run<B: Broker>(
    broker: B,
    dispatcher: Dispatcher,
    settings: ConsumerSettings,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    let plan = dispatcher.plan.clone();
    let mut warn_every = crate::util::RateLimit::new(super::claim::WARN_EVERY);
    let lease_ms = u64::try_from(plan.reg.config.claim_after.as_millis()).unwrap_or(u64::MAX);
    // When the next retry is due, on this process's monotonic clock (the broker tells how long
    // until then by its own clock: wall clocks of hosts may disagree, durations do not).
    // Tokio's clock, so that a test's paused time (`tokio::time::pause`) applies.
    let mut next_due = Some(Instant::now());
    loop {
        crate::fault::hit(&plan.group, "retry").await;
        let wait = next_due.map_or(MAX_SLEEP, |due| {
            due.saturating_duration_since(Instant::now()).min(MAX_SLEEP)
        });
        if !wait.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = wake.notified() => {}
                () = stop.cancelled() => return,
            }
        }
        if stop.is_cancelled() {
            return;
        }
        if !dispatcher.wait_unsettled(&stop).await {
            return;
        }
        let Some(mut permits) = dispatcher.take_slots(settings.max_batch, &stop).await else {
            return;
        };
        let asked = Instant::now();
        match broker
            .lease_retries(&plan.keys, &plan.group, lease_ms, permits.num_permits())
            .await
        {
            Ok((due, next)) => {
                next_due = next.map(|ms| asked + Duration::from_millis(ms));
                if due.is_empty() {
                    continue;
                }
                tracing::debug!(group = %plan.group, count = due.len(), "retries due");
                let extra = permits.num_permits().saturating_sub(due.len());
                drop(permits.split(extra));
                dispatcher.dispatch_all(due, permits);
            }
            Err(e) => {
                if let Some(held) = warn_every.check() {
                    tracing::warn!(group = %plan.group, error = %e, repeated = held, "taking due retries failed; trying again (this stops retries)");
                }
                next_due = None;
            }
        }
    }
}
