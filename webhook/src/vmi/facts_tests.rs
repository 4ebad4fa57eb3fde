//! The facts of VMI specs, table by table, and of plain parts.
use super::*;
use UnsafeReason::*;
use serde_json::json;

fn reasons(spec: Value) -> Vec<UnsafeReason> {
    match VmiFacts::from_json(&json!({"kind": "VirtualMachineInstance", "spec": spec})) {
        Ok(facts) => facts.unsafe_reasons,
        Err(error) => panic!("spec should parse: {error}"),
    }
}

fn assert_reasons(cases: &[(&str, Value, &[UnsafeReason])]) {
    for (name, spec, expected) in cases {
        assert_eq!(reasons(spec.clone()), *expected, "{name}");
    }
}

/// CPU placement and devices handed to the guest.
#[test]
fn cpu_and_device_reasons() {
    assert_reasons(&[
        (
            "dedicated",
            json!({"domain": {"cpu": {"dedicatedCpuPlacement": true}}}),
            &[DedicatedCpus],
        ),
        (
            "dedicated false",
            json!({"domain": {"cpu": {"dedicatedCpuPlacement": false}}}),
            &[],
        ),
        (
            "dedicated as text",
            json!({"domain": {"cpu": {"dedicatedCpuPlacement": "true"}}}),
            &[DedicatedCpus],
        ),
        (
            "realtime empty",
            json!({"domain": {"cpu": {"realtime": {}}}}),
            &[Realtime],
        ),
        (
            "realtime null",
            json!({"domain": {"cpu": {"realtime": null}}}),
            &[],
        ),
        (
            "gpu",
            json!({"domain": {"devices": {"gpus": [{"name": "g", "deviceName": "nvidia.com/A10"}]}}}),
            &[VfioDevice],
        ),
        ("no gpus", json!({"domain": {"devices": {"gpus": []}}}), &[]),
        (
            "host device",
            json!({"domain": {"devices": {"hostDevices": [{"name": "h"}]}}}),
            &[VfioDevice],
        ),
        (
            "sriov iface",
            json!({"domain": {"devices": {"interfaces": [{"name": "a", "masquerade": {}}, {"name": "b", "sriov": {}}]}}}),
            &[VfioDevice],
        ),
        (
            "interfaces garbage",
            json!({"domain": {"devices": {"interfaces": "x"}}}),
            &[VfioDevice],
        ),
    ]);
}

/// Confidential VMs and memory locking.
#[test]
fn launch_security_and_memory_lock_reasons() {
    assert_reasons(&[
        (
            "sev",
            json!({"domain": {"launchSecurity": {"sev": {}}}}),
            &[ConfidentialVm],
        ),
        (
            "snp",
            json!({"domain": {"launchSecurity": {"snp": {}}}}),
            &[ConfidentialVm],
        ),
        (
            "tdx",
            json!({"domain": {"launchSecurity": {"tdx": {}}}}),
            &[ConfidentialVm],
        ),
        (
            "secure execution",
            json!({"architecture": "s390x", "domain": {"launchSecurity": {}}}),
            &[ConfidentialVm],
        ),
        (
            "memlock required",
            json!({"domain": {"memory": {"reservedOverhead": {"memLock": "Required"}}}}),
            &[MemoryLock],
        ),
        (
            "memlock not required",
            json!({"domain": {"memory": {"reservedOverhead": {"memLock": "NotRequired"}}}}),
            &[],
        ),
        (
            "memlock other",
            json!({"domain": {"memory": {"reservedOverhead": {"memLock": "memLockValue"}}}}),
            &[],
        ),
        (
            "added overhead only",
            json!({"domain": {"memory": {"reservedOverhead": {"addedOverhead": "1Gi"}}}}),
            &[],
        ),
    ]);
}

/// Specs that are safe, unreadable ones, and every reason at once (sorted).
#[test]
fn safe_specs_and_every_reason_at_once() {
    assert_reasons(&[
        (
            "plain VM",
            json!({"domain": {"cpu": {"cores": 2}, "devices": {}}}),
            &[],
        ),
        ("empty spec", json!({}), &[]),
        (
            "everything",
            json!({"domain": {
                "cpu": {"dedicatedCpuPlacement": true, "realtime": {"mask": "0"}},
                "devices": {"gpus": [{"name": "g"}]},
                "launchSecurity": {"tdx": {}},
                "memory": {"reservedOverhead": {"memLock": "required"}},
            }}),
            &[
                DedicatedCpus,
                Realtime,
                VfioDevice,
                ConfidentialVm,
                MemoryLock,
            ],
        ),
        ("domain garbage", json!({"domain": 7}), &[]),
    ]);
}

#[test]
fn rejects_what_is_not_a_vmi() {
    assert_eq!(
        VmiFacts::from_json(&json!([])),
        Err(FactsError::NotAnObject)
    );
    assert_eq!(
        VmiFacts::from_json(&json!({"kind": "Pod", "spec": {}})),
        Err(FactsError::WrongKind("Pod".into()))
    );
    assert_eq!(
        VmiFacts::from_json(&json!({"apiVersion": "v1", "spec": {}})),
        Err(FactsError::WrongApiVersion("v1".into()))
    );
    assert_eq!(
        VmiFacts::from_json(&json!({"kind": "VirtualMachineInstance"})),
        Err(FactsError::MissingSpec)
    );
    assert_eq!(
        VmiFacts::from_json(&json!({"spec": []})),
        Err(FactsError::MissingSpec)
    );
}

#[test]
fn reads_identity() {
    let vmi = json!({"metadata": {"namespace": "ns", "name": "vm", "uid": "u-1"}, "spec": {}});
    let facts = VmiFacts::from_json(&vmi).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        (
            facts.namespace.as_deref(),
            facts.name.as_deref(),
            facts.uid.as_deref()
        ),
        (Some("ns"), Some("vm"), Some("u-1"))
    );
}

/// The facts as a function of the parts alone: kind and apiVersion checked where given, a
/// missing spec refused, the identity copied, the spec and Istio's marks read.
#[test]
fn reads_the_facts_of_plain_parts() {
    let dedicated = json!({"cpu": {"dedicatedCpuPlacement": true}});
    let spec = |domain| {
        Some(SpecParts {
            domain,
            networks: &NULL,
        })
    };
    let vmi = VmiParts {
        kind: Some("VirtualMachineInstance"),
        api_version: Some("kubevirt.io/v1"),
        namespace: Some("ns-0"),
        name: Some("vm-0"),
        uid: Some("u-0"),
        istio: IstioMarks::default(),
        spec: spec(&NULL),
    };
    let marks = IstioMarks {
        inject_label: Some("false"),
        inject_annotation: Some(" True "),
        exclude_inbound: Some("15020, x,48080"),
    };
    let identity = (Some("ns-0"), Some("vm-0"), Some("u-0"));
    type Read<'a> = (
        (Option<&'a str>, Option<&'a str>, Option<&'a str>),
        Vec<UnsafeReason>,
        bool,
        Vec<u16>,
    );
    // (case, parts, identity, reasons and Istio's view, or the error)
    let cases: Vec<(&str, VmiParts<'_>, Result<Read<'_>, FactsError>)> = vec![
        ("plain", vmi, Ok((identity, vec![], false, vec![]))),
        (
            "no kind, no apiVersion, no identity",
            VmiParts {
                spec: spec(&NULL),
                ..VmiParts::default()
            },
            Ok(((None, None, None), vec![], false, vec![])),
        ),
        (
            "dedicated CPUs",
            VmiParts {
                spec: spec(&dedicated),
                ..vmi
            },
            Ok((identity, vec![DedicatedCpus], false, vec![])),
        ),
        (
            "Istio",
            VmiParts {
                istio: marks,
                ..vmi
            },
            Ok((identity, vec![], true, vec![15020, 48080])),
        ),
        (
            "no spec",
            VmiParts { spec: None, ..vmi },
            Err(FactsError::MissingSpec),
        ),
        (
            "a pod",
            VmiParts {
                kind: Some("Pod"),
                ..vmi
            },
            Err(FactsError::WrongKind("Pod".into())),
        ),
        (
            "the core group",
            VmiParts {
                api_version: Some("v1"),
                ..vmi
            },
            Err(FactsError::WrongApiVersion("v1".into())),
        ),
    ];
    for (case, parts, want) in cases {
        let got = VmiFacts::read(&parts).map(|f| {
            let istio = f.network.istio;
            (
                (
                    f.namespace.as_deref().map(str::to_owned),
                    f.name.as_deref().map(str::to_owned),
                    f.uid.as_deref().map(str::to_owned),
                ),
                f.unsafe_reasons,
                istio.injected,
                istio.excluded_inbound.into_iter().collect::<Vec<_>>(),
            )
        });
        let want = want.map(|((ns, name, uid), reasons, injected, excluded)| {
            let owned = |s: Option<&str>| s.map(str::to_owned);
            (
                (owned(ns), owned(name), owned(uid)),
                reasons,
                injected,
                excluded,
            )
        });
        assert_eq!(got, want, "{case}");
    }
}
