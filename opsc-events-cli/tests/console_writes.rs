//! The console's writes over its JSON API: a dry run first, replay and purge of one letter, a
//! selection or a filter through the runtime's `DeadLetters`, and group removal.

mod cli_support;
mod console_support;

use cli_support::{conn, snapshot};
use console_support::{
    get_json, group, letter_ids, post, runtime, seed_all, serve, stream, writable,
};
use opsc_events_testkit::RedisServer;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_counts_and_changes_nothing_then_replay_reschedules_the_letter() {
    let server = RedisServer::start();
    let s = seed_all(&server);
    let console = writable(&server).await;
    let a = console.addr;
    let mut c = conn(&server);
    let before = snapshot(&mut c);
    let dry = post(
        a,
        "/api/dead-letters/replay",
        &json!({ "stream": "orders", "dry_run": true }),
    )
    .await;
    assert_eq!(dry.status, 200, "{}", dry.text());
    assert_eq!(dry.json()["count"], 2);
    assert_eq!(dry.json()["letters"].as_array().expect("sample").len(), 2);
    let dry_one = post(
        a,
        "/api/dead-letters/replay",
        &json!({ "stream": "orders", "ids": [s.orders_panic], "dry_run": true }),
    )
    .await;
    assert_eq!(dry_one.json()["count"], 1, "{}", dry_one.text());
    assert!(snapshot(&mut c) == before, "a dry run changed a key");

    let done = post(
        a,
        "/api/dead-letters/replay",
        &json!({ "stream": "orders", "ids": [s.orders_panic] }),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.text());
    assert_eq!(done.json()["count"], 1);
    let left = get_json(a, "/api/dead-letters?stream=orders").await;
    assert_eq!(letter_ids(&left), vec![s.orders_error.clone()]);
    let ov = get_json(a, "/api/overview").await;
    let orders = stream(&ov, "orders");
    assert_eq!(orders["dead_letters"], 1);
    assert_eq!(
        group(orders, "billing.charge")["scheduled"],
        1,
        "the letter is back in the retry schedule"
    );
    // An id that names no letter replays nothing (and not its neighbour).
    let none = post(
        a,
        "/api/dead-letters/replay",
        &json!({ "stream": "orders", "ids": [s.orders_panic] }),
    )
    .await;
    assert_eq!(none.json()["count"], 0);
    assert_eq!(
        letter_ids(&get_json(a, "/api/dead-letters?stream=orders").await),
        vec![s.orders_error]
    );
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_takes_a_filter_or_a_selection() {
    let server = RedisServer::start();
    let s = seed_all(&server);
    let console = writable(&server).await;
    let a = console.addr;
    let dry = post(
        a,
        "/api/dead-letters/purge",
        &json!({ "reason": "panic", "dry_run": true }),
    )
    .await;
    assert_eq!(dry.json()["count"], 1, "{}", dry.text());
    let done = post(a, "/api/dead-letters/purge", &json!({ "reason": "panic" })).await;
    assert_eq!(done.json()["count"], 1, "{}", done.text());
    assert_eq!(done.json()["streams"], json!({ "orders": 1 }));
    let left = get_json(a, "/api/dead-letters").await;
    let mut left_ids = letter_ids(&left);
    left_ids.sort();
    let mut want = vec![s.orders_error.clone(), s.pings_letter.clone()];
    want.sort();
    assert_eq!(left_ids, want);
    assert_eq!(letter_ids(&left).len(), 2);
    assert!(!letter_ids(&left).contains(&s.orders_panic));
    let sel = post(
        a,
        "/api/dead-letters/purge",
        &json!({ "stream": "pings", "ids": [s.pings_letter] }),
    )
    .await;
    assert_eq!(sel.json()["count"], 1);
    assert_eq!(
        letter_ids(&get_json(a, "/api/dead-letters").await),
        vec![s.orders_error]
    );
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_is_removed_after_a_dry_run_as_opsc_groups_remove_does() {
    let server = RedisServer::start();
    seed_all(&server);
    let console = writable(&server).await;
    let a = console.addr;
    let mut c = conn(&server);
    let before = snapshot(&mut c);
    let body = json!({ "stream": "orders", "group": "billing.charge", "dry_run": true });
    let dry = post(a, "/api/groups/remove", &body).await;
    assert_eq!(dry.status, 200, "{}", dry.text());
    let dry = dry.json();
    assert_eq!(
        (
            dry["would"].clone(),
            dry["pending"].clone(),
            dry["lag"].clone()
        ),
        (json!("remove"), json!(1), json!(1))
    );
    assert!(snapshot(&mut c) == before, "a dry run changed a key");
    let missing = post(
        a,
        "/api/groups/remove",
        &json!({ "stream": "orders", "group": "no.such" }),
    )
    .await;
    assert_eq!(missing.status, 404, "{}", missing.text());
    let done = post(
        a,
        "/api/groups/remove",
        &json!({ "stream": "orders", "group": "billing.charge" }),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.text());
    assert_eq!(done.json()["removed"], true);
    let groups = get_json(a, "/api/groups?stream=orders").await;
    assert_eq!(groups["streams"][0]["groups"], json!([]));
    console.stop().await;

    let read_only = serve(runtime(&server.url()).await, |o| o).await;
    let r = post(
        read_only.addr,
        "/api/groups/remove",
        &json!({ "stream": "pings", "group": "svc.handler" }),
    )
    .await;
    assert_eq!(r.status, 403);
    read_only.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_is_reset_after_a_dry_run_as_opsc_groups_reset_does() {
    let server = RedisServer::start();
    seed_all(&server);
    let console = writable(&server).await;
    let a = console.addr;
    let mut c = conn(&server);
    let before = snapshot(&mut c);
    let dry = post(
        a,
        "/api/groups/reset",
        &json!({ "stream": "pings", "group": "svc.handler", "to": "latest", "dry_run": true }),
    )
    .await;
    assert_eq!(dry.status, 200, "{}", dry.text());
    assert_eq!(
        (dry.json()["would"].clone(), dry.json()["lag"].clone()),
        (json!("reset"), json!(3))
    );
    assert!(snapshot(&mut c) == before, "a dry run changed a key");
    for bad in [
        json!({ "stream": "pings", "group": "svc.handler", "to": "now" }),
        json!({ "stream": "pings", "group": "svc.handler" }),
    ] {
        let r = post(a, "/api/groups/reset", &bad).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    let missing = post(
        a,
        "/api/groups/reset",
        &json!({ "stream": "pings", "group": "no.such", "to": "latest" }),
    )
    .await;
    assert_eq!(missing.status, 404);
    let done = post(
        a,
        "/api/groups/reset",
        &json!({ "stream": "pings", "group": "svc.handler", "to": "latest" }),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.text());
    assert_eq!(done.json()["reset"], true);
    let ov = get_json(a, "/api/overview").await;
    assert_eq!(group(stream(&ov, "pings"), "svc.handler")["lag"], 0);
    console.stop().await;
}
