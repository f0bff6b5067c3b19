//! (e) Poison entries mixed into the stream — random bytes, truncated MessagePack, an unknown
//! version, a wrong fingerprint, 10 MB of data, missing fields, no envelope at all — and a job
//! that crashes its consumer process on every attempt. Each affects only itself: it is
//! dead-lettered with its reason in every group, and every good job is handled.

use std::time::Duration;

use crate::common;
use crate::harness::{Rig, SERIAL_SCENARIOS, WorkerConfig, fields_of, handlers_of};
use crate::work::{Job, KEY, MAX_ATTEMPTS, SERIAL, STEADY, fate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_entries_and_a_job_that_kills_its_consumer_affect_only_themselves() {
    let _one = SERIAL_SCENARIOS.lock().await;
    let groups = [STEADY, SERIAL];
    let rig = Rig::start(false, &groups).await;
    rig.start_workers(
        3,
        &WorkerConfig::new(&handlers_of(&groups)).env("FAULT_DELAY_MS", 2),
    )
    .await;
    let random: Vec<u8> = (0..256).map(|_| rig.rng.next_u64() as u8).collect();
    let valid = rmp_serde::to_vec_named(&Job { seq: 1, fate: 0 }).expect("encode");
    let wrong_types =
        rmp_serde::to_vec_named(&serde_json::json!({"seq": "one", "fate": [1]})).expect("encode");
    let job = |seq| Job {
        seq,
        fate: fate::OK,
    };
    let mut seq = 0u64;
    publish(&rig, &mut seq, 40, &|_| fate::OK).await;
    rig.inject(
        "random bytes as data",
        "decode_error",
        &fields_of(&job(9001), &[("data", Some(random.clone()))]),
    )
    .await;
    rig.inject(
        "truncated MessagePack",
        "decode_error",
        &fields_of(
            &job(9002),
            &[("data", Some(valid[..valid.len() - 1].to_vec()))],
        ),
    )
    .await;
    publish(&rig, &mut seq, 40, &|_| fate::OK).await;
    rig.inject(
        "unknown version",
        "schema_mismatch",
        &fields_of(&job(9003), &[("version", Some(b"9".to_vec()))]),
    )
    .await;
    rig.inject(
        "wrong fingerprint",
        "schema_mismatch",
        &fields_of(
            &job(9004),
            &[("schema", Some(b"0123456789abcdef".to_vec()))],
        ),
    )
    .await;
    // The job that aborts every process that runs it.
    publish(&rig, &mut seq, 20, &|s| {
        if s == 90 { fate::CRASH } else { fate::OK }
    })
    .await;
    rig.inject(
        "10 MB of data",
        "decode_error",
        &fields_of(&job(9005), &[("data", Some(vec![0xc1; 10 * 1024 * 1024]))]),
    )
    .await;
    publish(&rig, &mut seq, 40, &|_| fate::OK).await;
    rig.inject(
        "missing fields",
        "decode_error",
        &[
            ("event_type".to_owned(), b"job".to_vec()),
            ("data".to_owned(), valid.clone()),
        ],
    )
    .await;
    rig.inject(
        "no envelope at all",
        "decode_error",
        &[("\u{1}\u{2}".to_owned(), random.clone())],
    )
    .await;
    rig.inject(
        "data of the wrong shape",
        "decode_error",
        &fields_of(&job(9006), &[("data", Some(wrong_types))]),
    )
    .await;
    rig.inject(
        "an event type nobody here handles (skipped, not poison)",
        "",
        &fields_of(
            &job(9007),
            &[("event_type", Some(b"something_else".to_vec()))],
        ),
    )
    .await;
    publish(&rig, &mut seq, 60, &|_| fate::OK).await;

    let v = rig
        .settle(
            "poison entries and a crashing job",
            Duration::from_secs(120),
        )
        .await;
    rig.assert_exactly_one_place(&v).await;
    assert!(v.exited >= 2, "the crash job took down processes");
    for g in &v.groups {
        assert_eq!(
            g.poison_ok, 8,
            "{}: every poison entry dead-lettered with its reason",
            g.group
        );
        assert_eq!(g.dead_by_reason.get("crashed"), Some(&1), "{}", g.group);
        assert_eq!(g.handled, 199, "{}: every good job handled", g.group);
        assert_eq!(
            g.unexplained, 0,
            "{}: duplicates only from crashed processes",
            g.group
        );
    }
    let letters = rig.dead_letters().await;
    for l in letters.iter().filter(|l| l.reason.as_str() == "crashed") {
        assert_eq!(l.attempts, MAX_ATTEMPTS, "{l:?}");
        let job: Job = rmp_serde::from_slice(&l.data).expect("payload");
        assert_eq!(job.seq, 90);
    }
    let big = letters
        .iter()
        .filter(|l| l.data.len() == 10 * 1024 * 1024)
        .count();
    assert_eq!(
        big, 2,
        "the 10 MB payload is kept in each group's dead letter"
    );
}

/// Publishes the next `n` jobs.
async fn publish(rig: &Rig, seq: &mut u64, n: u64, fate_of: &dyn Fn(u64) -> u8) {
    let jobs: Vec<Job> = (*seq..*seq + n)
        .map(|s| Job {
            seq: s,
            fate: fate_of(s),
        })
        .collect();
    *seq += n;
    rig.publish_until_acked(&jobs, Duration::from_secs(10))
        .await;
}

/// A job that crashes its process takes down whatever runs beside it, and those co-travellers
/// are reclaimed together with it. Every crash counts as a failed attempt of each of them, so
/// unless the suspect is isolated, the innocent jobs reach the attempt limit with it and are
/// dead-lettered as `crashed` although they never failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_running_beside_a_crashing_job_are_not_dead_lettered_with_it() {
    let _one = SERIAL_SCENARIOS.lock().await;
    let groups = [STEADY];
    let rig = Rig::start(false, &groups).await;
    // 6 jobs that take 300 ms each, then the crashing job, published before the worker runs: it
    // reads all 7 in one batch (concurrency 16), and all are in flight when the last one aborts
    // it.
    let jobs: Vec<Job> = (0..7)
        .map(|seq| Job {
            seq,
            fate: if seq == 6 { fate::CRASH } else { fate::SLOW },
        })
        .collect();
    rig.publish_until_acked(&jobs, Duration::from_secs(10))
        .await;
    // One worker, restarted after each crash: it reclaims whatever its predecessor held.
    rig.workers().start(WorkerConfig::new("steady"));
    let v = rig
        .settle(
            "a crashing job and its co-travellers",
            Duration::from_secs(90),
        )
        .await;
    rig.assert_exactly_one_place(&v).await;
    let g = v.group(STEADY);
    assert_eq!(g.dead_by_reason.get("crashed"), Some(&1));
    assert_eq!(g.handled, 6, "the innocent jobs are handled");
}

/// Two handlers of one process each reclaim a suspect at the same moment (both were pending
/// on a consumer that died twice): one handler's innocent job and the other handler's job
/// that aborts the process. "Alone in its handler" is not enough — the process dies as a
/// whole — so a suspect runs alone in the runtime, and is claimed only once it can (a claimed
/// suspect waiting behind the crashing one would be charged for a run it never had). Without
/// that, the innocent job dies beside the crashing one until it is dead-lettered as `crashed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspect_runs_alone_in_its_process_not_only_in_its_handler() {
    let _one = SERIAL_SCENARIOS.lock().await;
    let groups = [STEADY, SERIAL];
    let rig = Rig::start(false, &groups).await;
    let jobs = [
        Job {
            seq: 0,
            fate: fate::SLOW,
        },
        Job {
            seq: 1,
            fate: fate::CRASH,
        },
    ];
    rig.publish_until_acked(&jobs, Duration::from_secs(10))
        .await;
    // A consumer that died twice holding them: in `steady` the innocent job, in `serial` the
    // crashing one (the other entry of each group is done with), each delivered 3 times and
    // idle — the next claim makes each a suspect.
    let mut c = common::conn(&rig.url).await;
    let mut ids = Vec::new();
    for (group, suspect) in [(STEADY, 0), (SERIAL, 1)] {
        let reply: redis::Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(group)
            .arg("ghost")
            .arg("COUNT")
            .arg(2)
            .arg("STREAMS")
            .arg(KEY)
            .arg(">")
            .query_async(&mut c)
            .await
            .expect("XREADGROUP");
        let read = entry_ids(reply);
        assert_eq!(read.len(), 2, "{group}: {read:?}");
        let () = redis::cmd("XACK")
            .arg(KEY)
            .arg(group)
            .arg(&read[1 - suspect])
            .query_async(&mut c)
            .await
            .expect("XACK");
        let _: redis::Value = redis::cmd("XCLAIM")
            .arg(KEY)
            .arg(group)
            .arg("ghost")
            .arg(0)
            .arg(&read[suspect])
            .arg("IDLE")
            .arg(60_000)
            .arg("RETRYCOUNT")
            .arg(3)
            .arg("JUSTID")
            .query_async(&mut c)
            .await
            .expect("XCLAIM");
        ids.push(read[suspect].clone());
    }
    // One worker running both handlers, restarted after each crash: both reclaimers find their
    // suspect at their first scan.
    rig.workers().start(WorkerConfig::new("steady,serial"));
    rig.wait(
        "the innocent job handled or dead-lettered, the crashing one dead-lettered",
        Duration::from_secs(90),
        || async {
            let v = rig.verdict().await;
            let steady = v.group(STEADY);
            let serial = v.group(SERIAL);
            (steady.handled == 1 || steady.dead_by_reason.contains_key("crashed"))
                && serial.dead_by_reason.get("crashed") == Some(&1)
        },
    )
    .await;
    let v = rig.verdict().await;
    assert!(v.exited >= 1, "the crashing job took down a process");
    let steady = v.group(STEADY);
    assert_eq!(
        steady.dead_by_reason.get("crashed"),
        None,
        "the innocent job ({}) is not dead-lettered beside the crashing one ({})",
        ids[0],
        ids[1]
    );
    assert_eq!(steady.handled, 1, "the innocent job is handled");
}

/// The entry ids of an `XREADGROUP` reply for one stream.
fn entry_ids(reply: redis::Value) -> Vec<String> {
    let redis::Value::Array(streams) = reply else {
        panic!("XREADGROUP reply: {reply:?}");
    };
    let mut ids = Vec::new();
    for stream in streams {
        let redis::Value::Array(mut parts) = stream else {
            panic!("XREADGROUP stream: {stream:?}");
        };
        let Some(redis::Value::Array(entries)) = parts.pop() else {
            panic!("XREADGROUP entries");
        };
        for entry in entries {
            let redis::Value::Array(mut e) = entry else {
                panic!("XREADGROUP entry");
            };
            let id: String = redis::from_redis_value(e.swap_remove(0)).expect("entry id");
            ids.push(id);
        }
    }
    ids
}
