//! `RuntimeBuilder::outbox(pool)`: the runtime starts a relay.

use opsc_events_runtime::RuntimeBuilder;
use opsc_events_runtime::runtime::BackgroundTask;
use sqlx::PgPool;

use crate::relay::{Relay, RelayConfig};

/// Adds an outbox relay to a runtime.
pub trait RuntimeBuilderExt {
    /// Runs a relay of the outbox in `pool` while the runtime runs ([`Runtime::run`]), publishing
    /// through the runtime's publisher; several processes may each run one.
    ///
    /// [`Runtime::run`]: opsc_events_runtime::Runtime::run
    ///
    /// ```no_run
    /// use opsc_events::prelude::*;
    /// use opsc_events_postgres::RuntimeBuilderExt;
    ///
    /// # async fn demo(pool: sqlx::PgPool) -> opsc_events::Result<()> {
    /// let rt = Runtime::builder()
    ///     .service("inventory")
    ///     .redis("redis://127.0.0.1:6379")
    ///     .outbox(pool)
    ///     .build()
    ///     .await?;
    /// rt.run().await
    /// # }
    /// ```
    fn outbox(self, pool: PgPool) -> Self;

    /// [`outbox`](Self::outbox) with a chosen configuration.
    fn outbox_with(self, pool: PgPool, config: RelayConfig) -> Self;
}

impl RuntimeBuilderExt for RuntimeBuilder {
    fn outbox(self, pool: PgPool) -> Self {
        self.outbox_with(pool, RelayConfig::default())
    }

    fn outbox_with(self, pool: PgPool, config: RelayConfig) -> Self {
        self.background_task(BackgroundTask::new(
            "outbox relay",
            move |publisher, stop| {
                Box::pin(async move {
                    Relay::new(pool, publisher, config).run(stop).await;
                    Ok(())
                })
            },
        ))
    }
}
