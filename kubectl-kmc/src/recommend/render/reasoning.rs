//! What both the table and the patches say: where the ratio is set, the reasoning behind it, the
//! cost, each set-aside VM's diagnosis, and how numbers are spelled. No I/O.

use super::super::math::{
    Advice, FENCE_MADS, FENCE_MIN_GAP, LEAK_MIN_GROWTH, MAD_TO_SIGMA, Method, SetAside, Settings,
    VmAdvice, added_overhead_mi,
};
use super::super::target::{Manager, Target};
use crate::units::{MI, human_duration, mebibytes, promql_duration, signed_mebibytes, utc};

/// Why HCO is not simply patched: said in the table and the YAML alike.
pub(super) const HCO_WHY: &str = "HCO reverts a patch of the KubeVirt CR it owns (alert KubeVirtCRModified) and has no field for additionalGuestMemoryOverheadRatio; its kubevirt.kubevirt.io/jsonpatch annotation sets it, but HCO reports that as unsupported (condition TaintedConfiguration, alert UnsupportedHCOModification)";

/// Where the ratio is set and where the current one came from; nothing when the cluster was not
/// read.
pub fn target_lines(advice: &Advice, settings: &Settings, target: &Target) -> Vec<String> {
    let now = format!(
        "now {}: {}",
        ratio_text(advice.current_ratio),
        target.current_from
    );
    match &target.manager {
        Manager::Unread => vec![],
        Manager::KubeVirt { object, no_hco } => vec![
            now,
            format!("set in the KubeVirt CR {object}: no HyperConverged manages it ({no_hco})"),
        ],
        Manager::HyperConverged { object, .. } => {
            let added = added_at_current(advice, settings);
            let total: u64 = added.iter().map(|(_, mi)| mi).sum();
            vec![
                now,
                format!("KubeVirt is managed by HyperConverged {object}: {HCO_WHY}"),
                format!(
                    "so each VM's own addedOverhead at the current ratio comes first: {} on {} VM(s) (-o yaml), the annotation after it as the unsupported alternative",
                    signed_mebibytes(total as f64 * MI),
                    added.len()
                ),
            ]
        }
    }
}

/// Each VM's addedOverhead when the ratio stays as it is.
pub(super) fn added_at_current<'a>(
    advice: &'a Advice,
    settings: &Settings,
) -> Vec<(&'a VmAdvice, u64)> {
    advice
        .vms
        .iter()
        .filter_map(|vm| {
            added_overhead_mi(vm, advice.current_ratio, settings.margin).map(|mi| (vm, mi))
        })
        .collect()
}

/// How much data the answer rests on, in one line.
pub(super) fn basis(advice: &Advice, settings: &Settings) -> String {
    format!(
        "from {} VM(s) with {} to {} of history each (range {}, quantile {}, margin {}%)",
        advice.vms.len(),
        human_duration(advice.shortest_span),
        human_duration(advice.longest_span),
        promql_duration(settings.range),
        settings.quantile,
        round2(settings.margin * 100.0)
    )
}

/// The method, step by step, with this fleet's numbers: what the command did and why.
pub fn reasoning(advice: &Advice, settings: &Settings) -> Vec<String> {
    let margin = format!("{}%", round2(settings.margin * 100.0));
    let count = |what: SetAside| {
        advice
            .vms
            .iter()
            .filter(|v| v.set_aside == Some(what))
            .count()
    };
    let mut lines = vec![basis(advice, settings)];
    lines.extend(vouching(advice));
    lines.push(format!(
        "set aside, so that none of them drives the ratio: {} OOM-killed, {} leaking, {} outlier(s)",
        count(SetAside::OomKilled),
        count(SetAside::Leak),
        count(SetAside::Outlier)
    ));
    let raw = advice.basis_ratio * (1.0 + settings.margin);
    let rounded = format!(
        "× (1 + margin {margin}) = {raw:.3}, rounded up to hundredths, at least 1.0: {}",
        ratio_text(advice.ratio)
    );
    lines.push(match advice.method {
        Method::Quantile { rank, of } => format!(
            "ratio: {:.3}, the nearest-rank {} quantile of the needed ratios of the {of} VM(s) not set aside (the {} smallest), {rounded}",
            advice.basis_ratio,
            settings.quantile,
            ordinal(rank)
        ),
        Method::Median { of } => format!(
            "ratio: {:.3}, the median of the needed ratios of the {of} VM(s) not set aside (with fewer than 1/(1 − {}) = {} of them, the nearest-rank quantile would be the largest), {rounded}",
            advice.basis_ratio,
            settings.quantile,
            round2(1.0 / (1.0 - settings.quantile))
        ),
        Method::Nothing => format!(
            "ratio: no VM is left to rest on: {}",
            ratio_text(advice.ratio)
        ),
    });
    lines.push(format!(
        "addedOverhead: each VM the ratio does not cover gets peak × (1 + margin {margin}) − ratio × estimate, rounded up to Mi"
    ));
    if let Some(fence) = advice.fence {
        lines.push(format!(
            "outliers: needed ratio above {:.3} = median {:.3} + max({FENCE_MADS} × {MAD_TO_SIGMA} × MAD {:.3}, {FENCE_MIN_GAP}), of the {} VM(s) neither OOM-killed nor leaking",
            fence.at, fence.median, fence.mad, fence.of
        ));
    }
    lines.push(format!(
        "leaks: a component whose overhead grew more than {} in each half of a pod's history (a least-squares line through hourly means)",
        mebibytes(LEAK_MIN_GROWTH)
    ));
    lines.push("OOM-killed: kube-state-metrics reports the compute container OOMKilled in the range; its charge had reached the limit, so the overhead was at least the allowance (limit − guest RAM the cgroup charges): PEAK is that lower bound (≥) when larger".into());
    lines.push(cost(advice));
    lines.push(format!("budgets: {}", advice.budgets.describe()));
    lines
}

/// Which series counted as VMs, and how many were left out and why.
pub(super) fn vouching(advice: &Advice) -> Vec<String> {
    let series = &advice.series;
    let mut lines = vec![if series.vouched {
        "VMs: only those KubeVirt vouches for (kubevirt_vmi_info: each VMI, and the launcher pods it names)".to_owned()
    } else {
        "VMs: UNVOUCHED (--allow-unvouched, no kubevirt_vmi_info): every series counted as a VM's, so a pod posing as a VM steers the ratio".to_owned()
    }];
    lines.extend(series.left_out.lines());
    lines
}

pub(super) fn cost(advice: &Advice) -> String {
    let c = &advice.cost;
    let added = c.added_mi as f64 * MI;
    format!(
        "cost: ratio {} → {}: {} over {} VM(s) ({} to {} each); addedOverhead: {} on {} VM(s); together {}",
        ratio_text(advice.current_ratio),
        ratio_text(advice.ratio),
        signed_mebibytes(c.ratio_bytes),
        c.vms,
        signed_mebibytes(c.ratio_per_vm[0]),
        signed_mebibytes(c.ratio_per_vm[1]),
        signed_mebibytes(added),
        c.added_vms,
        signed_mebibytes(c.ratio_bytes + added)
    )
}

/// Why a VM was set aside, with its figures.
pub(super) fn diagnosis(vm: &VmAdvice, advice: &Advice) -> String {
    let mut parts = Vec::new();
    if let Some(kill) = &vm.oom_kill {
        let bound = match kill.allowance {
            Some(a) if a >= vm.peak => format!(
                "the overhead then was at least its allowance {}, above the {} measured",
                mebibytes(a),
                mebibytes(vm.peak)
            ),
            Some(a) => format!(
                "the overhead then was at least the {} measured (its allowance, {}, left room in untouched guest RAM)",
                mebibytes(vm.peak),
                mebibytes(a)
            ),
            None => format!(
                "no memory limit, so no bound beyond the {} measured",
                mebibytes(vm.peak)
            ),
        };
        parts.push(format!(
            "OOM-killed at {} (pod {}): {bound}",
            utc(kill.at),
            kill.pod
        ));
    }
    for leak in &vm.leaks {
        parts.push(format!(
            "leak in {} since {}: {}/day (pod {}); no reservation holds a leak, an addedOverhead only postpones its OOM kill",
            leak.component,
            utc(leak.since),
            signed_mebibytes(leak.per_day),
            leak.pod
        ));
    }
    if vm.set_aside == Some(SetAside::Outlier) {
        let fence = advice.fence.map_or(0.0, |f| f.at);
        parts.push(format!(
            "an outlier: its need {:.3} is above the fence {fence:.3}",
            vm.needed_ratio
        ));
    }
    parts.join("; ")
}

/// The ratio as the KubeVirt CR's string: at most two decimals, no trailing zeros.
pub fn ratio_text(ratio: f64) -> String {
    let text = format!("{ratio:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.contains('.') {
        text.to_owned()
    } else {
        format!("{text}.0")
    }
}

/// `1st`, `2nd`, `3rd`, `11th`, `270th`.
pub(super) fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

pub(super) fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}
