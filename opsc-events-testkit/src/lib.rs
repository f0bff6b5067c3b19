//! Test support: a private `redis-server` on a free port in a temporary directory, stopped when
//! dropped, that a test can kill, restart and inspect. Tests never touch a shared instance.
//!
//! ```no_run
//! use opsc_events_testkit::RedisServer;
//!
//! let server = RedisServer::start();
//! println!("connect to {}", server.url());
//! // ... the server is killed and its directory removed when `server` is dropped.
//! ```

mod sentinel;

pub use sentinel::{MASTER_NAME, SentinelOptions, SentinelSet};

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to answer `PING` after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// The command that installs `redis-server` on Debian and Ubuntu, named in errors.
pub const INSTALL_HINT: &str = "apt-get install -y redis-server";

/// How the private server persists data.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// `appendonly yes` with `appendfsync always`: every acknowledged write survives a restart.
    pub aof: bool,
    /// Also listen for TLS on a second port ([`RedisServer::tls_url`]), with a CA, a server
    /// certificate (for `localhost` and `127.0.0.1`) and a client certificate made for this
    /// server ([`RedisServer::tls`]); client certificates are accepted, not required.
    pub tls: bool,
    /// Extra `--name value` arguments; a value of several words is passed as several arguments
    /// (`("rename-command", "XAUTOCLAIM \"\"")` disables a command).
    pub extra: Vec<(String, String)>,
    /// Start from this configuration file (e.g. the deployment's `redis.conf`). The testkit's
    /// own `--port`, `--bind`, `--dir`, `--logfile` and `--daemonize no` come after it on the
    /// command line, so they override the file's; persistence and protected mode are left to
    /// the file (unless `aof` is set), so a test sees what the file configures.
    pub config: Option<PathBuf>,
}

impl ServerOptions {
    /// Durable: AOF on, fsync on every write.
    pub fn durable() -> Self {
        ServerOptions {
            aof: true,
            ..ServerOptions::default()
        }
    }

    /// No persistence, and a TLS port besides the plain one.
    pub fn tls() -> Self {
        ServerOptions {
            tls: true,
            ..ServerOptions::default()
        }
    }
}

/// A private `redis-server` process.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    /// The TLS port (0 without TLS).
    tls_port: u16,
    tls: Option<TlsFiles>,
    dir: tempfile::TempDir,
    /// Boxed: tests keep servers in enums next to small variants.
    options: Box<ServerOptions>,
}

impl RedisServer {
    /// Starts a server without persistence. Panics with a clear message if `redis-server` is not
    /// installed or does not come up.
    pub fn start() -> Self {
        Self::start_with(ServerOptions::default())
    }

    /// Starts a server with `options`; panics like [`RedisServer::start`].
    pub fn start_with(options: ServerOptions) -> Self {
        match Self::try_start_with(options) {
            Ok(server) => server,
            Err(e) => panic!("cannot start a private redis-server: {e}"),
        }
    }

    /// Starts a server, returning an error instead of panicking.
    pub fn try_start_with(options: ServerOptions) -> io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("opsc-redis-").tempdir()?;
        let tls = if options.tls {
            Some(TlsFiles::create(dir.path())?)
        } else {
            None
        };
        let mut server = RedisServer {
            child: None,
            port: 0,
            tls_port: 0,
            tls,
            dir,
            options: Box::new(options),
        };
        let mut last_err = None;
        // Another process may take the free port between our probe and the server's bind.
        for _ in 0..5 {
            server.port = free_port()?;
            if server.tls.is_some() {
                server.tls_port = free_port()?;
            }
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("redis-server did not start")))
    }

    fn spawn(&mut self) -> io::Result<()> {
        let mut cmd = Command::new("redis-server");
        // The file must be the first argument; options after it override it.
        if let Some(config) = &self.options.config {
            cmd.arg(config);
        }
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--daemonize")
            .arg("no")
            .arg("--logfile")
            .arg(self.log_path());
        if self.options.config.is_none() {
            cmd.args(["--save", "", "--protected-mode", "no"]);
        }
        if let Some(tls) = &self.tls {
            cmd.arg("--tls-port")
                .arg(self.tls_port.to_string())
                .arg("--tls-cert-file")
                .arg(&tls.server_cert)
                .arg("--tls-key-file")
                .arg(&tls.server_key)
                .arg("--tls-ca-cert-file")
                .arg(&tls.ca)
                .args(["--tls-auth-clients", "optional"]);
        }
        if self.options.aof {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else if self.options.config.is_none() {
            cmd.args(["--appendonly", "no"]);
        }
        for (k, v) in &self.options.extra {
            cmd.arg(format!("--{k}")).args(v.split_whitespace());
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    io::Error::new(
                        e.kind(),
                        format!("`redis-server` is not on PATH; install it with `{INSTALL_HINT}`"),
                    )
                } else {
                    e
                }
            })?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                return Err(io::Error::other(format!(
                    "redis-server on port {} exited with {status}; log:\n{}",
                    self.port,
                    self.log_tail()
                )));
            }
            if ping(self.port).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "redis-server on port {} did not answer PING within {READY_TIMEOUT:?}",
                        self.port
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `rediss://localhost:<tls port>` (the server certificate names `localhost`). Panics when
    /// the server was started without `tls`.
    pub fn tls_url(&self) -> String {
        assert!(self.tls.is_some(), "the server was started without TLS");
        format!("rediss://localhost:{}", self.tls_port)
    }

    /// The TLS port (0 without TLS).
    pub fn tls_port(&self) -> u16 {
        self.tls_port
    }

    /// The certificate files of a TLS server (`None` without TLS).
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// The server's working directory (AOF files live here).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// The end of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the server with SIGKILL (no shutdown save) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and directory (after [`RedisServer::kill`]).
    /// Panics if it does not come up.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + READY_TIMEOUT;
        // The port can linger briefly after the kill; retry the bind until the deadline.
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("cannot restart redis-server on port {}: {e}", self.port),
            }
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Sends `PING` over a raw socket and expects `+PONG`.
fn ping(port: u16) -> io::Result<()> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_millis(500)))?;
    s.write_all(b"*1\r\n$4\r\nPING\r\n")?;
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf)?;
    // A server with `requirepass` answers `-NOAUTH …`: it is up all the same.
    if &buf == b"+PONG\r\n" || buf.starts_with(b"-NOAUTH") {
        Ok(())
    } else {
        Err(io::Error::other("unexpected reply to PING"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_answers_and_stops() {
        let mut server = RedisServer::start();
        assert!(ping(server.port()).is_ok());
        let port = server.port();
        server.kill();
        assert!(ping(port).is_err(), "server still answers after kill");
        server.restart();
        assert!(ping(port).is_ok(), "server does not answer after restart");
    }

    #[test]
    fn two_servers_get_different_ports() {
        let a = RedisServer::start();
        let b = RedisServer::start();
        assert_ne!(a.port(), b.port());
    }
}

/// PEM files of a TLS test server: its CA, its certificate and key, and a client certificate and
/// key signed by the same CA (for mutual TLS).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA certificate that signed both certificates.
    pub ca: PathBuf,
    /// The server certificate (`localhost`, `127.0.0.1`).
    pub server_cert: PathBuf,
    /// The server key.
    pub server_key: PathBuf,
    /// A client certificate.
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
}

impl TlsFiles {
    fn create(dir: &Path) -> io::Result<TlsFiles> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let fail =
            |e: rcgen::Error| io::Error::other(format!("cannot make test certificates: {e}"));
        let ca_key = KeyPair::generate().map_err(fail)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "opsc-events test CA");
        let ca = ca_params.self_signed(&ca_key).map_err(fail)?;
        let leaf = |names: Vec<String>, cn: &str| -> io::Result<(String, String)> {
            let key = KeyPair::generate().map_err(fail)?;
            let mut params = CertificateParams::new(names).map_err(fail)?;
            params.distinguished_name.push(DnType::CommonName, cn);
            let cert = params.signed_by(&key, &ca, &ca_key).map_err(fail)?;
            Ok((cert.pem(), key.serialize_pem()))
        };
        let (server_cert, server_key) =
            leaf(vec!["localhost".into(), "127.0.0.1".into()], "localhost")?;
        let (client_cert, client_key) = leaf(vec!["opsc-client".into()], "opsc-client")?;
        let files = TlsFiles {
            ca: dir.join("ca.crt"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.crt"),
            client_key: dir.join("client.key"),
        };
        std::fs::write(&files.ca, ca.pem())?;
        std::fs::write(&files.server_cert, server_cert)?;
        std::fs::write(&files.server_key, server_key)?;
        std::fs::write(&files.client_cert, client_cert)?;
        std::fs::write(&files.client_key, client_key)?;
        Ok(files)
    }
}
