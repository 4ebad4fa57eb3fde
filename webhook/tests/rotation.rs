//! THE rotation test: clients keep sending reviews (fresh TLS connections and keep-alive ones)
//! while the key and certificate are swapped the way the kubelet swaps a Secret volume. No request
//! may fail, new connections must see the new certificate, and a broken pair must not be used.
mod common;

use common::*;
use http::StatusCode;
use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use tokio_rustls::TlsConnector;

/// What one client loop saw.
#[derive(Debug, Default)]
struct Seen {
    ok: u64,
    failures: Vec<String>,
    /// Leaf certificates presented by the server, in order of first sighting.
    leaves: Vec<Vec<u8>>,
}

/// What one client loop has done so far, readable while it runs: the test waits on it instead of
/// sleeping for a guessed time.
#[derive(Debug, Default)]
struct Progress {
    ok: AtomicU64,
    last_leaf: Mutex<Vec<u8>>,
}

impl Progress {
    fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    fn last_leaf(&self) -> Vec<u8> {
        self.last_leaf.lock().unwrap().clone()
    }
}

impl Seen {
    fn record(
        &mut self,
        progress: &Progress,
        leaf: &[u8],
        result: anyhow::Result<(StatusCode, bytes::Bytes)>,
    ) {
        if self.leaves.last().map(Vec::as_slice) != Some(leaf) {
            self.leaves.push(leaf.to_vec());
            *progress.last_leaf.lock().unwrap() = leaf.to_vec();
        }
        match result {
            Ok((StatusCode::OK, body)) if answer_uid(&body).as_deref() == Some(FIXTURE_UID) => {
                self.ok += 1;
                progress.ok.fetch_add(1, Ordering::Relaxed);
            }
            Ok((status, body)) => self
                .failures
                .push(format!("{status}: {}", String::from_utf8_lossy(&body))),
            Err(error) => self.failures.push(format!("{error:#}")),
        }
    }
}

/// A new TLS connection per request.
async fn fresh_connections(
    connector: TlsConnector,
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    progress: Arc<Progress>,
) -> Seen {
    let mut seen = Seen::default();
    // Bounded: the test stops it after a few seconds; the cap is a backstop.
    for _ in 0..100_000 {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        match Conn::open(&connector, addr).await {
            Ok(mut conn) => {
                let result = conn.review_fixture().await;
                seen.record(&progress, &conn.peer_leaf.clone(), result);
            }
            Err(error) => seen.failures.push(format!("connect: {error:#}")),
        }
    }
    seen
}

/// One keep-alive connection for the whole test.
async fn keep_alive(
    connector: TlsConnector,
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    progress: Arc<Progress>,
) -> Seen {
    let mut seen = Seen::default();
    let mut conn = match Conn::open(&connector, addr).await {
        Ok(conn) => conn,
        Err(error) => {
            seen.failures.push(format!("connect: {error:#}"));
            return seen;
        }
    };
    for _ in 0..1_000_000 {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let result = conn.review_fixture().await;
        seen.record(&progress, &conn.peer_leaf.clone(), result);
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_the_secret_fails_no_request() {
    const ROTATIONS: usize = 4;
    let bundles: Vec<_> = (0..=ROTATIONS).map(|_| bundle()).collect();
    let mut secret = SecretDir::new();
    secret.publish_bundle(&bundles[0]);
    let server = Server::start(&secret, test_limits()).await.unwrap();
    // The client trusts every CA: each rotation brings a new one, as a re-run certgen would.
    let connector = tls_connector(&bundles.iter().collect::<Vec<_>>());

    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    // Index i: fresh connections when even, one keep-alive connection when odd.
    let progress: Vec<Arc<Progress>> = (0..4).map(|_| Arc::default()).collect();
    for pair in progress.chunks(2) {
        clients.push(tokio::spawn(fresh_connections(
            connector.clone(),
            server.addr(),
            stop.clone(),
            pair[0].clone(),
        )));
        clients.push(tokio::spawn(keep_alive(
            connector.clone(),
            server.addr(),
            stop.clone(),
            pair[1].clone(),
        )));
    }
    let fresh: Vec<_> = progress.iter().step_by(2).cloned().collect();

    let served = |clients: &[Arc<Progress>], leaf: Vec<u8>| {
        let clients = clients.to_vec();
        move || clients.iter().all(|client| client.last_leaf() == leaf)
    };
    // Every client, keep-alive ones included, is served the first version before the first swap.
    wait_until(
        "every client served version 0",
        served(&progress, leaf_der(&bundles[0])),
    )
    .await;
    for (version, bundle) in bundles.iter().enumerate().skip(1) {
        secret.publish_bundle(bundle);
        // Picked up by the server, and then served to every client that connects anew.
        wait_for_reloads(&server, "success", version + 1).await;
        wait_until(
            &format!("every fresh client served version {version}"),
            served(&fresh, leaf_der(bundle)),
        )
        .await;
    }
    // A broken pair (key of another certificate): the last good one must stay.
    let stranger = bundle();
    secret.publish(&bundles[ROTATIONS].cert_pem, &stranger.key_pem);
    wait_for_reloads(&server, "failure", 1).await;
    requests_after(&progress, "the broken pair").await;
    // And an empty certificate file.
    secret.publish("", &bundles[ROTATIONS].key_pem);
    wait_for_reloads(&server, "failure", 2).await;
    requests_after(&progress, "the empty certificate").await;
    // Enough requests per client for the count assertion below.
    wait_until("more than 10 requests per client", || {
        progress.iter().all(|client| client.ok() > 10)
    })
    .await;
    stop.store(true, Ordering::Relaxed);

    // Leaves as bundle indices, for readable assertions.
    let index = |leaf: &Vec<u8>| bundles.iter().position(|b| &leaf_der(b) == leaf);
    let mut total = 0;
    let mut fresh_leaves = HashSet::new();
    for (i, client) in clients.into_iter().enumerate() {
        let seen = client.await.unwrap();
        assert!(
            seen.failures.is_empty(),
            "client {i}: {} failures, first: {:?}",
            seen.failures.len(),
            seen.failures.first()
        );
        assert!(seen.ok > 10, "client {i} made only {} requests", seen.ok);
        total += seen.ok;
        if i % 2 == 0 {
            // Fresh connections: started on the first certificate, ended on the last good one.
            let order: Vec<_> = seen.leaves.iter().map(index).collect();
            assert_eq!(order.first(), Some(&Some(0)), "client {i}: {order:?}");
            assert_eq!(
                order.last(),
                Some(&Some(ROTATIONS)),
                "client {i}: {order:?}"
            );
            fresh_leaves.extend(seen.leaves);
        } else {
            // A keep-alive connection keeps the certificate it was opened with.
            let order: Vec<_> = seen.leaves.iter().map(index).collect();
            assert_eq!(order, [Some(0)], "client {i}");
        }
    }
    let every_leaf: HashSet<_> = bundles.iter().map(leaf_der).collect();
    assert_eq!(
        fresh_leaves, every_leaf,
        "every version served, the broken ones never"
    );
    println!("{total} reviews during {ROTATIONS} rotations and 2 broken pairs, none failed");

    let (_, metrics) = server.admin_get("/metrics").await;
    let reloads = |result| {
        metric(
            &metrics,
            &format!("kube_metrics_webhook_certificate_reloads_total{{result=\"{result}\"}}"),
        )
    };
    assert_eq!(
        reloads("success"),
        Some((ROTATIONS + 1) as f64),
        "{metrics}"
    );
    assert_eq!(reloads("failure"), Some(2.0), "{metrics}");
    assert_eq!(server.admin_get("/readyz").await.0, StatusCode::OK);
}

/// An expired certificate is served (rustls does not look at dates) but the API server refuses it,
/// so the webhook is not ready with it: the Service sends reviews to replicas that can answer them.
/// Ready again as soon as a valid one is mounted; one that merely expires soon stays ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_is_not_ready_until_a_valid_one_is_mounted() {
    let mut secret = SecretDir::new();
    let (cert, key) = pair_until(1_000_000_000);
    secret.publish(&cert, &key);
    let server = Server::start(&secret, test_limits()).await.unwrap();
    assert_eq!(
        server.admin_get("/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let (_, metrics) = server.admin_get("/metrics").await;
    assert_eq!(
        metric(
            &metrics,
            "kube_metrics_webhook_certificate_expiry_timestamp_seconds"
        ),
        Some(1e9),
        "{metrics}"
    );

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (cert, key) = pair_until(now + 3 * 86_400);
    secret.publish(&cert, &key);
    wait_for_reloads(&server, "success", 2).await;
    assert_eq!(server.admin_get("/readyz").await.0, StatusCode::OK);
    let _ = server.shutdown.send(true);
}

/// A first install: the webhook's Secret volume is optional (manifests/base/webhook-deployment.yaml),
/// so the webhook starts before cert-manager or certgen made the Secret, with nothing mounted. It
/// must wait, not ready, and serve once the kubelet projects the files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_certificate_it_waits_not_ready_until_one_is_mounted() {
    let mut secret = SecretDir::new();
    let server = Server::start(&secret, test_limits()).await.unwrap();
    assert_eq!(
        server.admin_get("/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(server.admin_get("/healthz").await.0, StatusCode::OK);

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (cert, key) = pair_until(now + 3 * 86_400);
    secret.publish(&cert, &key);
    wait_for_reloads(&server, "success", 1).await;
    assert_eq!(server.admin_get("/readyz").await.0, StatusCode::OK);
    let _ = server.shutdown.send(true);
}

/// How long any one stage of the rotation may take; far above what it needs.
const STAGE_DEADLINE: Duration = Duration::from_secs(10);

/// Polls `done` until it holds; panics after [`STAGE_DEADLINE`].
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + STAGE_DEADLINE;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "not done after {STAGE_DEADLINE:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Polls the server's `certificate_reloads_total{result}` until it reaches `count`.
async fn wait_for_reloads(server: &Server, result: &str, count: usize) {
    let series = format!("kube_metrics_webhook_certificate_reloads_total{{result=\"{result}\"}}");
    let deadline = Instant::now() + STAGE_DEADLINE;
    loop {
        let (_, metrics) = server.admin_get("/metrics").await;
        if metric(&metrics, &series) >= Some(count as f64) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{series} not at {count} after {STAGE_DEADLINE:?}:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until every client has had a few more requests answered, so the server's current
/// state (here: a rejected pair on disk) is exercised by fresh and keep-alive connections alike.
async fn requests_after(progress: &[Arc<Progress>], what: &str) {
    let before: Vec<u64> = progress.iter().map(|client| client.ok()).collect();
    wait_until(&format!("3 more requests per client after {what}"), || {
        progress
            .iter()
            .zip(&before)
            .all(|(client, before)| client.ok() >= before + 3)
    })
    .await;
}
