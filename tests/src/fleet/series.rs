//! The series of a [`Fleet`]: what the collector, KubeVirt's virt-controller, cAdvisor,
//! kube-state-metrics, the relays and the webhook publish, and how each value evolves, written
//! as OpenMetrics sample lines.

use super::{Estimate, Fleet, HISTORY, INFRA_ROLES, SYSTEM_NAMESPACE, Vm};
use super::{GIB, LAUNCHER_CORES, QEMU_OTHER_CORES, VCPU_CORES};
use crate::exposition::series_text;
use kube_metrics_contract::metrics::Profile;
use std::fmt::Write as _;

pub(super) fn system_series(fleet: &Fleet) -> Vec<Series> {
    let mut all = Vec::new();
    for (pod, counts) in &fleet.relays {
        for (state, count) in ["ok", "failed", "timeout"].iter().zip(counts) {
            let labels = system_labels(pod, &[("state", state)]);
            all.push(Series::constant(
                "kube_metrics_collector_relay_targets",
                labels,
                f64::from(*count),
            ));
        }
    }
    // relay-node-2's one timing-out socket, at every 30-second scrape.
    all.push(Series {
        name: "kube_metrics_collector_relay_target_failures_total",
        labels: system_labels("relay-node-2", &[("reason", "timeout")]),
        shape: Shape::Linear {
            value: HISTORY as f64 / 30.0,
            slope: 1.0 / 30.0,
        },
        stops_ago: None,
        starts_ago: None,
    });
    let labels = system_labels(
        "kube-metrics-webhook-5d9f",
        &[("job", "kube-metrics-webhook")],
    );
    all.push(Series::constant("up", labels, 1.0));
    let expiry = (fleet.end + 60 * 86_400) as f64;
    let labels = system_labels("kube-metrics-webhook-5d9f", &[]);
    all.push(Series::constant(
        "kube_metrics_webhook_certificate_expiry_timestamp_seconds",
        labels,
        expiry,
    ));
    all
}

fn system_labels(pod: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut labels = vec![
        ("namespace".to_owned(), SYSTEM_NAMESPACE.to_owned()),
        ("pod".to_owned(), pod.to_owned()),
    ];
    labels.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    labels
}

/// How a series' value evolves over the history.
#[derive(Clone, Copy, Debug)]
pub(super) enum Shape {
    Constant(f64),
    /// `value` at the end, `slope` per second before it (a gauge that grows, or a counter).
    Linear {
        value: f64,
        slope: f64,
    },
    /// 0 until `ago` seconds before the end, then 1.
    StepUp {
        ago: i64,
    },
}

#[derive(Clone, Debug)]
pub(super) struct Series {
    name: &'static str,
    labels: Vec<(String, String)>,
    shape: Shape,
    /// Seconds before the end after which the series has no more samples.
    stops_ago: Option<i64>,
    /// Seconds before the end before which it has none yet.
    starts_ago: Option<i64>,
}

impl Shape {
    /// The value `ago` seconds before the end.
    fn at(self, ago: i64) -> f64 {
        match self {
            Self::Constant(value) => value,
            Self::Linear { value, slope } => value - slope * ago as f64,
            Self::StepUp { ago: at } => f64::from(u8::from(ago <= at)),
        }
    }
}

impl Series {
    fn constant(name: &'static str, labels: Vec<(String, String)>, value: f64) -> Self {
        Self {
            name,
            labels,
            shape: Shape::Constant(value),
            stops_ago: None,
            starts_ago: None,
        }
    }

    fn value(&self, ago: i64) -> f64 {
        self.shape.at(ago)
    }

    pub(super) fn write(&self, out: &mut String, times: &[i64], end: i64) {
        let series = series_text(self.name, self.labels.iter().map(|(k, v)| (k, v)));
        for &time in times {
            let ago = end - time;
            if self.stops_ago.is_some_and(|stop| ago < stop) {
                break;
            }
            if self.starts_ago.is_some_and(|start| ago > start) {
                continue;
            }
            // Writing to a String cannot fail.
            let _ = writeln!(out, "{series} {} {time}", self.value(ago));
        }
    }
}

/// Every series the collector, KubeVirt, cAdvisor and kube-state-metrics publish for one VM: of
/// its pod, and of the pod it ran in on another node before a migration.
pub(super) fn vm_series(vm: &Vm) -> Vec<Series> {
    let current = Pod {
        name: vm.pod(),
        node: vm.node,
        starts_ago: vm.migrated_ago,
        stops_ago: vm.oom_killed_ago,
    };
    let mut all = pod_series(vm, &current);
    if let (Some(name), Some(at)) = (vm.source_pod(), vm.migrated_ago) {
        let source = Pod {
            name,
            node: "node-1",
            starts_ago: None,
            stops_ago: Some(at),
        };
        all.extend(pod_series(vm, &source));
    }
    all.extend(controller_series(vm));
    all
}

/// One launcher pod of a VM and when it ran.
struct Pod {
    name: String,
    node: &'static str,
    starts_ago: Option<i64>,
    stops_ago: Option<i64>,
}

fn pod_series(vm: &Vm, pod: &Pod) -> Vec<Series> {
    let mut collector = Collector::new(vm, pod);
    collector.memory();
    collector.cpu_and_health();
    let mut all: Vec<Series> = if vm.duplicated {
        ["10.0.0.7:9464", "10.0.0.7:9465"]
            .iter()
            .flat_map(|instance| {
                collector.series.iter().map(move |s| {
                    let mut s = s.clone();
                    s.labels
                        .push(("instance".to_owned(), (*instance).to_owned()));
                    s
                })
            })
            .collect()
    } else {
        collector.series
    };
    all.extend(others(vm, pod));
    all
}

/// A metric name, its extra labels and a number (a value, or a rate per second).
type Row = (&'static str, &'static [(&'static str, &'static str)], f64);

/// One VM's collector series, labelled as the collector labels them.
struct Collector<'a> {
    vm: &'a Vm,
    pod: &'a Pod,
    series: Vec<Series>,
}

impl<'a> Collector<'a> {
    fn new(vm: &'a Vm, pod: &'a Pod) -> Self {
        Self {
            vm,
            pod,
            series: Vec::new(),
        }
    }

    /// Adds series `name` with `extra` labels, if the collector's default metrics profile writes
    /// it: the rules and dashboards must need nothing else.
    fn push(&mut self, name: &'static str, extra: &[(&str, &str)], shape: Shape) {
        let value = shape.at(0);
        let kept = Profile::Default
            .keeps(name)
            .is_some_and(|keep| keep.sample(extra, value));
        if !kept {
            return;
        }
        let vm = self.vm;
        let mut labels = vec![
            ("namespace", vm.namespace),
            ("pod", self.pod.name.as_str()),
            ("domain", vm.name),
            ("host", self.pod.node),
        ];
        labels.extend_from_slice(extra);
        let labels = labels
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        self.series.push(Series {
            name,
            labels,
            shape,
            stops_ago: self.pod.stops_ago,
            starts_ago: self.pod.starts_ago,
        });
    }

    fn memory(&mut self) {
        let vm = self.vm;
        let info = [("name", vm.name), ("node", self.pod.node)];
        self.push("kubevirt_pod_infra_pod_info", &info, Shape::Constant(1.0));
        for (role, resident) in INFRA_ROLES.iter().zip(vm.infra) {
            let shape = if *role == "virt-launcher" && vm.leak_per_day > 0.0 {
                Shape::Linear {
                    value: vm.launcher_at(0),
                    slope: vm.leak_per_day / 86_400.0,
                }
            } else {
                Shape::Constant(resident)
            };
            let labels = [("process", *role), ("type", "resident")];
            self.push("kubevirt_pod_infra_memory_amount_bytes", &labels, shape);
        }
        if let Some(swtpm) = vm.swtpm {
            let labels = [("process", "swtpm"), ("type", "resident")];
            self.push(
                "kubevirt_pod_infra_memory_amount_bytes",
                &labels,
                Shape::Constant(swtpm),
            );
        }
        for (component, budget) in vm.budgets() {
            let labels = [
                ("component", component),
                ("kubevirt_release", "1.9"),
                ("source", "assumed"),
            ];
            self.push(
                "kubevirt_pod_infra_memory_overhead_budget_bytes",
                &labels,
                Shape::Constant(budget),
            );
        }
        let hugetlb = if vm.hugepages { vm.guest_size } else { 0.0 };
        let guest_request = if vm.hugepages {
            0.0
        } else {
            vm.guest_size.min(2.0 * GIB)
        };
        let constants: [Row; 10] = [
            (
                "kubevirt_pod_infra_memory_amount_bytes",
                &[("process", "qemu"), ("type", "resident")],
                vm.qemu_resident(),
            ),
            (
                "kubevirt_pod_infra_memory_amount_bytes",
                &[("process", "qemu"), ("type", "page_tables")],
                vm.page_tables,
            ),
            ("kubevirt_pod_infra_qemu_own_memory_bytes", &[], vm.qemu_own),
            (
                "kubevirt_pod_infra_guest_memory_bytes",
                &[("type", "size")],
                vm.guest_size,
            ),
            (
                "kubevirt_pod_infra_guest_memory_bytes",
                &[("type", "resident")],
                vm.guest_resident,
            ),
            (
                "kubevirt_pod_infra_guest_memory_bytes",
                &[("type", "hugetlb")],
                hugetlb,
            ),
            (
                "kubevirt_pod_infra_compute_memory_bytes",
                &[("type", "request")],
                guest_request + vm.estimate,
            ),
            (
                "kubevirt_pod_infra_compute_memory_bytes",
                &[("type", "limit")],
                vm.limit,
            ),
            (
                "kubevirt_pod_infra_compute_memory_bytes",
                &[("type", "guest")],
                vm.guest_charged(),
            ),
            (
                "kube_metrics_collector_collection_duration_seconds",
                &[],
                0.002,
            ),
        ];
        for (name, labels, value) in constants {
            self.push(name, labels, Shape::Constant(value));
        }
        if vm.estimate_source != Estimate::ControllerMetric {
            let estimate = Shape::Constant(vm.estimate);
            self.push(
                "kubevirt_pod_infra_memory_overhead_estimate_bytes",
                &[],
                estimate,
            );
        }
    }

    fn cpu_and_health(&mut self) {
        for role in self.vm.roles() {
            let labels = [("process", role)];
            self.push(
                "kubevirt_pod_infra_processes",
                &labels,
                Shape::Constant(1.0),
            );
        }
        let rate = |cores: f64| Shape::Linear {
            value: cores * HISTORY as f64,
            slope: cores,
        };
        let counters: [Row; 7] = [
            (
                "kubevirt_pod_infra_cpu_seconds_total",
                &[("process", "virt-launcher"), ("type", "user")],
                LAUNCHER_CORES,
            ),
            (
                "kubevirt_pod_infra_cpu_seconds_total",
                &[("process", "qemu"), ("type", "user")],
                VCPU_CORES + QEMU_OTHER_CORES,
            ),
            (
                "kubevirt_pod_infra_qemu_thread_cpu_seconds_total",
                &[("process", "qemu"), ("class", "vcpu"), ("type", "user")],
                VCPU_CORES,
            ),
            (
                "kubevirt_pod_infra_qemu_thread_cpu_seconds_total",
                &[("process", "qemu"), ("class", "other"), ("type", "user")],
                QEMU_OTHER_CORES,
            ),
            (
                "kube_metrics_collector_read_errors_total",
                &[("kind", "vanished")],
                0.01,
            ),
            (
                "kube_metrics_collector_read_errors_total",
                &[("kind", "parse")],
                0.0,
            ),
            (
                "kube_metrics_collector_read_errors_total",
                &[("kind", "io")],
                0.0,
            ),
        ];
        for (name, labels, per_second) in counters {
            self.push(name, labels, rate(per_second));
        }
    }
}

/// What virt-controller says about the VM, whichever pod runs it.
fn controller_series(vm: &Vm) -> Vec<Series> {
    if vm.estimate_source == Estimate::AnnotationOnly {
        return Vec::new();
    }
    // Two virt-controller replicas export the same value.
    ["virt-controller-7c9d-a", "virt-controller-7c9d-b"]
        .into_iter()
        .map(|controller| {
            let labels = [
                ("namespace", vm.namespace),
                ("name", vm.name),
                ("pod", controller),
            ];
            Series {
                name: "kubevirt_vmi_launcher_memory_overhead_bytes",
                labels: labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                shape: Shape::Constant(vm.estimate),
                stops_ago: vm.oom_killed_ago,
                starts_ago: None,
            }
        })
        .collect()
}

/// What cAdvisor and kube-state-metrics say about one pod of the VM.
fn others(vm: &Vm, pod: &Pod) -> Vec<Series> {
    let pod_labels = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut labels = vec![("namespace", vm.namespace), ("pod", pod.name.as_str())];
        labels.extend_from_slice(extra);
        labels
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    };
    let mut all = vec![Series {
        name: "container_memory_working_set_bytes",
        labels: pod_labels(&[("container", "compute")]),
        shape: Shape::Constant(vm.working_set()),
        stops_ago: pod.stops_ago,
        starts_ago: pod.starts_ago,
    }];
    let oom = pod_labels(&[("container", "compute"), ("reason", "OOMKilled")]);
    let killed = vm.oom_killed_ago.filter(|_| pod.name == vm.pod());
    let shape = killed.map_or(Shape::Constant(0.0), |ago| Shape::StepUp { ago });
    all.push(Series {
        name: "kube_pod_container_status_terminated_reason",
        labels: oom,
        shape,
        stops_ago: None,
        starts_ago: pod.starts_ago,
    });
    all
}
