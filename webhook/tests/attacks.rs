//! The attacks a tenant can make on the webhook, against the real binary: worst-case bodies
//! inside every limit, two and eight at once (memory); idle, slowloris and slow-body connections
//! while the API server sends reviews (connections); and VMIs as large as the API server stores,
//! listed from a fake API server at start (`vmi_list`). Each prints what it measured.
//!
//! `KMW_BENCH_BINARY=<path>` measures another build (a release build: the Deployment's image).
mod common;
#[path = "attacks/vmi_list.rs"]
mod vmi_list;

use common::*;
use http::StatusCode;
use kube_metrics_webhook::certgen::Bundle;
use kube_metrics_webhook::patch::complexity;
use kube_metrics_webhook::state::{BODY_CAP, REVIEW_SLOTS, SMALL_BODY};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// What the webhook may grow by over idle with every review slot at its worst: 4 slots of ~9 MiB
/// (docs/threat-model.md has the arithmetic). Debug builds allocate the same heap.
const REVIEWS_BUDGET_MIB: f64 = 48.0;

fn program() -> PathBuf {
    std::env::var_os("KMW_BENCH_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_kube-metrics-webhook")))
}

/// The webhook as the Deployment runs it (its allocator's environment), with `args`.
fn spawn(secret: &SecretDir, args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Binary {
    let allocator = deployment::allocator_env();
    let mut env = env.to_vec();
    env.extend(
        allocator
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_os_str())),
    );
    let mut args = args.to_vec();
    args.extend(["--log-level", "warn,kube_metrics_webhook::serve=info"]);
    Binary::spawn(&program(), secret, &args, &env, ServerLog::Drain)
}

fn start(secret: &SecretDir) -> Binary {
    spawn(secret, &["--vmi-lookup", "off"], &[])
}

/// A launcher-looking pod review around `spec` and `annotations`.
fn review(spec: Value, annotations: Value) -> Vec<u8> {
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u-0", "kind": {"kind": "Pod"}, "operation": "CREATE", "namespace": "ns-0",
                    "object": {"kind": "Pod", "metadata": {"labels": {"kubevirt.io": "virt-launcher"},
                                                             "annotations": annotations},
                               "spec": spec}}});
    serde_json::to_vec(&review).unwrap()
}

/// The bodies: the reported attack (25,000 containers, 100,000 tokens), the most containers inside
/// the token limit, and the worst inside every limit: the
/// token limit spent on one-member objects (the costliest JSON per token) where the typed pod does
/// not look, and the rest of the byte cap in one annotation, which the typed pod copies again.
fn bodies() -> Vec<(&'static str, Vec<u8>, StatusCode)> {
    let containers = |n: usize| -> Vec<Value> { (0..n).map(|_| json!({"name": "c"})).collect() };
    let attack = review(json!({"containers": containers(25_000)}), json!({}));
    let inside = review(json!({"containers": containers(9_900)}), json!({}));
    let objects = (complexity::LIMIT.tokens - 200) / 3;
    let junk: Vec<Value> = (0..objects).map(|_| json!({"a": 0})).collect();
    let spec = json!({"containers": [{"name": "compute"}], "junk": junk});
    let without = review(spec.clone(), json!({"a": ""})).len();
    let fill = "x".repeat(BODY_CAP - without - 64);
    let worst = review(spec, json!({ "a": fill }));
    assert!(complexity::check(&worst, complexity::LIMIT).is_ok());
    assert!(worst.len() <= BODY_CAP);
    // 400 is refused before parsing (with `failurePolicy: Ignore` the pod is admitted as is);
    // 200 is an answer, the oversized pod skipped as `unparseable`.
    vec![
        ("25,000 containers", attack, StatusCode::BAD_REQUEST),
        ("9,900 containers", inside, StatusCode::OK),
        ("worst inside the limits", worst, StatusCode::OK),
    ]
}

/// Sends `body` on `n` connections at once; the statuses.
async fn at_once(addr: SocketAddr, body: &[u8], n: usize) -> Vec<StatusCode> {
    let connector = tls_connector(&[&bundle_of_test()]);
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (connector, body) = (connector.clone(), body.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&connector, addr).await.unwrap();
            conn.send(
                http::Method::POST,
                "/mutate",
                Some("application/json"),
                body,
            )
            .await
            .map_or(StatusCode::INTERNAL_SERVER_ERROR, |(status, _)| status)
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses
}

static BUNDLE: std::sync::OnceLock<Bundle> = std::sync::OnceLock::new();

fn bundle_of_test() -> Bundle {
    BUNDLE.get_or_init(bundle).clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worst_case_bodies_two_and_eight_at_once_stay_within_the_budget() {
    let mut secret = SecretDir::new();
    secret.publish_bundle(&bundle_of_test());
    let server = start(&secret);
    let pid = server.child.id();
    // Once first, so the TLS and HTTP machinery is not counted to a body.
    at_once(server.addr, &fixture(), 2).await;
    let (idle, _) = memory_kib(pid);
    println!("attack 4: idle VmRSS {:.1} MiB", mib(idle));
    let mut worst = 0.0_f64;
    for (name, body, want) in bodies() {
        for n in [2, 8] {
            reset_peak(pid);
            let (before, _) = memory_kib(pid);
            let started = Instant::now();
            let statuses = at_once(server.addr, &body, n).await;
            let took = started.elapsed();
            let (after, peak) = memory_kib(pid);
            let grew = mib(peak.saturating_sub(idle));
            worst = worst.max(grew);
            println!(
                "attack 4: {n} x {name} ({:.2} MiB, {REVIEW_SLOTS} slots) in {:.2} s: {statuses:?}; \
                 VmRSS {:.1} -> {:.1} MiB, peak {:.1} MiB (+{grew:.1} over idle)",
                body.len() as f64 / 1048576.0,
                took.as_secs_f64(),
                mib(before),
                mib(after),
                mib(peak),
            );
            // Every review is answered, none dropped for memory or cut off by another.
            assert!(statuses.iter().all(|s| *s == want), "{statuses:?}");
        }
    }
    let (_, metrics) = admin_get(server.admin_addr, "/metrics").await;
    assert_eq!(
        metric(
            &metrics,
            "kube_metrics_webhook_oversized_pods_total{part=\"containers\"}"
        ),
        Some(10.0),
        "the 9,900-container pods are skipped before their typed read"
    );
    assert!(
        worst < REVIEWS_BUDGET_MIB,
        "grew {worst:.1} MiB over idle, budget {REVIEWS_BUDGET_MIB} MiB"
    );
}

/// Connects and sends nothing.
async fn silent(addr: SocketAddr) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(addr).await.unwrap()
}

/// Completes TLS, then sends a head one byte at a time, never finishing it.
async fn slowloris(addr: SocketAddr) -> tokio::task::JoinHandle<()> {
    let connector = tls_connector(&[&bundle_of_test()]);
    let mut stream = tls_stream(&connector, addr).await.unwrap();
    tokio::spawn(async move {
        for byte in b"POST /mutate HTTP/1.1\r\nHost: kube-metrics-webhook"
            .iter()
            .cycle()
        {
            if stream.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

/// Completes TLS and a head declaring a body of `length`, then sends it one byte at a time.
async fn slow_body(addr: SocketAddr, length: usize) -> tokio::task::JoinHandle<()> {
    let connector = tls_connector(&[&bundle_of_test()]);
    let mut stream = tls_stream(&connector, addr).await.unwrap();
    let head = format!(
        "POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n{{",
    );
    tokio::spawn(async move {
        if stream.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if stream.write_all(b" ").await.is_err() {
                return;
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_slow_and_trickling_connections_do_not_keep_reviews_out() {
    let mut secret = SecretDir::new();
    secret.publish_bundle(&bundle_of_test());
    let server = start(&secret);
    let addr = server.addr;
    let mut held = Vec::new();
    for _ in 0..300 {
        held.push(silent(addr).await);
    }
    let mut tasks = Vec::new();
    for _ in 0..20 {
        tasks.push(slowloris(addr).await);
    }
    // Large ones take readers' slots; small ones are read before any slot is taken.
    for _ in 0..2 * REVIEW_SLOTS {
        tasks.push(slow_body(addr, BODY_CAP - 1).await);
        tasks.push(slow_body(addr, SMALL_BODY).await);
    }
    // The attackers keep coming back while the API server sends its reviews.
    let attacker = tokio::spawn(async move {
        let mut more = Vec::new();
        for _ in 0..100 {
            more.push(silent(addr).await);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        more
    });
    let connector = tls_connector(&[&bundle_of_test()]);
    let (mut answered, mut slowest) = (0, Duration::ZERO);
    for _ in 0..15 {
        let started = Instant::now();
        let reviewed = async {
            let mut conn = Conn::open(&connector, addr).await?;
            conn.review_fixture().await
        };
        match tokio::time::timeout(Duration::from_secs(5), reviewed).await {
            Ok(Ok((StatusCode::OK, body))) if answer_uid(&body).is_some() => answered += 1,
            other => println!("attack 5: review failed: {other:?}"),
        }
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, metrics) = admin_get(server.admin_addr, "/metrics").await;
    let evicted = metric(
        &metrics,
        "kube_metrics_webhook_connections_total{action=\"evicted\"}",
    )
    .unwrap_or_default();
    let refused = metric(
        &metrics,
        "kube_metrics_webhook_connections_total{action=\"refused\"}",
    )
    .unwrap_or_default();
    let busy = metric(
        &metrics,
        "kube_metrics_webhook_requests_total{result=\"busy\"}",
    )
    .unwrap_or_default();
    let (rss, _) = memory_kib(server.child.id());
    println!(
        "attack 5: 300+ idle TCP, 20 slowloris, {} large and {0} small slow bodies: {answered} of 15 reviews answered, \
         slowest {:.0} ms; connections evicted {evicted}, refused {refused}; 503 busy {busy}; VmRSS {:.1} MiB",
        2 * REVIEW_SLOTS,
        slowest.as_secs_f64() * 1000.0,
        mib(rss),
    );
    assert_eq!(answered, 15);
    assert!(evicted > 0.0, "the cap was reached and made room");
    drop(attacker.await);
    for task in tasks {
        task.abort();
    }
}
