//! `patch::parse` + `patch::answer` end to end on the fixture AdmissionReview and reviews derived from
//! it, without a VMI (the pod's signals decide) and with VMI fixtures from `tests/fixtures/vmi`: the
//! patch applies with json-patch, gives the collector what it needs, leaves every existing field
//! alone, is empty on a second pass, matches its golden file, and the patched pod passes
//! `kubernetes-validate --strict`.
//!
//! Golden files: `tests/fixtures/admission/<case>.patch.json`; regenerate with `UPDATE_GOLDEN=1`.
mod common;

use common::fixtures;
use kube_metrics_contract as contract;
use kube_metrics_contract::pod::{
    REASON, REASON_SOURCE, REASON_SOURCE_POD_FALLBACK, REASON_SOURCE_VMI, SCRAPE, SCRAPE_DIRECT,
    SCRAPE_RELAY, STATUS,
};
use kube_metrics_contract::sidecar::PORT;
use kube_metrics_webhook::decide::{SkipReason, UnsafeReason};
use kube_metrics_webhook::patch::{self, Outcome, Reviewed};
use kube_metrics_webhook::policy::{Mode, Policy};
use kube_metrics_webhook::vmi::{Lookup, VmiFacts};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Kubernetes releases the patched pods are validated against: the newest schema the installed
/// kubernetes-validate ships (it works offline), and 1.29, the first with native sidecars on by default.
const KUBERNETES_VERSIONS: &[&str] = &["1.37.0", "1.29.0"];

struct Case {
    name: &'static str,
    review: Value,
    policy: Policy,
    /// The VMI fixture the lookup finds; `None`: not found, the pod's signals decide.
    vmi: Option<&'static str>,
    want: Outcome,
}

/// What the lookup found for `case`.
fn lookup(case: &Case) -> Lookup {
    let Some(name) = case.vmi else {
        return Lookup::NotFound;
    };
    Lookup::Found(Box::new(
        VmiFacts::from_json(&fixtures::vmi(name)).unwrap_or_else(|e| panic!("{name}: {e}")),
    ))
}

/// The sidecar's port and scrape label for an injected case.
fn expected_port_and_scrape(name: &str) -> (u16, &'static str) {
    match name {
        "port-clash" => (PORT + 1, SCRAPE_RELAY),
        "vmi-masquerade-ports" => (PORT, SCRAPE_DIRECT),
        // passt lists the default port: the sidecar moves one up, which passt leaves alone.
        "vmi-passt-lists-our-port" => (PORT + 1, SCRAPE_DIRECT),
        _ => (PORT, SCRAPE_RELAY),
    }
}

/// The fixture review with `edit` applied to its pod.
fn derived(edit: impl FnOnce(&mut Value)) -> Value {
    let mut review = fixtures::review();
    edit(&mut review["request"]["object"]);
    review
}

fn guaranteed(pod: &mut Value) {
    for list in ["containers", "initContainers"] {
        for c in pod["spec"][list].as_array_mut().into_iter().flatten() {
            let r = json!({"cpu": "1", "memory": "2Gi"});
            c["resources"] = json!({"requests": r, "limits": r});
        }
    }
}

fn cases() -> Vec<Case> {
    let inject = Outcome::Injected;
    let skip = Outcome::Skipped;
    let container_mode = Policy {
        mode: Mode::Container,
        ..Policy::default()
    };
    let case = |name, review, want| Case {
        name,
        review,
        policy: Policy::default(),
        vmi: None,
        want,
    };
    let with_vmi = |name, vmi, want| Case {
        name,
        review: fixtures::review(),
        policy: Policy::default(),
        vmi: Some(vmi),
        want,
    };
    vec![
        case("pod-a", fixtures::review(), inject.clone()),
        Case {
            name: "pod-a-container-mode",
            review: fixtures::review(),
            policy: container_mode,
            vmi: None,
            want: inject.clone(),
        },
        with_vmi("vmi-masquerade-ports", "masquerade-ports", inject.clone()),
        with_vmi("vmi-bridge", "bridge", inject.clone()),
        with_vmi(
            "vmi-passt-lists-our-port",
            "passt-lists-our-port",
            inject.clone(),
        ),
        with_vmi(
            "vmi-dedicated-cpus",
            "dedicated-cpus",
            skip(UnsafeReason::DedicatedCpus.into()),
        ),
        case("guaranteed", derived(guaranteed), inject.clone()),
        case(
            "root-mode",
            derived(|p| {
                p["spec"]["securityContext"] = json!({"runAsUser": 0});
                for c in p["spec"]["containers"].as_array_mut().into_iter().flatten() {
                    c["securityContext"] = json!({"capabilities": {"drop": ["ALL"]}});
                }
            }),
            inject.clone(),
        ),
        case(
            "bare",
            derived(|p| {
                for (parent, key) in [
                    ("metadata", "annotations"),
                    ("spec", "volumes"),
                    ("spec", "initContainers"),
                ] {
                    p[parent].as_object_mut().map(|m| m.remove(key));
                }
            }),
            inject.clone(),
        ),
        case(
            "port-clash",
            derived(|p| {
                p["spec"]["containers"][0]["ports"] =
                    json!([{"name": "guest", "containerPort": PORT}])
            }),
            inject.clone(),
        ),
        case(
            "overrides",
            derived(|p| {
                let a = &mut p["metadata"]["annotations"];
                a[contract::pod::MEMORY_LIMIT] = json!("64Mi");
                a[contract::pod::LOG_LEVEL] = json!("debug");
                a[contract::pod::CPU_LIMIT] = json!("lots");
            }),
            inject,
        ),
        case(
            "dedicated-cpus",
            derived(|p| {
                guaranteed(p);
                p["spec"]["nodeSelector"]["kubevirt.io/cpumanager"] = json!("true");
            }),
            skip(UnsafeReason::DedicatedCpus.into()),
        ),
        case(
            "gpu",
            derived(|p| {
                p["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/GA102GL_A10"] =
                    json!("1")
            }),
            skip(UnsafeReason::VfioDevice.into()),
        ),
        case(
            "provisioning",
            derived(|p| {
                p["metadata"]["annotations"]["kubevirt.io/ephemeral-provisioning"] = json!("true")
            }),
            skip(SkipReason::Provisioning),
        ),
        case(
            "opted-out",
            derived(|p| {
                p["metadata"]["labels"][contract::pod::INJECT] =
                    json!(contract::pod::INJECT_DISABLED)
            }),
            skip(SkipReason::OptedOut),
        ),
        case(
            "hotplug-pod",
            derived(|p| p["metadata"]["labels"]["kubevirt.io"] = json!("hotplug-disk")),
            skip(SkipReason::NotLauncher),
        ),
    ]
}

/// Every key of ours set by the pod's creator, as a tenant can on a VM template: the webhook's
/// decision must replace or remove each of them.
fn forged_marks(pod: &mut Value) {
    let annotations = &mut pod["metadata"]["annotations"];
    annotations[STATUS] = json!("injected");
    annotations[REASON] = json!("none");
    annotations[REASON_SOURCE] = json!(REASON_SOURCE_VMI);
    // A tenant input: kept.
    annotations[contract::pod::LOG_LEVEL] = json!("debug");
    pod["metadata"]["labels"][SCRAPE] = json!(SCRAPE_DIRECT);
}

/// A container named like ours, with our port, in the pod as created.
fn forged_sidecar(pod: &mut Value) {
    if let Some(list) = pod["spec"]["containers"].as_array_mut() {
        list.push(
            json!({"name": contract::sidecar::CONTAINER_NAME, "image": "evil",
            "ports": [{"name": contract::sidecar::PORT_NAME, "containerPort": PORT}]}),
        );
    }
}

/// Pods whose creator set our keys. Not in [`cases`]: their existing members change, on purpose.
fn tenant_cases() -> Vec<Case> {
    let case = |name, vmi, edit: fn(&mut Value), want| Case {
        name,
        review: derived(|p| {
            forged_marks(p);
            edit(p)
        }),
        policy: Policy::default(),
        vmi,
        want,
    };
    vec![
        // masquerade without ports forwards every port to the guest: relay, whatever the pod said.
        case(
            "tenant-marks-masquerade",
            Some("masquerade"),
            |_| {},
            Outcome::Injected,
        ),
        case(
            "tenant-marks-direct-kept-by-the-vmi",
            Some("masquerade-ports"),
            |_| {},
            Outcome::Injected,
        ),
        case(
            "tenant-marks-unsafe",
            Some("dedicated-cpus"),
            |_| {},
            Outcome::Skipped(UnsafeReason::DedicatedCpus.into()),
        ),
        case(
            "tenant-marks-opted-out",
            None,
            |p| p["metadata"]["labels"][contract::pod::INJECT] = json!("disabled"),
            Outcome::Skipped(SkipReason::OptedOut),
        ),
        case(
            "tenant-marks-not-launcher",
            None,
            |p| p["metadata"]["ownerReferences"][0]["apiVersion"] = json!("evil.io/v1"),
            Outcome::Skipped(SkipReason::NotLauncher),
        ),
        case(
            "tenant-marks-host-network",
            None,
            |p| p["spec"]["hostNetwork"] = json!(true),
            Outcome::Skipped(SkipReason::HostNetwork),
        ),
        case(
            "tenant-forged-sidecar",
            Some("masquerade"),
            forged_sidecar,
            Outcome::Skipped(SkipReason::AlreadyInjected),
        ),
        case(
            "tenant-forged-sidecar-direct-vmi",
            Some("masquerade-ports"),
            forged_sidecar,
            Outcome::Skipped(SkipReason::AlreadyInjected),
        ),
    ]
}

/// What each tenant case must end with on our four keys: (status, reason, reason-source, scrape).
fn tenant_marks(name: &str) -> [Option<&'static str>; 4] {
    let skipped = Some(contract::pod::STATUS_SKIPPED);
    let injected = Some(contract::pod::STATUS_INJECTED);
    let vmi = Some(REASON_SOURCE_VMI);
    match name {
        "tenant-marks-masquerade" | "tenant-forged-sidecar" => {
            [injected, None, vmi, Some(SCRAPE_RELAY)]
        }
        "tenant-marks-direct-kept-by-the-vmi" | "tenant-forged-sidecar-direct-vmi" => {
            [injected, None, vmi, Some(SCRAPE_DIRECT)]
        }
        "tenant-marks-unsafe" => [skipped, Some("dedicated-cpus"), vmi, None],
        "tenant-marks-opted-out" => [skipped, Some("opted-out"), None, None],
        "tenant-marks-host-network" => [skipped, Some("host-network"), None, None],
        "tenant-marks-not-launcher" => [None, None, None, None],
        other => panic!("no marks for {other}"),
    }
}

/// Every case with a golden file.
fn all_cases() -> Vec<Case> {
    cases().into_iter().chain(tenant_cases()).collect()
}

/// Both steps, as the server runs them, with the case's lookup in between.
fn run(review: &Value, case: &Case) -> Reviewed {
    let body = serde_json::to_vec(review).unwrap_or_else(|e| panic!("{e}"));
    let parsed = patch::parse(&body).unwrap_or_else(|e| panic!("review failed: {e}"));
    patch::answer(&parsed, &case.policy, &lookup(case))
}

/// The patch operations of an answer; empty when it has no patch.
fn patch_of(reviewed: &Reviewed) -> Value {
    let answer: Value =
        serde_json::from_slice(&reviewed.response).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer["response"]["allowed"], true);
    match answer["response"].get("patch") {
        None => json!([]),
        Some(bytes) => {
            assert_eq!(answer["response"]["patchType"], "JSONPatch");
            let bytes: Vec<u8> =
                serde_json::from_value(bytes.clone()).unwrap_or_else(|e| panic!("{e}"));
            serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}"))
        }
    }
}

/// The case's pod after its patch, and the patch.
fn patched(case: &Case) -> (Value, Value) {
    let reviewed = run(&case.review, case);
    assert_eq!(reviewed.outcome, case.want, "{}", case.name);
    let ops = patch_of(&reviewed);
    let parsed: json_patch::Patch =
        serde_json::from_value(ops.clone()).unwrap_or_else(|e| panic!("{e}"));
    let mut pod = case.review["request"]["object"].clone();
    json_patch::patch(&mut pod, &parsed)
        .unwrap_or_else(|e| panic!("{}: patch does not apply: {e}", case.name));
    (pod, ops)
}

/// `after` keeps every member of `before` with its value; lists may only grow at the end.
fn assert_untouched(before: &Value, after: &Value, at: &str) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            for (key, value) in b {
                let child = a
                    .get(key)
                    .unwrap_or_else(|| panic!("{at}/{key} was removed"));
                assert_untouched(value, child, &format!("{at}/{key}"));
            }
        }
        (Value::Array(b), Value::Array(a)) => {
            assert!(a.len() >= b.len(), "{at} shrank");
            for (i, (x, y)) in b.iter().zip(a).enumerate() {
                assert_eq!(x, y, "{at}/{i} changed");
            }
        }
        _ => assert_eq!(before, after, "{at} changed"),
    }
}

#[test]
fn patches_match_their_golden_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/admission");
    for case in all_cases() {
        let (_, ops) = patched(&case);
        let file = dir.join(format!("{}.patch.json", case.name));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            let text = serde_json::to_string_pretty(&ops).unwrap_or_default() + "\n";
            std::fs::write(&file, text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        }
        let want = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{} ({e}); UPDATE_GOLDEN=1", file.display()));
        let want: Value =
            serde_json::from_str(&want).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!(
            ops,
            want,
            "{}: patch differs from {}",
            case.name,
            file.display()
        );
    }
}

#[test]
fn injected_pods_have_what_the_collector_needs() {
    for case in cases().into_iter().filter(|c| c.want == Outcome::Injected) {
        let (pod, _) = patched(&case);
        let name = case.name;
        let list = if case.policy.mode == Mode::Native {
            "initContainers"
        } else {
            "containers"
        };
        let sidecar = pod["spec"][list]
            .as_array()
            .and_then(|l| l.last())
            .cloned()
            .unwrap_or_default();
        assert_marks(&case, &pod, &sidecar);
        assert_command_and_probe(name, &sidecar);
        assert_pod_identity_env(name, &sidecar);
        assert_volumes(name, &pod, &sidecar);
        assert_locked_down(name, &sidecar);
        assert_resources(name, &sidecar);
    }
}

/// The sidecar is ours, the PID namespace shared, and the pod says how and from what it was judged.
fn assert_marks(case: &Case, pod: &Value, sidecar: &Value) {
    let name = case.name;
    assert_eq!(sidecar["name"], contract::sidecar::CONTAINER_NAME, "{name}");
    assert_eq!(pod["spec"]["shareProcessNamespace"], true, "{name}");
    assert_eq!(
        pod["metadata"]["annotations"][STATUS],
        contract::pod::STATUS_INJECTED,
        "{name}"
    );
    let (_, scrape) = expected_port_and_scrape(name);
    assert_eq!(pod["metadata"]["labels"][SCRAPE], scrape, "{name}");
    let source = if case.vmi.is_some() {
        REASON_SOURCE_VMI
    } else {
        REASON_SOURCE_POD_FALLBACK
    };
    assert_eq!(
        pod["metadata"]["annotations"][REASON_SOURCE], source,
        "{name}"
    );
    let want_restart = if case.policy.mode == Mode::Native {
        json!("Always")
    } else {
        Value::Null
    };
    assert_eq!(sidecar["restartPolicy"], want_restart, "{name}");
}

/// The port, the arguments, and a probe that cannot land in the guest.
fn assert_command_and_probe(name: &str, sidecar: &Value) {
    let (port, _) = expected_port_and_scrape(name);
    assert_eq!(
        sidecar["ports"],
        json!([{"name": contract::sidecar::PORT_NAME, "containerPort": port, "protocol": "TCP"}]),
        "{name}"
    );
    let args = json!([
        "--listen",
        format!("0.0.0.0:{port}"),
        "--socket",
        contract::sidecar::SOCKET_PATH,
        "--podinfo",
        contract::sidecar::PODINFO_DIR
    ]);
    assert_eq!(sidecar["args"], args, "{name}");
    let cmdline = format!(
        "{}{}{}",
        sidecar["command"], sidecar["args"], sidecar["livenessProbe"]
    );
    assert!(
        !cmdline.contains("qemu-kvm") && !cmdline.contains("qemu-system"),
        "{name}: {cmdline}"
    );
    assert!(
        sidecar["livenessProbe"]["exec"].is_object()
            && sidecar["livenessProbe"]["httpGet"].is_null()
    );
}

/// The downward-API variables the collector names its series with.
fn assert_pod_identity_env(name: &str, sidecar: &Value) {
    for (env, field) in [
        (contract::sidecar::ENV_POD_NAME, "metadata.name"),
        (contract::sidecar::ENV_POD_NAMESPACE, "metadata.namespace"),
        (contract::sidecar::ENV_NODE_NAME, "spec.nodeName"),
    ] {
        let found = sidecar["env"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["name"] == env);
        let found = found.unwrap_or_else(|| panic!("{name}: no {env}"));
        assert_eq!(found["valueFrom"]["fieldRef"]["fieldPath"], field, "{name}");
    }
}

/// The podinfo and socket volumes, mounted where the collector reads them.
fn assert_volumes(name: &str, pod: &Value, sidecar: &Value) {
    let volumes = pod["spec"]["volumes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let podinfo = volumes
        .iter()
        .find(|v| v["name"] == contract::sidecar::PODINFO_VOLUME)
        .cloned()
        .unwrap_or_default();
    let items: Vec<&str> = podinfo["downwardAPI"]["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["path"].as_str())
        .collect();
    assert_eq!(items, contract::sidecar::PODINFO_FILES, "{name}");
    assert_eq!(
        podinfo["downwardAPI"]["items"][3]["resourceFieldRef"],
        json!({"containerName": "compute", "resource": "limits.memory", "divisor": "1"})
    );
    assert!(
        volumes
            .iter()
            .any(|v| v["name"] == contract::sidecar::SOCKET_VOLUME && v["emptyDir"] == json!({})),
        "{name}"
    );
    let mounts: Vec<(&str, &str)> = sidecar["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| Some((m["name"].as_str()?, m["mountPath"].as_str()?)))
        .collect();
    assert_eq!(
        mounts,
        [
            (
                contract::sidecar::PODINFO_VOLUME,
                contract::sidecar::PODINFO_DIR
            ),
            (
                contract::sidecar::SOCKET_VOLUME,
                contract::sidecar::SOCKET_DIR
            )
        ],
        "{name}"
    );
}

/// The user the plan chose, and nothing more than the collector needs.
fn assert_locked_down(name: &str, sidecar: &Value) {
    let sc = &sidecar["securityContext"];
    let (uid, non_root) = if name == "root-mode" {
        (0, Value::Null)
    } else {
        (107, json!(true))
    };
    assert_eq!(
        (&sc["runAsUser"], &sc["runAsNonRoot"]),
        (&json!(uid), &non_root),
        "{name}"
    );
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
    assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
    assert_eq!(sc["capabilities"], json!({"drop": ["ALL"]}), "{name}");
    assert_eq!(
        sc["seccompProfile"],
        json!({"type": "RuntimeDefault"}),
        "{name}"
    );
}

/// Requests equal limits only for a Guaranteed pod; the per-pod overrides apply.
fn assert_resources(name: &str, sidecar: &Value) {
    let r = &sidecar["resources"];
    let equal = r["requests"] == r["limits"];
    assert_eq!(
        equal,
        name == "guaranteed",
        "{name}: requests == limits only when Guaranteed: {r}"
    );
    if name == "overrides" {
        assert_eq!(
            (&r["limits"]["memory"], &r["limits"]["cpu"]),
            (&json!("64Mi"), &json!("50m"))
        );
        assert!(
            sidecar["env"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| e == &json!({"name": contract::sidecar::ENV_LOG_LEVEL, "value": "debug"}))
        );
    }
}

#[test]
fn nothing_that_existed_changes_and_compute_stays_first() {
    for case in cases() {
        let before = &case.review["request"]["object"];
        let (after, _) = patched(&case);
        assert_untouched(before, &after, "");
        let compute =
            |pod: &Value| serde_json::to_string(&pod["spec"]["containers"][0]).unwrap_or_default();
        assert_eq!(
            compute(before),
            compute(&after),
            "{}: compute changed",
            case.name
        );
        assert_eq!(
            after["spec"]["containers"][0]["name"], "compute",
            "{}",
            case.name
        );
    }
}

#[test]
fn skips_are_annotated_except_for_pods_that_are_not_ours() {
    for case in cases() {
        let Outcome::Skipped(reason) = case.want else {
            continue;
        };
        let (pod, ops) = patched(&case);
        let annotations = &pod["metadata"]["annotations"];
        if reason == SkipReason::NotLauncher {
            assert_eq!(ops, json!([]), "{}", case.name);
        } else {
            assert_eq!(
                annotations[STATUS],
                contract::pod::STATUS_SKIPPED,
                "{}",
                case.name
            );
            assert_eq!(annotations[REASON], reason.as_str(), "{}", case.name);
            // Only a skip for the VM's type says who judged the VM.
            let source = match (reason, case.vmi) {
                (
                    SkipReason::Unsafe(UnsafeReason::DedicatedCpus | UnsafeReason::VfioDevice),
                    Some(_),
                ) => json!(REASON_SOURCE_VMI),
                (
                    SkipReason::Unsafe(UnsafeReason::DedicatedCpus | UnsafeReason::VfioDevice),
                    None,
                ) => {
                    json!(REASON_SOURCE_POD_FALLBACK)
                }
                _ => Value::Null,
            };
            assert_eq!(annotations[REASON_SOURCE], source, "{}", case.name);
        }
    }
}

#[test]
fn a_second_pass_yields_an_empty_patch() {
    for case in all_cases() {
        let (pod, _) = patched(&case);
        let mut again = case.review.clone();
        again["request"]["object"] = pod;
        let reviewed = run(&again, &case);
        assert_eq!(
            reviewed.patch_len, 0,
            "{}: {:?}",
            case.name, reviewed.outcome
        );
        assert_eq!(patch_of(&reviewed), json!([]), "{}", case.name);
        if case.want == Outcome::Injected {
            assert_eq!(
                reviewed.outcome,
                Outcome::Skipped(SkipReason::AlreadyInjected),
                "{}",
                case.name
            );
        }
    }
}

/// Our keys end as the decision says, whatever the pod's creator set; everything else (the tenant's
/// own `kube-metrics-collector.io/` inputs included) is untouched.
#[test]
fn the_decision_is_the_only_source_of_our_keys() {
    let ours = [
        ("annotations", STATUS),
        ("annotations", REASON),
        ("annotations", REASON_SOURCE),
        ("labels", SCRAPE),
    ];
    for case in tenant_cases() {
        let (after, ops) = patched(&case);
        let got = ours.map(|(map, key)| after["metadata"][map][key].as_str());
        assert_eq!(got, tenant_marks(case.name), "{}: {ops}", case.name);
        assert_eq!(
            after["metadata"]["annotations"][contract::pod::LOG_LEVEL],
            "debug",
            "{}",
            case.name
        );
        let mut before = case.review["request"]["object"].clone();
        for (map, key) in ours {
            before["metadata"][map]
                .as_object_mut()
                .map(|m| m.remove(key));
        }
        assert_untouched(&before, &after, case.name);
        // Only our keys are replaced or removed.
        for op in ops.as_array().into_iter().flatten() {
            if op["op"] != "add" {
                let path = op["path"].as_str().unwrap_or_default();
                assert!(
                    path.starts_with("/metadata/annotations/kube-metrics-collector.io~1")
                        || path.starts_with("/metadata/labels/kube-metrics-collector.io~1"),
                    "{}: {op}",
                    case.name
                );
            }
        }
    }
}

#[test]
fn patched_pods_pass_strict_schema_validation() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut files: Vec<PathBuf> = Vec::new();
    for case in all_cases() {
        let (mut pod, _) = patched(&case);
        // The API server fills the name from generateName after the webhooks; the schema needs one.
        pod["metadata"]["name"] = json!(format!(
            "{}abcde",
            pod["metadata"]["generateName"].as_str().unwrap_or("pod-")
        ));
        let file = dir.path().join(format!("{}.json", case.name));
        std::fs::write(&file, serde_json::to_vec_pretty(&pod).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        files.push(file);
    }
    for version in KUBERNETES_VERSIONS {
        let output = Command::new("kubernetes-validate")
            .args(["--strict", "--kubernetes-version", version])
            .args(&files)
            .output();
        let output = output.unwrap_or_else(|e| {
            panic!("cannot run kubernetes-validate ({e}): install it with `python3 -m pip install kubernetes-validate` (scripts/setup does)")
        });
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success(),
            "kubernetes-validate --strict {version} failed:\n{text}"
        );
        assert_eq!(text.matches("passed").count(), files.len(), "{text}");
    }
}
