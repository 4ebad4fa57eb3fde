//! The docs/kubevirt.md §4 table, one row per rule.
use super::*;
use PathReason::*;
use ScrapePath::{Direct, Relay};
use serde_json::json;

const PORT: u16 = 48080; // docs/design.md's default, inside the ephemeral range

/// A VMI spec whose pod network "default" is bound by `iface` (merged into `{"name": "default"}`).
fn spec_with(iface: Value) -> Value {
    let mut interface = json!({"name": "default"});
    if let (Some(target), Value::Object(extra)) = (interface.as_object_mut(), iface) {
        target.extend(extra);
    }
    json!({
        "networks": [{"name": "default", "pod": {}}, {"name": "data", "multus": {"networkName": "n"}}],
        "domain": {"devices": {"interfaces": [interface, {"name": "data", "bridge": {}}]}},
    })
}

/// The facts of a VMI with `spec` and `metadata`.
fn facts(spec: &Value, metadata: &Value) -> NetworkFacts {
    let part = |key: &str| spec.get(key).unwrap_or(&Value::Null);
    NetworkFacts::read(
        part("domain"),
        part("networks"),
        IstioMarks::of_metadata(metadata),
    )
}

fn decide(spec: &Value, metadata: &Value, port: u16) -> PathDecision {
    facts(spec, metadata).scrape_path(port)
}

/// One row: the pod interface, the VMI's metadata, our port, and the expected path and reason.
type Row<'a> = (&'a str, Value, &'a Value, u16, ScrapePath, PathReason);

fn check(cases: &[Row<'_>]) {
    for (name, iface, metadata, port, path, reason) in cases {
        let got = decide(&spec_with(iface.clone()), metadata, *port);
        assert_eq!(
            got,
            PathDecision {
                path: *path,
                reason: *reason
            },
            "{name}"
        );
    }
}

/// masquerade: every port is forwarded unless `ports` lists others.
#[test]
fn masquerade_table() {
    let none = json!({});
    let masq_ports = json!({"masquerade": {}, "ports": [{"port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}]});
    let masq_ours = json!({"masquerade": {}, "ports": [{"port": 48080, "protocol": "TCP"}]});
    let masq_ours_udp = json!({"masquerade": {}, "ports": [{"port": 48080, "protocol": "UDP"}]});
    let masq_range = json!({"masquerade": {}, "portRanges": [{"start": 40000, "end": 50000}]});
    let masq_range_udp = json!({"masquerade": {}, "portRanges": [{"protocol": "UDP", "start": 40000, "end": 50000}]});
    check(&[
        (
            "masquerade, no ports",
            json!({"masquerade": {}}),
            &none,
            PORT,
            Relay,
            MasqueradeForwardsAll,
        ),
        (
            "masquerade, empty ports",
            json!({"masquerade": {}, "ports": []}),
            &none,
            PORT,
            Relay,
            MasqueradeForwardsAll,
        ),
        (
            "masquerade, other ports",
            masq_ports,
            &none,
            PORT,
            Direct,
            MasqueradePortNotForwarded,
        ),
        (
            "masquerade, our port",
            masq_ours,
            &none,
            PORT,
            Relay,
            MasqueradeForwardsPort,
        ),
        (
            "masquerade, our port as UDP",
            masq_ours_udp,
            &none,
            PORT,
            Direct,
            MasqueradePortNotForwarded,
        ),
        (
            "masquerade, range covers",
            masq_range.clone(),
            &none,
            PORT,
            Relay,
            MasqueradeForwardsPort,
        ),
        (
            "masquerade, range misses",
            masq_range,
            &none,
            51000,
            Direct,
            MasqueradePortNotForwarded,
        ),
        (
            "masquerade, UDP range",
            masq_range_udp,
            &none,
            PORT,
            Direct,
            MasqueradePortNotForwarded,
        ),
    ]);
}

/// `ports` the webhook cannot read with confidence: the relay, or the port counted as listed.
#[test]
fn unreadable_ports_table() {
    let none = json!({});
    let masq_proto_unknown =
        json!({"masquerade": {}, "ports": [{"port": 48080, "protocol": "QUIC"}]});
    check(&[
        (
            "masquerade, unknown protocol",
            masq_proto_unknown,
            &none,
            PORT,
            Relay,
            MasqueradeForwardsPort,
        ),
        (
            "masquerade, negative port",
            json!({"masquerade": {}, "ports": [{"port": -4}]}),
            &none,
            PORT,
            Relay,
            UnreadablePorts,
        ),
        (
            "masquerade, port 0",
            json!({"masquerade": {}, "ports": [{"port": 0}]}),
            &none,
            PORT,
            Relay,
            UnreadablePorts,
        ),
        (
            "masquerade, ports not a list",
            json!({"masquerade": {}, "ports": {}}),
            &none,
            PORT,
            Relay,
            UnreadablePorts,
        ),
        (
            "masquerade, inverted range",
            json!({"masquerade": {}, "portRanges": [{"start": 9, "end": 3}]}),
            &none,
            PORT,
            Relay,
            UnreadablePorts,
        ),
    ]);
}

/// passt: binds every free port outside the ephemeral range unless `ports` lists some.
#[test]
fn passt_table() {
    let none = json!({});
    let passt_ports = json!({"passt": {}, "ports": [{"port": 22}]});
    check(&[
        (
            "passt core, ephemeral",
            json!({"passt": {}}),
            &none,
            PORT,
            Direct,
            PasstEphemeralPort,
        ),
        (
            "passt core, range low edge",
            json!({"passt": {}}),
            &none,
            32768,
            Direct,
            PasstEphemeralPort,
        ),
        (
            "passt core, range high edge",
            json!({"passt": {}}),
            &none,
            60999,
            Direct,
            PasstEphemeralPort,
        ),
        (
            "passt core, below range",
            json!({"passt": {}}),
            &none,
            32767,
            Relay,
            PasstMayBindPort,
        ),
        (
            "passt core, above range",
            json!({"passt": {}}),
            &none,
            61000,
            Relay,
            PasstMayBindPort,
        ),
        (
            "passtBinding (v1.9)",
            json!({"passtBinding": {}}),
            &none,
            9100,
            Relay,
            PasstMayBindPort,
        ),
        (
            "passt plugin, ephemeral",
            json!({"binding": {"name": "passt"}}),
            &none,
            PORT,
            Direct,
            PasstEphemeralPort,
        ),
        (
            "passt, other ports",
            passt_ports,
            &none,
            9100,
            Direct,
            PasstPortNotListed,
        ),
        (
            "passt, our port listed",
            json!({"passt": {}, "ports": [{"port": 48080}]}),
            &none,
            PORT,
            Relay,
            PasstListsPort,
        ),
    ]);
}

/// Bindings that hand the pod IP to the guest, and nonsense.
#[test]
fn other_bindings_table() {
    let none = json!({});
    check(&[
        ("bridge", json!({"bridge": {}}), &none, PORT, Relay, Bridge),
        (
            "bridge with ports",
            json!({"bridge": {}, "ports": [{"port": 80}]}),
            &none,
            PORT,
            Relay,
            Bridge,
        ),
        (
            "managedTap plugin",
            json!({"binding": {"name": "managedtap"}}),
            &none,
            PORT,
            Relay,
            OtherBinding,
        ),
        (
            "l2bridge plugin",
            json!({"binding": {"name": "l2bridge"}}),
            &none,
            PORT,
            Relay,
            OtherBinding,
        ),
        (
            "plugin without name",
            json!({"binding": {}}),
            &none,
            PORT,
            Relay,
            AmbiguousBinding,
        ),
        (
            "macvtap",
            json!({"macvtap": {}}),
            &none,
            PORT,
            Relay,
            OtherBinding,
        ),
        ("slirp", json!({"slirp": {}}), &none, PORT, Relay, Slirp),
        (
            "sriov on pod net",
            json!({"sriov": {}}),
            &none,
            PORT,
            Relay,
            Sriov,
        ),
        ("no binding", json!({}), &none, PORT, Relay, DefaultBinding),
        (
            "two bindings",
            json!({"bridge": {}, "masquerade": {}}),
            &none,
            PORT,
            Relay,
            AmbiguousBinding,
        ),
    ]);
}

/// Istio can only turn a direct path into the relay.
#[test]
fn istio_table() {
    let istio = json!({"annotations": {ISTIO_INJECT: "true"}});
    let istio_label = json!({"labels": {ISTIO_INJECT: "true"}});
    let istio_excluded =
        json!({"annotations": {ISTIO_INJECT: "true", ISTIO_EXCLUDE_INBOUND: "15020, 48080,x"}});
    let istio_off = json!({"annotations": {ISTIO_INJECT: "false"}});
    let masq_ports = json!({"masquerade": {}, "ports": [{"port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}]});
    let masq_ours = json!({"masquerade": {}, "ports": [{"port": 48080, "protocol": "TCP"}]});
    let passt_ports = json!({"passt": {}, "ports": [{"port": 22}]});
    check(&[
        (
            "masquerade+istio, other ports",
            masq_ports.clone(),
            &istio,
            PORT,
            Relay,
            IstioCapturesPort,
        ),
        (
            "masquerade+istio label",
            masq_ports.clone(),
            &istio_label,
            PORT,
            Relay,
            IstioCapturesPort,
        ),
        (
            "masquerade+istio, excluded",
            masq_ports.clone(),
            &istio_excluded,
            PORT,
            Direct,
            MasqueradePortNotForwarded,
        ),
        (
            "masquerade+istio off",
            masq_ports,
            &istio_off,
            PORT,
            Direct,
            MasqueradePortNotForwarded,
        ),
        (
            "masquerade+istio, no ports, excluded",
            json!({"masquerade": {}}),
            &istio_excluded,
            PORT,
            Relay,
            MasqueradeForwardsAll,
        ),
        (
            "masquerade+istio, our port, excluded",
            masq_ours,
            &istio_excluded,
            PORT,
            Relay,
            MasqueradeForwardsPort,
        ),
        (
            "passt+istio, ephemeral",
            json!({"passt": {}}),
            &istio,
            PORT,
            Relay,
            IstioCapturesPort,
        ),
        (
            "passt+istio, excluded",
            passt_ports,
            &istio_excluded,
            PORT,
            Direct,
            PasstPortNotListed,
        ),
    ]);
}

#[test]
fn pod_network_table() {
    let relay = |reason| PathDecision::relay(reason);
    let cases: &[(&str, Value, PathDecision)] = &[
        (
            "nothing declared: default pod interface",
            json!({}),
            relay(DefaultBinding),
        ),
        (
            "autoattach off",
            json!({"domain": {"devices": {"autoattachPodInterface": false}}}),
            relay(NoPodNetwork),
        ),
        (
            "multus only",
            json!({"networks": [{"name": "a", "multus": {"networkName": "x", "default": true}}],
                   "domain": {"devices": {"interfaces": [{"name": "a", "masquerade": {}, "ports": [{"port": 1}]}]}}}),
            relay(NoPodNetwork),
        ),
        (
            "two pod networks",
            json!({"networks": [{"name": "a", "pod": {}}, {"name": "b", "pod": {}}],
                   "domain": {"devices": {"interfaces": [{"name": "a", "masquerade": {}}, {"name": "b", "masquerade": {}}]}}}),
            relay(UnclearPodNetwork),
        ),
        (
            "pod network without interface",
            json!({"networks": [{"name": "a", "pod": {}}], "domain": {"devices": {"interfaces": [{"name": "b", "passt": {}}]}}}),
            relay(UnclearPodNetwork),
        ),
        (
            "two interfaces with the pod network's name",
            json!({"networks": [{"name": "a", "pod": {}}],
                   "domain": {"devices": {"interfaces": [{"name": "a", "passt": {}}, {"name": "a", "passt": {}}]}}}),
            relay(UnclearPodNetwork),
        ),
        (
            "networks not a list",
            json!({"networks": {"name": "a"}}),
            relay(UnclearPodNetwork),
        ),
        (
            "pod network picks its interface",
            json!({"networks": [{"name": "x", "multus": {}}, {"name": "p", "pod": {"vmNetworkCIDR": "10.0.2.0/24"}}],
                   "domain": {"devices": {"interfaces": [{"name": "x", "bridge": {}}, {"name": "p", "passt": {}}]}}}),
            PathDecision::direct(PasstEphemeralPort),
        ),
    ];
    for (name, spec, expected) in cases {
        assert_eq!(decide(spec, &json!({}), PORT), *expected, "{name}");
    }
}

#[test]
fn passt_conflict_only_when_passt_lists_our_tcp_port() {
    let conflict =
        |iface: Value, port| facts(&spec_with(iface), &json!({})).passt_port_conflict(port);
    assert!(conflict(
        json!({"passt": {}, "ports": [{"port": 48080}]}),
        PORT
    ));
    assert!(conflict(
        json!({"binding": {"name": "passt"}, "portRanges": [{"start": 48000, "end": 48100}]}),
        PORT
    ));
    assert!(!conflict(
        json!({"passt": {}, "ports": [{"port": 48080, "protocol": "UDP"}]}),
        PORT
    ));
    assert!(!conflict(
        json!({"passt": {}, "ports": [{"port": 22}]}),
        PORT
    ));
    assert!(!conflict(json!({"passt": {}}), PORT));
    assert!(!conflict(
        json!({"masquerade": {}, "ports": [{"port": 48080}]}),
        PORT
    ));
}

#[test]
fn names_are_kebab_case() {
    assert_eq!(
        (ScrapePath::Direct.as_str(), ScrapePath::Relay.as_str()),
        ("direct", "relay")
    );
    assert_eq!(
        PathReason::MasqueradePortNotForwarded.to_string(),
        "masquerade-port-not-forwarded"
    );
}
