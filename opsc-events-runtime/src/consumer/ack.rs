//! Acknowledgements, batched: outcomes of finished handler calls arrive on a channel and are
//! acknowledged together, one `XACK` per batch.

use std::time::Duration;

use tokio::sync::mpsc;

use super::HandlerPlan;
use super::dispatch::{Failure, Outcome};
use crate::message_id::MessageId;
use crate::transport::Broker;

const MAX_BATCH: usize = 512;
const ACK_ATTEMPTS: u32 = 5;

pub(super) async fn run<B: Broker>(
    broker: B,
    plan: HandlerPlan,
    mut rx: mpsc::UnboundedReceiver<Outcome>,
) {
    let mut batch: Vec<MessageId> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(outcome) = next.take() {
            match outcome.result {
                Ok(()) => batch.push(outcome.id),
                Err(failure) => on_failure(&plan, outcome.id, outcome.attempt, &failure),
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        flush(&broker, &plan, &mut batch).await;
    }
}

/// A failed attempt leaves the entry pending: it is delivered again after `claim_after`.
fn on_failure(plan: &HandlerPlan, id: MessageId, attempt: u32, failure: &Failure) {
    tracing::warn!(
        stream = plan.reg.stream,
        group = %plan.group,
        message_id = %id,
        attempt,
        reason = failure.reason(),
        error = %failure,
        "handler attempt failed; the message stays pending"
    );
}

async fn flush<B: Broker>(broker: &B, plan: &HandlerPlan, batch: &mut Vec<MessageId>) {
    if batch.is_empty() {
        return;
    }
    for attempt in 1..=ACK_ATTEMPTS {
        match broker.ack(&plan.key, &plan.group, batch).await {
            Ok(()) => {
                batch.clear();
                return;
            }
            Err(e) => {
                tracing::warn!(group = %plan.group, error = %e, attempt, "XACK failed; retrying");
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
        }
    }
    // Unacknowledged entries stay pending and are delivered again after `claim_after`: a
    // duplicate, never a loss.
    tracing::error!(group = %plan.group, count = batch.len(), "giving up acknowledging; the entries will be redelivered");
    batch.clear();
}
