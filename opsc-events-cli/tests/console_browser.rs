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
