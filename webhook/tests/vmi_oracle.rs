//! A review sent straight to the webhook's port, not by the API server, names a VMI in another
//! namespace: its answer must not say whether that VMI exists, nor what it is. Two webhooks, each
//! over the real `KubeVmiSource` and a fake API server on loopback: in one, namespace `tenant-b`
//! has a VMI `victim` with a GPU; in the other it has none. Reviews that do not state the
//! victim's uid (no uid on the owner reference, or a guessed one) must get byte-identical answers
//! from both, decided by the pod's own signals; the review that states it, the control, must not.
mod common;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use common::*;
use http::{Method, StatusCode};
use kube_metrics_fake_api::FakeApi;
use kube_metrics_webhook::certgen::Bundle;
use kube_metrics_webhook::vmi::lookup::VmiLookups;
use kube_metrics_webhook::vmi::{VmiLookup, lookup::KubeVmiSource};
use serde_json::{Value, json};

const VICTIM_NAMESPACE: &str = "tenant-b";
const VICTIM: &str = "victim";
const VICTIM_UID: &str = "1d0c9a8e-5b4f-4e3d-9c2b-7a6f5e4d3c2b";
const BUDGET: Duration = Duration::from_millis(500);
const SOURCE: &str = "/metadata/annotations/kube-metrics-collector.io~1reason-source";
const STATUS: &str = "/metadata/annotations/kube-metrics-collector.io~1status";

/// The victim: a VMI with a GPU (a `vfio-device` skip when read).
fn victim() -> Value {
    let mut vmi = fixtures::vmi("gpu");
    vmi["metadata"]["namespace"] = json!(VICTIM_NAMESPACE);
    vmi["metadata"]["name"] = json!(VICTIM);
    vmi["metadata"]["uid"] = json!(VICTIM_UID);
    vmi
}

/// A fake API server (standing in for kube-apiserver, which cannot run here) whose cluster holds
/// `vmis`, all in the victim's namespace.
fn api_server(vmis: Vec<Value>) -> FakeApi {
    let api = FakeApi::start().unwrap();
    api.set("/apis/kubevirt.io/v1/virtualmachineinstances", vmis.clone());
    let namespace =
        format!("/apis/kubevirt.io/v1/namespaces/{VICTIM_NAMESPACE}/virtualmachineinstances");
    api.set(&namespace, vmis);
    api
}

/// A webhook whose lookups read the fake API server at `api`, its VMI cache synced.
async fn webhook(api: &FakeApi, secret: &SecretDir) -> Server {
    let (source, _task) = KubeVmiSource::spawn(api.client().unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !source.is_synced() {
        assert!(Instant::now() < deadline, "the VMI cache never synced");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let lookup = Arc::new(VmiLookup::new(source, BUDGET));
    Server::start_with(secret, test_limits(), VmiLookups::Given(lookup))
        .await
        .unwrap_or_else(|error| panic!("server: {error}"))
}

/// The fixture launcher pod, as if in the victim's namespace and owned by `victim`, the owner
/// reference's uid and the `created-by` label set by `uid` (`None`: removed).
fn review(uid: Option<&str>) -> Vec<u8> {
    let mut review = fixtures::review();
    review["request"]["namespace"] = json!(VICTIM_NAMESPACE);
    let metadata = &mut review["request"]["object"]["metadata"];
    metadata["namespace"] = json!(VICTIM_NAMESPACE);
    metadata["annotations"]["kubevirt.io/domain"] = json!(VICTIM);
    metadata["ownerReferences"][0]["name"] = json!(VICTIM);
    match uid {
        Some(uid) => {
            metadata["ownerReferences"][0]["uid"] = json!(uid);
            metadata["labels"]["kubevirt.io/created-by"] = json!(uid);
        }
        None => {
            if let Some(owner) = metadata["ownerReferences"][0].as_object_mut() {
                owner.remove("uid");
            }
            if let Some(labels) = metadata["labels"].as_object_mut() {
                labels.remove("kubevirt.io/created-by");
            }
        }
    }
    serde_json::to_vec(&review).unwrap_or_default()
}

/// The answer of `server` to `body`, as sent.
async fn answer(server: &Server, bundle: &Bundle, body: Vec<u8>) -> Bytes {
    let mut conn = Conn::open(&tls_connector(&[bundle]), server.addr())
        .await
        .unwrap_or_else(|error| panic!("connect: {error}"));
    let (status, body) = conn
        .send(
            Method::POST,
            "/mutate?timeout=5s",
            Some("application/json"),
            body,
        )
        .await
        .unwrap_or_else(|error| panic!("review: {error}"));
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    body
}

/// The value the answer's patch adds at `path`.
fn added(answer: &[u8], path: &str) -> Value {
    let answer: Value = serde_json::from_slice(answer).unwrap_or_default();
    let bytes: Vec<u8> =
        serde_json::from_value(answer["response"]["patch"].clone()).unwrap_or_default();
    let ops: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    ops.as_array()
        .into_iter()
        .flatten()
        .find(|op| op["path"] == path)
        .map(|op| op["value"].clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_review_cannot_tell_whether_a_vmi_exists_elsewhere() {
    let bundle = bundle();
    let mut secret = SecretDir::new();
    secret.publish_bundle(&bundle);
    let apis = (api_server(vec![victim()]), api_server(Vec::new()));
    let with_victim = webhook(&apis.0, &secret).await;
    let without = webhook(&apis.1, &secret).await;

    let guessed = "6f1c2b7e-3d4a-4c59-8e21-9a0b5c7d3e41";
    for (case, uid) in [("no uid", None), ("a guessed uid", Some(guessed))] {
        let there = answer(&with_victim, &bundle, review(uid)).await;
        let not_there = answer(&without, &bundle, review(uid)).await;
        assert_eq!(
            String::from_utf8_lossy(&there),
            String::from_utf8_lossy(&not_there),
            "{case}: the answer depends on the other namespace's VMI"
        );
        assert_eq!(
            (added(&there, STATUS), added(&there, SOURCE)),
            (json!("injected"), json!("pod-fallback")),
            "{case}: decided by the pod's own signals"
        );
    }

    // The control: a review that states the victim's uid is answered from the VMI, so the two
    // webhooks above could have told the difference.
    let there = answer(&with_victim, &bundle, review(Some(VICTIM_UID))).await;
    let not_there = answer(&without, &bundle, review(Some(VICTIM_UID))).await;
    assert_eq!(
        (added(&there, STATUS), added(&there, SOURCE)),
        (json!("skipped"), json!("vmi"))
    );
    assert_eq!(added(&not_there, SOURCE), json!("pod-fallback"));
    for server in [with_victim, without] {
        let _ = server.shutdown.send(true);
    }
}
