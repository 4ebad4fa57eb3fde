//! Benchmark, not a timed test (ignored by default): reviews/s and p50/p99 latency for the
//! fixture pod over TLS with keep-alive, several connections, loopback only; then the server's
//! peak RSS (VmHWM). Run it with:
//!
//! `cargo test --release -p kube-metrics-webhook --test bench -- --ignored --nocapture`
mod common;

use common::*;
use http::StatusCode;
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 4;
const DURATION: Duration = Duration::from_secs(5);
/// Backstop per connection, so the loop ends even on a very fast machine.
const MAX_PER_CONNECTION: usize = 200_000;

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
async fn bench_reviews_over_tls() {
    let bundle = bundle();
    let mut secret = SecretDir::new();
    secret.publish_bundle(&bundle);
    // The per-review log lines are part of the cost being measured; they are drained.
    let server = Binary::start(
        &secret,
        &["--log-level", "warn,kube_metrics_webhook::serve=info"],
        ServerLog::Drain,
    );
    let addr = server.addr;

    let connector = tls_connector(&[&bundle]);
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..CONNECTIONS {
        let connector = connector.clone();
        clients.push(tokio::spawn(async move {
            let mut conn = Conn::open(&connector, addr).await.unwrap();
            let mut latencies = Vec::new();
            while started.elapsed() < DURATION && latencies.len() < MAX_PER_CONNECTION {
                let sent = Instant::now();
                let (status, body) = conn.review_fixture().await.unwrap();
                latencies.push(sent.elapsed());
                assert_eq!(status, StatusCode::OK);
                assert_eq!(answer_uid(&body).as_deref(), Some(FIXTURE_UID));
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for client in clients {
        latencies.extend(client.await.unwrap());
    }
    let elapsed = started.elapsed();
    let hwm = vm_hwm_kib(server.child.id());
    drop(server);

    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "bench: {} reviews over {CONNECTIONS} keep-alive TLS connections in {:.2} s: {:.0} reviews/s, p50 {:.3} ms, p99 {:.3} ms",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
    );
    println!(
        "bench: webhook peak RSS (VmHWM) {} KiB",
        hwm.map_or("unknown".into(), |k| k.to_string())
    );
    println!(
        "bench: fixture {} bytes; client and server share the same 2 cores",
        fixture().len()
    );
}
