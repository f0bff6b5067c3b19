//! Reclaim of entries whose consumer died (idle past `claim_after`), and removal of consumers
//! that are idle and own nothing.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::dispatch::Dispatcher;
use super::read::sleep_or_stop;
use super::{ConsumerSettings, HandlerPlan};
use crate::message_id::MessageId;
use crate::transport::Broker;

/// How often to scan for idle entries: half of `claim_after`, between 100 ms and 30 s.
fn interval(claim_after: Duration) -> Duration {
    (claim_after / 2).clamp(Duration::from_millis(100), Duration::from_secs(30))
}

pub(super) async fn run_reclaim<B: Broker>(
    broker: B,
    dispatcher: Dispatcher,
    settings: ConsumerSettings,
    stop: CancellationToken,
) {
    let plan = dispatcher.plan.clone();
    let claim_after = plan.reg.config.claim_after;
    loop {
        sleep_or_stop(interval(claim_after), &stop).await;
        if stop.is_cancelled() {
            return;
        }
        // Follow the cursor to the end of the pending list, a bounded batch at a time.
        let mut cursor = MessageId::MIN;
        loop {
            let Some(mut permits) = dispatcher.take_slots(settings.max_batch, &stop).await else {
                return;
            };
            let count = permits.num_permits();
            match broker
                .claim(
                    &plan.key,
                    &plan.group,
                    &plan.consumer,
                    claim_after,
                    cursor,
                    count,
                )
                .await
            {
                Ok(claimed) => {
                    if !claimed.deleted.is_empty() {
                        tracing::warn!(
                            group = %plan.group,
                            count = claimed.deleted.len(),
                            ids = ?claimed.deleted,
                            "pending entries were deleted from the stream before being handled"
                        );
                    }
                    if !claimed.entries.is_empty() {
                        tracing::info!(group = %plan.group, count = claimed.entries.len(), "reclaimed idle entries");
                        let extra = permits.num_permits().saturating_sub(claimed.entries.len());
                        drop(permits.split(extra));
                        dispatcher.dispatch_all(claimed.entries, permits);
                    }
                    if claimed.next == MessageId::MIN {
                        break;
                    }
                    cursor = claimed.next;
                }
                Err(e) => {
                    // NOGROUP and connection errors are handled by the reader; try next round.
                    tracing::debug!(group = %plan.group, error = %e, "reclaim failed");
                    break;
                }
            }
        }
    }
}

pub(super) async fn run_cleanup<B: Broker>(
    broker: B,
    plan: HandlerPlan,
    settings: ConsumerSettings,
    stop: CancellationToken,
) {
    let every = (settings.consumer_idle_timeout / 2)
        .clamp(Duration::from_millis(200), Duration::from_secs(300));
    loop {
        sleep_or_stop(every, &stop).await;
        if stop.is_cancelled() {
            return;
        }
        match broker
            .remove_idle_consumers(
                &plan.key,
                &plan.group,
                &plan.consumer,
                settings.consumer_idle_timeout,
            )
            .await
        {
            Ok(removed) if !removed.is_empty() => {
                tracing::info!(group = %plan.group, ?removed, "removed idle consumers that owned nothing");
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(group = %plan.group, error = %e, "consumer clean-up failed"),
        }
    }
}
