//! What goes into the math and what comes out: each VM's history and the user's settings; each
//! VM's advice, the ratio and what it rests on, its cost, and the refusal when too few VMs count.
//! Plain data, serialized as `kubectl kmc recommend -o json` prints it.

use std::time::Duration;

use serde::Serialize;

use super::super::release;
use crate::vouch::Tally;

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

/// An OOM kill of one of the VM's pods, as kube-state-metrics reported it in the range.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OomKill {
    pub pod: String,
    /// Unix seconds when it was first reported.
    pub at: f64,
    /// The pod's compute container's memory limit minus the guest RAM its cgroup charges
    /// (`rules::ALLOWANCE`); `None` without a limit.
    pub allowance: Option<f64>,
}

/// One component of one pod: its overhead's hourly means (Unix seconds, bytes), oldest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trend {
    pub pod: String,
    pub component: String,
    pub points: Vec<(f64, f64)>,
}

/// A component whose overhead grew in both halves of a pod's history.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Leak {
    pub pod: String,
    pub component: String,
    /// Unix seconds of the pod's first point: it grew from then on.
    pub since: f64,
    /// Bytes a day: the least-squares slope over the pod's whole history.
    pub per_day: f64,
    /// Bytes it grew in the first half and in the second.
    pub growth: [f64; 2],
}

/// A component past its KubeVirt budget.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OverBudget {
    pub component: String,
    pub peak: f64,
    pub budget: f64,
}

/// One VM's history, as Prometheus gave it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VmHistory {
    pub namespace: String,
    pub vm: String,
    /// Launcher pods in the range (a migration or a restart makes two).
    pub pods: usize,
    /// Peak measured overhead in bytes; `None` when the collector exports no QEMU split.
    pub peak: Option<f64>,
    /// KubeVirt's estimate, the smallest in the range.
    pub estimate: Option<f64>,
    /// Seconds from the VM's first measured overhead in the range to its last.
    pub span_seconds: f64,
    pub vcpus: Option<u32>,
    pub guest_memory: Option<f64>,
    pub instancetype: Option<String>,
    pub over_budget: Vec<OverBudget>,
    pub oom_kills: Vec<OomKill>,
    pub trends: Vec<Trend>,
    /// Values of this VM that were not finite, non-negative numbers: `peak: the value is NaN`.
    pub refused: Vec<String>,
}

/// What vouched for the VMs, and what was left out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Screened {
    /// KubeVirt's `kubevirt_vmi_info` vouched; false with `--allow-unvouched` and no such series.
    pub vouched: bool,
    /// Series left out, by reason.
    pub left_out: Tally,
}

/// Everything the recommendation rests on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fleet {
    pub vms: Vec<VmHistory>,
    pub release: release::Facts,
    pub screen: Screened,
}

/// Why a VM does not count towards the ratio.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SetAside {
    OomKilled,
    Leak,
    Outlier,
}

/// The answer for one VM that counted.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VmAdvice {
    pub namespace: String,
    pub vm: String,
    pub shape: String,
    pub pods: usize,
    pub span_seconds: f64,
    /// The largest measured overhead.
    pub peak: f64,
    /// OOM-killed: the overhead reached at least this (the peak, or the allowance at the kill,
    /// whichever is larger); the VM is sized from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_least: Option<f64>,
    /// KubeVirt's estimate divided by the current ratio.
    pub estimate: f64,
    /// (`at_least`, else `peak`) / estimate; a lower bound when OOM-killed.
    pub needed_ratio: f64,
    pub set_aside: Option<SetAside>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_kill: Option<OomKill>,
    pub leaks: Vec<Leak>,
    /// Mi to put in `addedOverhead` when the recommended ratio does not cover this VM.
    pub added_overhead_mi: Option<u64>,
    /// Bytes the recommended ratio reserves beyond the current one: (ratio − current) × estimate.
    pub ratio_cost: f64,
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

/// How the ratio was chosen from the needs of the VMs not set aside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Method {
    /// The nearest-rank quantile: the `rank`-th smallest of `of` needs.
    Quantile { rank: usize, of: usize },
    /// The median of `of` needs, where the quantile's rank would be the largest.
    Median { of: usize },
    /// Every VM was set aside.
    Nothing,
}

/// The outlier fence: needs above `at` are outliers.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Fence {
    /// How many needs it was drawn from: those of the VMs neither OOM-killed nor leaking.
    pub of: usize,
    pub median: f64,
    pub mad: f64,
    pub at: f64,
}

/// What the recommendation costs, in bytes reserved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Cost {
    /// Σ (ratio − current) × estimate over the VMs of the table.
    pub ratio_bytes: f64,
    /// The smallest and the largest of the per-VM terms.
    pub ratio_per_vm: [f64; 2],
    pub vms: usize,
    /// Σ addedOverhead, Mi.
    pub added_mi: u64,
    pub added_vms: usize,
}

/// Everything `recommend` prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Advice {
    /// The recommended `additionalGuestMemoryOverheadRatio`.
    pub ratio: f64,
    pub current_ratio: f64,
    /// The need the ratio covers, before the margin.
    pub basis_ratio: f64,
    pub method: Method,
    /// `None` when no VM was left to draw it from.
    pub fence: Option<Fence>,
    pub shortest_span: f64,
    pub longest_span: f64,
    pub cost: Cost,
    pub budgets: release::Judgement,
    /// Sorted by shape, then needed ratio (largest first).
    pub vms: Vec<VmAdvice>,
    pub groups: Vec<Group>,
    pub left_out: Vec<LeftOut>,
    /// What vouched for the VMs, and the series left out.
    pub series: Screened,
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
    #[error("--current-ratio must be a number of at least 1.0")]
    CurrentRatio,
}
