//! Attack 10: VMIs as large as the API server stores them, listed when the webhook starts. 200
//! VMIs of 1.37 MB (annotations up to the API server's 256 KiB, 256 volumes and disks, all of it
//! what the facts never read) made a 68 MB page of 50 that the webhook decoded whole, and it was
//! OOM-killed before it was ready, at every start. The fake API server here pages the list as
//! the webhook asks (`limit`, `continue`), holds the first page until the webhook was measured
//! idle, then holds the watch open without events.
use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use kube_metrics_fake_api::{FakeApi, Reply};
use kube_metrics_webhook::patch::complexity;
use kube_metrics_webhook::vmi::cache::{MAX_READ_BYTES, MAX_READ_TOKENS};
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use super::{bundle_of_test, program, spawn};
use crate::common::*;

/// The attack's VMIs; the fixture pod's own VMI comes after them, on the last page.
const ATTACK_VMIS: usize = 200;
/// Each of them this large: what was reported, under etcd's 1.5 MiB.
const VMI_BYTES: usize = 1_370_000;
/// Every fourth also has a domain past the cache's read bounds (256 disks and 256 interfaces
/// with every field set): cached as too large, its pods judged by their own signals.
const OVERSIZED_EVERY: usize = 4;
/// KubeVirt's most volumes, disks and interfaces (`arrayLenMax`).
const DEVICES: usize = 256;
/// Annotation values per VMI, 4,000 bytes each: just under the API server's 256 KiB in total.
const ANNOTATIONS: usize = 63;
/// The fixture pod's namespace, VMI name and uid.
const NAMESPACE: &str = "vm-demo";
const FIXTURE_VMI: (&str, &str) = ("fedora-a", "6f1c2b7e-3d4a-4c59-8e21-9a0b5c7d3e41");
/// What docs/threat-model.md counts for a list page being read (5 VMIs of at most 1.5 MiB, held
/// twice, and one VMI's domain read), in its table of the webhook's memory.
const LIST_PAGE_MIB: f64 = 20.0;
/// What that table leaves of the limit with every part at its worst: 94 of 128 MiB.
const MARGIN_MIB: f64 = 34.0;

const SOURCE: &str = "/metadata/annotations/kube-metrics-collector.io~1reason-source";

/// The list's VMIs as JSON texts with `@NAME@` and `@UID@` to fill in.
struct Templates {
    bulky: String,
    oversized: String,
    fixture: String,
}

// === impl Templates ===

impl Templates {
    fn new() -> Self {
        let mut fixture = fixtures::json(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/kubevirt-api-roundtrip-vmi-release-1.9.json"),
        );
        fixture["metadata"]["namespace"] = json!(NAMESPACE);
        fixture["metadata"]["name"] = json!("@NAME@");
        fixture["metadata"]["uid"] = json!("@UID@");
        Self {
            bulky: attack_vmi(false),
            oversized: attack_vmi(true),
            fixture: fixture.to_string(),
        }
    }

    /// The list's item `index`.
    fn item(&self, index: usize) -> String {
        let (name, uid) = identity(index);
        let template = match index {
            ATTACK_VMIS => &self.fixture,
            _ if is_oversized(index) => &self.oversized,
            _ => &self.bulky,
        };
        template.replace("@NAME@", &name).replace("@UID@", &uid)
    }
}

fn identity(index: usize) -> (String, String) {
    match index {
        ATTACK_VMIS => (FIXTURE_VMI.0.to_owned(), FIXTURE_VMI.1.to_owned()),
        _ => (format!("vm-{index:03}"), format!("uid-{index:03}")),
    }
}

fn is_oversized(index: usize) -> bool {
    index < ATTACK_VMIS && index % OVERSIZED_EVERY == OVERSIZED_EVERY - 1
}

/// One attack VMI of [`VMI_BYTES`]: its bulk in annotations and in 256 `hostDisk` volumes whose
/// paths are as long as the rest leaves room for; with `oversized`, also a domain past the read
/// bounds.
fn attack_vmi(oversized: bool) -> String {
    let annotations: Map<String, Value> = (0..ANNOTATIONS)
        .map(|i| (format!("example.com/note-{i:02}"), json!("x".repeat(4_000))))
        .collect();
    let (disks, interfaces, networks): (Vec<Value>, Vec<Value>, Vec<Value>) = if oversized {
        (
            (0..DEVICES).map(full_disk).collect(),
            (0..DEVICES).map(full_interface).collect(),
            (0..DEVICES)
                .map(|i| json!({"name": format!("net-{i:03}"), "multus": {"networkName": format!("{NAMESPACE}/nad-{i:03}")}}))
                .collect(),
        )
    } else {
        (
            (0..DEVICES)
                .map(|i| json!({"name": format!("disk-{i:03}"), "disk": {"bus": "virtio"}}))
                .collect(),
            vec![json!({"name": "default", "masquerade": {}})],
            vec![json!({"name": "default", "pod": {}})],
        )
    };
    let vmi = |path: &str| {
        let volumes: Vec<Value> = (0..DEVICES)
            .map(|i| json!({"name": format!("disk-{i:03}"),
                            "hostDisk": {"path": format!("/mnt/{path}{i:03}.img"), "type": "DiskOrCreate", "capacity": "1Gi"}}))
            .collect();
        json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
               "metadata": {"namespace": NAMESPACE, "name": "@NAME@", "uid": "@UID@", "resourceVersion": "7",
                            "labels": {"kubevirt.io/vm": "@NAME@"}, "annotations": annotations},
               "spec": {"domain": {"resources": {"requests": {"memory": "1Gi"}},
                                   "devices": {"disks": disks, "interfaces": interfaces}},
                        "networks": networks, "volumes": volumes}})
        .to_string()
    };
    let room = VMI_BYTES.saturating_sub(vmi("").len()) / DEVICES;
    // Directory names of at most 255 bytes, as a file system allows.
    let path: String = (0..room)
        .map(|i| if i % 256 == 255 { '/' } else { 'd' })
        .collect();
    vmi(&path)
}

/// A disk with every field KubeVirt has set.
fn full_disk(i: usize) -> Value {
    json!({"name": format!("disk-{i:03}"),
           "disk": {"bus": "virtio", "readonly": false, "pciAddress": format!("0000:02:{:02x}.0", i % 32)},
           "serial": format!("S{i:03}"), "bootOrder": i + 1, "cache": "none", "io": "native",
           "dedicatedIOThread": true, "tag": "t", "shareable": false, "errorPolicy": "stop",
           "blockSize": {"custom": {"logical": 512, "physical": 4096}}})
}

/// An interface with every field set and two ports.
fn full_interface(i: usize) -> Value {
    json!({"name": format!("net-{i:03}"), "bridge": {}, "macAddress": format!("02:00:00:00:{:02x}:{:02x}", i / 256, i % 256),
           "model": "virtio", "pciAddress": format!("0000:03:{:02x}.0", i % 32), "tag": "t", "bootOrder": 300 + i,
           "ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "dns", "port": 53, "protocol": "UDP"}]})
}

/// Tokens and bytes of a VMI's `spec.domain` and `spec.networks`, as the cache bounds them.
fn read_size(vmi: &str) -> (usize, usize) {
    let vmi: Value = serde_json::from_str(vmi).unwrap_or_default();
    let unlimited = complexity::Complexity {
        tokens: usize::MAX,
        depth: complexity::LIMIT.depth,
    };
    let mut size = (0, 0);
    for part in ["domain", "networks"] {
        let text = vmi["spec"][part].to_string();
        let counted = complexity::check(text.as_bytes(), unlimited).unwrap_or(unlimited);
        size = (size.0 + counted.tokens, size.1 + text.len());
    }
    size
}

/// A fake API server (no kube-apiserver can run here) listing the attack's VMIs, each page held
/// until `gate` opens, then holding the watch open without events; any other request is answered
/// 404. `largest` keeps the largest page's size in bytes.
fn api_server(
    templates: Templates,
    gate: watch::Receiver<bool>,
    largest: Arc<AtomicUsize>,
) -> FakeApi {
    let api = FakeApi::start().unwrap();
    api.route(Method::GET, vmi_api::VMIS_PATH, move |request| {
        if request.is_watch() {
            return Reply::held();
        }
        let page = vmi_api::vmi_page(request, ATTACK_VMIS + 1, |i| templates.item(i));
        largest.fetch_max(page.body.len(), Ordering::SeqCst);
        let mut gate = gate.clone();
        Reply::later(async move {
            let _ = gate.wait_for(|open| *open).await;
            page
        })
    });
    api
}

/// Waits for `done`, failing at `limit` or when the webhook exited.
async fn wait_for(server: &mut Binary, what: &str, limit: Duration, done: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("the webhook exited ({status}) waiting for {what}");
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether `/readyz` answers 200 within 5 s.
async fn becomes_ready(server: &Binary) -> bool {
    for _ in 0..100 {
        if admin_get(server.admin_addr, "/readyz").await.0 == StatusCode::OK {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// The `reason-source` the webhook gives the fixture pod owned by each VMI of `indexes`.
async fn reason_sources(server: &Binary, indexes: &[usize]) -> Vec<String> {
    let connector = tls_connector(&[&bundle_of_test()]);
    let mut conn = Conn::open(&connector, server.addr).await.unwrap();
    let mut sources = Vec::new();
    for &index in indexes {
        let (name, uid) = identity(index);
        let body = fixtures::review_for(&name, &uid);
        let sent = conn.send(
            http::Method::POST,
            "/mutate?timeout=10s",
            Some("application/json"),
            body,
        );
        let (status, answer) = sent.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{name}");
        let source = patch_values(&answer)[SOURCE].as_str().map(str::to_owned);
        sources.push(source.unwrap_or_default());
    }
    sources
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vmis_as_large_as_the_api_server_stores_leave_the_webhook_ready_and_within_its_limit() {
    let templates = Templates::new();
    let (bulky, oversized) = (templates.item(0), templates.item(OVERSIZED_EVERY - 1));
    for vmi in [&bulky, &oversized] {
        assert!(vmi.len().abs_diff(VMI_BYTES) < 4_096 && vmi.len() < 1536 * 1024);
    }
    // The bulky ones are read (their bulk is where the facts never look), the others are not.
    let (bulky_read, oversized_read) = (read_size(&bulky), read_size(&oversized));
    assert!(bulky_read.0 <= MAX_READ_TOKENS && bulky_read.1 <= MAX_READ_BYTES);
    assert!(oversized_read.0 > MAX_READ_TOKENS, "{oversized_read:?}");

    let largest_page = Arc::new(AtomicUsize::new(0));
    let (open, gate) = watch::channel(false);
    let api = api_server(templates, gate, largest_page.clone());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.write_kubeconfig(dir.path(), None).unwrap();
    let mut secret = SecretDir::new();
    secret.publish_bundle(&bundle_of_test());
    let mut server = spawn(
        &secret,
        &["--vmi-lookup", "on"],
        &[("KUBECONFIG", kubeconfig.as_os_str())],
    );
    let pid = server.child.id();

    // Idle: started, its first list request held.
    let asked = || vmi_api::received(&api, vmi_api::is_list) > 0;
    wait_for(
        &mut server,
        "the first list request",
        Duration::from_secs(10),
        asked,
    )
    .await;
    let (idle, _) = memory_kib(pid);
    reset_peak(pid);
    let started = Instant::now();
    open.send_replace(true);
    let watching = || vmi_api::received(&api, vmi_api::is_watch) > 0;
    wait_for(&mut server, "the list", Duration::from_secs(120), watching).await;
    let listed_in = started.elapsed();
    let (rss, peak) = memory_kib(pid);
    let ready = becomes_ready(&server).await;
    // A normal VMI on the last page, an attack VMI read, and one cached as too large.
    let sources = reason_sources(&server, &[ATTACK_VMIS, 0, OVERSIZED_EVERY - 1]).await;
    let (_, metrics) = admin_get(server.admin_addr, "/metrics").await;
    let counted = |series: &str| metric(&metrics, series).unwrap_or(-1.0);
    let oversized_vmis = counted("kube_metrics_webhook_oversized_vmis_total");
    let lookups = |result: &str| {
        counted(&format!(
            "kube_metrics_webhook_vmi_lookups_total{{result=\"{result}\"}}"
        ))
    };
    let (found, unreadable) = (lookups("found"), lookups("unreadable"));

    let limit = deployment::memory_limit_mib();
    let grew = mib(peak.saturating_sub(idle));
    println!(
        "attack 10: {} with {:?}",
        program().display(),
        deployment::allocator_env()
    );
    println!(
        "attack 10: {ATTACK_VMIS} VMIs of {} bytes ({:.0} MiB of JSON), every {OVERSIZED_EVERY}th with a domain of \
         {} tokens ({} bytes; the others {} tokens, {} bytes), and the fixture's VMI: {} pages, the largest {:.2} MiB, \
         listed in {:.1} s",
        bulky.len(),
        (ATTACK_VMIS * bulky.len()) as f64 / 1048576.0,
        oversized_read.0,
        oversized_read.1,
        bulky_read.0,
        bulky_read.1,
        vmi_api::received(&api, vmi_api::is_list),
        largest_page.load(Ordering::SeqCst) as f64 / 1048576.0,
        listed_in.as_secs_f64(),
    );
    println!(
        "attack 10: idle VmRSS {:.1} MiB; listed VmRSS {:.1} MiB, peak VmHWM {:.1} MiB (+{grew:.1} over idle; \
         limit {limit:.0} MiB less the {MARGIN_MIB} MiB margin: {:.0}); ready {ready}; oversized VMIs {oversized_vmis}; \
         reason-source {sources:?}; lookups found {found}, unreadable {unreadable}; GETs {}",
        mib(idle),
        mib(rss),
        mib(peak),
        limit - MARGIN_MIB,
        vmi_api::received(&api, vmi_api::is_get),
    );

    assert!(ready, "the webhook never became ready");
    assert!(
        mib(peak) < limit - MARGIN_MIB,
        "peak {:.1} MiB: the limit {limit} MiB less the {MARGIN_MIB} MiB margin is {:.1}",
        mib(peak),
        limit - MARGIN_MIB
    );
    assert!(
        grew < LIST_PAGE_MIB,
        "the list cost {grew:.1} MiB over idle, the threat model counts {LIST_PAGE_MIB}"
    );
    assert_eq!(
        oversized_vmis,
        (ATTACK_VMIS / OVERSIZED_EVERY) as f64,
        "each oversized VMI counted once, as the list read it"
    );
    assert_eq!(
        sources,
        ["vmi", "vmi", "pod-fallback"],
        "the normal VMI and the bulky one decide; the oversized one leaves its pod to its signals"
    );
    assert_eq!((found, unreadable), (2.0, 1.0));
    assert_eq!(
        vmi_api::received(&api, vmi_api::is_get),
        0,
        "every VMI was cached"
    );
}
