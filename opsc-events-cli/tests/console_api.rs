//! The console's JSON API (docs/OPERATIONS.md § Console API), against a private Redis seeded as
//! a publisher in any language would write it: every endpoint the page uses, and the security
//! rules at the HTTP level (token, read-only, CSRF, origin, host).

mod cli_support;
mod console_support;

use cli_support::{conn, entry, snapshot, xadd};
use console_support::{Served, csrf, get_json, http, now_ms, post, runtime, seed_all, serve};
use opsc_events_cli::console::{Console, ConsoleError, ConsoleOptions, Token};
use opsc_events_runtime::keys::Keys;
use opsc_events_testkit::RedisServer;
use serde_json::{Value, json};

async fn writable(server: &RedisServer) -> Served {
    serve(runtime(&server.url()).await, |o| o.allow_writes(true)).await
}

fn stream<'a>(overview: &'a Value, name: &str) -> &'a Value {
    overview["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .find(|s| s["stream"] == name)
        .unwrap_or_else(|| panic!("no stream {name} in {overview}"))
}

fn group<'a>(stream: &'a Value, name: &str) -> &'a Value {
    stream["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["group"] == name)
        .unwrap_or_else(|| panic!("no group {name} in {stream}"))
}

fn letter_ids(v: &Value) -> Vec<String> {
    v["letters"]
        .as_array()
        .expect("letters")
        .iter()
        .map(|l| l["id"].as_str().expect("id").to_owned())
        .collect()
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
async fn a_write_without_the_csrf_token_or_from_another_origin_is_refused() {
    let server = RedisServer::start();
    let s = seed_all(&server);
    let console = writable(&server).await;
    let a = console.addr;
    let mut c = conn(&server);
    let before = snapshot(&mut c);
    let body = json!({ "stream": "orders", "ids": [s.orders_panic] }).to_string();
    let token = csrf(a).await;
    let refused = [
        http(a, "POST", "/api/dead-letters/purge", &[], Some(&body)).await,
        http(
            a,
            "POST",
            "/api/dead-letters/purge",
            &[("x-opsc-csrf", "0".repeat(64).as_str())],
            Some(&body),
        )
        .await,
        http(
            a,
            "POST",
            "/api/dead-letters/purge",
            &[("x-opsc-csrf", &token), ("Origin", "http://evil.example")],
            Some(&body),
        )
        .await,
    ];
    for r in &refused {
        assert_eq!(r.status, 403, "{}", r.text());
        assert!(r.json()["error"].is_string());
    }
    // A form post (not JSON) is refused too.
    let form = http(
        a,
        "POST",
        "/api/dead-letters/purge",
        &[
            ("x-opsc-csrf", &token),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        Some("stream=orders"),
    )
    .await;
    assert_eq!(form.status, 400, "{}", form.text());
    let put = http(
        a,
        "PUT",
        "/api/dead-letters/purge",
        &[("x-opsc-csrf", &token)],
        Some(&body),
    )
    .await;
    assert_eq!(put.status, 405);
    assert!(snapshot(&mut c) == before, "a refused write changed a key");
    // The same write, from the console's own origin with the token, goes through.
    let origin = format!("http://{a}");
    let ok = http(
        a,
        "POST",
        "/api/dead-letters/purge",
        &[("x-opsc-csrf", &token), ("Origin", &origin)],
        Some(&body),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json()["count"], 1);
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn read_only_refuses_every_write() {
    let server = RedisServer::start();
    let s = seed_all(&server);
    let console = serve(runtime(&server.url()).await, |o| o).await;
    let a = console.addr;
    let session = get_json(a, "/api/session").await;
    assert_eq!(session["writes"], false);
    let mut c = conn(&server);
    let before = snapshot(&mut c);
    for path in ["/api/dead-letters/replay", "/api/dead-letters/purge"] {
        let r = post(
            a,
            path,
            &json!({ "stream": "orders", "ids": [s.orders_panic] }),
        )
        .await;
        assert_eq!(r.status, 403, "{path}: {}", r.text());
        assert!(
            r.json()["error"]
                .as_str()
                .expect("error")
                .contains("--allow-writes")
        );
        let dry = post(a, path, &json!({ "stream": "orders", "dry_run": true })).await;
        assert_eq!(dry.status, 403, "{path}: {}", dry.text());
    }
    assert!(snapshot(&mut c) == before);
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_guards_every_api_request() {
    let server = RedisServer::start();
    seed_all(&server);
    let token = "tok-0123456789abcdef";
    let console = serve(runtime(&server.url()).await, |o| {
        o.token(Token::new(token).expect("token"))
            .allow_writes(true)
    })
    .await;
    let a = console.addr;
    for path in [
        "/api/session",
        "/api/overview",
        "/api/dead-letters",
        "/api/groups",
    ] {
        let none = http(a, "GET", path, &[], None).await;
        assert_eq!(none.status, 401, "{path}");
        assert_eq!(none.header("www-authenticate"), Some("Bearer"));
        let wrong = http(
            a,
            "GET",
            path,
            &[("Authorization", "Bearer tok-0123456789abcdeF")],
            None,
        )
        .await;
        assert_eq!(wrong.status, 401, "{path}");
        let right = http(
            a,
            "GET",
            path,
            &[("Authorization", &format!("Bearer {token}"))],
            None,
        )
        .await;
        assert_eq!(right.status, 200, "{path}: {}", right.text());
    }
    let write = http(a, "POST", "/api/dead-letters/purge", &[], Some("{}")).await;
    assert_eq!(write.status, 401);
    // The page itself holds no data: it asks for the token.
    assert_eq!(http(a, "GET", "/", &[], None).await.status, 200);
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_address_that_is_not_loopback_needs_a_token() {
    let server = RedisServer::start();
    let err = Console::bind(
        runtime(&server.url()).await,
        ConsoleOptions::new("0.0.0.0:0".parse().expect("addr")),
    )
    .await
    .expect_err("bound without a token");
    assert!(matches!(err, ConsoleError::TokenRequired { .. }), "{err}");
    let with = Console::bind(
        runtime(&server.url()).await,
        ConsoleOptions::new("0.0.0.0:0".parse().expect("addr"))
            .token(Token::new("tok-0123456789abcdef").expect("token")),
    )
    .await;
    assert!(with.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_token_a_host_that_is_not_loopback_is_refused() {
    let server = RedisServer::start();
    let console = serve(runtime(&server.url()).await, |o| o).await;
    let a = console.addr;
    let rebound = http(
        a,
        "GET",
        "/api/overview",
        &[("Host", "evil.example:8080")],
        None,
    )
    .await;
    assert_eq!(rebound.status, 403, "{}", rebound.text());
    let local = http(
        a,
        "GET",
        "/api/overview",
        &[("Host", &format!("localhost:{}", a.port()))],
        None,
    )
    .await;
    assert_eq!(local.status, 200);
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_answer_holds_the_redis_password() {
    let server = RedisServer::start();
    let s = seed_all(&server);
    let secret = "s3cret-console-pw";
    let mut c = conn(&server);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg(secret)
        .query(&mut c)
        .expect("requirepass");
    let url = server
        .url()
        .replacen("redis://", &format!("redis://:{secret}@"), 1);
    let console = serve(runtime(&url).await, |o| o.allow_writes(true)).await;
    let a = console.addr;
    let paths = [
        "/api/session".to_owned(),
        "/api/overview".to_owned(),
        "/api/groups".to_owned(),
        "/api/dead-letters".to_owned(),
        format!("/api/dead-letters/orders/{}", s.orders_panic),
        "/api/streams/orders/entries".to_owned(),
        "/".to_owned(),
        "/assets/app.js".to_owned(),
    ];
    for p in &paths {
        let r = http(a, "GET", p, &[], None).await;
        assert_eq!(r.status, 200, "{p}: {}", r.text());
        assert!(!r.text().contains(secret), "{p} shows the password");
        assert!(!r.text().contains(&server.url()), "{p} shows the Redis URL");
    }
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
