//! Metric names that one binary writes and another reads: the collector's families, each with its
//! type and the label names it carries, which is all the relay forwards.

/// Written by the collector (`1` with the pod's `namespace` and `pod`), read by the relay to
/// label what it forwards, queried by the tests.
pub const POD_INFO: &str = "kubevirt_pod_infra_pod_info";

/// One family the collector writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Family {
    pub name: &'static str,
    /// The declared TYPE, as the text format spells it.
    pub kind: &'static str,
    /// Every label name the collector puts on the family's samples, in the order it writes them.
    /// The relay forwards a sample only when each of its labels is one of these (it adds
    /// `namespace` and `pod` itself); `sidecar/tests/labels.rs` holds the lists to what the
    /// collector writes.
    pub labels: &'static [&'static str],
}

/// Labels of a pod's own series: the node and the VM.
const POD: &[&str] = &["host", "domain"];
/// ... split by a `type`.
const POD_TYPE: &[&str] = &["host", "domain", "type"];
/// Labels of a per-role series.
const ROLE: &[&str] = &["host", "domain", "process"];
/// ... split by a `type`.
const ROLE_TYPE: &[&str] = &["host", "domain", "process", "type"];

/// Every family the collector writes, in exposition order. The collector's `--exclude` names
/// them; the relay forwards only these, only with this type and only with these labels, in this
/// order.
pub const FAMILIES: [Family; 25] = [
    def("kubevirt_pod_infra_cpu_seconds_total", "counter", ROLE_TYPE),
    def("kubevirt_pod_infra_memory_amount_bytes", "gauge", ROLE_TYPE),
    def(
        "kube_metrics_collector_build_info",
        "gauge",
        &["version", "revision"],
    ),
    def("kubevirt_pod_infra_processes", "gauge", ROLE),
    def("kubevirt_pod_infra_threads", "gauge", ROLE),
    def("kubevirt_pod_infra_open_fds", "gauge", ROLE),
    def(
        "kubevirt_pod_infra_io_bytes_total",
        "counter",
        &["host", "domain", "process", "direction"],
    ),
    def("kubevirt_pod_infra_page_faults_total", "counter", ROLE_TYPE),
    def(
        "kubevirt_pod_infra_context_switches_total",
        "counter",
        ROLE_TYPE,
    ),
    def("kubevirt_pod_infra_start_time_seconds", "gauge", ROLE),
    def("kubevirt_pod_infra_process_restarts_total", "counter", ROLE),
    def(
        "kubevirt_pod_infra_qemu_thread_cpu_seconds_total",
        "counter",
        &["host", "domain", "process", "class", "type"],
    ),
    def("kubevirt_pod_infra_guest_memory_bytes", "gauge", POD_TYPE),
    def("kubevirt_pod_infra_qemu_own_memory_bytes", "gauge", POD),
    def(
        "kubevirt_pod_infra_guest_memory_read_timestamp_seconds",
        "gauge",
        POD,
    ),
    def(
        POD_INFO,
        "gauge",
        &["host", "domain", "namespace", "pod", "name", "node"],
    ),
    def(
        "kubevirt_pod_infra_memory_overhead_estimate_bytes",
        "gauge",
        POD,
    ),
    def(
        "kubevirt_pod_infra_memory_overhead_budget_bytes",
        "gauge",
        &["host", "domain", "component", "kubevirt_release", "source"],
    ),
    def("kubevirt_pod_infra_compute_memory_bytes", "gauge", POD_TYPE),
    def(
        "kube_metrics_collector_collection_duration_seconds",
        "gauge",
        &[],
    ),
    def(
        "kube_metrics_collector_read_errors_total",
        "counter",
        &["kind"],
    ),
    def(
        "kube_metrics_collector_connections_total",
        "counter",
        &["listener", "action"],
    ),
    def(
        "kube_metrics_collector_guest_memory_unparsed_arguments",
        "gauge",
        &[],
    ),
    def(
        "kube_metrics_collector_guest_memory_unmatched_backends",
        "gauge",
        &[],
    ),
    def(
        "kube_metrics_collector_guest_memory_unexplained_bytes",
        "gauge",
        &[],
    ),
];

/// How much of its output the collector writes: its `--metrics-profile` (env
/// [`crate::sidecar::ENV_METRICS_PROFILE`]), which the webhook sets from its own `--metrics-profile`
/// and from a pod's [`crate::pod::METRICS_PROFILE`] annotation. docs/metrics.md, "Profiles".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Profile {
    /// What the recording rules, the alerts, the dashboards and `kubectl kmc` read, and nothing
    /// else: [`DEFAULT_PROFILE`].
    #[default]
    Default,
    /// Every series of every family in [`FAMILIES`]: the output from before profiles existed.
    Full,
}

/// What a profile keeps of one family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Every series.
    All,
    /// The series whose `label` is one of `values`.
    Only {
        label: &'static str,
        values: &'static [&'static str],
    },
    /// `kubevirt_pod_infra_processes`: the roles that have had a member since the collector
    /// started, and these roles whether or not (at 0 while none runs).
    RolesSeenAnd(&'static [&'static str]),
    /// The series whose value is not 0: a health gauge that only an alert testing `> 0` reads,
    /// for which an absent series and a 0 are the same.
    NonZero,
}

/// The collector's built-in roles, the `process` label's values (docs/metrics.md), in exposition
/// order; `other` is last.
pub const BUILTIN_ROLES: [&str; 12] = [
    "virt-launcher-monitor",
    "virt-launcher",
    "virtqemud",
    "libvirtd",
    "virtlogd",
    "qemu",
    "swtpm",
    "passt",
    "virtiofsd",
    "virt-tail",
    "container-disk",
    "other",
];

/// The roles whose absence `KubevirtInfraProcessMissing` alerts on (libvirtd counts for
/// virtqemud, and is written once it ran): their `kubevirt_pod_infra_processes` is written at 0
/// in every profile. Absent roles are otherwise not written in the default profile.
pub const ALERTED_ROLES: [&str; 4] = ["virt-launcher", "virtqemud", "virtlogd", "qemu"];

/// The default profile, family by family: a family not listed is left out. Each entry names who
/// reads it; a test (`tests/tests/monitoring.rs`) holds every selector of the rules, the alerts,
/// both dashboards and `kubectl kmc` to this table.
pub const DEFAULT_PROFILE: [(&str, Keep); 16] = [
    // Every CPU rule, panel and `kubectl kmc top`.
    ("kubevirt_pod_infra_cpu_seconds_total", Keep::All),
    // Resident memory and page tables make each component's overhead (contract::rules); PSS is
    // written only with `--pss`, which asks for it.
    (
        "kubevirt_pod_infra_memory_amount_bytes",
        Keep::Only {
            label: "type",
            values: &["resident", "page_tables", "proportional_resident"],
        },
    ),
    // KubevirtInfraProcessMissing, and the dashboard's table of processes.
    (
        "kubevirt_pod_infra_processes",
        Keep::RolesSeenAnd(&ALERTED_ROLES),
    ),
    // The guest's share of QEMU's CPU; the rules take the rest of QEMU's CPU as emulation.
    (
        "kubevirt_pod_infra_qemu_thread_cpu_seconds_total",
        Keep::Only {
            label: "class",
            values: &["vcpu"],
        },
    ),
    // `kubectl kmc recommend` (guest RAM's size) and the dashboard's guest memory panel.
    (
        "kubevirt_pod_infra_guest_memory_bytes",
        Keep::Only {
            label: "type",
            values: &["size"],
        },
    ),
    ("kubevirt_pod_infra_qemu_own_memory_bytes", Keep::All),
    (POD_INFO, Keep::All),
    (
        "kubevirt_pod_infra_memory_overhead_estimate_bytes",
        Keep::All,
    ),
    ("kubevirt_pod_infra_memory_overhead_budget_bytes", Keep::All),
    // The allowance: limit minus the guest RAM the memory cgroup charges.
    (
        "kubevirt_pod_infra_compute_memory_bytes",
        Keep::Only {
            label: "type",
            values: &["limit", "guest"],
        },
    ),
    // The dashboard's collection time.
    (
        "kube_metrics_collector_collection_duration_seconds",
        Keep::All,
    ),
    // KubeMetricsCollectorReadErrors: `vanished` and `permission` are normal.
    (
        "kube_metrics_collector_read_errors_total",
        Keep::Only {
            label: "kind",
            values: &["parse", "io"],
        },
    ),
    // KubeMetricsCollectorPortFlooded: only the TCP port is reachable from the pod network.
    (
        "kube_metrics_collector_connections_total",
        Keep::Only {
            label: "listener",
            values: &["tcp"],
        },
    ),
    // KubeMetricsCollectorGuestMemoryInexact fires on any of the three above 0.
    (
        "kube_metrics_collector_guest_memory_unparsed_arguments",
        Keep::NonZero,
    ),
    (
        "kube_metrics_collector_guest_memory_unmatched_backends",
        Keep::NonZero,
    ),
    (
        "kube_metrics_collector_guest_memory_unexplained_bytes",
        Keep::NonZero,
    ),
];

/// A `--metrics-profile` that names no profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownProfile(pub String);

// === impl Profile ===

impl Profile {
    /// Every profile, the default first.
    pub const ALL: [Profile; 2] = [Self::Default, Self::Full];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Full => "full",
        }
    }

    /// What this profile keeps of family `name`; `None`: it leaves the family out.
    pub fn keeps(self, name: &str) -> Option<Keep> {
        match self {
            Self::Full => family(name).map(|_| Keep::All),
            Self::Default => DEFAULT_PROFILE
                .iter()
                .find(|(family, _)| *family == name)
                .map(|(_, keep)| *keep),
        }
    }
}

impl std::str::FromStr for Profile {
    type Err = UnknownProfile;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == value)
            .ok_or_else(|| UnknownProfile(value.to_owned()))
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for UnknownProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = Profile::ALL.iter().map(|p| p.as_str()).collect();
        write!(
            f,
            "no metrics profile {:?} (one of: {})",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for UnknownProfile {}

// === impl Keep ===

impl Keep {
    /// Whether a sample with `labels` (its own, without `host` and `domain`) and `value` is kept.
    /// A `RolesSeenAnd` family is judged by its writer, which knows which roles had a member.
    pub fn sample(self, labels: &[(&str, &str)], value: f64) -> bool {
        match self {
            Self::All | Self::RolesSeenAnd(_) => true,
            Self::Only { label, values } => labels
                .iter()
                .any(|(name, v)| *name == label && values.contains(v)),
            Self::NonZero => value != 0.0,
        }
    }
}

/// The labels the relay puts on every series it forwards, first, from the kubelet's attestation.
pub const RELAY_LABELS: [&str; 2] = ["namespace", "pod"];

/// Most labels the collector writes on one sample (`pod_info`'s six): a line with more carries a
/// label no family allows, so the relay stops reading it there.
pub const MAX_LABELS: usize = max_labels(false);

/// Most labels on one series the relay forwards: a family's own and [`RELAY_LABELS`].
pub const MAX_RELAYED_LABELS: usize = max_labels(true);

/// The collector's family `name`, if it writes one by that name.
pub fn family(name: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|f| f.name == name)
}

/// Where family `name` is in [`FAMILIES`].
pub fn family_index(name: &str) -> Option<usize> {
    FAMILIES.iter().position(|f| f.name == name)
}

/// The declared TYPE of collector family `name`, if the collector writes it.
pub fn family_type(name: &str) -> Option<&'static str> {
    family(name).map(|f| f.kind)
}

const fn def(name: &'static str, kind: &'static str, labels: &'static [&'static str]) -> Family {
    Family { name, kind, labels }
}

/// The most labels of any family, with the relay's own added when `relayed` (`pod_info` already
/// carries them).
const fn max_labels(relayed: bool) -> usize {
    let mut most = 0;
    let mut i = 0;
    while i < FAMILIES.len() {
        let labels = FAMILIES[i].labels;
        let mut n = labels.len();
        if relayed && !contains(labels, RELAY_LABELS[0]) {
            n += RELAY_LABELS.len();
        }
        if n > most {
            most = n;
        }
        i += 1;
    }
    most
}

/// `list.contains(&name)`, which is not yet callable in a `const fn`.
const fn contains(list: &[&str], name: &str) -> bool {
    let mut i = 0;
    while i < list.len() {
        if same_bytes(list[i].as_bytes(), name.as_bytes()) {
            return true;
        }
        i += 1;
    }
    false
}

/// `a == b`, which is not yet callable in a `const fn`; for the workspace's compile-time tables.
pub const fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests;
