//! `kubectl kmc recommend`'s table: the ratio, each VM's row and diagnosis, the reasoning. No I/O.

use super::super::math::{Advice, SetAside, Settings, VmAdvice};
use super::super::target::Target;
use super::reasoning::{diagnosis, ratio_text, reasoning, target_lines};
use crate::table;
use crate::text::escape;
use crate::units::{MI, human_duration, mebibytes, signed_mebibytes};

/// The recommendation as a table, each VM a row, with the reasoning under it.
pub(super) fn render(advice: &Advice, settings: &Settings, target: &Target) -> String {
    let mut out = format!(
        "additionalGuestMemoryOverheadRatio: {} (now {})\n",
        ratio_text(advice.ratio),
        ratio_text(advice.current_ratio)
    );
    let lines = target_lines(advice, settings, target);
    for line in lines.into_iter().chain(reasoning(advice, settings)) {
        out.push_str(&format!("  {}\n", escape(&line)));
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = advice.vms.iter().map(vm_row).collect();
    out.push_str(&table::render(
        &[
            "SHAPE",
            "NAMESPACE",
            "VM",
            "HISTORY",
            "PEAK",
            "ESTIMATE",
            "NEEDED",
            "SET-ASIDE",
            "ADDED-OVERHEAD",
            "COST",
            "OVER-BUDGET",
        ],
        &rows,
    ));
    out.push('\n');
    let groups: Vec<Vec<String>> = advice
        .groups
        .iter()
        .map(|g| {
            vec![
                g.shape.clone(),
                g.vms.to_string(),
                format!("{:.3}", g.max_needed_ratio),
            ]
        })
        .collect();
    out.push_str(&table::render(&["SHAPE", "VMS", "MAX-NEEDED"], &groups));
    let aside: Vec<&VmAdvice> = advice
        .vms
        .iter()
        .filter(|v| v.set_aside.is_some())
        .collect();
    if !aside.is_empty() {
        out.push_str("\nSet aside from the ratio:\n");
        for vm in aside {
            let line = format!("{}/{}: {}", vm.namespace, vm.vm, diagnosis(vm, advice));
            out.push_str(&format!("  {}\n", escape(&line)));
        }
    }
    if !advice.left_out.is_empty() {
        out.push_str("\nLeft out:\n");
        for l in &advice.left_out {
            let line = format!("{}/{}: {}", l.namespace, l.vm, l.why);
            out.push_str(&format!("  {}\n", escape(&line)));
        }
    }
    out
}

fn vm_row(vm: &VmAdvice) -> Vec<String> {
    let over = if vm.over_budget.is_empty() {
        "-".to_owned()
    } else {
        vm.over_budget
            .iter()
            .map(|o| {
                format!(
                    "{} {}>{}",
                    o.component,
                    mebibytes(o.peak),
                    mebibytes(o.budget)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let bound = if vm.at_least.is_some() { "≥" } else { "" };
    let added = vm.added_overhead_mi.unwrap_or(0) as f64 * MI;
    vec![
        vm.shape.clone(),
        vm.namespace.clone(),
        vm.vm.clone(),
        human_duration(vm.span_seconds),
        format!("{bound}{}", mebibytes(vm.at_least.unwrap_or(vm.peak))),
        mebibytes(vm.estimate),
        format!("{bound}{:.3}", vm.needed_ratio),
        vm.set_aside.map_or("-", set_aside_text).to_owned(),
        vm.added_overhead_mi
            .map_or_else(|| "-".to_owned(), |mi| format!("{mi}Mi")),
        signed_mebibytes(vm.ratio_cost + added),
        over,
    ]
}

fn set_aside_text(reason: SetAside) -> &'static str {
    match reason {
        SetAside::OomKilled => "oom-killed",
        SetAside::Leak => "leak",
        SetAside::Outlier => "outlier",
    }
}
