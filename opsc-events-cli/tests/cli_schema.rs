//! `opsc schema registry`, `opsc schema lock` and `opsc schema check` (docs/CONTRACTS.md).

#[path = "../../tests/common/asyncapi.rs"]
mod asyncapi_check;
mod cli_support;

use cli_support::{conn, json_lines, opsc, run};
use opsc_events_testkit::RedisServer;

const KEY: &str = "opsconductor:{schemas}:registry";

/// A registry entry as a service in any language writes it.
fn put(c: &mut redis::Connection, field: &str, value: serde_json::Value) {
    let () = redis::cmd("HSET")
        .arg(KEY)
        .arg(field)
        .arg(value.to_string())
        .query(c)
        .expect("HSET");
}

fn producer(service: &str, version: u16, fp: &str) -> serde_json::Value {
    serde_json::json!({
        "service": service, "role": "producer", "stream": "assets", "name": "asset_created",
        "version": version, "fingerprint": fp, "shape": {"type": "unit"}, "reads": [],
        "last_seen_ms": 1_700_000_000_000u64,
    })
}

fn consumer(service: &str, version: u16, fp: &str) -> serde_json::Value {
    serde_json::json!({
        "service": service, "role": "consumer", "stream": "assets", "name": "asset_created",
        "version": version, "fingerprint": fp, "shape": {"type": "unit"},
        "reads": [{"version": version, "fingerprint": fp}],
        "handler": {"handler": "inventory::index", "group": "inventory.index", "retries": 3,
                    "dead_letter": true, "concurrency": 1, "timeout_ms": 30000},
        "last_seen_ms": 1_700_000_000_000u64,
    })
}

#[test]
fn registry_shows_producers_and_consumers_and_flags_a_mismatch() {
    let server = RedisServer::start();
    let mut c = conn(&server);
    put(&mut c, "p1", producer("api", 1, "00000000000000aa"));
    put(&mut c, "c1", consumer("inventory", 1, "00000000000000aa"));

    let out = opsc(&server, &["schema", "registry"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("asset_created (stream assets)"), "{text}");
    assert!(text.contains("producer api: v1 00000000000000aa"), "{text}");
    assert!(
        text.contains("consumer inventory (group inventory.index): v1 00000000000000aa"),
        "{text}"
    );
    assert!(!text.contains("MISMATCH"), "{text}");

    // Another producer writes v1 with another payload.
    put(&mut c, "p2", producer("legacy", 1, "00000000000000bb"));
    let out = opsc(&server, &["schema", "registry"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.contains("MISMATCH")
            && l.contains("legacy")
            && l.contains("00000000000000bb")),
        "{text}"
    );
    let json = &json_lines(&opsc(&server, &["--json", "schema", "registry"]))[0];
    assert_eq!(json["entries"].as_array().map(Vec::len), Some(3), "{json}");
    assert_eq!(json["mismatches"][0]["event"], "asset_created", "{json}");
}

#[test]
fn lock_prints_a_services_lock_from_the_registry() {
    let server = RedisServer::start();
    let mut c = conn(&server);
    put(&mut c, "c1", consumer("inventory", 1, "00000000000000aa"));
    let out = opsc(&server, &["schema", "lock", "--service", "inventory"]);
    assert!(out.status.success(), "{out:?}");
    let lock: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON lock");
    assert_eq!(lock["events"][0]["name"], "asset_created");
    assert_eq!(lock["events"][0]["fingerprint"], "00000000000000aa");
    assert_eq!(lock["events"][0]["handled"], true);

    let out = opsc(&server, &["schema", "lock", "--service", "nobody"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

fn lock_file(dir: &std::path::Path, name: &str, events: serde_json::Value) -> String {
    let path = dir.join(name);
    let text = serde_json::json!({"lock_format": 1, "events": events}).to_string();
    std::fs::write(&path, text).expect("write lock");
    path.display().to_string()
}

fn locked(version: u16, fp: &str, handled: bool, upcast_into: &[u16]) -> serde_json::Value {
    serde_json::json!({"name": "asset_created", "version": version, "stream": "assets",
        "fingerprint": fp, "shape": null, "published": true, "handled": handled,
        "upcast_into": upcast_into})
}

#[test]
fn check_fails_naming_the_event_for_each_broken_rule() {
    let dir = std::env::temp_dir().join(format!("opsc-schema-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let old = lock_file(
        &dir,
        "old.lock",
        serde_json::json!([
            locked(1, "00000000000000aa", false, &[2]),
            locked(2, "00000000000000bb", true, &[])
        ]),
    );
    let check = |current: &str| {
        run(
            &[
                "schema".into(),
                "check".into(),
                "--lock".into(),
                old.clone(),
                "--current".into(),
                current.into(),
            ],
            &[],
        )
    };
    // The same lock (no Redis given: the check does not connect).
    let out = check(&old);
    assert!(out.status.success(), "{out:?}");

    let cases = [
        (
            "fingerprint changed",
            serde_json::json!([
                locked(1, "00000000000000aa", false, &[2]),
                locked(2, "00000000000000cc", true, &[])
            ]),
            "`asset_created` v2: the fingerprint changed",
        ),
        (
            "version removed",
            serde_json::json!([locked(2, "00000000000000bb", true, &[])]),
            "`asset_created` v1: the version disappeared",
        ),
        (
            "upcast removed",
            serde_json::json!([
                locked(1, "00000000000000aa", false, &[]),
                locked(2, "00000000000000bb", true, &[])
            ]),
            "`asset_created` v1: the upcast path was removed",
        ),
    ];
    for (case, events, message) in cases {
        let current = lock_file(&dir, "new.lock", events);
        let out = check(&current);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{case}: {stderr}");
        assert!(stderr.contains(message), "{case}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn asyncapi_describes_the_registry() {
    let server = RedisServer::start();
    let mut c = conn(&server);
    put(&mut c, "p1", producer("api", 1, "00000000000000aa"));
    put(&mut c, "c1", consumer("inventory", 1, "00000000000000aa"));
    let out = opsc(&server, &["asyncapi"]);
    assert!(out.status.success(), "{out:?}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    asyncapi_check::assert_valid("the output of `opsc asyncapi`", &doc);
    assert_eq!(doc["asyncapi"], "3.0.0");
    assert_eq!(
        doc["channels"]["assets"]["address"],
        "opsconductor:{assets}:events"
    );
    assert_eq!(
        doc["components"]["messages"]["asset_created.v1"]["x-opsc-fingerprint"],
        "00000000000000aa"
    );
    assert_eq!(
        doc["operations"]["publish.asset_created.v1"]["action"],
        "send"
    );
    assert_eq!(
        doc["operations"]["receive.inventory.index.asset_created.v1"]["x-opsc-group"],
        "inventory.index"
    );
}
