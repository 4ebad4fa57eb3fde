//! A generated fleet history (a few VMs over a few days) written as OpenMetrics, loaded into a real
//! Prometheus with `promtool tsdb create-blocks-from openmetrics`.
#![allow(dead_code)] // Not every test uses every helper.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const MI: f64 = 1024.0 * 1024.0;
/// Seconds between samples; a multiple of the recommend's default 1m resolution, so the peak
/// search sees every sample.
pub const STEP: i64 = 120;
pub const DAY: i64 = 86_400;

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

/// One infrastructure role's resident memory: a base, a leak per day, an optional spike.
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

    fn at(&self, since_start: i64) -> f64 {
        let leak = self.leak_mi_per_day * since_start as f64 / DAY as f64;
        let spike = match self.spike {
            Some((at, len, extra)) if since_start >= at && since_start < at + len => extra,
            _ => 0.0,
        };
        (self.base_mi + leak + spike) * MI
    }
}

/// One VM of the fleet.
#[derive(Clone, Debug)]
pub struct Vm {
    pub namespace: &'static str,
    pub name: &'static str,
    /// Its launcher pods: name, first and last sample time relative to the fleet's end (≤ 0).
    pub pods: Vec<(&'static str, i64, i64)>,
    pub vcpus: u32,
    pub guest_mi: f64,
    pub estimate_mi: f64,
    /// KubeVirt before 1.9: no pod annotation, only `kubevirt_vmi_launcher_memory_overhead_bytes`.
    pub pre_1_9: bool,
    pub instancetype: Option<&'static str>,
    /// The roles other than QEMU.
    pub roles: Vec<Role>,
    /// QEMU's own memory (outside guest RAM).
    pub qemu_own: Role,
    /// CPU cores: QEMU user, QEMU system, virt-launcher user.
    pub cpu: (f64, f64, f64),
}

/// Every series of `vms`, the last sample of each live pod at `end`.
pub fn generate(vms: &[Vm], end: i64) -> Vec<Series> {
    let mut out = Vec::new();
    for vm in vms {
        for &(pod, from, to) in &vm.pods {
            pod_series(vm, pod, end + from, end + to, &mut out);
        }
        kubevirt_series(vm, end, &mut out);
    }
    out
}

fn pod_series(vm: &Vm, pod: &str, start: i64, stop: i64, out: &mut Vec<Series>) {
    let times: Vec<i64> = (0..)
        .map(|i| start + i * STEP)
        .take_while(|t| *t <= stop)
        .collect();
    let base = |extra: &[(&str, &str)]| -> BTreeMap<String, String> {
        let mut labels: BTreeMap<String, String> = [
            ("namespace", vm.namespace),
            ("pod", pod),
            ("domain", vm.name),
            ("host", "node-1"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        labels.retain(|_, v| !v.is_empty());
        labels
    };
    let mut push = |name: &str, labels: BTreeMap<String, String>, f: &dyn Fn(i64) -> f64| {
        out.push(Series {
            name: name.to_owned(),
            labels,
            points: times.iter().map(|t| (*t, f(*t - start))).collect(),
        });
    };
    push(
        "kubevirt_pod_infra_pod_info",
        base(&[("name", vm.name), ("node", "node-1")]),
        &|_| 1.0,
    );
    let guest_resident = vm.guest_mi * 0.5 * MI;
    for role in &vm.roles {
        push(
            "kubevirt_pod_infra_memory_amount_bytes",
            base(&[("process", role.name), ("type", "resident")]),
            &|s| role.at(s),
        );
        push(
            "kubevirt_pod_infra_memory_amount_bytes",
            base(&[("process", role.name), ("type", "page_tables")]),
            &|_| 0.5 * MI,
        );
    }
    let own = &vm.qemu_own;
    push(
        "kubevirt_pod_infra_memory_amount_bytes",
        base(&[("process", "qemu"), ("type", "resident")]),
        &|s| own.at(s) + guest_resident,
    );
    // Guest page tables: a quarter of KubeVirt's memory / 512.
    let qemu_pt = vm.guest_mi / 2048.0 * MI;
    push(
        "kubevirt_pod_infra_memory_amount_bytes",
        base(&[("process", "qemu"), ("type", "page_tables")]),
        &|_| qemu_pt,
    );
    push(
        "kubevirt_pod_infra_qemu_own_memory_bytes",
        base(&[("process", "qemu")]),
        &|s| own.at(s),
    );
    push(
        "kubevirt_pod_infra_guest_memory_bytes",
        base(&[("process", "qemu"), ("type", "size")]),
        &|_| vm.guest_mi * MI,
    );
    push(
        "kubevirt_pod_infra_guest_memory_bytes",
        base(&[("process", "qemu"), ("type", "resident")]),
        &|_| guest_resident,
    );
    if !vm.pre_1_9 {
        push(
            "kubevirt_pod_infra_memory_overhead_estimate_bytes",
            base(&[]),
            &|_| vm.estimate_mi * MI,
        );
    }
    let (qemu_user, qemu_system, launcher_user) = vm.cpu;
    push(
        "kubevirt_pod_infra_cpu_seconds_total",
        base(&[("process", "qemu"), ("type", "user")]),
        &|s| 1000.0 + qemu_user * s as f64,
    );
    push(
        "kubevirt_pod_infra_cpu_seconds_total",
        base(&[("process", "qemu"), ("type", "system")]),
        &|s| 500.0 + qemu_system * s as f64,
    );
    push(
        "kubevirt_pod_infra_cpu_seconds_total",
        base(&[("process", "virt-launcher"), ("type", "user")]),
        &|s| 10.0 + launcher_user * s as f64,
    );
}

/// KubeVirt's own series of the VM, with `name` for the VMI, over its whole life.
fn kubevirt_series(vm: &Vm, end: i64, out: &mut Vec<Series>) {
    let start = end + vm.pods.iter().map(|p| p.1).min().unwrap_or(0);
    let times: Vec<i64> = (0..)
        .map(|i| start + i * STEP)
        .take_while(|t| *t <= end)
        .collect();
    let labels = |extra: &[(&str, &str)]| -> BTreeMap<String, String> {
        [
            ("namespace", vm.namespace),
            ("name", vm.name),
            ("node", "node-1"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    };
    let mut push = |name: &str, labels: BTreeMap<String, String>, value: f64| {
        out.push(Series {
            name: name.to_owned(),
            labels,
            points: times
                .iter()
                .enumerate()
                .map(|(i, t)| (*t, value + i as f64))
                .collect(),
        });
    };
    for id in 0..vm.vcpus {
        push(
            "kubevirt_vmi_vcpu_seconds_total",
            labels(&[("id", &id.to_string()), ("state", "running")]),
            0.0,
        );
    }
    if vm.pre_1_9 {
        let series = Series {
            name: "kubevirt_vmi_launcher_memory_overhead_bytes".into(),
            labels: labels(&[]),
            points: times.iter().map(|t| (*t, vm.estimate_mi * MI)).collect(),
        };
        out.push(series);
    }
    let instancetype = vm.instancetype.unwrap_or("<none>");
    out.push(Series {
        name: "kubevirt_vmi_info".into(),
        labels: labels(&[("instance_type", instancetype), ("phase", "running")]),
        points: times.iter().map(|t| (*t, 1.0)).collect(),
    });
}

/// OpenMetrics text: series grouped by metric name, each in time order, `# EOF` last.
pub fn openmetrics(series: &[Series]) -> String {
    let mut sorted: Vec<&Series> = series.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = String::new();
    for s in sorted {
        let labels: Vec<String> = s
            .labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        let head = format!("{}{{{}}}", s.name, labels.join(","));
        for (t, v) in &s.points {
            out.push_str(&format!("{head} {v} {t}\n"));
        }
    }
    out.push_str("# EOF\n");
    out
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
        std::fs::write(&input, openmetrics(series)).expect("write OpenMetrics");
        let data = dir.join("data");
        let status = Command::new("promtool")
            .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
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
            .arg("--storage.tsdb.retention.time=30d")
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
