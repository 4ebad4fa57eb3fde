//! From each VM's history to the cluster's ratio and the per-VM additions (docs/kubectl-kmc.md,
//! "The math"): which VMs are set aside (OOM-killed, leaking, outliers) so that they never drive
//! the ratio, what the ratio rests on, what each VM needs beyond it, and what that costs; no I/O.

mod model;

use std::collections::BTreeMap;

pub use model::{
    Advice, Cost, Fence, Fleet, Group, Leak, LeftOut, Method, OomKill, OverBudget, RecommendError,
    Screened, SetAside, Settings, Trend, VmAdvice, VmHistory,
};

use super::release;
use crate::units::{MI, ceil_mebibytes, human_duration};

/// Scaled MADs above the median where the outlier fence stands: 3, the Hampel identifier's cut.
pub const FENCE_MADS: f64 = 3.0;
/// The MAD times this estimates the standard deviation of normally distributed needs.
pub const MAD_TO_SIGMA: f64 = 1.4826;
/// The least gap between the median need and the fence, in needed ratio: a fleet whose needs lie
/// within a fifth of an estimate of each other has no outlier, however small its MAD.
pub const FENCE_MIN_GAP: f64 = 0.2;
/// The least growth of a component's overhead, in each half of a pod's history, that makes it a
/// leak: more than any warm-up or spike moves a least-squares line over hours of means.
pub const LEAK_MIN_GROWTH: f64 = 10.0 * MI;
/// The fewest points (hourly means) each half needs for its line to say anything.
pub const LEAK_MIN_POINTS: usize = 4;
const DAY: f64 = 86_400.0;

/// The recommendation, or a refusal when too few VMs have enough history.
pub fn recommend(fleet: &Fleet, settings: &Settings) -> Result<Advice, RecommendError> {
    if !(settings.current_ratio.is_finite() && settings.current_ratio >= 1.0) {
        return Err(RecommendError::CurrentRatio);
    }
    let (counted, left_out) = qualify(&fleet.vms, settings);
    if counted.len() < settings.min_vms.max(1) {
        return Err(too_few(counted.len(), &left_out, settings));
    }
    let mut vms: Vec<VmAdvice> = counted.iter().map(|(vm, e)| assess(vm, *e)).collect();
    let fence = fence(&needs(&vms));
    for vm in vms.iter_mut().filter(|v| v.set_aside.is_none()) {
        if fence.is_some_and(|f| vm.needed_ratio > f.at) {
            vm.set_aside = Some(SetAside::Outlier);
        }
    }
    let (method, basis_ratio) = basis(&needs(&vms), settings.quantile);
    let ratio = ratio_for(basis_ratio, settings.margin);
    for vm in &mut vms {
        price(vm, ratio, settings);
    }
    // Needs as printed, to three decimals: VMs whose needs differ by float noise sort by name.
    let printed = |v: &VmAdvice| (v.needed_ratio * 1000.0).round() as i64;
    vms.sort_by(|a, b| {
        a.shape
            .cmp(&b.shape)
            .then(printed(b).cmp(&printed(a)))
            .then_with(|| (&a.namespace, &a.vm).cmp(&(&b.namespace, &b.vm)))
    });
    let spans = vms.iter().map(|v| v.span_seconds);
    Ok(Advice {
        ratio,
        current_ratio: settings.current_ratio,
        basis_ratio,
        method,
        fence,
        shortest_span: spans.clone().fold(f64::INFINITY, f64::min),
        longest_span: spans.fold(0.0, f64::max),
        cost: cost(&vms),
        budgets: release::judge(&fleet.release),
        groups: groups(&vms),
        vms,
        left_out,
        series: fleet.screen.clone(),
    })
}

fn too_few(qualified: usize, left_out: &[LeftOut], settings: &Settings) -> RecommendError {
    let examples: Vec<String> = left_out
        .iter()
        .take(3)
        .map(|l| format!("{}/{}: {}", l.namespace, l.vm, l.why))
        .collect();
    RecommendError::TooFewVms {
        qualified,
        min_vms: settings.min_vms,
        min_history: human_duration(settings.min_history.as_secs_f64()),
        left_out: left_out.len(),
        examples: if examples.is_empty() {
            String::new()
        } else {
            format!(": {}", examples.join("; "))
        },
    }
}

/// A VM that counts, with its estimate divided by the current ratio.
type Counted<'a> = (&'a VmHistory, f64);

/// VMs with a peak, an estimate and enough history; the others with the reason.
fn qualify<'a>(fleet: &'a [VmHistory], settings: &Settings) -> (Vec<Counted<'a>>, Vec<LeftOut>) {
    let mut counted = Vec::new();
    let mut left_out = Vec::new();
    let min = settings.min_history.as_secs_f64();
    for vm in fleet {
        let why = match (vm.peak, vm.estimate) {
            _ if !vm.refused.is_empty() => format!(
                "a value that is not a finite, non-negative number: {}",
                vm.refused.join("; ")
            ),
            (None, _) => "no kubevirt_pod_infra_qemu_own_memory_bytes (a collector without the guest-memory split)".to_owned(),
            (_, None) => "no estimate: neither kubevirt_pod_infra_memory_overhead_estimate_bytes nor kubevirt_vmi_launcher_memory_overhead_bytes".to_owned(),
            (_, Some(e)) if e <= 0.0 => "an estimate of 0".to_owned(),
            _ if vm.span_seconds < min => format!(
                "{} of history, less than --min-history {}",
                human_duration(vm.span_seconds),
                human_duration(min)
            ),
            (_, Some(estimate)) => {
                counted.push((vm, estimate / settings.current_ratio));
                continue;
            }
        };
        left_out.push(LeftOut {
            namespace: vm.namespace.clone(),
            vm: vm.vm.clone(),
            why,
        });
    }
    (counted, left_out)
}

/// One VM before the ratio is known: its need, its kill and its leaks.
fn assess(vm: &VmHistory, estimate: f64) -> VmAdvice {
    let peak = vm.peak.unwrap_or(0.0);
    let oom_kill = vm
        .oom_kills
        .iter()
        .max_by(|a, b| a.at.total_cmp(&b.at))
        .cloned();
    let at_least = oom_kill.as_ref().map(|_| oom_bound(peak, &vm.oom_kills));
    let leaks = leaks(&vm.trends);
    let set_aside = match (&oom_kill, leaks.is_empty()) {
        (Some(_), _) => Some(SetAside::OomKilled),
        (None, false) => Some(SetAside::Leak),
        (None, true) => None,
    };
    VmAdvice {
        namespace: vm.namespace.clone(),
        vm: vm.vm.clone(),
        shape: shape(vm),
        pods: vm.pods,
        span_seconds: vm.span_seconds,
        peak,
        at_least,
        estimate,
        needed_ratio: at_least.unwrap_or(peak) / estimate,
        set_aside,
        oom_kill,
        leaks,
        added_overhead_mi: None,
        ratio_cost: 0.0,
        over_budget: vm.over_budget.clone(),
    }
}

/// What an OOM-killed VM's overhead reached at least. At the kill the compute container's charge
/// reached its limit, and guest RAM can have taken no more of it than the guest RAM the cgroup
/// charges, so the overhead was at least the allowance; the peak measured before is a bound too.
pub fn oom_bound(peak: f64, kills: &[OomKill]) -> f64 {
    kills
        .iter()
        .filter_map(|k| k.allowance)
        .fold(peak, f64::max)
}

/// Each leaking component once, from its most recent pod.
fn leaks(trends: &[Trend]) -> Vec<Leak> {
    let mut found: BTreeMap<String, Leak> = BTreeMap::new();
    for leak in trends.iter().filter_map(leak) {
        let newer = found
            .get(&leak.component)
            .is_none_or(|l| l.since < leak.since);
        if newer {
            found.insert(leak.component.clone(), leak);
        }
    }
    found.into_values().collect()
}

/// A leak when the component grew more than [`LEAK_MIN_GROWTH`] in each half of the pod's
/// history: a least-squares line through each half's points, its slope times the half's length.
/// A warm-up grows in the first half only, a spike barely tilts a line over hours of means.
pub fn leak(trend: &Trend) -> Option<Leak> {
    let points = &trend.points;
    let (first, last) = (points.first()?.0, points.last()?.0);
    let middle = (first + last) / 2.0;
    let split = points.partition_point(|(t, _)| *t < middle);
    let (early, late) = points.split_at(split);
    if early.len() < LEAK_MIN_POINTS || late.len() < LEAK_MIN_POINTS {
        return None;
    }
    let growth = [grown(early)?, grown(late)?];
    growth
        .iter()
        .all(|g| *g > LEAK_MIN_GROWTH)
        .then(|| {
            Some(Leak {
                pod: trend.pod.clone(),
                component: trend.component.clone(),
                since: first,
                per_day: slope(points)? * DAY,
                growth,
            })
        })
        .flatten()
}

/// The least-squares slope of `points`, per second; `None` for fewer than two distinct times.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    let mean_t = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_v = points.iter().map(|p| p.1).sum::<f64>() / n;
    let spread: f64 = points.iter().map(|(t, _)| (t - mean_t).powi(2)).sum();
    let covariance: f64 = points
        .iter()
        .map(|(t, v)| (t - mean_t) * (v - mean_v))
        .sum();
    (spread > 0.0).then(|| covariance / spread)
}

/// How much the line through `points` rose from their first time to their last.
fn grown(points: &[(f64, f64)]) -> Option<f64> {
    let span = points.last()?.0 - points.first()?.0;
    Some(slope(points)? * span)
}

/// The needs of the VMs not set aside.
fn needs(vms: &[VmAdvice]) -> Vec<f64> {
    vms.iter()
        .filter(|v| v.set_aside.is_none())
        .map(|v| v.needed_ratio)
        .collect()
}

/// The median and the median absolute deviation of `needs`, and the fence above them.
pub fn fence(needs: &[f64]) -> Option<Fence> {
    let median = median(needs)?;
    let deviations: Vec<f64> = needs.iter().map(|r| (r - median).abs()).collect();
    let mad = self::median(&deviations)?;
    let gap = (FENCE_MADS * MAD_TO_SIGMA * mad).max(FENCE_MIN_GAP);
    Some(Fence {
        of: needs.len(),
        median,
        mad,
        at: median + gap,
    })
}

/// The middle value, or the mean of the two middle values.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The rank (1-based) of the nearest-rank `q`-quantile of `n` values: the smallest `k` such that
/// at least a share `q` of them are at or below the `k`-th smallest.
pub fn nearest_rank(n: usize, q: f64) -> usize {
    // A small tolerance keeps q·n = 99.0000001 from taking the next rank.
    ((q * n as f64) - 1e-9).ceil().clamp(1.0, n.max(1) as f64) as usize
}

/// The need the ratio covers. Where the `q`-quantile's rank is the largest (fewer than
/// 1 / (1 − q) VMs), the quantile would be the one neediest VM: the median is covered instead,
/// and every VM above it gets its own addedOverhead. `q` = 1 asks for the largest on purpose.
pub fn basis(needs: &[f64], q: f64) -> (Method, f64) {
    let mut sorted = needs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return (Method::Nothing, 0.0);
    }
    let rank = nearest_rank(n, q);
    match median(&sorted) {
        Some(median) if rank == n && q < 1.0 => (Method::Median { of: n }, median),
        _ => (Method::Quantile { rank, of: n }, sorted[rank - 1]),
    }
}

/// `max(1, basis × (1 + margin))`, rounded up to hundredths as the KubeVirt CR carries it.
pub fn ratio_for(basis_ratio: f64, margin: f64) -> f64 {
    let raw = basis_ratio * (1.0 + margin);
    ((raw * 100.0 - 1e-6).ceil() / 100.0).max(1.0)
}

/// The VM's addedOverhead (what it needs with the margin beyond `ratio` × its estimate) and what
/// the ratio's change costs it.
fn price(vm: &mut VmAdvice, ratio: f64, settings: &Settings) {
    vm.added_overhead_mi = added_overhead_mi(vm, ratio, settings.margin);
    vm.ratio_cost = (ratio - settings.current_ratio) * vm.estimate;
}

/// What the VM needs with the margin beyond `ratio` × its estimate, in Mi rounded up; none when
/// `ratio` covers it.
pub fn added_overhead_mi(vm: &VmAdvice, ratio: f64, margin: f64) -> Option<u64> {
    let target = vm.at_least.unwrap_or(vm.peak) * (1.0 + margin);
    let shortfall = target - ratio * vm.estimate;
    // A shortfall of float error (a ratio that covers the VM exactly) asks for nothing.
    Some(ceil_mebibytes(shortfall)).filter(|mi| *mi > 0)
}

/// The ratio's cost summed over the VMs, and every addedOverhead.
pub fn cost(vms: &[VmAdvice]) -> Cost {
    let costs = vms.iter().map(|v| v.ratio_cost);
    let added: Vec<u64> = vms.iter().filter_map(|v| v.added_overhead_mi).collect();
    Cost {
        ratio_bytes: costs.clone().sum(),
        ratio_per_vm: [
            costs.clone().fold(f64::INFINITY, f64::min),
            costs.fold(f64::NEG_INFINITY, f64::max),
        ]
        .map(|c| if c.is_finite() { c } else { 0.0 }),
        vms: vms.len(),
        added_mi: added.iter().sum(),
        added_vms: added.len(),
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
mod tests;
