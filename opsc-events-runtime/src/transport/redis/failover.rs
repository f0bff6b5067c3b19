//! Following a Sentinel failover: the command connection of the transport is a [`Conn`] that,
//! with Sentinel, asks the sentinels for the master's address after a connection error or a
//! `READONLY` reply (a demoted master), and moves to the new master when the address changed.
//! Blocking readers take the current master's client on each (re)connect
//! ([`Conn::master_client`]), so they follow too. With a plain URL, [`Conn`] is the
//! self-reconnecting [`ConnectionManager`] of before, unchanged.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, Value};

use super::{RedisSettings, Secret};
use crate::error::redact_url;

/// The master name and the sentinels to ask for its address.
#[derive(Clone)]
pub(crate) struct SentinelSettings {
    pub(crate) master: String,
    /// `redis://[:password@]host:port` or `rediss://…` (then the data nodes use TLS as well).
    pub(crate) sentinels: Vec<String>,
}

/// Shows the sentinels' URLs without their passwords.
impl std::fmt::Debug for SentinelSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: Vec<String> = self.sentinels.iter().map(|u| redact_url(u)).collect();
        f.debug_struct("SentinelSettings")
            .field("master", &self.master)
            .field("sentinels", &shown)
            .finish()
    }
}

/// How often at most the sentinels are asked after errors (callers retry on their own).
const MIN_REFRESH_INTERVAL: Duration = Duration::from_millis(200);

/// The connection every non-blocking command goes through.
#[derive(Clone)]
pub(crate) struct Conn {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Fixed {
        conn: ConnectionManager,
        client: Arc<redis::Client>,
    },
    Sentinel(Arc<Failover>),
}

/// The current master and what is needed to find and reach the next one.
struct Failover {
    current: Mutex<Current>,
    /// One refresh at a time.
    refreshing: tokio::sync::Mutex<Option<Instant>>,
    settings: RedisSettings,
    config: ConnectionManagerConfig,
}

#[derive(Clone)]
struct Current {
    addr: (String, u16),
    conn: ConnectionManager,
    client: Arc<redis::Client>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").finish_non_exhaustive()
    }
}

impl Conn {
    /// A connection to the server of `client` (plain URL).
    pub(crate) fn fixed(conn: ConnectionManager, client: redis::Client) -> Self {
        Conn {
            inner: Inner::Fixed {
                conn,
                client: Arc::new(client),
            },
        }
    }

    /// A connection to the master the sentinels of `settings` name now.
    pub(crate) async fn sentinel(
        settings: &RedisSettings,
        config: ConnectionManagerConfig,
    ) -> Result<Self, String> {
        let sentinel = settings
            .sentinel
            .as_ref()
            .ok_or_else(|| "no sentinel settings".to_owned())?;
        let addr = resolve_master(settings, sentinel).await?;
        let client = data_client(settings, &addr)?;
        let conn = ConnectionManager::new_with_config(client.clone(), config.clone())
            .await
            .map_err(|e| format!("master {}:{}: {e}", addr.0, addr.1))?;
        tracing::info!(master = %sentinel.master, host = %addr.0, port = addr.1, "connected to the master named by the sentinels");
        Ok(Conn {
            inner: Inner::Sentinel(Arc::new(Failover {
                current: Mutex::new(Current {
                    addr,
                    conn,
                    client: Arc::new(client),
                }),
                refreshing: tokio::sync::Mutex::new(None),
                settings: settings.clone(),
                config,
            })),
        })
    }

    /// The client of the current master (for dedicated connections: blocking readers,
    /// administration). With Sentinel the master is looked up first, so a reader that
    /// reconnects after an error lands on the new master.
    pub(crate) async fn master_client(&self) -> Arc<redis::Client> {
        match &self.inner {
            Inner::Fixed { client, .. } => client.clone(),
            Inner::Sentinel(f) => {
                f.refresh(true).await;
                f.current().client
            }
        }
    }

    fn manager(&self) -> ConnectionManager {
        match &self.inner {
            Inner::Fixed { conn, .. } => conn.clone(),
            Inner::Sentinel(f) => f.current().conn,
        }
    }

    /// After `error` (or a `READONLY` entry of a pipeline), asks the sentinels in the
    /// background: the caller's own retry then reaches the new master.
    fn after_error(&self, error: Option<&RedisError>) {
        if let Inner::Sentinel(f) = &self.inner
            && error.is_none_or(suggests_failover)
        {
            let f = f.clone();
            tokio::spawn(async move { f.refresh(false).await });
        }
    }
}

/// An error after which the master may have changed: the connection failed or timed out, or
/// the server says it is a replica now.
fn suggests_failover(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
        || e.code() == Some("READONLY")
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let mut conn = self.manager();
            let result = conn.req_packed_command(cmd).await;
            if let Err(e) = &result {
                self.after_error(Some(e));
            }
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let mut conn = self.manager();
            let result = conn.req_packed_commands(pipeline, offset, count).await;
            match &result {
                Err(e) => self.after_error(Some(e)),
                Ok(values)
                    if values
                        .iter()
                        .any(|v| matches!(v, Value::ServerError(s) if s.code() == "READONLY")) =>
                {
                    self.after_error(None)
                }
                Ok(_) => {}
            }
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.manager().get_db()
    }
}

impl Failover {
    fn current(&self) -> Current {
        match self.current.lock() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Asks the sentinels for the master and moves to it if it changed. `force` skips the
    /// rate limit (a reader reconnecting).
    async fn refresh(&self, force: bool) {
        let mut last = self.refreshing.lock().await;
        if !force && last.is_some_and(|t| t.elapsed() < MIN_REFRESH_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
        let Some(sentinel) = &self.settings.sentinel else {
            return;
        };
        let addr = match resolve_master(&self.settings, sentinel).await {
            Ok(addr) => addr,
            Err(reason) => {
                tracing::warn!(master = %sentinel.master, %reason, "cannot ask the sentinels for the master");
                return;
            }
        };
        if addr == self.current().addr {
            return;
        }
        let client = match data_client(&self.settings, &addr) {
            Ok(c) => c,
            Err(reason) => {
                tracing::warn!(master = %sentinel.master, %reason, "cannot make a client for the new master");
                return;
            }
        };
        let connect = ConnectionManager::new_with_config(client.clone(), self.config.clone());
        match tokio::time::timeout(self.settings.connect_timeout, connect).await {
            Ok(Ok(conn)) => {
                tracing::warn!(master = %sentinel.master, host = %addr.0, port = addr.1, "failover: moved to the new master");
                let new = Current {
                    addr,
                    conn,
                    client: Arc::new(client),
                };
                match self.current.lock() {
                    Ok(mut c) => *c = new,
                    Err(poisoned) => *poisoned.into_inner() = new,
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(master = %sentinel.master, host = %addr.0, port = addr.1, error = %e, "cannot connect to the new master yet");
            }
            Err(_) => {
                tracing::warn!(master = %sentinel.master, host = %addr.0, port = addr.1, "cannot connect to the new master yet: timed out");
            }
        }
    }
}

/// The master's address according to the first sentinel that answers
/// (`SENTINEL GET-MASTER-ADDR-BY-NAME`).
pub(crate) async fn resolve_master(
    settings: &RedisSettings,
    sentinel: &SentinelSettings,
) -> Result<(String, u16), String> {
    let mut reasons = Vec::new();
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(settings.connect_timeout))
        .set_response_timeout(Some(settings.response_timeout));
    for url in &sentinel.sentinels {
        let shown = redact_url(url);
        let ask = async {
            let info = url.as_str().into_connection_info()?;
            let client = client_with_tls(info, settings)?;
            let mut conn = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(&sentinel.master)
                .query_async::<Option<(String, u16)>>(&mut conn)
                .await
        };
        match tokio::time::timeout(settings.connect_timeout + settings.response_timeout, ask).await
        {
            Ok(Ok(Some(addr))) => return Ok(addr),
            Ok(Ok(None)) => reasons.push(format!(
                "{shown}: no master named `{}` is monitored",
                sentinel.master
            )),
            Ok(Err(e)) => reasons.push(format!("{shown}: {e}")),
            Err(_) => reasons.push(format!("{shown}: timed out")),
        }
    }
    Err(format!(
        "no sentinel named the master `{}`: {}",
        sentinel.master,
        reasons.join("; ")
    ))
}

/// A client for the data node at `addr`: TLS when the sentinels are reached over TLS, the
/// password of `redis_password_env`/`redis_password_file`.
fn data_client(settings: &RedisSettings, addr: &(String, u16)) -> Result<redis::Client, String> {
    let scheme = if settings.url.starts_with("rediss://") {
        "rediss"
    } else {
        "redis"
    };
    let host = if addr.0.contains(':') {
        format!("[{}]", addr.0)
    } else {
        addr.0.clone()
    };
    let mut info = format!("{scheme}://{host}:{}", addr.1)
        .into_connection_info()
        .map_err(|e| e.to_string())?;
    if let Some(Secret(password)) = &settings.password {
        let redis = info.redis_settings().clone().set_password(password);
        info = info.set_redis_settings(redis);
    }
    client_with_tls(info, settings).map_err(|e| e.to_string())
}

/// A client for `info` with the certificates of `settings`, if any.
pub(crate) fn client_with_tls(
    info: redis::ConnectionInfo,
    settings: &RedisSettings,
) -> Result<redis::Client, RedisError> {
    match &settings.tls {
        None => redis::Client::open(info),
        Some(tls) => redis::Client::build_with_tls(
            info,
            redis::TlsCertificates {
                client_tls: tls
                    .client
                    .as_ref()
                    .map(|(cert, key)| redis::ClientTlsConfig {
                        client_cert: cert.clone(),
                        client_key: key.clone(),
                    }),
                root_cert: tls.ca.clone(),
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_sentinels_passwords() {
        let s = SentinelSettings {
            master: "events".into(),
            sentinels: vec!["redis://:hunter2@10.0.0.1:26379".into()],
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("10.0.0.1:26379"), "{shown}");
    }
}
