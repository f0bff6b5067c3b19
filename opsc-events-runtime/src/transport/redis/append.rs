//! Appends: `XADD`s of one event or of a batch, and the group commit that sends concurrent
//! single appends together.
//!
//! A lone `publish` costs one round trip whatever we do, and is sent at once. But when many tasks
//! publish at once, each request paid the multiplexed connection's per-request machinery (a
//! channel message, a reply channel, a response timer, a wake-up of the connection's driver):
//! about 1 µs of CPU per message out of 5. So an append that finds another one already on its way
//! joins a queue instead; a flusher task sends whatever is queued as one pipeline, then the
//! appends that arrived meanwhile as the next one, until the queue is empty (group commit). Each
//! append still gets its own reply or error (`ignore_errors`: one failed `XADD` fails only its
//! caller).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisResult};
use tokio::sync::oneshot;

use super::{RedisTransport, redis_error};
use crate::envelope::EncodedEvent;
use crate::error::{Error, Result};
use crate::message_id::MessageId;

/// The most appends sent in one pipeline.
const MAX_PIPELINE: usize = 512;
/// Pipelines of queued appends in flight at once (besides the direct append). With one, the
/// publishing tasks and the runtime's workers sat idle for every round trip and the workers
/// parked and were woken again each time: 64 concurrent publishers reached 63–79 % of a
/// hand-written pipelined loop. With two, one pipeline fills while the other is out: 80–103 %
/// and a fifth less CPU per append (BENCHMARKS.md). Three or four measured no better.
const MAX_FLUSHERS: usize = 2;

/// Single appends on their way: one sent directly, the others queued for a flusher.
#[derive(Debug, Default)]
pub(super) struct Appends {
    queue: Mutex<Queue>,
}

#[derive(Debug, Default)]
struct Queue {
    /// An append is being sent directly.
    direct: bool,
    jobs: Vec<Job>,
    flushers: usize,
}

#[derive(Debug)]
struct Job {
    key: String,
    cmd: Cmd,
    done: oneshot::Sender<Result<MessageId>>,
}

/// What an append does: go directly, or wait in the queue for its reply (starting a flusher or
/// not).
enum Route {
    Direct(Cmd),
    Queued {
        reply: oneshot::Receiver<Result<MessageId>>,
        start_flusher: bool,
    },
}

impl Appends {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while holding the lock; recover the queue anyway.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends `cmd` directly when nothing else is on its way, else queues it.
    fn route(&self, key: &str, cmd: Cmd) -> Route {
        let mut q = self.lock();
        if !q.direct && q.flushers == 0 && q.jobs.is_empty() {
            q.direct = true;
            return Route::Direct(cmd);
        }
        let (done, reply) = oneshot::channel();
        q.jobs.push(Job {
            key: key.to_owned(),
            cmd,
            done,
        });
        let start_flusher = q.flushers < MAX_FLUSHERS;
        if start_flusher {
            q.flushers += 1;
        }
        Route::Queued {
            reply,
            start_flusher,
        }
    }

    /// The next pipeline's worth of jobs; `None` (and one flusher fewer) when the queue is empty.
    fn take(&self) -> Option<Vec<Job>> {
        let mut q = self.lock();
        if q.jobs.is_empty() {
            q.flushers -= 1;
            return None;
        }
        let n = q.jobs.len().min(MAX_PIPELINE);
        if n == q.jobs.len() {
            Some(std::mem::take(&mut q.jobs))
        } else {
            Some(q.jobs.drain(..n).collect())
        }
    }
}

/// Clears the direct flag however the direct append ends (also when its caller stops waiting).
struct DirectGuard<'a>(&'a Appends);

impl Drop for DirectGuard<'_> {
    fn drop(&mut self) {
        self.0.lock().direct = false;
    }
}

/// Ends a flusher however its task ends. A flusher dropped half-way (its runtime shutting down)
/// must not leave the queue believing it is served: the count is given back, and if no flusher
/// is left the queued jobs are dropped, so their callers get an error instead of waiting forever.
struct FlusherGuard<'a> {
    appends: &'a Appends,
    done: bool,
}

impl Drop for FlusherGuard<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut q = self.appends.lock();
        q.flushers -= 1;
        if q.flushers == 0 {
            q.jobs.clear();
        }
    }
}

impl RedisTransport {
    pub(super) fn parse_id(key: &str, raw: &[u8]) -> Result<MessageId> {
        MessageId::from_bytes(raw).map_err(|_| Error::UnexpectedReply {
            command: "XADD",
            key: key.to_owned(),
            reply: String::from_utf8_lossy(&raw[..raw.len().min(64)]).into_owned(),
        })
    }

    fn xadd(key: &str, entry: &EncodedEvent) -> Cmd {
        // Sized up front: growing the argument buffers one field at a time cost more than
        // encoding the event.
        let mut cmd = Cmd::with_capacity(3 + 2 * entry.len(), 6 + key.len() + entry.byte_len());
        cmd.arg("XADD").arg(key).arg("*");
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

    /// Appends one entry: directly, or in a pipeline with the appends of other tasks made
    /// meanwhile.
    pub(crate) async fn append_one(&self, key: &str, entry: &EncodedEvent) -> Result<MessageId> {
        let reply = match self.appends.route(key, Self::xadd(key, entry)) {
            Route::Direct(cmd) => {
                let _direct = DirectGuard(&self.appends);
                let mut conn = self.conn.clone();
                let raw: Vec<u8> = cmd
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| self.error("XADD", key, e))?;
                return Self::parse_id(key, &raw);
            }
            Route::Queued {
                reply,
                start_flusher,
            } => {
                if start_flusher {
                    let flusher = Flusher {
                        conn: self.conn.clone(),
                        appends: self.appends.clone(),
                        response_timeout: self.response_timeout,
                    };
                    tokio::spawn(flusher.run());
                }
                reply
            }
        };
        match reply.await {
            Ok(result) => result,
            Err(_) => Err(Error::Redis {
                command: "XADD",
                key: key.to_owned(),
                source: RedisError::from((
                    ErrorKind::Client,
                    "the append was dropped before its reply arrived: its runtime is shutting down",
                )),
            }),
        }
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

/// Sends queued appends (a task of its own, so that a caller that stops waiting does not stop
/// the others' appends).
struct Flusher {
    conn: super::Conn,
    appends: Arc<Appends>,
    response_timeout: Duration,
}

impl Flusher {
    /// Sends queued appends, a pipeline at a time, until the queue is empty.
    async fn run(self) {
        let appends = self.appends.clone();
        let mut guard = FlusherGuard {
            appends: &appends,
            done: false,
        };
        while let Some(jobs) = appends.take() {
            let mut pipe = Pipeline::with_capacity(jobs.len());
            pipe.ignore_errors();
            let mut waiting = Vec::with_capacity(jobs.len());
            for job in jobs {
                pipe.add_command(job.cmd);
                waiting.push((job.key, job.done));
            }
            let mut conn = self.conn.clone();
            let replies: RedisResult<Vec<RedisResult<Vec<u8>>>> = pipe.query_async(&mut conn).await;
            match replies {
                Ok(replies) if replies.len() == waiting.len() => {
                    for ((key, done), reply) in waiting.into_iter().zip(replies) {
                        let result = reply
                            .map_err(|e| redis_error(self.response_timeout, "XADD", &key, e))
                            .and_then(|raw| RedisTransport::parse_id(&key, &raw));
                        let _ = done.send(result);
                    }
                }
                Ok(replies) => {
                    let n = replies.len();
                    for (key, done) in waiting {
                        let _ = done.send(Err(Error::UnexpectedReply {
                            command: "XADD",
                            reply: format!("{n} replies to a pipeline of appends"),
                            key,
                        }));
                    }
                }
                Err(e) => {
                    for (key, done) in waiting {
                        let _ = done.send(Err(redis_error(
                            self.response_timeout,
                            "XADD",
                            &key,
                            e.clone(),
                        )));
                    }
                }
            }
        }
        guard.done = true;
    }
}
