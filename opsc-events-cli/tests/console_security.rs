//! The console's security rules at the HTTP level: token, read-only, CSRF header, origin,
//! loopback host, and no password in any answer.

mod cli_support;
mod console_support;

use cli_support::{conn, snapshot};
use console_support::{csrf, get_json, http, post, runtime, seed_all, serve, writable};
use opsc_events_cli::console::{Console, ConsoleError, ConsoleOptions, Token};
use opsc_events_testkit::RedisServer;
use serde_json::json;

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
    // Same host, another port or scheme: another origin.
    let other_port = format!("http://127.0.0.1:{}", a.port().wrapping_add(1));
    let r = http(
        a,
        "POST",
        "/api/dead-letters/purge",
        &[("x-opsc-csrf", &token), ("Origin", &other_port)],
        Some(&body),
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(snapshot(&mut c) == before);
    // Behind a TLS proxy the page's origin is `https://<Host>`.
    let tls = format!("https://{a}");
    let dry = json!({ "stream": "orders", "dry_run": true }).to_string();
    let r = http(
        a,
        "POST",
        "/api/dead-letters/purge",
        &[("x-opsc-csrf", &token), ("Origin", &tls)],
        Some(&dry),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
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
