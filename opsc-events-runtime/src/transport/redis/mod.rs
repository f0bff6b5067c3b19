//! The Redis transport: a multiplexed, self-reconnecting connection for commands that do not
//! block (publishes, acks, claims). Blocking reads get connections of their own.

mod append;
mod consume;
mod reply;
mod retry;
mod scripts;

use std::sync::Arc;
use std::time::Duration;

use redis::RedisError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::error::{ConfigProblem, Error, Result, redact_url};

/// Connection settings.
#[derive(Debug, Clone)]
pub(crate) struct RedisSettings {
    pub(crate) url: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
}

#[derive(Clone)]
pub(crate) struct RedisTransport {
    client: redis::Client,
    conn: ConnectionManager,
    pub(crate) response_timeout: Duration,
    /// Single appends waiting to be pipelined together (see `append`).
    appends: Arc<append::Appends>,
}

impl std::fmt::Debug for RedisTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTransport").finish_non_exhaustive()
    }
}

impl RedisTransport {
    /// Connects and checks the server answers `PING`, all within the connect timeout.
    pub(crate) async fn connect(s: &RedisSettings) -> std::result::Result<Self, ConfigProblem> {
        let shown = redact_url(&s.url);
        let client =
            redis::Client::open(s.url.as_str()).map_err(|e| ConfigProblem::InvalidUrl {
                url: shown.clone(),
                reason: e.to_string(),
            })?;
        let unreachable = |reason: String| ConfigProblem::Unreachable {
            url: shown.clone(),
            timeout: s.connect_timeout,
            reason,
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(s.connect_timeout))
            .set_response_timeout(Some(s.response_timeout))
            .set_number_of_retries(4)
            .set_max_delay(Duration::from_secs(2));
        let connect = async {
            let mut conn = ConnectionManager::new_with_config(client.clone(), config).await?;
            redis::cmd("PING").query_async::<()>(&mut conn).await?;
            Ok::<_, RedisError>(conn)
        };
        match tokio::time::timeout(s.connect_timeout, connect).await {
            Ok(Ok(conn)) => Ok(RedisTransport {
                client,
                conn,
                response_timeout: s.response_timeout,
                appends: Arc::default(),
            }),
            Ok(Err(e)) => Err(unreachable(e.to_string())),
            Err(_) => Err(unreachable("timed out".to_owned())),
        }
    }

    pub(crate) fn error(&self, command: &'static str, key: &str, source: RedisError) -> Error {
        redis_error(self.response_timeout, command, key, source)
    }

    /// `PING`, within the response timeout.
    pub(crate) async fn ping(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        let ping = async {
            redis::cmd("PING")
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| self.error("PING", "", e))
        };
        self.bounded("PING", "", ping).await
    }

    /// Runs a call (a publish, a health `PING`) within the response timeout, whole. The
    /// connection's own timeout starts when a request is sent; a call that first waits for the
    /// connection manager to reconnect could otherwise take several times the configured bound
    /// (4.9 s with a 1 s timeout, when connections were refused).
    pub(crate) async fn bounded<T>(
        &self,
        command: &'static str,
        key: &str,
        call: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.response_timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                command,
                key: key.to_owned(),
                timeout: self.response_timeout,
            }),
        }
    }
}

/// A client error as the runtime's [`Error`]: a timeout is `Error::Timeout`.
fn redis_error(timeout: Duration, command: &'static str, key: &str, source: RedisError) -> Error {
    if source.is_timeout() {
        Error::Timeout {
            command,
            key: key.to_owned(),
            timeout,
        }
    } else {
        Error::Redis {
            command,
            key: key.to_owned(),
            source,
        }
    }
}
