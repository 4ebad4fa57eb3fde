//! `kubectl kmc recommend -o yaml`: the KubeVirt CR's patch and each VM's, as YAML documents whose
//! comments say why and give the command that applies them. No I/O.

use anyhow::Result;
use serde_json::{Value, json};

use super::super::math::{Advice, Settings, VmAdvice};
use super::super::target::{HCO_JSONPATCH, Manager, Object, Target, jsonpatch_with_ratio};
use super::reasoning::{HCO_WHY, added_at_current, basis, cost, diagnosis, ratio_text};
use crate::text::{dns1123_label, dns1123_subdomain, escape, shell_quote};
use crate::units::{human_duration, mebibytes};

/// The patch of the KubeVirt CR, then one per VM that needs an addedOverhead, each a YAML
/// document whose comments say why and give the command that applies it. Under HyperConverged,
/// each VM's addedOverhead at the current ratio first, then the annotation as the alternative.
pub(super) fn render(advice: &Advice, settings: &Settings, target: &Target) -> Result<String> {
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
pub(super) fn patch_command(namespace: &str, vm: &str, patch: &Value) -> String {
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
