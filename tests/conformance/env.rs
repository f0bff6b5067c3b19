//! The transports the conformance behaviours run against: Redis, Redis over TLS (mutual TLS,
//! the test's own CA), Redis found through Sentinel (three sentinels monitoring a master), and
//! the embedded broker.

use std::time::Duration;

use opsc_events::RuntimeBuilder;
use opsc_events::prelude::*;
use opsc_events_testkit::{RedisServer, SentinelSet, ServerOptions};

/// A fresh transport for one behaviour: a private redis-server, or a new embedded broker.
pub enum Env {
    Redis(RedisServer),
    /// Reached only through its TLS port.
    RedisTls(RedisServer),
    /// A master reached only through its sentinels.
    Sentinel(SentinelSet),
    Memory(MemoryBroker),
}

impl Env {
    pub fn redis() -> Env {
        crate::common::init_tracing();
        Env::Redis(RedisServer::start())
    }

    pub fn redis_tls() -> Env {
        crate::common::init_tracing();
        Env::RedisTls(RedisServer::start_with(ServerOptions::tls()))
    }

    pub fn sentinel() -> Env {
        crate::common::init_tracing();
        Env::Sentinel(SentinelSet::start(0))
    }

    pub fn memory() -> Env {
        crate::common::init_tracing();
        Env::Memory(MemoryBroker::new())
    }

    /// A builder on this transport, service `conf`, short shutdown timeout.
    pub fn builder(&self) -> RuntimeBuilder {
        let b = Runtime::builder()
            .service("conf")
            .shutdown_timeout(Duration::from_secs(2));
        match self {
            Env::Redis(server) => b.redis(server.url()),
            Env::RedisTls(server) => {
                let tls = server.tls().expect("a TLS server");
                b.redis(server.tls_url())
                    .tls_ca_file(&tls.ca)
                    .tls_client_cert_files(&tls.client_cert, &tls.client_key)
            }
            Env::Sentinel(set) => b.redis_sentinel(set.master_name(), set.sentinel_urls()),
            Env::Memory(broker) => b.memory_with(broker.clone()),
        }
    }

    /// A publish-only runtime on this transport.
    pub async fn publisher(&self) -> Runtime {
        self.builder()
            .no_handlers()
            .build()
            .await
            .expect("publisher builds")
    }
}

/// Runs a runtime in the background until stopped.
pub struct Running(
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<opsc_events::Result<()>>,
);

pub fn spawn(rt: Runtime) -> Running {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    Running(
        tx,
        tokio::spawn(rt.run_until(async move {
            let _ = rx.await;
        })),
    )
}

impl Running {
    pub async fn stop(self) {
        let _ = self.0.send(());
        self.1.await.expect("runtime task").expect("runtime result");
    }
}
