//! The PromQL of one `recommend` fetch: each VM's pods, measured overhead, peaks, estimates,
//! allowances, OOM kills, trends, budgets and releases, read through the recording rules. No I/O.

use kube_metrics_contract::rules;

use crate::fleet::{over, per_pod, rule};
use crate::vouch::{self, promql_string};

/// The step of the leak search: each point is an hour's mean of a component's overhead, so that
/// a spike of minutes barely moves it.
const TREND_STEP: &str = "1h";

/// kube-state-metrics' series that say the compute container was OOM-killed: as its current
/// state (a launcher pod's containers never restart), or as its last one before a restart.
const OOM_KILLED: [&str; 2] = [
    "kube_pod_container_status_terminated_reason",
    "kube_pod_container_status_last_terminated_reason",
];

/// The PromQL of one fetch: `r` the range, `s` the resolution, in PromQL's duration syntax;
/// `job` KubeVirt's scrape job.
pub(super) struct Queries {
    pub r: String,
    pub s: String,
    pub job: String,
}

impl Queries {
    pub(super) fn over(&self, record: &str) -> String {
        over(record, &self.r, &self.s)
    }

    /// Every pod of every VM seen in the range.
    pub(super) fn pods(&self) -> String {
        format!(
            "group by (namespace, pod, name) (max_over_time({}))",
            self.over(rules::POD_INFO)
        )
    }

    /// The first (`min`) or last (`max`) time each pod's QEMU own memory was known: the measured
    /// overhead is known exactly then, and this costs Prometheus a fraction of the overhead's rule.
    pub(super) fn measured(&self, end: &str) -> String {
        format!(
            "{end} by (namespace, pod, name) ({end}_over_time(timestamp({})[{}:{}]))",
            per_pod("kubevirt_pod_infra_qemu_own_memory_bytes"),
            self.r,
            self.s
        )
    }

    /// Each pod's peak: the largest over the steps; a VM's is the largest of its pods'.
    pub(super) fn peak(&self) -> String {
        format!(
            "max by (namespace, name, pod) (max_over_time({}))",
            self.over(rules::OVERHEAD)
        )
    }

    /// The smallest estimate: the reservation the VM lived with at its worst.
    pub(super) fn estimate(&self) -> String {
        format!(
            "min by (namespace, name, pod) (min_over_time({}))",
            self.over(rules::ESTIMATE)
        )
    }

    pub(super) fn allowance(&self) -> String {
        format!(
            "max by (namespace, pod, name) (max_over_time({}))",
            self.over(rules::ALLOWANCE)
        )
    }

    /// When each pod's compute container was first reported OOM-killed in the range.
    pub(super) fn kills(&self) -> String {
        let killed: Vec<String> = OOM_KILLED
            .iter()
            .map(|metric| format!("{metric}{{container=\"compute\",reason=\"OOMKilled\"}} > 0"))
            .collect();
        format!(
            "min by (namespace, pod) (min_over_time(timestamp(max by (namespace, pod) ({}))[{}:{}]))",
            killed.join(" or "),
            self.r,
            self.s
        )
    }

    /// Each component's overhead per pod, as hourly means.
    pub(super) fn trends(&self) -> String {
        format!(
            "avg_over_time({}[{TREND_STEP}:{}])[{}:{TREND_STEP}]",
            rule(rules::COMPONENT_OVERHEAD),
            self.s,
            self.r
        )
    }

    pub(super) fn per_component(&self, record: &str) -> String {
        format!(
            "max by (namespace, name, pod, component) (max_over_time({}))",
            self.over(record)
        )
    }

    pub(super) fn guest_memory(&self) -> String {
        let size = per_pod("kubevirt_pod_infra_guest_memory_bytes{type=\"size\"}");
        format!(
            "max by (namespace, name, pod) (max_over_time({size}[{}:{}]))",
            self.r, self.s
        )
    }

    /// `job="<KubeVirt's>"`: KubeVirt's series are read from its own scrape job only, where a
    /// tenant's pod cannot answer.
    pub(super) fn kubevirt(&self) -> String {
        format!("job=\"{}\"", promql_string(&self.job))
    }

    pub(super) fn vcpus(&self) -> String {
        format!(
            "count by (namespace, name) (group by (namespace, name, id) (last_over_time(kubevirt_vmi_vcpu_seconds_total{{{},name!=\"\"}}[{}])))",
            self.kubevirt(),
            self.r
        )
    }

    pub(super) fn instancetypes(&self) -> String {
        format!(
            "group by (namespace, name, instance_type) (last_over_time(kubevirt_vmi_info{{{},instance_type!=\"\",instance_type!=\"<none>\"}}[{}]))",
            self.kubevirt(),
            self.r
        )
    }

    /// Per pod, so that only the releases of vouched pods count.
    pub(super) fn budget_releases(&self) -> String {
        format!(
            "group by (namespace, pod, kubevirt_release, source) (max_over_time(kubevirt_pod_infra_memory_overhead_budget_bytes[{}]))",
            self.r
        )
    }

    pub(super) fn kubevirt_releases(&self) -> String {
        format!(
            "group by (kubeversion) (max_over_time(kubevirt_info{{{},kubeversion!=\"\"}}[{}]))",
            self.kubevirt(),
            self.r
        )
    }

    pub(super) fn vouchers(&self) -> String {
        vouch::query(&self.job, Some(&self.r))
    }
}
