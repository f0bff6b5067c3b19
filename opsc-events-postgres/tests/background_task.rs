//! The runtime hook the relay runs on (`RuntimeBuilder::background_task`): a task started by
//! `run` with the runtime's publisher, stopped by its shutdown, and supervised — one that fails
//! or ends early stops the runtime with an error naming it.

// Test code: unwrapping is how a test fails.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use opsc_events::Error;
use opsc_events::prelude::*;
use opsc_events_runtime::runtime::BackgroundTask;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "hook-pings", name = "ping", version = 1)]
struct Ping {
    n: u32,
}

async fn run_with(
    task: BackgroundTask,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> opsc_events::Result<()> {
    let rt = Runtime::builder()
        .service("hook")
        .memory()
        .no_handlers()
        .background_task(task)
        .build()
        .await?;
    tokio::time::timeout(Duration::from_secs(10), rt.run_until(shutdown))
        .await
        .expect("run ends")
}

#[tokio::test]
async fn a_background_task_that_fails_stops_the_runtime_naming_it() {
    let task = BackgroundTask::new("outbox relay", |_, _| {
        Box::pin(async { Err("boom".to_owned()) })
    });
    let err = run_with(task, std::future::pending()).await.unwrap_err();
    assert!(
        matches!(&err, Error::TaskFailed { task: "outbox relay", reason } if reason == "boom"),
        "{err}"
    );
}

#[tokio::test]
async fn a_background_task_that_ends_before_the_stop_is_a_failure() {
    let task = BackgroundTask::new("outbox relay", |_, _| Box::pin(async { Ok(()) }));
    let err = run_with(task, std::future::pending()).await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::TaskFailed {
                task: "outbox relay",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_background_task_publishes_through_the_runtime_and_stops_at_the_shutdown() {
    let broker = MemoryBroker::new();
    let (published, got) = tokio::sync::oneshot::channel();
    let task = BackgroundTask::new("pinger", move |publisher, stop| {
        Box::pin(async move {
            publisher
                .publish(&Ping { n: 1 })
                .await
                .map_err(|e| e.to_string())?;
            let _ = published.send(());
            stop.cancelled().await;
            Ok(())
        })
    });
    let rt = Runtime::builder()
        .service("hook")
        .memory_with(broker.clone())
        .no_handlers()
        .background_task(task)
        .build()
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        rt.run_until(async move {
            let _ = got.await;
        }),
    )
    .await
    .expect("run ends at the shutdown")
    .unwrap();
    let reader = Runtime::builder()
        .service("hook")
        .memory_with(broker)
        .no_handlers()
        .build()
        .await
        .unwrap();
    assert_eq!(reader.read("hook-pings", None, 10).await.unwrap().len(), 1);
}
