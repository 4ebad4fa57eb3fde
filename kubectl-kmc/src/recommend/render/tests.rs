//! Table tests of the recommendation's text and JSON.

use std::time::Duration;

use serde_json::{Value, json};

use super::super::math::{
    Cost, Fence, Group, Leak, LeftOut, Method, OomKill, OverBudget, Screened, SetAside, VmAdvice,
};
use super::super::release;
use super::super::target::{Manager, Object};
use super::patches::patch_command;
use super::reasoning::*;
use super::*;
use crate::units::MI;
use crate::vouch::{Ignored, Tally};

const DAY: f64 = 86_400.0;

fn vm(name: &str, peak_mi: f64) -> VmAdvice {
    VmAdvice {
        namespace: "vms".into(),
        vm: name.into(),
        shape: "2vCPU/2Gi".into(),
        pods: 1,
        span_seconds: 3.0 * DAY,
        peak: peak_mi * MI,
        at_least: None,
        estimate: 250.0 * MI,
        needed_ratio: peak_mi / 250.0,
        set_aside: None,
        oom_kill: None,
        leaks: vec![],
        added_overhead_mi: None,
        ratio_cost: 37.5 * MI,
        over_budget: vec![],
    }
}

fn advice() -> Advice {
    let mut killed = vm("oom", 270.0);
    killed.at_least = Some(280.0 * MI);
    killed.needed_ratio = 1.12;
    killed.set_aside = Some(SetAside::OomKilled);
    killed.added_overhead_mi = Some(21);
    killed.oom_kill = Some(OomKill {
        pod: "virt-launcher-oom-1".into(),
        at: 1_780_250_400.0,
        allowance: Some(280.0 * MI),
    });
    killed.leaks = vec![Leak {
        pod: "virt-launcher-oom-1".into(),
        component: "qemu".into(),
        since: 1_780_012_800.0,
        per_day: 24.0 * MI,
        growth: [35.0 * MI, 35.0 * MI],
    }];
    killed.over_budget = vec![OverBudget {
        component: "qemu".into(),
        peak: 120.0 * MI,
        budget: 78.0 * MI,
    }];
    Advice {
        ratio: 1.15,
        current_ratio: 1.0,
        basis_ratio: 1.04,
        method: Method::Median { of: 2 },
        fence: Some(Fence {
            of: 2,
            median: 1.04,
            mad: 0.02,
            at: 1.24,
        }),
        shortest_span: 3.0 * DAY,
        longest_span: 3.0 * DAY,
        cost: Cost {
            ratio_bytes: 112.5 * MI,
            ratio_per_vm: [37.5 * MI, 37.5 * MI],
            vms: 3,
            added_mi: 21,
            added_vms: 1,
        },
        budgets: release::judge(&release::Facts {
            budgets: vec![("1.9".into(), "assumed".into())],
            cluster: vec!["v1.9.0".into()],
        }),
        vms: vec![killed, vm("a", 260.0), vm("b", 250.0)],
        groups: vec![Group {
            shape: "2vCPU/2Gi".into(),
            vms: 3,
            max_needed_ratio: 1.12,
        }],
        left_out: vec![LeftOut {
            namespace: "vms".into(),
            vm: "new".into(),
            why: "6h of history".into(),
        }],
        series: Screened {
            vouched: true,
            left_out: Tally(
                [(Ignored::NoVmi, 2), (Ignored::NotANumber, 1)]
                    .into_iter()
                    .collect(),
            ),
        },
    }
}

fn settings() -> Settings {
    Settings {
        range: Duration::from_secs(7 * 86_400),
        quantile: 0.9,
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
fn ordinals() {
    let cases = [
        (1, "1st"),
        (2, "2nd"),
        (3, "3rd"),
        (4, "4th"),
        (11, "11th"),
        (12, "12th"),
        (13, "13th"),
        (21, "21st"),
        (270, "270th"),
    ];
    for (n, want) in cases {
        assert_eq!(ordinal(n), want);
    }
}

#[test]
fn yaml_patches() {
    let yaml = render(&advice(), &settings(), RecommendOutput::Yaml).unwrap();
    let want = "---
# additionalGuestMemoryOverheadRatio from 3 VM(s) with 3d to 3d of history each (range 7d, quantile 0.9, margin 10%)
# cost: ratio 1.0 → 1.15: +112.5Mi over 3 VM(s) (+37.5Mi to +37.5Mi each); addedOverhead: +21.0Mi on 1 VM(s); together +133.5Mi
# kubectl patch kubevirt kubevirt -n kubevirt --type merge -p '{\"spec\":{\"configuration\":{\"additionalGuestMemoryOverheadRatio\":\"1.15\"}}}'
spec:
  configuration:
    additionalGuestMemoryOverheadRatio: '1.15'
---
# vms/oom: peak ≥ 280.0Mi needs ≥ 1.120× its estimate 250.0Mi, over 3d of history; takes effect when the VM restarts
# OOM-killed at 2026-05-31T18:00Z (pod virt-launcher-oom-1): the overhead then was at least its allowance 280.0Mi, above the 270.0Mi measured; leak in qemu since 2026-05-29T00:00Z: +24.0Mi/day (pod virt-launcher-oom-1); no reservation holds a leak, an addedOverhead only postpones its OOM kill
# kubectl patch vm oom -n vms --type merge -p '{\"spec\":{\"template\":{\"spec\":{\"domain\":{\"memory\":{\"reservedOverhead\":{\"addedOverhead\":\"21Mi\"}}}}}}}'
spec:
  template:
    spec:
      domain:
        memory:
          reservedOverhead:
            addedOverhead: 21Mi
";
    assert_eq!(yaml, want);
}

#[test]
fn table_rows_and_reasoning() {
    let text = render(&advice(), &settings(), RecommendOutput::Table).unwrap();
    assert!(
        text.starts_with("additionalGuestMemoryOverheadRatio: 1.15 (now 1.0)\n  from 3 VM(s)"),
        "{text}"
    );
    for line in [
        "  set aside, so that none of them drives the ratio: 1 OOM-killed, 0 leaking, 0 outlier(s)\n",
        "  ratio: 1.040, the median of the needed ratios of the 2 VM(s) not set aside (with fewer than 1/(1 − 0.9) = 10 of them, the nearest-rank quantile would be the largest), × (1 + margin 10%) = 1.144, rounded up to hundredths, at least 1.0: 1.15\n",
        "  outliers: needed ratio above 1.240 = median 1.040 + max(3 × 1.4826 × MAD 0.020, 0.2), of the 2 VM(s) neither OOM-killed nor leaking\n",
        "vms         oom   3d        ≥280.0Mi   250.0Mi    ≥1.120   oom-killed   21Mi             +58.5Mi   qemu 120.0Mi>78.0Mi\n",
        "vms         b     3d        250.0Mi    250.0Mi    1.000    -            -                +37.5Mi   -\n",
        "\nSet aside from the ratio:\n  vms/oom: OOM-killed at 2026-05-31T18:00Z",
        "  vms/new: 6h of history\n",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
}

const HOSTILE: &str = "vm;touch /tmp/x;#\nspec: {}\n\u{1b}]0;owned\u{7}\u{1b}[2J";

/// Names that `--allow-unvouched` could let through: escaped in the table, one comment line
/// each in the YAML, and never in a command.
#[test]
fn hostile_names_are_escaped_and_never_reach_a_command() {
    let mut advice = advice();
    advice.vms[0].vm = HOSTILE.into();
    advice.left_out[0].namespace = "tenant\r".into();
    let table = render(&advice, &settings(), RecommendOutput::Table).unwrap();
    let yaml = render(&advice, &settings(), RecommendOutput::Yaml).unwrap();
    for text in [&table, &yaml] {
        assert!(!text.chars().any(|c| c != '\n' && c.is_control()), "{text}");
    }
    assert!(
        table.contains("vm;touch /tmp/x;#\\nspec: {}\\n\\u{1b}]0;owned\\u{7}\\u{1b}[2J"),
        "{table}"
    );
    assert!(
        table.contains("  tenant\\r/new: 6h of history\n"),
        "{table}"
    );
    let comments: Vec<&str> = yaml.lines().filter(|l| l.starts_with('#')).collect();
    assert!(
            comments.contains(&"# no command: vm;touch /tmp/x;#\\nspec: {}\\n\\u{1b}]0;owned\\u{7}\\u{1b}[2J is not a valid VirtualMachine name: it must consist of lower case letters, digits, '-' and '.', and each part start and end with a letter or digit"),
            "{yaml}"
        );
    assert!(!yaml.contains("kubectl patch vm"), "{yaml}");
    // The YAML is still two documents of patches, nothing added by the name.
    let documents: Vec<Value> = yaml
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_norway::from_str(d).unwrap())
        .collect();
    assert_eq!(documents.len(), 2);
    assert!(documents[1]["spec"]["template"].is_object());
}

fn hco(namespace: &str, name: &str, existing: Option<&str>) -> Target {
    Target {
        manager: Manager::HyperConverged {
            object: Object {
                namespace: namespace.into(),
                name: name.into(),
            },
            existing: existing.map(str::to_owned),
        },
        current_ratio: 1.0,
        current_from: "KubeVirt's default (its CR sets none)".into(),
        notes: vec![],
    }
}

/// A HyperConverged CR's names and annotation come from the cluster: a name that is not a
/// Kubernetes name reaches no command, an annotation that is not a JSON array is not
/// overwritten, and an annotation's quotes stay inside one shell word.
#[test]
fn hyperconverged_names_and_annotations_are_escaped_and_quoted() {
    let cases = [
        (
            hco(HOSTILE, "kubevirt-hyperconverged", None),
            "# no command: vm;touch /tmp/x;#\\nspec: {}",
        ),
        (
            hco(
                "openshift-cnv",
                "kubevirt-hyperconverged",
                Some("{\"op\": \n"),
            ),
            "# no command: the kubevirt.kubevirt.io/jsonpatch annotation is not a JSON array of operations",
        ),
        (
            hco(
                "openshift-cnv",
                "kubevirt-hyperconverged",
                Some(r#"[{"op":"add","path":"/spec/x","value":"it's\n\u001b"}]"#),
            ),
            "# no command: the annotation holds a backslash, a quote or a control character",
        ),
    ];
    for (target, want) in cases {
        let yaml = render_for(&advice(), &settings(), &target, RecommendOutput::Yaml).unwrap();
        let table = render_for(&advice(), &settings(), &target, RecommendOutput::Table).unwrap();
        for text in [&yaml, &table] {
            assert!(!text.chars().any(|c| c != '\n' && c.is_control()), "{text}");
        }
        assert!(yaml.lines().any(|l| l.starts_with(want)), "{want}\n{yaml}");
        assert!(!yaml.contains("kubectl patch kubevirt"), "{yaml}");
    }
}

#[test]
fn added_overhead_at_the_current_ratio_comes_first_under_hyperconverged() {
    let target = hco("openshift-cnv", "kubevirt-hyperconverged", None);
    let lines = target_lines(&advice(), &settings(), &target);
    // oom: ≥280Mi × 1.1 − 250Mi = 58Mi; a: 260Mi × 1.1 − 250Mi = 36Mi; b: 25Mi.
    assert_eq!(
        lines[2],
        "so each VM's own addedOverhead at the current ratio comes first: +119.0Mi on 3 VM(s) (-o yaml), the annotation after it as the unsupported alternative"
    );
    let yaml = render_for(&advice(), &settings(), &target, RecommendOutput::Yaml).unwrap();
    let commands: Vec<&str> = yaml
        .lines()
        .filter(|l| l.starts_with("# kubectl "))
        .collect();
    assert_eq!(commands.len(), 4, "{yaml}");
    assert!(commands[0].contains("\"addedOverhead\":\"58Mi\""), "{yaml}");
    assert!(commands[3].starts_with("# kubectl annotate"), "{yaml}");
}

#[test]
fn commands_quote_their_words() {
    let patch = json!({"spec": {"a": "it's"}});
    assert_eq!(
        patch_command("vms", "vm-1.a", &patch),
        r#"kubectl patch vm vm-1.a -n vms --type merge -p '{"spec":{"a":"it'\''s"}}'"#
    );
    assert!(
        patch_command("Vms", "vm", &patch)
            .starts_with("no command: Vms is not a valid namespace name")
    );
}

#[test]
fn reasoning_says_what_vouched_and_what_was_left_out() {
    let lines = reasoning(&advice(), &settings());
    assert_eq!(
        lines[1..4],
        [
            "VMs: only those KubeVirt vouches for (kubevirt_vmi_info: each VMI, and the launcher pods it names)",
            "2 series left out: KubeVirt reports no VMI of that namespace and name (kubevirt_vmi_info): not a VM, whatever its labels say",
            "1 series left out: the value is NaN",
        ]
    );
    let mut unvouched = advice();
    unvouched.series = Screened::default();
    assert!(reasoning(&unvouched, &settings())[1].starts_with("VMs: UNVOUCHED"));
}

#[test]
fn json_carries_the_method_the_bound_and_the_costs() {
    let json: Value =
        serde_json::from_str(&render(&advice(), &settings(), RecommendOutput::Json).unwrap())
            .unwrap();
    assert_eq!(json["method"], json!({"kind": "median", "of": 2}));
    assert_eq!(json["vms"][0]["set_aside"], "oom-killed");
    assert_eq!(json["vms"][0]["at_least"], 280.0 * MI);
    assert_eq!(json["vms"][1]["at_least"], Value::Null);
    assert_eq!(json["cost"]["added_mi"], 21);
    assert_eq!(json["budgets"]["verdict"]["kind"], "agrees");
}
