//! Hostile pods on the victims' node, laid out as the kubelet lays them out (a downward-API
//! volume with `..data` symlinks and a timestamped directory, the socket's emptyDir) and served by
//! real Unix-socket servers. Whatever they send or lay out, the victims' series come through
//! unchanged, line for line, and every rejection is counted by reason.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{
    DATA_DIR, Projected, bind, dropped, exposition, failures, forwarded, layout, lines_of, project,
    serve_text, targets, uid,
};
use kube_metrics_contract::metrics::POD_INFO;
use kube_metrics_node::relay::discover;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

const TIMEOUT: Duration = Duration::from_secs(2);
/// What the 100 MB answer would weigh in full.
const HUGE: usize = 100 * 1000 * 1000;

/// A healthy, attested relay pod `n` in namespace `ns`, named `pod`.
fn healthy(root: &Path, n: u32, ns: &str, pod: &str) {
    let uid = uid(n);
    project(root, &uid, &Projected::relay(&uid, ns, pod));
    serve_text(bind(root, &uid), exposition(ns, pod), Duration::ZERO);
}

/// An attested pod `n` (tenant namespace `evil`) whose collector serves `body`.
fn hostile(root: &Path, n: u32, body: String) {
    let uid = uid(n);
    project(
        root,
        &uid,
        &Projected::relay(&uid, "evil", &format!("evil-{n}")),
    );
    serve_text(bind(root, &uid), body, Duration::ZERO);
}

/// Answers one request with a 100 MB body, written as fast as the reader takes it; counts the
/// bytes it managed to write before the relay hung up.
fn serve_huge(listener: UnixListener) -> Arc<AtomicUsize> {
    let written = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&written);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request).await;
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {HUGE}\r\n\r\n");
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b'#'; 64 * 1024];
                let mut sent = 0;
                while sent < HUGE {
                    if stream.write_all(&chunk).await.is_err() {
                        return;
                    }
                    sent += chunk.len();
                    count.fetch_add(chunk.len(), Ordering::SeqCst);
                }
            });
        }
    });
    written
}

#[tokio::test]
async fn hostile_pods_cannot_touch_the_victims_series_and_are_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::create_dir_all(root.join("pods")).unwrap();
    let typed = |kind: &str| {
        format!(
            "# TYPE {POD_INFO} gauge\n{POD_INFO}{{namespace=\"evil\",pod=\"evil-1\"}} 1\n\
             # TYPE kubevirt_pod_infra_processes {kind}\n\
             kubevirt_pod_infra_processes{{host=\"n\",domain=\"victim-a\",process=\"qemu\"}} 99\n"
        )
    };

    // 1: first in uid order, declares a collector gauge as a counter.
    hostile(root, 1, typed("counter"));
    // 2: the same family, untyped.
    let untyped = typed("untyped").replace("evil-1", "evil-2");
    hostile(root, 2, untyped);
    // 3: its collector claims to be victim a.
    hostile(root, 3, exposition("ns-a", "victim-a"));
    // 4: a socket emptyDir and no downward-API volume at all.
    serve_text(
        bind(root, &uid(4)),
        exposition("ns-a", "victim-a"),
        Duration::ZERO,
    );
    // 5: injected by an older webhook: labels, but no uid, namespace or name. Not hostile: its
    // identity comes from its log directory, and it is relayed.
    let old = Projected {
        uid: None,
        ..Projected::relay(&uid(5), "ns-old", "old")
    };
    project(root, &uid(5), &old);
    serve_text(
        bind(root, &uid(5)),
        exposition("ns-old", "old"),
        Duration::ZERO,
    );
    // 6: its `namespace` file is a symlink to victim a's, outside its own volume.
    let six = project(root, &uid(6), &Projected::relay(&uid(6), "evil", "evil-6"));
    std::fs::remove_file(six.join("namespace")).unwrap();
    let victim_a = discover::podinfo_path(&layout(root), &uid(20));
    symlink(victim_a.join("namespace"), six.join("namespace")).unwrap();
    serve_text(
        bind(root, &uid(6)),
        exposition("ns-a", "victim-a"),
        Duration::ZERO,
    );
    // 7: `..data` leads out of the volume, to victim a's timestamped directory.
    let seven = project(root, &uid(7), &Projected::relay(&uid(7), "evil", "evil-7"));
    std::fs::remove_file(seven.join("..data")).unwrap();
    symlink(format!("../../../../{}/volumes/kubernetes.io~downward-api/kube-metrics-collector-podinfo/{DATA_DIR}", uid(20)), seven.join("..data")).unwrap();
    serve_text(
        bind(root, &uid(7)),
        exposition("ns-a", "victim-a"),
        Duration::ZERO,
    );
    // 8: job/instance/namespace labels and foreign families, beside its own real series.
    let forged = format!(
        "{}kubevirt_pod_infra_processes{{job=\"kubelet\",instance=\"10.0.0.1:10250\",process=\"qemu\"}} 5\n\
         kubevirt_pod_infra_processes{{namespace=\"ns-a\",process=\"qemu\"}} 5\n\
         kubevirt_pod_infra_processes{{exported_namespace=\"ns-a\",process=\"qemu\"}} 5\n\
         up{{job=\"kube-state-metrics\"}} 0\nALERTS{{alertname=\"KubeVirtVMDown\",alertstate=\"firing\"}} 1\n\
         kube_pod_info{{namespace=\"ns-a\",pod=\"victim-a\"}} 1\n",
        exposition("evil", "evil-8")
    );
    hostile(root, 8, forged);
    // 9: a 100 MB answer.
    project(root, &uid(9), &Projected::relay(&uid(9), "evil", "evil-9"));
    let huge = serve_huge(bind(root, &uid(9)));
    // 10: Prometheus scrapes it directly.
    let direct = Projected {
        scrape: "direct".into(),
        ..Projected::relay(&uid(10), "ns-d", "direct-pod")
    };
    project(root, &uid(10), &direct);
    serve_text(
        bind(root, &uid(10)),
        exposition("ns-d", "direct-pod"),
        Duration::ZERO,
    );
    // 11: its projected uid is another pod's.
    project(
        root,
        &uid(11),
        &Projected::relay(&uid(20), "ns-a", "victim-a"),
    );
    serve_text(
        bind(root, &uid(11)),
        exposition("ns-a", "victim-a"),
        Duration::ZERO,
    );
    // 12: a malformed line after valid ones.
    hostile(
        root,
        12,
        format!("{}broken{{ 1\n", exposition("evil", "evil-12")),
    );
    // 13: its spec projects annotations as `namespace` and `name`: victim a's.
    let forged_files = Projected {
        real: Some(("evil".into(), "evil-13".into())),
        ..Projected::relay(&uid(13), "ns-a", "victim-a")
    };
    project(root, &uid(13), &forged_files);
    serve_text(
        bind(root, &uid(13)),
        exposition("ns-a", "victim-a"),
        Duration::ZERO,
    );
    // The victims, after every hostile pod in uid order.
    healthy(root, 20, "ns-a", "victim-a");
    healthy(root, 21, "ns-b", "victim-b");

    let relay = common::relay(root, TIMEOUT);
    let start = Instant::now();
    let text = relay.scrape().await;
    let took = start.elapsed();
    println!("scrape with the hostile pods took {took:?}");
    assert!(took < TIMEOUT, "{took:?}");

    for (ns, pod) in [("ns-a", "victim-a"), ("ns-b", "victim-b")] {
        assert_eq!(lines_of(&text, ns, pod), forwarded(ns, pod), "{text}");
    }
    // Pod 8 keeps exactly its own real series, so does the old pod; the others send nothing.
    assert_eq!(
        lines_of(&text, "ns-old", "old"),
        forwarded("ns-old", "old"),
        "{text}"
    );
    assert_eq!(
        lines_of(&text, "evil", "evil-8"),
        forwarded("evil", "evil-8"),
        "{text}"
    );
    let collectors: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("kube_metrics_collector_relay_"))
        .collect();
    assert_eq!(collectors.len(), 12, "{text}");
    for absent in [
        "up",
        "ALERTS",
        "kube_pod_info",
        "job=",
        "instance=",
        "exported_",
        "direct-pod",
        "99",
    ] {
        assert!(
            collectors.iter().all(|l| !l.contains(absent)),
            "{absent} forwarded:\n{text}"
        );
    }
    assert_eq!(
        text.matches("# TYPE kubevirt_pod_infra_processes gauge\n")
            .count(),
        1
    );

    for (reason, n) in [
        ("type_conflict", 1),
        ("untyped", 1),
        ("identity_mismatch", 1),
        ("no_attested_identity", 1),
        ("attestation_mismatch", 1),
        ("attestation_unsafe", 2),
        ("too_large", 1),
        ("uid_mismatch", 1),
        ("malformed", 1),
        ("duplicate_identity", 0),
    ] {
        assert_eq!(failures(&text, reason), Some(n), "{reason}\n{text}");
    }
    for (reason, n) in [("reserved_label", 3), ("not_allowed", 3)] {
        assert_eq!(dropped(&text, reason), Some(n), "{reason}\n{text}");
    }
    assert_eq!(targets(&text, "skipped_direct"), Some(1));
    assert_eq!(targets(&text, "ok"), Some(4));
    // 1, 2, 3, 12 (merge), 9 (fetch), 4, 6, 7, 11, 13 (attestation)
    assert_eq!(targets(&text, "failed"), Some(10));

    // The 100 MB answer was cut at the cap: what the server wrote is the cap plus what the
    // socket buffers held when the relay hung up, not the whole body.
    let sent = huge.load(Ordering::SeqCst);
    println!("the 100 MB target wrote {sent} bytes before the relay hung up");
    assert!(
        sent < 16 * 1024 * 1024,
        "{sent} bytes read from the huge target"
    );
}

#[tokio::test]
async fn pods_without_a_log_directory_or_injected_before_the_upgrade() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::create_dir_all(root.join("pods")).unwrap();
    // Injected before the webhook projected uid, namespace and name: relayed by its log directory.
    let old = Projected {
        uid: None,
        ..Projected::relay(&uid(1), "ns-old", "old")
    };
    project(root, &uid(1), &old);
    serve_text(
        bind(root, &uid(1)),
        exposition("ns-old", "old"),
        Duration::ZERO,
    );
    // No log directory: the kubelet names it nowhere.
    healthy(root, 2, "ns-b", "unlogged");
    std::fs::remove_dir(root.join("logs").join(format!("ns-b_unlogged_{}", uid(2)))).unwrap();
    let relay = common::relay(root, TIMEOUT);
    let text = relay.scrape().await;
    assert_eq!(
        lines_of(&text, "ns-old", "old"),
        forwarded("ns-old", "old"),
        "{text}"
    );
    assert!(lines_of(&text, "ns-b", "unlogged").is_empty(), "{text}");
    assert_eq!(failures(&text, "no_attested_identity"), Some(1));
}
