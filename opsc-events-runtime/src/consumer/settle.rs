//! Settling outcomes: the one place that decides what becomes of a handled message — ack,
//! retry later, or dead-letter — through the handler's declared policy.
//!
//! Successes of first deliveries are acknowledged in batches (one `XACK` per batch); every
//! other outcome is one atomic script (see `transport::redis::scripts`).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::HandlerPlan;
use super::dispatch::{Failure, Outcome};
use crate::keys::StreamKeys;
use crate::message_id::MessageId;
use crate::observe::{Observation, Observer, Outcome as Observed};
use crate::retry::{Next, after_failure};
use crate::transport::{Broker, Letter, LetterOutcome, Source};

const MAX_BATCH: usize = 512;
/// The most bytes of error text stored with a retry or a dead letter; longer text is cut (at a
/// character boundary) and marked.
pub(crate) const MAX_ERROR_BYTES: usize = 4096;
/// Appended to error text that was cut.
const CUT_MARK: &str = " … [cut: the error text was longer than 4096 bytes]";

/// `error`, cut to [`MAX_ERROR_BYTES`] (marked as cut) when longer: a handler's error text is
/// stored in Redis with every retry and dead letter, and nothing else bounds it.
pub(crate) fn cap_error(mut error: String) -> String {
    if error.len() <= MAX_ERROR_BYTES {
        return error;
    }
    let mut end = MAX_ERROR_BYTES - CUT_MARK.len();
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    error.truncate(end);
    error.push_str(CUT_MARK);
    error
}
/// Tries of a settlement once the runtime is shutting down (then shutdown must not wait long).
const ATTEMPTS_WHEN_STOPPING: u32 = 5;
/// How long a settlement is retried while the runtime runs. Giving up leaves the message
/// pending until `claim_after` passes and someone reclaims it: a duplicate, and a late one. A
/// settlement that fails because Redis restarts or fails over usually succeeds within seconds.
const PATIENCE: Duration = Duration::from_secs(60);
/// The longest pause between tries.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Tries of a settlement that failed with an error trying again does not fix (a script error,
/// a key of the wrong type, a permission): a few, in case the cause is fixed meanwhile, not
/// [`PATIENCE`]'s worth.
const ATTEMPTS_IF_DETERMINISTIC: u32 = 3;
/// Settlements (acknowledgement batches and scripts) in progress at once.
const MAX_IN_FLIGHT: usize = 1024;

/// Whether trying `e` again may succeed: the connection (dropped, refused, timed out) or a
/// server state that passes (loading, busy, out of memory, a failover or a cluster change).
fn transient(e: &crate::error::Error) -> bool {
    use crate::error::Error;
    match e {
        Error::Timeout { .. } => true,
        Error::Redis { source, .. } => {
            source.is_io_error()
                || source.is_timeout()
                || source.is_connection_dropped()
                || source.is_connection_refusal()
                || matches!(
                    source.code(),
                    Some(
                        "OOM"
                            | "BUSY"
                            | "LOADING"
                            | "TRYAGAIN"
                            | "CLUSTERDOWN"
                            | "MASTERDOWN"
                            | "READONLY"
                            | "NOREPLICAS"
                            | "MOVED"
                            | "ASK"
                    )
                )
        }
        _ => false,
    }
}

pub(super) struct Settler<B> {
    pub(super) broker: B,
    pub(super) plan: HandlerPlan,
    pub(super) keys: Arc<StreamKeys>,
    /// Woken when a retry is scheduled, so the retry loop can shorten its sleep.
    pub(super) retry_scheduled: Arc<Notify>,
    pub(super) observer: Option<Observer>,
    /// How many outcomes have been finished with (see `Dispatcher::wait_settled`).
    pub(super) settled: watch::Sender<u64>,
    /// For health: a settlement batch that takes too long is a stall.
    pub(super) status: Arc<crate::health::ConsumerStatus>,
    /// Pending-list entries held until settled (see `dispatch::Held`).
    pub(super) held: Arc<super::dispatch::Held>,
    /// The runtime is shutting down: settlements are tried a few times only.
    pub(super) stop: CancellationToken,
}

impl<B: Broker> Settler<B> {
    /// Tells the observer, if any. The observer is user code: a panic in it is caught, logged
    /// and counted (`opsc_events_observer_panics_total`), and settlement goes on — it must never
    /// stop the settler, which would leave every later message of the handler unsettled.
    fn observe(&self, id: MessageId, attempt: u32, outcome: impl FnOnce() -> Observed) {
        if let Some(observer) = &self.observer {
            let observation = Observation {
                handler: self.plan.reg.name,
                group: self.plan.group.to_string(),
                stream: self.plan.reg.stream,
                message_id: id,
                attempt,
                outcome: outcome(),
            };
            let call = std::panic::AssertUnwindSafe(|| (observer.0)(&observation));
            if let Err(payload) = std::panic::catch_unwind(call) {
                let message = super::dispatch::panic_message(&*payload);
                tracing::error!(
                    group = %self.plan.group, message_id = %id, panic = %message,
                    "the delivery observer panicked; settlement goes on"
                );
                metrics::counter!("opsc_events_observer_panics_total", "stream" => self.plan.reg.stream, "group" => self.plan.group.to_string())
                    .increment(1);
            }
        }
    }

    /// Settles outcomes until every sender is gone. Each acknowledgement batch and each other
    /// settlement (one script about one message) runs as its own future, up to
    /// [`MAX_IN_FLIGHT`] at a time: a settlement that keeps failing (and is retried) never holds
    /// up the acknowledgements or settlements of other messages behind it.
    pub(super) async fn run(self, mut rx: mpsc::UnboundedReceiver<Outcome>) {
        let this = &self;
        let mut acks: Vec<MessageId> = Vec::with_capacity(MAX_BATCH);
        let mut running: FuturesUnordered<BoxFuture<'_, u64>> = FuturesUnordered::new();
        let mut done = 0u64;
        let mut open = true;
        while open || !running.is_empty() {
            tokio::select! {
                // Finished settlements first: they free room and count as progress.
                biased;
                Some(n) = running.next(), if !running.is_empty() => {
                    done += n;
                    self.settled.send_replace(done);
                    self.status.settled(!running.is_empty());
                }
                first = rx.recv(), if open && running.len() < MAX_IN_FLIGHT => {
                    let Some(first) = first else {
                        open = false;
                        continue;
                    };
                    if running.is_empty() {
                        self.status.settling(true);
                    }
                    crate::fault::hit(&self.plan.group, "settle").await;
                    let mut next = Some(first);
                    let mut taken = 0;
                    while let Some(outcome) = next.take() {
                        taken += 1;
                        match (&outcome.result, &outcome.source) {
                            (Ok(()), Source::Pending) => {
                                self.observe(outcome.id, outcome.attempt, || {
                                    if outcome.skipped {
                                        Observed::Skipped
                                    } else {
                                        Observed::Handled
                                    }
                                });
                                acks.push(outcome.id);
                            }
                            _ => running.push(Box::pin(async move {
                                let (id, pending) =
                                    (outcome.id, matches!(outcome.source, Source::Pending));
                                this.settle(outcome).await;
                                if pending {
                                    this.held.release(&[id]);
                                }
                                1
                            })),
                        }
                        if taken < MAX_BATCH && running.len() < MAX_IN_FLIGHT {
                            next = rx.try_recv().ok();
                        }
                    }
                    if !acks.is_empty() {
                        let batch = std::mem::replace(&mut acks, Vec::with_capacity(MAX_BATCH));
                        running.push(Box::pin(async move {
                            let n = batch.len() as u64;
                            this.flush(&batch).await;
                            this.held.release(&batch);
                            n
                        }));
                    }
                }
            }
        }
    }

    async fn flush(&self, acks: &[MessageId]) {
        if acks.is_empty() {
            return;
        }
        let plan = &self.plan;
        let n = acks.len() as u64;
        if self
            .with_retries("XACK", || async {
                if crate::fault::failing(&plan.group, "ack") {
                    return Err(crate::error::Error::Timeout {
                        command: "XACK",
                        key: plan.key.to_string(),
                        timeout: Duration::ZERO,
                    });
                }
                self.broker.ack(&plan.key, &plan.group, acks).await
            })
            .await
            .is_some()
        {
            metrics::counter!("opsc_events_handled_total", "stream" => plan.reg.stream, "group" => plan.group.to_string())
                .increment(n);
            self.status.counts.handled(n);
        }
    }

    /// Runs `op` until it succeeds, with backoff (100 ms doubling to 2 s), for up to
    /// [`PATIENCE`] while the runtime runs and a few tries once it is shutting down; `None` when
    /// it kept failing. A message whose settlement failed stays pending (or leased) and is
    /// delivered again: a duplicate, never a loss.
    async fn with_retries<T, F, Fut>(&self, what: &str, mut op: F) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = crate::error::Result<T>>,
    {
        let started = std::time::Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let e = match op().await {
                Ok(v) => return Some(v),
                Err(e) => e,
            };
            let stopping = self.stop.is_cancelled();
            let transient = transient(&e);
            if !transient && attempt >= ATTEMPTS_IF_DETERMINISTIC {
                tracing::error!(group = %self.plan.group, error = %e, attempt, "{what} failed with an error that trying again does not fix; the message stays where it was (pending or scheduled) and is delivered again");
                metrics::counter!("opsc_events_settlement_failures_total", "group" => self.plan.group.to_string(), "kind" => "deterministic")
                    .increment(1);
                return None;
            }
            if (stopping && attempt >= ATTEMPTS_WHEN_STOPPING) || started.elapsed() >= PATIENCE {
                tracing::error!(group = %self.plan.group, error = %e, attempt, "{what} kept failing; the message will be delivered again");
                metrics::counter!("opsc_events_settlement_failures_total", "group" => self.plan.group.to_string(), "kind" => "transient")
                    .increment(1);
                return None;
            }
            tracing::warn!(group = %self.plan.group, error = %e, attempt, "{what} failed; retrying");
            let delay = Duration::from_millis(100u64 << (attempt - 1).min(5)).min(MAX_BACKOFF);
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                // Shutting down: try again at once, a few times only.
                () = self.stop.cancelled(), if !stopping => {}
            }
        }
    }

    async fn settle(&self, outcome: Outcome) {
        let Outcome {
            id,
            attempt,
            source,
            result,
            skipped,
            trace,
        } = outcome;
        let plan = &self.plan;
        let group = &*plan.group;
        let failure = match result {
            Ok(()) => {
                self.observe(id, attempt, || {
                    if skipped {
                        Observed::Skipped
                    } else {
                        Observed::Handled
                    }
                });
                if let Source::Scheduled { lease, .. } = &source {
                    let done = self
                        .with_retries("completing a retry", || {
                            self.broker.complete_retry(&self.keys, group, id, lease)
                        })
                        .await;
                    if done == Some(false) {
                        tracing::warn!(group, message_id = %id, "retry finished after its lease was taken over");
                    }
                    metrics::counter!("opsc_events_handled_total", "stream" => plan.reg.stream, "group" => group.to_owned())
                        .increment(1);
                    self.status.counts.handled(1);
                }
                return;
            }
            Err(f) => f,
        };
        metrics::counter!("opsc_events_failed_total", "stream" => plan.reg.stream, "group" => group.to_owned(), "reason" => failure.reason())
            .increment(1);
        self.status.counts.failed();
        let error = cap_error(failure.to_string());
        match after_failure(&plan.reg.config, attempt, failure.retryable()) {
            Next::RetryAfter(backoff) => {
                // The handler's own delay, when it named one, instead of the backoff.
                let delay = failure.retry_after().unwrap_or(backoff);
                self.observe(id, attempt, || Observed::Retrying {
                    reason: failure.reason(),
                    error: error.clone(),
                });
                let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
                tracing::warn!(
                    stream = plan.reg.stream, group, message_id = %id, attempt,
                    reason = failure.reason(), error = %error, retry_in = ?delay,
                    "handler attempt failed; retry scheduled"
                );
                let scheduled = self
                    .with_retries("scheduling a retry", || {
                        self.broker.schedule_retry(
                            &self.keys,
                            group,
                            id,
                            &source,
                            attempt,
                            delay_ms,
                            &error,
                            trace.as_deref(),
                        )
                    })
                    .await;
                if scheduled == Some(true) {
                    metrics::counter!("opsc_events_retried_total", "stream" => plan.reg.stream, "group" => group.to_owned())
                        .increment(1);
                    self.status.counts.retried();
                    self.retry_scheduled.notify_one();
                }
            }
            Next::GiveUp => self.give_up(id, attempt, &source, &failure, &error).await,
        }
    }

    async fn give_up(
        &self,
        id: MessageId,
        attempt: u32,
        source: &Source,
        failure: &Failure,
        error: &str,
    ) {
        let plan = &self.plan;
        let group = &*plan.group;
        let handler = plan.reg.path();
        let keep = plan.reg.config.dead_letter;
        self.observe(id, attempt, || Observed::GaveUp {
            reason: failure.reason(),
            error: error.to_owned(),
            dead_lettered: keep,
        });
        let letter = Letter {
            handler: &handler,
            reason: failure.reason(),
            error,
            attempts: attempt,
            keep,
        };
        let outcome = self
            .with_retries("dead-lettering", || {
                self.broker
                    .dead_letter(&self.keys, group, id, source, &letter)
            })
            .await;
        match outcome {
            Some(LetterOutcome::Stored(dl)) => {
                tracing::error!(
                    stream = plan.reg.stream, group, message_id = %id, dead_letter_id = %dl, attempts = attempt,
                    reason = failure.reason(), error, "message dead-lettered"
                );
                metrics::counter!("opsc_events_dead_lettered_total", "stream" => plan.reg.stream, "group" => group.to_owned(), "reason" => failure.reason())
                    .increment(1);
                self.status.counts.dead_lettered();
            }
            Some(LetterOutcome::Dropped) => {
                tracing::error!(
                    stream = plan.reg.stream, group, message_id = %id, attempts = attempt,
                    reason = failure.reason(), error, "message dropped after its last attempt (dead letters are off for this handler)"
                );
                metrics::counter!("opsc_events_dropped_total", "stream" => plan.reg.stream, "group" => group.to_owned(), "reason" => failure.reason())
                    .increment(1);
                self.status.counts.dropped();
            }
            Some(LetterOutcome::NotOurs) => {
                tracing::warn!(group, message_id = %id, "message was settled by another consumer meanwhile");
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_error_text_is_cut_and_marked() {
        assert_eq!(cap_error("short".into()), "short");
        let exact = "x".repeat(MAX_ERROR_BYTES);
        assert_eq!(cap_error(exact.clone()), exact);
        let long = "é".repeat(MAX_ERROR_BYTES);
        let cut = cap_error(long);
        assert!(cut.len() <= MAX_ERROR_BYTES, "{}", cut.len());
        assert!(cut.ends_with(CUT_MARK));
        assert!(cut.starts_with("éé"));
    }
}
