//! The console on the embedded broker (as `examples/console.rs` runs it): a service with a
//! handler that refuses every event, the console on the same broker with its own runtime; the
//! overview, the dead letters and a replay work as on Redis, and what only Redis can do (group
//! removal) is refused with an error, not a panic.

mod cli_support;
mod console_support;

use console_support::{eventually, get_json, letter_ids, post, serve, stream};
use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "memo")]
pub struct Memo {
    pub n: u64,
}

#[handler(stream = "memo")]
async fn refuse(event: Memo) -> Result<(), HandlerError> {
    Err(HandlerError::permanent(format!("memo {} refused", event.n)))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_serves_the_embedded_broker() {
    let broker = opsc_events::MemoryBroker::new();
    let service = Runtime::builder()
        .service("memo")
        .memory_with(broker.clone())
        .build()
        .await
        .expect("service");
    service
        .publisher()
        .publish_all(&[Memo { n: 1 }, Memo { n: 2 }])
        .await
        .expect("publish");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(service.run_until(async move {
        let _ = stopped.await;
    }));
    let admin = Runtime::builder()
        .service("opsc")
        .memory_with(broker)
        .no_handlers()
        .build()
        .await
        .expect("admin runtime");
    let console = serve(admin, |o| o.allow_writes(true)).await;
    let a = console.addr;
    assert_eq!(get_json(a, "/api/session").await["transport"], "memory");
    let letters = eventually(|| async {
        let l = get_json(a, "/api/dead-letters?stream=memo").await;
        (letter_ids(&l).len() == 2).then_some(l)
    })
    .await;
    let ov = get_json(a, "/api/overview").await;
    let memo = stream(&ov, "memo");
    assert_eq!(
        (memo["length"].clone(), memo["dead_letters"].clone()),
        (json!(2), json!(2))
    );
    let entries = get_json(a, "/api/streams/memo/entries").await;
    assert_eq!(
        entries["entries"][0]["data"],
        json!({ "n": 2 }),
        "newest first, decoded"
    );

    let first = letter_ids(&letters)[0].clone();
    let shown = get_json(a, &format!("/api/dead-letters/memo/{first}")).await;
    assert_eq!(shown["error"], "memo 1 refused");
    let dry = post(
        a,
        "/api/dead-letters/replay",
        &json!({ "stream": "memo", "ids": [first], "dry_run": true }),
    )
    .await;
    assert_eq!(dry.json()["count"], 1, "{}", dry.text());
    let done = post(
        a,
        "/api/dead-letters/replay",
        &json!({ "stream": "memo", "ids": [first] }),
    )
    .await;
    assert_eq!(done.json()["count"], 1, "{}", done.text());
    assert!(!letter_ids(&get_json(a, "/api/dead-letters?stream=memo").await).contains(&first));

    let removal = post(
        a,
        "/api/groups/remove",
        &json!({ "stream": "memo", "group": "memo.refuse" }),
    )
    .await;
    assert_eq!(removal.status, 502, "{}", removal.text());
    assert!(
        removal.json()["error"]
            .as_str()
            .expect("error")
            .contains("not a Redis transport")
    );

    let _ = stop.send(());
    running.await.expect("service task").expect("service ran");
    console.stop().await;
}
