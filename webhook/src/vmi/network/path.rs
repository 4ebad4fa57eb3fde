//! The answer the network gives: a scrape path and why, as the closed sets written on the pod and in
//! logs.
use std::fmt;

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
