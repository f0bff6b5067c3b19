//! A handler's priority lanes: one consumer per lane the stream uses, started as lanes appear
//! (the runtime watches each stream's lane marker), sharing one priority gate (see `gate`).
//!
//! A stream that has never had an entry outside `normal` has only the `normal` lane: its
//! consumer is the one the handler always had, reading the stream's own key, and the gate stays
//! inactive. A lane found at `build()` has its group created there with the handler's `start`;
//! a lane that appears later gets its group from the lane's first entry (`0`): its marker was
//! written before that entry, and after this runtime last looked, so every entry of the lane
//! came after the runtime was built.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::gate::PriorityGate;
use super::{ConsumerSettings, HandlerPlan};
use crate::error::Error;
use crate::handler::{ContextParts, Start};
use crate::health::ConsumerStatus;
use crate::priority::{Lanes, Priority};
use crate::transport::Broker;

/// How long to wait before trying again to create a lane's group.
const GROUP_RETRY: Duration = Duration::from_secs(1);

/// Runs the handler's consumers — one per lane in `lanes`, more as lanes appear — until `stop`
/// is cancelled; one of them failing stops the others, and its error is returned.
#[allow(clippy::too_many_arguments)] // the consumer's arguments plus the lanes
pub(crate) async fn run_lanes<B: Broker>(
    broker: B,
    plan: HandlerPlan,
    parts: ContextParts,
    settings: ConsumerSettings,
    status: Arc<ConsumerStatus>,
    stop_all: CancellationToken,
    mut lanes: watch::Receiver<Lanes>,
) -> crate::Result<()> {
    let gate = Arc::new(PriorityGate::new(
        plan.reg.config.concurrency.max(1) as usize
    ));
    let stop = stop_all.child_token();
    let mut running = FuturesUnordered::new();
    let mut started = Lanes(0);
    let mut watching = true;
    let mut failure: Option<Error> = None;
    loop {
        let mut retry = false;
        if !stop.is_cancelled() {
            let current = *lanes.borrow_and_update();
            // Highest first, so that a critical lane found with others is read first.
            for lane in Priority::ALL.into_iter().rev() {
                if !current.contains(lane) || started.contains(lane) {
                    continue;
                }
                let lane_plan = plan.for_lane(lane);
                if lane != plan.lane {
                    if let Err(e) = broker
                        .ensure_group(&lane_plan.key, &plan.group, Start::Earliest)
                        .await
                    {
                        tracing::warn!(group = %plan.group, lane = %lane, error = %e, "cannot create the group on a priority lane; trying again");
                        retry = true;
                        continue;
                    }
                    gate.activate();
                    tracing::info!(stream = %plan.reg.stream, group = %plan.group, lane = %lane, key = %lane_plan.key, "reading a priority lane");
                }
                started = started.with(lane);
                let mut lane_parts = parts.clone();
                lane_parts.priority = lane;
                running.push(tokio::spawn(super::run(
                    broker.clone(),
                    lane_plan,
                    lane_parts,
                    settings.clone(),
                    status.clone(),
                    stop.clone(),
                    gate.clone(),
                )));
            }
        }
        if running.is_empty() {
            return failure.map_or(Ok(()), Err);
        }
        tokio::select! {
            changed = lanes.changed(), if watching && !stop.is_cancelled() => {
                // The watcher is gone (the runtime is stopping): no new lanes.
                watching = changed.is_ok();
            }
            () = tokio::time::sleep(GROUP_RETRY), if retry && !stop.is_cancelled() => {}
            Some(ended) = running.next() => {
                let result = ended.unwrap_or_else(|e| {
                    Err(Error::ConsumerFailed {
                        handler: plan.reg.path(),
                        group: plan.group.to_string(),
                        task: "consumer",
                        reason: if e.is_panic() { "panicked".to_owned() } else { "cancelled".to_owned() },
                    })
                });
                if let Err(e) = result {
                    failure.get_or_insert(e);
                }
                // A lane's consumer ends only at the stop or failing: the others stop too.
                stop.cancel();
            }
        }
    }
}
