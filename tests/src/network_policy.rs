//! The questions the tests ask of NetworkPolicy objects, answered by the rules of
//! `networking.k8s.io/v1`: which pods a label selector picks, which ports of a pod an ingress rule
//! admits, and what a workload's pod template declares.

use serde_json::Value;
use std::collections::BTreeSet;

/// A port a container declares (`containerPort`), or any port number a rule is asked about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Port {
    /// Empty when the port has no name.
    pub name: String,
    pub number: u16,
    pub protocol: String,
}

impl Port {
    /// A TCP port without a name.
    pub fn tcp(number: u16) -> Self {
        Self {
            name: String::new(),
            number,
            protocol: "TCP".to_owned(),
        }
    }
}

/// Whether a `LabelSelector` (`matchLabels`, `matchExpressions`) selects an object with `labels`.
/// An empty selector selects everything; a missing one, nothing.
pub fn selects(selector: &Value, labels: &Value) -> bool {
    let Some(selector) = selector.as_object() else {
        return false;
    };
    let label = |key: &str| labels.get(key).and_then(Value::as_str);
    let by_labels = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .all(|(key, want)| label(key).is_some_and(|got| want == got));
    let by_expressions = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .all(|expr| {
            let got = label(expr["key"].as_str().unwrap_or(""));
            let listed = |v: &str| {
                expr["values"]
                    .as_array()
                    .is_some_and(|l| l.contains(&v.into()))
            };
            match expr["operator"].as_str() {
                Some("In") => got.is_some_and(listed),
                Some("NotIn") => !got.is_some_and(listed),
                Some("Exists") => got.is_some(),
                Some("DoesNotExist") => got.is_none(),
                _ => false,
            }
        });
    by_labels && by_expressions
}

/// Every port the containers, init containers included, of a pod spec declare.
pub fn declared_ports(pod_spec: &Value) -> BTreeSet<Port> {
    let mut ports = BTreeSet::new();
    for list in ["containers", "initContainers"] {
        for container in pod_spec[list].as_array().into_iter().flatten() {
            for port in container["ports"].as_array().into_iter().flatten() {
                ports.insert(Port {
                    name: port["name"].as_str().unwrap_or("").to_owned(),
                    number: port["containerPort"]
                        .as_u64()
                        .and_then(|n| u16::try_from(n).ok())
                        .unwrap_or(0),
                    protocol: port["protocol"].as_str().unwrap_or("TCP").to_owned(),
                });
            }
        }
    }
    ports
}

/// Whether one `NetworkPolicyPort` matches `port`: same protocol (TCP when unset), and the number
/// or number range, or the name; no `port` at all matches every port of the protocol.
pub fn port_matches(rule_port: &Value, port: &Port) -> bool {
    let protocol = rule_port["protocol"].as_str().unwrap_or("TCP");
    if protocol != port.protocol {
        return false;
    }
    match &rule_port["port"] {
        Value::Null => true,
        Value::String(name) => *name == port.name,
        number => {
            let first = number.as_u64().unwrap_or(0);
            let last = rule_port["endPort"].as_u64().unwrap_or(first);
            (first..=last).contains(&u64::from(port.number))
        }
    }
}

/// Whether an ingress rule admits connections to `port` (from the rule's sources): a rule without
/// `ports` admits every port.
pub fn rule_admits(rule: &Value, port: &Port) -> bool {
    match rule["ports"].as_array() {
        Some(ports) if !ports.is_empty() => ports.iter().any(|p| port_matches(p, port)),
        _ => true,
    }
}

/// The ports among `ports` that an ingress rule admits.
pub fn admitted(rule: &Value, ports: &BTreeSet<Port>) -> BTreeSet<Port> {
    ports
        .iter()
        .filter(|p| rule_admits(rule, p))
        .cloned()
        .collect()
}

/// Whether a rule admits every source: no `from`, or an empty one.
pub fn from_anywhere(rule: &Value) -> bool {
    rule["from"].as_array().is_none_or(Vec::is_empty)
}

#[cfg(test)]
mod tests;
