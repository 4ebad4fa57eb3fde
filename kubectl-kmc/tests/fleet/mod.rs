//! Generated fleet histories: the collector's series as Prometheus scrapes them (one target per
//! pod, or two), KubeVirt's (`kubevirt_vmi_info` naming each VMI's launcher pod, which vouches
//! for it), kube-state-metrics' for pods that ended, written as OpenMetrics and loaded into a
//! real Prometheus with `promtool tsdb create-blocks-from openmetrics`. A VM that is not
//! `vouched` is a tenant's pod posing as one: the collector's families only, no KubeVirt series.
#![allow(dead_code)] // Not every test uses every helper.

pub mod expect;
pub mod golden;

use std::collections::BTreeMap;
use std::io::{BufWriter, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kube_metrics_contract::estimate::{self, Component, Shape};
use kube_metrics_contract::metrics::Profile;

pub const MI: f64 = 1024.0 * 1024.0;
/// Seconds between two scrapes of a target: a rate over 5m sees at least two.
pub const STEP: i64 = 120;
pub const HOUR: i64 = 3600;
pub const DAY: i64 = 86_400;
/// 2026-06-01T00:00Z: histories end at fixed instants, so that the golden outputs can print
/// times. Prometheus keeps blocks by their age relative to the newest block, not to the clock.
pub const END: i64 = 1_780_272_000;
/// The second target's scrapes come this much later than the first's.
const SECOND_TARGET_LAG: i64 = 30;
/// Resident page tables of every process but QEMU, Mi.
pub const PROCESS_PAGE_TABLES_MI: f64 = 0.5;
/// QEMU's page tables beyond those of guest RAM, Mi (the 204 kB measured without guest RAM).
pub const QEMU_OWN_PAGE_TABLES_MI: f64 = 0.2;

/// One series and its points, oldest first.
#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(i64, f64)>,
}

impl Series {
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

/// One process role's resident memory: a base, a leak per day since its pod started, a spike.
#[derive(Clone, Debug)]
pub struct Role {
    pub name: &'static str,
    pub base_mi: f64,
    pub leak_mi_per_day: f64,
    /// Seconds after the pod's start, length in seconds, extra Mi.
    pub spike: Option<(i64, i64, f64)>,
}

impl Role {
    pub fn steady(name: &'static str, base_mi: f64) -> Self {
        Self {
            name,
            base_mi,
            leak_mi_per_day: 0.0,
            spike: None,
        }
    }

    /// Mi at `since` seconds after the pod started.
    pub fn at(&self, since: i64) -> f64 {
        let leak = self.leak_mi_per_day * since as f64 / DAY as f64;
        let spike = match self.spike {
            Some((at, len, extra)) if since >= at && since < at + len => extra,
            _ => 0.0,
        };
        self.base_mi + leak + spike
    }
}

/// How a pod's history ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Still running at the fleet's end.
    Running,
    /// Its compute container was OOM-killed after its last scrape.
    OomKilled,
    /// It completed, e.g. the source of a migration.
    Completed,
}

/// One launcher pod: its first and last scrape relative to the fleet's end (≤ 0).
#[derive(Clone, Debug)]
pub struct Pod {
    pub name: String,
    pub from: i64,
    pub to: i64,
    pub ending: Ending,
    /// The pod's own QEMU (a restarted VM's QEMU starts afresh; a migration target's differs).
    pub qemu_own: Role,
}

/// One VM of a fleet.
#[derive(Clone, Debug)]
pub struct Vm {
    pub namespace: String,
    pub name: String,
    pub pods: Vec<Pod>,
    pub vcpus: u32,
    pub guest_mi: f64,
    /// Share of guest RAM the guest touched: in QEMU's RSS and charged to the cgroup.
    pub touched: f64,
    pub hugepages: bool,
    pub video: bool,
    pub tpm: bool,
    /// KubeVirt's estimate: the sum of the budgets unless a test sets it.
    pub estimate_mi: f64,
    /// The pod annotation, as the collector exports it (KubeVirt 1.9+).
    pub annotation: bool,
    /// virt-controller's `kubevirt_vmi_launcher_memory_overhead_bytes`.
    pub kubevirt_metric: bool,
    pub instancetype: Option<&'static str>,
    /// Every role but QEMU.
    pub roles: Vec<Role>,
    /// Cores: QEMU user, QEMU system, virt-launcher user.
    pub cpu: (f64, f64, f64),
    /// Prometheus targets that scrape each of its pods.
    pub targets: usize,
    /// KubeVirt reports it (`kubevirt_vmi_info` and the rest); false for a pod posing as a VM.
    pub vouched: bool,
}

impl Vm {
    /// A VM with the usual roles, one pod over `history` seconds up to the end, the estimate the
    /// budgets' sum.
    pub fn new(namespace: &str, name: &str, vcpus: u32, guest_mi: f64, history: i64) -> Self {
        let mut vm = Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            pods: vec![Pod {
                name: format!("virt-launcher-{name}-x1"),
                from: -history,
                to: 0,
                ending: Ending::Running,
                qemu_own: Role::steady("qemu", 90.0),
            }],
            vcpus,
            guest_mi,
            touched: 0.8,
            hugepages: false,
            video: true,
            tpm: false,
            estimate_mi: 0.0,
            annotation: true,
            kubevirt_metric: false,
            instancetype: None,
            roles: vec![
                Role::steady("virt-launcher-monitor", 22.0),
                Role::steady("virt-launcher", 95.0),
                Role::steady("virtlogd", 18.0),
                Role::steady("virtqemud", 38.0),
            ],
            cpu: (0.12, 0.02, 0.01),
            targets: 1,
            vouched: true,
        };
        vm.estimate_mi = vm.budget_sum_mi();
        vm
    }

    pub fn shape(&self) -> Shape {
        Shape {
            memory_request: (self.guest_mi * MI) as u64,
            vcpus: self.vcpus,
            video: self.video,
            tpm: self.tpm,
            arm64: false,
        }
    }

    /// The collector's budgets, KubeVirt 1.9's constants (assumed).
    pub fn budgets(&self) -> Vec<(Component, f64)> {
        let constants = estimate::ASSUMED_RELEASE
            .constants()
            .expect("1.9 has constants");
        estimate::budgets(&self.shape(), constants)
            .into_iter()
            .map(|(c, b)| (c, b as f64))
            .collect()
    }

    pub fn budget_sum_mi(&self) -> f64 {
        self.budgets().iter().map(|(_, b)| b).sum::<f64>() / MI
    }

    /// Guest RAM in QEMU's RSS, Mi: none on hugetlbfs.
    pub fn guest_resident_mi(&self) -> f64 {
        if self.hugepages {
            0.0
        } else {
            self.guest_mi * self.touched
        }
    }

    /// Guest RAM the compute container's cgroup charges, Mi: hugetlbfs pages are charged elsewhere.
    pub fn guest_charged_mi(&self) -> f64 {
        if self.hugepages { 0.0 } else { self.guest_mi }
    }

    /// The compute container's memory limit, Mi: KubeVirt's guest RAM + estimate.
    pub fn limit_mi(&self) -> f64 {
        self.guest_charged_mi() + self.estimate_mi
    }

    /// QEMU's page tables, Mi: those of the touched guest RAM (8 bytes a 4 KiB page) and its own.
    pub fn qemu_page_tables_mi(&self) -> f64 {
        self.guest_resident_mi() / 512.0 + QEMU_OWN_PAGE_TABLES_MI
    }

    /// The measured overhead of `pod` at `since` seconds after its start, Mi, as the recording rule
    /// sums it: every role's resident memory and page tables, QEMU's own memory and page tables.
    pub fn overhead_mi(&self, pod: &Pod, since: i64) -> f64 {
        let roles: f64 = self
            .roles
            .iter()
            .map(|r| r.at(since) + PROCESS_PAGE_TABLES_MI)
            .sum();
        roles + pod.qemu_own.at(since) + self.qemu_page_tables_mi()
    }

    /// One component's overhead, Mi, as `overhead_mi` counts it.
    pub fn component_mi(&self, pod: &Pod, component: &str, since: i64) -> f64 {
        match component {
            "qemu" => pod.qemu_own.at(since) + self.qemu_page_tables_mi(),
            name => self
                .roles
                .iter()
                .find(|r| r.name == name)
                .map_or(0.0, |r| r.at(since) + PROCESS_PAGE_TABLES_MI),
        }
    }

    /// Every scrape time of `pod` by target 0, absolute.
    pub fn times(&self, pod: &Pod, end: i64) -> Vec<i64> {
        scrape_times(end + pod.from, end + pod.to, 0)
    }
}

fn scrape_times(start: i64, stop: i64, lag: i64) -> Vec<i64> {
    (0..)
        .map(|i| start + lag + i * STEP)
        .take_while(|t| *t <= stop)
        .collect()
}

/// Every series of `vms`, their histories ending at `end`, and KubeVirt's `kubevirt_info`.
pub fn generate(vms: &[Vm], end: i64) -> Vec<Series> {
    let mut out = Vec::new();
    for vm in vms {
        for pod in &vm.pods {
            for target in 0..vm.targets {
                pod_series(vm, pod, target, end, &mut out);
            }
            pod_ending(vm, pod, end, &mut out);
        }
        if vm.vouched {
            kubevirt_series(vm, end, &mut out);
        }
    }
    let from = vms
        .iter()
        .flat_map(|v| &v.pods)
        .map(|p| end + p.from)
        .min()
        .unwrap_or(end);
    out.push(Series {
        name: "kubevirt_info".into(),
        labels: labels(&[
            ("namespace", "kubevirt"),
            ("pod", "virt-handler-abcde"),
            ("kubeversion", "v1.9.0"),
            ("goversion", "go1.24.4"),
            ("job", KUBEVIRT_JOB),
        ]),
        points: scrape_times(from, end, 0)
            .into_iter()
            .map(|t| (t, 1.0))
            .collect(),
    });
    out
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// What one target scraped from one pod's collector.
fn pod_series(vm: &Vm, pod: &Pod, target: usize, end: i64, out: &mut Vec<Series>) {
    let start = end + pod.from;
    let times = scrape_times(start, end + pod.to, target as i64 * SECOND_TARGET_LAG);
    let instance = format!("10.0.0.{}:9400", 10 + target);
    let job = ["kube-metrics-collector", "kube-metrics-collector-relay"][target.min(1)];
    let base = |extra: &[(&str, &str)]| -> BTreeMap<String, String> {
        let fixed = [
            ("namespace", vm.namespace.as_str()),
            ("pod", pod.name.as_str()),
            ("domain", vm.name.as_str()),
            ("host", "node-1"),
            ("instance", instance.as_str()),
            ("job", job),
        ];
        labels(&[&fixed[..], extra].concat())
    };
    // Only what the collector's default metrics profile writes: `kubectl kmc` must need nothing
    // else (the goldens hold it to that), and the full profile only adds series.
    let mut push = |name: &str, labels: BTreeMap<String, String>, f: &dyn Fn(i64) -> f64| {
        let own: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let kept = Profile::Default
            .keeps(name)
            .is_some_and(|keep| keep.sample(&own, f(0)));
        if kept {
            out.push(Series {
                name: name.to_owned(),
                labels,
                points: times.iter().map(|t| (*t, f(*t - start))).collect(),
            });
        }
    };
    push(
        "kubevirt_pod_infra_pod_info",
        base(&[("name", &vm.name), ("node", "node-1")]),
        &|_| 1.0,
    );
    let amount = "kubevirt_pod_infra_memory_amount_bytes";
    for role in &vm.roles {
        push(
            amount,
            base(&[("process", role.name), ("type", "resident")]),
            &|s| role.at(s) * MI,
        );
        push(
            amount,
            base(&[("process", role.name), ("type", "page_tables")]),
            &|_| PROCESS_PAGE_TABLES_MI * MI,
        );
    }
    let own = &pod.qemu_own;
    let guest = vm.guest_resident_mi();
    push(
        amount,
        base(&[("process", "qemu"), ("type", "resident")]),
        &|s| (own.at(s) + guest) * MI,
    );
    push(
        amount,
        base(&[("process", "qemu"), ("type", "page_tables")]),
        &|_| vm.qemu_page_tables_mi() * MI,
    );
    push(
        "kubevirt_pod_infra_qemu_own_memory_bytes",
        base(&[]),
        &|s| own.at(s) * MI,
    );
    let hugetlb = if vm.hugepages { vm.guest_mi } else { 0.0 };
    for (kind, mi) in [
        ("size", vm.guest_mi),
        ("resident", guest),
        ("hugetlb", hugetlb),
        ("swap", 0.0),
    ] {
        push(
            "kubevirt_pod_infra_guest_memory_bytes",
            base(&[("type", kind)]),
            &|_| mi * MI,
        );
    }
    if vm.annotation {
        push(
            "kubevirt_pod_infra_memory_overhead_estimate_bytes",
            base(&[]),
            &|_| vm.estimate_mi * MI,
        );
    }
    for (kind, mi) in [
        ("request", vm.limit_mi()),
        ("limit", vm.limit_mi()),
        ("guest", vm.guest_charged_mi()),
    ] {
        push(
            "kubevirt_pod_infra_compute_memory_bytes",
            base(&[("type", kind)]),
            &|_| mi * MI,
        );
    }
    for (component, bytes) in vm.budgets() {
        push(
            "kubevirt_pod_infra_memory_overhead_budget_bytes",
            base(&[
                ("component", component.name()),
                ("kubevirt_release", "1.9"),
                ("source", "assumed"),
            ]),
            &|_| bytes,
        );
    }
    let (qemu_user, qemu_system, launcher_user) = vm.cpu;
    let counters = [
        ("qemu", "user", 1000.0, qemu_user),
        ("qemu", "system", 500.0, qemu_system),
        ("virt-launcher", "user", 10.0, launcher_user),
    ];
    for (process, kind, at_start, cores) in counters {
        push(
            "kubevirt_pod_infra_cpu_seconds_total",
            base(&[("process", process), ("type", kind)]),
            &|s| at_start + cores * s as f64,
        );
    }
    // QEMU's user time by thread class: four fifths in the vCPUs.
    for (class, share) in [("vcpu", 0.8), ("other", 0.2)] {
        push(
            "kubevirt_pod_infra_qemu_thread_cpu_seconds_total",
            base(&[("process", "qemu"), ("class", class), ("type", "user")]),
            &|s| (1000.0 + qemu_user * s as f64) * share,
        );
    }
}

/// kube-state-metrics' word on a pod that ended: its compute container's reason, from a scrape
/// after the end until the fleet's end (the pod object stays).
fn pod_ending(vm: &Vm, pod: &Pod, end: i64, out: &mut Vec<Series>) {
    let reason = match pod.ending {
        Ending::Running => return,
        Ending::OomKilled => "OOMKilled",
        Ending::Completed => "Completed",
    };
    out.push(Series {
        name: "kube_pod_container_status_terminated_reason".into(),
        labels: labels(&[
            ("namespace", &vm.namespace),
            ("pod", &pod.name),
            ("container", "compute"),
            ("reason", reason),
            ("job", "kube-state-metrics"),
        ]),
        points: scrape_times(end + pod.to + SECOND_TARGET_LAG, end, 0)
            .into_iter()
            .map(|t| (t, 1.0))
            .collect(),
    });
}

/// KubeVirt's scrape job, as virt-operator's ServiceMonitor names it.
pub const KUBEVIRT_JOB: &str = "kubevirt-prometheus-metrics";

/// KubeVirt's own series of the VM, with `name` for the VMI, over its whole life; its
/// `kubevirt_vmi_info` names each launcher pod (`vmi_pod`) while that pod runs.
fn kubevirt_series(vm: &Vm, end: i64, out: &mut Vec<Series>) {
    let start = end + vm.pods.iter().map(|p| p.from).min().unwrap_or(0);
    let times = scrape_times(start, end, 0);
    let base = |extra: &[(&str, &str)]| {
        let fixed = [
            ("namespace", vm.namespace.as_str()),
            ("name", vm.name.as_str()),
            ("node", "node-1"),
            ("job", KUBEVIRT_JOB),
        ];
        labels(&[&fixed[..], extra].concat())
    };
    for pod in &vm.pods {
        out.push(Series {
            name: "kubevirt_vmi_info".into(),
            labels: base(&[
                ("instance_type", vm.instancetype.unwrap_or("<none>")),
                ("phase", "running"),
                ("vmi_pod", &pod.name),
            ]),
            points: scrape_times(end + pod.from, end + pod.to, 0)
                .into_iter()
                .map(|t| (t, 1.0))
                .collect(),
        });
    }
    let mut push = |name: &str, labels, f: &dyn Fn(usize) -> f64| {
        out.push(Series {
            name: name.to_owned(),
            labels,
            points: times.iter().enumerate().map(|(i, t)| (*t, f(i))).collect(),
        });
    };
    for id in 0..vm.vcpus {
        push(
            "kubevirt_vmi_vcpu_seconds_total",
            base(&[("id", &id.to_string()), ("state", "running")]),
            &|i| i as f64,
        );
    }
    if vm.kubevirt_metric {
        push(
            "kubevirt_vmi_launcher_memory_overhead_bytes",
            base(&[]),
            &|_| vm.estimate_mi * MI,
        );
    }
}

/// OpenMetrics text: series grouped by metric name, each in time order, `# EOF` last.
pub fn write_openmetrics(series: &[Series], path: &Path) -> std::io::Result<()> {
    let mut sorted: Vec<&Series> = series.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    for s in sorted {
        // OpenMetrics escapes `\`, `"` and newlines in label values; anything else passes raw,
        // escape sequences included, as a pod could send them.
        let labels: Vec<String> = s
            .labels
            .iter()
            .map(|(k, v)| {
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                format!("{k}=\"{v}\"")
            })
            .collect();
        let head = format!("{}{{{}}}", s.name, labels.join(","));
        for (t, v) in &s.points {
            writeln!(out, "{head} {v} {t}")?;
        }
    }
    writeln!(out, "# EOF")?;
    out.flush()
}

/// Compares `got` with `tests/golden/<name>`, or rewrites the file when `KMC_UPDATE_GOLDEN` is set.
pub fn golden_file(name: &str, got: &str) {
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{name}"));
    if std::env::var_os("KMC_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, got).expect("write golden");
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(got, want, "{name} (KMC_UPDATE_GOLDEN=1 rewrites it)");
}

/// A real Prometheus serving TSDB blocks made from an OpenMetrics file; killed on drop.
#[derive(Debug)]
pub struct Prometheus {
    pub addr: SocketAddr,
    child: Child,
}

impl Prometheus {
    pub fn load(series: &[Series], dir: &Path) -> Prometheus {
        let input = dir.join("fleet.om");
        write_openmetrics(series, &input).expect("write OpenMetrics");
        let data = dir.join("data");
        let status = Command::new("promtool")
            .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
            // Fewer, larger blocks: Prometheus opens them faster.
            .arg("--max-block-duration=24h")
            .arg(&input)
            .arg(&data)
            .status()
            .expect("promtool: run scripts/setup");
        assert!(status.success(), "promtool create-blocks-from failed");
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, "scrape_configs: []\n").expect("config");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg("--storage.tsdb.retention.time=90d")
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus: run scripts/setup");
        let prometheus = Prometheus { addr, child };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !prometheus.ready() {
            let log = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
            assert!(
                Instant::now() < deadline,
                "Prometheus not ready in 60s:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        prometheus
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn ready(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(self.addr) else {
            return false;
        };
        let request = format!("GET /-/ready HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr);
        let mut response = String::new();
        stream.write_all(request.as_bytes()).is_ok()
            && stream.read_to_string(&mut response).is_ok()
            && response.starts_with("HTTP/1.0 200") | response.starts_with("HTTP/1.1 200")
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // Only the child this test started.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
