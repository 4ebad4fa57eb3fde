//! Table tests of the combined decision: the fixture pod's own signals and what the VMI lookup found.
//! The rule under test: when the VMI was read its reasons are authoritative, both ways (a VMI that
//! says safe overrides pod signals that say unsafe); when it was not, the pod's signals decide and
//! the decision says `pod-fallback`.
use super::tests::{decide_with, guaranteed, pod_a, with};
use super::*;
use crate::policy::{Policy, Scrape};
use crate::vmi::{PathDecision, PathReason, ScrapePath, Unavailable, VmiFacts};
use serde_json::{Value, json};
use std::time::Duration;

/// A VMI whose pod network uses `iface` (binding and ports), plus `domain` merged into its domain.
fn vmi(iface: Value, domain: Value) -> Lookup {
    let mut spec = json!({"networks": [{"name": "default", "pod": {}}],
                          "domain": {"devices": {"interfaces": [iface]}}});
    if let (Some(target), Value::Object(extra)) = (spec["domain"].as_object_mut(), domain) {
        target.extend(extra);
    }
    let object = json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
                        "metadata": {"namespace": "vm-demo", "name": "fedora-a"}, "spec": spec});
    match VmiFacts::from_json(&object) {
        Ok(facts) => Lookup::Found(Box::new(facts)),
        Err(error) => panic!("{error}"),
    }
}

fn masquerade() -> Value {
    json!({"name": "default", "masquerade": {}})
}

fn gpu_pod() -> Value {
    with(
        pod_a(),
        "/spec/containers/0/resources/limits/nvidia.com~1GA102GL_A10",
        json!("1"),
    )
}

/// What one case expects.
#[derive(Debug, PartialEq, Eq)]
enum Want {
    Inject {
        source: Source,
        scrape: PathDecision,
        port: u16,
    },
    Unsafe(SkipReason, Source),
    Skip(SkipReason),
}

fn got(decision: Decision) -> Want {
    match decision {
        Decision::Inject(plan) => Want::Inject {
            source: plan.source,
            scrape: plan.scrape,
            port: plan.port,
        },
        Decision::Unsafe { reason, source, .. } => Want::Unsafe(reason, source),
        Decision::Skip(reason) => Want::Skip(reason),
    }
}

fn assert_decisions(cases: Vec<(&str, Value, Lookup, Want)>) {
    for (name, pod, lookup, want) in cases {
        let decision = decide_with(&pod, &Policy::default(), &lookup);
        assert_eq!(got(decision), want, "{name}");
    }
}

/// The VM's type: the VMI's reasons when it was read (either way), else the pod's signals.
#[test]
fn the_vmi_decides_the_vm_type_when_it_was_read() {
    use PathReason::*;
    use SkipReason::*;
    use Source::{PodFallback, Vmi};
    use UnsafeReason::*;
    let relay = PathDecision::relay;
    let inject = |source, scrape, port| Want::Inject {
        source,
        scrape,
        port,
    };
    let timeout = || Lookup::Unavailable(Unavailable::Timeout(Duration::from_secs(2)));
    let forbidden = || Lookup::Unavailable(Unavailable::Api("403 forbidden".into()));
    assert_decisions(vec![
        (
            "VMI safe, pod signals a GPU: the VMI is trusted",
            gpu_pod(),
            vmi(masquerade(), json!({})),
            inject(Vmi, relay(MasqueradeForwardsAll), 48080),
        ),
        (
            "VMI safe, pod has resource claims: the VMI is trusted",
            with(pod_a(), "/spec/resourceClaims", json!([{"name": "c"}])),
            vmi(masquerade(), json!({})),
            inject(Vmi, relay(MasqueradeForwardsAll), 48080),
        ),
        (
            "VMI says dedicated CPUs, pod silent",
            pod_a(),
            vmi(
                masquerade(),
                json!({"cpu": {"dedicatedCpuPlacement": true}}),
            ),
            Want::Unsafe(DedicatedCpus.into(), Vmi),
        ),
        (
            "VMI says dedicated CPUs, pod agrees",
            with(
                guaranteed(pod_a()),
                "/spec/nodeSelector/kubevirt.io~1cpumanager",
                json!("true"),
            ),
            vmi(
                masquerade(),
                json!({"cpu": {"dedicatedCpuPlacement": true}}),
            ),
            Want::Unsafe(DedicatedCpus.into(), Vmi),
        ),
        (
            "VMI says SEV, pod signals a GPU: the VMI's reason is written",
            gpu_pod(),
            vmi(masquerade(), json!({"launchSecurity": {"sev": {}}})),
            Want::Unsafe(ConfidentialVm.into(), Vmi),
        ),
        (
            "VMI says memory locking",
            pod_a(),
            vmi(
                masquerade(),
                json!({"memory": {"reservedOverhead": {"memLock": "Required"}}}),
            ),
            Want::Unsafe(MemoryLock.into(), Vmi),
        ),
        (
            "timeout: the pod's GPU decides",
            gpu_pod(),
            timeout(),
            Want::Unsafe(VfioDevice.into(), PodFallback),
        ),
        (
            "API error, pod clean: injected, scraped through the relay",
            pod_a(),
            forbidden(),
            inject(PodFallback, relay(VmiNotRead), 48080),
        ),
        (
            "not found, pod has resource claims (no VMI twin): skipped",
            with(pod_a(), "/spec/resourceClaims", json!([{"name": "c"}])),
            Lookup::NotFound,
            Want::Unsafe(ResourceClaims, PodFallback),
        ),
    ]);
}

/// The scrape path and the sidecar's port, from the VMI's pod-network interface.
#[test]
fn the_vmi_decides_the_scrape_path_and_port() {
    use PathReason::*;
    use Source::Vmi;
    let relay = PathDecision::relay;
    let direct = PathDecision::direct;
    let inject = |source, scrape, port| Want::Inject {
        source,
        scrape,
        port,
    };
    let with_ports = json!({"name": "default", "masquerade": {}, "ports": [{"port": 22}]});
    let passt_listing = |ports: Value| json!({"name": "default", "passt": {}, "ports": ports});
    assert_decisions(vec![
        (
            "masquerade with ports that are not ours: direct",
            pod_a(),
            vmi(with_ports.clone(), json!({})),
            inject(Vmi, direct(MasqueradePortNotForwarded), 48080),
        ),
        (
            "bridge: relay",
            pod_a(),
            vmi(json!({"name": "default", "bridge": {}}), json!({})),
            inject(Vmi, relay(Bridge), 48080),
        ),
        (
            "passt lists our port: the next one, and passt leaves it alone",
            pod_a(),
            vmi(passt_listing(json!([{"port": 48080}])), json!({})),
            inject(Vmi, direct(PasstPortNotListed), 48081),
        ),
        (
            "passt lists a range and the pod uses the port after it",
            with(
                pod_a(),
                "/spec/containers/0/ports",
                json!([{"containerPort": 48083}]),
            ),
            vmi(
                passt_listing(json!([{"port": 48080}, {"port": 48081}, {"port": 48082}])),
                json!({}),
            ),
            inject(Vmi, direct(PasstPortNotListed), 48084),
        ),
    ]);
}

/// The pod's own checks hold whatever the VMI says.
#[test]
fn pod_checks_hold_whatever_the_vmi_says() {
    use SkipReason::*;
    let no_user = || {
        let pod = pod_a();
        let mut pod = with(pod, "/spec/securityContext", json!({}));
        pod["spec"]["containers"][0]["securityContext"] = json!({});
        pod
    };
    let with_ports = json!({"name": "default", "masquerade": {}, "ports": [{"port": 22}]});
    assert_decisions(vec![
        (
            "opted out: decided before the VMI counts",
            with(
                pod_a(),
                "/metadata/labels/kube-metrics-collector.io~1inject",
                json!("disabled"),
            ),
            vmi(
                masquerade(),
                json!({"cpu": {"dedicatedCpuPlacement": true}}),
            ),
            Want::Skip(OptedOut),
        ),
        (
            "VMI safe but the pod has no user id",
            no_user(),
            vmi(with_ports, json!({})),
            Want::Skip(Unparseable),
        ),
    ]);
}

#[test]
fn relay_only_policy_never_writes_direct() {
    let policy = Policy {
        scrape: Scrape::Relay,
        ..Policy::default()
    };
    let ports = json!({"name": "default", "masquerade": {}, "ports": [{"port": 22}]});
    let Decision::Inject(plan) = decide_with(&pod_a(), &policy, &vmi(ports, json!({}))) else {
        panic!("expected injection")
    };
    assert_eq!(plan.scrape, PathDecision::relay(PathReason::RelayOnly));
    // Relay stays relay, with the binding's own reason.
    let bridge = vmi(json!({"name": "default", "bridge": {}}), json!({}));
    let Decision::Inject(plan) = decide_with(&pod_a(), &policy, &bridge) else {
        panic!("expected injection")
    };
    assert_eq!(plan.scrape, PathDecision::relay(PathReason::Bridge));
}

#[test]
fn a_moved_port_is_a_warning() {
    let listing = json!({"name": "default", "passt": {}, "ports": [{"port": 48080}]});
    let Decision::Inject(plan) =
        decide_with(&pod_a(), &Policy::default(), &vmi(listing, json!({})))
    else {
        panic!("expected injection")
    };
    assert_eq!(plan.port, 48081);
    assert_eq!(
        plan.warnings,
        ["the VM's passt interface lists port 48080; the metrics sidecar uses 48081 instead"]
    );
    assert_eq!(plan.scrape.path, ScrapePath::Direct);
}

#[test]
fn the_verdict_is_returned_for_the_log_line() {
    let pod: Pod = serde_json::from_value(gpu_pod()).unwrap_or_else(|e| panic!("{e}"));
    let candidate = precheck(pod).unwrap_or_else(|reason| panic!("{reason}"));
    let (_, verdict) = decide(&candidate, &Policy::default(), &Lookup::NotFound);
    assert_eq!(verdict.describe(), "vfio-device (pod-fallback: not-found)");
}
