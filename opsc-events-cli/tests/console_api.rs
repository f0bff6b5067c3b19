//! The console's JSON API (docs/OPERATIONS.md § Console API), reads: every endpoint the page
//! uses, against a private Redis seeded as a publisher in any language would write it.
//! Writes: console_writes.rs; security: console_security.rs.

mod cli_support;
mod console_support;

use cli_support::{conn, entry, xadd};
use console_support::{
    get_json, group, http, letter_ids, now_ms, post, runtime, seed_all, serve, stream, writable,
};
use opsc_events_runtime::keys::Keys;
use opsc_events_testkit::RedisServer;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn the_overview_is_paged_in_name_order_and_stream_names_are_one_cheap_call() {
    let server = RedisServer::start();
    seed_all(&server);
    // 25 more streams (one entry each): 27 in all.
    let keys = Keys::new("opsconductor");
    let mut c = conn(&server);
    for i in 0..25 {
        xadd(&mut c, &keys.events(&format!("s{i:02}")), &entry(i));
    }
    let console = serve(runtime(&server.url()).await, |o| o).await;
    let names = get_json(console.addr, "/api/streams").await;
    let names: Vec<String> = serde_json::from_value(names["streams"].clone()).expect("names");
    assert_eq!(names.len(), 27);
    assert!(names.windows(2).all(|w| w[0] < w[1]), "in order: {names:?}");

    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = get_json(
            console.addr,
            &format!("/api/overview?offset={offset}&limit=10"),
        )
        .await;
        assert_eq!(page["total"], 27, "{page}");
        assert_eq!(page["limit"], 10);
        let streams = page["streams"].as_array().expect("streams");
        if streams.is_empty() {
            break;
        }
        assert!(streams.len() <= 10);
        seen.extend(
            streams
                .iter()
                .map(|s| s["stream"].as_str().expect("name").to_owned()),
        );
        offset += 10;
    }
    assert_eq!(
        seen, names,
        "the pages together are every stream once, in order"
    );
    // The groups view is paged the same way.
    let first = get_json(console.addr, "/api/groups?limit=10").await;
    let second = get_json(console.addr, "/api/groups?offset=10&limit=10").await;
    assert_eq!(
        (first["total"].clone(), second["offset"].clone()),
        (json!(27), json!(10))
    );
    let names_of = |v: &Value| -> Vec<String> {
        v["streams"]
            .as_array()
            .expect("streams")
            .iter()
            .map(|s| s["stream"].as_str().expect("name").to_owned())
            .collect()
    };
    assert_eq!(names_of(&first), names[..10]);
    assert_eq!(names_of(&second), names[10..20]);
    let default = get_json(console.addr, "/api/overview").await;
    assert_eq!(default["streams"].as_array().expect("streams").len(), 27);
    assert_eq!(default["limit"], 100);
    for bad in ["limit=0", "limit=1001", "offset=-1", "page=2"] {
        let r = http(
            console.addr,
            "GET",
            &format!("/api/overview?{bad}"),
            &[],
            None,
        )
        .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn overview_counts_every_stream_and_group() {
    let server = RedisServer::start();
    seed_all(&server);
    let console = serve(runtime(&server.url()).await, |o| o).await;
    let ov = get_json(console.addr, "/api/overview").await;
    assert_eq!(ov["streams"].as_array().expect("streams").len(), 2, "{ov}");
    let pings = stream(&ov, "pings");
    assert_eq!(pings["length"], 3);
    assert_eq!(pings["dead_letters"], 1);
    let g = group(pings, "svc.handler");
    assert_eq!(
        (
            g["lag"].clone(),
            g["pending"].clone(),
            g["consumers"].clone()
        ),
        (json!(3), json!(0), json!(0))
    );
    let orders = stream(&ov, "orders");
    assert_eq!(orders["length"], 2);
    assert_eq!(orders["dead_letters"], 2);
    let g = group(orders, "billing.charge");
    assert_eq!(
        (
            g["lag"].clone(),
            g["pending"].clone(),
            g["consumers"].clone()
        ),
        (json!(1), json!(1), json!(1))
    );
    assert!(g["oldest_pending_age_ms"].as_u64().is_some(), "{g}");
    assert_eq!(g["scheduled"], 0);
    // Each answer is a sample of the charts.
    assert_eq!(orders["history"].as_array().expect("history").len(), 1);
    assert_eq!(orders["history"][0]["length"], 2);
    assert_eq!(orders["history"][0]["lag"], 1);
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_are_listed_by_filter_and_shown_in_full() {
    let server = RedisServer::start();
    let s = seed_all(&server);
    let console = serve(runtime(&server.url()).await, |o| o).await;
    let a = console.addr;
    let all = get_json(a, "/api/dead-letters").await;
    assert_eq!(letter_ids(&all).len(), 3, "{all}");
    let orders = get_json(a, "/api/dead-letters?stream=orders").await;
    assert_eq!(
        letter_ids(&orders),
        vec![s.orders_error.clone(), s.orders_panic.clone()]
    );
    let by_group = get_json(a, "/api/dead-letters?group=svc.handler").await;
    assert_eq!(letter_ids(&by_group), vec![s.pings_letter.clone()]);
    let by_reason = get_json(a, "/api/dead-letters?reason=panic").await;
    assert_eq!(letter_ids(&by_reason), vec![s.orders_panic.clone()]);
    // Age: failed within the last hour / before an hour ago.
    let hour_ago = now_ms() - 3_600_000;
    let recent = get_json(
        a,
        &format!("/api/dead-letters?stream=orders&since={hour_ago}"),
    )
    .await;
    assert_eq!(letter_ids(&recent), vec![s.orders_panic.clone()]);
    let old = get_json(
        a,
        &format!("/api/dead-letters?stream=orders&until={hour_ago}"),
    )
    .await;
    assert_eq!(letter_ids(&old), vec![s.orders_error.clone()]);
    let page = get_json(a, "/api/dead-letters?stream=orders&limit=1").await;
    assert_eq!(letter_ids(&page), vec![s.orders_error.clone()]);
    let next = get_json(
        a,
        &format!(
            "/api/dead-letters?stream=orders&limit=1&after={}",
            s.orders_error
        ),
    )
    .await;
    assert_eq!(letter_ids(&next), vec![s.orders_panic.clone()]);

    let full = get_json(a, &format!("/api/dead-letters/orders/{}", s.orders_panic)).await;
    assert_eq!(full["reason"], "panic");
    assert_eq!(full["error"], "handler timed out");
    assert_eq!(full["attempts"], 4);
    assert_eq!(full["group"], "billing.charge");
    assert!(full["first_failed_at"].as_u64().is_some() && full["failed_at"].as_u64().is_some());
    assert_eq!(
        full["data"],
        json!({ "n": 0 }),
        "the payload decoded: {full}"
    );
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn entries_are_newest_first_and_searchable() {
    let server = RedisServer::start();
    seed_all(&server);
    let console = serve(runtime(&server.url()).await, |o| o).await;
    let a = console.addr;
    let all = get_json(a, "/api/streams/pings/entries").await;
    let entries = all["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 3);
    let ns: Vec<&Value> = entries.iter().map(|e| &e["data"]["n"]).collect();
    assert_eq!(
        ns,
        vec![&json!(2), &json!(1), &json!(0)],
        "newest first, payload decoded"
    );
    for key in [
        "event_type",
        "version",
        "event_id",
        "correlation_id",
        "headers",
        "timestamp",
    ] {
        assert!(entries[0].get(key).is_some(), "{key} in {}", entries[0]);
    }
    let two = get_json(a, "/api/streams/pings/entries?limit=2").await;
    assert_eq!(two["entries"].as_array().expect("entries").len(), 2);
    let older = get_json(
        a,
        &format!(
            "/api/streams/pings/entries?before={}",
            two["entries"][1]["id"].as_str().expect("id")
        ),
    )
    .await;
    assert_eq!(older["entries"][0]["data"]["n"], 0);
    let event_id = entries[1]["event_id"].as_str().expect("event id");
    let found = get_json(
        a,
        &format!("/api/streams/pings/entries?event_id={event_id}"),
    )
    .await;
    assert_eq!(found["entries"].as_array().expect("entries").len(), 1);
    assert_eq!(found["entries"][0]["data"]["n"], 1);
    let corr = entries[2]["correlation_id"]
        .as_str()
        .expect("correlation id");
    let found = get_json(
        a,
        &format!("/api/streams/pings/entries?correlation_id={corr}"),
    )
    .await;
    assert_eq!(found["entries"][0]["data"]["n"], 0);
    let nothing = get_json(
        a,
        "/api/streams/pings/entries?event_id=00000000-0000-0000-0000-000000000000",
    )
    .await;
    assert_eq!(nothing["entries"], json!([]));
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_correlation_shows_a_conversation_in_order_across_streams() {
    let server = RedisServer::start();
    let keys = Keys::new("opsconductor");
    let mut c = conn(&server);
    let corr = uuid::Uuid::now_v7().to_string();
    let with = |n: u64, ts: &str| {
        let mut e = entry(n);
        for (k, v) in e.iter_mut() {
            if *k == "correlation_id" {
                *v = corr.clone().into_bytes();
            }
            if *k == "timestamp" {
                *v = ts.as_bytes().to_vec();
            }
        }
        e
    };
    // Written out of time order across two streams, with an unrelated event between.
    xadd(&mut c, &keys.events("shipping"), &with(3, "1700000000300"));
    xadd(&mut c, &keys.events("orders"), &with(1, "1700000000100"));
    xadd(&mut c, &keys.events("orders"), &entry(99));
    xadd(&mut c, &keys.events("billing"), &with(2, "1700000000200"));
    let console = serve(runtime(&server.url()).await, |o| o).await;
    let conv = get_json(console.addr, &format!("/api/correlation/{corr}")).await;
    let got: Vec<(Value, Value)> = conv["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| (e["stream"].clone(), e["data"]["n"].clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (json!("orders"), json!(1)),
            (json!("billing"), json!(2)),
            (json!("shipping"), json!(3))
        ]
    );
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn groups_show_consumers_and_flag_stale_groups() {
    let server = RedisServer::start();
    seed_all(&server);
    let console = serve(runtime(&server.url()).await, |o| {
        o.stale_after(std::time::Duration::from_millis(1))
    })
    .await;
    let a = console.addr;
    // Stale after 1ms: `c1` read once and was idle since.
    let groups = console_support::eventually(|| async {
        let g = get_json(a, "/api/groups?stream=orders").await;
        (g["streams"][0]["groups"][0]["stale"] == true).then_some(g)
    })
    .await;
    let g = &groups["streams"][0]["groups"][0];
    assert_eq!(g["group"], "billing.charge");
    assert_eq!(g["consumer_list"][0]["name"], "c1");
    assert_eq!(g["consumer_list"][0]["pending"], 1);
    assert!(g["consumer_list"][0]["idle_ms"].as_u64().is_some());
    let fresh = serve(runtime(&server.url()).await, |o| o).await;
    let g = get_json(fresh.addr, "/api/groups?stream=orders").await;
    assert_eq!(
        g["streams"][0]["groups"][0]["stale"], false,
        "not stale within the default hour"
    );
    console.stop().await;
    fresh.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_a_400_and_unknown_things_a_404() {
    let server = RedisServer::start();
    seed_all(&server);
    let console = writable(&server).await;
    let a = console.addr;
    for path in [
        "/api/streams/Bad*Name/entries",
        "/api/streams/pings/entries?limit=0",
        "/api/streams/pings/entries?before=not-an-id",
        "/api/dead-letters?group=a%20b",
        "/api/dead-letters?after=1-0",
        "/api/dead-letters?since=10&until=5",
        "/api/dead-letters/pings/xyz",
        "/api/correlation/not-a-uuid",
        "/api/dead-letters?unknown=1",
    ] {
        let r = http(a, "GET", path, &[], None).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text());
    }
    for body in [
        json!({ "ids": ["1-0"] }),
        json!({ "stream": "orders", "ids": [] }),
        json!({ "stream": "orders", "bogus": 1 }),
    ] {
        let r = post(a, "/api/dead-letters/replay", &body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
    }
    assert_eq!(
        http(a, "GET", "/api/dead-letters/pings/1-0", &[], None)
            .await
            .status,
        404
    );
    assert_eq!(http(a, "GET", "/api/nothing", &[], None).await.status, 404);
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_is_embedded_and_served_under_a_strict_policy() {
    let server = RedisServer::start();
    let console = serve(runtime(&server.url()).await, |o| o).await;
    let a = console.addr;
    let page = http(a, "GET", "/", &[], None).await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .expect("type")
            .starts_with("text/html")
    );
    assert!(page.text().contains("/assets/app.js"));
    let csp = page.header("content-security-policy").expect("CSP");
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    let js = http(a, "GET", "/assets/app.js", &[], None).await;
    assert!(
        js.header("content-type")
            .expect("type")
            .starts_with("text/javascript")
    );
    assert!(js.text().contains("/api/overview"));
    let css = http(a, "GET", "/assets/style.css", &[], None).await;
    assert!(
        css.header("content-type")
            .expect("type")
            .starts_with("text/css")
    );
    console.stop().await;
}
