//! The yardsticks: `redis-benchmark` with a custom `XADD`, and hand-written redis-rs loops that
//! do the least work possible (constant, pre-encoded fields; replies not even parsed into ids).

use std::process::Command;
use std::time::{Duration, Instant};

use redis::Value;
use redis::aio::MultiplexedConnection;

/// A plain connection with generous timeouts (pipelines of 4 KB entries are megabytes).
pub async fn conn(url: &str) -> MultiplexedConnection {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(10)))
        .set_response_timeout(Some(Duration::from_secs(60)));
    redis::Client::open(url)
        .expect("client")
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("connect")
}

/// `redis-benchmark -p PORT -n N -P pipeline -c clients XADD key * f v`, in requests per second;
/// `Err` with the reason when it cannot run.
pub fn redis_benchmark(
    port: u16,
    n: usize,
    pipeline: usize,
    clients: usize,
) -> Result<f64, String> {
    let out = Command::new("redis-benchmark")
        .args(["-p", &port.to_string(), "-n", &n.to_string()])
        .args(["-P", &pipeline.to_string(), "-c", &clients.to_string()])
        .args(["--csv", "XADD", "rb:{bench}", "*", "f", "v"])
        .output()
        .map_err(|e| format!("redis-benchmark not runnable: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "redis-benchmark exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    // `"test","rps",...` then `"XADD rb:{bench} * f v","485592.22",...`
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|l| l.split(',').nth(1))
        .filter_map(|rps| rps.trim_matches('"').parse::<f64>().ok())
        .next_back()
        .ok_or_else(|| format!("unexpected redis-benchmark output: {text}"))
}

/// One `XADD key * fields...`, its buffers sized up front as the framework sizes its own.
pub fn xadd(key: &str, fields: &[(String, Vec<u8>)]) -> redis::Cmd {
    let bytes: usize = fields.iter().map(|(k, v)| k.len() + v.len()).sum();
    let mut cmd = redis::Cmd::with_capacity(3 + 2 * fields.len(), 6 + key.len() + bytes);
    cmd.arg("XADD").arg(key).arg("*");
    for (name, value) in fields {
        cmd.arg(name.as_str()).arg(value.as_slice());
    }
    cmd
}

/// XADDs `n` entries with `fields`, `batch` per pipeline, one pipeline in flight; msg/s.
pub async fn pipelined_xadd(
    conn: &mut MultiplexedConnection,
    key: &str,
    fields: &[(String, Vec<u8>)],
    n: usize,
    batch: usize,
) -> f64 {
    let start = Instant::now();
    let mut sent = 0;
    while sent < n {
        let k = batch.min(n - sent);
        let mut pipe = redis::Pipeline::with_capacity(k);
        for _ in 0..k {
            pipe.add_command(xadd(key, fields));
        }
        pipe.query_async::<()>(conn).await.expect("XADD pipeline");
        sent += k;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// The ids of an `XREADGROUP` reply (RESP2: `[[key, [[id, fields], ...]]]`).
fn ids(reply: Value) -> Vec<Vec<u8>> {
    let Value::Array(streams) = reply else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for s in streams {
        let Value::Array(mut parts) = s else { continue };
        let Some(Value::Array(entries)) = parts.pop() else {
            continue;
        };
        for e in entries {
            if let Value::Array(mut e) = e
                && !e.is_empty()
                && let Value::BulkString(id) = e.swap_remove(0)
            {
                out.push(id);
            }
        }
    }
    out
}

/// Consumes `n` entries of `key` in a new group: `XREADGROUP COUNT count`, then one `XACK` for
/// the batch; msg/s.
pub async fn consume_loop(
    conn: &mut MultiplexedConnection,
    key: &str,
    group: &str,
    n: usize,
    count: usize,
) -> f64 {
    let _: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("DESTROY")
        .arg(key)
        .arg(group)
        .query_async(conn)
        .await;
    redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(key)
        .arg(group)
        .arg("0")
        .query_async::<()>(conn)
        .await
        .expect("XGROUP CREATE");
    let start = Instant::now();
    let mut done = 0;
    while done < n {
        let reply: Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(group)
            .arg("baseline")
            .arg("COUNT")
            .arg(count)
            .arg("STREAMS")
            .arg(key)
            .arg(">")
            .query_async(conn)
            .await
            .expect("XREADGROUP");
        let ids = ids(reply);
        if ids.is_empty() {
            break;
        }
        done += ids.len();
        redis::cmd("XACK")
            .arg(key)
            .arg(group)
            .arg(ids)
            .query_async::<i64>(conn)
            .await
            .expect("XACK");
    }
    assert_eq!(
        done, n,
        "the baseline consumed a different number of entries"
    );
    n as f64 / start.elapsed().as_secs_f64()
}

/// XADDs `n` entries with `fields` from `tasks` tasks sharing one multiplexed connection, each
/// awaiting its XADDs in turn; msg/s.
pub async fn concurrent_xadd(
    conn: &MultiplexedConnection,
    key: &str,
    fields: &[(String, Vec<u8>)],
    n: usize,
    tasks: usize,
) -> f64 {
    let per = n.div_ceil(tasks);
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let (mut conn, fields, key) = (conn.clone(), fields.to_vec(), key.to_owned());
        let count = per.min(n.saturating_sub(t * per));
        set.spawn(async move {
            for _ in 0..count {
                xadd(&key, &fields)
                    .query_async::<()>(&mut conn)
                    .await
                    .expect("XADD");
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("XADD task");
    }
    n as f64 / start.elapsed().as_secs_f64()
}
