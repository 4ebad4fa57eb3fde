//! Writes the metric families of docs/metrics.md from one `Collection`, straight into a buffer at
//! each scrape: a whole exposition for the injected collector (`encode`), or a pod's lines for the
//! node collector to gather with other pods' (`PodLines`). No I/O.
//!
//! The writer (crate `kube-metrics-exposition`) knows the two formats; this module knows the
//! names and meanings of docs/metrics.md.

use std::sync::Arc;

use crate::classify::ThreadClass;
use crate::collect::{Collection, ProcessCounters, RoleSample};
use kube_metrics_contract::metrics::Keep;
use kube_metrics_exposition::{Format, Kind, Writer};

mod budget;
mod exclude;
mod guest_memory;
mod own;
mod pod;
mod pod_lines;

pub use exclude::{ExcludeError, Exclusions};
pub use pod_lines::{PodLines, write_pods};

/// Everything about the pod that labels or per-pod metrics need, besides the collection.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub host: String,
    pub domain: String,
    pub namespace: Option<String>,
    pub pod: Option<String>,
    /// env `NODE_NAME`, for `pod_info`'s `node` (what KubeVirt's own series carry).
    pub node: Option<String>,
    pub memory_overhead: Option<u64>,
    pub memory_request: Option<u64>,
    pub memory_limit: Option<u64>,
    /// The KubeVirt release whose constants the budgets use; `None`: the assumed one.
    pub kubevirt_release: Option<kube_metrics_contract::estimate::Release>,
    pub pss: bool,
    pub exclude: Arc<Exclusions>,
}

/// One scrape's data, encoded on demand in either format.
#[derive(Clone, Debug)]
pub struct Metrics {
    pub collection: Collection,
    pub scope: Scope,
    /// One entry per listener the collector serves; none where nothing is served (`-M`, the node
    /// collector's pods).
    pub connections: Vec<ListenerConnections>,
}

/// What the connection cap of one of the collector's listeners did since start, read at the
/// scrape (`kube_metrics_runtime::ConnectionStats`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenerConnections {
    /// `tcp` or `unix`.
    pub listener: &'static str,
    /// Idle connections closed to make room for a new one.
    pub evicted: u64,
    /// New connections closed at once because every connection was busy.
    pub refused: u64,
}

/// Writes samples with `host` and `domain` on every `kubevirt_pod_infra_*` series.
#[derive(Debug)]
struct Builder<'o> {
    w: Writer<'o>,
    exclude: &'o Exclusions,
    /// What the profile and `--exclude` keep of the current family; `None` drops its samples.
    keep: Option<Keep>,
    family: &'static str,
    /// Where each family's lines start, for [`PodLines`]; its `namespace` and `pod` lead every
    /// line then, so `pod_info` does not repeat them.
    sections: Option<&'o mut Vec<pod_lines::Section>>,
}

/// Encodes every family of `m` in `format` into `out` (cleared first); families without samples
/// are left out.
pub fn encode(m: &Metrics, format: Format, out: &mut Vec<u8>) {
    out.clear();
    let mut b = Builder::new(Writer::new(out, format), &m.scope, None);
    b.families(m);
    b.w.finish();
}

// === impl Builder ===

impl<'o> Builder<'o> {
    fn new(
        mut w: Writer<'o>,
        scope: &'o Scope,
        sections: Option<&'o mut Vec<pod_lines::Section>>,
    ) -> Self {
        w.set_prefix(&[
            ("host", scope.host.as_str()),
            ("domain", scope.domain.as_str()),
        ]);
        Self {
            w,
            exclude: &scope.exclude,
            keep: None,
            family: "",
            sections,
        }
    }

    /// Every family of `m`, in the order the golden expositions hold.
    fn families(&mut self, m: &Metrics) {
        let (c, scope) = (&m.collection, &m.scope);
        self.cpu_seconds(c);
        self.memory_amount(c, scope.pss);
        self.info();
        self.role_gauges(c);
        self.io_faults_and_switches(c);
        self.start_time_and_restarts(c);
        self.qemu_thread_cpu_seconds(c);
        if let Some(guest) = &c.guest {
            self.guest_memory(guest);
        }
        self.pod_families(c, scope);
        self.collector_families(c, &m.connections);
        if let Some(guest) = &c.guest {
            self.guest_memory_health(guest);
        }
        self.end_section();
    }
}

/// Each role with its sample, in role order.
fn roles(c: &Collection) -> impl Iterator<Item = (&str, &RoleSample)> {
    c.per_role
        .iter()
        .enumerate()
        .map(|(id, sample)| (c.roles.name(id), sample))
}

/// The roles that ever had a member.
fn seen(c: &Collection) -> impl Iterator<Item = (&str, &RoleSample)> {
    roles(c).filter(|(_, s)| s.seen)
}

/// Clock ticks to seconds.
fn seconds(ticks: u64, c: &Collection) -> f64 {
    ticks as f64 / c.ticks_per_second.max(1) as f64
}

impl Builder<'_> {
    fn family(&mut self, name: &'static str, help: &'static str, kind: Kind) {
        self.keep = self.exclude.keeps(name);
        self.family = name;
        self.end_section();
        let at = self.w.position();
        if let Some(sections) = &mut self.sections {
            sections.push(pod_lines::Section::new(name, help, kind, at));
        }
        self.w.family(name, help, kind);
    }

    /// Ends the current family's lines in [`PodLines`].
    fn end_section(&mut self) {
        let at = self.w.position();
        if let Some(last) = self.sections.as_mut().and_then(|s| s.last_mut()) {
            last.end(at);
        }
    }

    /// Whether the current family writes `role`, which had a member (`seen`) or not: the full
    /// profile writes every role, the default one only the roles it names besides those seen.
    fn writes_role(&self, role: &str, seen: bool) -> bool {
        match self.keep {
            Some(Keep::RolesSeenAnd(always)) => seen || always.contains(&role),
            _ => true,
        }
    }

    /// Whether `kind` of the current family's `type` label is excluded.
    fn skips_type(&self, kind: &str) -> bool {
        self.exclude.kind(self.family, kind)
    }

    fn cpu_seconds(&mut self, c: &Collection) {
        self.family(
            "kubevirt_pod_infra_cpu_seconds_total",
            "CPU time of the role's processes, live and exited.",
            Kind::Counter,
        );
        for (role, s) in seen(c) {
            let cpu = s.counters.cpu;
            self.infra(&[("process", role), ("type", "user")], seconds(cpu.user, c));
            self.infra(
                &[("process", role), ("type", "system")],
                seconds(cpu.system, c),
            );
        }
    }

    fn memory_amount(&mut self, c: &Collection, pss: bool) {
        self.family(
            "kubevirt_pod_infra_memory_amount_bytes",
            "Memory of the role's live processes from /proc/<pid>/status. resident=VmRSS, virtual=VmSize, \
             shared=RssFile+RssShmem, dirty=VmData+VmStk (data+stack, NOT dirty pages; name kept from the old tool), \
             anonymous=RssAnon, file=RssFile, shmem=RssShmem, swap=VmSwap, page_tables=VmPTE, proportional_resident=Pss (--pss only).",
            Kind::Gauge,
        );
        for (role, s) in seen(c) {
            let m = &s.memory;
            let types = [
                ("resident", m.resident),
                ("virtual", m.virtual_),
                ("shared", m.shared),
                ("dirty", m.dirty),
                ("anonymous", m.anonymous),
                ("file", m.file),
                ("shmem", m.shmem),
                ("swap", m.swap),
                ("page_tables", m.page_tables),
            ];
            for (kind, bytes) in types {
                if !self.skips_type(kind) {
                    self.infra(&[("process", role), ("type", kind)], bytes as f64);
                }
            }
            if pss && !self.skips_type("proportional_resident") {
                self.infra(
                    &[("process", role), ("type", "proportional_resident")],
                    m.pss.unwrap_or(0) as f64,
                );
            }
        }
    }

    /// Processes, threads and open fds per role.
    fn role_gauges(&mut self, c: &Collection) {
        self.family(
            "kubevirt_pod_infra_processes",
            "Live processes of the role; 0 when none runs.",
            Kind::Gauge,
        );
        for (role, s) in roles(c) {
            if self.writes_role(role, s.seen) {
                self.infra(&[("process", role)], s.processes as f64);
            }
        }
        self.family(
            "kubevirt_pod_infra_threads",
            "Threads of the role's live processes.",
            Kind::Gauge,
        );
        for (role, s) in seen(c) {
            self.infra(&[("process", role)], s.threads as f64);
        }
        self.family(
            "kubevirt_pod_infra_open_fds",
            "Open file descriptors of the role's live processes that could be read (see read errors).",
            Kind::Gauge,
        );
        for (role, s) in seen(c) {
            self.infra(&[("process", role)], s.open_fds as f64);
        }
    }

    /// Counter families with two values of one label.
    fn io_faults_and_switches(&mut self, c: &Collection) {
        type Pick = fn(&ProcessCounters) -> u64;
        type Pair = (
            &'static str,
            &'static str,
            &'static str,
            [(&'static str, Pick); 2],
        );
        let pairs: [Pair; 3] = [
            (
                "kubevirt_pod_infra_io_bytes_total",
                "Storage bytes read and written (/proc/<pid>/io read_bytes, write_bytes).",
                "direction",
                [
                    ("read", |p| p.io_read_bytes),
                    ("write", |p| p.io_write_bytes),
                ],
            ),
            (
                "kubevirt_pod_infra_page_faults_total",
                "Page faults of the role's processes (/proc/<pid>/stat).",
                "type",
                [("major", |p| p.major_faults), ("minor", |p| p.minor_faults)],
            ),
            (
                "kubevirt_pod_infra_context_switches_total",
                "Context switches of each process's main thread (/proc/<pid>/status).",
                "type",
                [
                    ("voluntary", |p| p.voluntary_switches),
                    ("involuntary", |p| p.involuntary_switches),
                ],
            ),
        ];
        for (name, help, label, values) in pairs {
            self.family(name, help, Kind::Counter);
            for (role, s) in seen(c) {
                for (value, pick) in values {
                    self.infra(
                        &[("process", role), (label, value)],
                        pick(&s.counters) as f64,
                    );
                }
            }
        }
    }

    fn start_time_and_restarts(&mut self, c: &Collection) {
        self.family(
            "kubevirt_pod_infra_start_time_seconds",
            "Unix time the oldest live process of the role started.",
            Kind::Gauge,
        );
        for (role, s) in roles(c) {
            if let (Some(t), true) = (s.start_time_seconds, s.processes > 0) {
                self.infra(&[("process", role)], t);
            }
        }
        self.family(
            "kubevirt_pod_infra_process_restarts_total",
            "Processes of the role first seen after the collector's first collection.",
            Kind::Counter,
        );
        for (role, s) in seen(c) {
            self.infra(&[("process", role)], s.restarts as f64);
        }
    }

    fn qemu_thread_cpu_seconds(&mut self, c: &Collection) {
        self.family(
            "kubevirt_pod_infra_qemu_thread_cpu_seconds_total",
            "QEMU CPU time by thread class: vcpu (CPU n/KVM|TCG), iothread (IO *), other.",
            Kind::Counter,
        );
        if !roles(c).any(|(r, s)| r == "qemu" && s.seen) {
            return;
        }
        for class in ThreadClass::ALL {
            let (ticks, class) = (c.qemu_threads[class], class.as_str());
            self.infra(
                &[("process", "qemu"), ("class", class), ("type", "user")],
                seconds(ticks.user, c),
            );
            self.infra(
                &[("process", "qemu"), ("class", class), ("type", "system")],
                seconds(ticks.system, c),
            );
        }
    }

    /// Whether the current family keeps a sample of `labels` and `value`.
    fn keeps(&self, labels: &[(&str, &str)], value: f64) -> bool {
        self.keep.is_some_and(|keep| keep.sample(labels, value))
    }

    /// A sample with `host` and `domain` before `labels`.
    fn infra(&mut self, labels: &[(&str, &str)], value: f64) {
        if self.keeps(labels, value) {
            self.w.sample(true, labels, value);
        }
    }

    fn plain(&mut self, labels: &[(&str, &str)], value: f64) {
        if self.keeps(labels, value) {
            self.w.sample(false, labels, value);
        }
    }
}
