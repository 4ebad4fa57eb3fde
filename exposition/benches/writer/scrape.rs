//! The scrape both encoders write: the collector's families (contract's `FAMILIES`, in its order,
//! with their HELP texts and labels) for a launcher pod where every role but `libvirtd` runs, the
//! full profile, values of the size and shape /proc gives. And the normalisation that lets two
//! expositions of it be compared.

use kube_metrics_exposition::Kind;

/// The labels every `kubevirt_pod_infra_*` sample starts with.
pub const PREFIX: [(&str, &str); 2] = [("host", "worker-0.example.com"), ("domain", "vm-fedora-0")];

// The roles the collector knows, in its order; all but `libvirtd` have live processes.
use kube_metrics_contract::metrics::BUILTIN_ROLES as ROLES;

/// One family and its samples: label values in the order of `labels`, which follow the prefix
/// when `prefixed`.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub prefixed: bool,
    pub labels: &'static [&'static str],
    pub samples: Vec<(Vec<String>, f64)>,
}

/// Numbers that vary from sample to sample, always the same ones.
struct Values(u64);

impl Values {
    fn next(&mut self, below: u64) -> u64 {
        // Knuth's MMIX LCG; the high bits are the random ones.
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below.max(1)
    }

    /// Clock ticks (100 per second) as seconds: `1234.56`.
    fn seconds(&mut self, below: u64) -> f64 {
        self.next(below * 100) as f64 / 100.0
    }

    /// Whole pages, in bytes.
    fn bytes(&mut self, below: u64) -> f64 {
        (self.next(below / 4096) * 4096) as f64
    }
}

/// The 25 families of one scrape.
pub fn families() -> Vec<Family> {
    let mut v = Values(7);
    let live: Vec<&str> = ROLES.into_iter().filter(|r| *r != "libvirtd").collect();
    let per_role = |v: &mut Values, types: &[&str], value: &dyn Fn(&mut Values) -> f64| {
        let mut samples = Vec::new();
        for role in &live {
            for kind in types {
                let mut labels = vec![role.to_string()];
                labels.extend((!kind.is_empty()).then(|| kind.to_string()));
                samples.push((labels, value(v)));
            }
        }
        samples
    };
    let memory = [
        "resident",
        "virtual",
        "shared",
        "dirty",
        "anonymous",
        "file",
        "shmem",
        "swap",
        "page_tables",
    ];
    let start = 1_733_000_000.0;
    let plain =
        |values: &[&str], value: f64| (values.iter().map(|s| s.to_string()).collect(), value);
    vec![
        infra(
            "kubevirt_pod_infra_cpu_seconds_total",
            "CPU time of the role's processes, live and exited.",
            Kind::Counter,
            &["process", "type"],
            per_role(&mut v, &["user", "system"], &|v| v.seconds(5_000)),
        ),
        infra(
            "kubevirt_pod_infra_memory_amount_bytes",
            "Memory of the role's live processes from /proc/<pid>/status. resident=VmRSS, virtual=VmSize, shared=RssFile+RssShmem, dirty=VmData+VmStk (data+stack, NOT dirty pages; name kept from the old tool), anonymous=RssAnon, file=RssFile, shmem=RssShmem, swap=VmSwap, page_tables=VmPTE, proportional_resident=Pss (--pss only).",
            Kind::Gauge,
            &["process", "type"],
            per_role(&mut v, &memory, &|v| v.bytes(3 << 30)),
        ),
        own(
            "kube_metrics_collector_build_info",
            "Build of kube-metrics-collector; always 1.",
            Kind::Gauge,
            &["version", "revision"],
            vec![plain(&["0.1.0", "9630bcf0e1d2"], 1.0)],
        ),
        infra(
            "kubevirt_pod_infra_processes",
            "Live processes of the role; 0 when none runs.",
            Kind::Gauge,
            &["process"],
            ROLES
                .iter()
                .map(|r| {
                    plain(
                        &[r],
                        if *r == "libvirtd" {
                            0.0
                        } else {
                            1.0 + v.next(3) as f64
                        },
                    )
                })
                .collect(),
        ),
        infra(
            "kubevirt_pod_infra_threads",
            "Threads of the role's live processes.",
            Kind::Gauge,
            &["process"],
            per_role(&mut v, &[""], &|v| 1.0 + v.next(40) as f64),
        ),
        infra(
            "kubevirt_pod_infra_open_fds",
            "Open file descriptors of the role's live processes that could be read (see read errors).",
            Kind::Gauge,
            &["process"],
            per_role(&mut v, &[""], &|v| 3.0 + v.next(200) as f64),
        ),
        infra(
            "kubevirt_pod_infra_io_bytes_total",
            "Storage bytes read and written (/proc/<pid>/io read_bytes, write_bytes).",
            Kind::Counter,
            &["process", "direction"],
            per_role(&mut v, &["read", "write"], &|v| v.bytes(40 << 30)),
        ),
        infra(
            "kubevirt_pod_infra_page_faults_total",
            "Page faults of the role's processes (/proc/<pid>/stat).",
            Kind::Counter,
            &["process", "type"],
            per_role(&mut v, &["major", "minor"], &|v| v.next(5_000_000) as f64),
        ),
        infra(
            "kubevirt_pod_infra_context_switches_total",
            "Context switches of each process's main thread (/proc/<pid>/status).",
            Kind::Counter,
            &["process", "type"],
            per_role(&mut v, &["voluntary", "involuntary"], &|v| {
                v.next(90_000_000) as f64
            }),
        ),
        infra(
            "kubevirt_pod_infra_start_time_seconds",
            "Unix time the oldest live process of the role started.",
            Kind::Gauge,
            &["process"],
            per_role(&mut v, &[""], &|v| start + v.seconds(60)),
        ),
        infra(
            "kubevirt_pod_infra_process_restarts_total",
            "Processes of the role first seen after the collector's first collection.",
            Kind::Counter,
            &["process"],
            per_role(&mut v, &[""], &|v| v.next(2) as f64),
        ),
        infra(
            "kubevirt_pod_infra_qemu_thread_cpu_seconds_total",
            "QEMU CPU time by thread class: vcpu (CPU n/KVM|TCG), iothread (IO *), other.",
            Kind::Counter,
            &["process", "class", "type"],
            ["vcpu", "iothread", "other"]
                .iter()
                .flat_map(|c| ["user", "system"].map(|t| (c, t)))
                .map(|(c, t)| plain(&["qemu", c, t], v.seconds(80_000)))
                .collect(),
        ),
        infra(
            "kubevirt_pod_infra_guest_memory_bytes",
            "Guest RAM of QEMU: size from its command line; resident, hugetlb and swap from the last smaps read.",
            Kind::Gauge,
            &["type"],
            vec![
                plain(&["size"], 8_589_934_592.0),
                plain(&["resident"], v.bytes(8 << 30)),
                plain(&["hugetlb"], 0.0),
                plain(&["swap"], 0.0),
            ],
        ),
        infra(
            "kubevirt_pod_infra_qemu_own_memory_bytes",
            "QEMU's resident memory outside guest RAM, from the last smaps read.",
            Kind::Gauge,
            &[],
            vec![plain(&[], v.bytes(300 << 20))],
        ),
        infra(
            "kubevirt_pod_infra_guest_memory_read_timestamp_seconds",
            "Unix time of the last smaps read of QEMU.",
            Kind::Gauge,
            &[],
            vec![plain(&[], start + 86_400.25)],
        ),
        infra(
            "kubevirt_pod_infra_pod_info",
            "1, with the pod's namespace and name from the downward API, and the VMI's name and node as KubeVirt's own series label them.",
            Kind::Gauge,
            &["namespace", "pod", "name", "node"],
            vec![plain(
                &[
                    "tenant-a",
                    "virt-launcher-vm-fedora-0-x7k2p",
                    "vm-fedora-0",
                    "worker-0.example.com",
                ],
                1.0,
            )],
        ),
        infra(
            "kubevirt_pod_infra_memory_overhead_estimate_bytes",
            "KubeVirt's memory overhead estimate (annotation kubevirt.io/memory-overhead-bytes).",
            Kind::Gauge,
            &[],
            vec![plain(&[], 231_735_296.0)],
        ),
        infra(
            "kubevirt_pod_infra_memory_overhead_budget_bytes",
            "KubeVirt's memory overhead estimate for each process (resident memory and page tables), from QEMU's command line.",
            Kind::Gauge,
            &["component", "kubevirt_release", "source"],
            [
                "virt-launcher-monitor",
                "virt-launcher",
                "virtlogd",
                "virtqemud",
                "qemu",
            ]
            .iter()
            .map(|c| plain(&[c, "1.9", "assumed"], v.bytes(100 << 20)))
            .collect(),
        ),
        infra(
            "kubevirt_pod_infra_compute_memory_bytes",
            "Memory request and limit of the compute container, from the downward API; guest: the guest RAM its memory cgroup charges.",
            Kind::Gauge,
            &["type"],
            vec![
                plain(&["request"], 8_833_204_224.0),
                plain(&["limit"], 8_833_204_224.0),
                plain(&["guest"], v.bytes(8 << 30)),
            ],
        ),
        own(
            "kube_metrics_collector_collection_duration_seconds",
            "How long the last read of /proc took.",
            Kind::Gauge,
            &[],
            vec![plain(&[], 0.003_184_205)],
        ),
        own(
            "kube_metrics_collector_read_errors_total",
            "Reads of /proc that failed; the process or field was skipped.",
            Kind::Counter,
            &["kind"],
            ["vanished", "permission", "parse", "io"]
                .iter()
                .map(|k| plain(&[k], v.next(3) as f64))
                .collect(),
        ),
        own(
            "kube_metrics_collector_connections_total",
            "Connections closed by a listener's cap: idle ones evicted for a new one, new ones refused while every connection was busy.",
            Kind::Counter,
            &["listener", "action"],
            ["tcp", "unix"]
                .iter()
                .flat_map(|l| ["evicted", "refused"].map(|a| (l, a)))
                .map(|(l, a)| plain(&[l, a], v.next(5) as f64))
                .collect(),
        ),
        own(
            "kube_metrics_collector_guest_memory_unparsed_arguments",
            "Memory arguments of QEMU's command line that could not be read.",
            Kind::Gauge,
            &[],
            vec![plain(&[], 0.0)],
        ),
        own(
            "kube_metrics_collector_guest_memory_unmatched_backends",
            "Memory backends of QEMU's command line without a mapping in the last smaps read.",
            Kind::Gauge,
            &[],
            vec![plain(&[], 0.0)],
        ),
        own(
            "kube_metrics_collector_guest_memory_unexplained_bytes",
            "Guest RAM in the last smaps read that QEMU's command line does not explain: mappings of backends added at run time, by size, and virtio-mem held beyond its requested size.",
            Kind::Gauge,
            &[],
            vec![plain(&[], 0.0)],
        ),
    ]
}

/// A `kubevirt_pod_infra_*` family: `host` and `domain` first.
fn infra(
    name: &'static str,
    help: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
    samples: Vec<(Vec<String>, f64)>,
) -> Family {
    Family {
        name,
        help,
        kind,
        prefixed: true,
        labels,
        samples,
    }
}

/// One of the collector's own families: no prefix.
fn own(
    name: &'static str,
    help: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
    samples: Vec<(Vec<String>, f64)>,
) -> Family {
    Family {
        prefixed: false,
        ..infra(name, help, kind, labels, samples)
    }
}

/// The lines of an exposition, each sample's labels in name order, sorted: two expositions of the
/// same samples, families and HELP texts normalise to the same lines whatever their order.
pub fn normalise(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .map(|line| match line.starts_with('#') {
            true => line.to_owned(),
            false => sample(line),
        })
        .collect();
    lines.sort();
    lines
}

/// `name{b="2",a="1"} v` -> `name{a="1",b="2"} v`.
fn sample(line: &str) -> String {
    let Some((series, value)) = line.rsplit_once(' ') else {
        return line.to_owned();
    };
    let Some((name, labels)) = series.split_once('{') else {
        return line.to_owned();
    };
    let labels = labels.strip_suffix('}').unwrap_or(labels);
    // Split at the commas outside quotes; a `\"` inside a value does not end it.
    let (mut pairs, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in labels.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                pairs.push(&labels[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    pairs.push(&labels[start..]);
    pairs.sort_unstable();
    format!("{name}{{{}}} {value}", pairs.join(","))
}
