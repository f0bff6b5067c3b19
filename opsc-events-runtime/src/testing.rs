//! Unit-testing handlers without Redis: a runtime on its own embedded broker, a way to wait
//! until everything published was handled, and what happened to each delivery.
//!
//! See the `opsc_events::testing` module for an example.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::dead_letter::{DeadLetter, DeadLetterFilter, DeadLetters};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::message_id::MessageId;
use crate::observe::{Observation, Outcome};
use crate::publisher::Publisher;
use crate::runtime::{Runtime, RuntimeBuilder};

/// How long [`TestRuntime::wait_idle`] waits.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// A runtime on an embedded broker of its own, running its handlers in the background.
#[derive(Debug)]
pub struct TestRuntime {
    publisher: Publisher,
    dead_letters: DeadLetters,
    probe: Runtime,
    streams: Vec<&'static str>,
    observed: Arc<Mutex<Vec<Observation>>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<()>>>,
}

impl TestRuntime {
    /// A builder for a test runtime: service `test`, a fresh embedded broker. Add `.state(..)`
    /// and `.only(..)` as needed (by default every linked handler runs).
    pub fn builder() -> RuntimeBuilder {
        Runtime::builder().service("test").memory()
    }

    /// Builds `builder` and starts its handlers.
    pub async fn start(builder: RuntimeBuilder) -> Result<TestRuntime> {
        let observed: Arc<Mutex<Vec<Observation>>> = Arc::default();
        let sink = observed.clone();
        let rt = builder
            .observer(move |o| {
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(o.clone())
            })
            .shutdown_timeout(Duration::from_secs(5))
            .build()
            .await?;
        let probe = rt.without_handlers();
        let (stop, rx) = oneshot::channel::<()>();
        let publisher = rt.publisher();
        let dead_letters = rt.dead_letters();
        let streams = rt.handler_streams();
        let task = tokio::spawn(rt.run_until(async move {
            let _ = rx.await;
        }));
        Ok(TestRuntime {
            publisher,
            dead_letters,
            probe,
            streams,
            observed,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The runtime's publisher.
    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    /// Publishes an event.
    pub async fn publish<E: Event>(&self, event: &E) -> Result<MessageId> {
        self.publisher.publish(event).await
    }

    /// Waits until every handler's stream has nothing pending, nothing scheduled for retry,
    /// nothing undelivered and no delayed event waiting to be moved in, for at most
    /// [`IDLE_TIMEOUT`] of real time.
    ///
    /// Backoffs, retry schedules, handler timeouts and delayed events run on tokio's clock:
    /// under `tokio::time::pause()` (`#[tokio::test(start_paused = true)]`) a 30 s backoff or a
    /// 10 minute delay passes in no real time, so the wait covers them; with the real clock a
    /// delay longer than the bound ends the wait with a timeout.
    pub async fn wait_idle(&self) -> Result<()> {
        self.wait_idle_for(IDLE_TIMEOUT).await
    }

    /// [`TestRuntime::wait_idle`] with another bound. Retries with a backoff count as work.
    pub async fn wait_idle_for(&self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let mut idle = true;
            for stream in &self.streams {
                idle &= self.probe.stream_info(stream).await?.is_idle();
                if idle {
                    let one = crate::delayed::DelayedFilter::new().limit(1);
                    idle &= self.probe.delayed(stream, &one).await?.is_empty();
                }
            }
            if idle {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    command: "wait_idle",
                    key: self.streams.join(", "),
                    timeout: limit,
                });
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Every observation so far: what became of each delivery, in order.
    pub fn outcomes(&self) -> Vec<Observation> {
        self.observed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The entry ids `handler` (the fn name) handled successfully.
    pub fn handled(&self, handler: &str) -> Vec<MessageId> {
        self.outcomes()
            .into_iter()
            .filter(|o| o.handler == handler && o.outcome == Outcome::Handled)
            .map(|o| o.message_id)
            .collect()
    }

    /// Every dead letter of `stream`, oldest first.
    pub async fn dead_letters(&self, stream: &str) -> Result<Vec<DeadLetter>> {
        self.dead_letters
            .list(&DeadLetterFilter::stream(stream).limit(usize::MAX))
            .await
    }

    /// Stops the runtime gracefully.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => match task.await {
                Ok(result) => result,
                // The runtime's task panicked: let the test see the panic.
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => Ok(()),
            },
            None => Ok(()),
        }
    }
}
