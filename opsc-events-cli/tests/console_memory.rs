//! The console on the embedded broker (as `examples/console.rs` runs it): a service with a
//! handler that refuses every event, the console on the same broker with its own runtime; the
//! overview, the dead letters, a replay, and a group's reset and removal work as on Redis.

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
        .memory_with(broker.clone())
        .no_handlers()
        .build()
        .await
        .expect("admin runtime");
    // A second handle on the same broker, to publish while the console holds the first.
    let broker_admin = Runtime::builder()
        .service("opsc-publisher")
        .memory_with(broker)
        .no_handlers()
        .build()
        .await
        .expect("publishing runtime");
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

    // The service stops; two more memos wait for its group, which an operator skips.
    let _ = stop.send(());
    running.await.expect("service task").expect("service ran");
    let group_of = |v: &serde_json::Value| v["streams"][0]["groups"][0].clone();
    eventually(|| async {
        let g = group_of(&get_json(a, "/api/groups?stream=memo").await);
        (g["pending"] == 0).then_some(())
    })
    .await;
    broker_admin
        .publisher()
        .publish_all(&[Memo { n: 3 }, Memo { n: 4 }])
        .await
        .expect("publish");
    let g = group_of(&get_json(a, "/api/groups?stream=memo").await);
    assert_eq!(
        (g["group"].clone(), g["lag"].clone()),
        (json!("memo.refuse"), json!(2)),
        "{g}"
    );
    let reset = post(
        a,
        "/api/groups/reset",
        &json!({ "stream": "memo", "group": "memo.refuse", "to": "latest" }),
    )
    .await;
    assert_eq!(reset.status, 200, "{}", reset.text());
    assert_eq!(reset.json()["reset"], true);
    let g = group_of(&get_json(a, "/api/groups?stream=memo").await);
    assert_eq!(g["lag"], 0, "skipped to the latest entry: {g}");
    let back = post(
        a,
        "/api/groups/reset",
        &json!({ "stream": "memo", "group": "memo.refuse", "to": "earliest" }),
    )
    .await;
    assert_eq!(back.status, 200, "{}", back.text());
    let g = group_of(&get_json(a, "/api/groups?stream=memo").await);
    assert_eq!(g["lag"], 4, "the whole stream again: {g}");

    let dry = post(
        a,
        "/api/groups/remove",
        &json!({ "stream": "memo", "group": "memo.refuse", "dry_run": true }),
    )
    .await;
    assert_eq!(dry.status, 200, "{}", dry.text());
    assert_eq!(dry.json()["would"], "remove");
    let removal = post(
        a,
        "/api/groups/remove",
        &json!({ "stream": "memo", "group": "memo.refuse" }),
    )
    .await;
    assert_eq!(removal.status, 200, "{}", removal.text());
    assert_eq!(removal.json()["removed"], true);
    let groups = get_json(a, "/api/groups?stream=memo").await;
    assert_eq!(groups["streams"][0]["groups"], json!([]), "{groups}");
    let again = post(
        a,
        "/api/groups/remove",
        &json!({ "stream": "memo", "group": "memo.refuse" }),
    )
    .await;
    assert_eq!(again.status, 404, "{}", again.text());
    console.stop().await;
}
