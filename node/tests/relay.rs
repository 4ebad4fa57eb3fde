//! The relay against real Unix-socket servers in a temporary kubelet tree:
//! healthy collectors, one that never answers, one that speaks garbage, one
//! with a hostile exposition, one too large, a dead socket and a symlink.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube_metrics_contract::metrics::POD_INFO;
use kube_metrics_node::relay::{Relay, discover, serve};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UnixListener};

mod common;

use common::{Projected, bind, layout, project, uid};

const TIMEOUT: Duration = Duration::from_millis(400);
/// Generous: the check is that a hung target costs its timeout, not more.
const MARGIN: Duration = Duration::from_millis(600);

fn exposition(ns: &str, pod: &str) -> String {
    format!(
        "# HELP {POD_INFO} Pod.\n# TYPE {POD_INFO} gauge\n\
         {POD_INFO}{{namespace=\"{ns}\",pod=\"{pod}\"}} 1\n\
         # HELP kubevirt_pod_infra_processes Processes per role.\n# TYPE kubevirt_pod_infra_processes gauge\n\
         kubevirt_pod_infra_processes{{host=\"n\",domain=\"{pod}\",process=\"qemu\"}} 1\n"
    )
}

fn serve_text(listener: UnixListener, body: String) {
    common::serve_text(listener, body, Duration::ZERO);
}

/// The kubelet's downward-API volume of pod `n`, naming it `ns-<n>/pod-<n>`.
fn attest(root: &Path, n: u32) {
    let uid = uid(n);
    project(
        root,
        &uid,
        &Projected::relay(&uid, &format!("ns-{n}"), &format!("pod-{n}")),
    );
}

/// Accepts connections and never answers.
fn serve_silence(listener: UnixListener) {
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
}

/// Answers every connection with bytes that are not HTTP.
fn serve_garbage(listener: UnixListener) {
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.write_all(b"\x00\xffgarbage\r\n\r\n\x01").await;
        }
    });
}

struct Node {
    _root: tempfile::TempDir,
    root: PathBuf,
}

/// Pods 1-3 healthy, 4 silent, 5 garbage, 6 hostile text, 7 too large,
/// 8 dead socket, 9 symlinked socket, 10 no identity. All but 9 attested by
/// their downward-API volume.
fn node() -> Node {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_owned();
    std::fs::create_dir_all(root.join("pods")).unwrap();
    for n in [1, 2, 3, 4, 5, 6, 7, 8, 10] {
        attest(&root, n);
    }
    for n in 1..=3 {
        serve_text(
            bind(&root, &uid(n)),
            exposition(&format!("ns-{n}"), &format!("pod-{n}")),
        );
    }
    serve_silence(bind(&root, &uid(4)));
    serve_garbage(bind(&root, &uid(5)));
    // A malformed line would leave out all of pod 6 (tests/hostile.rs); these drop lines only.
    let hostile = format!(
        "{}kube_metrics_collector_relay_targets{{state=\"ok\"}} 1000\n\
         kubevirt_pod_infra_processes{{host=\"n\",domain=\"pod-6\",process=\"qemu\"}} 2\n",
        exposition("ns-6", "pod-6")
    );
    serve_text(bind(&root, &uid(6)), hostile);
    serve_text(bind(&root, &uid(7)), "x 1\n".repeat(200_000));
    drop(bind(&root, &uid(8)));
    let link = discover::socket_path(&layout(&root), &uid(9));
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(discover::socket_path(&layout(&root), &uid(1)), &link).unwrap();
    serve_text(bind(&root, &uid(10)), "some_metric 1\n".into());
    Node { _root: tmp, root }
}

fn relay(root: &Path) -> Arc<Relay> {
    common::relay(root, TIMEOUT)
}

use common::own_line;

#[tokio::test]
async fn merges_exactly_the_healthy_collectors_within_the_timeout() {
    let node = node();
    let relay = relay(&node.root);
    let start = Instant::now();
    let text = relay.scrape().await;
    let took = start.elapsed();
    assert!(
        took >= TIMEOUT,
        "the silent target was not waited for: {took:?}"
    );
    assert!(took < TIMEOUT + MARGIN, "scrape took {took:?}");

    let collectors: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("kube_metrics_collector_relay_"))
        .collect();
    // Families in the contract's order.
    let mut want = Vec::new();
    for n in [1, 2, 3, 6] {
        // Pod 6 repeats this series with value 2; the first one wins.
        want.push(format!(
            "kubevirt_pod_infra_processes{{namespace=\"ns-{n}\",pod=\"pod-{n}\",host=\"n\",domain=\"pod-{n}\",process=\"qemu\"}} 1"
        ));
    }
    for n in [1, 2, 3, 6] {
        want.push(format!(
            "{POD_INFO}{{namespace=\"ns-{n}\",pod=\"pod-{n}\"}} 1"
        ));
    }
    assert_eq!(collectors, want, "{text}");
    assert_eq!(
        text.matches("# TYPE kubevirt_pod_infra_processes ").count(),
        1
    );

    assert_eq!(
        own_line(&text, "kube_metrics_collector_relay_targets{state=\"ok\"}"),
        Some("4")
    );
    assert_eq!(
        own_line(
            &text,
            "kube_metrics_collector_relay_targets{state=\"timeout\"}"
        ),
        Some("1")
    );
    // garbage, too large, dead, symlink, no identity
    assert_eq!(
        own_line(
            &text,
            "kube_metrics_collector_relay_targets{state=\"failed\"}"
        ),
        Some("5")
    );
    let stats = relay.stats();
    for (reason, n) in [
        ("timeout", 1),
        ("http", 1),
        ("too_large", 1),
        ("connect", 1),
        ("symlink", 1),
        ("no_identity", 1),
    ] {
        assert_eq!(stats.failures(reason), n, "{reason}");
    }
    // Pod 6: the forged relay metric reserved, the repeated series a duplicate.
    for (reason, n) in [("malformed", "0"), ("reserved", "1"), ("duplicate", "1")] {
        let prefix =
            format!("kube_metrics_collector_relay_dropped_lines_total{{reason=\"{reason}\"}}");
        assert_eq!(own_line(&text, &prefix), Some(n), "{reason}");
    }
}

#[tokio::test]
async fn a_pod_that_went_away_disappears_and_counters_keep_growing() {
    let node = node();
    let relay = relay(&node.root);
    let first = relay.scrape().await;
    assert!(first.contains("pod=\"pod-2\""));
    std::fs::remove_dir_all(node.root.join("pods").join(uid(2))).unwrap();
    let second = relay.scrape().await;
    assert!(!second.contains("pod=\"pod-2\""), "{second}");
    assert_eq!(
        own_line(
            &second,
            "kube_metrics_collector_relay_targets{state=\"ok\"}"
        ),
        Some("3")
    );
    assert_eq!(relay.stats().failures("timeout"), 2);
}

/// One HTTP/1.0 GET over TCP; returns the status line, headers and body.
async fn get(addr: std::net::SocketAddr, method: &str, path: &str) -> String {
    use tokio::io::AsyncReadExt;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("{method} {path} HTTP/1.0\r\nHost: x\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn serves_metrics_and_healthz_over_http() {
    let node = node();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, shutdown) = kube_metrics_runtime::Shutdown::channel();
    let server = tokio::spawn(serve::serve(listener.into(), relay(&node.root), shutdown));

    let metrics = get(addr, "GET", "/metrics").await;
    assert!(metrics.starts_with("HTTP/1.0 200"), "{metrics}");
    assert!(
        metrics
            .to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(metrics.contains(&format!("{POD_INFO}{{namespace=\"ns-1\",pod=\"pod-1\"}} 1")));
    assert!(
        get(addr, "GET", "/healthz")
            .await
            .starts_with("HTTP/1.0 200")
    );
    let refused = get(addr, "POST", "/metrics").await;
    assert!(refused.starts_with("HTTP/1.0 405"), "{refused}");
    let head = refused.to_ascii_lowercase();
    assert!(head.contains("\r\nallow: get\r\n"), "{refused}");
    assert!(
        head.contains("content-type: text/plain; charset=utf-8"),
        "{refused}"
    );
    assert!(get(addr, "GET", "/nope").await.starts_with("HTTP/1.0 404"));

    let _ = stop.send(true);
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
}
