//! Supervision of the tasks one handler's consumer spawns: every task runs with its panics
//! caught, and a task that panics — or that returns while the consumer is meant to run — fails
//! the consumer. The consumer then stops (draining like a shutdown) and `run()` ends with
//! [`Error::ConsumerFailed`] naming the handler and the task, instead of a consumer that keeps
//! reading while nothing settles (or the reverse).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use tokio_util::sync::CancellationToken;

use super::dispatch::panic_message;
use crate::error::Error;

/// Why a consumer failed: the first task that died.
#[derive(Debug, Clone)]
pub(crate) struct TaskFailure {
    pub(crate) task: &'static str,
    pub(crate) reason: String,
}

/// Shared by every task of one consumer.
#[derive(Debug, Clone)]
pub(crate) struct Supervisor {
    /// Cancelled when a task fails.
    failed: CancellationToken,
    first: Arc<Mutex<Option<TaskFailure>>>,
    /// The consumer's own stop (a task ending after it is cancelled is not a failure).
    stop: CancellationToken,
    group: Arc<str>,
    /// The consumer's span (stream, group, handler): every task runs in it, so every log line
    /// of the consumer names them.
    span: tracing::Span,
}

impl Supervisor {
    pub(crate) fn new(stop: CancellationToken, group: Arc<str>, span: tracing::Span) -> Self {
        Supervisor {
            failed: CancellationToken::new(),
            first: Arc::default(),
            stop,
            group,
            span,
        }
    }

    /// Records `task`'s failure (the first one is kept) and wakes the consumer.
    pub(crate) fn fail(&self, task: &'static str, reason: String) {
        tracing::error!(group = %self.group, task, reason = %reason, "a consumer task died; the consumer stops");
        metrics::counter!("opsc_events_task_failures_total", "group" => self.group.to_string(), "task" => task)
            .increment(1);
        self.first
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(TaskFailure { task, reason });
        self.failed.cancel();
    }

    /// Completes when a task failed.
    pub(crate) async fn failed(&self) {
        self.failed.cancelled().await;
    }

    /// The first failure, if any.
    pub(crate) fn failure(&self) -> Option<TaskFailure> {
        self.first.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `fut` with its panic caught and reported as `task`'s failure. For tasks that may end at
    /// any time (lanes, flushers, handler calls).
    pub(crate) fn guard<F>(&self, task: &'static str, fut: F) -> impl Future<Output = ()> + use<F>
    where
        F: Future<Output = ()>,
    {
        let this = self.clone();
        let span = self.span.clone();
        tracing::Instrument::instrument(
            async move {
                if let Err(payload) = AssertUnwindSafe(fut).catch_unwind().await {
                    this.fail(task, format!("panicked: {}", panic_message(&*payload)));
                }
            },
            span,
        )
    }

    /// `fut` guarded as [`Supervisor::guard`], for a task meant to run until the consumer stops:
    /// returning before that is a failure too.
    pub(crate) fn until_stop<F>(
        &self,
        task: &'static str,
        fut: F,
    ) -> impl Future<Output = ()> + use<F>
    where
        F: Future<Output = ()>,
    {
        let this = self.clone();
        let span = self.span.clone();
        tracing::Instrument::instrument(
            async move {
                match AssertUnwindSafe(fut).catch_unwind().await {
                    Err(payload) => {
                        this.fail(task, format!("panicked: {}", panic_message(&*payload)));
                    }
                    Ok(()) if !this.stop.is_cancelled() && !this.failed.is_cancelled() => {
                        this.fail(task, "ended while the consumer was running".to_owned());
                    }
                    Ok(()) => {}
                }
            },
            span,
        )
    }
}

impl TaskFailure {
    /// The error `run()` ends with.
    pub(crate) fn into_error(self, handler: String, group: &str) -> Error {
        Error::ConsumerFailed {
            handler,
            group: group.to_owned(),
            task: self.task,
            reason: self.reason,
        }
    }
}
