//! Writes the metric families of docs/metrics.md from one `Collection`.

use crate::classify::ThreadClass;
use crate::collect::{Collection, counter};
use crate::proc::ErrorKind;
use kube_metrics_exposition::{Format, Kind, Writer};

/// Version of this build, for `kubevirt_info`.
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Source revision, when the build sets `KMC_REVISION`.
const REVISION: Option<&str> = option_env!("KMC_REVISION");

/// Everything about the pod that labels or per-pod metrics need, besides the collection.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub host: String,
    pub domain: String,
    pub namespace: Option<String>,
    pub pod: Option<String>,
    pub memory_overhead: Option<u64>,
    pub memory_request: Option<u64>,
    pub memory_limit: Option<u64>,
    pub pss: bool,
}

/// One scrape's data, encoded on demand in either format.
#[derive(Clone, Debug)]
pub struct Metrics {
    pub collection: Collection,
    pub scope: Scope,
}

/// Writes samples with `host` and `domain` on every `kubevirt_pod_infra_*` series.
#[derive(Debug)]
struct Builder<'o> {
    w: Writer<'o>,
}

/// Encodes every family of `m` in `format` into `out` (cleared first); families without samples
/// are left out.
pub fn encode(m: &Metrics, format: Format, out: &mut Vec<u8>) {
    out.clear();
    let (c, scope) = (&m.collection, &m.scope);
    let mut w = Writer::new(out, format);
    w.set_prefix(&[
        ("host", scope.host.as_str()),
        ("domain", scope.domain.as_str()),
    ]);
    let mut b = Builder { w };
    let tps = c.ticks_per_second.max(1) as f64;
    let roles = || {
        c.per_role
            .iter()
            .enumerate()
            .map(|(id, sample)| (c.roles.name(id), sample))
    };
    let seen = || roles().filter(|(_, s)| s.seen);

    b.family(
        "kubevirt_pod_infra_cpu_seconds_total",
        "CPU time of the role's processes, live and exited.",
        Kind::Counter,
    );
    for (role, s) in seen() {
        b.infra(
            &[("process", role), ("type", "user")],
            s.counters[counter::CPU_USER] as f64 / tps,
        );
        b.infra(
            &[("process", role), ("type", "system")],
            s.counters[counter::CPU_SYSTEM] as f64 / tps,
        );
    }
    b.family(
        "kubevirt_pod_infra_memory_amount_bytes",
        "Memory of the role's live processes from /proc/<pid>/status. resident=VmRSS, virtual=VmSize, \
         shared=RssFile+RssShmem, dirty=VmData+VmStk (data+stack, NOT dirty pages; name kept from the old tool), \
         anonymous=RssAnon, file=RssFile, shmem=RssShmem, swap=VmSwap, proportional_resident=Pss (--pss only).",
        Kind::Gauge,
    );
    for (role, s) in seen() {
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
        ];
        for (kind, bytes) in types {
            b.infra(&[("process", role), ("type", kind)], bytes as f64);
        }
        if scope.pss {
            b.infra(
                &[("process", role), ("type", "proportional_resident")],
                m.pss.unwrap_or(0) as f64,
            );
        }
    }
    b.family(
        "kubevirt_info",
        "Build of kube-metrics-collector; always 1.",
        Kind::Gauge,
    );
    b.plain(
        &[
            ("version", VERSION),
            ("revision", REVISION.unwrap_or("unknown")),
        ],
        1.0,
    );

    b.family(
        "kubevirt_pod_infra_processes",
        "Live processes of the role; 0 when none runs.",
        Kind::Gauge,
    );
    for (role, s) in roles() {
        b.infra(&[("process", role)], s.processes as f64);
    }
    b.family(
        "kubevirt_pod_infra_threads",
        "Threads of the role's live processes.",
        Kind::Gauge,
    );
    for (role, s) in seen() {
        b.infra(&[("process", role)], s.threads as f64);
    }
    b.family(
        "kubevirt_pod_infra_open_fds",
        "Open file descriptors of the role's live processes that could be read (see read errors).",
        Kind::Gauge,
    );
    for (role, s) in seen() {
        b.infra(&[("process", role)], s.open_fds as f64);
    }
    // Counter families with two values of one label, as (label value, counter index).
    type Pair<'a> = (&'a str, &'a str, &'a str, [(&'a str, usize); 2]);
    let pairs: [Pair<'_>; 3] = [
        (
            "kubevirt_pod_infra_io_bytes_total",
            "Storage bytes read and written (/proc/<pid>/io read_bytes, write_bytes).",
            "direction",
            [("read", counter::IO_READ), ("write", counter::IO_WRITE)],
        ),
        (
            "kubevirt_pod_infra_page_faults_total",
            "Page faults of the role's processes (/proc/<pid>/stat).",
            "type",
            [
                ("major", counter::MAJOR_FAULTS),
                ("minor", counter::MINOR_FAULTS),
            ],
        ),
        (
            "kubevirt_pod_infra_context_switches_total",
            "Context switches of each process's main thread (/proc/<pid>/status).",
            "type",
            [
                ("voluntary", counter::VOLUNTARY),
                ("involuntary", counter::INVOLUNTARY),
            ],
        ),
    ];
    for (name, help, label, values) in pairs {
        b.family(name, help, Kind::Counter);
        for (role, s) in seen() {
            for (value, index) in values {
                b.infra(
                    &[("process", role), (label, value)],
                    s.counters[index] as f64,
                );
            }
        }
    }
    b.family(
        "kubevirt_pod_infra_start_time_seconds",
        "Unix time the oldest live process of the role started.",
        Kind::Gauge,
    );
    for (role, s) in roles() {
        if let (Some(t), true) = (s.start_time_seconds, s.processes > 0) {
            b.infra(&[("process", role)], t);
        }
    }
    b.family(
        "kubevirt_pod_infra_process_restarts_total",
        "Processes of the role first seen after the collector's first collection.",
        Kind::Counter,
    );
    for (role, s) in seen() {
        b.infra(&[("process", role)], s.restarts as f64);
    }
    b.family(
        "kubevirt_pod_infra_qemu_thread_cpu_seconds_total",
        "QEMU CPU time by thread class: vcpu (CPU n/KVM|TCG), iothread (IO *), other.",
        Kind::Counter,
    );
    if roles().any(|(r, s)| r == "qemu" && s.seen) {
        for (class, ticks) in ThreadClass::ALL.iter().zip(c.qemu_threads) {
            let class = class.as_str();
            b.infra(
                &[("process", "qemu"), ("class", class), ("type", "user")],
                ticks[0] as f64 / tps,
            );
            b.infra(
                &[("process", "qemu"), ("class", class), ("type", "system")],
                ticks[1] as f64 / tps,
            );
        }
    }
    b.pod_families(scope);
    b.family(
        "kube_metrics_collector_collection_duration_seconds",
        "How long the last read of /proc took.",
        Kind::Gauge,
    );
    b.plain(&[], c.duration.as_secs_f64());
    b.family(
        "kube_metrics_collector_read_errors_total",
        "Reads of /proc that failed; the process or field was skipped.",
        Kind::Counter,
    );
    for (kind, n) in ErrorKind::ALL.iter().zip(c.errors) {
        b.plain(&[("kind", kind.as_str())], n as f64);
    }
    b.w.finish();
}

// === impl Builder ===

impl Builder<'_> {
    fn family(&mut self, name: &'static str, help: &'static str, kind: Kind) {
        self.w.family(name, help, kind);
    }

    /// A sample with `host` and `domain` before `labels`.
    fn infra(&mut self, labels: &[(&str, &str)], value: f64) {
        self.w.sample(true, labels, value);
    }

    fn plain(&mut self, labels: &[(&str, &str)], value: f64) {
        self.w.sample(false, labels, value);
    }

    fn pod_families(&mut self, scope: &Scope) {
        self.family(
            kube_metrics_contract::metrics::POD_INFO,
            "1, with the pod's namespace and name from the downward API.",
            Kind::Gauge,
        );
        if scope.namespace.is_some() || scope.pod.is_some() {
            let ns = scope.namespace.as_deref().unwrap_or_default();
            let pod = scope.pod.as_deref().unwrap_or_default();
            self.infra(&[("namespace", ns), ("pod", pod)], 1.0);
        }
        self.family(
            "kubevirt_pod_infra_memory_overhead_estimate_bytes",
            "KubeVirt's memory overhead estimate (annotation kubevirt.io/memory-overhead-bytes).",
            Kind::Gauge,
        );
        if let Some(bytes) = scope.memory_overhead {
            self.infra(&[], bytes as f64);
        }
        self.family(
            "kubevirt_pod_infra_compute_memory_bytes",
            "Memory request and limit of the compute container, from the downward API.",
            Kind::Gauge,
        );
        for (kind, value) in [
            ("request", scope.memory_request),
            ("limit", scope.memory_limit),
        ] {
            if let Some(bytes) = value {
                self.infra(&[("type", kind)], bytes as f64);
            }
        }
    }
}
