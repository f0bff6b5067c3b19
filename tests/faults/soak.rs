//! The mixed fault schedule: every fault of the other scenarios, at random, while jobs of every
//! fate and poison entries keep coming and one group keeps falling behind and catching up.
//! Runs 20 s in CI; `OPSC_SOAK_SECS=<n>` runs it for `n` seconds and prints the ledger:
//!
//! ```sh
//! OPSC_SOAK_SECS=600 cargo test --release --test faults soak -- --nocapture
//! ```

use std::time::{Duration, Instant};

use crate::harness::{Rig, SERIAL_SCENARIOS, WorkerConfig, between, fields_of};
use crate::work::{Job, LAGGING, Rng, SERIAL, STEADY, fate};

/// Seconds to run: `OPSC_SOAK_SECS`, or 20 in CI.
fn soak_secs() -> u64 {
    std::env::var("OPSC_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

/// Mostly good jobs; a few of every failing fate; one crashing job every 15,000.
fn fate_of(rng: &Rng, seq: u64) -> u8 {
    if seq % 15_000 == 7_500 {
        return fate::CRASH;
    }
    match rng.below(1000) {
        0..=19 => fate::TRANSIENT,
        20..=24 => fate::PANIC,
        25..=29 => fate::PERMANENT,
        30..=31 => fate::HANG,
        _ => fate::OK,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak() {
    let _one = SERIAL_SCENARIOS.lock().await;
    let secs = soak_secs();
    let groups = [STEADY, SERIAL, LAGGING];
    let rig = Rig::start(true, &groups).await;
    let env = |c: WorkerConfig| {
        c.env("FAULT_DELAY_MS", 3)
            .env("FAULT_TRIM_MS", 500)
            .env("FAULT_IDLE_MS", 5_000)
    };
    rig.start_workers(3, &env(WorkerConfig::new("steady,serial")))
        .await;
    let lagging = rig
        .start_workers(1, &env(WorkerConfig::new("lagging")))
        .await[0];
    let fates = Rng::from_entropy();
    let feeder = rig.feed(10, Duration::from_millis(50), move |seq| {
        fate_of(&fates, seq)
    });

    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut resume_lagging_at: Option<Instant> = None;
    let mut next_poison = started + Duration::from_secs(5);
    let mut poison_n = 0u64;
    while Instant::now() < deadline {
        tokio::time::sleep(between(
            &rig.rng,
            Duration::from_millis(1000),
            Duration::from_millis(4000),
        ))
        .await;
        if resume_lagging_at.is_some_and(|t| Instant::now() >= t) {
            rig.workers().resume(lagging);
            resume_lagging_at = None;
        }
        if Instant::now() >= next_poison {
            poison_n += 1;
            inject_poison(&rig, poison_n).await;
            next_poison = Instant::now()
                + between(&rig.rng, Duration::from_secs(10), Duration::from_secs(40));
        }
        match rig.rng.below(100) {
            0..=34 => rig.kill_random_worker(),
            35..=49 => {
                let until = Instant::now() + Duration::from_secs(2);
                while Instant::now() < until {
                    rig.client_kill().await;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            50..=64 => {
                let down = between(
                    &rig.rng,
                    Duration::from_millis(200),
                    Duration::from_millis(1500),
                );
                rig.restart_redis(down).await;
            }
            65..=74 => {
                let pause = between(
                    &rig.rng,
                    Duration::from_millis(500),
                    Duration::from_millis(2000),
                );
                rig.freeze_redis(pause).await;
            }
            75..=84 => {
                if resume_lagging_at.is_none() {
                    rig.workers().pause(lagging);
                    rig.ledger.fault("lagging group paused");
                    resume_lagging_at = Some(
                        Instant::now()
                            + between(&rig.rng, Duration::from_secs(10), Duration::from_secs(30)),
                    );
                }
            }
            _ => {
                let _ = rig.admin.trim_now().await;
                rig.ledger.fault("trim_now");
            }
        }
    }
    if resume_lagging_at.is_some() {
        rig.workers().resume(lagging);
    }
    let published = feeder.stop().await;
    let ran = started.elapsed();
    let v = rig
        .settle(
            &format!("soak, {secs} s of mixed faults ({published} jobs in {ran:.0?})"),
            Duration::from_secs(180),
        )
        .await;
    // Not strict: a job whose process dies during its last allowed attempt is dead-lettered as
    // `crashed` (and if that attempt had succeeded before the kill, it was also handled). Both
    // are counted and printed; nothing may be missing.
    rig.assert_verdict(&v, false).await;
}

/// One poison entry of a kind chosen by `n` (10 MB only every tenth time).
async fn inject_poison(rig: &Rig, n: u64) {
    let job = Job {
        seq: 1_000_000_000 + n,
        fate: fate::OK,
    };
    let random: Vec<u8> = (0..128).map(|_| rig.rng.next_u64() as u8).collect();
    let valid = rmp_serde::to_vec_named(&job).expect("encode");
    match n % 10 {
        0 => {
            rig.inject(
                "10 MB of data",
                "decode_error",
                &fields_of(&job, &[("data", Some(vec![0xc1; 10 * 1024 * 1024]))]),
            )
            .await
        }
        1 | 5 => {
            rig.inject(
                "random bytes as data",
                "decode_error",
                &fields_of(&job, &[("data", Some(random))]),
            )
            .await
        }
        2 | 6 => {
            rig.inject(
                "truncated MessagePack",
                "decode_error",
                &fields_of(&job, &[("data", Some(valid[..valid.len() - 1].to_vec()))]),
            )
            .await
        }
        3 | 7 => {
            rig.inject(
                "unknown version",
                "schema_mismatch",
                &fields_of(&job, &[("version", Some(b"9".to_vec()))]),
            )
            .await
        }
        _ => {
            rig.inject(
                "wrong fingerprint",
                "schema_mismatch",
                &fields_of(&job, &[("schema", Some(b"0123456789abcdef".to_vec()))]),
            )
            .await
        }
    }
    rig.ledger.fault("poison entry");
}
