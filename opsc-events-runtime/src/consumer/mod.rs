//! The consumer loop of one handler: read, dispatch under a concurrency limit, ack in batches,
//! reclaim what dead consumers left behind, shut down gracefully.
//!
//! This is the only place that decides what happens to a delivered entry (ack, leave pending,
//! and — with the retry policy — schedule or dead-letter), through the policy the handler
//! declared. It talks to Redis only through the [`Broker`] interface.

mod ahead;
mod claim;
mod count;
mod dispatch;
mod gate;
mod isolate;
mod lanes;
mod read;
mod scheduled;
mod settle;
mod supervise;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::handler::{ContextParts, HandlerRegistration};
use crate::health::ConsumerStatus;
use crate::keys::StreamKeys;
use crate::transport::Broker;

pub(crate) use isolate::Isolation;
pub(crate) use lanes::run_lanes;

/// One selected handler, resolved against the runtime's service and prefix.
#[derive(Debug, Clone)]
pub(crate) struct HandlerPlan {
    pub(crate) reg: &'static HandlerRegistration,
    pub(crate) group: Arc<str>,
    pub(crate) key: Arc<str>,
    /// Shared: the plan is cloned into every handler call's task.
    pub(crate) keys: Arc<StreamKeys>,
    pub(crate) consumer: Arc<str>,
    /// The priority lane this consumer reads (`key` and `keys` are the lane's).
    pub(crate) lane: crate::priority::Priority,
}

impl HandlerPlan {
    /// The plan of the handler's consumer of the priority lane `lane` (the same plan for
    /// `Normal`).
    pub(crate) fn for_lane(&self, lane: crate::priority::Priority) -> HandlerPlan {
        if lane == self.lane {
            return self.clone();
        }
        let keys = self.keys.lane(lane);
        HandlerPlan {
            key: keys.events.as_str().into(),
            keys: Arc::new(keys),
            lane,
            ..self.clone()
        }
    }
}

/// Runtime-wide consumer settings.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerSettings {
    /// How long one blocking read waits (bounds how late a shutdown or a dead socket is seen).
    pub(crate) read_block: Duration,
    /// Upper bound on entries read in one call.
    pub(crate) max_batch: usize,
    /// How long shutdown waits for in-flight handlers.
    pub(crate) shutdown_timeout: Duration,
    /// Consumers idle this long that own nothing are removed from the group.
    pub(crate) consumer_idle_timeout: Duration,
    /// Told what becomes of every delivery, before it is settled in the broker.
    pub(crate) observer: Option<crate::observe::Observer>,
    /// No progress for this long (or twice the handler's timeout, if longer) is a stall.
    pub(crate) stall_after: Duration,
    /// Shared by the consumers of one run of the runtime (see `isolate`).
    pub(crate) isolation: Arc<Isolation>,
}

/// Runs one handler's consumer until `stop` is cancelled, then drains. Every task it spawns is
/// supervised: if one dies, the consumer stops (draining the same way) and returns
/// [`Error::ConsumerFailed`](crate::Error::ConsumerFailed).
pub(crate) async fn run<B: Broker>(
    broker: B,
    plan: HandlerPlan,
    parts: ContextParts,
    settings: ConsumerSettings,
    status: Arc<ConsumerStatus>,
    stop_all: CancellationToken,
    gate: Arc<gate::PriorityGate>,
) -> crate::Result<()> {
    // Every log line of the consumer, its tasks included, names its stream, group and handler.
    // At error level, so that it is on whenever any of the consumer's lines is (a subscriber
    // filtering at `warn` still shows the fields).
    let span = tracing::error_span!(
        "consumer",
        stream = %plan.reg.stream,
        group = %plan.group,
        handler = %plan.reg.path(),
    );
    tracing::Instrument::instrument(
        run_in_span(
            broker,
            plan,
            parts,
            settings,
            status,
            stop_all,
            gate,
            span.clone(),
        ),
        span,
    )
    .await
}

#[allow(clippy::too_many_arguments)] // `run`'s arguments plus its span
async fn run_in_span<B: Broker>(
    broker: B,
    plan: HandlerPlan,
    parts: ContextParts,
    settings: ConsumerSettings,
    status: Arc<ConsumerStatus>,
    stop_all: CancellationToken,
    gate: Arc<gate::PriorityGate>,
    span: tracing::Span,
) -> crate::Result<()> {
    // Its own stop, so that a failed task stops this consumer (the runtime then stops the rest).
    let stop = stop_all.child_token();
    let supervisor = supervise::Supervisor::new(stop.clone(), plan.group.clone(), span);
    status.starting(
        settings
            .stall_after
            .max(plan.reg.config.timeout.saturating_mul(2)),
    );
    let concurrency = plan.reg.config.concurrency.max(1) as usize;
    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let (settled_tx, settled_rx) = watch::channel(0u64);
    let tracker = TaskTracker::new();
    let abort = CancellationToken::new();
    let dispatcher = dispatch::Dispatcher {
        plan: plan.clone(),
        parts,
        slots: Arc::new(Semaphore::new(concurrency)),
        outcomes: ack_tx,
        sent: Arc::default(),
        settled: settled_rx,
        tracker: tracker.clone(),
        abort: abort.clone(),
        // Registered here, with the metrics recorder installed at this point: install it before
        // running the runtime.
        duration: metrics::histogram!(
            "opsc_events_handler_duration_seconds",
            "stream" => plan.reg.stream,
            "group" => plan.group.to_string()
        ),
        handler_ns: Arc::default(),
        ahead: Arc::new(
            ahead::ReadAhead::new(
                concurrency,
                plan.reg.config.timeout,
                plan.reg.config.claim_after,
            )
            .batched(plan.reg.batch.map_or(1, |b| b.size)),
        ),
        max_batch: settings.max_batch,
        counts: Arc::default(),
        supervisor: supervisor.clone(),
        status: status.clone(),
        held: Arc::default(),
        isolation: settings.isolation.clone(),
        gate,
    };
    let membership = settings.isolation.join(isolate::Member {
        slots: dispatcher.slots.clone(),
        total: u32::try_from(concurrency).unwrap_or(u32::MAX),
        ahead: dispatcher.ahead.clone(),
        sent: dispatcher.sent.clone(),
        settled: dispatcher.settled.clone(),
        resume: {
            let (d, b) = (dispatcher.clone(), broker.clone());
            Box::new(move || d.ahead.resume(&d, &b))
        },
    });
    let retry_scheduled = Arc::new(Notify::new());
    let settler = settle::Settler {
        broker: broker.clone(),
        plan: plan.clone(),
        keys: plan.keys.clone(),
        retry_scheduled: retry_scheduled.clone(),
        observer: settings.observer.clone(),
        settled: settled_tx,
        stop: stop.clone(),
        status: status.clone(),
        held: dispatcher.held.clone(),
    };
    // The settler runs until every sender of outcomes is gone (after the drain), so it is only
    // guarded against panics; the others run until the stop.
    let acker = tokio::spawn(supervisor.guard("settle", settler.run(ack_rx)));
    let retrier = tokio::spawn(supervisor.until_stop(
        "retry",
        scheduled::run(
            broker.clone(),
            dispatcher.clone(),
            settings.clone(),
            retry_scheduled,
            stop.clone(),
        ),
    ));
    let claimer = tokio::spawn(supervisor.until_stop(
        "reclaim",
        claim::run_reclaim(
            broker.clone(),
            dispatcher.clone(),
            settings.clone(),
            stop.clone(),
        ),
    ));
    let cleaner = tokio::spawn(supervisor.until_stop(
        "cleanup",
        claim::run_cleanup(broker.clone(), plan.clone(), settings.clone(), stop.clone()),
    ));

    // The shutdown timeout runs from the stop, whatever the reader is doing then (a blocking
    // read is not cut short; what it returns stays pending for the next start, see `read`).
    let deadline = {
        let (stop, abort, timeout) = (stop.clone(), abort.clone(), settings.shutdown_timeout);
        tokio::spawn(async move {
            stop.cancelled().await;
            tokio::time::sleep(timeout).await;
            abort.cancel();
        })
    };

    // A dead task stops the reads at once (a read in progress is dropped: what it would have
    // returned stays new or pending, and is delivered again).
    tokio::select! {
        () = supervisor.until_stop("read", read::run(&broker, &dispatcher, &settings, &status, &stop)) => {}
        () = supervisor.failed() => {}
    }
    stop.cancel();

    // Stop reading happened; now let in-flight handlers (and what was read ahead) finish, up to
    // the shutdown timeout.
    // A task that does not stop (it hangs) is left behind at the timeout, logged: shutdown never
    // waits on it forever.
    tracker.close();
    let drained = async {
        let _ = claimer.await;
        let _ = cleaner.await;
        let _ = retrier.await;
        tracker.wait().await;
    };
    tokio::select! {
        () = drained => {}
        () = abort.cancelled() => {
            tracing::warn!(
                group = %plan.group,
                timeout = ?settings.shutdown_timeout,
                "shutdown timeout: unfinished messages are left pending for another consumer"
            );
            // Calls and lanes stop at the abort; the moment they need to do so.
            if tokio::time::timeout(ABORT_GRACE, tracker.wait()).await.is_err() {
                tracing::error!(group = %plan.group, "a task of the consumer did not stop at the shutdown timeout; it is left behind");
            }
        }
    }
    deadline.abort();
    // The membership holds a clone of the dispatcher (an outcome sender): it goes first.
    drop(membership);
    drop(dispatcher);
    // Every sender is gone: the acker settles what is left and returns — within another
    // shutdown timeout, or what it did not settle stays pending (delivered again).
    if tokio::time::timeout(settings.shutdown_timeout, acker)
        .await
        .is_err()
    {
        tracing::error!(
            group = %plan.group,
            "settlement did not finish within the shutdown timeout after the drain; what it did not settle stays pending and is delivered again"
        );
    }
    if let Some(failure) = supervisor.failure() {
        let error = failure.into_error(plan.reg.path(), &plan.group);
        status.failed(error.to_string());
        return Err(error);
    }
    status.stopped();
    tracing::info!(group = %plan.group, consumer = %plan.consumer, "consumer stopped");
    Ok(())
}

/// How long tasks get to stop once the shutdown timeout has passed.
const ABORT_GRACE: Duration = Duration::from_secs(1);

/// Exponential backoff with jitter for reconnects: 100 ms doubling to 5 s.
pub(crate) fn reconnect_delay(failures: u32) -> Duration {
    let base = 100u64.saturating_mul(1 << failures.min(6)).min(5_000);
    Duration::from_millis(base / 2 + crate::util::random_u64() % (base / 2 + 1))
}
