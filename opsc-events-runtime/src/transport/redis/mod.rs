//! The Redis transport: a multiplexed, self-reconnecting connection for commands that do not
//! block (publishes, acks, claims). Blocking reads get connections of their own.

mod consume;
mod reply;
mod retry;
mod scripts;

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, Pipeline, RedisError};

use crate::envelope::EncodedEvent;
use crate::error::{ConfigProblem, Error, Result, redact_url};
use crate::message_id::MessageId;

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
    response_timeout: Duration,
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
            }),
            Ok(Err(e)) => Err(unreachable(e.to_string())),
            Err(_) => Err(unreachable("timed out".to_owned())),
        }
    }

    pub(crate) fn error(&self, command: &'static str, key: &str, source: RedisError) -> Error {
        if source.is_timeout() {
            Error::Timeout {
                command,
                key: key.to_owned(),
                timeout: self.response_timeout,
            }
        } else {
            Error::Redis {
                command,
                key: key.to_owned(),
                source,
            }
        }
    }

    fn parse_id(key: &str, raw: &[u8]) -> Result<MessageId> {
        MessageId::from_bytes(raw).map_err(|_| Error::UnexpectedReply {
            command: "XADD",
            key: key.to_owned(),
            reply: String::from_utf8_lossy(&raw[..raw.len().min(64)]).into_owned(),
        })
    }

    fn xadd(key: &str, entry: &EncodedEvent) -> Cmd {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(key).arg("*");
        for (name, value) in entry.fields() {
            cmd.arg(name).arg(value);
        }
        cmd
    }

    pub(crate) async fn append_raw(
        &self,
        key: &str,
        fields: &[(&str, &[u8])],
    ) -> Result<MessageId> {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(key).arg("*");
        for (name, value) in fields {
            cmd.arg(*name).arg(*value);
        }
        let mut conn = self.conn.clone();
        let raw: Vec<u8> = cmd
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error("XADD", key, e))?;
        Self::parse_id(key, &raw)
    }

    pub(crate) async fn append_one(&self, key: &str, entry: &EncodedEvent) -> Result<MessageId> {
        let mut conn = self.conn.clone();
        let raw: Vec<u8> = Self::xadd(key, entry)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error("XADD", key, e))?;
        Self::parse_id(key, &raw)
    }

    pub(crate) async fn append_many(
        &self,
        key: &str,
        entries: &[EncodedEvent],
    ) -> Result<Vec<MessageId>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = Pipeline::with_capacity(entries.len());
        for entry in entries {
            pipe.add_command(Self::xadd(key, entry));
        }
        let mut conn = self.conn.clone();
        let raw: Vec<Vec<u8>> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error("XADD", key, e))?;
        if raw.len() != entries.len() {
            return Err(Error::UnexpectedReply {
                command: "XADD",
                key: key.to_owned(),
                reply: format!("{} ids for {} entries", raw.len(), entries.len()),
            });
        }
        raw.iter().map(|r| Self::parse_id(key, r)).collect()
    }
}
