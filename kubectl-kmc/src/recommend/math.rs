//! From each VM's peak measured overhead and KubeVirt's estimate to the cluster's ratio and the
//! per-VM additions (docs/kubectl-kmc.md, "The math"); no I/O.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::units::{MI, ceil_mebibytes, human_duration};

/// What the user asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub range: Duration,
    pub quantile: f64,
    pub margin: f64,
    pub min_history: Duration,
    pub min_vms: usize,
    pub resolution: Duration,
    pub current_ratio: f64,
}

/// Where a VM's estimate came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EstimateSource {
    /// The collector's `kubevirt_pod_infra_memory_overhead_estimate_bytes` (the pod annotation).
    Pod,
    /// KubeVirt's own `kubevirt_vmi_launcher_memory_overhead_bytes`.
    KubeVirt,
}

/// One VM's history, as Prometheus gave it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VmHistory {
    pub namespace: String,
    pub vm: String,
    /// Peak measured overhead in bytes; `None` when the collector exports no QEMU split.
    pub peak: Option<f64>,
    pub estimate: Option<(f64, EstimateSource)>,
    /// Seconds from the VM's first sample in the range to its last.
    pub span_seconds: f64,
    pub vcpus: Option<u32>,
    pub guest_memory: Option<f64>,
    pub instancetype: Option<String>,
    /// Peak resident bytes per role (QEMU: its own memory, outside guest RAM).
    pub role_peaks: BTreeMap<String, f64>,
    /// Peak of the pod's page tables, all roles.
    pub page_tables_peak: Option<f64>,
}

/// A role whose peak passed KubeVirt's budget for it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OverBudget {
    pub role: String,
    pub peak: f64,
    pub budget: f64,
}

/// The answer for one VM that counted.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VmAdvice {
    pub namespace: String,
    pub vm: String,
    pub shape: String,
    pub span_seconds: f64,
    pub peak: f64,
    /// KubeVirt's estimate divided by the current ratio.
    pub estimate: f64,
    pub source: EstimateSource,
    /// peak / estimate.
    pub needed_ratio: f64,
    /// Mi to put in `addedOverhead` when the recommended ratio does not cover this VM.
    pub added_overhead_mi: Option<u64>,
    pub over_budget: Vec<OverBudget>,
}

/// A VM that did not count, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeftOut {
    pub namespace: String,
    pub vm: String,
    pub why: String,
}

/// One group of VMs of the same shape.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Group {
    pub shape: String,
    pub vms: usize,
    pub max_needed_ratio: f64,
}

/// Everything `recommend` prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Advice {
    /// The recommended `additionalGuestMemoryOverheadRatio`.
    pub ratio: f64,
    /// The chosen quantile of the needed ratios, before the margin.
    pub quantile_ratio: f64,
    pub shortest_span: f64,
    pub longest_span: f64,
    /// Sorted by shape, then needed ratio (largest first).
    pub vms: Vec<VmAdvice>,
    pub groups: Vec<Group>,
    pub left_out: Vec<LeftOut>,
}

/// Too little data to answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecommendError {
    #[error(
        "refusing to recommend: {qualified} VM(s) with at least {min_history} of history and an estimate, fewer than --min-vms {min_vms} ({left_out} left out{examples}); wait for more history or lower the minimums"
    )]
    TooFewVms {
        qualified: usize,
        min_vms: usize,
        min_history: String,
        left_out: usize,
        examples: String,
    },
    #[error("--current-ratio must be at least 1.0")]
    CurrentRatio,
}

/// KubeVirt v1.9.0's per-process constants (docs/kubevirt.md §5), in Mi.
const ROLE_BUDGETS_MI: [(&str, f64); 5] = [
    ("virt-launcher-monitor", 25.0),
    ("virt-launcher", 100.0),
    ("virtlogd", 25.0),
    ("virtqemud", 40.0),
    ("swtpm", 53.0),
];
/// `QemuOverhead`, and KubeVirt's terms that are QEMU's own threads.
const QEMU_MI: f64 = 30.0;
const PER_VCPU_MI: f64 = 8.0;
const IOTHREAD_MI: f64 = 8.0;
/// KubeVirt budgets guest page tables as memory / 512.
const PAGE_TABLE_DIVISOR: f64 = 512.0;

/// The recommendation, or a refusal when too few VMs have enough history.
pub fn recommend(fleet: &[VmHistory], settings: &Settings) -> Result<Advice, RecommendError> {
    if settings.current_ratio < 1.0 {
        return Err(RecommendError::CurrentRatio);
    }
    let (counted, left_out) = qualify(fleet, settings);
    if counted.len() < settings.min_vms.max(1) {
        let examples: Vec<String> = left_out
            .iter()
            .take(3)
            .map(|l| format!("{}/{}: {}", l.namespace, l.vm, l.why))
            .collect();
        return Err(RecommendError::TooFewVms {
            qualified: counted.len(),
            min_vms: settings.min_vms,
            min_history: human_duration(settings.min_history.as_secs_f64()),
            left_out: left_out.len(),
            examples: if examples.is_empty() {
                String::new()
            } else {
                format!(": {}", examples.join("; "))
            },
        });
    }
    let needs: Vec<f64> = counted
        .iter()
        .map(|(vm, est, _)| needed(vm, *est))
        .collect();
    let quantile_ratio = nearest_rank(&needs, settings.quantile);
    let ratio = ratio_for(quantile_ratio, settings.margin);
    let mut vms: Vec<VmAdvice> = counted
        .iter()
        .map(|(vm, estimate, source)| advise(vm, *estimate, *source, ratio, settings.margin))
        .collect();
    vms.sort_by(|a, b| {
        a.shape
            .cmp(&b.shape)
            .then(b.needed_ratio.total_cmp(&a.needed_ratio))
            .then_with(|| (&a.namespace, &a.vm).cmp(&(&b.namespace, &b.vm)))
    });
    let spans = vms.iter().map(|v| v.span_seconds);
    Ok(Advice {
        ratio,
        quantile_ratio,
        shortest_span: spans.clone().fold(f64::INFINITY, f64::min),
        longest_span: spans.fold(0.0, f64::max),
        groups: groups(&vms),
        vms,
        left_out,
    })
}

type Counted<'a> = (&'a VmHistory, f64, EstimateSource);

/// VMs with a peak, an estimate and enough history; the others with the reason.
fn qualify<'a>(fleet: &'a [VmHistory], settings: &Settings) -> (Vec<Counted<'a>>, Vec<LeftOut>) {
    let mut counted = Vec::new();
    let mut left_out = Vec::new();
    let min = settings.min_history.as_secs_f64();
    for vm in fleet {
        let why = match (vm.peak, vm.estimate) {
            (None, _) => Some("no kubevirt_pod_infra_qemu_own_memory_bytes (a collector without the guest-memory split)".to_owned()),
            (_, None) => Some("no estimate: neither kubevirt_pod_infra_memory_overhead_estimate_bytes nor kubevirt_vmi_launcher_memory_overhead_bytes".to_owned()),
            (_, Some((e, _))) if e <= 0.0 => Some("an estimate of 0".to_owned()),
            _ if vm.span_seconds < min => Some(format!(
                "{} of history, less than --min-history {}",
                human_duration(vm.span_seconds),
                human_duration(min)
            )),
            _ => None,
        };
        match (why, vm.estimate) {
            (None, Some((estimate, source))) => {
                counted.push((vm, estimate / settings.current_ratio, source));
            }
            (why, _) => left_out.push(LeftOut {
                namespace: vm.namespace.clone(),
                vm: vm.vm.clone(),
                why: why.unwrap_or_default(),
            }),
        }
    }
    (counted, left_out)
}

fn needed(vm: &VmHistory, estimate: f64) -> f64 {
    vm.peak.unwrap_or(0.0) / estimate
}

/// The smallest value such that at least `q` of `values` are at or below it (nearest rank).
pub fn nearest_rank(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return 0.0;
    }
    // A small tolerance keeps q·n = 99.0000001 from taking the next rank.
    let rank = ((q * n as f64) - 1e-9).ceil().clamp(1.0, n as f64) as usize;
    sorted[rank - 1]
}

/// `max(1, quantile × (1 + margin))`, rounded up to hundredths as the KubeVirt CR carries it.
pub fn ratio_for(quantile_ratio: f64, margin: f64) -> f64 {
    let raw = quantile_ratio * (1.0 + margin);
    ((raw * 100.0 - 1e-6).ceil() / 100.0).max(1.0)
}

fn advise(
    vm: &VmHistory,
    estimate: f64,
    source: EstimateSource,
    ratio: f64,
    margin: f64,
) -> VmAdvice {
    let peak = vm.peak.unwrap_or(0.0);
    let target = peak * (1.0 + margin);
    let shortfall = target - ratio * estimate;
    VmAdvice {
        namespace: vm.namespace.clone(),
        vm: vm.vm.clone(),
        shape: shape(vm),
        span_seconds: vm.span_seconds,
        peak,
        estimate,
        source,
        needed_ratio: peak / estimate,
        added_overhead_mi: (shortfall > 0.0).then(|| ceil_mebibytes(shortfall)),
        over_budget: over_budget(vm),
    }
}

/// The instancetype, else `<vCPUs>vCPU/<guest memory>`.
pub fn shape(vm: &VmHistory) -> String {
    if let Some(name) = &vm.instancetype {
        return name.clone();
    }
    let cpus = vm.vcpus.map_or_else(|| "?".to_owned(), |n| n.to_string());
    let memory = vm.guest_memory.map_or_else(
        || "?".to_owned(),
        |bytes| {
            let gi = bytes / (1024.0 * MI);
            if gi >= 1.0 && gi.fract() == 0.0 {
                format!("{gi}Gi")
            } else {
                format!("{}Mi", (bytes / MI).round())
            }
        },
    );
    format!("{cpus}vCPU/{memory}")
}

/// Roles past their KubeVirt budget, and the page tables past memory/512.
pub fn over_budget(vm: &VmHistory) -> Vec<OverBudget> {
    let mut budgets: Vec<(String, f64)> = ROLE_BUDGETS_MI
        .iter()
        .map(|(role, mi)| ((*role).to_owned(), mi * MI))
        .collect();
    let qemu = QEMU_MI + IOTHREAD_MI + PER_VCPU_MI * f64::from(vm.vcpus.unwrap_or(0));
    budgets.push(("qemu".into(), qemu * MI));
    let mut over: Vec<OverBudget> = budgets
        .into_iter()
        .filter_map(|(role, budget)| {
            let peak = *vm.role_peaks.get(&role)?;
            (peak > budget).then_some(OverBudget { role, peak, budget })
        })
        .collect();
    if let (Some(peak), Some(memory)) = (vm.page_tables_peak, vm.guest_memory) {
        let budget = memory / PAGE_TABLE_DIVISOR;
        if peak > budget {
            over.push(OverBudget {
                role: "page_tables".into(),
                peak,
                budget,
            });
        }
    }
    over
}

fn groups(vms: &[VmAdvice]) -> Vec<Group> {
    let mut groups: BTreeMap<&str, Group> = BTreeMap::new();
    for vm in vms {
        let group = groups.entry(&vm.shape).or_insert_with(|| Group {
            shape: vm.shape.clone(),
            vms: 0,
            max_needed_ratio: 0.0,
        });
        group.vms += 1;
        group.max_needed_ratio = group.max_needed_ratio.max(vm.needed_ratio);
    }
    groups.into_values().collect()
}

#[cfg(test)]
#[path = "math_tests.rs"]
mod tests;
