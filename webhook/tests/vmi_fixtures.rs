//! VMI fixtures (one per binding and per unsafe VM type, plus KubeVirt's round-trip object) through
//! the public API: facts, scrape path, and the verdict that combines them with pod signals.
mod common;

use common::fixtures;
use std::path::Path;

use PathReason::*;
use ScrapePath::{Direct, Relay};
use UnsafeReason::*;
use kube_metrics_webhook::vmi::{
    Lookup, PathReason, ScrapePath, Source, UnsafeReason, VmiFacts, verdict::verdict,
};
use serde_json::Value;

/// The default sidecar port.
const PORT: u16 = kube_metrics_contract::sidecar::PORT;

/// KubeVirt's API round-trip object for a VMI (release 1.9): every field set, with nonsense values.
const ROUND_TRIP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/kubevirt-api-roundtrip-vmi-release-1.9.json"
);

fn facts(value: &Value) -> VmiFacts {
    VmiFacts::from_json(value).unwrap_or_else(|error| panic!("fixture should parse: {error}"))
}

#[test]
fn every_fixture() {
    let cases: &[(&str, &[UnsafeReason], ScrapePath, PathReason)] = &[
        ("masquerade", &[], Relay, MasqueradeForwardsAll),
        ("masquerade-ports", &[], Direct, MasqueradePortNotForwarded),
        ("masquerade-istio", &[], Relay, IstioCapturesPort),
        (
            "masquerade-istio-excluded",
            &[],
            Direct,
            MasqueradePortNotForwarded,
        ),
        ("bridge", &[], Relay, Bridge),
        ("passt-plugin", &[], Direct, PasstEphemeralPort),
        ("passt-core-ports", &[], Direct, PasstPortNotListed),
        ("passt-lists-our-port", &[], Relay, PasstListsPort),
        ("managedtap-plugin", &[], Relay, OtherBinding),
        ("no-pod-network", &[], Relay, NoPodNetwork),
        ("sriov", &[VfioDevice], Relay, MasqueradeForwardsAll),
        (
            "dedicated-cpus",
            &[DedicatedCpus],
            Relay,
            MasqueradeForwardsAll,
        ),
        (
            "realtime",
            &[DedicatedCpus, Realtime],
            Relay,
            MasqueradeForwardsAll,
        ),
        ("gpu", &[VfioDevice], Relay, MasqueradeForwardsAll),
        ("host-device", &[VfioDevice], Relay, MasqueradeForwardsAll),
        ("sev-es", &[ConfidentialVm], Relay, MasqueradeForwardsAll),
        ("tdx", &[ConfidentialVm], Relay, MasqueradeForwardsAll),
        ("memlock", &[MemoryLock], Relay, OtherBinding),
    ];
    let on_disk = std::fs::read_dir(
        fixtures::vmi_path("x")
            .parent()
            .unwrap_or_else(|| panic!("fixture dir")),
    )
    .unwrap_or_else(|error| panic!("fixture dir: {error}"))
    .count();
    assert_eq!(on_disk, cases.len(), "every fixture file has a row");
    for (name, reasons, path, reason) in cases {
        let facts = facts(&fixtures::vmi(name));
        assert_eq!(facts.unsafe_reasons, *reasons, "{name}: reasons");
        assert_eq!(
            (facts.scrape_path(PORT).path, facts.scrape_path(PORT).reason),
            (*path, *reason),
            "{name}: path"
        );
        assert_eq!(
            facts.passt_port_conflict(PORT),
            *name == "passt-lists-our-port",
            "{name}: conflict"
        );
        assert_eq!(
            (facts.namespace.as_deref(), facts.name.as_deref()),
            (Some("tenant-a"), Some(*name))
        );
    }
}

/// A port outside the ephemeral range changes the answer for passt without `ports` only.
#[test]
fn passt_without_ports_depends_on_the_port() {
    let facts = facts(&fixtures::vmi("passt-plugin"));
    assert_eq!(facts.scrape_path(9100).path, Relay);
    assert_eq!(facts.scrape_path(9100).reason, PasstMayBindPort);
    assert_eq!(facts.scrape_path(PORT).path, Direct);
}

/// KubeVirt's every-field-set object: an interface with every binding, negative ports, a u64 boot
/// order, `memLock: memLockValue`. It must parse, and the answers must be the conservative ones.
#[test]
fn kubevirt_round_trip_object() {
    let facts = facts(&fixtures::json(Path::new(ROUND_TRIP)));
    // memLock is neither "Required" nor anything KubeVirt acts on: no memory-lock, as in KubeVirt.
    assert_eq!(
        facts.unsafe_reasons,
        [DedicatedCpus, Realtime, VfioDevice, ConfidentialVm]
    );
    for port in [1, PORT, 65535] {
        assert_eq!(facts.scrape_path(port).path, Relay, "port {port}");
        assert_eq!(
            facts.scrape_path(port).reason,
            AmbiguousBinding,
            "port {port}"
        );
        assert!(!facts.passt_port_conflict(port));
    }
    assert_eq!(facts.uid.as_deref(), Some("uidValue"));
}

/// The VMI's reasons replace the pod's; without the VMI the pod's decide and the path is the relay.
#[test]
fn verdict_over_fixtures() {
    let gpu = Lookup::Found(Box::new(facts(&fixtures::vmi("gpu"))));
    let from_vmi = verdict(&gpu, &[], PORT);
    assert_eq!(
        (from_vmi.unsafe_reasons.as_slice(), from_vmi.source),
        (&[VfioDevice][..], Source::Vmi)
    );

    let passt = Lookup::Found(Box::new(facts(&fixtures::vmi("passt-plugin"))));
    let direct = verdict(&passt, &[DedicatedCpus], PORT);
    assert!(direct.is_safe(), "the VMI is authoritative");
    assert_eq!(direct.scrape.path, Direct);

    let fallback = verdict(&Lookup::NotFound, &[DedicatedCpus], PORT);
    assert_eq!(
        (fallback.unsafe_reasons.as_slice(), fallback.source),
        (&[DedicatedCpus][..], Source::PodFallback)
    );
    assert_eq!(fallback.scrape.path, Relay);
}
