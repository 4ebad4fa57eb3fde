//! The NetworkPolicy model: label selectors, declared ports, rule ports.

use super::*;
use serde_json::json;

#[test]
fn selectors_follow_label_selector_rules() {
    let labels = json!({"app": "relay", "tier": "node"});
    let cases = [
        (json!({}), true),
        (json!(null), false),
        (json!({"matchLabels": {"app": "relay"}}), true),
        (json!({"matchLabels": {"app": "relay", "tier": "x"}}), false),
        (json!({"matchLabels": {"missing": "relay"}}), false),
        (
            json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["relay", "b"]}]}),
            true,
        ),
        (
            json!({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["relay"]}]}),
            false,
        ),
        (
            json!({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}),
            true,
        ),
        (
            json!({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}),
            true,
        ),
        (
            json!({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}),
            false,
        ),
        (
            json!({"matchExpressions": [{"key": "tier", "operator": "Gt"}]}),
            false,
        ),
    ];
    for (selector, want) in cases {
        assert_eq!(selects(&selector, &labels), want, "{selector}");
    }
}

#[test]
fn declared_ports_include_init_containers_and_default_to_tcp() {
    let spec = json!({
        "containers": [{"ports": [{"name": "https", "containerPort": 8443}]}, {"name": "none"}],
        "initContainers": [{"ports": [{"name": "m", "containerPort": 48080, "protocol": "UDP"}]}]
    });
    let want: BTreeSet<Port> = [
        Port {
            name: "https".into(),
            number: 8443,
            protocol: "TCP".into(),
        },
        Port {
            name: "m".into(),
            number: 48080,
            protocol: "UDP".into(),
        },
    ]
    .into();
    assert_eq!(declared_ports(&spec), want);
}

#[test]
fn rule_ports_match_by_name_number_range_and_protocol() {
    let https = Port {
        name: "https".into(),
        number: 8443,
        protocol: "TCP".into(),
    };
    let cases = [
        (json!({"port": "https"}), true),
        (json!({"port": "admin"}), false),
        (json!({"port": 8443}), true),
        (json!({"port": 8443, "protocol": "UDP"}), false),
        (json!({"port": 8000, "endPort": 9000}), true),
        (json!({"port": 8444, "endPort": 9000}), false),
        (json!({"protocol": "TCP"}), true),
        (json!({"protocol": "SCTP"}), false),
    ];
    for (rule_port, want) in cases {
        assert_eq!(port_matches(&rule_port, &https), want, "{rule_port}");
    }
    assert!(rule_admits(&json!({"from": []}), &https));
    assert!(rule_admits(&json!({"ports": []}), &https));
    assert!(!rule_admits(&json!({"ports": [{"port": 1}]}), &https));
    let ports: BTreeSet<Port> = [https.clone(), Port::tcp(8080)].into();
    assert_eq!(
        admitted(&json!({"ports": [{"port": 8080}]}), &ports),
        [Port::tcp(8080)].into()
    );
    assert!(from_anywhere(&json!({"ports": []})));
    assert!(from_anywhere(&json!({"from": []})));
    assert!(!from_anywhere(
        &json!({"from": [{"namespaceSelector": {}}]})
    ));
}
