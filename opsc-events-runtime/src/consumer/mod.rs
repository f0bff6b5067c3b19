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
mod read;
mod scheduled;
mod settle;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::handler::{ContextParts, HandlerRegistration};
use crate::health::ConsumerStatus;
use crate::keys::StreamKeys;
use crate::transport::Broker;

/// One selected handler, resolved against the runtime's service and prefix.
#[derive(Debug, Clone)]
pub(crate) struct HandlerPlan {
    pub(crate) reg: &'static HandlerRegistration,
    pub(crate) group: Arc<str>,
    pub(crate) key: Arc<str>,
    /// Shared: the plan is cloned into every handler call's task.
    pub(crate) keys: Arc<StreamKeys>,
    pub(crate) consumer: Arc<str>,
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
}

/// Runs one handler's consumer until `stop` is cancelled, then drains.
pub(crate) async fn run<B: Broker>(
    broker: B,
    plan: HandlerPlan,
    parts: ContextParts,
    settings: ConsumerSettings,
    status: Arc<ConsumerStatus>,
    stop: CancellationToken,
) {
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
        ahead: Arc::new(ahead::ReadAhead::new(
            concurrency,
            plan.reg.config.timeout,
            plan.reg.config.claim_after,
        )),
        max_batch: settings.max_batch,
        counts: Arc::default(),
    };
    let retry_scheduled = Arc::new(Notify::new());
    let settler = settle::Settler {
        broker: broker.clone(),
        plan: plan.clone(),
        keys: plan.keys.clone(),
        retry_scheduled: retry_scheduled.clone(),
        observer: settings.observer.clone(),
        settled: settled_tx,
        stop: stop.clone(),
    };
    let acker = tokio::spawn(settler.run(ack_rx));
    let retrier = tokio::spawn(scheduled::run(
        broker.clone(),
        dispatcher.clone(),
        settings.clone(),
        retry_scheduled,
        stop.clone(),
    ));
    let claimer = tokio::spawn(claim::run_reclaim(
        broker.clone(),
        dispatcher.clone(),
        settings.clone(),
        stop.clone(),
    ));
    let cleaner = tokio::spawn(claim::run_cleanup(
        broker.clone(),
        plan.clone(),
        settings.clone(),
        stop.clone(),
    ));

    // The shutdown timeout runs from the stop, whatever the reader is doing then (a blocking
    // read is not cut short: what it returns is queued, and runs if there is time).
    let deadline = {
        let (stop, abort, timeout) = (stop.clone(), abort.clone(), settings.shutdown_timeout);
        tokio::spawn(async move {
            stop.cancelled().await;
            tokio::time::sleep(timeout).await;
            abort.cancel();
        })
    };

    read::run(&broker, &dispatcher, &settings, &status, &stop).await;

    // Stop reading happened; now let in-flight handlers (and what was read ahead) finish, up to
    // the shutdown timeout.
    let _ = claimer.await;
    let _ = cleaner.await;
    let _ = retrier.await;
    tracker.close();
    tokio::select! {
        () = tracker.wait() => {}
        () = abort.cancelled() => {
            tracing::warn!(
                group = %plan.group,
                timeout = ?settings.shutdown_timeout,
                "shutdown timeout: unfinished messages are left pending for another consumer"
            );
            tracker.wait().await;
        }
    }
    deadline.abort();
    drop(dispatcher);
    // Every sender is gone: the acker flushes what is left and returns.
    let _ = acker.await;
    status.stopped();
    tracing::info!(group = %plan.group, consumer = %plan.consumer, "consumer stopped");
}

/// Exponential backoff with jitter for reconnects: 100 ms doubling to 5 s.
pub(crate) fn reconnect_delay(failures: u32) -> Duration {
    let base = 100u64.saturating_mul(1 << failures.min(6)).min(5_000);
    Duration::from_millis(base / 2 + crate::util::random_u64() % (base / 2 + 1))
}
