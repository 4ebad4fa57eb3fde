//! The recommendation as a table with its reasoning, as merge patches an admin can apply, or as
//! JSON; no I/O. Every line is escaped ([`escape`]), and a printed command names a VM only when
//! its name and namespace are Kubernetes names, shell-quoted besides: the names come from label
//! values, which whoever wrote the series chose.

use anyhow::Result;
use serde_json::{Value, json};

use super::math::{
    Advice, FENCE_MADS, FENCE_MIN_GAP, LEAK_MIN_GROWTH, MAD_TO_SIGMA, Method, SetAside, Settings,
    VmAdvice, added_overhead_mi,
};
use super::target::{HCO_JSONPATCH, Manager, Object, Target, jsonpatch_with_ratio};
use crate::cli::RecommendOutput;
use crate::table;
use crate::text::{dns1123_label, dns1123_subdomain, escape, shell_quote, to_json};
use crate::units::{MI, human_duration, mebibytes, promql_duration, signed_mebibytes, utc};

/// The table, the YAML patches or the JSON, for a cluster that was not read: the KubeVirt CR at
/// its usual name takes the ratio.
pub fn render(advice: &Advice, settings: &Settings, output: RecommendOutput) -> Result<String> {
    render_for(advice, settings, &Target::default(), output)
}

/// The table, the YAML patches or the JSON, for where `target` says the ratio is set.
pub fn render_for(
    advice: &Advice,
    settings: &Settings,
    target: &Target,
    output: RecommendOutput,
) -> Result<String> {
    match output {
        RecommendOutput::Table => Ok(render_table(advice, settings, target)),
        RecommendOutput::Yaml => render_yaml(advice, settings, target),
        RecommendOutput::Json => Ok(to_json(advice)?),
    }
}

/// Why HCO is not simply patched: said in the table and the YAML alike.
const HCO_WHY: &str = "HCO reverts a patch of the KubeVirt CR it owns (alert KubeVirtCRModified) and has no field for additionalGuestMemoryOverheadRatio; its kubevirt.kubevirt.io/jsonpatch annotation sets it, but HCO reports that as unsupported (condition TaintedConfiguration, alert UnsupportedHCOModification)";

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
fn added_at_current<'a>(advice: &'a Advice, settings: &Settings) -> Vec<(&'a VmAdvice, u64)> {
    advice
        .vms
        .iter()
        .filter_map(|vm| {
            added_overhead_mi(vm, advice.current_ratio, settings.margin).map(|mi| (vm, mi))
        })
        .collect()
}

/// How much data the answer rests on, in one line.
fn basis(advice: &Advice, settings: &Settings) -> String {
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
fn vouching(advice: &Advice) -> Vec<String> {
    let series = &advice.series;
    let mut lines = vec![if series.vouched {
        "VMs: only those KubeVirt vouches for (kubevirt_vmi_info: each VMI, and the launcher pods it names)".to_owned()
    } else {
        "VMs: UNVOUCHED (--allow-unvouched, no kubevirt_vmi_info): every series counted as a VM's, so a pod posing as a VM steers the ratio".to_owned()
    }];
    lines.extend(series.left_out.lines());
    lines
}

fn cost(advice: &Advice) -> String {
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

fn render_table(advice: &Advice, settings: &Settings, target: &Target) -> String {
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

/// Why a VM was set aside, with its figures.
fn diagnosis(vm: &VmAdvice, advice: &Advice) -> String {
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

/// The patch of the KubeVirt CR, then one per VM that needs an addedOverhead, each a YAML
/// document whose comments say why and give the command that applies it. Under HyperConverged,
/// each VM's addedOverhead at the current ratio first, then the annotation as the alternative.
fn render_yaml(advice: &Advice, settings: &Settings, target: &Target) -> Result<String> {
    let mut out = String::new();
    if let Manager::HyperConverged { object, existing } = &target.manager {
        out.push_str(&format!(
            "# {}\n",
            escape(&format!(
                "KubeVirt is managed by HyperConverged {object}: {HCO_WHY}; so first each VM's addedOverhead at the current ratio {} ({}), then the ratio through the annotation instead",
                ratio_text(advice.current_ratio),
                target.current_from
            ))
        ));
        for (vm, mi) in added_at_current(advice, settings) {
            out.push_str(&vm_document(vm, mi, advice)?);
        }
        let annotation = jsonpatch_with_ratio(existing.as_deref(), &ratio_text(advice.ratio));
        let patch = json!({"metadata": {"annotations": {
            HCO_JSONPATCH: annotation.as_deref().unwrap_or_default()
        }}});
        let command = match &annotation {
            Ok(value) => annotate_command(object, value),
            Err(why) => format!("no command: {why}"),
        };
        out.push_str(&document(
            &[
                format!(
                    "instead of the addedOverheads above, unsupported by HCO (with it, the VMs it does not cover need the table's ADDED-OVERHEAD): additionalGuestMemoryOverheadRatio {} through {HCO_JSONPATCH} (its other operations kept) {}",
                    ratio_text(advice.ratio),
                    basis(advice, settings)
                ),
                cost(advice),
                command,
            ],
            &patch,
        )?);
        return Ok(out);
    }
    let ratio = json!({"spec": {"configuration": {
        "additionalGuestMemoryOverheadRatio": ratio_text(advice.ratio)
    }}});
    let mut comments = vec![format!(
        "additionalGuestMemoryOverheadRatio {}",
        basis(advice, settings)
    )];
    let kubevirt = match &target.manager {
        Manager::KubeVirt { object, no_hco } => {
            comments.push(format!(
                "the KubeVirt CR {object}, now {} ({}); no HyperConverged manages it ({no_hco})",
                ratio_text(advice.current_ratio),
                target.current_from
            ));
            object.clone()
        }
        _ => Object {
            namespace: "kubevirt".into(),
            name: "kubevirt".into(),
        },
    };
    comments.push(cost(advice));
    comments.push(kubevirt_command(&kubevirt, &ratio));
    out.push_str(&document(&comments, &ratio)?);
    for vm in &advice.vms {
        if let Some(mi) = vm.added_overhead_mi {
            out.push_str(&vm_document(vm, mi, advice)?);
        }
    }
    Ok(out)
}

/// One VM's addedOverhead of `mi` Mi, with why and its command.
fn vm_document(vm: &VmAdvice, mi: u64, advice: &Advice) -> Result<String> {
    let patch = json!({"spec": {"template": {"spec": {"domain": {"memory": {
        "reservedOverhead": {"addedOverhead": format!("{mi}Mi")}
    }}}}}});
    let bound = if vm.at_least.is_some() { "≥ " } else { "" };
    let mut comments = vec![format!(
        "{}/{}: peak {bound}{} needs {bound}{:.3}× its estimate {}, over {} of history; takes effect when the VM restarts",
        vm.namespace,
        vm.vm,
        mebibytes(vm.at_least.unwrap_or(vm.peak)),
        vm.needed_ratio,
        mebibytes(vm.estimate),
        human_duration(vm.span_seconds)
    )];
    if vm.set_aside.is_some() {
        comments.push(diagnosis(vm, advice));
    }
    comments.push(patch_command(&vm.namespace, &vm.vm, &patch));
    document(&comments, &patch)
}

/// `kubectl patch kubevirt`, when the CR's names are Kubernetes names.
fn kubevirt_command(object: &Object, patch: &Value) -> String {
    match names(object, "KubeVirt") {
        Ok(()) => format!(
            "kubectl patch kubevirt {} -n {} --type merge -p {}",
            shell_quote(&object.name),
            shell_quote(&object.namespace),
            shell_quote(&patch.to_string())
        ),
        Err(error) => format!("no command: {error}"),
    }
}

/// `kubectl annotate --overwrite hyperconverged`, as HCO's documentation sets the annotation.
/// The annotation keeps whatever operations were in it, so it may hold a backslash (JSON's
/// escapes, or the shell's `'\''`) or a control character: a comment line carries those only
/// escaped, and the command pasted from it would pass kubectl other words. Then there is no
/// command; the document below it still carries the annotation exactly.
fn annotate_command(object: &Object, value: &str) -> String {
    if let Err(error) = names(object, "HyperConverged") {
        return format!("no command: {error}");
    }
    let command = format!(
        "kubectl annotate --overwrite hyperconverged {} -n {} {}",
        shell_quote(&object.name),
        shell_quote(&object.namespace),
        shell_quote(&format!("{HCO_JSONPATCH}={value}"))
    );
    if escape(&command) != command {
        return format!(
            "no command: the annotation holds a backslash, a quote or a control character, which a comment cannot carry as pasted; apply the document with kubectl patch hyperconverged {} -n {} --type merge --patch-file",
            object.name, object.namespace
        );
    }
    command
}

fn names(object: &Object, kind: &'static str) -> Result<(), crate::text::NameError> {
    dns1123_label(&object.namespace, "namespace")
        .and_then(|()| dns1123_subdomain(&object.name, kind))
}

/// The command that applies `patch` to the VM, or why there is none: a name that is not a
/// Kubernetes name names no VM, and is not put in a command that could be pasted.
pub fn patch_command(namespace: &str, vm: &str, patch: &Value) -> String {
    let valid = dns1123_label(namespace, "namespace")
        .and_then(|()| dns1123_subdomain(vm, "VirtualMachine"));
    match valid {
        Ok(()) => format!(
            "kubectl patch vm {} -n {} --type merge -p {}",
            shell_quote(vm),
            shell_quote(namespace),
            shell_quote(&patch.to_string())
        ),
        Err(error) => format!("no command: {error}"),
    }
}

/// One YAML document: each comment escaped, so that it stays one comment line.
fn document(comments: &[String], patch: &Value) -> Result<String> {
    let mut out = String::from("---\n");
    for comment in comments {
        out.push_str(&format!("# {}\n", escape(comment)));
    }
    out.push_str(&serde_norway::to_string(patch)?);
    Ok(out)
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
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests;
