//! Benchmark, not a timed test (ignored by default): the webhook binary's memory, as the kernel
//! counts it (VmRSS, and the peak VmHWM from /proc/<pid>/status).
//!
//! 1. The VMI cache: a fake API server on loopback lists [`VMIS`] full-size VMIs (KubeVirt's
//!    round-trip VMI with ~4 KiB of cloud-init userData each), paginated as the client asks, then
//!    holds the watch open; the webhook runs with `--vmi-lookup on` against it (a kubeconfig).
//!    Measured once the watch started (the cache is synced), and one review of the fixture pod must
//!    be answered from the cache.
//! 2. Per request, on a fresh process with lookups off (so no freed heap of the first part hides
//!    what a request costs): two concurrent bodies of just under 6 MiB (the byte cap) of each
//!    worst-case shape, the peak reset before each (`/proc/<pid>/clear_refs`).
//!
//! `cargo test -p kube-metrics-webhook --test memory_bench -- --ignored --nocapture`; with
//! `KMW_BENCH_BINARY=<path>` another build of the webhook (an older one, to compare) is measured
//! the same way.
mod common;

use common::*;
use http::{Method, StatusCode};
use kube_metrics_fake_api::{FakeApi, Reply};
use serde_json::{Value, json};
use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

const VMIS: usize = 10_000;
/// The fixture pod's namespace, VMI name and uid: its VMI is the first of the list.
const NAMESPACE: &str = "vm-demo";
const FIXTURE_VMI: (&str, &str) = ("fedora-a", "6f1c2b7e-3d4a-4c59-8e21-9a0b5c7d3e41");
/// Just under the webhook's 6 MiB body cap.
const BODY: usize = 6 * 1024 * 1024 - 64;

/// KubeVirt's round-trip VMI with ~4 KiB of cloud-init userData, as one JSON text with `@NAME@`
/// and `@UID@` to fill in.
fn full_vmi_template() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/kubevirt-api-roundtrip-vmi-release-1.9.json"
    );
    let mut vmi = fixtures::json(std::path::Path::new(path));
    vmi["metadata"]["namespace"] = json!(NAMESPACE);
    vmi["metadata"]["name"] = json!("@NAME@");
    vmi["metadata"]["uid"] = json!("@UID@");
    vmi["metadata"]["resourceVersion"] = json!("7");
    let user_data = format!(
        "#cloud-config\nusers:\n{}",
        "  - name: user\n    ssh_authorized_keys: [ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI]\n"
            .repeat(55)
    );
    vmi["spec"]["volumes"][0]["cloudInitNoCloud"]["userData"] = json!(user_data);
    serde_json::to_string(&vmi).unwrap()
}

fn vmi_identity(index: usize) -> (String, String) {
    match index {
        0 => (FIXTURE_VMI.0.to_owned(), FIXTURE_VMI.1.to_owned()),
        _ => (format!("vm-{index:05}"), format!("uid-{index:05}")),
    }
}

/// The list's VMI `index`, from the template.
fn vmi_item(template: &str, index: usize) -> String {
    let (name, uid) = vmi_identity(index);
    template.replace("@NAME@", &name).replace("@UID@", &uid)
}

/// A fake API server (no kube-apiserver can run here) listing [`VMIS`] VMIs made from `template`,
/// then holding the watch open without events; any other request is answered 404.
fn api_server(template: String) -> FakeApi {
    let api = FakeApi::start().unwrap();
    api.route(Method::GET, vmi_api::VMIS_PATH, move |request| {
        if request.is_watch() {
            return Reply::held();
        }
        vmi_api::vmi_page(request, VMIS, |i| vmi_item(&template, i)).into()
    });
    api
}

/// The worst-case bodies, each just under the byte cap.
fn worst_bodies() -> Vec<(&'static str, Vec<u8>)> {
    let fill = |open: &str, item: &dyn Fn(usize) -> String, close: &str| {
        let mut body = open.to_owned();
        let mut i = 0;
        loop {
            let next = item(i);
            if body.len() + next.len() + close.len() + 1 > BODY {
                break;
            }
            if i > 0 {
                body.push(',');
            }
            body.push_str(&next);
            i += 1;
        }
        body.push_str(close);
        body.into_bytes()
    };
    let depth = BODY / 2;
    vec![
        ("[\"\",...]", fill("[", &|_| "\"\"".to_owned(), "]")),
        (
            "[[[...]]]",
            ["[".repeat(depth), "]".repeat(depth)].concat().into_bytes(),
        ),
        ("{\"a\":0,...}", fill("{", &|_| "\"a\":0".to_owned(), "}")),
        (
            "{\"k<n>\":0,...}",
            fill("{", &|i| format!("\"k{i}\":0"), "}"),
        ),
        ("[0,...]", fill("[", &|_| "0".to_owned(), "]")),
        // Just inside the complexity limit (100,000 tokens): these are parsed.
        (
            "[\"\",...] at the limit",
            format!("[{}\"\"]", "\"\",".repeat(49_998)).into_bytes(),
        ),
        (
            "{\"<120-byte name>\":0,...} at the limit",
            format!(
                "{{{}}}",
                (0..49_999)
                    .map(|i| format!("\"{i:0>120}\":0"))
                    .collect::<Vec<_>>()
                    .join(",")
            )
            .into_bytes(),
        ),
    ]
}

/// Sends `body` on two connections at once; the two statuses.
async fn two_at_once(
    connector: &tokio_rustls::TlsConnector,
    addr: std::net::SocketAddr,
    body: &[u8],
) -> Vec<StatusCode> {
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (connector, body) = (connector.clone(), body.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&connector, addr).await.unwrap();
            let sent = conn
                .send(
                    http::Method::POST,
                    "/mutate",
                    Some("application/json"),
                    body,
                )
                .await;
            sent.map_or(StatusCode::INTERNAL_SERVER_ERROR, |(status, _)| status)
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with -- --ignored --nocapture"]
async fn bench_memory_with_a_full_vmi_cache_and_worst_case_bodies() {
    let template = full_vmi_template();
    let vmi_bytes = template.len();
    let api = api_server(template);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.write_kubeconfig(dir.path(), None).unwrap();

    let bundle = bundle();
    let mut secret = SecretDir::new();
    secret.publish_bundle(&bundle);
    let program = std::env::var_os("KMW_BENCH_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_kube-metrics-webhook")));
    let started = Instant::now();
    let server = Binary::spawn(
        &program,
        &secret,
        &[
            "--vmi-lookup",
            "on",
            "--log-level",
            "warn,kube_metrics_webhook::serve=info",
        ],
        &[("KUBECONFIG", kubeconfig.as_os_str())],
        ServerLog::Drain,
    );
    let pid = server.child.id();
    let (idle, _) = memory_kib(pid);

    // The watch starts once the whole list is in.
    let deadline = Instant::now() + Duration::from_secs(600);
    while vmi_api::received(&api, vmi_api::is_watch) == 0 {
        assert!(
            Instant::now() < deadline,
            "the webhook never finished the list"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let synced_after = started.elapsed();
    let (rss, hwm) = memory_kib(pid);
    let pages = vmi_api::received(&api, vmi_api::is_list);

    // The fixture pod's VMI is answered from the cache: no GET.
    let connector = tls_connector(&[&bundle]);
    let mut conn = Conn::open(&connector, server.addr).await.unwrap();
    let (status, body) = conn.review_fixture().await.unwrap();
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["response"]["allowed"], true);
    let (_, metrics) = admin_get(server.admin_addr, "/metrics").await;
    assert_eq!(
        metric(
            &metrics,
            "kube_metrics_webhook_vmi_lookups_total{result=\"found\"}"
        ),
        Some(1.0),
        "the fixture's VMI was not found in the cache"
    );
    assert_eq!(vmi_api::received(&api, vmi_api::is_get), 0);

    println!("memory bench: {}", program.display());
    println!(
        "memory bench: {VMIS} VMIs of {vmi_bytes} bytes ({:.0} MiB of JSON) in {pages} list pages, synced in {:.1} s",
        (VMIS * vmi_bytes) as f64 / 1048576.0,
        synced_after.as_secs_f64()
    );
    println!(
        "memory bench: before the list VmRSS {:.1} MiB; synced VmRSS {:.1} MiB, peak VmHWM {:.1} MiB",
        mib(idle),
        mib(rss),
        mib(hwm)
    );

    drop(server);

    let server = Binary::spawn(
        &program,
        &secret,
        &[
            "--vmi-lookup",
            "off",
            "--log-level",
            "warn,kube_metrics_webhook::serve=info",
        ],
        &[],
        ServerLog::Drain,
    );
    let pid = server.child.id();
    let mut shapes = vec![("fixture review", fixture())];
    shapes.extend(worst_bodies());
    // Once first, so the TLS and HTTP machinery's own allocations are not counted to a shape.
    two_at_once(&connector, server.addr, &fixture()).await;
    let (start, _) = memory_kib(pid);
    println!(
        "memory bench: lookups off, idle VmRSS {:.1} MiB",
        mib(start)
    );
    for (name, body) in shapes {
        reset_peak(pid);
        let (before, _) = memory_kib(pid);
        let statuses = two_at_once(&connector, server.addr, &body).await;
        let (after, peak) = memory_kib(pid);
        println!(
            "memory bench: 2 x {name} ({:.2} MiB each) at once: {statuses:?}; VmRSS {:.1} -> {:.1} MiB, peak VmHWM {:.1} MiB (+{:.1})",
            body.len() as f64 / 1048576.0,
            mib(before),
            mib(after),
            mib(peak),
            mib(peak.saturating_sub(before)),
        );
    }
    drop(server);
}
