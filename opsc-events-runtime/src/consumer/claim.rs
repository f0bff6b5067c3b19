//! Reclaim of entries whose consumer died (idle past `claim_after`), and removal of consumers
//! that are idle and own nothing.

use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::dispatch::{Dispatcher, SUSPECT_DELIVERIES};
use super::isolate::Alone;
use super::read::sleep_or_stop;
use super::{ConsumerSettings, HandlerPlan};
use crate::message_id::MessageId;
use crate::transport::Broker;

/// The least time between two warnings of one failing background loop.
pub(super) const WARN_EVERY: Duration = Duration::from_secs(60);

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
    let max_batch = settings.max_batch;
    let plan = dispatcher.plan.clone();
    let mut warn_every = crate::util::RateLimit::new(WARN_EVERY);
    let claim_after = plan.reg.config.claim_after;
    loop {
        crate::fault::hit(&plan.group, "reclaim").await;
        sleep_or_stop(interval(claim_after), &stop).await;
        if stop.is_cancelled() {
            return;
        }
        // Follow the cursor to the end of the pending list, one entry at a time: an entry that
        // outlived its consumers is claimed alone, so that if it is the one that kills processes,
        // the entries behind it are not claimed with it and pushed to the attempt limit too.
        // Free slots are taken in a batch and spent one claim at a time (an idle reader holds
        // every free slot during its blocking read; taking one slot per claim would wait for it
        // each time).
        let mut cursor = MessageId::MIN;
        let mut spare: Option<OwnedSemaphorePermit> = None;
        loop {
            let slot = match spare.as_mut().and_then(|p| p.split(1)) {
                Some(slot) => slot,
                None => {
                    if !dispatcher.wait_unsettled(&stop).await {
                        return;
                    }
                    let Some(mut batch) = dispatcher.take_slots(max_batch, &stop).await else {
                        return;
                    };
                    let slot = batch.split(1);
                    spare = Some(batch);
                    match slot {
                        Some(slot) => slot,
                        None => continue,
                    }
                }
            };
            let claimed = if crate::fault::failing(&plan.group, "reclaim") {
                Err(crate::error::Error::Timeout {
                    command: "XAUTOCLAIM",
                    key: plan.key.to_string(),
                    timeout: Duration::ZERO,
                })
            } else {
                broker
                    .claim(
                        &plan.key,
                        &plan.group,
                        &plan.consumer,
                        claim_after,
                        cursor,
                        SUSPECT_DELIVERIES,
                    )
                    .await
            };
            // A suspect (see `isolate`) is claimed only once nothing else runs in the runtime:
            // a claim counts a delivery, and one waiting, claimed, while another suspect kills
            // the process would be charged for a run it never had.
            let (claimed, hold) = match claimed {
                Ok(c) if c.suspect.is_some() => {
                    drop(slot);
                    spare = None;
                    let Some(alone) = dispatcher.isolation.alone(&stop).await else {
                        return;
                    };
                    let again = broker
                        .claim(
                            &plan.key,
                            &plan.group,
                            &plan.consumer,
                            claim_after,
                            cursor,
                            0,
                        )
                        .await;
                    (again, Hold::Alone(alone))
                }
                other => (other, Hold::Slot(slot)),
            };
            match claimed {
                Ok(claimed) => {
                    if !claimed.deleted.is_empty() {
                        tracing::warn!(
                            group = %plan.group,
                            count = claimed.deleted.len(),
                            ids = ?claimed.deleted,
                            "pending entries were deleted from the stream before being handled"
                        );
                    }
                    if let Some(entry) = claimed.entries.into_iter().next() {
                        tracing::info!(group = %plan.group, message_id = %entry.id, deliveries = entry.delivery_count, "reclaimed an idle entry");
                        match hold {
                            Hold::Alone(alone) => dispatcher.dispatch_alone(entry, alone),
                            Hold::Slot(slot) => {
                                if !dispatcher.dispatch_pending(entry, slot, &stop).await {
                                    return;
                                }
                            }
                        }
                    }
                    if claimed.next == MessageId::MIN {
                        break;
                    }
                    cursor = claimed.next;
                }
                Err(e) => {
                    // NOGROUP and connection errors are handled by the reader; try next round.
                    if let Some(held) = warn_every.check() {
                        tracing::warn!(group = %plan.group, error = %e, repeated = held, "reclaiming entries of dead consumers failed; trying again (this stops reclaims)");
                    }
                    break;
                }
            }
        }
    }
}

/// What a claimed entry runs with.
enum Hold {
    /// One slot of its handler.
    Slot(OwnedSemaphorePermit),
    /// Every slot of the runtime (a suspect).
    Alone(Alone),
}

pub(super) async fn run_cleanup<B: Broker>(
    broker: B,
    plan: HandlerPlan,
    settings: ConsumerSettings,
    stop: CancellationToken,
) {
    let mut warn_every = crate::util::RateLimit::new(WARN_EVERY);
    let every = (settings.consumer_idle_timeout / 2)
        .clamp(Duration::from_millis(200), Duration::from_secs(300));
    loop {
        crate::fault::hit(&plan.group, "cleanup").await;
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
            Err(e) => {
                if let Some(held) = warn_every.check() {
                    tracing::warn!(group = %plan.group, error = %e, repeated = held, "removing idle consumers failed; trying again later");
                }
            }
        }
    }
}
