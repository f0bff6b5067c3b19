//! Batch handlers under `opsc_events::testing`: the test runtime sees one outcome per message
//! (not per call), and a message failed by its batch is dead-lettered alone — also under
//! paused time, where a long backoff takes no real time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opsc_events::prelude::*;
use opsc_events::testing::TestRuntime;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "orders")]
pub struct OrderPlaced {
    pub n: u64,
}

/// Sizes of the calls of `settle_orders`.
#[derive(Clone, Default)]
pub struct Sizes(Arc<Mutex<Vec<usize>>>);

/// Rejects order 13 (retryable, with a 30 s backoff) and takes the rest.
#[handler(
    stream = "orders",
    batch = 50,
    linger = "10ms",
    retries = 2,
    backoff = "fixed(30s)"
)]
async fn settle_orders(
    orders: Vec<OrderPlaced>,
    ctx: BatchContext,
    State(sizes): State<Sizes>,
) -> Result<(), BatchError> {
    sizes.0.lock().unwrap().push(orders.len());
    let mut failed = BatchError::new();
    for (i, order) in orders.iter().enumerate() {
        assert!(ctx[i].attempt() == 1 || order.n == 13, "only 13 is retried");
        if order.n == 13 {
            failed.fail(i, HandlerError::retryable("unlucky order"));
        }
    }
    failed.into_result()
}

#[tokio::test(start_paused = true)]
async fn a_batch_is_observed_per_message_and_its_failure_retries_alone() {
    let sizes = Sizes::default();
    let t = TestRuntime::start(TestRuntime::builder().state(sizes.clone()))
        .await
        .unwrap();
    let orders: Vec<OrderPlaced> = (0..20).map(|n| OrderPlaced { n }).collect();
    t.publisher().publish_all(&orders).await.unwrap();
    t.wait_idle_for(Duration::from_secs(120)).await.unwrap();
    let handled = t.handled("settle_orders");
    assert_eq!(handled.len(), 19, "every order but 13, each once");
    let letters = t.dead_letters("orders").await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(
        (letters[0].attempts, letters[0].error.as_str()),
        (3, "unlucky order")
    );
    let sizes = sizes.0.lock().unwrap().clone();
    // The backlog in few calls, then 13 alone, twice (its two retries).
    assert_eq!(sizes.iter().sum::<usize>(), 20 + 2, "{sizes:?}");
    assert!(sizes.len() <= 2 + 2, "{sizes:?}");
    assert_eq!(&sizes[sizes.len() - 2..], &[1, 1]);
    t.stop().await.unwrap();
}
