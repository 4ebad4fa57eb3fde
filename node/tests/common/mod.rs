//! A kubelet pods directory in a temporary directory, laid out as the kubelet lays it out, with
//! real Unix-socket HTTP servers behind the collectors' sockets.

#![allow(dead_code)]

use std::convert::Infallible;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use kube_metrics_contract::metrics::POD_INFO;
use kube_metrics_contract::pod::SCRAPE;
use kube_metrics_contract::sidecar::{PODINFO_VOLUME, SOCKET_NAME, SOCKET_VOLUME};
use kube_metrics_node::relay::{Layout, Limits, Relay, discover};
use tokio::net::UnixListener;

/// The timestamped directory the kubelet's atomic writer makes, and `..data` points to.
pub const DATA_DIR: &str = "..2024_01_01_00_00_00.123456789";

pub fn layout(root: &Path) -> Layout {
    Layout {
        kubelet_root: root.to_owned(),
        volume: SOCKET_VOLUME.into(),
        socket: SOCKET_NAME.into(),
        podinfo_volume: PODINFO_VOLUME.into(),
        pod_logs: root.join("logs"),
    }
}

pub fn uid(n: u32) -> String {
    format!("00000000-0000-0000-0000-{n:012}")
}

pub fn relay(root: &Path, timeout: Duration) -> Arc<Relay> {
    Arc::new(Relay::new(
        layout(root),
        Limits {
            timeout,
            max_body_bytes: kube_metrics_contract::limits::MAX_BODY_BYTES,
        },
    ))
}

/// Binds the socket of pod `uid`. The full kubelet path exceeds sun_path, so
/// bind at a short path and move the socket into place.
pub fn bind(root: &Path, uid: &str) -> UnixListener {
    let path = discover::socket_path(&layout(root), uid);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let short = root.join(format!("{}.sock", &uid[uid.len() - 4..]));
    let listener = UnixListener::bind(&short).unwrap();
    std::fs::rename(&short, &path).unwrap();
    listener
}

/// The files the webhook projects in the downward-API volume that the relay reads.
#[derive(Clone, Debug)]
pub struct Projected {
    pub uid: Option<String>,
    /// What the volume's `namespace` and `name` files hold.
    pub namespace: String,
    pub name: String,
    pub scrape: String,
    /// The pod's real namespace and name, for its log directory; None: the files' values.
    pub real: Option<(String, String)>,
}

impl Projected {
    pub fn relay(uid: &str, namespace: &str, name: &str) -> Self {
        Self {
            uid: Some(uid.into()),
            namespace: namespace.into(),
            name: name.into(),
            scrape: "relay".into(),
            real: None,
        }
    }

    /// The downward API's `labels` file: `key="value"` lines, sorted.
    pub fn labels(&self) -> String {
        format!(
            "kube-metrics-collector.io/inject=\"enabled\"\n{SCRAPE}=\"{}\"\nkubevirt.io=\"virt-launcher\"\n",
            self.scrape
        )
    }
}

/// Writes pod `uid`'s downward-API volume as the kubelet's atomic writer does: the files in a
/// timestamped directory, `..data` pointing at it, and each file a symlink through `..data`.
/// Without a uid (pods injected by an older webhook) only the older files are written. Also
/// makes the pod's log directory, `<root>/logs/<namespace>_<name>_<uid>`.
pub fn project(root: &Path, uid: &str, projected: &Projected) -> PathBuf {
    let dir = discover::podinfo_path(&layout(root), uid);
    let data = dir.join(DATA_DIR);
    std::fs::create_dir_all(&data).unwrap();
    let labels = projected.labels();
    let mut files = vec![
        ("labels", labels.as_str()),
        ("annotations", ""),
        ("compute_memory_request", "1073741824"),
        ("compute_memory_limit", "1073741824"),
    ];
    if let Some(uid) = &projected.uid {
        files.extend([
            ("uid", uid.as_str()),
            ("namespace", projected.namespace.as_str()),
            ("name", projected.name.as_str()),
        ]);
    }
    for (file, text) in files {
        std::fs::write(data.join(file), text).unwrap();
        symlink(format!("..data/{file}"), dir.join(file)).unwrap();
    }
    symlink(DATA_DIR, dir.join("..data")).unwrap();
    let (namespace, name) = projected
        .real
        .clone()
        .unwrap_or((projected.namespace.clone(), projected.name.clone()));
    log_dir(root, &namespace, &name, uid);
    dir
}

/// The kubelet's log directory of pod `namespace/name` with `uid`.
pub fn log_dir(root: &Path, namespace: &str, name: &str, uid: &str) {
    let dir = root.join("logs").join(format!("{namespace}_{name}_{uid}"));
    std::fs::create_dir_all(dir).unwrap();
}

/// What a collector of pod `pod` in `ns` serves: pod_info, one gauge, one counter.
pub fn exposition(ns: &str, pod: &str) -> String {
    format!(
        "# HELP {POD_INFO} Pod.\n# TYPE {POD_INFO} gauge\n\
         {POD_INFO}{{namespace=\"{ns}\",pod=\"{pod}\",name=\"vm-{pod}\",node=\"node-0\"}} 1\n\
         # HELP kubevirt_pod_infra_processes Processes per role.\n# TYPE kubevirt_pod_infra_processes gauge\n\
         kubevirt_pod_infra_processes{{host=\"n\",domain=\"{pod}\",process=\"qemu\"}} 1\n\
         # HELP kubevirt_pod_infra_cpu_seconds_total CPU.\n# TYPE kubevirt_pod_infra_cpu_seconds_total counter\n\
         kubevirt_pod_infra_cpu_seconds_total{{process=\"qemu\",type=\"user\"}} 12.5\n"
    )
}

/// The lines the relay forwards for [`exposition`]`(ns, pod)`, exactly, in the contract's order
/// of families.
pub fn forwarded(ns: &str, pod: &str) -> Vec<String> {
    let id = format!("namespace=\"{ns}\",pod=\"{pod}\"");
    vec![
        format!("kubevirt_pod_infra_cpu_seconds_total{{{id},process=\"qemu\",type=\"user\"}} 12.5"),
        format!(
            "kubevirt_pod_infra_processes{{{id},host=\"n\",domain=\"{pod}\",process=\"qemu\"}} 1"
        ),
        format!("{POD_INFO}{{{id},name=\"vm-{pod}\",node=\"node-0\"}} 1"),
    ]
}

/// The sample lines of `text` that carry `namespace="ns",pod="pod"`, in order.
pub fn lines_of<'a>(text: &'a str, ns: &str, pod: &str) -> Vec<&'a str> {
    let id = format!("{{namespace=\"{ns}\",pod=\"{pod}\"");
    text.lines()
        .filter(|l| !l.starts_with('#') && l.contains(&id))
        .collect()
}

/// A tiny HTTP server on the socket that answers `body` after `delay`; returns how many
/// requests it has served.
pub fn serve_text(listener: UnixListener, body: String, delay: Duration) -> Arc<AtomicUsize> {
    let body = Bytes::from(body);
    let served = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&served);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let body = body.clone();
            let count = Arc::clone(&count);
            let service = service_fn(move |_req| {
                let body = body.clone();
                count.fetch_add(1, Ordering::SeqCst);
                async move {
                    tokio::time::sleep(delay).await;
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(body)))
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    served
}

/// The value of the relay's own sample line starting with `prefix`.
pub fn own_line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
}

/// The relay's failure counter for `reason` in `text`.
pub fn failures(text: &str, reason: &str) -> Option<u64> {
    let prefix =
        format!("kube_metrics_collector_relay_target_failures_total{{reason=\"{reason}\"}}");
    own_line(text, &prefix).and_then(|v| v.parse().ok())
}

/// The relay's dropped-lines counter for `reason` in `text`.
pub fn dropped(text: &str, reason: &str) -> Option<u64> {
    let prefix = format!("kube_metrics_collector_relay_dropped_lines_total{{reason=\"{reason}\"}}");
    own_line(text, &prefix).and_then(|v| v.parse().ok())
}

/// The relay's targets gauge for `state` in `text`.
pub fn targets(text: &str, state: &str) -> Option<u64> {
    let prefix = format!("kube_metrics_collector_relay_targets{{state=\"{state}\"}}");
    own_line(text, &prefix).and_then(|v| v.parse().ok())
}
