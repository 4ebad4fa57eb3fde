//! The real `KubeVmiSource` (kube client, watcher-fed cache, GET) against a fake Kubernetes API
//! server on loopback, standing in for kube-apiserver because none can run here: it answers the
//! three requests the lookup makes (list, watch, get) with real API shapes; the watch is held open
//! without events, as an idle API server does.

use std::time::{Duration, Instant};

use http::Method;
use kube_metrics_fake_api::{Answer, FakeApi};
use kube_metrics_webhook::vmi::{
    Lookup, Unavailable, UnsafeReason, VmiLookup, VmiRef, lookup::KubeVmiSource,
};
use serde_json::{Value, json};

/// The list (and watch) of every namespace's VMIs.
const VMIS: &str = "/apis/kubevirt.io/v1/virtualmachineinstances";
/// Namespace `ns`'s VMIs, which the lookup GETs one by one.
const NS_VMIS: &str = "/apis/kubevirt.io/v1/namespaces/ns/virtualmachineinstances";

fn vmi(name: &str, uid: &str, dedicated: bool) -> Value {
    json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
           "metadata": {"namespace": "ns", "name": name, "uid": uid, "resourceVersion": "7"},
           "spec": {"domain": {"cpu": {"dedicatedCpuPlacement": dedicated}, "devices": {}}}})
}

/// The fake API server (no kube-apiserver can run here) and its cluster: `cached` in the list the
/// reflector reads; `fresh` only by GET, as if created after it; `slow`, whose GET hangs.
fn fake_api_server() -> FakeApi {
    let api = FakeApi::start().unwrap();
    api.set(VMIS, vec![vmi("cached", "u-cached", true)]);
    api.set(NS_VMIS, vec![vmi("fresh", "u-fresh", false)]);
    let slow = Answer::ok(&vmi("slow", "u-slow", false));
    api.route(Method::GET, &format!("{NS_VMIS}/slow"), move |_| {
        // The test is over long before this answers.
        slow.clone().after(Duration::from_secs(30))
    });
    api
}

/// The fake's VMI `name`, by the uid it has there (`u-<name>`).
fn vm_ref(name: &str) -> VmiRef {
    VmiRef {
        namespace: "ns".into(),
        name: name.into(),
        uid: format!("u-{name}"),
    }
}

/// Requests the fake received, by "METHOD path" with " watch" after a watch's.
fn count(api: &FakeApi, key: &str) -> usize {
    let keyed = |request: &kube_metrics_fake_api::Request| {
        let watch = if request.is_watch() { " watch" } else { "" };
        format!("{}{watch}", request.call())
    };
    api.requests().iter().filter(|r| keyed(r) == key).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflector_cache_get_fallback_and_budget_against_a_fake_api_server() {
    let api = fake_api_server();
    let (source, task) = KubeVmiSource::spawn(api.client().unwrap());

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
            &api,
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
            &api,
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
        count(&api, "GET /apis/kubevirt.io/v1/virtualmachineinstances"),
        1
    );
    assert!(
        count(
            &api,
            "GET /apis/kubevirt.io/v1/virtualmachineinstances watch"
        ) >= 1
    );
    task.abort();
}
