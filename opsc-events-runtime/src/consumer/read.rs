//! The reading side: resume own pending entries, then block for new ones on a dedicated
//! connection, reading ahead as many as the queue has room for (see `ahead`).

use super::dispatch::Dispatcher;
use super::{ConsumerSettings, reconnect_delay};
use crate::handler::Start;
use crate::health::ConsumerStatus;
use crate::message_id::MessageId;
use crate::transport::Broker;
use std::sync::atomic::Ordering;
use tokio::time::Instant;

use tokio_util::sync::CancellationToken;

pub(super) async fn run<B: Broker>(
    broker: &B,
    dispatcher: &Dispatcher,
    settings: &ConsumerSettings,
    status: &ConsumerStatus,
    stop: &CancellationToken,
) {
    let plan = &dispatcher.plan;
    let mut failures = 0u32;
    let mut reader = None;
    // A consumer restarted under the same name first takes back what it owned.
    let mut resume_from = Some(MessageId::MIN);
    // The highest id any read delivered to this consumer (resumes and new reads): entries of
    // this consumer's pending list above it can only come from a read whose reply was lost.
    let mut last_seen = MessageId::MIN;
    // After a failed read: take back, from above `last_seen`, what a lost reply delivered.
    let mut recover_after: Option<MessageId> = None;
    while !stop.is_cancelled() {
        crate::fault::hit(&plan.group, "read").await;
        if !dispatcher.wait_unsettled(stop).await {
            break;
        }
        let conn = match reader.as_mut() {
            Some(r) => r,
            None => match broker.reader().await {
                Ok(r) => reader.insert(r),
                Err(e) => {
                    failures += 1;
                    status.read_failed(&e);
                    tracing::warn!(group = %plan.group, error = %e, "cannot open a reader; retrying");
                    sleep_or_stop(reconnect_delay(failures), stop).await;
                    continue;
                }
            },
        };
        // Own pending entries are read back one at a time, like reclaims (see
        // `Dispatcher::dispatch_pending`), each with a slot; new entries are read ahead into
        // the queue, as many as it has room for (see `ahead`).
        let (permit, count) = if resume_from.is_some() && recover_after.is_none() {
            let Some(permit) = dispatcher.take_slots(1, stop).await else {
                break;
            };
            (Some(permit), 1)
        } else {
            let handler_ns = dispatcher.handler_ns.load(Ordering::Relaxed);
            let capacity = dispatcher.ahead.capacity(handler_ns, settings.max_batch);
            let Some(count) = dispatcher.ahead.wait_room(capacity, stop).await else {
                break;
            };
            (None, count)
        };
        // Entries read ahead wait from the moment the read is sent.
        let since = Instant::now();
        // The read itself is bounded by `read_block` and is not cancelled half-way; what it
        // returns after a stop is left pending for the next start (see below).
        let result = match recover_after.or(resume_from) {
            Some(after) => {
                broker
                    .read_own_pending(conn, &plan.key, &plan.group, &plan.consumer, after, count)
                    .await
            }
            None => {
                broker
                    .read_new(
                        conn,
                        &plan.key,
                        &plan.group,
                        &plan.consumer,
                        count,
                        settings.read_block,
                    )
                    .await
            }
        };
        match result {
            Ok(mut deliveries) => {
                failures = 0;
                status.read_ok();
                if recover_after.is_some() {
                    // Delivered by the lost reply: never reached a handler, so not an attempt.
                    // Like new entries, they are read ahead (their count is set to 0, then 1
                    // when started), minus those this consumer holds (claimed or resumed ones
                    // running or being settled: their ids can be above `last_seen` too).
                    recover_after = deliveries
                        .last()
                        .map(|l| l.id)
                        .filter(|_| deliveries.len() >= count);
                    deliveries.retain(|d| !dispatcher.held.contains(d.id));
                    for d in &mut deliveries {
                        d.delivery_count = 1;
                    }
                    if !deliveries.is_empty() {
                        tracing::info!(group = %plan.group, entries = deliveries.len(), "took back entries delivered by a read whose reply was lost");
                    }
                } else if let Some(after) = resume_from.as_mut() {
                    match deliveries.last() {
                        Some(last) => *after = last.id,
                        None => resume_from = None,
                    }
                }
                if let Some(last) = deliveries.last() {
                    last_seen = last_seen.max(last.id);
                }
                if deliveries.is_empty() {
                    continue;
                }
                match permit {
                    // One entry per read (COUNT 1).
                    Some(permit) => {
                        if let Some(delivery) = deliveries.into_iter().next()
                            && !dispatcher.dispatch_pending(delivery, permit, stop).await
                        {
                            return;
                        }
                    }
                    None => {
                        // Not attempts until started (see `count`): queued before the lanes
                        // can mark any of them started.
                        let ids: Vec<MessageId> = deliveries.iter().map(|d| d.id).collect();
                        let (flush, ticket) = dispatcher.counts.read(&ids);
                        if flush {
                            dispatcher.flush_counts(broker);
                        }
                        // The reset lands before any entry of the batch runs (so whether a
                        // crash is counted does not depend on a race), and reads never
                        // outrun their resets. The lanes still have the rest of the previous
                        // batch meanwhile (the queue is refilled when half empty).
                        tokio::select! {
                            () = dispatcher.counts.wait_sent(ticket) => {}
                            // Stopping: a batch whose count reset is not confirmed yet is not
                            // queued — shutdown finishes the work in hand, it does not start a
                            // new batch — and stays pending for the next start (resumed) or a
                            // reclaim. (Waiting for the reset and running it during the
                            // shutdown made the fault suite's crashing job drag a neighbour to
                            // `crashed` about one run in two.) A hung flusher cannot hold the
                            // shutdown either.
                            () = stop.cancelled() => break,
                        }
                        dispatcher.ahead.push(dispatcher, broker, deliveries, since);
                    }
                }
            }
            Err(e) if e.is_no_group() => {
                drop(permit);
                tracing::warn!(stream = %plan.key, group = %plan.group, "consumer group is gone (stream deleted or Redis restarted without data); re-creating it");
                // From the start of the (new) stream, so nothing published since is missed.
                if let Err(e) = broker
                    .ensure_group(&plan.key, &plan.group, Start::Earliest)
                    .await
                {
                    failures += 1;
                    status.read_failed(&e);
                    tracing::warn!(group = %plan.group, error = %e, "cannot re-create the group");
                    sleep_or_stop(reconnect_delay(failures), stop).await;
                }
            }
            Err(e) => {
                drop(permit);
                failures += 1;
                status.read_failed(&e);
                // The reply may have been lost after Redis delivered its entries to this
                // consumer: take them back first, rather than leave them for a reclaim that
                // would count the lost read as an attempt.
                if resume_from.is_none() && recover_after.is_none() {
                    recover_after = Some(last_seen);
                }
                tracing::warn!(group = %plan.group, error = %e, failures, "read failed; reconnecting");
                reader = None;
                sleep_or_stop(reconnect_delay(failures), stop).await;
            }
        }
    }
}

pub(super) async fn sleep_or_stop(d: std::time::Duration, stop: &CancellationToken) {
    tokio::select! {
        () = tokio::time::sleep(d) => {}
        () = stop.cancelled() => {}
    }
}
