//! Turning a delivered entry into a handler call: decode the envelope, skip other event types,
//! run the handler in a task holding a concurrency slot, under its timeout, with panics caught.

use std::any::Any;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::FutureExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::HandlerPlan;
use crate::envelope::{DecodeError, Envelope, event_type_of};
use crate::handler::{CallError, Context, ContextParts, HandlerError, HandlerFuture};
use crate::message_id::MessageId;
use crate::retry::max_attempts;
use crate::transport::{Broker, Delivery, Source};

/// Why an attempt failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The envelope or payload could not be decoded.
    Decode(DecodeError),
    /// The handler returned an error.
    Handler(HandlerError),
    /// The handler panicked.
    Panic(String),
    /// The attempt ran past the handler's timeout.
    Timeout,
    /// Earlier attempts died with their consumer and no attempt is left.
    Crashed(u32),
}

impl Failure {
    /// The dead-letter reason this failure maps to.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Failure::Decode(e) if e.is_schema_mismatch() => "schema_mismatch",
            Failure::Decode(_) => "decode_error",
            Failure::Handler(e) if !e.is_retryable() => "permanent",
            Failure::Handler(_) => "handler_error",
            Failure::Panic(_) => "panic",
            Failure::Timeout => "timeout",
            Failure::Crashed(_) => "crashed",
        }
    }

    /// False for failures that retrying cannot fix.
    pub(crate) fn retryable(&self) -> bool {
        match self {
            Failure::Decode(_) | Failure::Crashed(_) => false,
            Failure::Handler(e) => e.is_retryable(),
            Failure::Panic(_) | Failure::Timeout => true,
        }
    }

    /// The delay the handler asked for with `HandlerError::retry_after`, if any.
    pub(crate) fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Failure::Handler(e) => e.retry_delay(),
            _ => None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Decode(e) => write!(f, "{e}"),
            Failure::Handler(e) => write!(f, "{e}"),
            Failure::Panic(msg) => write!(f, "handler panicked: {msg}"),
            Failure::Timeout => f.write_str("handler timed out"),
            Failure::Crashed(n) => write!(f, "the consumer process died during attempt {n}"),
        }
    }
}

/// The result of handling one delivery, sent to the acker.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) id: MessageId,
    pub(crate) attempt: u32,
    pub(crate) source: Source,
    pub(crate) result: Result<(), Failure>,
    /// The entry was of another event type and the handler was not called.
    pub(crate) skipped: bool,
    /// The trace context of a failed attempt's span (`traceparent` form; `otel` only), kept
    /// with the retry so that later attempts link to the first.
    pub(crate) trace: Option<Arc<str>>,
}

/// Shared by the reader and the reclaimer of one handler.
#[derive(Debug, Clone)]
pub(crate) struct Dispatcher {
    pub(crate) plan: HandlerPlan,
    pub(crate) parts: ContextParts,
    /// One permit per message in flight (`concurrency`).
    pub(crate) slots: Arc<Semaphore>,
    pub(crate) outcomes: mpsc::UnboundedSender<Outcome>,
    /// Outcomes sent to the settler so far.
    pub(crate) sent: Arc<AtomicU64>,
    /// Outcomes the settler has finished with (acknowledged, scheduled, dead-lettered, or given
    /// up on) so far.
    pub(crate) settled: watch::Receiver<u64>,
    pub(crate) tracker: TaskTracker,
    /// Cancelled when the shutdown timeout passes: unfinished calls stop, unacknowledged.
    pub(crate) abort: CancellationToken,
    /// `opsc_events_handler_duration_seconds` of this handler, registered once (not per call).
    pub(crate) duration: metrics::Histogram,
    /// A moving average of the handler's call time in nanoseconds (0 before the first call).
    pub(crate) handler_ns: Arc<AtomicU64>,
    /// Entries read ahead of the handler, run by lanes (see `ahead`).
    pub(crate) ahead: Arc<super::ahead::ReadAhead>,
    /// The most entries one read asks for (`ConsumerSettings::max_batch`).
    pub(crate) max_batch: usize,
    /// Delivery counts of entries read ahead, kept in step with the attempts started.
    pub(crate) counts: Arc<super::count::Counts>,
    /// Watches every task spawned here.
    pub(crate) supervisor: super::supervise::Supervisor,
    /// For health: calls finishing are progress.
    pub(crate) status: Arc<crate::health::ConsumerStatus>,
    /// Entries from the pending list (resumed or claimed) this consumer runs or settles.
    pub(crate) held: Arc<Held>,
    /// The runtime's consumers, for running a suspect entry alone (see `isolate`).
    pub(crate) isolation: Arc<super::isolate::Isolation>,
    /// Shared by the consumers of the handler's priority lanes (see `gate`).
    pub(crate) gate: Arc<super::gate::PriorityGate>,
}

/// The ids of pending-list entries (resumed or claimed) a consumer holds from dispatch until
/// settled: a recovery after a lost read reply must not take them again. Claims are rare, so
/// a locked set is enough; the settler only locks it while it is not empty.
#[derive(Debug, Default)]
pub(crate) struct Held {
    ids: std::sync::Mutex<std::collections::HashSet<MessageId>>,
    len: AtomicU64,
}

impl Held {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<MessageId>> {
        self.ids.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn insert(&self, id: MessageId) {
        let mut ids = self.lock();
        ids.insert(id);
        self.len.store(ids.len() as u64, Ordering::SeqCst);
    }

    pub(crate) fn contains(&self, id: MessageId) -> bool {
        self.len.load(Ordering::SeqCst) > 0 && self.lock().contains(&id)
    }

    /// The entries are settled (or given up on).
    pub(crate) fn release(&self, settled: &[MessageId]) {
        if self.len.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut ids = self.lock();
        for id in settled {
            ids.remove(id);
        }
        self.len.store(ids.len() as u64, Ordering::SeqCst);
    }
}

/// The most outcomes waiting for their settlement before the reader, the retry loop and the
/// reclaimer stop taking work (see [`Dispatcher::wait_unsettled`]).
pub(crate) const MAX_UNSETTLED: u64 = 2048;

/// A pending entry delivered this many times has been pending on a consumer that died at least
/// twice: it may be what killed them, so it runs alone.
pub(crate) const SUSPECT_DELIVERIES: u32 = 3;

pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

impl Dispatcher {
    /// Waits for at least one free slot, then takes up to `max` free ones.
    pub(crate) async fn take_slots(
        &self,
        max: usize,
        stop: &CancellationToken,
    ) -> Option<OwnedSemaphorePermit> {
        let mut permits = tokio::select! {
            p = self.slots.clone().acquire_owned() => p.ok()?,
            () = stop.cancelled() => return None,
        };
        let extra = self.slots.available_permits().min(max.saturating_sub(1));
        if extra > 0
            && let Ok(more) = self.slots.clone().try_acquire_many_owned(extra as u32)
        {
            permits.merge(more);
        }
        Some(permits)
    }

    /// Waits until fewer than [`MAX_UNSETTLED`] outcomes wait for their settlement: while
    /// settlements fail or lag (acknowledgements failing while reads succeed), no more work is
    /// taken, so handled-but-unsettled work stays bounded. False when stopping.
    pub(crate) async fn wait_unsettled(&self, stop: &CancellationToken) -> bool {
        let mut settled = self.settled.clone();
        let room = settled
            .wait_for(|n| self.sent.load(Ordering::SeqCst).saturating_sub(*n) < MAX_UNSETTLED);
        tokio::select! {
            // An error means the settler is gone: nothing to wait for.
            _ = room => true,
            () = stop.cancelled() => false,
        }
    }

    /// Dispatches one entry from the pending list (a reclaim or a resume) with `slot`. An entry
    /// that was pending on consumers that died at least twice ([`SUSPECT_DELIVERIES`]) runs
    /// alone in the runtime (see `isolate`): if it is what kills processes, it takes nothing
    /// else down with it, so the messages that ran beside it the first times are not pushed to
    /// the attempt limit with it. Returns false when stopping (the entry stays pending).
    pub(crate) async fn dispatch_pending(
        &self,
        delivery: Delivery,
        slot: OwnedSemaphorePermit,
        stop: &CancellationToken,
    ) -> bool {
        self.held.insert(delivery.id);
        let count = delivery.delivery_count;
        // Past the attempt limit the handler does not run at all (dead letter `crashed`).
        if delivery.source != Source::Pending
            || count < SUSPECT_DELIVERIES
            || count > max_attempts(&self.plan.reg.config)
        {
            self.dispatch(delivery, slot);
            return true;
        }
        // The slot is given back: the isolation waits for every slot.
        drop(slot);
        let Some(alone) = self.isolation.alone(stop).await else {
            return false;
        };
        self.dispatch_alone(delivery, alone);
        true
    }

    /// Runs a pending entry holding every slot of the runtime.
    pub(crate) fn dispatch_alone(&self, delivery: Delivery, alone: super::isolate::Alone) {
        self.held.insert(delivery.id);
        tracing::info!(
            group = %self.plan.group,
            message_id = %delivery.id,
            deliveries = delivery.delivery_count,
            "running alone in the runtime an entry whose consumers died while it was pending"
        );
        self.dispatch(delivery, alone);
    }

    fn emit(&self, outcome: Outcome) {
        self.sent.fetch_add(1, Ordering::SeqCst);
        // The receiver lives until every dispatcher is dropped.
        let _ = self.outcomes.send(outcome);
    }

    fn send(&self, id: MessageId, attempt: u32, source: Source, result: Result<(), Failure>) {
        self.emit(Outcome {
            id,
            attempt,
            source,
            result,
            skipped: false,
            trace: None,
        });
    }

    /// Dispatches deliveries, each with one of `permits`; unused permits are released.
    pub(crate) fn dispatch_all(
        &self,
        deliveries: Vec<Delivery>,
        mut permits: OwnedSemaphorePermit,
    ) {
        for delivery in deliveries {
            match permits.split(1) {
                Some(slot) => self.dispatch(delivery, slot),
                None => {
                    // More entries than slots cannot happen (COUNT = permits); if it does, the
                    // extra entry stays pending and is reclaimed, never lost.
                    tracing::error!(message_id = %delivery.id, "entry read without a free slot; left pending");
                }
            }
        }
    }

    /// Starts a task sending the queued delivery-count changes (see `count`).
    pub(crate) fn flush_counts<B: Broker>(&self, broker: &B) {
        self.tracker.spawn(self.supervisor.guard(
            "counts",
            self.counts.clone().flush(broker.clone(), self.plan.clone()),
        ));
    }

    /// Runs one delivery in a task of its own holding `slot` (one slot, or every slot).
    pub(crate) fn dispatch<S: Send + 'static>(&self, delivery: Delivery, slot: S) {
        if let Some(ready) = self.prepare(delivery) {
            let runner = self.runner();
            // With priority lanes, the call waits for its turn (see `gate`). The entry is
            // claimed or leased meanwhile: past `claim_after − timeout` of waiting it could be
            // taken by another consumer while it runs here, so it is not run (left for a later
            // reclaim or lease, as if this consumer had died; the weighting makes such a wait
            // take about 15 calls of `timeout` each — see docs/DESIGN.md § Priority lanes).
            let gate = self.gate.is_active().then(|| {
                let config = &self.plan.reg.config;
                (
                    self.gate.clone(),
                    self.plan.lane,
                    config.claim_after.saturating_sub(config.timeout),
                    self.held.clone(),
                )
            });
            self.tracker
                .spawn(self.supervisor.guard("call", async move {
                    let _slot = slot;
                    let _turn = match gate {
                        Some((gate, lane, limit, held)) => {
                            let since = std::time::Instant::now();
                            let turn = tokio::select! {
                                t = gate.turn(lane) => t,
                                // Past the shutdown timeout: the entry stays where it is.
                                () = runner.abort.cancelled() => return,
                            };
                            if since.elapsed() >= limit {
                                tracing::warn!(message_id = %ready.id(), lane = %lane, waited = ?since.elapsed(), "a reclaimed or retried entry waited too long for its priority turn to run safely; left for a later delivery");
                                held.release(&[ready.id()]);
                                return;
                            }
                            Some(turn)
                        }
                        None => None,
                    };
                    runner.run(ready, || {}).await;
                }));
        }
    }

    /// What a task needs to run calls: cloning the whole dispatcher per call was a dozen
    /// reference counts, shared by every call of the handler, bouncing between cores.
    pub(crate) fn runner(&self) -> Runner {
        Runner {
            outcomes: self.outcomes.clone(),
            sent: self.sent.clone(),
            abort: self.abort.clone(),
            duration: self.duration.clone(),
            handler_ns: self.handler_ns.clone(),
            status: self.status.clone(),
        }
    }

    /// Decodes a delivery into a handler call. Deliveries that need no call (another type's
    /// entry, an entry deleted meanwhile, one past its attempts, one that cannot be decoded) get
    /// their outcome here and `None` is returned.
    pub(crate) fn prepare(&self, delivery: Delivery) -> Option<Ready> {
        let Admitted {
            id,
            attempt,
            source,
            envelope,
            ctx,
            limit,
        } = self.admit(delivery)?;
        let plan = &self.plan;
        // One span per attempt; `traceparent` travels in the headers for cross-service traces.
        #[cfg(feature = "otel")]
        let span = crate::otel::handle_span(
            plan.reg.stream,
            &plan.group,
            plan.reg.event.name,
            id,
            attempt,
            &envelope.meta,
            match &source {
                Source::Scheduled { link, .. } => link.as_deref(),
                Source::Pending => None,
            },
        );
        #[cfg(not(feature = "otel"))]
        let span = tracing::info_span!(
            "handle",
            stream = plan.reg.stream,
            group = %plan.group,
            event_type = plan.reg.event.name,
            message_id = %id,
            attempt,
            traceparent = envelope.meta.headers.get("traceparent").map(String::as_str),
        );
        #[cfg(not(feature = "otel"))]
        let _ = limit;
        let call = tracing::Instrument::instrument((plan.reg.call)(envelope, ctx), span);
        Some(Ready {
            id,
            attempt,
            source,
            call,
            timeout: plan.reg.config.timeout,
            #[cfg(feature = "otel")]
            last: attempt >= limit,
        })
    }

    /// Admitted deliveries of a batch handler as one call (see `handler::batch`), in one span.
    /// `None` when there are none.
    pub(crate) fn prepare_batch(&self, admitted: Vec<Admitted>) -> Option<ReadyBatch> {
        let spec = self.plan.reg.batch?;
        let first = admitted.first()?;
        let plan = &self.plan;
        // One span per batch call, not per message: the messages are in its fields.
        let span = tracing::info_span!(
            "handle_batch",
            stream = plan.reg.stream,
            group = %plan.group,
            event_type = plan.reg.event.name,
            messages = admitted.len(),
            first_message_id = %first.id,
        );
        let mut entries = Vec::with_capacity(admitted.len());
        let mut calls = Vec::with_capacity(admitted.len());
        for a in admitted {
            entries.push((a.id, a.attempt, a.source));
            calls.push((a.envelope, a.ctx));
        }
        let call = tracing::Instrument::instrument((spec.call)(calls), span);
        Some(ReadyBatch {
            entries,
            call,
            timeout: plan.reg.config.timeout,
        })
    }

    /// Checks a delivery and decodes its envelope (not the payload). Deliveries that need no
    /// call get their outcome here and `None` is returned (see [`Dispatcher::prepare`]).
    pub(crate) fn admit(&self, delivery: Delivery) -> Option<Admitted> {
        let plan = &self.plan;
        let Delivery {
            id,
            fields,
            delivery_count,
            source,
        } = delivery;
        let attempt = delivery_count.max(1);
        let Some(fields) = fields else {
            // Deleted from the stream while pending or scheduled: nothing left to handle.
            tracing::warn!(group = %plan.group, message_id = %id, "entry was deleted from the stream before it was handled");
            let result = match source {
                Source::Pending => Ok(()),
                Source::Scheduled { .. } => Err(Failure::Decode(DecodeError::MissingField {
                    field: crate::envelope::field::DATA,
                })),
            };
            self.send(id, attempt, source, result);
            return None;
        };
        // The type first, before anything else is parsed: another service's event on the same
        // stream is not ours to handle, whatever the rest of its envelope holds (a newer header
        // layout, say), so it can never be poison for this group. An entry whose type cannot
        // even be found is decoded below and fails with the reason.
        let borrowed = fields.iter().map(|(k, v)| (k.as_slice(), v.as_slice()));
        if event_type_of(borrowed).is_some_and(|t| t != plan.reg.event.name.as_bytes()) {
            self.emit(Outcome {
                id,
                attempt,
                source,
                result: Ok(()),
                skipped: true,
                trace: None,
            });
            return None;
        }
        // An attempt number above the limit means earlier attempts died with their process.
        let limit = max_attempts(&plan.reg.config);
        if attempt > limit {
            self.send(id, limit, source, Err(Failure::Crashed(attempt - 1)));
            return None;
        }
        let mut envelope = match Envelope::from_owned_fields(fields) {
            Ok(env) => env,
            Err(e) => {
                self.send(id, attempt, source, Err(Failure::Decode(e)));
                return None;
            }
        };
        let ctx = Context::new(&self.parts, id, &mut envelope, attempt, delivery_count);
        Some(Admitted {
            id,
            attempt,
            source,
            envelope,
            ctx,
            limit,
        })
    }
}

/// A delivery checked and ready to be decoded by its handler (see [`Dispatcher::admit`]).
pub(crate) struct Admitted {
    pub(crate) id: MessageId,
    attempt: u32,
    source: Source,
    envelope: Envelope,
    ctx: Context,
    /// The last attempt the handler allows.
    limit: u32,
}

/// Deliveries of a batch handler, ready to run as one call.
pub(crate) struct ReadyBatch {
    entries: Vec<(MessageId, u32, Source)>,
    call: tracing::instrument::Instrumented<crate::handler::BatchFuture>,
    timeout: std::time::Duration,
}

impl ReadyBatch {
    /// The entry ids, in order.
    pub(crate) fn ids(&self) -> impl Iterator<Item = MessageId> + '_ {
        self.entries.iter().map(|(id, _, _)| *id)
    }
}

/// A decoded delivery, ready to run.
pub(crate) struct Ready {
    id: MessageId,
    attempt: u32,
    source: Source,
    call: tracing::instrument::Instrumented<HandlerFuture>,
    timeout: std::time::Duration,
    /// The last attempt the handler allows.
    #[cfg(feature = "otel")]
    last: bool,
}

impl Ready {
    /// The entry id.
    pub(crate) fn id(&self) -> MessageId {
        self.id
    }
}

impl fmt::Debug for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ready")
            .field("id", &self.id)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

/// Runs handler calls and reports their outcomes (see [`Dispatcher::runner`]).
#[derive(Debug, Clone)]
pub(crate) struct Runner {
    outcomes: mpsc::UnboundedSender<Outcome>,
    sent: Arc<AtomicU64>,
    abort: CancellationToken,
    duration: metrics::Histogram,
    handler_ns: Arc<AtomicU64>,
    status: Arc<crate::health::ConsumerStatus>,
}

impl Runner {
    /// Runs the call under its timeout with panics caught, and sends its outcome; `waits` is
    /// called once if the call does not finish when first polled. Returns false when the
    /// shutdown timeout cut it short (no outcome: the entry stays pending).
    pub(crate) async fn run(&self, ready: Ready, waits: impl FnOnce()) -> bool {
        let Ready {
            id,
            attempt,
            source,
            call,
            timeout,
            #[cfg(feature = "otel")]
            last,
        } = ready;
        #[cfg(feature = "otel")]
        let span = call.span().clone();
        let started = std::time::Instant::now();
        let mut guarded = std::pin::pin!(tokio::time::timeout(
            timeout,
            AssertUnwindSafe(call).catch_unwind()
        ));
        // One poll first, to learn whether the call has to wait (the timeout and every tokio
        // resource it awaits register the waker of each poll, so the later polls are woken).
        let first = futures_util::FutureExt::now_or_never(&mut guarded);
        if first.is_none() {
            waits();
        }
        let guarded = async {
            match first {
                Some(r) => r,
                None => guarded.await,
            }
        };
        let result = tokio::select! {
            // The call first: polling the cancellation first would register a waiter on the
            // shared token (a lock) for every message.
            biased;
            r = guarded => match r {
                Ok(Ok(Ok(()))) => Ok(()),
                Ok(Ok(Err(CallError::Decode(e)))) => Err(Failure::Decode(e)),
                Ok(Ok(Err(CallError::Handler(e)))) => Err(Failure::Handler(e)),
                Ok(Err(payload)) => Err(Failure::Panic(panic_message(&*payload))),
                Err(_) => Err(Failure::Timeout),
            },
            // Past the shutdown timeout: stop without an outcome, the entry stays pending.
            () = self.abort.cancelled() => return false,
        };
        #[cfg(feature = "otel")]
        let trace = match &result {
            Err(f) => {
                crate::otel::failed(&span, f.reason(), &f.to_string(), last || !f.retryable());
                crate::otel::traceparent(&span).map(Arc::from)
            }
            Ok(()) => None,
        };
        #[cfg(not(feature = "otel"))]
        let trace = None;
        self.finished(started, 1);
        // As `emit`: counted, then sent (the receiver lives until every dispatcher is dropped).
        self.sent.fetch_add(1, Ordering::SeqCst);
        let _ = self.outcomes.send(Outcome {
            id,
            attempt,
            source,
            result,
            skipped: false,
            trace,
        });
        true
    }

    /// Records a call that started at `started` and handled `messages` messages: its duration
    /// (one observation per call), progress, and the moving average of the time per message.
    fn finished(&self, started: std::time::Instant, messages: usize) {
        let took = started.elapsed();
        self.status.progress_at(started + took);
        self.duration.record(took.as_secs_f64());
        self.status.counts.took(took);
        // An average of recent times per message (1/8 weight to the newest), for the
        // read-ahead bound.
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX) / messages.max(1) as u64;
        let old = self.handler_ns.load(Ordering::Relaxed);
        let avg = if old == 0 { ns } else { old - old / 8 + ns / 8 };
        self.handler_ns.store(avg.max(1), Ordering::Relaxed);
    }

    /// Runs a batch call under the handler's timeout with panics caught, and sends one outcome
    /// per message: the handler's result for each, or — when the call panicked or timed out —
    /// that failure for every message (each then follows its own attempt count). `waits` as in
    /// [`Runner::run`]. Returns false when the shutdown timeout cut it short (no outcome: the
    /// entries stay pending).
    pub(crate) async fn run_batch(&self, ready: ReadyBatch, waits: impl FnOnce()) -> bool {
        let ReadyBatch {
            entries,
            call,
            timeout,
        } = ready;
        let started = std::time::Instant::now();
        let mut guarded = std::pin::pin!(tokio::time::timeout(
            timeout,
            AssertUnwindSafe(call).catch_unwind()
        ));
        let first = futures_util::FutureExt::now_or_never(&mut guarded);
        if first.is_none() {
            waits();
        }
        let guarded = async {
            match first {
                Some(r) => r,
                None => guarded.await,
            }
        };
        let n = entries.len();
        let results: Vec<Result<(), Failure>> = tokio::select! {
            biased;
            r = guarded => match r {
                Ok(Ok(results)) if results.len() == n => results
                    .into_iter()
                    .map(|r| match r {
                        Ok(()) => Ok(()),
                        Err(CallError::Decode(e)) => Err(Failure::Decode(e)),
                        Err(CallError::Handler(e)) => Err(Failure::Handler(e)),
                    })
                    .collect(),
                Ok(Ok(results)) => {
                    // The entry point returns one result per entry; anything else is a bug.
                    let msg = format!("batch call returned {} results for {n} messages", results.len());
                    (0..n).map(|_| Err(Failure::Panic(msg.clone()))).collect()
                }
                Ok(Err(payload)) => {
                    let msg = panic_message(&*payload);
                    (0..n).map(|_| Err(Failure::Panic(msg.clone()))).collect()
                }
                Err(_) => (0..n).map(|_| Err(Failure::Timeout)).collect(),
            },
            () = self.abort.cancelled() => return false,
        };
        self.finished(started, n);
        // Counted, then sent together: the settler takes them in one go and acknowledges the
        // successes with one `XACK`.
        self.sent.fetch_add(n as u64, Ordering::SeqCst);
        for ((id, attempt, source), result) in entries.into_iter().zip(results) {
            let _ = self.outcomes.send(Outcome {
                id,
                attempt,
                source,
                result,
                skipped: false,
                trace: None,
            });
        }
        true
    }

    /// True once the shutdown timeout has passed.
    pub(crate) fn aborted(&self) -> bool {
        self.abort.is_cancelled()
    }
}
