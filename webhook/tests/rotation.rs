//! THE rotation test: clients keep sending reviews (fresh TLS connections and keep-alive ones)
//! while the key and certificate are swapped the way the kubelet swaps a Secret volume. No request
//! may fail, new connections must see the new certificate, and a broken pair must not be used.
mod common;

use common::*;
use http::StatusCode;
use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
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

impl Seen {
    fn record(&mut self, leaf: &[u8], result: anyhow::Result<(StatusCode, bytes::Bytes)>) {
        if self.leaves.last().map(Vec::as_slice) != Some(leaf) {
            self.leaves.push(leaf.to_vec());
        }
        match result {
            Ok((StatusCode::OK, body)) if answer_uid(&body).as_deref() == Some(FIXTURE_UID) => {
                self.ok += 1
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
                seen.record(&conn.peer_leaf.clone(), result);
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
        seen.record(&conn.peer_leaf.clone(), result);
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
    for _ in 0..2 {
        clients.push(tokio::spawn(fresh_connections(
            connector.clone(),
            server.addr(),
            stop.clone(),
        )));
        clients.push(tokio::spawn(keep_alive(
            connector.clone(),
            server.addr(),
            stop.clone(),
        )));
    }

    for bundle in &bundles[1..] {
        // Several reload intervals per version, so every version is picked up and served.
        tokio::time::sleep(Duration::from_millis(400)).await;
        secret.publish_bundle(bundle);
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    // A broken pair (key of another certificate): the last good one must stay.
    let stranger = bundle();
    secret.publish(&bundles[ROTATIONS].cert_pem, &stranger.key_pem);
    tokio::time::sleep(Duration::from_millis(400)).await;
    // And an empty certificate file.
    secret.publish("", &bundles[ROTATIONS].key_pem);
    tokio::time::sleep(Duration::from_millis(400)).await;
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
