//! The real `KubeVmiSource` (kube client, watcher-fed cache, GET) against a fake Kubernetes API server on
//! loopback. There is no cluster here: the fake answers the three requests the lookup makes (list,
//! watch, get) with real API shapes; the watch is held open without events, as an idle API server does.
mod common;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use common::fake_api;
use http::StatusCode;
use kube_metrics_webhook::vmi::{
    Lookup, Unavailable, UnsafeReason, VmiLookup, VmiRef, lookup::KubeVmiSource,
};
use serde_json::{Value, json};

/// Requests seen, by "METHOD path?watch" key.
type Seen = Arc<Mutex<HashMap<String, usize>>>;

fn vmi(name: &str, uid: &str, dedicated: bool) -> Value {
    json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
           "metadata": {"namespace": "ns", "name": name, "uid": uid, "resourceVersion": "7"},
           "spec": {"domain": {"cpu": {"dedicatedCpuPlacement": dedicated}, "devices": {}}}})
}

async fn answer(request: http::request::Parts, seen: Seen) -> (StatusCode, Bytes) {
    let path = request.uri.path().to_owned();
    let watch = request
        .uri
        .query()
        .is_some_and(|query| query.contains("watch=true"));
    let key = format!(
        "{} {path}{}",
        request.method,
        if watch { " watch" } else { "" }
    );
    if let Ok(mut seen) = seen.lock() {
        *seen.entry(key).or_default() += 1;
    }
    let (status, body) = match path.as_str() {
        "/apis/kubevirt.io/v1/virtualmachineinstances" if watch => {
            // An idle watch: no events; the test is over long before this returns.
            tokio::time::sleep(Duration::from_secs(60)).await;
            (StatusCode::OK, String::new())
        }
        "/apis/kubevirt.io/v1/virtualmachineinstances" => (
            StatusCode::OK,
            json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceList",
                   "metadata": {"resourceVersion": "10"}, "items": [vmi("cached", "u-cached", true)]})
            .to_string(),
        ),
        "/apis/kubevirt.io/v1/namespaces/ns/virtualmachineinstances/fresh" => {
            (StatusCode::OK, vmi("fresh", "u-fresh", false).to_string())
        }
        "/apis/kubevirt.io/v1/namespaces/ns/virtualmachineinstances/slow" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            (StatusCode::OK, vmi("slow", "u-slow", false).to_string())
        }
        _ => return fake_api::not_found(),
    };
    (status, Bytes::from(body))
}

async fn fake_api_server(seen: Seen) -> std::net::SocketAddr {
    fake_api::serve(Arc::new(move |request| {
        Box::pin(answer(request, seen.clone()))
    }))
    .await
}

/// The fake's VMI `name`, by the uid it has there (`u-<name>`).
fn vm_ref(name: &str) -> VmiRef {
    VmiRef {
        namespace: "ns".into(),
        name: name.into(),
        uid: format!("u-{name}"),
    }
}

fn count(seen: &Seen, key: &str) -> usize {
    seen.lock()
        .map(|seen| seen.get(key).copied().unwrap_or(0))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflector_cache_get_fallback_and_budget_against_a_fake_api_server() {
    let seen = Seen::default();
    let address = fake_api_server(seen.clone()).await;
    let (source, task) = KubeVmiSource::spawn(fake_api::client(address));

    let deadline = Instant::now() + Duration::from_secs(10);
    while !source.is_synced() {
        assert!(Instant::now() < deadline, "the reflector never synced");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let budget = Duration::from_millis(300);
    let lookup = VmiLookup::new(source, budget);

    // In the list: served from the cache, no GET.
    match lookup.lookup(&vm_ref("cached")).await {
        Lookup::Found(facts) => assert_eq!(facts.unsafe_reasons, [UnsafeReason::DedicatedCpus]),
        other => panic!("cached VMI: {other:?}"),
    }
    assert_eq!(
        count(
            &seen,
            "GET /apis/kubevirt.io/v1/namespaces/ns/virtualmachineinstances/cached"
        ),
        0
    );

    // Not in the cache: one GET.
    match lookup.lookup(&vm_ref("fresh")).await {
        Lookup::Found(facts) => assert_eq!(facts.uid.as_deref(), Some("u-fresh")),
        other => panic!("fresh VMI: {other:?}"),
    }
    assert_eq!(
        count(
            &seen,
            "GET /apis/kubevirt.io/v1/namespaces/ns/virtualmachineinstances/fresh"
        ),
        1
    );

    // 404.
    assert_eq!(lookup.lookup(&vm_ref("gone")).await, Lookup::NotFound);

    // A GET that hangs is cut at the budget.
    let started = Instant::now();
    assert_eq!(
        lookup.lookup(&vm_ref("slow")).await,
        Lookup::Unavailable(Unavailable::Timeout(budget))
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed < budget + Duration::from_millis(500),
        "took {elapsed:?}"
    );

    // Not a benchmark: what one lookup costs, printed for the report (`-- --nocapture`).
    let started = Instant::now();
    for _ in 0..1000 {
        assert!(matches!(
            lookup.lookup(&vm_ref("cached")).await,
            Lookup::Found(_)
        ));
    }
    let cached = started.elapsed() / 1000;
    let started = Instant::now();
    for _ in 0..100 {
        assert!(matches!(
            lookup.lookup(&vm_ref("fresh")).await,
            Lookup::Found(_)
        ));
    }
    eprintln!(
        "vmi lookup: cache hit {cached:?}, miss + GET on loopback {:?}",
        started.elapsed() / 100
    );

    // One list, all namespaces; the watch follows it.
    assert_eq!(
        count(&seen, "GET /apis/kubevirt.io/v1/virtualmachineinstances"),
        1
    );
    assert!(
        count(
            &seen,
            "GET /apis/kubevirt.io/v1/virtualmachineinstances watch"
        ) >= 1
    );
    task.abort();
}
