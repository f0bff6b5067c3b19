//! The Redis transport: a multiplexed, self-reconnecting connection for commands that do not
//! block (publishes, acks, claims). Blocking reads get connections of their own.

mod append;
mod consume;
mod delayed;
mod failover;
mod reply;
mod retry;
mod scripts;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, RedisError};

use crate::error::{ConfigProblem, Error, Result, redact_url};

pub(crate) use failover::SentinelSettings;
use failover::{Conn, client_with_tls};

/// Connection settings.
#[derive(Debug, Clone)]
pub(crate) struct RedisSettings {
    pub(crate) url: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
    /// Certificates for `rediss://` beyond the system's roots.
    pub(crate) tls: Option<TlsMaterial>,
    /// A password that is not in the URL.
    pub(crate) password: Option<Secret>,
    /// Find the master through these sentinels (`url` is then the first sentinel's).
    pub(crate) sentinel: Option<SentinelSettings>,
}

/// PEM bytes of a CA and of a client certificate and key.
#[derive(Clone, Default)]
pub(crate) struct TlsMaterial {
    pub(crate) ca: Option<Vec<u8>>,
    pub(crate) client: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("ca", &self.ca.is_some())
            .field("client", &self.client.is_some())
            .finish()
    }
}

/// A password: shown as `***` by `Debug`.
#[derive(Clone)]
pub(crate) struct Secret(pub(crate) String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[derive(Clone)]
pub(crate) struct RedisTransport {
    /// The connection manager of the (current) master; it holds the client for dedicated
    /// connections too.
    conn: Conn,
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
        let invalid = |e: RedisError| ConfigProblem::InvalidUrl {
            url: shown.clone(),
            reason: e.to_string(),
        };
        let client = if s.sentinel.is_some() {
            None
        } else {
            let mut info = s.url.as_str().into_connection_info().map_err(invalid)?;
            if let Some(Secret(password)) = &s.password {
                let settings = info.redis_settings().clone().set_password(password);
                info = info.set_redis_settings(settings);
            }
            Some(
                client_with_tls(info, s).map_err(|e| ConfigProblem::InvalidUrl {
                    url: shown.clone(),
                    reason: e.to_string(),
                })?,
            )
        };
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
            let mut conn = match client {
                Some(client) => Conn::fixed(
                    ConnectionManager::new_with_config(client.clone(), config)
                        .await
                        .map_err(|e| e.to_string())?,
                    client,
                ),
                None => Conn::sentinel(s, config).await?,
            };
            redis::cmd("PING")
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(conn)
        };
        match tokio::time::timeout(s.connect_timeout, connect).await {
            Ok(Ok(mut conn)) => {
                check_server(&mut conn, &shown, s.connect_timeout).await?;
                Ok(RedisTransport {
                    conn,
                    response_timeout: s.response_timeout,
                    appends: Arc::default(),
                })
            }
            Ok(Err(e)) => Err(unreachable(e)),
            Err(_) => Err(unreachable("timed out".to_owned())),
        }
    }

    pub(crate) fn error(&self, command: &'static str, key: &str, source: RedisError) -> Error {
        redis_error(self.response_timeout, command, key, source)
    }

    /// `WAIT replicas timeout_ms` on the shared connection every publish goes through: it
    /// returns once that many replicas acknowledged every write sent on the connection before
    /// it (so the caller's publish among them), or when the timeout passes.
    pub(crate) async fn wait_replicas(&self, replicas: u32, timeout: Duration) -> Result<u32> {
        let mut conn = self.conn.clone();
        let ms = u64::try_from(timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let wait = async {
            redis::cmd("WAIT")
                .arg(replicas)
                .arg(ms)
                .query_async::<u32>(&mut conn)
                .await
                .map_err(|e| self.error("WAIT", "", e))
        };
        // WAIT itself is bounded by `timeout`; the response timeout comes on top.
        match tokio::time::timeout(timeout + self.response_timeout, wait).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                command: "WAIT",
                key: String::new(),
                timeout: timeout + self.response_timeout,
            }),
        }
    }

    /// A connection of its own (same server, TLS settings and password), for administration.
    pub(crate) async fn admin_connection(&self) -> Result<redis::aio::MultiplexedConnection> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.response_timeout))
            .set_response_timeout(Some(self.response_timeout));
        self.conn
            .master_client()
            .await
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| self.error("CONNECT", "", e))
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

/// The oldest Redis the runtime works with: `XAUTOCLAIM`, `XTRIM MINID … LIMIT` and exclusive
/// ranges in `XPENDING` came with 6.2.
pub(crate) const MIN_VERSION: (u32, u32, u32) = (6, 2, 0);

/// Every command the runtime sends (scripts call more, all present since 2.6).
const REQUIRED: &[&str] = &[
    "XADD",
    "XREADGROUP",
    "XACK",
    "XCLAIM",
    "XAUTOCLAIM",
    "XPENDING",
    "XTRIM",
    "XINFO",
    "XGROUP",
    "XRANGE",
    "XREVRANGE",
    "XDEL",
    "XLEN",
    "EVALSHA",
    "EVAL",
    "SCRIPT",
];

/// `major.minor.patch` of a `redis_version` value.
pub(crate) fn parse_version(v: &str) -> Option<(u32, u32, u32)> {
    let mut parts = v.trim().split('.').map(|p| p.parse::<u32>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

/// Checks, once at connect, that the server is recent enough and has every command the runtime
/// uses (a command renamed away or disabled would otherwise fail later, in the middle of a
/// settlement). A server that does not let this client run `INFO` or `COMMAND` (an ACL) is not
/// refused for it: the check is skipped, logged.
async fn check_server(
    conn: &mut Conn,
    url: &str,
    within: Duration,
) -> std::result::Result<(), ConfigProblem> {
    let unsupported = |version: Option<String>, reason: String| ConfigProblem::UnsupportedServer {
        url: url.to_owned(),
        version,
        reason,
    };
    let info = tokio::time::timeout(
        within,
        redis::cmd("INFO").arg("server").query_async::<String>(conn),
    )
    .await;
    let version = match info {
        Ok(Ok(text)) => text
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .map(|v| v.trim().to_owned()),
        Ok(Err(e)) => {
            tracing::info!(url, error = %e, "cannot read the server version (INFO); not checked");
            None
        }
        Err(_) => None,
    };
    if let Some(v) = &version {
        match parse_version(v) {
            Some(found) if found < MIN_VERSION => {
                let (a, b, c) = MIN_VERSION;
                return Err(unsupported(
                    version.clone(),
                    format!(
                        "redis {v} is too old: {a}.{b}.{c} or later is needed (XAUTOCLAIM, XTRIM MINID … LIMIT)"
                    ),
                ));
            }
            Some(_) => {}
            None => tracing::info!(url, version = %v, "unrecognised server version; not checked"),
        }
    }
    let mut cmd = redis::cmd("COMMAND");
    cmd.arg("INFO");
    for c in REQUIRED {
        cmd.arg(*c);
    }
    match tokio::time::timeout(within, cmd.query_async::<redis::Value>(conn)).await {
        Ok(Ok(redis::Value::Array(found))) if found.len() == REQUIRED.len() => {
            let missing: Vec<&str> = REQUIRED
                .iter()
                .zip(&found)
                .filter(|(_, v)| matches!(v, redis::Value::Nil))
                .map(|(c, _)| *c)
                .collect();
            if !missing.is_empty() {
                return Err(unsupported(
                    version,
                    format!(
                        "the server does not offer {} (renamed or disabled?)",
                        missing.join(", ")
                    ),
                ));
            }
        }
        Ok(Ok(other)) => {
            tracing::info!(url, reply = ?other, "unexpected reply to COMMAND INFO; commands not checked");
        }
        Ok(Err(e)) => {
            tracing::info!(url, error = %e, "cannot list the server's commands (COMMAND INFO); not checked");
        }
        Err(_) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_compare() {
        assert_eq!(parse_version("7.2.4"), Some((7, 2, 4)));
        assert_eq!(parse_version("6.2"), Some((6, 2, 0)));
        assert_eq!(parse_version("x"), None);
        assert!(parse_version("6.0.16").is_some_and(|v| v < MIN_VERSION));
        assert!(parse_version("6.2.0").is_some_and(|v| v >= MIN_VERSION));
        assert!(parse_version("255.255.255").is_some_and(|v| v >= MIN_VERSION));
    }
}
