//! A private Redis Sentinel deployment: a master, replicas and three sentinels on loopback, with
//! short timeouts so a failover takes seconds (a master is considered down after 1 s without an
//! answer).
//!
//! ```no_run
//! use opsc_events_testkit::SentinelSet;
//!
//! let mut set = SentinelSet::start(2);
//! println!("master `{}` via {:?}", set.master_name(), set.sentinel_urls());
//! let old = set.master_port();
//! set.kill_master();
//! let new = set.wait_for_failover(std::time::Duration::from_secs(20));
//! assert_ne!(old, new);
//! ```

use std::io;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{RedisServer, ServerOptions, TlsFiles, free_port, ping};

/// The name the sentinels monitor the master under.
pub const MASTER_NAME: &str = "opsc-master";

/// How a [`SentinelSet`] is set up.
#[derive(Debug, Clone, Default)]
pub struct SentinelOptions {
    /// Replicas besides the master (1 or 2 make sense).
    pub replicas: usize,
    /// `requirepass` (and `masterauth`) on the data nodes, and `sentinel auth-pass` so the
    /// sentinels can reach them.
    pub data_password: Option<String>,
    /// `requirepass` on the sentinels themselves (then in [`SentinelSet::sentinel_urls`]).
    pub sentinel_password: Option<String>,
    /// Every process also listens for TLS (one CA for all, [`SentinelSet::tls`]); replication,
    /// the sentinels' connections and the addresses they announce use the TLS ports, and
    /// [`SentinelSet::sentinel_urls`] are `rediss://`. The plain ports stay for the testkit's own
    /// checks.
    pub tls: bool,
}

/// A master, its replicas and three sentinels; every process is killed when dropped.
#[derive(Debug)]
pub struct SentinelSet {
    /// The data nodes (index 0 was the first master) and their TLS ports (0 without TLS).
    nodes: Vec<(RedisServer, u16)>,
    tls: Option<TlsFiles>,
    sentinels: Vec<Sentinel>,
    options: SentinelOptions,
    /// The sentinels' configuration files and logs.
    dir: tempfile::TempDir,
}

#[derive(Debug)]
struct Sentinel {
    port: u16,
    tls_port: u16,
    child: Option<Child>,
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl SentinelSet {
    /// A master with `replicas` replicas and three sentinels, no passwords; panics with a clear
    /// message if the processes do not come up, or the sentinels do not see every replica
    /// within 20 s.
    pub fn start(replicas: usize) -> Self {
        Self::start_with(SentinelOptions {
            replicas,
            ..SentinelOptions::default()
        })
    }

    /// A set configured by `options`; panics like [`SentinelSet::start`].
    pub fn start_with(options: SentinelOptions) -> Self {
        match Self::try_start_with(options) {
            Ok(set) => set,
            Err(e) => panic!("cannot start a private sentinel set: {e}"),
        }
    }

    /// Starts a set, returning an error instead of panicking.
    pub fn try_start_with(options: SentinelOptions) -> io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("opsc-sentinel-")
            .tempdir()?;
        let tls = if options.tls {
            Some(TlsFiles::create(dir.path())?)
        } else {
            None
        };
        let common = |extra: &mut Vec<(String, String)>| -> io::Result<u16> {
            if let Some(pw) = &options.data_password {
                extra.push(("requirepass".into(), pw.clone()));
                extra.push(("masterauth".into(), pw.clone()));
            }
            match &tls {
                None => Ok(0),
                Some(files) => {
                    let port = free_port()?;
                    extra.extend(tls_args(files, port));
                    Ok(port)
                }
            }
        };
        let mut extra = Vec::new();
        let master_tls = common(&mut extra)?;
        let master = RedisServer::try_start_with(ServerOptions {
            extra,
            ..ServerOptions::default()
        })?;
        // Replicas and sentinels reach the master on the port they would announce.
        let master_port = if tls.is_some() {
            master_tls
        } else {
            master.port()
        };
        let mut nodes = vec![(master, master_tls)];
        for _ in 0..options.replicas {
            let mut extra = vec![("replicaof".into(), format!("127.0.0.1 {master_port}"))];
            let tls_port = common(&mut extra)?;
            let node = RedisServer::try_start_with(ServerOptions {
                extra,
                ..ServerOptions::default()
            })?;
            nodes.push((node, tls_port));
        }
        let mut set = SentinelSet {
            nodes,
            tls,
            sentinels: Vec::new(),
            options,
            dir,
        };
        for i in 0..3 {
            let sentinel = set.spawn_sentinel(i, master_port)?;
            set.sentinels.push(sentinel);
        }
        let want = set.options.replicas;
        set.wait(
            "the sentinels to see the master and every replica",
            Duration::from_secs(20),
            |s| {
                s.sentinels.iter().all(|sn| {
                    s.sentinel_query(sn.port, &["SENTINEL", "REPLICAS", MASTER_NAME])
                        .map(|v| count_online_replicas(&v) >= want)
                        .unwrap_or(false)
                        && s.sentinel_query(sn.port, &["SENTINEL", "SENTINELS", MASTER_NAME])
                            .map(|v| matches!(v, redis::Value::Array(a) if a.len() >= 2))
                            .unwrap_or(false)
                })
            },
        )?;
        Ok(set)
    }

    fn spawn_sentinel(&self, i: usize, master_port: u16) -> io::Result<Sentinel> {
        let mut last = None;
        for _ in 0..5 {
            let port = free_port()?;
            let tls_port = if self.tls.is_some() { free_port()? } else { 0 };
            let config = self.dir.path().join(format!("sentinel-{i}.conf"));
            let log = self.dir.path().join(format!("sentinel-{i}.log"));
            let mut text = format!(
                "port {port}\nbind 127.0.0.1\ndaemonize no\nprotected-mode no\n\
                 dir {dir}\nlogfile {log}\n\
                 sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
                 sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                 sentinel failover-timeout {MASTER_NAME} 3000\n\
                 sentinel parallel-syncs {MASTER_NAME} 1\n",
                dir = self.dir.path().display(),
                log = log.display(),
            );
            if let Some(pw) = &self.options.data_password {
                text.push_str(&format!("sentinel auth-pass {MASTER_NAME} {pw}\n"));
            }
            if let Some(files) = &self.tls {
                for (k, v) in tls_args(files, tls_port) {
                    text.push_str(&format!("{k} {v}\n"));
                }
            }
            if let Some(pw) = &self.options.sentinel_password {
                text.push_str(&format!("requirepass {pw}\nsentinel sentinel-pass {pw}\n"));
            }
            std::fs::write(&config, text)?;
            let child = Command::new("redis-server")
                .arg(&config)
                .arg("--sentinel")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            let mut sentinel = Sentinel {
                port,
                tls_port,
                child: Some(child),
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if ping(port).is_ok() {
                    return Ok(sentinel);
                }
                if let Some(child) = sentinel.child.as_mut()
                    && let Some(status) = child.try_wait()?
                {
                    sentinel.child = None;
                    last = Some(io::Error::other(format!(
                        "sentinel on port {port} exited with {status}; log:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    )));
                    break;
                }
                if Instant::now() >= deadline {
                    last = Some(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("sentinel on port {port} did not answer PING"),
                    ));
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("sentinel did not start")))
    }

    /// The name the sentinels monitor the master under ([`MASTER_NAME`]).
    pub fn master_name(&self) -> &'static str {
        MASTER_NAME
    }

    /// `redis://[:password@]127.0.0.1:<port>` of each sentinel (`rediss://` and the TLS port
    /// with [`SentinelOptions::tls`]).
    pub fn sentinel_urls(&self) -> Vec<String> {
        let auth = match &self.options.sentinel_password {
            Some(pw) => format!(":{pw}@"),
            None => String::new(),
        };
        self.sentinels
            .iter()
            .map(|s| match self.tls {
                Some(_) => format!("rediss://{auth}127.0.0.1:{}", s.tls_port),
                None => format!("redis://{auth}127.0.0.1:{}", s.port),
            })
            .collect()
    }

    /// The certificate files shared by every process (with [`SentinelOptions::tls`]).
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// The plain port of the data node the sentinels know as `port` (its TLS port with TLS).
    fn plain_port(&self, port: u16) -> u16 {
        self.nodes
            .iter()
            .find(|(n, tls)| n.port() == port || (*tls != 0 && *tls == port))
            .map_or(port, |(n, _)| n.port())
    }

    /// The port of the master the sentinels name now (asks them; panics if none answers).
    pub fn master_port(&self) -> u16 {
        self.sentinel_master().unwrap_or_else(|e| {
            panic!("no sentinel names the master: {e}");
        })
    }

    /// `redis://[:password@]127.0.0.1:<port>` of the master the sentinels name now.
    pub fn master_url(&self) -> String {
        self.node_url(self.master_port())
    }

    /// `redis://[:password@]127.0.0.1:<port>` of the data node the sentinels know as `port`
    /// (always its plain port).
    pub fn node_url(&self, port: u16) -> String {
        let port = self.plain_port(port);
        match &self.options.data_password {
            Some(pw) => format!("redis://:{pw}@127.0.0.1:{port}"),
            None => format!("redis://127.0.0.1:{port}"),
        }
    }

    /// The ports of the data nodes still running.
    pub fn live_node_ports(&mut self) -> Vec<u16> {
        self.nodes
            .iter_mut()
            .filter_map(|(n, tls)| {
                let known = if *tls != 0 { *tls } else { n.port() };
                n.is_running().then_some(known)
            })
            .collect()
    }

    /// Kills the current master with SIGKILL; returns its port.
    pub fn kill_master(&mut self) -> u16 {
        let port = self.master_port();
        let plain = self.plain_port(port);
        if let Some((node, _)) = self.nodes.iter_mut().find(|(n, _)| n.port() == plain) {
            node.kill();
        }
        port
    }

    /// Waits until the sentinels name a master other than the killed one and that master says
    /// it is one (`ROLE`); returns its port. Panics after `limit`.
    pub fn wait_for_failover(&mut self, limit: Duration) -> u16 {
        let deadline = Instant::now() + limit;
        loop {
            let live = self.live_node_ports();
            if let Ok(port) = self.sentinel_master()
                && live.contains(&port)
                && self.node_is_master(port)
            {
                return port;
            }
            assert!(
                Instant::now() < deadline,
                "no failover within {limit:?}; sentinel log:\n{}",
                self.sentinel_log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The end of the first sentinel's log, for failure messages.
    pub fn sentinel_log_tail(&self) -> String {
        let log =
            std::fs::read_to_string(self.dir.path().join("sentinel-0.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn node_is_master(&self, port: u16) -> bool {
        let Ok(client) = redis::Client::open(self.node_url(port)) else {
            return false;
        };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(1)) else {
            return false;
        };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
        match redis::cmd("ROLE").query::<redis::Value>(&mut conn) {
            Ok(redis::Value::Array(a)) => {
                matches!(a.first(), Some(redis::Value::BulkString(b)) if b == b"master")
            }
            _ => false,
        }
    }

    /// The master's port according to the first sentinel that answers.
    fn sentinel_master(&self) -> io::Result<u16> {
        let mut last = io::Error::other("no sentinel");
        for s in &self.sentinels {
            match self.sentinel_query(
                s.port,
                &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME],
            ) {
                Ok(v) => match redis::from_redis_value::<Option<(String, u16)>>(v) {
                    Ok(Some((_, port))) => return Ok(port),
                    Ok(None) => last = io::Error::other("no master of that name"),
                    Err(e) => last = io::Error::other(e.to_string()),
                },
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn sentinel_query(&self, port: u16, args: &[&str]) -> io::Result<redis::Value> {
        let url = match &self.options.sentinel_password {
            Some(pw) => format!("redis://:{pw}@127.0.0.1:{port}"),
            None => format!("redis://127.0.0.1:{port}"),
        };
        let fail = |e: redis::RedisError| io::Error::other(e.to_string());
        let client = redis::Client::open(url).map_err(fail)?;
        let mut conn = client
            .get_connection_with_timeout(Duration::from_secs(1))
            .map_err(fail)?;
        conn.set_read_timeout(Some(Duration::from_secs(1)))
            .map_err(fail)?;
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query::<redis::Value>(&mut conn).map_err(fail)
    }

    fn wait(&self, what: &str, limit: Duration, cond: impl Fn(&Self) -> bool) -> io::Result<()> {
        let deadline = Instant::now() + limit;
        while !cond(self) {
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "timed out after {limit:?} waiting for {what}; sentinel log:\n{}",
                        self.sentinel_log_tail()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

/// The server arguments of a TLS port with the set's certificates; replication over TLS.
fn tls_args(files: &TlsFiles, port: u16) -> Vec<(String, String)> {
    let path = |p: &std::path::Path| p.display().to_string();
    vec![
        ("tls-port".into(), port.to_string()),
        ("tls-cert-file".into(), path(&files.server_cert)),
        ("tls-key-file".into(), path(&files.server_key)),
        ("tls-client-cert-file".into(), path(&files.client_cert)),
        ("tls-client-key-file".into(), path(&files.client_key)),
        ("tls-ca-cert-file".into(), path(&files.ca)),
        ("tls-auth-clients".into(), "optional".into()),
        ("tls-replication".into(), "yes".into()),
    ]
}

/// Replicas in a `SENTINEL REPLICAS` reply whose flags say neither down nor disconnected.
fn count_online_replicas(v: &redis::Value) -> usize {
    let redis::Value::Array(replicas) = v else {
        return 0;
    };
    replicas
        .iter()
        .filter(|r| {
            let fields: Vec<String> = match r {
                redis::Value::Array(a) => a
                    .iter()
                    .map(|f| match f {
                        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                        _ => String::new(),
                    })
                    .collect(),
                _ => Vec::new(),
            };
            fields
                .windows(2)
                .find(|w| w[0] == "flags")
                .is_some_and(|w| w[1] == "slave")
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_master_is_replaced_by_a_replica() {
        let mut set = SentinelSet::start(1);
        let old = set.kill_master();
        let new = set.wait_for_failover(Duration::from_secs(30));
        assert_ne!(old, new);
    }

    #[test]
    fn over_tls_a_killed_master_is_replaced_too() {
        let mut set = SentinelSet::start_with(SentinelOptions {
            replicas: 1,
            tls: true,
            ..SentinelOptions::default()
        });
        assert!(
            set.sentinel_urls()
                .iter()
                .all(|u| u.starts_with("rediss://"))
        );
        let old = set.kill_master();
        let new = set.wait_for_failover(Duration::from_secs(30));
        assert_ne!(old, new);
    }
}
