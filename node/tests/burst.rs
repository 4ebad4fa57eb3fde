//! A burst of concurrent GETs against the relay's HTTP server shares one scrape of the node: each
//! collector is asked once, and the relay's memory grows by one scrape, not one per request.
//! Alone in its test binary, so that the process's RSS is the relay's and its fake collectors'.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{Projected, bind, exposition, lines_of, project, serve_text, uid};
use kube_metrics_node::relay::serve;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

const PODS: u32 = 20;
const GETS: usize = 100;
/// Each collector takes this long to answer, so that every GET of the burst arrives mid-scrape.
const DELAY: Duration = Duration::from_millis(500);
/// The relay DaemonSet's memory limit is 128 MiB; one scrape of this node must stay far below.
const MAX_GROWTH_BYTES: u64 = 48 * 1024 * 1024;

/// Series of one gauge besides the base families: all a collector may send.
const SERIES: usize = kube_metrics_contract::limits::MAX_SERIES - 3;

/// About 100 KiB: pod_info and the base families, then many series of one gauge with a long
/// `domain`.
fn big_exposition(ns: &str, pod: &str) -> String {
    let mut text = exposition(ns, pod);
    let domain = format!("{pod}-{}", "d".repeat(100));
    for i in 0..SERIES {
        text.push_str(&format!(
            "kubevirt_pod_infra_processes{{host=\"n\",domain=\"{domain}\",process=\"p{i:05}\"}} {i}\n"
        ));
    }
    text
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// Samples RSS every millisecond until stopped; returns the highest seen.
fn watch_rss() -> (Arc<AtomicBool>, std::thread::JoinHandle<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let peak = Arc::new(AtomicU64::new(0));
    let handle = std::thread::spawn(move || {
        while !flag.load(Ordering::SeqCst) {
            peak.fetch_max(rss_bytes(), Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(1));
        }
        peak.fetch_max(rss_bytes(), Ordering::SeqCst);
        peak.load(Ordering::SeqCst)
    });
    (stop, handle)
}

/// One HTTP/1.0 GET /metrics; returns the body's length and hash, read in chunks, so that the
/// burst's clients do not hold a hundred bodies themselves. `keep` also returns the body.
async fn get(addr: SocketAddr, keep: bool) -> (usize, u64, Option<String>) {
    use std::hash::Hasher as _;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut kept = Vec::new();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let (mut len, mut in_body) = (0, false);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut chunk).await.unwrap();
        if n == 0 {
            break;
        }
        let data = &chunk[..n];
        if !in_body {
            head.extend_from_slice(data);
            let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            assert!(head.starts_with(b"HTTP/1.0 200"), "{head:?}");
            let rest = head.split_off(end + 4);
            in_body = true;
            hasher.write(&rest);
            len += rest.len();
            if keep {
                kept.extend_from_slice(&rest);
            }
            continue;
        }
        hasher.write(data);
        len += data.len();
        if keep {
            kept.extend_from_slice(data);
        }
    }
    let body = keep.then(|| String::from_utf8(kept).unwrap());
    (len, hasher.finish(), body)
}

#[tokio::test]
async fn a_burst_of_gets_shares_one_node_scrape() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::create_dir_all(root.join("pods")).unwrap();
    let mut counters = Vec::new();
    for n in 1..=PODS {
        let (ns, pod) = (format!("ns-{n}"), format!("pod-{n}"));
        project(root, &uid(n), &Projected::relay(&uid(n), &ns, &pod));
        counters.push(serve_text(
            bind(root, &uid(n)),
            big_exposition(&ns, &pod),
            DELAY,
        ));
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, shutdown) = kube_metrics_runtime::Shutdown::channel();
    let relay = common::relay(root, Duration::from_secs(5));
    let server = tokio::spawn(serve::serve(listener.into(), Arc::clone(&relay), shutdown));

    let before = rss_bytes();
    let (stop_watch, watcher) = watch_rss();
    let mut gets = JoinSet::new();
    for i in 0..GETS {
        gets.spawn(get(addr, i == 0));
    }
    let mut answers = Vec::new();
    let mut kept = None;
    while let Some(answer) = gets.join_next().await {
        let (len, hash, body) = answer.unwrap();
        answers.push((len, hash));
        kept = kept.or(body);
    }
    stop_watch.store(true, Ordering::SeqCst);
    let peak = watcher.join().unwrap();
    let growth = peak.saturating_sub(before);
    println!(
        "{GETS} concurrent GETs over {PODS} pods of {} bytes ({} bytes merged): RSS {} KiB before, peak {} KiB, growth {} KiB",
        big_exposition("ns-1", "pod-1").len(),
        answers.first().map_or(0, |a| a.0),
        before / 1024,
        peak / 1024,
        growth / 1024
    );

    let asked: Vec<usize> = counters.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    assert_eq!(asked, vec![1; PODS as usize], "scrapes per collector");
    let first = answers.first().copied().unwrap();
    assert!(
        answers.iter().all(|a| *a == first),
        "the burst got different bodies"
    );
    let body = kept.unwrap();
    assert_eq!(body.len(), first.0);
    assert_eq!(lines_of(&body, "ns-7", "pod-7").len(), 3 + SERIES);
    assert!(growth < MAX_GROWTH_BYTES, "RSS grew by {growth} bytes");

    // A GET after the burst is a new scrape.
    get(addr, false).await;
    let asked: Vec<usize> = counters.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    assert_eq!(asked, vec![2; PODS as usize], "scrapes per collector");

    let _ = stop.send(true);
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
}
