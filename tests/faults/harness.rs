//! The rig every scenario runs on: a private redis-server, an in-process "admin" runtime (it
//! creates the groups, publishes, reads dead letters and trims), supervised `fault-worker`
//! processes whose output feeds the ledger, a feeder that publishes jobs until told to stop,
//! fault injectors, and the final bounded wait and verdict.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opsc_events::WireFormat;
use opsc_events::prelude::*;
use opsc_events_testkit::{RedisServer, ServerOptions};

use crate::common;
use crate::ledger::{Death, Injected, Ledger, Verdict};
use crate::work::{self, Job, KEY, Rng, STREAM, Sink};

/// One scenario at a time: each starts its own server and several processes, and their
/// timing (claim_after = 3 s, timeout = 1 s) should not compete for the 2 cores with another.
pub static SERIAL_SCENARIOS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Locks the server for a blocking operation (kill, restart) from async code.
fn with_server<T: Send + 'static>(
    server: &Arc<Mutex<RedisServer>>,
    f: impl FnOnce(&mut RedisServer) -> T + Send + 'static,
) -> tokio::task::JoinHandle<T> {
    let server = server.clone();
    tokio::task::spawn_blocking(move || {
        let mut s = server.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s)
    })
}

/// How a scenario's workers are configured.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Comma-separated handler fn names (`steady,serial`).
    pub handlers: String,
    /// `FAULT_*` environment variables.
    pub env: Vec<(String, String)>,
}

impl WorkerConfig {
    pub fn new(handlers: &str) -> Self {
        WorkerConfig {
            handlers: handlers.to_owned(),
            env: Vec::new(),
        }
    }

    pub fn env(mut self, name: &str, value: impl ToString) -> Self {
        self.env.push((name.to_owned(), value.to_string()));
        self
    }
}

struct Worker {
    child: Child,
    instance: u32,
}

struct Slot {
    config: WorkerConfig,
    worker: Option<Worker>,
    /// Respawn when the process is gone.
    keep_alive: bool,
}

/// Supervised `fault-worker` processes.
pub struct Workers {
    url: String,
    ledger: Arc<Ledger>,
    log_dir: PathBuf,
    slots: Vec<Slot>,
    next_instance: u32,
}

impl Workers {
    fn spawn_process(&mut self, config: &WorkerConfig) -> Worker {
        self.next_instance += 1;
        let instance = self.next_instance;
        let log = std::fs::File::create(self.log_dir.join(format!("worker-{instance}.log")))
            .expect("worker log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fault-worker"));
        cmd.arg(&self.url)
            .arg(&config.handlers)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        for (k, v) in &config.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn fault-worker");
        let out = child.stdout.take().expect("worker stdout");
        let ledger = self.ledger.clone();
        std::thread::spawn(move || {
            // The pipe outlives the process: lines written before a kill -9 are still read.
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                ledger.line(instance, &line);
            }
        });
        Worker { child, instance }
    }

    /// Starts a worker in a new slot; returns the slot.
    pub fn start(&mut self, config: WorkerConfig) -> usize {
        let worker = self.spawn_process(&config);
        self.slots.push(Slot {
            config,
            worker: Some(worker),
            keep_alive: true,
        });
        self.slots.len() - 1
    }

    /// Slots whose worker is running.
    pub fn running(&self) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|i| self.slots[*i].worker.is_some())
            .collect()
    }

    /// `kill -9` of the worker in `slot` (it is respawned by [`Workers::supervise`] if the slot
    /// is kept alive).
    pub fn kill9(&mut self, slot: usize) {
        if let Some(mut w) = self.slots[slot].worker.take() {
            let _ = w.child.kill();
            let _ = w.child.wait();
            self.ledger.died(w.instance, Death::Killed);
            self.ledger.fault("kill -9 worker");
        }
    }

    /// Stops `slot` for good (kill -9, no respawn).
    pub fn retire(&mut self, slot: usize) {
        self.slots[slot].keep_alive = false;
        self.kill9(slot);
    }

    /// Lets `slot` run again (after [`Workers::pause`]).
    pub fn resume(&mut self, slot: usize) {
        self.slots[slot].keep_alive = true;
        self.supervise();
    }

    /// Kills `slot` and keeps it down until [`Workers::resume`].
    pub fn pause(&mut self, slot: usize) {
        self.retire(slot);
    }

    /// Reaps workers that exited on their own and restarts every slot kept alive.
    pub fn supervise(&mut self) {
        for i in 0..self.slots.len() {
            if let Some(w) = self.slots[i].worker.as_mut()
                && let Ok(Some(_)) = w.child.try_wait()
            {
                let instance = w.instance;
                self.slots[i].worker = None;
                self.ledger.died(instance, Death::Exited);
                self.ledger.fault("worker exited");
            }
            if self.slots[i].worker.is_none() && self.slots[i].keep_alive {
                let config = self.slots[i].config.clone();
                let w = self.spawn_process(&config);
                self.slots[i].worker = Some(w);
            }
        }
    }

    fn kill_all(&mut self) {
        for s in &mut self.slots {
            s.keep_alive = false;
            if let Some(mut w) = s.worker.take() {
                let _ = w.child.kill();
                let _ = w.child.wait();
            }
        }
    }

    /// The last lines of the newest worker logs, for failure messages.
    pub fn log_tails(&self) -> String {
        let mut out = String::new();
        let first = self.next_instance.saturating_sub(3) + 1;
        for i in first..=self.next_instance {
            let text = std::fs::read_to_string(self.log_dir.join(format!("worker-{i}.log")))
                .unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!("--- worker {i} log (last 15 lines) ---\n"));
            for l in &lines[lines.len().saturating_sub(15)..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// A private server, the admin runtime, workers and the ledger.
pub struct Rig {
    pub server: Arc<Mutex<RedisServer>>,
    pub url: String,
    pub ledger: Arc<Ledger>,
    pub admin: Runtime,
    pub groups: Vec<&'static str>,
    pub workers: Arc<Mutex<Workers>>,
    pub rng: Arc<Rng>,
    supervisor: tokio::task::JoinHandle<()>,
    supervising: Arc<AtomicBool>,
    /// Dead letters read so far (the stream only grows in these scenarios).
    letters: tokio::sync::Mutex<Vec<DeadLetter>>,
}

impl Rig {
    /// Starts a server (`durable`: AOF with `appendfsync always`) and creates `groups` (they
    /// start at `latest`, so they must exist before anything is published).
    pub async fn start(durable: bool, groups: &[&'static str]) -> Rig {
        common::init_tracing();
        let server = if durable {
            RedisServer::start_with(ServerOptions::durable())
        } else {
            RedisServer::start()
        };
        let url = server.url();
        let wanted: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        let mut admin = Runtime::builder()
            .service("faults")
            .redis(url.clone())
            .state(Sink::null());
        admin = if wanted.is_empty() {
            admin.no_handlers()
        } else {
            admin.only(move |h| wanted.iter().any(|g| g == h.group()))
        };
        let admin = admin
            .build()
            .await
            .expect("the admin runtime builds and creates the groups");
        let ledger = Arc::new(Ledger::default());
        // Worker logs (stderr; `RUST_LOG` passes through) live in the server's temporary
        // directory, removed with it, unless `OPSC_FAULTS_LOGS` names a directory to keep them.
        let logs = match std::env::var_os("OPSC_FAULTS_LOGS") {
            Some(dir) => PathBuf::from(dir).join(format!("{}", server.port())),
            None => server.dir().join("workers"),
        };
        std::fs::create_dir_all(&logs).expect("log dir");
        let workers = Arc::new(Mutex::new(Workers {
            url: url.clone(),
            ledger: ledger.clone(),
            log_dir: logs,
            slots: Vec::new(),
            next_instance: 0,
        }));
        let supervising = Arc::new(AtomicBool::new(true));
        let supervisor = {
            let workers = workers.clone();
            let on = supervising.clone();
            tokio::spawn(async move {
                while on.load(Ordering::SeqCst) {
                    workers
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .supervise();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        Rig {
            server: Arc::new(Mutex::new(server)),
            url,
            ledger,
            admin,
            groups: groups.to_vec(),
            workers,
            rng: Arc::new(Rng::from_entropy()),
            supervisor,
            supervising,
            letters: tokio::sync::Mutex::new(Vec::new()),
        }
    }

    pub fn workers(&self) -> std::sync::MutexGuard<'_, Workers> {
        self.workers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts `n` workers with `config` and waits until they are ready.
    pub async fn start_workers(&self, n: usize, config: &WorkerConfig) -> Vec<usize> {
        let before = self.ledger.ready_count();
        let slots: Vec<usize> = (0..n)
            .map(|_| self.workers().start(config.clone()))
            .collect();
        self.wait("workers ready", Duration::from_secs(60), || async {
            self.ledger.ready_count() >= before + n
        })
        .await;
        slots
    }

    /// `kill -9` of a random running worker.
    pub fn kill_random_worker(&self) {
        let mut w = self.workers();
        let running = w.running();
        if running.is_empty() {
            return;
        }
        let slot = running[self.rng.below(running.len() as u64) as usize];
        w.kill9(slot);
    }

    /// `CLIENT KILL TYPE normal`: every normal client but the caller is disconnected.
    pub async fn client_kill(&self) {
        let r = async {
            let client = redis::Client::open(self.url.as_str())?;
            let mut c = client.get_multiplexed_async_connection().await?;
            redis::cmd("CLIENT")
                .arg("KILL")
                .arg("TYPE")
                .arg("normal")
                .query_async::<i64>(&mut c)
                .await
        };
        match tokio::time::timeout(Duration::from_secs(5), r).await {
            Ok(Ok(n)) => {
                self.ledger.fault("CLIENT KILL");
                self.ledger
                    .faults("connections killed", u64::try_from(n).unwrap_or(0));
            }
            Ok(Err(e)) => eprintln!("CLIENT KILL failed: {e}"),
            Err(_) => eprintln!("CLIENT KILL timed out"),
        }
    }

    /// `kill -9` of redis-server, `down` of downtime, restart on the same port and directory
    /// (with AOF `appendfsync always` every acknowledged write survives).
    pub async fn restart_redis(&self, down: Duration) {
        with_server(&self.server, |s| s.kill())
            .await
            .expect("kill redis");
        self.ledger.fault("redis kill -9 + restart");
        tokio::time::sleep(down).await;
        with_server(&self.server, |s| s.restart())
            .await
            .expect("restart redis");
    }

    /// Freezes redis-server with SIGSTOP for `pause` (connections stay open, nothing answers),
    /// then SIGCONT.
    pub async fn freeze_redis(&self, pause: Duration) {
        let pid = self.redis_pid().await;
        signal(pid, "-STOP");
        self.ledger.fault("redis SIGSTOP");
        tokio::time::sleep(pause).await;
        signal(pid, "-CONT");
    }

    async fn redis_pid(&self) -> u32 {
        let mut c = common::conn(&self.url).await;
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut c)
            .await
            .expect("INFO server");
        info.lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("process_id in INFO")
    }

    /// Publishes `jobs` through the admin publisher, retrying until acknowledged (a failed
    /// publish may still have landed: that entry is handled too, as an extra). Panics after
    /// `limit`.
    pub async fn publish_until_acked(&self, jobs: &[Job], limit: Duration) {
        publish_until_acked(&self.admin.publisher(), &self.ledger, jobs, limit).await;
    }

    /// Starts publishing `batch` jobs every `every`, fates from `fate_of`, until the returned
    /// feeder is stopped.
    pub fn feed(
        &self,
        batch: usize,
        every: Duration,
        fate_of: impl Fn(u64) -> u8 + Send + 'static,
    ) -> Feeder {
        let stop = Arc::new(AtomicBool::new(false));
        let publisher = self.admin.publisher();
        let ledger = self.ledger.clone();
        let s = stop.clone();
        let handle = tokio::spawn(async move {
            let mut seq = 0u64;
            while !s.load(Ordering::SeqCst) {
                let jobs: Vec<Job> = (seq..seq + batch as u64)
                    .map(|n| Job {
                        seq: n,
                        fate: fate_of(n),
                    })
                    .collect();
                seq += batch as u64;
                publish_until_acked(&publisher, &ledger, &jobs, Duration::from_secs(90)).await;
                tokio::time::sleep(every).await;
            }
            seq
        });
        Feeder { stop, handle }
    }

    /// Writes a raw entry (poison) with `XADD`.
    pub async fn inject(
        &self,
        what: &'static str,
        reason: &'static str,
        fields: &[(String, Vec<u8>)],
    ) {
        let mut c = common::conn(&self.url).await;
        let mut cmd = redis::cmd("XADD");
        cmd.arg(KEY).arg("*");
        for (k, v) in fields {
            cmd.arg(k).arg(v.as_slice());
        }
        let id: String = cmd
            .query_async(&mut c)
            .await
            .unwrap_or_else(|e| panic!("XADD {what}: {e}"));
        self.ledger.injected(Injected {
            id: id.parse().expect("entry id"),
            what,
            reason,
        });
    }

    /// Every dead letter of the stream (read incrementally: nothing is purged or replayed here).
    pub async fn dead_letters(&self) -> Vec<DeadLetter> {
        let mut have = self.letters.lock().await;
        let dl = self.admin.dead_letters();
        loop {
            let mut filter = DeadLetterFilter::stream(STREAM).limit(200);
            if let Some(last) = have.last() {
                filter = filter.after(last.id);
            }
            let page = match tokio::time::timeout(Duration::from_secs(30), dl.list(&filter)).await {
                Ok(Ok(page)) => page,
                // Redis may be down right now; report what we have.
                _ => break,
            };
            if page.is_empty() {
                break;
            }
            have.extend(page);
        }
        have.clone()
    }

    /// The verdict as of now.
    pub async fn verdict(&self) -> Verdict {
        let letters = self.dead_letters().await;
        self.ledger.verdict(&self.groups, &letters)
    }

    /// Polls `cond` every 200 ms until it holds; after `limit`, prints the ledger and the
    /// worker logs and panics.
    pub async fn wait<F, Fut>(&self, what: &str, limit: Duration, mut cond: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = Instant::now() + limit;
        loop {
            if cond().await {
                return;
            }
            if Instant::now() >= deadline {
                self.fail(&format!("timed out after {limit:?} waiting for {what}"))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Prints everything useful and panics.
    pub async fn fail(&self, why: &str) -> ! {
        let verdict = self.verdict().await;
        let tails = self.workers().log_tails();
        let redis_log = self.server.lock().map(|s| s.log_tail()).unwrap_or_default();
        panic!(
            "{why}\n{}\n{tails}--- redis log ---\n{redis_log}",
            verdict.render("at failure")
        );
    }

    /// Waits until every acknowledged entry and every poison entry is handled or dead-lettered
    /// in every group, then until nothing is pending, scheduled or recorded as an attempt; stops
    /// the workers and returns the final verdict (printed).
    pub async fn settle(&self, title: &str, limit: Duration) -> Verdict {
        self.wait("every entry settled in every group", limit, || async {
            self.verdict().await.missing() == 0
        })
        .await;
        self.wait(
            "nothing pending, scheduled or leased",
            Duration::from_secs(30),
            || async { self.quiet().await },
        )
        .await;
        self.supervising.store(false, Ordering::SeqCst);
        self.workers().kill_all();
        let verdict = self.verdict().await;
        println!("{}", verdict.render(title));
        verdict
    }

    /// True when no group has a pending entry, a scheduled retry or an attempt record.
    async fn quiet(&self) -> bool {
        for g in &self.groups {
            if common::pending(&self.url, KEY, g).await > 0 {
                return false;
            }
            if common::zcard(&self.url, &format!("opsconductor:{{{STREAM}}}:retry:{g}")).await > 0 {
                return false;
            }
        }
        let mut c = common::conn(&self.url).await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("opsconductor:{{{STREAM}}}:attempt:*"))
            .query_async(&mut c)
            .await
            .unwrap_or_default();
        keys.is_empty()
    }

    /// Asserts the guarantees every scenario shares: nothing missing, nothing dead-lettered
    /// twice, no failing job reported handled, every dead letter with the reason its fate or
    /// poison calls for (or `crashed` when processes died), and — with `strict` — no good job
    /// dead-lettered and nothing both handled and dead-lettered (see `soak` for why the mixed
    /// schedule allows those in its crash windows).
    pub async fn assert_verdict(&self, v: &Verdict, strict: bool) {
        let mut bad = Vec::new();
        for g in &v.groups {
            if !g.missing.is_empty() || !g.missing_poison.is_empty() {
                bad.push(format!(
                    "{}: {} missing",
                    g.group,
                    g.missing.len() + g.missing_poison.len()
                ));
            }
            if g.dead_twice > 0 {
                bad.push(format!("{}: {} dead-lettered twice", g.group, g.dead_twice));
            }
            if g.handled_failing > 0 {
                bad.push(format!(
                    "{}: {} failing jobs reported handled",
                    g.group, g.handled_failing
                ));
            }
            if g.wrong_reason > 0 {
                bad.push(format!(
                    "{}: {} dead letters with the wrong reason",
                    g.group, g.wrong_reason
                ));
            }
            if strict && g.both > 0 {
                bad.push(format!(
                    "{}: {} both handled and dead-lettered",
                    g.group, g.both
                ));
            }
            if strict && g.collateral > 0 {
                bad.push(format!(
                    "{}: {} good jobs dead-lettered",
                    g.group, g.collateral
                ));
            }
            if strict && g.crashed_instead > 0 {
                bad.push(format!(
                    "{}: {} failing jobs dead-lettered as crashed",
                    g.group, g.crashed_instead
                ));
            }
        }
        if !bad.is_empty() {
            self.fail(&bad.join("; ")).await;
        }
    }

    /// [`Rig::assert_verdict`], strict: every entry in exactly one place, with its own reason.
    pub async fn assert_exactly_one_place(&self, v: &Verdict) {
        self.assert_verdict(v, true).await;
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.supervising.store(false, Ordering::SeqCst);
        self.supervisor.abort();
    }
}

/// Publishes `jobs` in one pipeline, again and again until acknowledged; panics after `limit`.
pub async fn publish_until_acked(
    publisher: &Publisher,
    ledger: &Ledger,
    jobs: &[Job],
    limit: Duration,
) {
    for job in jobs {
        ledger.planned(job);
    }
    let deadline = Instant::now() + limit;
    loop {
        // The publisher bounds every command by its response timeout; this outer bound only
        // turns a hang (a bug) into a clear failure.
        match tokio::time::timeout(Duration::from_secs(30), publisher.publish_all(jobs)).await {
            Ok(Ok(ids)) => {
                for (job, id) in jobs.iter().zip(ids) {
                    ledger.published(job.seq, id);
                }
                return;
            }
            Ok(Err(_)) => ledger.fault("publish failed (retried)"),
            Err(_) => panic!("publish_all hung for 30 s"),
        }
        assert!(Instant::now() < deadline, "could not publish for {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Publishes jobs in the background until stopped.
pub struct Feeder {
    stop: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<u64>,
}

impl Feeder {
    /// Stops after the batch in progress is acknowledged; returns how many jobs were published.
    pub async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.await.expect("feeder task")
    }
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {sig} {pid} failed");
}

/// Fields of a well-formed **v1** entry for `job` (the layout with one field per part, which
/// every reader still takes), with some replaced (`Some`) or removed (`None`).
pub fn fields_of(job: &Job, replace: &[(&str, Option<Vec<u8>>)]) -> Vec<(String, Vec<u8>)> {
    let entry =
        envelope::encode_as(job, &Metadata::new("poisoner"), WireFormat::V1).expect("encode");
    let mut out = Vec::new();
    for (k, v) in entry.fields() {
        match replace.iter().find(|(name, _)| *name == k) {
            Some((_, Some(new))) => out.push((k.to_owned(), new.clone())),
            Some((_, None)) => {}
            None => out.push((k.to_owned(), v.to_vec())),
        }
    }
    for (k, v) in replace {
        if let Some(v) = v
            && !out.iter().any(|(name, _)| name == k)
        {
            out.push(((*k).to_owned(), v.clone()));
        }
    }
    out
}

/// Handler names of `groups`, comma-separated, for [`WorkerConfig::new`].
pub fn handlers_of(groups: &[&str]) -> String {
    groups
        .iter()
        .map(|g| work::handler_of(g))
        .collect::<Vec<_>>()
        .join(",")
}

/// A fault schedule's random pause in `lo..=hi`.
pub fn between(rng: &Rng, lo: Duration, hi: Duration) -> Duration {
    let span = hi.saturating_sub(lo).as_millis() as u64;
    lo + Duration::from_millis(rng.below(span + 1))
}
