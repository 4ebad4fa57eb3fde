//! `review` on the fixture AdmissionReview and on broken ones.
use super::*;
use crate::vmi::{PathReason, UnsafeReason, VmiFacts};
use kube_metrics_contract::pod;
use serde_json::json;

fn review_a() -> Value {
    serde_json::from_str(include_str!("../../tests/fixtures/admission/pod-a.json"))
        .unwrap_or_default()
}

fn answer(review: &Value) -> (Reviewed, Value) {
    let body = serde_json::to_vec(review).unwrap_or_default();
    let reviewed = super::review(&body, &Policy::default()).unwrap_or_else(|e| panic!("{e}"));
    let answer: Value = serde_json::from_slice(&reviewed.response).unwrap_or_default();
    (reviewed, answer)
}

#[test]
fn injects_the_fixture_and_fills_the_log_fields() {
    let (reviewed, answer) = answer(&review_a());
    assert_eq!(reviewed.outcome, Outcome::Injected);
    assert_eq!(reviewed.uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(reviewed.namespace.as_deref(), Some("vm-demo"));
    assert_eq!(
        reviewed.generate_name.as_deref(),
        Some("virt-launcher-fedora-a-")
    );
    assert_eq!(reviewed.vm.as_deref(), Some("fedora-a"));
    assert!(!reviewed.dry_run);
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(
        answer["response"]["uid"],
        "705ab4f5-6393-11e8-b7cc-42010a800002"
    );
    assert_eq!(answer["response"]["allowed"], true);
    assert_eq!(answer["response"]["patchType"], "JSONPatch");
    // kube-core serializes the patch bytes as a JSON array of numbers; the API server's Go decoder
    // reads that into its `[]byte` as it would a base64 string.
    let bytes: Vec<u8> =
        serde_json::from_value(answer["response"]["patch"].clone()).unwrap_or_default();
    let ops: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    assert_eq!(ops.as_array().map(Vec::len), Some(reviewed.patch_len));
    // shareProcessNamespace, the sidecar, two volumes, status and reason-source annotations, the
    // scrape label.
    assert_eq!(reviewed.patch_len, 7);
    assert_eq!(answer["response"].get("warnings"), None);
    assert_eq!(reviewed.source, Some(Source::PodFallback));
    assert_eq!(
        reviewed.scrape,
        Some(PathDecision::relay(PathReason::VmiNotRead))
    );
}

#[test]
fn dry_run_gets_the_same_answer() {
    let mut dry = review_a();
    dry["request"]["dryRun"] = json!(true);
    let (reviewed, dry_answer) = answer(&dry);
    let (_, real_answer) = answer(&review_a());
    assert!(reviewed.dry_run);
    assert_eq!(dry_answer, real_answer);
}

#[test]
fn answers_v1beta1_in_v1beta1() {
    let mut review = review_a();
    review["apiVersion"] = json!("admission.k8s.io/v1beta1");
    assert_eq!(answer(&review).1["apiVersion"], "admission.k8s.io/v1beta1");
}

#[test]
fn body_without_request_or_uid_is_an_error() {
    let policy = Policy::default();
    assert!(matches!(
        super::review(b"{", &policy),
        Err(ReviewError::Malformed(_))
    ));
    assert!(matches!(
        super::review(b"[]", &policy),
        Err(ReviewError::MissingRequest)
    ));
    assert!(matches!(
        super::review(b"{\"request\": null}", &policy),
        Err(ReviewError::MissingRequest)
    ));
    for uid in [json!(null), json!(""), json!(7)] {
        let mut review = review_a();
        review["request"]["uid"] = uid.clone();
        let body = serde_json::to_vec(&review).unwrap_or_default();
        assert!(
            matches!(super::review(&body, &policy), Err(ReviewError::MissingUid)),
            "{uid}"
        );
    }
}

#[test]
fn internal_errors_admit_unpatched_with_a_warning() {
    let table: Vec<(&str, &str, Value)> = vec![
        ("no object", "/request/object", Value::Null),
        ("not a pod", "/request/kind/kind", json!("Secret")),
        ("an update", "/request/operation", json!("UPDATE")),
        (
            "unreadable pod",
            "/request/object/spec/containers",
            json!("compute"),
        ),
        ("object is a string", "/request/object", json!("pod")),
    ];
    for (name, pointer, value) in table {
        let mut review = review_a();
        if let Some(slot) = review.pointer_mut(pointer) {
            *slot = value;
        }
        let (reviewed, answer) = answer(&review);
        assert!(
            matches!(reviewed.outcome, Outcome::Error(_)),
            "{name}: {:?}",
            reviewed.outcome
        );
        assert_eq!(answer["response"]["allowed"], true, "{name}");
        assert_eq!(answer["response"].get("patch"), None, "{name}");
        let warning = answer["response"]["warnings"][0]
            .as_str()
            .unwrap_or_default();
        assert!(
            warning.starts_with("kube-metrics-webhook: "),
            "{name}: {warning}"
        );
    }
}

/// A Pod at CREATE that does not read as one is admitted without the sidecar, and still loses the
/// keys of ours it carries; the rest stays.
#[test]
fn an_unreadable_pod_loses_a_preset_scrape_label() {
    let mut review = review_a();
    let pod = &mut review["request"]["object"];
    pod["spec"]["containers"] = json!("compute");
    pod["metadata"]["labels"][pod::SCRAPE] = json!(pod::SCRAPE_DIRECT);
    let (reviewed, answer) = answer(&review);
    assert!(matches!(reviewed.outcome, Outcome::Error(_)));
    let bytes: Vec<u8> =
        serde_json::from_value(answer["response"]["patch"].clone()).unwrap_or_default();
    let ops: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    assert_eq!(
        ops,
        json!([{"op": "remove", "path": "/metadata/labels/kube-metrics-collector.io~1scrape"}])
    );
    // Not a Pod, or not a CREATE: nothing at all.
    for (pointer, value) in [
        ("/request/kind/kind", json!("Secret")),
        ("/request/operation", json!("UPDATE")),
    ] {
        let mut other = review.clone();
        if let Some(slot) = other.pointer_mut(pointer) {
            *slot = value;
        }
        let (reviewed, answer) = self::answer(&other);
        assert!(matches!(reviewed.outcome, Outcome::Error(_)), "{pointer}");
        assert_eq!(answer["response"].get("patch"), None, "{pointer}");
    }
}

#[test]
fn a_skip_is_annotated_on_the_pod() {
    let mut review = review_a();
    review["request"]["object"]["spec"]["nodeSelector"]["kubevirt.io/cpumanager"] = json!("true");
    let (reviewed, _) = answer(&review);
    assert_eq!(
        reviewed.outcome,
        Outcome::Skipped(SkipReason::Unsafe(UnsafeReason::DedicatedCpus))
    );
    // status, reason, reason-source.
    assert_eq!(reviewed.patch_len, 3);
    assert_eq!(reviewed.source, Some(Source::PodFallback));
    assert_eq!(reviewed.scrape, None);
}

#[test]
fn null_members_count_as_absent() {
    let mut review = review_a();
    review["request"]["object"]["metadata"]["annotations"] = Value::Null;
    review["request"]["object"]["spec"]["initContainers"] = Value::Null;
    let (reviewed, answer) = answer(&review);
    assert_eq!(reviewed.outcome, Outcome::Injected);
    let bytes: Vec<u8> =
        serde_json::from_value(answer["response"]["patch"].clone()).unwrap_or_default();
    let ops: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let paths: Vec<&str> = ops
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["path"].as_str())
        .collect();
    assert!(
        paths.contains(&"/spec/initContainers") && paths.contains(&"/metadata/annotations"),
        "{paths:?}"
    );
}

#[test]
fn internal_error_messages_are_bounded() {
    let mut review = review_a();
    // serde quotes the whole string in "invalid type: string ..., expected i64".
    review["request"]["object"]["spec"]["terminationGracePeriodSeconds"] =
        json!("x".repeat(1 << 20));
    let (reviewed, answer) = answer(&review);
    let Outcome::Error(error) = reviewed.outcome else {
        panic!("{:?}", reviewed.outcome)
    };
    assert!(
        error.chars().count() <= 163 && error.ends_with("xxx..."),
        "{} chars",
        error.len()
    );
    assert!(
        answer["response"]["warnings"][0]
            .as_str()
            .unwrap_or_default()
            .len()
            < 300
    );
}

#[test]
fn invalid_override_is_a_warning_in_the_answer() {
    let mut review = review_a();
    review["request"]["object"]["metadata"]["annotations"][pod::MEMORY_LIMIT] =
        json!("x".repeat(1 << 20));
    let (reviewed, answer) = answer(&review);
    assert_eq!(reviewed.outcome, Outcome::Injected);
    let warning = answer["response"]["warnings"][0]
        .as_str()
        .unwrap_or_default();
    assert!(
        warning.starts_with(&format!("ignored {}=", pod::MEMORY_LIMIT)),
        "{warning}"
    );
    assert!(warning.len() < 200, "{} bytes", warning.len());
}

/// The ops of an answer, as JSON.
fn ops_of(reviewed: &Reviewed) -> Value {
    let answer: Value = serde_json::from_slice(&reviewed.response).unwrap_or_default();
    let bytes: Vec<u8> =
        serde_json::from_value(answer["response"]["patch"].clone()).unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or_default()
}

fn parsed(review: &Value) -> Parsed {
    let body = serde_json::to_vec(review).unwrap_or_default();
    parse(&body).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn parse_names_the_vmi_only_when_the_vm_decides() {
    let fixture = parsed(&review_a());
    let vmi = fixture.vmi_ref().cloned();
    assert_eq!(
        vmi.map(|r| (r.namespace, r.name, r.uid)),
        Some((
            "vm-demo".to_owned(),
            "fedora-a".to_owned(),
            "6f1c2b7e-3d4a-4c59-8e21-9a0b5c7d3e41".to_owned()
        ))
    );
    let mut opted_out = review_a();
    opted_out["request"]["object"]["metadata"]["labels"][pod::INJECT] = json!(pod::INJECT_DISABLED);
    let mut update = review_a();
    update["request"]["operation"] = json!("UPDATE");
    let mut hotplug = review_a();
    hotplug["request"]["object"]["metadata"]["labels"]["kubevirt.io"] = json!("hotplug-disk");
    // A launcher all the same, decided by its own signals: its owner has no uid to match a VMI by.
    let mut no_uid = review_a();
    if let Some(owner) =
        no_uid["request"]["object"]["metadata"]["ownerReferences"][0].as_object_mut()
    {
        owner.remove("uid");
    }
    let mut elsewhere = review_a();
    elsewhere["request"]["namespace"] = json!("tenant-b");
    for (name, review) in [
        ("opted out", opted_out),
        ("update", update),
        ("hotplug", hotplug),
        ("owner without uid", no_uid),
        ("request in another namespace than the pod", elsewhere),
    ] {
        assert_eq!(parsed(&review).vmi_ref(), None, "{name}");
    }
}

#[test]
fn review_is_parse_then_answer_without_a_vmi() {
    let body = serde_json::to_vec(&review_a()).unwrap_or_default();
    let one = super::review(&body, &Policy::default()).unwrap_or_else(|e| panic!("{e}"));
    let two = super::answer(&parsed(&review_a()), &Policy::default(), &Lookup::NotFound);
    assert_eq!(one.response, two.response);
}

#[test]
fn a_read_vmi_is_written_on_the_pod() {
    let vmi = json!({"spec": {"networks": [{"name": "default", "pod": {}}],
        "domain": {"devices": {"interfaces": [{"name": "default", "masquerade": {}, "ports": [{"port": 22}]}]}}}});
    let found = Lookup::Found(Box::new(
        VmiFacts::from_json(&vmi).unwrap_or_else(|e| panic!("{e}")),
    ));
    let reviewed = super::answer(&parsed(&review_a()), &Policy::default(), &found);
    assert_eq!(reviewed.outcome, Outcome::Injected);
    assert_eq!(reviewed.source, Some(Source::Vmi));
    let ops = ops_of(&reviewed);
    let value_at = |path: &str| {
        ops.as_array()
            .into_iter()
            .flatten()
            .find(|op| op["path"] == path)
            .map(|op| op["value"].clone())
    };
    assert_eq!(
        value_at("/metadata/annotations/kube-metrics-collector.io~1reason-source"),
        Some(json!("vmi"))
    );
    assert_eq!(
        value_at("/metadata/labels/kube-metrics-collector.io~1scrape"),
        Some(json!("direct"))
    );

    let dedicated = json!({"spec": {"domain": {"cpu": {"dedicatedCpuPlacement": true}}}});
    let found = Lookup::Found(Box::new(
        VmiFacts::from_json(&dedicated).unwrap_or_else(|e| panic!("{e}")),
    ));
    let reviewed = super::answer(&parsed(&review_a()), &Policy::default(), &found);
    assert_eq!(
        reviewed.outcome,
        Outcome::Skipped(SkipReason::Unsafe(UnsafeReason::DedicatedCpus))
    );
    let ops = ops_of(&reviewed);
    assert_eq!(
        ops,
        json!([
            {"op": "add", "path": "/metadata/annotations/kube-metrics-collector.io~1status", "value": "skipped"},
            {"op": "add", "path": "/metadata/annotations/kube-metrics-collector.io~1reason", "value": "dedicated-cpus"},
            {"op": "add", "path": "/metadata/annotations/kube-metrics-collector.io~1reason-source", "value": "vmi"},
        ])
    );
}

/// The values of the injected collector's env `name` for `body` under `policy`.
fn sidecar_env(body: &[u8], policy: &Policy, name: &str) -> Vec<String> {
    let reviewed = super::review(body, policy).unwrap_or_else(|e| panic!("{e}"));
    let answer: Value = serde_json::from_slice(&reviewed.response).unwrap_or_default();
    let bytes: Vec<u8> =
        serde_json::from_value(answer["response"]["patch"].clone()).unwrap_or_default();
    let ops: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let sidecar = ops
        .as_array()
        .into_iter()
        .flatten()
        .find(|op| op["value"]["name"] == kube_metrics_contract::sidecar::CONTAINER_NAME)
        .map(|op| op["value"]["env"].clone())
        .unwrap_or_default();
    sidecar
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["name"] == name)
        .map(|e| e["value"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn the_metrics_profile_reaches_the_collector_from_the_flag_or_the_annotation() {
    use kube_metrics_contract::metrics::Profile;
    use kube_metrics_contract::sidecar::ENV_METRICS_PROFILE;
    let plain = serde_json::to_vec(&review_a()).unwrap_or_default();
    let mut review = review_a();
    review["request"]["object"]["metadata"]["annotations"]["kube-metrics-collector.io/metrics-profile"] =
        json!("full");
    let annotated = serde_json::to_vec(&review).unwrap_or_default();
    review["request"]["object"]["metadata"]["annotations"]["kube-metrics-collector.io/metrics-profile"] =
        json!("maximal");
    let unknown = serde_json::to_vec(&review).unwrap_or_default();
    let full = Policy {
        metrics_profile: Some(Profile::Full),
        ..Policy::default()
    };
    let cases: [(&[u8], &Policy, &[&str]); 5] = [
        (&plain, &Policy::default(), &[]),
        (&plain, &full, &["full"]),
        (&annotated, &Policy::default(), &["full"]),
        (&unknown, &Policy::default(), &[]),
        (&unknown, &full, &["full"]),
    ];
    for (i, (body, policy, want)) in cases.into_iter().enumerate() {
        assert_eq!(
            sidecar_env(body, policy, ENV_METRICS_PROFILE),
            want,
            "case {i}"
        );
    }
    let reviewed = super::review(&unknown, &Policy::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reviewed.outcome, Outcome::Injected);
    assert_eq!(
        reviewed.ignored,
        [kube_metrics_contract::pod::METRICS_PROFILE]
    );
    assert!(
        reviewed.warnings.iter().any(|w| w.contains("maximal")),
        "{:?}",
        reviewed.warnings
    );
}

#[test]
fn the_kubevirt_release_reaches_the_collector_as_env_only_when_set() {
    let body = serde_json::to_vec(&review_a()).unwrap_or_default();
    let env_of = |policy: &Policy| {
        sidecar_env(
            &body,
            policy,
            kube_metrics_contract::sidecar::ENV_KUBEVIRT_RELEASE,
        )
    };
    assert_eq!(env_of(&Policy::default()), Vec::<String>::new());
    let policy = Policy {
        kubevirt_release: "v1.8.4".parse().ok(),
        ..Policy::default()
    };
    assert_eq!(env_of(&policy), ["1.8"]);
}
