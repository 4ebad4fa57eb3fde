//! A small fleet of KubeVirt VMs as two days of series, written as OpenMetrics text for
//! `promtool tsdb create-blocks-from openmetrics`, and the values the rules must compute from it.
//!
//! The fleet holds the cases the rules must get right: an overcommitted guest, one on hugepages, one
//! that has not touched its RAM, same-named VMs in two namespaces, a pod scraped by two targets,
//! KubeVirt v1.8 (estimate from virt-controller's metric only) and v1.9 (pod annotation), a VM over
//! its estimate, a leaking virt-launcher, a compute container near its limit, an OOM-killed VM that
//! leaked, healthy guests of 1, 4 and 16 GiB that touched all their RAM with limit = guest +
//! estimate (which a limit-ratio alert would page for), a 4-vCPU VM with video and a TPM, and a VM
//! migrated from one node to another. Every known value is a public function, so that other tests
//! (a CLI's, say) can reuse the data. No I/O.

mod series;

use kube_metrics_contract::estimate::{self, ASSUMED_RELEASE, RELEASES, Shape};

pub const MIB: f64 = 1_048_576.0;
pub const GIB: f64 = 1024.0 * MIB;
/// History: two days, every 10 minutes, then the last two hours every minute (for `rate`).
pub const HISTORY: i64 = 2 * 86_400;
const SPARSE_STEP: i64 = 600;
const DENSE_STEP: i64 = 60;
const DENSE_SPAN: i64 = 7_200;
/// The namespace of the relay and the webhook.
pub const SYSTEM_NAMESPACE: &str = "kube-metrics-collector";

/// Where a VM's overhead estimate comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Estimate {
    /// KubeVirt v1.3-v1.8: only virt-controller's `kubevirt_vmi_launcher_memory_overhead_bytes`.
    ControllerMetric,
    /// KubeVirt v1.9+: the pod's annotation (exported by the collector), and the metric as well.
    AnnotationAndMetric,
    /// KubeVirt v1.9+ with virt-controller not scraped: the annotation only.
    AnnotationOnly,
}

/// One VM and its launcher pod; memory in bytes, at the end of the history.
#[derive(Clone, Debug)]
pub struct Vm {
    pub namespace: &'static str,
    pub name: &'static str,
    pub node: &'static str,
    pub estimate_source: Estimate,
    pub estimate: f64,
    pub guest_size: f64,
    /// Guest RAM in QEMU's RSS (0 on hugepages).
    pub guest_resident: f64,
    pub hugepages: bool,
    /// Resident memory of virt-launcher-monitor, virt-launcher, virtqemud, virtlogd.
    pub infra: [f64; 4],
    pub qemu_own: f64,
    /// QEMU's page tables (the other processes have none here).
    pub page_tables: f64,
    /// vCPUs and whether a display device is attached: KubeVirt's QEMU terms.
    pub vcpus: u32,
    pub video: bool,
    /// swtpm's resident memory, for a VM with a TPM.
    pub swtpm: Option<f64>,
    /// Seconds before the end at which the VM was live-migrated: its first pod (on another node)
    /// stopped then and the current one started.
    pub migrated_ago: Option<i64>,
    pub limit: f64,
    /// How much virt-launcher grew per day, linearly over the whole history.
    pub leak_per_day: f64,
    /// Seconds before the end at which the compute container was OOM-killed.
    pub oom_killed_ago: Option<i64>,
    /// Scraped by two targets (two `instance`s), as a native sidecar's port can be.
    pub duplicated: bool,
}

/// The non-QEMU roles, in the order of [`Vm::infra`].
pub const INFRA_ROLES: [&str; 4] = [
    "virt-launcher-monitor",
    "virt-launcher",
    "virtqemud",
    "virtlogd",
];
/// virt-launcher's CPU, QEMU's vCPU and QEMU's other threads, in cores.
pub const LAUNCHER_CORES: f64 = 0.02;
pub const VCPU_CORES: f64 = 0.5;
pub const QEMU_OTHER_CORES: f64 = 0.125;

// === impl Vm ===

impl Vm {
    pub fn pod(&self) -> String {
        format!("virt-launcher-{}-x7k2p", self.name)
    }

    /// True while its pod runs (not OOM-killed).
    pub fn running(&self) -> bool {
        self.oom_killed_ago.is_none()
    }

    /// QEMU's resident memory: guest RAM it touched plus its own.
    pub fn qemu_resident(&self) -> f64 {
        self.guest_resident + self.qemu_own
    }

    /// Resident memory of every role but QEMU.
    pub fn infra_resident(&self) -> f64 {
        self.infra.iter().sum::<f64>() + self.swtpm.unwrap_or(0.0)
    }

    /// The pod of the node the VM ran on before its migration, if it migrated.
    pub fn source_pod(&self) -> Option<String> {
        self.migrated_ago
            .map(|_| format!("virt-launcher-{}-m1grt", self.name))
    }

    /// Every role the collector reports for this VM.
    pub fn roles(&self) -> Vec<&'static str> {
        let mut roles = INFRA_ROLES.to_vec();
        roles.push("qemu");
        if self.swtpm.is_some() {
            roles.push("swtpm");
        }
        roles
    }

    /// What each process costs beyond guest RAM (contract/src/rules.rs): the other roles' resident
    /// memory (they have no page tables here), QEMU's own memory and page tables.
    pub fn components(&self) -> Vec<(&'static str, f64)> {
        let mut out: Vec<(&str, f64)> = INFRA_ROLES.iter().copied().zip(self.infra).collect();
        out.push(("qemu", self.qemu_own + self.page_tables));
        if let Some(swtpm) = self.swtpm {
            out.push(("swtpm", swtpm));
        }
        out
    }

    /// KubeVirt 1.9's budget for each component, as the collector computes it.
    pub fn budgets(&self) -> Vec<(&'static str, f64)> {
        let shape = Shape {
            memory_request: self.guest_size as u64,
            vcpus: self.vcpus,
            video: self.video,
            tpm: self.swtpm.is_some(),
            arm64: false,
        };
        let constants = ASSUMED_RELEASE.constants().copied().unwrap_or(RELEASES[2]);
        estimate::budgets(&shape, &constants)
            .into_iter()
            .map(|(c, bytes)| (c.name(), bytes as f64))
            .collect()
    }

    /// Measured overhead in KubeVirt's sense: the sum of the components.
    pub fn overhead(&self) -> f64 {
        self.components().iter().map(|(_, v)| v).sum()
    }

    /// Components above their budget and by how much, sorted by name.
    pub fn over_budget(&self) -> Vec<(&'static str, f64)> {
        let budgets = self.budgets();
        let mut over: Vec<_> = self
            .components()
            .into_iter()
            .filter_map(|(component, value)| {
                let (_, budget) = budgets.iter().find(|(c, _)| *c == component)?;
                (value > *budget).then_some((component, value - budget))
            })
            .collect();
        over.sort_by(|a, b| a.0.cmp(b.0));
        over
    }

    /// The compute container's working set: every process's resident memory (hugepages are not in it).
    pub fn working_set(&self) -> f64 {
        self.infra_resident() + self.qemu_resident() + self.page_tables
    }

    /// Guest RAM the compute container's memory cgroup charges: none on hugepages.
    pub fn guest_charged(&self) -> f64 {
        if self.hugepages { 0.0 } else { self.guest_size }
    }

    /// What the limit leaves beyond guest RAM.
    pub fn allowance(&self) -> f64 {
        self.limit - self.guest_charged()
    }

    /// How much of it is used: the working set without the guest RAM in QEMU's RSS.
    pub fn allowance_used(&self) -> f64 {
        self.working_set() - (self.qemu_resident() - self.qemu_own)
    }

    /// `KubevirtComputeContainerNearMemoryLimit`'s condition.
    pub fn near_limit(&self) -> bool {
        self.allowance_used() > 0.9 * self.allowance()
    }

    /// virt-launcher's resident memory `ago` seconds before the end.
    fn launcher_at(&self, ago: i64) -> f64 {
        self.infra[1] - self.leak_per_day * ago as f64 / 86_400.0
    }
}

/// The fleet: twelve VMs on two nodes, and the relays and webhook beside them.
#[derive(Clone, Debug)]
pub struct Fleet {
    /// Unix seconds of the last sample.
    pub end: i64,
    pub vms: Vec<Vm>,
    /// Relay pod and its `(ok, failed, timeout)` targets.
    pub relays: Vec<(&'static str, [u32; 3])>,
}

/// A healthy VM of `guest` bytes that touched all its RAM, its limit guest RAM + estimate.
fn touched(name: &'static str, guest: f64, estimate: f64, page_tables: f64) -> Vm {
    Vm {
        namespace: "prod",
        name,
        node: "node-1",
        estimate_source: Estimate::AnnotationAndMetric,
        estimate,
        guest_size: guest,
        guest_resident: guest,
        hugepages: false,
        infra: [16.0 * MIB, 72.0 * MIB, 30.0 * MIB, 14.0 * MIB],
        qemu_own: 60.0 * MIB,
        page_tables,
        vcpus: 2,
        video: true,
        swtpm: None,
        migrated_ago: None,
        limit: guest + estimate,
        leak_per_day: 0.0,
        oom_killed_ago: None,
        duplicated: false,
    }
}

/// The standard fleet whose history ends at `end` (Unix seconds).
pub fn fleet(end: i64) -> Fleet {
    let healthy = Vm {
        namespace: "shop",
        name: "web",
        node: "node-1",
        estimate_source: Estimate::ControllerMetric,
        estimate: 280.0 * MIB,
        guest_size: 2.0 * GIB,
        guest_resident: 2.0 * GIB,
        hugepages: false,
        infra: [16.0 * MIB, 64.0 * MIB, 32.0 * MIB, 16.0 * MIB],
        qemu_own: 24.0 * MIB,
        page_tables: 4.0 * MIB,
        vcpus: 1,
        video: true,
        swtpm: None,
        migrated_ago: None,
        limit: 2.0 * GIB + 280.0 * MIB,
        leak_per_day: 0.0,
        oom_killed_ago: None,
        duplicated: false,
    };
    let vms = vec![
        // Overcommitted: a 4 GiB guest with 3 GiB touched, scraped twice, KubeVirt v1.8.
        Vm {
            guest_size: 4.0 * GIB,
            guest_resident: 3.0 * GIB,
            page_tables: 8.0 * MIB,
            limit: 4.0 * GIB + 280.0 * MIB,
            duplicated: true,
            ..healthy.clone()
        },
        // The same name in another namespace, on hugepages (its limit holds the overhead only),
        // KubeVirt v1.9.
        Vm {
            namespace: "staging",
            estimate_source: Estimate::AnnotationAndMetric,
            estimate: 300.0 * MIB,
            guest_resident: 0.0,
            hugepages: true,
            page_tables: 1.0 * MIB,
            limit: 300.0 * MIB,
            ..healthy.clone()
        },
        // A guest that has touched 256 MiB of its 8 GiB.
        Vm {
            namespace: "staging",
            name: "idle",
            node: "node-2",
            estimate_source: Estimate::AnnotationOnly,
            estimate: 320.0 * MIB,
            guest_size: 8.0 * GIB,
            guest_resident: 256.0 * MIB,
            page_tables: 2.0 * MIB,
            limit: 8.0 * GIB + 320.0 * MIB,
            ..healthy.clone()
        },
        // virt-launcher at 200 MiB: above the estimate; a limit its owner raised keeps it running.
        Vm {
            name: "db",
            node: "node-2",
            estimate_source: Estimate::AnnotationOnly,
            estimate: 256.0 * MIB,
            infra: [16.0 * MIB, 200.0 * MIB, 32.0 * MIB, 16.0 * MIB],
            qemu_own: 64.0 * MIB,
            limit: 2.0 * GIB + 512.0 * MIB,
            ..healthy.clone()
        },
        // virt-launcher leaks 8 MiB a day: 90 MiB now, past its 100 MiB within 7 days.
        Vm {
            name: "leaky",
            node: "node-2",
            infra: [16.0 * MIB, 90.0 * MIB, 32.0 * MIB, 16.0 * MIB],
            leak_per_day: 8.0 * MIB,
            ..healthy.clone()
        },
        // virt-launcher at 170 MiB: 262 of the 280 MiB its limit leaves beyond guest RAM are used,
        // still below the estimate.
        Vm {
            namespace: "staging",
            name: "big",
            estimate_source: Estimate::AnnotationOnly,
            guest_size: 1.0 * GIB,
            guest_resident: 1.0 * GIB,
            infra: [16.0 * MIB, 170.0 * MIB, 32.0 * MIB, 16.0 * MIB],
            limit: 1.0 * GIB + 280.0 * MIB,
            ..healthy.clone()
        },
        // Leaked 60 MiB a day in virt-launcher, OOM-killed 30 minutes ago; its collector died
        // with it.
        Vm {
            name: "crashed",
            infra: [16.0 * MIB, 150.0 * MIB, 32.0 * MIB, 16.0 * MIB],
            leak_per_day: 60.0 * MIB,
            oom_killed_ago: Some(1_800),
            ..healthy.clone()
        },
        // Healthy guests that touched all their RAM, with KubeVirt's estimates for 2 vCPUs: working
        // set / limit is 0.94, 0.98 and 0.99, their allowance is used at most 73%.
        touched("vm-1g", GIB, 278.0 * MIB, 2.3 * MIB),
        touched("vm-4g", 4.0 * GIB, 284.0 * MIB, 8.2 * MIB),
        touched("vm-16g", 16.0 * GIB, 308.0 * MIB, 32.4 * MIB),
        // 4 vCPUs, video and a TPM: QEMU's budget is 30 + 4 x 8 + 8 + 32 Mi plus page tables.
        Vm {
            vcpus: 4,
            qemu_own: 90.0 * MIB,
            swtpm: Some(6.0 * MIB),
            ..touched("vtpm", 2.0 * GIB, 400.0 * MIB, 4.4 * MIB)
        },
        // Live-migrated from node-1 to node-2 twelve hours ago.
        Vm {
            name: "mover",
            node: "node-2",
            migrated_ago: Some(12 * 3_600),
            ..healthy
        },
    ];
    Fleet {
        end,
        vms,
        relays: vec![("relay-node-1", [4, 0, 0]), ("relay-node-2", [2, 0, 1])],
    }
}

// === impl Fleet ===

impl Fleet {
    /// Sample times, oldest first.
    pub fn timestamps(&self) -> Vec<i64> {
        let dense_from = self.end - DENSE_SPAN;
        let sparse = (self.end - HISTORY..dense_from).step_by(SPARSE_STEP as usize);
        let dense = (dense_from..=self.end).step_by(DENSE_STEP as usize);
        sparse.chain(dense).collect()
    }

    /// The VMs whose pods still run.
    pub fn running(&self) -> impl Iterator<Item = &Vm> {
        self.vms.iter().filter(|vm| vm.running())
    }

    pub fn vm(&self, namespace: &str, name: &str) -> Option<&Vm> {
        self.vms
            .iter()
            .find(|vm| vm.namespace == namespace && vm.name == name)
    }

    /// The whole history as OpenMetrics text: one series after another, each in time order,
    /// timestamps in seconds, ending with `# EOF`.
    pub fn openmetrics(&self) -> String {
        let times = self.timestamps();
        let mut out = String::new();
        for vm in &self.vms {
            for series in series::vm_series(vm) {
                series.write(&mut out, &times, self.end);
            }
        }
        for series in series::system_series(self) {
            series.write(&mut out, &times, self.end);
        }
        out.push_str("# EOF\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_follow_the_definitions() {
        let fleet = fleet(1_000_000);
        let db = fleet.vm("shop", "db").unwrap();
        assert_eq!(db.overhead(), (264.0 + 64.0 + 4.0) * MIB);
        // QEMU: 68 MiB within 30 + 8 + 8 + 32 Mi and 2 GiB's page tables.
        assert_eq!(db.over_budget(), [("virt-launcher", 100.0 * MIB)]);
        let idle = fleet.vm("staging", "idle").unwrap();
        assert_eq!(idle.qemu_resident(), 280.0 * MIB);
        assert!(idle.over_budget().is_empty());
        assert_eq!(fleet.running().count(), 11);
        let near: Vec<&str> = fleet
            .running()
            .filter(|vm| vm.near_limit())
            .map(|vm| vm.name)
            .collect();
        assert_eq!(near, ["big"]);
        for name in ["vm-1g", "vm-4g", "vm-16g"] {
            let vm = fleet.vm("prod", name).unwrap();
            assert!(vm.working_set() / vm.limit > 0.9, "{name}");
            assert!(vm.allowance_used() / vm.allowance() < 0.75, "{name}");
        }
        let vtpm = fleet.vm("prod", "vtpm").unwrap();
        let budgets = vtpm.budgets();
        assert!(budgets.contains(&("qemu", 102.0 * MIB + 4_194_304.0)));
        assert!(budgets.contains(&("swtpm", 53.0 * MIB)));
        assert!(vtpm.over_budget().is_empty());
    }

    #[test]
    fn openmetrics_is_time_ordered_per_series_and_ends_with_eof() {
        let fleet = fleet(1_000_000);
        let text = fleet.openmetrics();
        assert!(text.ends_with("# EOF\n"));
        let times = fleet.timestamps();
        assert_eq!(times.first(), Some(&(1_000_000 - HISTORY)));
        assert_eq!(times.last(), Some(&1_000_000));
        assert!(times.windows(2).all(|w| w[0] < w[1]));
        let leaky = text
            .lines()
            .filter(|l| {
                l.contains("virt-launcher-leaky")
                    && l.contains("process=\"virt-launcher\",type=\"resident\"")
            })
            .collect::<Vec<_>>();
        assert_eq!(leaky.len(), times.len());
        let first: f64 = leaky[0].split(' ').nth(1).unwrap().parse().unwrap();
        assert_eq!(first, 90.0 * MIB - 16.0 * MIB);
        // The crashed VM's collector stops at the kill; kube-state-metrics goes on.
        let crashed_info = text
            .lines()
            .filter(|l| {
                l.starts_with(
                    "kubevirt_pod_infra_pod_info{namespace=\"shop\",pod=\"virt-launcher-crashed",
                )
            })
            .count();
        assert_eq!(crashed_info, times.len() - 30);
    }
}
