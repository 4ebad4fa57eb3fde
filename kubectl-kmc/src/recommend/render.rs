//! The recommendation as a table, or as merge patches an admin can apply; no I/O.

use anyhow::Result;
use serde_json::{Value, json};

use super::math::{Advice, EstimateSource, Settings, VmAdvice};
use crate::cli::RecommendOutput;
use crate::table;
use crate::units::{human_duration, mebibytes, promql_duration};

/// The table or the YAML patches.
pub fn render(advice: &Advice, settings: &Settings, output: RecommendOutput) -> Result<String> {
    match output {
        RecommendOutput::Table => Ok(render_table(advice, settings)),
        RecommendOutput::Yaml => render_yaml(advice, settings),
        RecommendOutput::Json => Ok(serde_json::to_string_pretty(advice)? + "\n"),
    }
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

fn render_table(advice: &Advice, settings: &Settings) -> String {
    let mut out = format!(
        "additionalGuestMemoryOverheadRatio: {}\n  the {} quantile of needed ratios is {:.3}, × (1 + margin); {}\n\n",
        ratio_text(advice.ratio),
        settings.quantile,
        advice.quantile_ratio,
        basis(advice, settings)
    );
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
            "ADDED-OVERHEAD",
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
    if !advice.left_out.is_empty() {
        out.push_str("\nLeft out:\n");
        for l in &advice.left_out {
            out.push_str(&format!("  {}/{}: {}\n", l.namespace, l.vm, l.why));
        }
    }
    out.push_str("\nESTIMATE*: KubeVirt's kubevirt_vmi_launcher_memory_overhead_bytes (no pod annotation, KubeVirt before 1.9)\n");
    out
}

fn vm_row(vm: &VmAdvice) -> Vec<String> {
    let star = if vm.source == EstimateSource::KubeVirt {
        "*"
    } else {
        ""
    };
    let over = if vm.over_budget.is_empty() {
        "-".to_owned()
    } else {
        vm.over_budget
            .iter()
            .map(|o| format!("{} {}>{}", o.role, mebibytes(o.peak), mebibytes(o.budget)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    vec![
        vm.shape.clone(),
        vm.namespace.clone(),
        vm.vm.clone(),
        human_duration(vm.span_seconds),
        mebibytes(vm.peak),
        format!("{}{star}", mebibytes(vm.estimate)),
        format!("{:.3}", vm.needed_ratio),
        vm.added_overhead_mi
            .map_or_else(|| "-".to_owned(), |mi| format!("{mi}Mi")),
        over,
    ]
}

/// The patch of the KubeVirt CR, then one per outlier VM, each a YAML document whose comment is
/// the command that applies it.
fn render_yaml(advice: &Advice, settings: &Settings) -> Result<String> {
    let mut out = String::new();
    let ratio = json!({"spec": {"configuration": {
        "additionalGuestMemoryOverheadRatio": ratio_text(advice.ratio)
    }}});
    out.push_str(&document(
        &[
            format!(
                "additionalGuestMemoryOverheadRatio {}",
                basis(advice, settings)
            ),
            format!("kubectl patch kubevirt kubevirt -n kubevirt --type merge -p '{ratio}'"),
        ],
        &ratio,
    )?);
    for vm in &advice.vms {
        let Some(mi) = vm.added_overhead_mi else {
            continue;
        };
        let patch = json!({"spec": {"template": {"spec": {"domain": {"memory": {
            "reservedOverhead": {"addedOverhead": format!("{mi}Mi")}
        }}}}}});
        out.push_str(&document(
            &[
                format!(
                    "{}/{}: peak {} needs {:.3}× its estimate {}, over {} of history; takes effect when the VM restarts",
                    vm.namespace,
                    vm.vm,
                    mebibytes(vm.peak),
                    vm.needed_ratio,
                    mebibytes(vm.estimate),
                    human_duration(vm.span_seconds)
                ),
                format!("kubectl patch vm {} -n {} --type merge -p '{patch}'", vm.vm, vm.namespace),
            ],
            &patch,
        )?);
    }
    Ok(out)
}

fn document(comments: &[String], patch: &Value) -> Result<String> {
    let mut out = String::from("---\n");
    for comment in comments {
        out.push_str(&format!("# {comment}\n"));
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

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::super::math::{Group, LeftOut, OverBudget};
    use super::*;
    use crate::units::MI;
    use std::time::Duration;

    fn advice() -> Advice {
        Advice {
            ratio: 1.32,
            quantile_ratio: 1.2,
            shortest_span: 3.0 * 86_400.0,
            longest_span: 3.0 * 86_400.0,
            vms: vec![VmAdvice {
                namespace: "vms".into(),
                vm: "leak".into(),
                shape: "2vCPU/2Gi".into(),
                span_seconds: 3.0 * 86_400.0,
                peak: 400.0 * MI,
                estimate: 200.0 * MI,
                source: EstimateSource::KubeVirt,
                needed_ratio: 2.0,
                added_overhead_mi: Some(176),
                over_budget: vec![OverBudget {
                    role: "virt-launcher".into(),
                    peak: 300.0 * MI,
                    budget: 100.0 * MI,
                }],
            }],
            groups: vec![Group {
                shape: "2vCPU/2Gi".into(),
                vms: 1,
                max_needed_ratio: 2.0,
            }],
            left_out: vec![LeftOut {
                namespace: "vms".into(),
                vm: "new".into(),
                why: "6h of history".into(),
            }],
        }
    }

    fn settings() -> Settings {
        Settings {
            range: Duration::from_secs(7 * 86_400),
            quantile: 0.99,
            margin: 0.1,
            min_history: Duration::from_secs(86_400),
            min_vms: 1,
            resolution: Duration::from_secs(60),
            current_ratio: 1.0,
        }
    }

    #[test]
    fn ratio_texts() {
        let cases = [
            (1.0, "1.0"),
            (1.32, "1.32"),
            (1.5, "1.5"),
            (2.0, "2.0"),
            (1.109, "1.11"),
        ];
        for (ratio, want) in cases {
            assert_eq!(ratio_text(ratio), want);
        }
    }

    #[test]
    fn yaml_patches() {
        let yaml = render(&advice(), &settings(), RecommendOutput::Yaml).unwrap();
        let want = "---
# additionalGuestMemoryOverheadRatio from 1 VM(s) with 3d to 3d of history each (range 7d, quantile 0.99, margin 10%)
# kubectl patch kubevirt kubevirt -n kubevirt --type merge -p '{\"spec\":{\"configuration\":{\"additionalGuestMemoryOverheadRatio\":\"1.32\"}}}'
spec:
  configuration:
    additionalGuestMemoryOverheadRatio: '1.32'
---
# vms/leak: peak 400.0Mi needs 2.000× its estimate 200.0Mi, over 3d of history; takes effect when the VM restarts
# kubectl patch vm leak -n vms --type merge -p '{\"spec\":{\"template\":{\"spec\":{\"domain\":{\"memory\":{\"reservedOverhead\":{\"addedOverhead\":\"176Mi\"}}}}}}}'
spec:
  template:
    spec:
      domain:
        memory:
          reservedOverhead:
            addedOverhead: 176Mi
";
        assert_eq!(yaml, want);
    }

    #[test]
    fn table_rows() {
        let text = render(&advice(), &settings(), RecommendOutput::Table).unwrap();
        assert!(
            text.starts_with("additionalGuestMemoryOverheadRatio: 1.32\n"),
            "{text}"
        );
        assert!(
            text.contains("vms         leak   3d        400.0Mi   200.0Mi*   2.000    176Mi            virt-launcher 300.0Mi>100.0Mi"),
            "{text}"
        );
        assert!(text.contains("  vms/new: 6h of history\n"), "{text}");
    }
}
