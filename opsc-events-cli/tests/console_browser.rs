//! The console in a real browser (headless Chromium through chromedriver; `.ci/run` installs
//! both): against a seeded Redis, the overview shows the seeded streams and groups with their
//! numbers; a dead letter is opened, replayed after a confirmation showing the dry-run count,
//! and leaves the list while its group's retry schedule grows by one; a read-only console
//! shows no write control.

mod cli_support;
mod console_support;

use console_support::webdriver::Browser;
use console_support::{get_json, runtime, seed_all, serve};
use opsc_events_cli::console::Token;
use opsc_events_runtime::keys::Keys;
use opsc_events_testkit::RedisServer;
use serde_json::{Value, json};

/// The overview table as `{ "<stream>": {length, dead_letters}, "<stream>/<group>": {lag,
/// pending, consumers, scheduled} }`, once it shows `streams` streams.
const OVERVIEW: &str = r##"
const rows = document.querySelectorAll("#overview-table tbody tr");
const out = {};
let streams = 0;
for (const r of rows) {
  const t = (c) => { const e = r.querySelector("td." + c); return e ? e.textContent : null; };
  if (r.classList.contains("stream")) {
    streams++;
    out[r.dataset.stream] = { length: t("length"), dead_letters: t("dead-letters") };
  } else {
    out[r.dataset.stream + "/" + r.dataset.group] =
      { lag: t("lag"), pending: t("pending"), consumers: t("consumers"), scheduled: t("scheduled") };
  }
}
return streams === arguments[0] ? out : null;
"##;

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_sees_the_overview_and_replays_a_dead_letter() {
    let server = RedisServer::start();
    let seeded = seed_all(&server);
    let console = serve(runtime(&server.url()).await, |o| o.allow_writes(true)).await;
    let base = console.base();
    let browser = Browser::start().await;

    browser.goto(&format!("{base}/#overview")).await;
    let table = browser
        .wait_for("the overview of both streams", OVERVIEW, json!([2]))
        .await;
    assert_eq!(
        table["pings"],
        json!({ "length": "3", "dead_letters": "1" }),
        "{table}"
    );
    assert_eq!(
        table["orders"],
        json!({ "length": "2", "dead_letters": "2" }),
        "{table}"
    );
    assert_eq!(
        table["pings/svc.handler"],
        json!({ "lag": "3", "pending": "0", "consumers": "0", "scheduled": "0" })
    );
    assert_eq!(
        table["orders/billing.charge"],
        json!({ "lag": "1", "pending": "1", "consumers": "1", "scheduled": "0" })
    );
    // The charts are drawn (plain SVG).
    browser
        .wait_for(
            "the charts",
            "return document.querySelectorAll('#overview-table svg.spark').length === 4",
            json!([]),
        )
        .await;

    // The dead letters of `orders`: open the panic one.
    browser
        .click("tr.stream[data-stream='orders'] td.dead-letters a")
        .await;
    let letter = &seeded.orders_panic;
    browser
        .wait_for(
            "the letters of orders",
            "return document.querySelectorAll('#letters-table tr.letter').length === 2",
            json!([]),
        )
        .await;
    browser
        .click(&format!("tr.letter[data-id='{letter}'] a.open"))
        .await;
    let shown = browser
        .wait_for(
            "the letter in full",
            "const t = document.querySelector('#letter-detail'); \
             return t && t.dataset.id === arguments[0] ? t.innerText : null;",
            json!([letter]),
        )
        .await;
    let shown = shown.as_str().expect("text");
    assert!(
        shown.contains("panic") && shown.contains("handler timed out"),
        "{shown}"
    );
    assert!(shown.contains("\"n\": 0"), "the payload decoded: {shown}");

    // Replay: the confirmation shows the dry-run count; nothing changes before it is confirmed.
    browser.click("#replay-one").await;
    let asked = browser
        .wait_for(
            "the confirmation",
            "const m = document.querySelector('#confirm'); \
             return m && !m.hidden ? document.querySelector('#confirm-text').textContent : null;",
            json!([]),
        )
        .await;
    assert_eq!(asked, "Replay 1 dead letter?");
    let still = get_json(console.addr, "/api/dead-letters?stream=orders").await;
    assert_eq!(still["letters"].as_array().expect("letters").len(), 2);
    browser.click("#confirm-yes").await;
    let left = browser
        .wait_for(
            "the list without the replayed letter",
            "const rows = [...document.querySelectorAll('#letters-table tr.letter')]; \
             return document.body.dataset.view === 'dead-letters' && rows.length === 1 \
               ? rows.map(r => r.dataset.id) : null;",
            json!([]),
        )
        .await;
    assert_eq!(left, json!([seeded.orders_error]));

    // Its group's retry schedule grew by one, and the dead letters shrank by one.
    browser.goto(&format!("{base}/#overview")).await;
    let table: Value = browser
        .wait_for(
            "the overview after the replay",
            &format!(
                "{} ",
                OVERVIEW.replace(
                    "return streams === arguments[0] ? out : null;",
                    "return streams === arguments[0] && out['orders/billing.charge'].scheduled === '1' ? out : null;"
                )
            ),
            json!([2]),
        )
        .await;
    assert_eq!(table["orders"]["dead_letters"], "1");
    browser.quit().await;
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_console_shows_no_write_control() {
    let server = RedisServer::start();
    let seeded = seed_all(&server);
    let console = serve(runtime(&server.url()).await, |o| o).await;
    let base = console.base();
    let browser = Browser::start().await;
    browser
        .goto(&format!("{base}/#letter/orders/{}", seeded.orders_panic))
        .await;
    browser
        .wait_for(
            "the letter",
            "return document.querySelector('#letter-detail') !== null",
            json!([]),
        )
        .await;
    let controls = browser
        .js(
            "return [...document.querySelectorAll('#replay-one, #purge-one, #replay-selected, \
             #purge-selected, #replay-matching, #purge-matching')].length",
            json!([]),
        )
        .await;
    assert_eq!(controls, 0);
    assert!(
        browser
            .js(
                "return document.querySelector('#mode').textContent",
                json!([])
            )
            .await
            .as_str()
            .expect("mode")
            .contains("read-only")
    );
    browser
        .goto(&format!("{base}/#dead-letters?stream=orders"))
        .await;
    browser
        .wait_for(
            "the list",
            "return document.querySelectorAll('#letters-table tr.letter').length === 2",
            json!([]),
        )
        .await;
    let controls = browser
        .js(
            "return document.querySelectorAll('.actions button').length",
            json!([]),
        )
        .await;
    assert_eq!(controls, 0);
    // The missing controls leave nothing behind (once they showed as the text "null").
    for view in [
        format!("#letter/orders/{}", seeded.orders_panic),
        "#dead-letters?stream=orders".to_owned(),
        "#groups".to_owned(),
        "#overview".to_owned(),
    ] {
        browser.goto(&format!("{base}/{view}")).await;
        let stray = browser
            .wait_for(
                &format!("{view} drawn"),
                "const v = document.querySelector('#view'); \
                 if (!v || !v.querySelector('h2')) return null; \
                 return [...v.childNodes].filter(n => n.nodeType === Node.TEXT_NODE) \
                   .map(n => n.textContent);",
                json!([]),
            )
            .await;
        assert_eq!(stray, json!([]), "{view}");
    }
    browser.quit().await;
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_sees_a_stale_group_and_removes_it_after_a_confirmation() {
    let server = RedisServer::start();
    seed_all(&server);
    let console = serve(runtime(&server.url()).await, |o| {
        o.allow_writes(true)
            .stale_after(std::time::Duration::from_millis(1))
    })
    .await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/#groups", console.base())).await;
    let flags = browser
        .wait_for(
            "the stale group flagged",
            "const r = document.querySelector(\"#groups-table tr.group[data-group='billing.charge']\"); \
             return r && r.classList.contains('stale') ? r.querySelector('.flags').textContent : null;",
            json!([]),
        )
        .await;
    assert!(flags.as_str().expect("flags").contains("stale"), "{flags}");
    let consumer = browser
        .js(
            "return [...document.querySelectorAll('#groups-table tr.consumer')].map(r => r.dataset.consumer)",
            json!([]),
        )
        .await;
    assert_eq!(consumer, json!(["c1"]));
    browser
        .click("#groups-table tr.group[data-group='billing.charge'] button.remove-group")
        .await;
    let asked = browser
        .wait_for(
            "the confirmation",
            "const m = document.querySelector('#confirm'); \
             return m && !m.hidden ? m.innerText : null;",
            json!([]),
        )
        .await;
    let asked = asked.as_str().expect("text");
    assert!(
        asked.contains("Remove group billing.charge of stream orders?")
            && asked.contains("pending 1"),
        "{asked}"
    );
    browser.click("#confirm-yes").await;
    browser
        .wait_for(
            "the group gone",
            "return document.querySelector('#flash') !== null && \
               document.querySelector(\"#groups-table tr.group[data-group='billing.charge']\") === null",
            json!([]),
        )
        .await;
    let groups = get_json(console.addr, "/api/groups?stream=orders").await;
    assert_eq!(groups["streams"][0]["groups"], json!([]));
    browser.quit().await;
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_searches_a_stream_and_follows_a_conversation() {
    let server = RedisServer::start();
    seed_all(&server);
    // One conversation across `orders` and `billing`.
    let keys = Keys::new("opsconductor");
    let mut c = cli_support::conn(&server);
    let corr = uuid::Uuid::now_v7().to_string();
    for (stream, n, ts) in [
        ("orders", 40, "1700000000100"),
        ("billing", 41, "1700000000200"),
    ] {
        let mut e = cli_support::entry(n);
        for (k, v) in e.iter_mut() {
            match *k {
                "correlation_id" => *v = corr.clone().into_bytes(),
                "timestamp" => *v = ts.as_bytes().to_vec(),
                _ => {}
            }
        }
        cli_support::xadd(&mut c, &keys.events(stream), &e);
    }
    let console = serve(runtime(&server.url()).await, |o| o).await;
    let browser = Browser::start().await;
    browser
        .goto(&format!("{}/#stream/pings", console.base()))
        .await;
    let ids = browser
        .wait_for(
            "the newest entries of pings",
            "const rows = [...document.querySelectorAll('#entries-table tr.entry')]; \
             return rows.length === 3 ? rows.map(r => r.dataset.eventId) : null;",
            json!([]),
        )
        .await;
    let wanted = ids[1].as_str().expect("event id").to_owned();
    browser.type_into("#search-event-id", &wanted).await;
    browser.click("#search-form button").await;
    let found = browser
        .wait_for(
            "the one entry with that event id",
            "const rows = [...document.querySelectorAll('#entries-table tr.entry')]; \
             return rows.length === 1 ? rows[0].querySelector('.payload').textContent : null;",
            json!([]),
        )
        .await;
    assert!(
        found.as_str().expect("payload").contains("\"n\": 1"),
        "{found}"
    );

    // The conversation: from the orders stream, follow the correlation id.
    browser
        .goto(&format!("{}/#stream/orders", console.base()))
        .await;
    browser
        .wait_for(
            "the orders entries",
            "return document.querySelectorAll('#entries-table tr.entry').length === 3",
            json!([]),
        )
        .await;
    browser
        .click(&format!("#entries-table a[href='#correlation/{corr}']"))
        .await;
    let conversation = browser
        .wait_for(
            "the conversation across streams",
            "if (document.body.dataset.view !== 'correlation') return null; \
             const rows = [...document.querySelectorAll('#entries-table tr.entry')]; \
             return rows.length === 2 ? rows.map(r => r.cells[0].textContent) : null;",
            json!([]),
        )
        .await;
    assert_eq!(
        conversation,
        json!(["orders", "billing"]),
        "in order, across streams"
    );
    browser.quit().await;
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_console_with_a_token_asks_for_it_before_showing_anything() {
    let server = RedisServer::start();
    seed_all(&server);
    let token = "browser-token-0123456789";
    let console = serve(runtime(&server.url()).await, |o| {
        o.token(Token::new(token).expect("token"))
    })
    .await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/#overview", console.base())).await;
    browser
        .wait_for(
            "the token form",
            "return !document.querySelector('#login').hidden",
            json!([]),
        )
        .await;
    let rows = browser
        .js(
            "return document.querySelectorAll('#overview-table tr').length",
            json!([]),
        )
        .await;
    assert_eq!(rows, 0, "nothing shown without the token");
    browser.type_into("#token-input", token).await;
    browser.click("#login-form button").await;
    browser
        .wait_for(
            "the overview after signing in",
            "return document.querySelector('#login').hidden && \
               document.querySelectorAll('#overview-table tr.stream').length === 2",
            json!([]),
        )
        .await;
    browser.quit().await;
    console.stop().await;
}

// ---- A live system: a real handler dead-letters, an operator replays and purges ----

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use opsc_events::prelude::*;

/// A parcel to deliver; the handler fails while the courier service is down.
#[derive(Event, serde::Serialize, serde::Deserialize, Debug, Clone)]
#[event(stream = "console_parcels")]
struct ParcelShipped {
    parcel: u64,
    destination: String,
}

/// Whether the courier service is back (the handler succeeds).
static COURIER_UP: AtomicBool = AtomicBool::new(false);
/// Parcels the handler delivered.
static DELIVERED: AtomicUsize = AtomicUsize::new(0);

#[handler(stream = "console_parcels", retries = 0)]
async fn deliver(event: ParcelShipped) -> Result<(), HandlerError> {
    if !COURIER_UP.load(Ordering::SeqCst) {
        return Err(HandlerError::permanent(format!(
            "courier service unavailable for parcel {}",
            event.parcel
        )));
    }
    DELIVERED.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// Where the screenshots shown in the README live; rewritten when `OPSC_SCREENSHOTS=1`.
fn screenshot(name: &str, png: &[u8]) {
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{name}: a PNG of a drawn page ({} bytes)",
        png.len()
    );
    if std::env::var("OPSC_SCREENSHOTS").is_ok_and(|v| v == "1") {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../docs")
            .join(name);
        std::fs::write(&path, png).expect("write the screenshot");
    }
}

/// The overview's dead-letter count of `stream` as the page shows it, once it is `want`.
async fn dead_letters_shown(browser: &Browser, stream: &str, want: &str) {
    browser
        .wait_for(
            &format!("the overview showing {want} dead letters of {stream}"),
            "const c = document.querySelector(\"tr.stream[data-stream='\" + arguments[0] + \"'] td.dead-letters\"); \
             return c && c.textContent === arguments[1];",
            json!([stream, want]),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_letter_runs_its_handler_again_and_a_filtered_purge_empties_the_rest() {
    let server = RedisServer::start();
    // The service: its handler dead-letters every parcel while the courier is down.
    let service = Runtime::builder()
        .service("parcels")
        .prefix("opsconductor")
        .redis(server.url())
        .build()
        .await
        .expect("service");
    let publisher = service.publisher();
    let (stop_service, service_stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(service.run_until(async move {
        let _ = service_stopped.await;
    }));
    for parcel in 1..=3 {
        publisher
            .publish(&ParcelShipped {
                parcel,
                destination: format!("depot {parcel}"),
            })
            .await
            .expect("publish");
    }
    let console = serve(runtime(&server.url()).await, |o| o.allow_writes(true)).await;
    let base = console.base();
    let browser = Browser::start().await;
    browser.goto(&format!("{base}/#overview")).await;
    dead_letters_shown(&browser, "console_parcels", "3").await;
    // Nothing but the page's own parts: no stray text (a `null` once showed above the table).
    let stray = browser
        .js(
            "return [...document.querySelector('#view').childNodes] \
               .filter(n => n.nodeType === Node.TEXT_NODE).map(n => n.textContent)",
            json!([]),
        )
        .await;
    assert_eq!(stray, json!([]));
    // The charts, once the page has sampled twice.
    browser
        .wait_for(
            "the charts drawn",
            "return document.querySelectorAll('#overview-table svg.spark polyline').length === 2",
            json!([]),
        )
        .await;
    screenshot("console-overview.png", &browser.screenshot().await);

    // The courier is back. Open the first letter and replay it.
    COURIER_UP.store(true, Ordering::SeqCst);
    browser
        .click("tr.stream[data-stream='console_parcels'] td.dead-letters a")
        .await;
    browser
        .wait_for(
            "the three letters",
            "return document.querySelectorAll('#letters-table tr.letter').length === 3",
            json!([]),
        )
        .await;
    browser.click("#letters-table tr.letter a.open").await;
    let shown = browser
        .wait_for(
            "the letter in full",
            "const t = document.querySelector('#letter-detail'); return t ? t.innerText : null;",
            json!([]),
        )
        .await;
    let shown = shown.as_str().expect("text").to_owned();
    assert!(
        shown.contains("courier service unavailable") && shown.contains("permanent"),
        "{shown}"
    );
    assert!(
        shown.contains("\"destination\": \"depot"),
        "the payload: {shown}"
    );
    screenshot("console-dead-letter.png", &browser.screenshot().await);
    assert_eq!(DELIVERED.load(Ordering::SeqCst), 0);
    browser.click("#replay-one").await;
    let asked = browser
        .wait_for(
            "the confirmation",
            "const m = document.querySelector('#confirm'); \
             return m && !m.hidden ? document.querySelector('#confirm-text').textContent : null;",
            json!([]),
        )
        .await;
    assert_eq!(asked, "Replay 1 dead letter?");
    browser.click("#confirm-yes").await;
    // The handler runs again (the replayed letter is due at once) and succeeds.
    console_support::eventually(|| async { (DELIVERED.load(Ordering::SeqCst) == 1).then_some(()) })
        .await;
    browser.goto(&format!("{base}/#overview")).await;
    dead_letters_shown(&browser, "console_parcels", "2").await;

    // Purge what is left by a filter: reason `permanent` on this stream.
    browser
        .goto(&format!(
            "{base}/#dead-letters?stream=console_parcels&reason=permanent"
        ))
        .await;
    browser
        .wait_for(
            "the two remaining letters",
            "return document.querySelectorAll('#letters-table tr.letter').length === 2",
            json!([]),
        )
        .await;
    browser.click("#purge-matching").await;
    let asked = browser
        .wait_for(
            "the confirmation with the dry-run count",
            "const m = document.querySelector('#confirm'); \
             return m && !m.hidden ? document.querySelector('#confirm-text').textContent : null;",
            json!([]),
        )
        .await;
    assert_eq!(asked, "Purge 2 dead letters?");
    browser.click("#confirm-yes").await;
    browser
        .wait_for(
            "an empty list",
            "return document.querySelector('#flash') !== null && \
               document.querySelectorAll('#letters-table tr.letter').length === 0",
            json!([]),
        )
        .await;
    browser.goto(&format!("{base}/#overview")).await;
    dead_letters_shown(&browser, "console_parcels", "0").await;
    assert_eq!(
        DELIVERED.load(Ordering::SeqCst),
        1,
        "purged letters are not handled"
    );
    browser.quit().await;
    console.stop().await;
    let _ = stop_service.send(());
    running.await.expect("service task").expect("service ran");
}

/// A page of another site (its own origin: another port) that tries to purge through the
/// operator's browser, with a plain form and with `fetch`.
const ATTACK: &str = r#"<!doctype html><html><body>
<form id="attack" method="POST" enctype="text/plain" action="CONSOLE/api/dead-letters/purge">
<input name='{"stream":"orders","ids":[],"x":"' value='"}'>
</form>
<p id="fetch">pending</p>
<script>
fetch("CONSOLE/api/dead-letters/purge", {
  method: "POST",
  headers: { "content-type": "application/json", "x-opsc-csrf": "guessed" },
  body: JSON.stringify({ stream: "orders" }),
}).then(r => { document.getElementById("fetch").textContent = "answered " + r.status; },
        e => { document.getElementById("fetch").textContent = "blocked"; });
</script></body></html>"#;

/// Serves `page` to every request on a loopback port of its own; the address.
async fn serve_page(page: String) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let page = page.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_cannot_write_without_the_token_nor_from_another_site() {
    let server = RedisServer::start();
    seed_all(&server);
    let token = "browser-token-0123456789";
    // Not bound to loopback: a token is required for everything under /api.
    let open = console_support::serve_at(
        runtime(&server.url()).await,
        "0.0.0.0:0".parse().expect("addr"),
        |o| {
            o.allow_writes(true)
                .token(Token::new(token).expect("token"))
        },
    )
    .await;
    let base = format!("http://127.0.0.1:{}", open.addr.port());
    let browser = Browser::start().await;
    browser.goto(&format!("{base}/#overview")).await;
    browser
        .wait_for(
            "the token form",
            "return !document.querySelector('#login').hidden",
            json!([]),
        )
        .await;
    // A write from the console's own page, without the token: 401.
    let status = browser
        .wait_for(
            "the answer to a write without the token",
            "if (!window.__w) { window.__w = 'pending'; \
               fetch('/api/dead-letters/purge', { method: 'POST', \
                 headers: { 'content-type': 'application/json', 'x-opsc-csrf': 'x' }, \
                 body: JSON.stringify({ stream: 'orders' }) }) \
               .then(r => { window.__w = r.status; }, e => { window.__w = 'failed ' + e; }); } \
             return window.__w === 'pending' ? null : window.__w;",
            json!([]),
        )
        .await;
    assert_eq!(status, 401);
    open.stop().await;

    // A loopback console with writes allowed, and another site's page opened in the
    // operator's browser: the page's form POST is refused with 403 (no CSRF token, another
    // origin); its fetch with a custom header never leaves the browser (the preflight is
    // not allowed).
    let console = serve(runtime(&server.url()).await, |o| o.allow_writes(true)).await;
    let attacker = serve_page(ATTACK.replace("CONSOLE", &console.base())).await;
    browser.goto(&format!("http://{attacker}/")).await;
    let fetched = browser
        .wait_for(
            "the attacker's fetch to end",
            "const t = document.getElementById('fetch').textContent; return t === 'pending' ? null : t;",
            json!([]),
        )
        .await;
    assert_eq!(fetched, "blocked", "the preflight fails");
    browser
        .js(
            "document.getElementById('attack').submit(); return true;",
            json!([]),
        )
        .await;
    let answer = browser
        .wait_for(
            "the console's answer to the forged form",
            "return location.href.includes('/api/dead-letters/purge') && document.body \
               ? document.body.innerText : null;",
            json!([]),
        )
        .await;
    let answer = answer.as_str().expect("text");
    assert!(
        answer.contains("x-opsc-csrf"),
        "refused for want of the CSRF token: {answer}"
    );
    // The answer's status, as the browser saw it.
    let status = browser
        .js(
            "const n = performance.getEntriesByType('navigation')[0]; \
             return n && n.responseStatus !== undefined ? n.responseStatus : null;",
            json!([]),
        )
        .await;
    assert_eq!(status, 403);
    // Refused before anything: nothing was purged.
    let letters = get_json(console.addr, "/api/dead-letters?stream=orders").await;
    assert_eq!(letters["letters"].as_array().expect("letters").len(), 2);
    browser.quit().await;
    console.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_streams_are_shown_a_page_at_a_time() {
    let server = RedisServer::start();
    let keys = Keys::new("opsconductor");
    let mut c = cli_support::conn(&server);
    let mut pipe = redis::pipe();
    for i in 0..105 {
        let mut x = redis::cmd("XADD");
        x.arg(keys.events(&format!("s{i:03}"))).arg("*");
        for (k, v) in cli_support::entry(i) {
            x.arg(k).arg(v);
        }
        pipe.add_command(x).ignore();
    }
    let () = pipe.query(&mut c).expect("seed");
    let console = serve(runtime(&server.url()).await, |o| o).await;
    let browser = Browser::start().await;
    for view in ["overview", "groups"] {
        browser.goto(&format!("{}/#{view}", console.base())).await;
        let pager = browser
            .wait_for(
                "the first page",
                "const p = document.getElementById(arguments[0] + '-pager'); return p ? p.textContent : null;",
                json!([view]),
            )
            .await;
        assert!(
            pager
                .as_str()
                .expect("text")
                .starts_with("Streams 1\u{2013}100 of 105"),
            "{view}: {pager}"
        );
        browser.click(&format!("#{view}-next")).await;
        let pager = browser
            .wait_for(
                "the second page",
                "const p = document.getElementById(arguments[0] + '-pager'); \
                 return p && p.textContent.startsWith('Streams 101') ? p.textContent : null;",
                json!([view]),
            )
            .await;
        assert!(
            pager
                .as_str()
                .expect("text")
                .starts_with("Streams 101\u{2013}105 of 105"),
            "{view}: {pager}"
        );
    }
    let rows = browser
        .js(
            "return document.querySelectorAll('#groups-table tr.group').length",
            json!([]),
        )
        .await;
    assert_eq!(rows, 0, "the streams of the second page have no groups");
    browser
        .goto(&format!("{}/#overview?offset=100", console.base()))
        .await;
    let shown = browser
        .wait_for(
            "the streams of the second page",
            "const r = [...document.querySelectorAll('#overview-table tr.stream')]; \
             return r.length === 5 ? r.map(x => x.dataset.stream) : null;",
            json!([]),
        )
        .await;
    assert_eq!(shown, json!(["s100", "s101", "s102", "s103", "s104"]));
    browser.quit().await;
    console.stop().await;
}
