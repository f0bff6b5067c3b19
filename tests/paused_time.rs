//! `TestRuntime` under `tokio::time::pause()`: backoffs, retry schedules, handler timeouts and
//! delayed events run on tokio's clock, so a test of a 30 s backoff or a 10 minute delay takes
//! milliseconds of real time — and still sees every attempt at its time.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use opsc_events::prelude::*;
use opsc_events::testing::TestRuntime;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "paused_payments")]
pub struct PaymentDue {
    pub invoice: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "paused_reminders")]
pub struct Reminder {
    pub n: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "paused_slow")]
pub struct Slow {
    pub n: u64,
}

static CALLS: AtomicU32 = AtomicU32::new(0);

/// Fails twice, then succeeds: two 30 s backoffs.
#[handler(stream = "paused_payments", retries = 3, backoff = "fixed(30s)")]
async fn charge(_event: PaymentDue) -> Result<(), HandlerError> {
    if CALLS.fetch_add(1, Ordering::SeqCst) < 2 {
        return Err(HandlerError::retryable("gateway busy"));
    }
    Ok(())
}

#[handler(stream = "paused_reminders")]
async fn remind(_event: Reminder) {}

/// Never finishes within its 20 s timeout.
#[handler(stream = "paused_slow", retries = 0, timeout = "20s")]
async fn hang(_event: Slow) {
    tokio::time::sleep(Duration::from_secs(3600)).await;
}

#[tokio::test(start_paused = true)]
async fn a_thirty_second_backoff_takes_no_real_time() {
    let real = Instant::now();
    let virtual_start = tokio::time::Instant::now();
    let t = TestRuntime::start(TestRuntime::builder().only(|h| h.name() == "charge"))
        .await
        .expect("start");
    t.publish(&PaymentDue { invoice: 1 })
        .await
        .expect("publish");
    t.wait_idle_for(Duration::from_secs(30))
        .await
        .expect("idle");
    assert_eq!(
        CALLS.load(Ordering::SeqCst),
        3,
        "two failures, then success"
    );
    assert_eq!(t.handled("charge").len(), 1);
    // The backoffs were waited for, on tokio's clock.
    assert!(
        virtual_start.elapsed() >= Duration::from_secs(60),
        "tokio's clock moved by {:?}",
        virtual_start.elapsed()
    );
    assert!(
        real.elapsed() < Duration::from_secs(20),
        "it took {:?} of real time",
        real.elapsed()
    );
    t.stop().await.expect("stop");
}

#[tokio::test(start_paused = true)]
async fn a_ten_minute_delay_and_a_handler_timeout_run_on_tokios_clock() {
    let real = Instant::now();
    let t =
        TestRuntime::start(TestRuntime::builder().only(|h| matches!(h.name(), "remind" | "hang")))
            .await
            .expect("start");
    let published = tokio::time::Instant::now();
    t.publisher()
        .publish_after(&Reminder { n: 1 }, Duration::from_secs(600))
        .await
        .expect("publish later");
    t.publish(&Slow { n: 1 }).await.expect("publish");
    t.wait_idle_for(Duration::from_secs(30))
        .await
        .expect("idle");
    assert_eq!(t.handled("remind").len(), 1, "the reminder came");
    assert!(
        published.elapsed() >= Duration::from_secs(600),
        "not before its time: {:?}",
        published.elapsed()
    );
    let letters = t.dead_letters("paused_slow").await.expect("letters");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].reason, DeadLetterReason::Timeout);
    assert!(
        real.elapsed() < Duration::from_secs(20),
        "it took {:?} of real time",
        real.elapsed()
    );
    t.stop().await.expect("stop");
}
