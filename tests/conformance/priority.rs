//! Priority lanes (issue 16, item 3): higher lanes first, by the documented 8:4:2:1 weighting,
//! without starving lower ones; the stream's order within one lane; the type's priority and a
//! per-publish override; retries, dead letters and replays of a lane's entries.

use super::*;
use opsc_events::Priority;

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "prio")]
pub struct Job {
    pub n: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(stream = "prio", name = "alert", priority = "high")]
pub struct Alert {
    pub n: u64,
}

mod lanes {
    use super::*;

    /// Takes a millisecond, so that a backlog takes a while to drain. `concurrency = 1` (the
    /// default) bounds the calls of all lanes together.
    #[handler(stream = "prio", start = "earliest")]
    pub async fn jobs(event: Job, ctx: Context, State(log): State<Log>) {
        let now = log.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        log.max_in_flight.fetch_max(now, Ordering::SeqCst);
        log.record("jobs", event.n, &ctx);
        tokio::time::sleep(Duration::from_millis(1)).await;
        log.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    /// Fails while `broken`.
    #[handler(stream = "prio", retries = 2, backoff = "fixed(20ms)")]
    pub async fn alerts(
        event: Alert,
        ctx: Context,
        State(log): State<Log>,
    ) -> Result<(), HandlerError> {
        log.record("alerts", event.n, &ctx);
        if log.broken.load(Ordering::SeqCst) {
            return Err(format!("alert {} failed", event.n).into());
        }
        Ok(())
    }
}

/// A runtime of one handler that looks for new lanes every 100 ms.
async fn lanes_runtime(env: &Env, log: &Log, name: &'static str) -> Runtime {
    env.builder()
        .lane_check_interval(Duration::from_millis(100))
        .state(log.clone())
        .only(move |h| h.name() == name)
        .build()
        .await
        .expect("runtime builds")
}

/// `group` on the lane `lane` of `prio`.
async fn lane_group(rt: &Runtime, lane: Priority, group: &str) -> opsc_events::GroupInfo {
    rt.lane_info("prio", lane)
        .await
        .expect("lane info")
        .groups
        .into_iter()
        .find(|g| g.name == group)
        .unwrap_or_else(|| panic!("no group {group} on the {lane} lane"))
}

fn at(p: Priority) -> PublishOptions {
    PublishOptions::new().priority(p)
}

fn lane_of(calls: &[Call], lane: Priority) -> Vec<u64> {
    calls
        .iter()
        .filter(|c| c.lane == lane)
        .map(|c| c.n)
        .collect()
}

/// A backlog of low and normal events is in the stream; a critical event published after them
/// is handled before nearly all of it, and each lane is handled in the stream's order, normal
/// (weight 2) ahead of low (weight 1).
pub async fn a_critical_event_overtakes_the_backlog_and_each_lane_keeps_its_order(env: Env) {
    let log = Log::default();
    let rt = env.publisher().await;
    let p = rt.publisher();
    for n in 0..150 {
        p.publish_with(&Job { n }, &at(Priority::Low))
            .await
            .unwrap();
    }
    p.publish_all(&(150..300).map(|n| Job { n }).collect::<Vec<_>>())
        .await
        .unwrap();
    p.publish_with(&Job { n: 1000 }, &at(Priority::Critical))
        .await
        .unwrap();
    assert_eq!(
        rt.lanes("prio").await.unwrap(),
        [Priority::Low, Priority::Normal, Priority::Critical]
    );
    let running = spawn(lanes_runtime(&env, &log, "jobs").await);
    wait_until("the backlog and the critical event handled", T, || async {
        log.count("jobs") == 301
    })
    .await;
    running.stop().await;
    assert_eq!(
        log.max_in_flight.load(Ordering::SeqCst),
        1,
        "the handler's concurrency bounds its lanes together"
    );
    let calls = log.of("jobs");
    let pos = calls
        .iter()
        .position(|c| c.n == 1000)
        .expect("the critical event was handled");
    assert_eq!(calls[pos].lane, Priority::Critical);
    assert!(
        pos < 30,
        "the critical event was handled after {pos} of the 300 events published before it"
    );
    assert_eq!(lane_of(&calls, Priority::Low), (0..150).collect::<Vec<_>>());
    assert_eq!(
        lane_of(&calls, Priority::Normal),
        (150..300).collect::<Vec<_>>()
    );
    let first: Vec<Call> = calls[..150].to_vec();
    let (low, normal) = (
        lane_of(&first, Priority::Low).len(),
        lane_of(&first, Priority::Normal).len(),
    );
    assert!(
        normal > low && low >= 30,
        "the first 150 calls: {normal} normal, {low} low (2:1 expected)"
    );
    for lane in [Priority::Low, Priority::Normal, Priority::Critical] {
        let g = lane_group(&rt, lane, "conf.jobs").await;
        assert_eq!((g.pending, g.scheduled), (0, 0), "{lane} lane settled");
    }
}

/// While a higher lane always has work, a lower one still gets its weighted share: 1 call in
/// 9 for low against critical (weights 1 and 8), not none until critical is empty.
pub async fn lower_lanes_progress_under_continuous_higher_load(env: Env) {
    let log = Log::default();
    let rt = env.publisher().await;
    let p = rt.publisher();
    for n in 0..100 {
        p.publish_with(&Job { n }, &at(Priority::Low))
            .await
            .unwrap();
    }
    for n in 1000..1900 {
        p.publish_with(&Job { n }, &at(Priority::Critical))
            .await
            .unwrap();
    }
    let running = spawn(lanes_runtime(&env, &log, "jobs").await);
    wait_until("every event handled", T, || async {
        log.count("jobs") == 1000
    })
    .await;
    running.stop().await;
    let calls = log.of("jobs");
    let low_in_first_half = lane_of(&calls[..450], Priority::Low).len();
    assert!(
        (30..=70).contains(&low_in_first_half),
        "low got {low_in_first_half} of the first 450 calls while critical always waited (50 expected)"
    );
    let last_low = calls
        .iter()
        .rposition(|c| c.lane == Priority::Low)
        .expect("low events handled");
    assert!(
        last_low < 990,
        "the last low event ran at call {last_low}: low waited for critical to drain"
    );
    assert_eq!(lane_of(&calls, Priority::Low), (0..100).collect::<Vec<_>>());
    assert_eq!(
        lane_of(&calls, Priority::Critical),
        (1000..1900).collect::<Vec<_>>()
    );
}

/// `#[event(priority = "high")]` puts a type's events in the high lane; `PublishOptions::priority`
/// overrides it per publish. Lanes that appear while the runtime runs are read.
pub async fn the_type_sets_the_priority_and_a_publish_overrides_it(env: Env) {
    assert_eq!(<Alert as Event>::PRIORITY, Priority::High);
    assert_eq!(<Job as Event>::PRIORITY, Priority::Normal);
    let log = Log::default();
    let rt = lanes_runtime(&env, &log, "alerts").await;
    let p = rt.publisher();
    let running = spawn(rt);
    p.publish(&Alert { n: 1 }).await.unwrap();
    p.publish_with(&Alert { n: 2 }, &at(Priority::Normal))
        .await
        .unwrap();
    p.publish_with(&Alert { n: 3 }, &at(Priority::Low))
        .await
        .unwrap();
    p.publish_all(&[Alert { n: 4 }]).await.unwrap();
    wait_until("four alerts", T, || async { log.count("alerts") == 4 }).await;
    running.stop().await;
    let mut seen: Vec<(u64, Priority)> = log.of("alerts").iter().map(|c| (c.n, c.lane)).collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (1, Priority::High),
            (2, Priority::Normal),
            (3, Priority::Low),
            (4, Priority::High)
        ]
    );
}

/// A failing entry of the high lane is retried and dead-lettered like any other; the letter
/// names its lane; acknowledging it removes it from the lane's pending list; a replay puts it
/// back into that lane, where it is handled.
pub async fn a_lane_entry_is_retried_dead_lettered_and_replayed_in_its_lane(env: Env) {
    let log = Log::default();
    log.broken.store(true, Ordering::SeqCst);
    let rt = lanes_runtime(&env, &log, "alerts").await;
    let p = rt.publisher();
    let running = spawn(rt);
    let id = p.publish(&Alert { n: 7 }).await.unwrap();
    let check = env.publisher().await;
    let letters_of = || async {
        check
            .dead_letters()
            .list(&DeadLetterFilter::stream("prio"))
            .await
            .unwrap()
    };
    wait_until("dead-lettered", T, || async {
        letters_of().await.len() == 1
    })
    .await;
    let l = &letters_of().await[0];
    assert_eq!(l.priority, Priority::High);
    assert_eq!((l.original_id, l.attempts), (id, 3));
    assert_eq!(l.reason, DeadLetterReason::HandlerError);
    let attempts: Vec<(u32, Priority)> = log
        .of("alerts")
        .iter()
        .map(|c| (c.attempt, c.lane))
        .collect();
    assert_eq!(
        attempts,
        [
            (1, Priority::High),
            (2, Priority::High),
            (3, Priority::High)
        ]
    );
    let g = lane_group(&check, Priority::High, "conf.alerts").await;
    assert_eq!((g.pending, g.scheduled), (0, 0), "nothing left in the lane");
    log.broken.store(false, Ordering::SeqCst);
    let replayed = check
        .dead_letters()
        .replay(&DeadLetterFilter::stream("prio"))
        .await
        .unwrap();
    assert_eq!(replayed, 1);
    wait_until("handled after the replay", T, || async {
        log.count("alerts") == 4
    })
    .await;
    wait_until("settled", T, || async {
        let g = lane_group(&check, Priority::High, "conf.alerts").await;
        g.pending == 0 && g.scheduled == 0
    })
    .await;
    running.stop().await;
    let last = log.of("alerts").pop().expect("a call");
    assert_eq!((last.n, last.attempt, last.lane), (7, 1, Priority::High));
    assert!(letters_of().await.is_empty());
}

/// A delayed event published with a priority is moved into its lane when due.
pub async fn a_delayed_event_lands_in_its_lane(env: Env) {
    let log = Log::default();
    let rt = lanes_runtime(&env, &log, "alerts").await;
    let p = rt.publisher();
    let running = spawn(rt);
    p.publish_after_with(
        &Alert { n: 9 },
        Duration::from_millis(300),
        &at(Priority::Critical),
    )
    .await
    .unwrap();
    p.publish_after(&Alert { n: 10 }, Duration::from_millis(300))
        .await
        .unwrap();
    wait_until("both delayed alerts", T, || async {
        log.count("alerts") == 2
    })
    .await;
    running.stop().await;
    let mut seen: Vec<(u64, Priority)> = log.of("alerts").iter().map(|c| (c.n, c.lane)).collect();
    seen.sort();
    assert_eq!(seen, [(9, Priority::Critical), (10, Priority::High)]);
}
