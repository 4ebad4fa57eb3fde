//! A fleet of thousands of VMs for a real Prometheus, for `bench-fleet`: every launcher pod's
//! series are the real collector's (one scrape of it serving in a fake launcher pod, in the
//! profile asked for), relabelled for each VM and evolving with time: counters grow at a rate of
//! their own, memory gauges move by a few pages. A [`Generator`] serves them live, one target per
//! node as the relay does (with cAdvisor's working set of each pod beside them, and
//! virt-controller's estimate of each VM); [`history`] writes the same series for past hours as
//! OpenMetrics, for `promtool tsdb create-blocks-from openmetrics`. No Prometheus here: the
//! benchmark binary starts it and measures it ([`measure`]).

pub mod history;
pub mod measure;
mod serve;

use crate::collector::Collector;
use crate::exposition::Sample;
use crate::launcher;
use crate::pod::{FakePod, PodInfo};
use crate::process;
use anyhow::{Context as _, Result, ensure};
use kube_metrics_contract::metrics::{self, Profile};
use std::fmt::Write as _;
use std::time::Duration;

pub use serve::Generator;

/// Labels the collector puts on every per-VM series: replaced by each VM's.
const PREFIX_LABELS: [&str; 2] = ["host", "domain"];
/// Labels of `kubevirt_pod_infra_pod_info` that name the pod: replaced by each VM's.
const IDENTITY_LABELS: [&str; 4] = ["namespace", "pod", "name", "node"];
/// The collector's health gauges of its guest-memory reader.
const GUEST_MEMORY_HEALTH: &str = "kube_metrics_collector_guest_memory_";
/// The pod's QEMU needs a moment for its first `smaps` read, on the collector's reader thread.
const GUEST_MEMORY_READ: Duration = Duration::from_secs(20);

/// Whether a series counts up or moves both ways.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// One series of a launcher pod, without the pod's identity.
#[derive(Clone, Debug)]
pub struct PodSeries {
    pub name: String,
    pub kind: Kind,
    /// The family's own labels, in the collector's order (not `host`, `domain` or the identity of
    /// `pod_info`).
    pub labels: Vec<(String, String)>,
    /// The value the collector wrote.
    pub value: f64,
    /// Per second, for a counter; 0 for a gauge.
    rate: f64,
    /// A memory gauge that moves by a few pages between scrapes.
    moves: bool,
}

/// One VM of the fleet and its launcher pod.
#[derive(Clone, Debug)]
pub struct Vm {
    pub index: usize,
    pub namespace: String,
    pub name: String,
    pub pod: String,
    pub node: usize,
}

/// The VMs, spread over nodes and namespaces, and the series each pod exports.
#[derive(Clone, Debug)]
pub struct Fleet {
    pub profile: Profile,
    pub vms: Vec<Vm>,
    pub nodes: usize,
    pub template: Vec<PodSeries>,
    /// Unix seconds from which counters count: a day before the run, so that they are large.
    epoch: f64,
}

/// The series of one real launcher pod in `profile`: the collector serving (TCP and Unix socket,
/// as injected) in a fake pod with KubeVirt's five processes and virt-tail, scraped once its
/// first read of QEMU's memory is in.
pub fn launcher_template(profile: Profile) -> Result<Vec<Sample>> {
    process::preflight(&["unshare", "nsenter"])?;
    let mut specs = launcher::core_processes("bench", "bench-vm", None);
    specs.push(launcher::virt_tail());
    let pod = FakePod::with_processes(&PodInfo::launcher("bench-vm", 300 << 20), specs)?;
    let collector = Collector::start(&pod, &["--metrics-profile", profile.as_str()])?;
    let samples = process::wait_for(
        "the collector's first smaps read",
        GUEST_MEMORY_READ,
        || {
            let samples = crate::exposition::parse(&collector.scrape()?.text())?;
            let read = samples
                .iter()
                .any(|s| s.name == "kubevirt_pod_infra_qemu_own_memory_bytes");
            Ok(read.then_some(samples))
        },
    )
    .with_context(|| format!("collector log:\n{}", collector.log()))?;
    // The fake QEMU's memory is no backend of its command line: a real, healthy QEMU's health
    // gauges are 0, which the default profile leaves out.
    Ok(samples
        .into_iter()
        .filter_map(|mut s| {
            if s.name.starts_with(GUEST_MEMORY_HEALTH) {
                s.value = 0.0;
                if profile == Profile::Default {
                    return None;
                }
            }
            Some(s)
        })
        .collect())
}

// === impl PodSeries ===

impl PodSeries {
    /// The template series of `samples`, as one scrape of a collector gave them.
    pub fn from_samples(samples: &[Sample]) -> Result<Vec<Self>> {
        let mut out = Vec::new();
        for sample in samples {
            let family = metrics::family(&sample.name)
                .with_context(|| format!("{} is no collector family", sample.name))?;
            // The family's own labels, in the order the contract lists them.
            let labels = family
                .labels
                .iter()
                .filter(|l| !PREFIX_LABELS.contains(l))
                .filter(|l| sample.name != metrics::POD_INFO || !IDENTITY_LABELS.contains(l))
                .filter_map(|l| sample.labels.get(*l).map(|v| ((*l).to_owned(), v.clone())))
                .collect();
            let kind = if family.kind == "counter" {
                Kind::Counter
            } else {
                Kind::Gauge
            };
            out.push(Self {
                rate: if kind == Kind::Counter {
                    rate(sample)
                } else {
                    0.0
                },
                moves: sample.name == "kubevirt_pod_infra_memory_amount_bytes"
                    || sample.name == "kubevirt_pod_infra_qemu_own_memory_bytes",
                name: sample.name.clone(),
                kind,
                labels,
                value: sample.value,
            });
        }
        ensure!(
            out.iter().any(|s| s.name == metrics::POD_INFO),
            "the template has no {}",
            metrics::POD_INFO
        );
        Ok(out)
    }
}

/// How fast a counter of the template grows, per second: CPU in cores (QEMU's vCPUs most), a
/// little storage I/O, faults and switches; the collector's own counters stay.
fn rate(sample: &Sample) -> f64 {
    let qemu = sample.label("process") == "qemu";
    match sample.name.as_str() {
        "kubevirt_pod_infra_cpu_seconds_total" if qemu => 0.3,
        "kubevirt_pod_infra_cpu_seconds_total" => 0.005,
        "kubevirt_pod_infra_qemu_thread_cpu_seconds_total" if sample.label("class") == "vcpu" => {
            0.25
        }
        "kubevirt_pod_infra_qemu_thread_cpu_seconds_total" => 0.02,
        "kubevirt_pod_infra_io_bytes_total" => 4096.0,
        "kubevirt_pod_infra_page_faults_total" => 2.0,
        "kubevirt_pod_infra_context_switches_total" => 20.0,
        _ => 0.0,
    }
}

// === impl Fleet ===

impl Fleet {
    /// `vms` VMs, `per_node` to a node, in 40 namespaces, exporting `template` each.
    pub fn new(profile: Profile, template: Vec<PodSeries>, vms: usize, per_node: usize) -> Self {
        let per_node = per_node.max(1);
        let vms: Vec<Vm> = (0..vms)
            .map(|index| Vm {
                index,
                namespace: format!("ns-{:02}", index % 40),
                name: format!("vm-{index:05}"),
                pod: format!("virt-launcher-vm-{index:05}-{}", generated(index)),
                node: index / per_node,
            })
            .collect();
        let nodes = vms.len().div_ceil(per_node);
        let epoch = unix_now() - 86_400.0;
        Self {
            profile,
            vms,
            nodes,
            template,
            epoch,
        }
    }

    /// The VMs of node `node`.
    pub fn on_node(&self, node: usize) -> impl Iterator<Item = &Vm> {
        self.vms.iter().filter(move |vm| vm.node == node)
    }

    /// The series one pod exports.
    pub fn series_per_pod(&self) -> usize {
        self.template.len()
    }

    /// Appends the collector series of `vm` at `time` (Unix seconds) to `out`, as the relay
    /// serves them (`namespace` and `pod` first), each line ending in `suffix` (a timestamp for
    /// OpenMetrics history; empty live) and with `extra` labels after its own.
    pub fn write_pod(&self, vm: &Vm, time: f64, extra: &str, suffix: &str, out: &mut String) {
        let node = node_name(vm.node);
        for (i, s) in self.template.iter().enumerate() {
            let _ = write!(
                out,
                "{}{{namespace=\"{}\",pod=\"{}\",host=\"{node}\",domain=\"{}\"",
                s.name, vm.namespace, vm.pod, vm.name
            );
            if s.name == metrics::POD_INFO {
                let _ = write!(out, ",name=\"{}\",node=\"{node}\"", vm.name);
            }
            for (k, v) in &s.labels {
                let _ = write!(out, ",{k}=\"{v}\"");
            }
            let _ = writeln!(out, "{extra}}} {}{suffix}", self.value(vm, i, s, time));
        }
    }

    /// What cAdvisor says of `vm`'s compute container, labelled as the kubelet's target labels
    /// it, at `time`: the resident memory and page tables of its processes, a healthy pod's.
    pub fn write_cadvisor(&self, vm: &Vm, time: f64, extra: &str, suffix: &str, out: &mut String) {
        let working_set: f64 = self
            .template
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.name == "kubevirt_pod_infra_memory_amount_bytes"
                    && s.labels
                        .iter()
                        .any(|(k, v)| k == "type" && (v == "resident" || v == "page_tables"))
            })
            .map(|(i, s)| self.value(vm, i, s, time))
            .sum();
        let _ = writeln!(
            out,
            "container_memory_working_set_bytes{{namespace=\"{}\",pod=\"{}\",container=\"compute\",\
             id=\"/kubepods/burstable/pod{}/compute\",image=\"quay.io/kubevirt/virt-launcher:v1.5.0\",\
             name=\"compute\",node=\"{}\"{extra}}} {working_set}{suffix}",
            vm.namespace,
            vm.pod,
            suffix_uid(vm.index),
            node_name(vm.node)
        );
    }

    /// virt-controller's estimate of `vm` (KubeVirt v1.3+).
    pub fn write_controller(&self, vm: &Vm, extra: &str, suffix: &str, out: &mut String) {
        let estimate = (250.0 + 50.0 * fraction(vm.index, 7)).round() * 1024.0 * 1024.0;
        let _ = writeln!(
            out,
            "kubevirt_vmi_launcher_memory_overhead_bytes{{namespace=\"{}\",name=\"{}\",\
             pod=\"virt-controller-7c9d5-a\"{extra}}} {estimate}{suffix}",
            vm.namespace, vm.name
        );
    }

    /// The relay's own series of node `node`.
    pub fn write_relay(&self, node: usize, time: f64, extra: &str, suffix: &str, out: &mut String) {
        let pod = format!("kube-metrics-collector-relay-{}", generated(node));
        let targets = self.on_node(node).count();
        for (state, value) in [
            ("ok", targets),
            ("failed", 0),
            ("timeout", 0),
            ("skipped_direct", 0),
        ] {
            let _ = writeln!(
                out,
                "kube_metrics_collector_relay_targets{{namespace=\"kube-metrics-collector\",\
                 pod=\"{pod}\",state=\"{state}\"{extra}}} {value}{suffix}"
            );
        }
        let _ = writeln!(
            out,
            "kube_metrics_collector_relay_scrape_duration_seconds{{namespace=\"kube-metrics-collector\",\
             pod=\"{pod}\"{extra}}} {}{suffix}",
            0.01 * targets as f64
        );
        let _ = writeln!(
            out,
            "kube_metrics_collector_relay_target_failures_total{{namespace=\"kube-metrics-collector\",\
             pod=\"{pod}\",reason=\"timeout\"{extra}}} {}{suffix}",
            ((time - self.epoch) / 3600.0).floor()
        );
    }

    /// The value of template series `i` of `vm` at `time`.
    fn value(&self, vm: &Vm, i: usize, s: &PodSeries, time: f64) -> f64 {
        let f = fraction(vm.index, i);
        match s.kind {
            Kind::Counter => {
                // One share per VM for every counter, so that QEMU's vCPUs stay within QEMU.
                let share = 0.5 + fraction(vm.index, 0);
                (s.value + s.rate * share * (time - self.epoch)).floor()
            }
            Kind::Gauge if s.moves => {
                let pages = (s.value * (0.7 + 0.6 * f) / 4096.0).round() * 4096.0;
                pages + jitter(vm, time)
            }
            Kind::Gauge => s.value,
        }
    }
}

/// A few pages that come and go from one minute to the next.
fn jitter(vm: &Vm, time: f64) -> f64 {
    let minute = (time / 60.0).floor() as usize;
    ((minute + vm.index) % 5) as f64 * 4096.0
}

pub fn node_name(node: usize) -> String {
    format!("node-{node:03}")
}

/// A number in [0, 1) that depends on `a` and `b` only.
fn fraction(a: usize, b: usize) -> f64 {
    let mut x = (a as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (b as u64).wrapping_add(0xD1B5);
    x ^= x >> 30;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Five characters as Kubernetes appends to a generated pod name.
fn generated(index: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = (fraction(index, 77) * 1e12) as u64;
    (0..5)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize];
            n /= ALPHABET.len() as u64;
            char::from(c)
        })
        .collect()
}

/// A pod uid's look-alike.
fn suffix_uid(index: usize) -> String {
    format!("5d5e2e1c-0000-4000-8000-{index:012}")
}

pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str, labels: &[(&str, &str)], value: f64) -> Sample {
        Sample {
            name: name.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            value,
        }
    }

    fn fleet() -> Fleet {
        let samples = [
            sample(
                metrics::POD_INFO,
                &[
                    ("host", "h"),
                    ("domain", "d"),
                    ("namespace", "bench"),
                    ("pod", "p"),
                    ("name", "d"),
                    ("node", "h"),
                ],
                1.0,
            ),
            sample(
                "kubevirt_pod_infra_cpu_seconds_total",
                &[
                    ("host", "h"),
                    ("domain", "d"),
                    ("process", "qemu"),
                    ("type", "user"),
                ],
                10.0,
            ),
            sample(
                "kubevirt_pod_infra_memory_amount_bytes",
                &[
                    ("host", "h"),
                    ("domain", "d"),
                    ("process", "qemu"),
                    ("type", "resident"),
                ],
                1e8,
            ),
        ];
        let template = PodSeries::from_samples(&samples).unwrap();
        Fleet::new(Profile::Default, template, 120, 50)
    }

    #[test]
    fn vms_spread_over_nodes_and_get_their_own_identity() {
        let fleet = fleet();
        assert_eq!(fleet.nodes, 3);
        assert_eq!(fleet.on_node(2).count(), 20);
        let mut out = String::new();
        let vm = &fleet.vms[7];
        fleet.write_pod(vm, fleet.epoch + 100.0, ",job=\"j\"", " 5", &mut out);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with(&format!(
            "kubevirt_pod_infra_pod_info{{namespace=\"ns-07\",pod=\"{}\",host=\"node-000\",\
             domain=\"vm-00007\",name=\"vm-00007\",node=\"node-000\",job=\"j\"}} 1 5",
            vm.pod
        )));
        assert!(lines[1].contains("process=\"qemu\",type=\"user\",job=\"j\"} "));
        let parsed = crate::exposition::parse(&out).unwrap();
        assert_eq!(parsed.len(), 3);
    }

    #[test]
    fn counters_grow_and_gauges_stay_near_their_value() {
        let fleet = fleet();
        let vm = &fleet.vms[3];
        let cpu = &fleet.template[1];
        let (a, b) = (
            fleet.value(vm, 1, cpu, fleet.epoch + 60.0),
            fleet.value(vm, 1, cpu, fleet.epoch + 120.0),
        );
        assert!(b > a && a >= 10.0, "{a} {b}");
        let memory = &fleet.template[2];
        let m = fleet.value(vm, 2, memory, fleet.epoch);
        assert!((0.7e8..1.4e8).contains(&m), "{m}");
        assert_eq!(m % 4096.0, 0.0);
    }

    #[test]
    fn fractions_spread_and_names_look_generated() {
        let values: Vec<f64> = (0..1000).map(|i| fraction(i, 3)).collect();
        assert!(values.iter().all(|f| (0.0..1.0).contains(f)));
        let mean = values.iter().sum::<f64>() / 1000.0;
        assert!((0.4..0.6).contains(&mean), "{mean}");
        assert_eq!(generated(5).len(), 5);
        assert_ne!(generated(5), generated(6));
    }
}
