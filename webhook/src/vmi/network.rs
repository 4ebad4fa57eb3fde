//! The VMI's pod-network interface -> how Prometheus reaches the sidecar: `podIP:port` directly, or the
//! node relay over the Unix socket (docs/kubevirt.md §4). No I/O.
//!
//! The relay works for every binding, so every case we cannot prove reachable goes to the relay.
mod binding;
mod path;
mod ports;

use std::collections::BTreeSet;

use serde_json::Value;

use super::presence::is_set;
use crate::policy::EPHEMERAL_PORTS;

pub use binding::Binding;
pub use path::{PathDecision, PathReason, ScrapePath};
pub use ports::{PortRule, Ports};

/// The label and annotation keys Istio's marks are read from: all that the facts read of a VMI's
/// labels and annotations.
pub const ISTIO_INJECT: &str = "sidecar.istio.io/inject";
pub const ISTIO_EXCLUDE_INBOUND: &str = "traffic.sidecar.istio.io/excludeInboundPorts";

/// The VMI's pod network, as far as the scrape path is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodNetwork {
    /// No `pod: {}` network (only Multus/secondary networks, or `autoattachPodInterface: false`). The
    /// pod's own eth0 might then be reachable, but a Multus network with `default: true` replaces it
    /// and may be handed to the guest; we pick the relay, which works either way.
    Absent,
    /// Several pod networks, or none of the interfaces carries the pod network's name.
    Unclear,
    Interface {
        binding: Binding,
        ports: Ports,
    },
}

/// Istio's view of the pod, from the VMI's labels and annotations (copied to the pod).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Istio {
    /// `sidecar.istio.io/inject: "true"` as a label or an annotation. Namespace-wide injection
    /// (`istio-injection=enabled` on the namespace) is not visible in the VMI.
    pub injected: bool,
    /// Ports in `traffic.sidecar.istio.io/excludeInboundPorts`; unreadable entries are dropped, which
    /// can only make us choose the relay.
    pub excluded_inbound: BTreeSet<u16>,
}

/// Istio's marks as the VMI carries them, before they are read: the values of [`ISTIO_INJECT`] as
/// a label and as an annotation, and of the annotation [`ISTIO_EXCLUDE_INBOUND`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IstioMarks<'a> {
    pub inject_label: Option<&'a str>,
    pub inject_annotation: Option<&'a str>,
    pub exclude_inbound: Option<&'a str>,
}

/// Everything on the VMI that decides the scrape path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkFacts {
    pub pod: PodNetwork,
    pub istio: Istio,
}

// === impl IstioMarks ===

impl<'a> IstioMarks<'a> {
    /// The marks in a VMI's `metadata` object; a value that is not a string is no mark.
    pub fn of_metadata(metadata: &'a Value) -> Self {
        let lookup = |map: &str, key: &str| {
            metadata
                .get(map)
                .and_then(|map| map.get(key))
                .and_then(Value::as_str)
        };
        IstioMarks {
            inject_label: lookup("labels", ISTIO_INJECT),
            inject_annotation: lookup("annotations", ISTIO_INJECT),
            exclude_inbound: lookup("annotations", ISTIO_EXCLUDE_INBOUND),
        }
    }
}

// === impl NetworkFacts ===

impl NetworkFacts {
    /// Reads the pod-network interface from `spec.domain` and `spec.networks` (`null` when
    /// absent) and Istio's view from its marks.
    pub fn read(domain: &Value, networks: &Value, marks: IstioMarks<'_>) -> NetworkFacts {
        NetworkFacts {
            pod: pod_network(domain, networks),
            istio: istio(marks),
        }
    }

    /// docs/kubevirt.md §4 as a decision. Istio can only turn a direct path into the relay: with Istio the
    /// masquerade rules change, and the relay is right in every case the table leaves open.
    pub fn scrape_path(&self, port: u16) -> PathDecision {
        use PathReason::*;
        let by_binding = match &self.pod {
            PodNetwork::Absent => PathDecision::relay(NoPodNetwork),
            PodNetwork::Unclear => PathDecision::relay(UnclearPodNetwork),
            PodNetwork::Interface { binding, ports } => match (binding, ports.covers_tcp(port)) {
                (Binding::Masquerade | Binding::Passt, None) => {
                    PathDecision::relay(UnreadablePorts)
                }
                (Binding::Masquerade, Some(_)) if *ports == Ports::Unlisted => {
                    PathDecision::relay(MasqueradeForwardsAll)
                }
                (Binding::Masquerade, Some(true)) => PathDecision::relay(MasqueradeForwardsPort),
                (Binding::Masquerade, Some(false)) => {
                    PathDecision::direct(MasqueradePortNotForwarded)
                }
                (Binding::Passt, Some(_)) if *ports == Ports::Unlisted => {
                    if EPHEMERAL_PORTS.contains(&port) {
                        PathDecision::direct(PasstEphemeralPort)
                    } else {
                        PathDecision::relay(PasstMayBindPort)
                    }
                }
                (Binding::Passt, Some(true)) => PathDecision::relay(PasstListsPort),
                (Binding::Passt, Some(false)) => PathDecision::direct(PasstPortNotListed),
                (Binding::Bridge, _) => PathDecision::relay(Bridge),
                (Binding::Sriov, _) => PathDecision::relay(Sriov),
                (Binding::Slirp, _) => PathDecision::relay(Slirp),
                (Binding::Macvtap | Binding::Plugin(_), _) => PathDecision::relay(OtherBinding),
                (Binding::Default, _) => PathDecision::relay(DefaultBinding),
                (Binding::Ambiguous, _) => PathDecision::relay(AmbiguousBinding),
            },
        };
        let istio_captures = self.istio.injected && !self.istio.excluded_inbound.contains(&port);
        if by_binding.path == ScrapePath::Direct && istio_captures {
            return PathDecision::relay(IstioCapturesPort);
        }
        by_binding
    }

    /// passt with our port listed: passt fails to bind it and the VM does not start.
    pub fn passt_port_conflict(&self, port: u16) -> bool {
        matches!(&self.pod, PodNetwork::Interface { binding: Binding::Passt, ports } if ports.covers_tcp(port) == Some(true))
    }
}

/// Finds the interface bound to the `pod: {}` network.
fn pod_network(domain: &Value, networks: &Value) -> PodNetwork {
    let devices = domain.get("devices").unwrap_or(&Value::Null);
    let networks = list(Some(networks));
    let interfaces = list(devices.get("interfaces"));
    let (Some(networks), Some(interfaces)) = (networks, interfaces) else {
        return PodNetwork::Unclear; // present but not lists
    };
    if networks.is_empty() && interfaces.is_empty() {
        // KubeVirt attaches the pod network with the cluster's default binding unless told not to.
        return match devices.get("autoattachPodInterface") {
            Some(Value::Bool(false)) => PodNetwork::Absent,
            _ => PodNetwork::Interface {
                binding: Binding::Default,
                ports: Ports::Unlisted,
            },
        };
    }
    let pod_networks: Vec<&Value> = networks
        .iter()
        .filter(|network| is_set(network.get("pod")))
        .collect();
    let name = match pod_networks.as_slice() {
        [] => return PodNetwork::Absent,
        [network] => network.get("name").and_then(Value::as_str),
        _ => return PodNetwork::Unclear,
    };
    let mut matching = interfaces
        .iter()
        .filter(|iface| iface.get("name").and_then(Value::as_str) == name);
    match (name, matching.next(), matching.next()) {
        (Some(_), Some(Value::Object(iface)), None) => PodNetwork::Interface {
            binding: Binding::of(iface),
            ports: Ports::of(iface),
        },
        _ => PodNetwork::Unclear,
    }
}

/// A list field: absent or null is an empty list; another type is `None`.
fn list(value: Option<&Value>) -> Option<&[Value]> {
    match value {
        None | Some(Value::Null) => Some(&[]),
        Some(Value::Array(items)) => Some(items),
        Some(_) => None,
    }
}

fn istio(marks: IstioMarks<'_>) -> Istio {
    let injected = [marks.inject_label, marks.inject_annotation]
        .into_iter()
        .flatten()
        .any(|value| value.trim().eq_ignore_ascii_case("true"));
    let excluded_inbound = marks
        .exclude_inbound
        .map(|list| {
            list.split(',')
                .filter_map(|port| port.trim().parse::<u16>().ok())
                .collect()
        })
        .unwrap_or_default();
    Istio {
        injected,
        excluded_inbound,
    }
}

#[cfg(test)]
mod tests;
