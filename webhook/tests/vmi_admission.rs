//! POST /mutate over real HTTPS on 127.0.0.1 with the VMI lookup wired in. There is no cluster here:
//! the server gets a `VmiLookup` over an in-memory fake `VmiSource` (the real `KubeVmiSource` is
//! tested against a fake API server in `vmi_kube.rs`). The fake's VMIs are the fixtures of
//! `tests/fixtures/vmi`, given the uid of the fixture pod's owner reference.
mod common;

use common::*;
use http::{Method, StatusCode};
use kube_metrics_webhook::vmi::lookup::VmiLookups;
use kube_metrics_webhook::vmi::{VmiLookup, VmiRef, cache::CachedVmi, lookup::VmiSource};
use serde_json::{Value, json};
use std::{
    collections::HashMap,
    io::Write,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// The fixture pod's owner uid: a VMI with another uid is not its owner.
const OWNER_UID: &str = "6f1c2b7e-3d4a-4c59-8e21-9a0b5c7d3e41";
const BUDGET: Duration = Duration::from_millis(300);

/// VMIs by name in the cache; a GET of `slow` hangs, any other GET is a 404.
#[derive(Debug, Default)]
struct FakeSource {
    vmis: HashMap<String, Value>,
}

impl VmiSource for FakeSource {
    fn cached(&self, vmi: &VmiRef) -> Option<CachedVmi> {
        (vmi.namespace == "vm-demo")
            .then(|| self.vmis.get(&vmi.name).map(CachedVmi::from_json))
            .flatten()
    }

    async fn get(&self, vmi: &VmiRef) -> Result<Option<CachedVmi>, String> {
        if vmi.name == "slow" {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        Ok(None)
    }
}

/// A fixture VMI as the fixture pod's owner: its uid, in its namespace.
fn vmi_fixture(name: &str) -> Value {
    let mut vmi = fixtures::vmi(name);
    vmi["metadata"]["uid"] = json!(OWNER_UID);
    vmi["metadata"]["namespace"] = json!("vm-demo");
    vmi
}

/// The fixture review, its pod owned by the VMI `vm`.
fn review_for(vm: &str) -> Vec<u8> {
    fixtures::review_for(vm, OWNER_UID)
}

/// Log lines, captured from the global subscriber as JSON.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut buffer) = self.0.lock() {
            buffer.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// The fields of every "Reviewed pod" line.
    fn reviews(&self) -> Vec<Value> {
        let text = self
            .0
            .lock()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["fields"]["message"] == "Reviewed pod")
            .map(|line| line["fields"].clone())
            .collect()
    }
}

const STATUS: &str = "/metadata/annotations/kube-metrics-collector.io~1status";
const REASON: &str = "/metadata/annotations/kube-metrics-collector.io~1reason";
const SOURCE: &str = "/metadata/annotations/kube-metrics-collector.io~1reason-source";
const SCRAPE: &str = "/metadata/labels/kube-metrics-collector.io~1scrape";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutate_reads_the_vmi_through_an_injected_source() {
    let logs = Logs::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .try_init()
        .unwrap_or_else(|e| panic!("subscriber: {e}"));

    let source = FakeSource {
        vmis: HashMap::from([
            ("direct".to_owned(), vmi_fixture("masquerade-ports")),
            ("pinned".to_owned(), vmi_fixture("dedicated-cpus")),
            ("bridged".to_owned(), vmi_fixture("bridge")),
        ]),
    };
    let lookup = Arc::new(VmiLookup::new(source, BUDGET));
    let bundle = bundle();
    let mut secret = SecretDir::new();
    secret.publish_bundle(&bundle);
    let server = Server::start_with(&secret, test_limits(), VmiLookups::Given(lookup))
        .await
        .unwrap_or_else(|e| panic!("server: {e}"));
    let mut conn = Conn::open(&tls_connector(&[&bundle]), server.addr())
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let mut post = async |vm: &str| {
        let started = Instant::now();
        let (status, body) = conn
            .send(
                Method::POST,
                "/mutate?timeout=5s",
                Some("application/json"),
                review_for(vm),
            )
            .await
            .unwrap_or_else(|e| panic!("{vm}: {e}"));
        assert_eq!(status, StatusCode::OK, "{vm}");
        (patch_values(&body), started.elapsed())
    };

    // masquerade with ports that are not ours: injected, scraped directly, the VMI decided.
    let (ops, _) = post("direct").await;
    assert_eq!(
        (&ops[STATUS], &ops[SOURCE], &ops[SCRAPE]),
        (&json!("injected"), &json!("vmi"), &json!("direct"))
    );
    // bridge: injected, through the relay.
    let (ops, _) = post("bridged").await;
    assert_eq!(
        (&ops[SOURCE], &ops[SCRAPE]),
        (&json!("vmi"), &json!("relay"))
    );
    // The VMI says dedicated CPUs; the pod shows nothing of it.
    let (ops, _) = post("pinned").await;
    assert_eq!(
        (&ops[STATUS], &ops[REASON], &ops[SOURCE]),
        (&json!("skipped"), &json!("dedicated-cpus"), &json!("vmi"))
    );
    // Not cached, and the GET hangs: cut at the budget, the pod's signals decide (it is clean).
    let (ops, elapsed) = post("slow").await;
    assert_eq!(
        (&ops[STATUS], &ops[SOURCE], &ops[SCRAPE]),
        (&json!("injected"), &json!("pod-fallback"), &json!("relay"))
    );
    assert!(
        elapsed >= BUDGET && elapsed < BUDGET + Duration::from_millis(700),
        "took {elapsed:?}"
    );
    eprintln!(
        "vmi_admission: review with a hanging GET answered in {elapsed:?} (budget {BUDGET:?})"
    );
    // Not cached, 404.
    let (ops, _) = post("gone").await;
    assert_eq!(ops[SOURCE], json!("pod-fallback"));

    let (_, metrics) = server.admin_get("/metrics").await;
    let lookups = |result: &str| {
        metric(
            &metrics,
            &format!("kube_metrics_webhook_vmi_lookups_total{{result=\"{result}\"}}"),
        )
    };
    assert_eq!(
        [
            "found",
            "not-found",
            "timeout",
            "api-error",
            "unreadable",
            "off"
        ]
        .map(lookups),
        [
            Some(3.0),
            Some(1.0),
            Some(1.0),
            Some(0.0),
            Some(0.0),
            Some(0.0)
        ],
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "kube_metrics_webhook_skips_total{reason=\"dedicated-cpus\"}"
        ),
        Some(1.0)
    );

    let reviews = logs.reviews();
    let fields = |key: &str| -> Vec<String> {
        reviews
            .iter()
            .map(|r| r[key].as_str().unwrap_or("?").to_owned())
            .collect()
    };
    assert_eq!(
        fields("vm"),
        ["direct", "bridged", "pinned", "slow", "gone"]
    );
    assert_eq!(
        fields("source"),
        ["vmi", "vmi", "vmi", "pod-fallback", "pod-fallback"]
    );
    assert_eq!(
        fields("lookup"),
        ["found", "found", "found", "timeout", "not-found"]
    );
    assert_eq!(fields("scrape"), ["direct", "relay", "", "relay", "relay"]);
    assert_eq!(
        fields("scrape_reason"),
        [
            "masquerade-port-not-forwarded",
            "bridge",
            "",
            "vmi-not-read",
            "vmi-not-read"
        ]
    );
    let _ = server.shutdown.send(true);
}
