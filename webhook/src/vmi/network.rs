//! The VMI's pod-network interface -> how Prometheus reaches the sidecar: `podIP:port` directly, or the
//! node relay over the Unix socket (docs/kubevirt.md §4). No I/O.
//!
//! The relay works for every binding, so every case we cannot prove reachable goes to the relay.
use std::{collections::BTreeSet, fmt};

use serde_json::{Map, Value};

use super::facts::is_set;
use crate::policy::EPHEMERAL_PORTS;

const ISTIO_INJECT: &str = "sidecar.istio.io/inject";
const ISTIO_EXCLUDE_INBOUND: &str = "traffic.sidecar.istio.io/excludeInboundPorts";

/// The value of the pod label `kube-metrics-collector.io/scrape` (docs/design.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScrapePath {
    /// Prometheus scrapes `podIP:port`.
    Direct,
    /// The node relay reads the collector's Unix socket.
    Relay,
}

impl ScrapePath {
    pub fn as_str(self) -> &'static str {
        match self {
            ScrapePath::Direct => kube_metrics_contract::pod::SCRAPE_DIRECT,
            ScrapePath::Relay => kube_metrics_contract::pod::SCRAPE_RELAY,
        }
    }
}

/// Why a scrape path was chosen; a closed set, kebab-case for logs and annotations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PathReason {
    /// masquerade without `ports`: every inbound connection is DNATed to the guest.
    MasqueradeForwardsAll,
    /// masquerade lists our port: it goes to the guest.
    MasqueradeForwardsPort,
    /// masquerade lists ports, not ours: ours stays in the pod.
    MasqueradePortNotForwarded,
    /// passt without `ports`, our port in the ephemeral range: passt never binds it.
    PasstEphemeralPort,
    /// passt without `ports`, our port outside the ephemeral range: passt may bind it first (racy).
    PasstMayBindPort,
    /// passt lists our port: the VM will not start (hazard), and the port would be the guest's.
    PasstListsPort,
    /// passt lists ports, not ours.
    PasstPortNotListed,
    /// Istio's Envoy captures our port (and forwards it to the guest).
    IstioCapturesPort,
    /// bridge: the pod IP is handed to the guest.
    Bridge,
    /// SR-IOV on the pod network: the guest owns the device.
    Sriov,
    /// slirp (removed from KubeVirt): not verified, relay to be safe.
    Slirp,
    /// macvtap or a binding plugin other than passt (managedTap, UDN l2bridge, ...): bridge-like.
    OtherBinding,
    /// No binding in the interface: the cluster default (bridge or masquerade), unknown here.
    DefaultBinding,
    /// Several bindings set at once: the object is nonsense.
    AmbiguousBinding,
    /// `ports`/`portRanges` present but not readable.
    UnreadablePorts,
    /// The VM has no pod network: the relay is the only path we know works (see [`PodNetwork::Absent`]).
    NoPodNetwork,
    /// Several pod networks, or a pod network without a matching interface.
    UnclearPodNetwork,
    /// The VMI could not be read: the pod spec does not show the binding.
    VmiNotRead,
    /// `--scrape relay`: the cluster scrapes only through the relay, whatever the binding allows.
    RelayOnly,
}

impl PathReason {
    pub fn as_str(self) -> &'static str {
        match self {
            PathReason::MasqueradeForwardsAll => "masquerade-forwards-all",
            PathReason::MasqueradeForwardsPort => "masquerade-forwards-port",
            PathReason::MasqueradePortNotForwarded => "masquerade-port-not-forwarded",
            PathReason::PasstEphemeralPort => "passt-ephemeral-port",
            PathReason::PasstMayBindPort => "passt-may-bind-port",
            PathReason::PasstListsPort => "passt-lists-port",
            PathReason::PasstPortNotListed => "passt-port-not-listed",
            PathReason::IstioCapturesPort => "istio-captures-port",
            PathReason::Bridge => "bridge",
            PathReason::Sriov => "sriov",
            PathReason::Slirp => "slirp",
            PathReason::OtherBinding => "other-binding",
            PathReason::DefaultBinding => "default-binding",
            PathReason::AmbiguousBinding => "ambiguous-binding",
            PathReason::UnreadablePorts => "unreadable-ports",
            PathReason::NoPodNetwork => "no-pod-network",
            PathReason::UnclearPodNetwork => "unclear-pod-network",
            PathReason::VmiNotRead => "vmi-not-read",
            PathReason::RelayOnly => "relay-only",
        }
    }
}

impl fmt::Display for PathReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scrape path and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PathDecision {
    pub path: ScrapePath,
    pub reason: PathReason,
}

impl PathDecision {
    pub const fn relay(reason: PathReason) -> Self {
        PathDecision {
            path: ScrapePath::Relay,
            reason,
        }
    }
    pub const fn direct(reason: PathReason) -> Self {
        PathDecision {
            path: ScrapePath::Direct,
            reason,
        }
    }
}

/// How the pod network is bound to the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Binding {
    Masquerade,
    Bridge,
    /// Core `passt: {}` (up to v1.2), core `passtBinding: {}` (v1.9), or the plugin `binding: {name: passt}`.
    Passt,
    Sriov,
    Slirp,
    Macvtap,
    /// A network binding plugin by its registered name (`managedTap` plugins, `l2bridge`, ...).
    Plugin(String),
    /// None set: the cluster's default binding.
    Default,
    /// More than one set.
    Ambiguous,
}

/// The transport of a forwarded port; only TCP matters to us, anything unreadable may be TCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

/// One `ports` entry or `portRanges` entry, as an inclusive range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortRule {
    /// `None`: a protocol we do not know, which might cover TCP.
    protocol: Option<Protocol>,
    start: u16,
    end: u16,
}

impl PortRule {
    fn covers_tcp(&self, port: u16) -> bool {
        matches!(self.protocol, Some(Protocol::Tcp) | None)
            && (self.start..=self.end).contains(&port)
    }
}

/// The interface's `ports` and `portRanges` together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ports {
    /// Neither lists anything: KubeVirt forwards (masquerade) or may bind (passt) every port.
    Unlisted,
    Listed(Vec<PortRule>),
    /// Present but not readable (a negative port, a string): we cannot tell what is forwarded.
    Unreadable,
}

impl Ports {
    fn covers_tcp(&self, port: u16) -> Option<bool> {
        match self {
            Ports::Unlisted => Some(false),
            Ports::Listed(rules) => Some(rules.iter().any(|rule| rule.covers_tcp(port))),
            Ports::Unreadable => None,
        }
    }
}

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

/// Everything on the VMI that decides the scrape path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkFacts {
    pub pod: PodNetwork,
    pub istio: Istio,
}

impl NetworkFacts {
    /// Reads the pod-network interface from `spec` and the Istio keys from `metadata`.
    pub fn from_vmi(spec: &Value, metadata: &Value) -> NetworkFacts {
        NetworkFacts {
            pod: pod_network(spec),
            istio: istio(metadata),
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
fn pod_network(spec: &Value) -> PodNetwork {
    let devices = spec
        .get("domain")
        .and_then(|domain| domain.get("devices"))
        .unwrap_or(&Value::Null);
    let networks = list(spec.get("networks"));
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
            binding: binding(iface),
            ports: ports(iface),
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

fn binding(iface: &Map<String, Value>) -> Binding {
    let set = |key: &str| is_set(iface.get(key));
    let mut found = Vec::new();
    if set("masquerade") {
        found.push(Binding::Masquerade);
    }
    if set("bridge") {
        found.push(Binding::Bridge);
    }
    if set("passt") || set("passtBinding") {
        found.push(Binding::Passt);
    }
    if set("sriov") {
        found.push(Binding::Sriov);
    }
    if set("slirp") {
        found.push(Binding::Slirp);
    }
    if set("macvtap") {
        found.push(Binding::Macvtap);
    }
    if set("binding") {
        match iface
            .get("binding")
            .and_then(|binding| binding.get("name"))
            .and_then(Value::as_str)
        {
            Some("passt") => found.push(Binding::Passt),
            Some(name) => found.push(Binding::Plugin(name.to_owned())),
            None => found.push(Binding::Ambiguous),
        }
    }
    match found.len() {
        0 => Binding::Default,
        1 => found.pop().unwrap_or(Binding::Ambiguous),
        _ => Binding::Ambiguous,
    }
}

fn ports(iface: &Map<String, Value>) -> Ports {
    let (Some(ports), Some(ranges)) = (list(iface.get("ports")), list(iface.get("portRanges")))
    else {
        return Ports::Unreadable;
    };
    if ports.is_empty() && ranges.is_empty() {
        return Ports::Unlisted;
    }
    let singles = ports.iter().map(|entry| {
        let port = port_number(entry.get("port"))?;
        Some(PortRule {
            protocol: protocol(entry.get("protocol"))?,
            start: port,
            end: port,
        })
    });
    let spans = ranges.iter().map(|entry| {
        let (start, end) = (
            port_number(entry.get("start"))?,
            port_number(entry.get("end"))?,
        );
        (start <= end).then_some(())?;
        Some(PortRule {
            protocol: protocol(entry.get("protocol"))?,
            start,
            end,
        })
    });
    match singles.chain(spans).collect::<Option<Vec<_>>>() {
        Some(rules) => Ports::Listed(rules),
        None => Ports::Unreadable,
    }
}

fn port_number(value: Option<&Value>) -> Option<u16> {
    value
        .and_then(Value::as_u64)
        .and_then(|port| u16::try_from(port).ok())
        .filter(|port| *port != 0)
}

/// `Some(None)`: a protocol we do not know (may cover TCP); `None`: not readable at all.
fn protocol(value: Option<&Value>) -> Option<Option<Protocol>> {
    match value {
        None | Some(Value::Null) => Some(Some(Protocol::Tcp)), // KubeVirt's default
        Some(Value::String(name)) if name.eq_ignore_ascii_case("TCP") => Some(Some(Protocol::Tcp)),
        Some(Value::String(name)) if name.eq_ignore_ascii_case("UDP") => Some(Some(Protocol::Udp)),
        Some(Value::String(name)) if name.eq_ignore_ascii_case("SCTP") => {
            Some(Some(Protocol::Sctp))
        }
        Some(Value::String(_)) => Some(None),
        Some(_) => None,
    }
}

fn istio(metadata: &Value) -> Istio {
    let lookup = |map: &str, key: &str| {
        metadata
            .get(map)
            .and_then(|map| map.get(key))
            .and_then(Value::as_str)
    };
    let injected = ["labels", "annotations"].iter().any(|map| {
        lookup(map, ISTIO_INJECT).is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
    });
    let excluded_inbound = lookup("annotations", ISTIO_EXCLUDE_INBOUND)
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
#[path = "network_tests.rs"]
mod tests;
