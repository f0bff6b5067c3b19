//! `opsc delayed list|show|cancel` against a private redis-server: events scheduled with
//! `publish_after` are listed soonest first with filters, shown with their payload, and
//! cancelled (never delivered); an unknown one is exit 1.

#![allow(clippy::unwrap_used)]

mod cli_support;

use std::time::Duration;

use cli_support::{json_lines, opsc};
use opsc_events::prelude::*;
use opsc_events_testkit::RedisServer;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "reminders", name = "reminder_due", version = 1)]
struct ReminderDue {
    note: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "reminders", name = "timeout_check", version = 1)]
struct TimeoutCheck {
    job: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_events_are_listed_shown_and_cancelled() {
    let server = RedisServer::start();
    let rt = Runtime::builder()
        .service("cli")
        .redis(server.url())
        .no_handlers()
        .build()
        .await
        .unwrap();
    let p = rt.publisher();
    let later = p
        .publish_after(
            &ReminderDue {
                note: "later".into(),
            },
            Duration::from_secs(7200),
        )
        .await
        .unwrap();
    let soon = p
        .publish_after(
            &ReminderDue {
                note: "soon".into(),
            },
            Duration::from_secs(600),
        )
        .await
        .unwrap();
    let check = p
        .publish_after(&TimeoutCheck { job: 9 }, Duration::from_secs(1800))
        .await
        .unwrap();

    let run = |args: Vec<String>| {
        let server = &server;
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        opsc(server, &args)
    };
    let s = |xs: &[&str]| xs.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();

    let out = tokio::task::block_in_place(|| run(s(&["--json", "delayed", "list", "reminders"])));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ids: Vec<String> = json_lines(&out)
        .iter()
        .map(|j| j["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids,
        [soon, check.clone(), later.clone()].map(|d| d.event_id().to_string()),
        "soonest due first"
    );

    let out = tokio::task::block_in_place(|| {
        run(s(&[
            "--json",
            "delayed",
            "list",
            "reminders",
            "--type",
            "reminder_due",
            "--due-before",
            "1h",
        ]))
    });
    let listed = json_lines(&out);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["event_type"], "reminder_due");
    assert!(
        listed[0].get("data").is_none(),
        "list leaves the payload out"
    );

    let id = check.event_id().to_string();
    let out =
        tokio::task::block_in_place(|| run(s(&["--json", "delayed", "show", "reminders", &id])));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = &json_lines(&out)[0];
    assert_eq!(shown["data"]["job"], 9, "{shown}");
    assert_eq!(shown["stream"], "reminders");

    let out = tokio::task::block_in_place(|| run(s(&["delayed", "cancel", "reminders", &id])));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("cancelled"));
    for again in [
        s(&["delayed", "cancel", "reminders", &id]),
        s(&["delayed", "show", "reminders", &id]),
    ] {
        let out = tokio::task::block_in_place(|| run(again.clone()));
        assert_eq!(out.status.code(), Some(1), "{again:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("no delayed event"));
    }
    let left = rt
        .delayed("reminders", &opsc_events::delayed::DelayedFilter::new())
        .await
        .unwrap();
    assert_eq!(left.len(), 2, "the cancelled one is gone from the schedule");
    assert!(left.iter().all(|d| d.event_id != check.event_id()));
}
