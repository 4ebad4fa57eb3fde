//! Which KubeVirt release the budgets assume, and whether the cluster's release agrees: the budget
//! series say which release's constants the collector used and whether it was configured or
//! assumed; KubeVirt's `kubevirt_info{kubeversion}` says what runs. No I/O.

use kube_metrics_contract::estimate::{Constants, Release};
use serde::Serialize;

/// The labels Prometheus has, each value once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// `kubevirt_release` and `source` (`assumed`, `configured`) of the budget series.
    pub budgets: Vec<(String, String)>,
    /// `kubeversion` of `kubevirt_info`.
    pub cluster: Vec<String>,
}

/// What the budgets assume, and the verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Judgement {
    pub budgets: Vec<(String, String)>,
    pub cluster: Vec<String>,
    pub verdict: Agreement,
}

/// Whether the budgets' constants are the cluster's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Agreement {
    /// No budget series: a collector that exports none.
    NoBudgets,
    /// No `kubevirt_info` to compare with.
    Unknown,
    /// Every release named has the same constants.
    Agrees,
    /// The cluster's release has other constants than a release the budgets used.
    Differs {
        cluster: String,
        budgets: String,
        /// Each constant that differs: its name, the cluster's value, the budgets' value, in Mi.
        differences: Vec<(String, u64, u64)>,
    },
    /// A value that names no release with constants.
    Unreadable { value: String },
}

/// Compares every release the budgets used with every release the cluster reports.
pub fn judge(facts: &Facts) -> Judgement {
    let judgement = |verdict| Judgement {
        budgets: facts.budgets.clone(),
        cluster: facts.cluster.clone(),
        verdict,
    };
    if facts.budgets.is_empty() {
        return judgement(Agreement::NoBudgets);
    }
    if facts.cluster.is_empty() {
        return judgement(Agreement::Unknown);
    }
    let named = facts.budgets.iter().map(|(r, _)| r).chain(&facts.cluster);
    for value in named {
        if constants(value).is_none() {
            return judgement(Agreement::Unreadable {
                value: value.clone(),
            });
        }
    }
    for cluster in &facts.cluster {
        for (budgets, _) in &facts.budgets {
            let (Some(theirs), Some(ours)) = (constants(cluster), constants(budgets)) else {
                continue;
            };
            let differences = differences(theirs, ours);
            if !differences.is_empty() {
                return judgement(Agreement::Differs {
                    cluster: cluster.clone(),
                    budgets: budgets.clone(),
                    differences,
                });
            }
        }
    }
    judgement(Agreement::Agrees)
}

fn constants(release: &str) -> Option<&'static Constants> {
    release.parse::<Release>().ok()?.constants()
}

fn differences(theirs: &Constants, ours: &Constants) -> Vec<(String, u64, u64)> {
    let fields = |c: &Constants| {
        [
            ("virt-launcher-monitor", c.monitor),
            ("virt-launcher", c.launcher),
            ("virtlogd", c.virtlogd),
            ("virtqemud", c.virtqemud),
            ("QemuOverhead", c.qemu),
            ("video", c.video),
        ]
    };
    fields(theirs)
        .into_iter()
        .zip(fields(ours))
        .filter(|((_, a), (_, b))| a != b)
        .map(|((name, a), (_, b))| (name.to_owned(), a, b))
        .collect()
}

// === impl Judgement ===

impl Judgement {
    /// One sentence for the reasoning above the table.
    pub fn describe(&self) -> String {
        if self.verdict == Agreement::NoBudgets {
            return "no kubevirt_pod_infra_memory_overhead_budget_bytes in the range (a collector without budgets): OVER-BUDGET stays empty".into();
        }
        let budgets: Vec<String> = self
            .budgets
            .iter()
            .map(|(release, source)| match source.as_str() {
                "configured" => format!("KubeVirt {release}'s constants, configured with --kubevirt-release"),
                "assumed" => format!("KubeVirt {release}'s constants, assumed by the collector (no --kubevirt-release)"),
                other => format!("KubeVirt {release}'s constants ({other})"),
            })
            .collect();
        let cluster = self.cluster.join(", ");
        let verdict = match &self.verdict {
            Agreement::NoBudgets | Agreement::Unknown => {
                "no kubevirt_info to compare with".to_owned()
            }
            Agreement::Agrees => {
                format!("the cluster runs {cluster} (kubevirt_info): the same constants")
            }
            Agreement::Differs {
                cluster,
                budgets,
                differences,
            } => {
                let what: Vec<String> = differences
                    .iter()
                    .map(|(name, theirs, ours)| format!("{name} {theirs}Mi, not {ours}Mi"))
                    .collect();
                format!(
                    "the cluster runs {cluster} (kubevirt_info), whose constants differ from {budgets}'s: {}; run the collector with --kubevirt-release {cluster}",
                    what.join(", ")
                )
            }
            Agreement::Unreadable { value } => {
                format!("{value:?} names no KubeVirt release with known constants")
            }
        };
        format!("{}; {verdict}", budgets.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(budgets: &[(&str, &str)], cluster: &[&str]) -> Facts {
        Facts {
            budgets: budgets
                .iter()
                .map(|(r, s)| ((*r).to_owned(), (*s).to_owned()))
                .collect(),
            cluster: cluster.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    #[test]
    fn releases_with_the_same_constants_agree() {
        let table = [
            (facts(&[("1.9", "assumed")], &["v1.9.0"]), "agrees"),
            (facts(&[("1.9", "assumed")], &["v1.7.2"]), "agrees"),
            (facts(&[("1.9", "assumed")], &["v1.10.0"]), "differs"),
            (facts(&[("1.9", "configured")], &["v1.5.1"]), "differs"),
            (facts(&[("1.9", "assumed")], &[]), "unknown"),
            (facts(&[], &["v1.9.0"]), "no-budgets"),
            (facts(&[("1.9", "assumed")], &["main"]), "unreadable"),
            (facts(&[("1.9", "assumed")], &["v0.59.0"]), "unreadable"),
            (
                facts(&[("1.9", "assumed"), ("1.10", "configured")], &["v1.10.0"]),
                "differs",
            ),
        ];
        for (facts, want) in table {
            let verdict = serde_json::to_value(judge(&facts).verdict).unwrap_or_default();
            assert_eq!(verdict["kind"], want, "{facts:?}");
        }
    }

    #[test]
    fn sentences_say_what_was_assumed_and_what_differs() {
        let table = [
            (
                facts(&[("1.9", "assumed")], &["v1.9.0"]),
                "KubeVirt 1.9's constants, assumed by the collector (no --kubevirt-release); the cluster runs v1.9.0 (kubevirt_info): the same constants",
            ),
            (
                facts(&[("1.9", "assumed")], &["v1.10.0"]),
                "KubeVirt 1.9's constants, assumed by the collector (no --kubevirt-release); the cluster runs v1.10.0 (kubevirt_info), whose constants differ from 1.9's: QemuOverhead 50Mi, not 30Mi; run the collector with --kubevirt-release v1.10.0",
            ),
            (
                facts(&[("1.9", "configured")], &["v1.4.3"]),
                "KubeVirt 1.9's constants, configured with --kubevirt-release; the cluster runs v1.4.3 (kubevirt_info), whose constants differ from 1.9's: virtlogd 20Mi, not 25Mi, virtqemud 35Mi, not 40Mi, video 16Mi, not 32Mi; run the collector with --kubevirt-release v1.4.3",
            ),
            (
                facts(&[("1.9", "assumed")], &[]),
                "KubeVirt 1.9's constants, assumed by the collector (no --kubevirt-release); no kubevirt_info to compare with",
            ),
            (
                facts(&[], &[]),
                "no kubevirt_pod_infra_memory_overhead_budget_bytes in the range (a collector without budgets): OVER-BUDGET stays empty",
            ),
        ];
        for (facts, want) in table {
            assert_eq!(judge(&facts).describe(), want);
        }
    }
}
