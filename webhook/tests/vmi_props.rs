//! `VmiFacts::from_json` never panics, on arbitrary JSON and on real VMIs with arbitrary subtrees, and
//! its answers keep their invariants (a direct path only for masquerade/passt reasons; a passt port
//! conflict never scrapes directly).
mod common;

use common::fixtures;
use kube_metrics_webhook::vmi::{PathReason, ScrapePath, UnsafeReason, VmiFacts};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Keys the parser reads, so generated objects reach its branches, plus a few others.
const KEYS: &[&str] = &[
    "kind",
    "apiVersion",
    "metadata",
    "spec",
    "domain",
    "cpu",
    "devices",
    "interfaces",
    "networks",
    "name",
    "pod",
    "multus",
    "masquerade",
    "bridge",
    "passt",
    "passtBinding",
    "binding",
    "sriov",
    "slirp",
    "macvtap",
    "ports",
    "portRanges",
    "port",
    "protocol",
    "start",
    "end",
    "gpus",
    "hostDevices",
    "launchSecurity",
    "memory",
    "reservedOverhead",
    "memLock",
    "realtime",
    "dedicatedCpuPlacement",
    "autoattachPodInterface",
    "annotations",
    "labels",
    "uid",
    "namespace",
    "sidecar.istio.io/inject",
    "traffic.sidecar.istio.io/excludeInboundPorts",
    "other",
];

const TEXTS: &[&str] = &[
    "",
    "true",
    "false",
    "Required",
    "VirtualMachineInstance",
    "kubevirt.io/v1",
    "v1",
    "passt",
    "default",
    "TCP",
    "UDP",
    "48080",
    "15020,48080",
    "x",
    "\u{0}",
];

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (0u64..70_000).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(TEXTS).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..8).prop_map(|entries| {
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(key, value)| (key.to_owned(), value))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

/// Checks what must hold for any parsed VMI and any port.
fn check(facts: &VmiFacts, port: u16) -> Result<(), TestCaseError> {
    let mut sorted = facts.unsafe_reasons.clone();
    sorted.sort();
    sorted.dedup();
    prop_assert_eq!(&sorted, &facts.unsafe_reasons);
    prop_assert!(
        facts
            .unsafe_reasons
            .iter()
            .all(|reason| UnsafeReason::ALL.contains(reason))
    );
    let decision = facts.scrape_path(port);
    if decision.path == ScrapePath::Direct {
        prop_assert!(matches!(
            decision.reason,
            PathReason::MasqueradePortNotForwarded
                | PathReason::PasstEphemeralPort
                | PathReason::PasstPortNotListed
        ));
    }
    if facts.passt_port_conflict(port) {
        prop_assert_eq!(decision.path, ScrapePath::Relay);
    }
    Ok(())
}

/// Replaces the value at `path` (object keys only; stops at the first non-object) with `value`.
fn graft(target: &mut Value, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = target;
    for key in parents {
        match node.get_mut(*key) {
            Some(child) if child.is_object() => node = child,
            _ => return,
        }
    }
    if let Some(object) = node.as_object_mut() {
        object.insert((*last).to_owned(), value);
    }
}

const GRAFT_POINTS: &[&[&str]] = &[
    &["spec"],
    &["spec", "networks"],
    &["spec", "domain"],
    &["spec", "domain", "cpu"],
    &["spec", "domain", "devices"],
    &["spec", "domain", "devices", "interfaces"],
    &["spec", "domain", "memory"],
    &["metadata"],
    &["metadata", "annotations"],
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_json_never_panics(value in arb_json(), port in any::<u16>()) {
        if let Ok(facts) = VmiFacts::from_json(&value) {
            check(&facts, port)?;
        }
    }

    #[test]
    fn arbitrary_spec_never_panics(spec in arb_json(), metadata in arb_json(), port in any::<u16>()) {
        let value = serde_json::json!({"kind": "VirtualMachineInstance", "metadata": metadata, "spec": spec});
        if let Ok(facts) = VmiFacts::from_json(&value) {
            check(&facts, port)?;
        }
    }

    #[test]
    fn grafted_fixtures_never_panic(
        name in prop::sample::select(&["masquerade-ports", "passt-plugin", "sriov", "realtime", "masquerade-istio"][..]),
        point in prop::sample::select(GRAFT_POINTS),
        graft_value in arb_json(),
        port in any::<u16>(),
    ) {
        let mut vmi = fixtures::vmi(name);
        graft(&mut vmi, point, graft_value);
        let facts = VmiFacts::from_json(&vmi);
        prop_assert!(facts.is_ok() || point == &["spec"][..], "only replacing spec can make a fixture unreadable");
        if let Ok(facts) = facts {
            check(&facts, port)?;
        }
    }
}
