//! Table tests of `precheck` + `decide` on the shared fixture pod and pods derived from it, without a
//! VMI (the lookup found nothing: the pod's signals decide). With a VMI: `vmi_tests.rs`.
use super::*;
use crate::policy::Policy;
use kube_metrics_contract::sidecar::{CONTAINER_NAME, PODINFO_VOLUME, PORT};
use serde_json::{Value, json};

/// The launcher pod inside `tests/fixtures/admission/pod-a.json`, a KubeVirt v1.8.4 AdmissionReview.
pub(super) fn pod_a() -> Value {
    let review: Value =
        serde_json::from_str(include_str!("../../tests/fixtures/admission/pod-a.json"))
            .unwrap_or_default();
    review["request"]["object"].clone()
}

/// Both steps, as the server runs them, with `lookup` in between.
pub(super) fn decide_with(pod: &Value, policy: &Policy, lookup: &Lookup) -> Decision {
    let pod: Pod = serde_json::from_value(pod.clone()).unwrap_or_else(|e| panic!("not a pod: {e}"));
    match precheck(pod) {
        Ok(candidate) => decide(&candidate, policy, lookup).0,
        Err(reason) => Decision::Skip(reason),
    }
}

fn decide_json(pod: &Value) -> Decision {
    decide_with(pod, &Policy::default(), &Lookup::NotFound)
}

fn plan_of(pod: &Value) -> Plan {
    match decide_json(pod) {
        Decision::Inject(plan) => *plan,
        other => panic!("expected injection, got {other:?}"),
    }
}

/// Sets requests == limits on every container: a Guaranteed pod.
pub(super) fn guaranteed(mut pod: Value) -> Value {
    for list in ["containers", "initContainers"] {
        for c in pod["spec"][list].as_array_mut().into_iter().flatten() {
            let r = json!({"cpu": "1", "memory": "2Gi", "devices.kubevirt.io/kvm": "1"});
            c["resources"] = json!({"requests": r, "limits": r});
        }
    }
    pod
}

pub(super) fn with(mut pod: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    match pod.pointer_mut(parent) {
        Some(Value::Object(map)) => drop(map.insert(key.replace("~1", "/"), value)),
        Some(Value::Array(list)) => list.push(value),
        _ => panic!("no parent at {parent}"),
    }
    pod
}

fn without(mut pod: Value, pointer: &str) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    if let Some(Value::Object(map)) = pod.pointer_mut(parent) {
        map.remove(&key.replace("~1", "/"));
    }
    pod
}

/// Each pod is skipped for `want`, and only the VM-type reasons are judged (and say who judged
/// them); the rest come first.
fn assert_skips(table: Vec<(&str, Value, SkipReason)>) {
    for (name, pod, want) in table {
        let decision = decide_json(&pod);
        assert_eq!(decision.skip_reason(), Some(want), "{name}");
        let judged = matches!(
            decision,
            Decision::Unsafe {
                source: Source::PodFallback,
                ..
            }
        );
        let vm_type = matches!(want, SkipReason::Unsafe(_) | SkipReason::ResourceClaims);
        assert_eq!(judged, vm_type, "{name}: {decision:?}");
    }
}

/// Pods that are not launchers, or whose owner opted out, or that have the collector already.
#[test]
fn skips_pods_that_are_not_ours_to_inject() {
    use SkipReason::*;
    let a = pod_a;
    let sidecar = json!({"name": CONTAINER_NAME, "image": "x"});
    assert_skips(vec![
        (
            "hotplug pod",
            with(a(), "/metadata/labels/kubevirt.io", json!("hotplug-disk")),
            NotLauncher,
        ),
        (
            "no launcher label",
            without(a(), "/metadata/labels/kubevirt.io"),
            NotLauncher,
        ),
        (
            "no owner",
            without(a(), "/metadata/ownerReferences"),
            NotLauncher,
        ),
        (
            "owned by a ReplicaSet",
            with(a(), "/metadata/ownerReferences/0/kind", json!("ReplicaSet")),
            NotLauncher,
        ),
        (
            "provisioning pod",
            with(
                a(),
                "/metadata/annotations/kubevirt.io~1ephemeral-provisioning",
                json!("true"),
            ),
            Provisioning,
        ),
        (
            "opted out by label",
            with(
                a(),
                "/metadata/labels/kube-metrics-collector.io~1inject",
                json!("disabled"),
            ),
            OptedOut,
        ),
        (
            "opted out by annotation",
            with(
                a(),
                "/metadata/annotations/kube-metrics-collector.io~1inject",
                json!("disabled"),
            ),
            OptedOut,
        ),
        (
            "shareProcessNamespace false",
            with(a(), "/spec/shareProcessNamespace", json!(false)),
            OptedOut,
        ),
        (
            "already a native sidecar",
            with(a(), "/spec/initContainers/-", sidecar.clone()),
            AlreadyInjected,
        ),
        (
            "already a container",
            with(a(), "/spec/containers/-", sidecar.clone()),
            AlreadyInjected,
        ),
        (
            "already injected wins over opt-out",
            with(
                with(a(), "/spec/containers/-", sidecar),
                "/metadata/labels/kube-metrics-collector.io~1inject",
                json!("disabled"),
            ),
            AlreadyInjected,
        ),
    ]);
}

/// Only a KubeVirt VMI as controller makes a launcher; the node's namespaces are never shared with
/// the collector, even when the sidecar is already there.
#[test]
fn skips_foreign_owners_and_the_nodes_namespaces() {
    use SkipReason::*;
    let a = pod_a;
    let owner = "/metadata/ownerReferences/0";
    let sidecar = json!({"name": CONTAINER_NAME, "image": "x"});
    assert_skips(vec![
        (
            "VMI kind of another group",
            with(a(), &format!("{owner}/apiVersion"), json!("evil.io/v1")),
            NotLauncher,
        ),
        (
            "group that only starts like KubeVirt's",
            with(
                a(),
                &format!("{owner}/apiVersion"),
                json!("kubevirt.io.evil/v1"),
            ),
            NotLauncher,
        ),
        (
            "apiVersion without a group",
            with(a(), &format!("{owner}/apiVersion"), json!("v1")),
            NotLauncher,
        ),
        (
            "not the controller",
            with(a(), &format!("{owner}/controller"), json!(false)),
            NotLauncher,
        ),
        (
            "controller unset",
            without(a(), &format!("{owner}/controller")),
            NotLauncher,
        ),
        (
            "hostNetwork",
            with(a(), "/spec/hostNetwork", json!(true)),
            HostNetwork,
        ),
        ("hostPID", with(a(), "/spec/hostPID", json!(true)), HostPid),
        ("hostIPC", with(a(), "/spec/hostIPC", json!(true)), HostIpc),
        (
            "hostNetwork with the sidecar already there",
            with(
                with(a(), "/spec/hostNetwork", json!(true)),
                "/spec/containers/-",
                sidecar,
            ),
            HostNetwork,
        ),
        (
            "hostNetwork before hostPID",
            with(
                with(a(), "/spec/hostPID", json!(true)),
                "/spec/hostNetwork",
                json!(true),
            ),
            HostNetwork,
        ),
    ]);
    for version in ["kubevirt.io/v1", "kubevirt.io/v1alpha3", "kubevirt.io/v2"] {
        let pod = with(a(), &format!("{owner}/apiVersion"), json!(version));
        assert!(
            matches!(decide_json(&pod), Decision::Inject(_)),
            "{version}"
        );
    }
    for flag in ["hostNetwork", "hostPID", "hostIPC"] {
        let pod = with(a(), &format!("/spec/{flag}"), json!(false));
        assert!(matches!(decide_json(&pod), Decision::Inject(_)), "{flag}");
    }
}

/// VM types that a shared PID namespace breaks, from the node selectors KubeVirt sets.
#[test]
fn skips_vm_types_shown_by_node_selectors() {
    use UnsafeReason::*;
    let a = pod_a;
    assert_skips(vec![
        (
            "dedicated CPUs (Guaranteed)",
            with(
                guaranteed(a()),
                "/spec/nodeSelector/kubevirt.io~1cpumanager",
                json!("true"),
            ),
            DedicatedCpus.into(),
        ),
        (
            "realtime",
            with(
                a(),
                "/spec/nodeSelector/kubevirt.io~1realtime",
                json!("true"),
            ),
            Realtime.into(),
        ),
        (
            "SEV",
            with(a(), "/spec/nodeSelector/kubevirt.io~1sev", json!("")),
            ConfidentialVm.into(),
        ),
        (
            "SEV-ES",
            with(a(), "/spec/nodeSelector/kubevirt.io~1sev-es", json!("")),
            ConfidentialVm.into(),
        ),
        (
            "TDX",
            with(a(), "/spec/nodeSelector/kubevirt.io~1tdx", json!("true")),
            ConfidentialVm.into(),
        ),
    ]);
}

/// VM types that a shared PID namespace breaks, from the devices and capabilities the pod asks for.
#[test]
fn skips_vm_types_shown_by_devices() {
    use SkipReason::*;
    use UnsafeReason::*;
    let a = pod_a;
    assert_skips(vec![
        (
            "SEV device",
            with(
                a(),
                "/spec/containers/0/resources/limits/devices.kubevirt.io~1sev",
                json!("1"),
            ),
            ConfidentialVm.into(),
        ),
        (
            "a GPU",
            with(
                a(),
                "/spec/containers/0/resources/limits/nvidia.com~1GA102GL_A10",
                json!("1"),
            ),
            VfioDevice.into(),
        ),
        (
            "an SR-IOV VF",
            with(
                a(),
                "/spec/containers/0/resources/requests/intel.com~1sriov_netdevice",
                json!("1"),
            ),
            VfioDevice.into(),
        ),
        (
            "pod resource claims",
            with(
                a(),
                "/spec/resourceClaims",
                json!([{"name": "gpu", "resourceClaimName": "gpu-0"}]),
            ),
            ResourceClaims,
        ),
        (
            "container resource claims",
            with(
                a(),
                "/spec/containers/0/resources/claims",
                json!([{"name": "gpu"}]),
            ),
            ResourceClaims,
        ),
        (
            "IPC_LOCK",
            with(
                a(),
                "/spec/containers/0/securityContext/capabilities/add/-",
                json!("IPC_LOCK"),
            ),
            MemoryLock.into(),
        ),
    ]);
}

/// Pods whose shape the patch cannot rely on.
#[test]
fn skips_pods_it_cannot_read_with_confidence() {
    use SkipReason::*;
    let a = pod_a;
    assert_skips(vec![
        (
            "compute not first",
            with(a(), "/spec/containers/0/name", json!("other")),
            Unparseable,
        ),
        (
            "no user id",
            without(
                without(a(), "/spec/securityContext"),
                "/spec/containers/0/securityContext",
            ),
            Unparseable,
        ),
        (
            "unparseable quantity",
            with(
                a(),
                "/spec/containers/1/resources/limits/memory",
                json!("lots"),
            ),
            Unparseable,
        ),
        (
            "our volume name taken",
            with(a(), "/spec/volumes/0/name", json!(PODINFO_VOLUME)),
            Unparseable,
        ),
        (
            "pod-level resources",
            with(a(), "/spec/resources", json!({"limits": {"cpu": "2"}})),
            Unparseable,
        ),
    ]);
}

#[test]
fn injects_the_fixture_pod_with_the_policy_defaults() {
    let plan = plan_of(&pod_a());
    let policy = Policy::default();
    assert_eq!(plan.port, PORT);
    assert_eq!(
        plan.run_as,
        RunAs {
            uid: 107,
            gid: Some(107)
        }
    );
    assert!(plan.run_as.non_root());
    assert_eq!((plan.cpu, plan.memory), (policy.cpu, policy.memory));
    assert_eq!((plan.log_level, plan.warnings), (None, vec![]));
}

#[test]
fn guaranteed_pod_gets_requests_equal_to_limits() {
    let plan = plan_of(&guaranteed(pod_a()));
    assert_eq!(plan.cpu.request, plan.cpu.limit);
    assert_eq!(plan.memory.request, plan.memory.limit);
    assert_eq!(plan.memory.limit.as_str(), "32Mi");
}

#[test]
fn equal_quantities_spelled_differently_are_still_guaranteed() {
    let mut pod = guaranteed(pod_a());
    pod["spec"]["containers"][0]["resources"]["requests"]["memory"] = json!("2048Mi");
    let plan = plan_of(&pod);
    assert_eq!(plan.memory.request, plan.memory.limit);
}

#[test]
fn burstable_when_one_container_lacks_a_limit() {
    let pod = without(
        guaranteed(pod_a()),
        "/spec/initContainers/2/resources/limits/cpu",
    );
    let plan = plan_of(&pod);
    assert_ne!(plan.cpu.request, plan.cpu.limit);
}

#[test]
fn root_mode_runs_as_root_without_run_as_non_root() {
    let mut pod = pod_a();
    pod["spec"]["securityContext"] = json!({"runAsUser": 0});
    for c in pod["spec"]["containers"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        c["securityContext"] = json!({"capabilities": {"drop": ["ALL"]}});
    }
    let plan = plan_of(&pod);
    assert_eq!(plan.run_as, RunAs { uid: 0, gid: None });
    assert!(!plan.run_as.non_root());
}

#[test]
fn bare_pod_without_annotations_volumes_or_init_containers_is_injected() {
    let pod = [
        "/metadata/annotations",
        "/spec/volumes",
        "/spec/initContainers",
    ]
    .iter()
    .fold(pod_a(), |p, k| without(p, k));
    assert_eq!(plan_of(&pod).port, PORT);
}

#[test]
fn hugepages_are_not_a_device() {
    let pod = with(
        pod_a(),
        "/spec/containers/0/resources/limits/hugepages-2Mi",
        json!("1Gi"),
    );
    assert_eq!(plan_of(&pod).port, PORT);
}

#[test]
fn port_moves_up_past_every_port_in_the_pod() {
    let ports = json!([{"containerPort": 48080}, {"containerPort": 1234, "hostPort": 48081}]);
    let pod = with(pod_a(), "/spec/containers/0/ports", ports);
    let pod = with(
        pod,
        "/spec/initContainers/0/ports",
        json!([{"containerPort": 48082}]),
    );
    assert_eq!(plan_of(&pod).port, 48083);
}

#[test]
fn valid_overrides_apply() {
    let pod = with(
        pod_a(),
        "/metadata/annotations/kube-metrics-collector.io~1memory-limit",
        json!("64Mi"),
    );
    let pod = with(
        pod,
        "/metadata/annotations/kube-metrics-collector.io~1cpu-limit",
        json!("0.2"),
    );
    let pod = with(
        pod,
        "/metadata/annotations/kube-metrics-collector.io~1log-level",
        json!("debug"),
    );
    let plan = plan_of(&pod);
    assert_eq!(
        (plan.memory.limit.as_str(), plan.cpu.limit.as_str()),
        ("64Mi", "0.2")
    );
    assert_eq!(plan.memory.request.as_str(), "8Mi");
    assert_eq!(
        (plan.log_level.as_deref(), plan.warnings.len()),
        (Some("debug"), 0)
    );
}

#[test]
fn override_on_a_guaranteed_pod_sets_request_and_limit() {
    let pod = with(
        guaranteed(pod_a()),
        "/metadata/annotations/kube-metrics-collector.io~1memory-limit",
        json!("64Mi"),
    );
    let plan = plan_of(&pod);
    assert_eq!(
        (plan.memory.request.as_str(), plan.memory.limit.as_str()),
        ("64Mi", "64Mi")
    );
}

#[test]
fn invalid_overrides_are_ignored_with_a_warning() {
    let table = [
        ("kube-metrics-collector.io~1memory-limit", "lots"),
        ("kube-metrics-collector.io~1memory-limit", "1Gi"),
        ("kube-metrics-collector.io~1memory-limit", "1Mi"),
        ("kube-metrics-collector.io~1cpu-limit", "-1"),
        ("kube-metrics-collector.io~1cpu-limit", "4"),
        ("kube-metrics-collector.io~1log-level", "loud"),
        ("kube-metrics-collector.io~1metrics-profile", "Full"),
        ("kube-metrics-collector.io~1metrics-profile", "everything"),
    ];
    let policy = Policy::default();
    for (key, value) in table {
        let plan = plan_of(&with(
            pod_a(),
            &format!("/metadata/annotations/{key}"),
            json!(value),
        ));
        assert_eq!(
            (
                &plan.cpu,
                &plan.memory,
                &plan.log_level,
                plan.metrics_profile
            ),
            (&policy.cpu, &policy.memory, &None, None),
            "{key}"
        );
        assert_eq!(plan.warnings.len(), 1, "{key}={value}");
        assert!(plan.warnings[0].contains(value), "{:?}", plan.warnings);
        assert_eq!(plan.ignored, [key.replace("~1", "/")], "{key}");
    }
}

#[test]
fn the_metrics_profile_comes_from_the_annotation_else_the_flag() {
    use kube_metrics_contract::metrics::Profile;
    let annotated = |value: &str| {
        with(
            pod_a(),
            "/metadata/annotations/kube-metrics-collector.io~1metrics-profile",
            json!(value),
        )
    };
    assert_eq!(plan_of(&pod_a()).metrics_profile, None);
    let plan = plan_of(&annotated("full"));
    assert_eq!(
        (
            plan.metrics_profile,
            plan.warnings.len(),
            plan.ignored.len()
        ),
        (Some(Profile::Full), 0, 0)
    );
    let policy = Policy {
        metrics_profile: Some(Profile::Full),
        ..Policy::default()
    };
    let plan_with = |pod: &Value| match decide_with(pod, &policy, &Lookup::NotFound) {
        Decision::Inject(plan) => *plan,
        other => panic!("expected injection, got {other:?}"),
    };
    assert_eq!(plan_with(&pod_a()).metrics_profile, Some(Profile::Full));
    assert_eq!(
        plan_with(&annotated("default")).metrics_profile,
        Some(Profile::Default)
    );
    // An unknown value never reaches the collector, which would refuse to start.
    assert_eq!(
        plan_with(&annotated("lean")).metrics_profile,
        Some(Profile::Full)
    );
}

#[test]
fn every_reason_has_a_distinct_kebab_case_name() {
    let names: std::collections::BTreeSet<_> = SkipReason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(names.len(), SkipReason::ALL.len());
    assert_eq!(names.len(), 14);
    assert!(
        names
            .iter()
            .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '-')),
        "{names:?}"
    );
}
