//! Tasks another crate asks the runtime to run beside its consumers (the outbox relay of
//! `opsc-events-postgres`): started by `Runtime::run`, stopped by its shutdown, supervised like
//! the runtime's own tasks.

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::publisher::Publisher;

/// What a background task returns when it fails: the reason, for
/// [`Error::TaskFailed`](crate::Error::TaskFailed).
pub type BackgroundResult = std::result::Result<(), String>;

/// `Sync` too, so that a `Runtime` holding one can be shared (the console holds one behind an
/// `Arc` across awaits).
type Start = Box<
    dyn FnOnce(Publisher, CancellationToken) -> BoxFuture<'static, BackgroundResult> + Send + Sync,
>;

/// A task the runtime runs from [`Runtime::run`](crate::Runtime::run) until its shutdown: it
/// gets the runtime's publisher and a token cancelled at the shutdown, and must return `Ok`
/// only once that token is cancelled (ending earlier, failing or panicking stops the runtime
/// with [`Error::TaskFailed`](crate::Error::TaskFailed), as a dying consumer does).
#[doc(hidden)]
pub struct BackgroundTask {
    pub(crate) name: &'static str,
    pub(crate) start: Start,
}

impl BackgroundTask {
    /// A task named `name` (in logs and errors) started by `start`.
    pub fn new<F>(name: &'static str, start: F) -> Self
    where
        F: FnOnce(Publisher, CancellationToken) -> BoxFuture<'static, BackgroundResult>
            + Send
            + Sync
            + 'static,
    {
        BackgroundTask {
            name,
            start: Box::new(start),
        }
    }
}

impl std::fmt::Debug for BackgroundTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackgroundTask")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
