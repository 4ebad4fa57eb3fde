//! `--exclude`: families, or memory types of one family, an installation does not want.
//!
//! A launcher pod exports about 140 series (docs/metrics.md, "Cardinality"); KubeVirt users have
//! seen per-VMI series cost Prometheus gigabytes, so each family can be left out at the source.

use kube_metrics_contract::metrics::{FAMILIES, POD_INFO};

/// Families whose `type` label may be excluded one value at a time.
const TYPED: [&str; 2] = [
    "kubevirt_pod_infra_memory_amount_bytes",
    "kubevirt_pod_infra_guest_memory_bytes",
];

/// What to leave out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exclusions {
    families: Vec<&'static str>,
    types: Vec<(&'static str, String)>,
}

/// An `--exclude` value that names nothing we write, or something that must stay.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExcludeError {
    #[error("--exclude {0:?}: no such family (docs/metrics.md lists them)")]
    Unknown(String),
    #[error("--exclude {0:?}: only memory families take a :TYPE")]
    NotTyped(String),
    #[error("--exclude {POD_INFO}: the relay and every join need it")]
    PodInfo,
}

// === impl Exclusions ===

impl Exclusions {
    pub fn parse(values: &[String]) -> Result<Self, ExcludeError> {
        let mut out = Self::default();
        for value in values.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
            let (name, kind) = match value.split_once(':') {
                Some((name, kind)) => (name, Some(kind)),
                None => (value, None),
            };
            let family = FAMILIES
                .into_iter()
                .map(|family| family.name)
                .find(|f| *f == name)
                .ok_or_else(|| ExcludeError::Unknown(value.to_owned()))?;
            match kind {
                _ if family == POD_INFO => return Err(ExcludeError::PodInfo),
                None => out.families.push(family),
                Some(kind) if TYPED.contains(&family) => out.types.push((family, kind.to_owned())),
                Some(_) => return Err(ExcludeError::NotTyped(value.to_owned())),
            }
        }
        Ok(out)
    }

    pub fn family(&self, name: &str) -> bool {
        self.families.contains(&name)
    }

    pub fn kind(&self, family: &str, kind: &str) -> bool {
        self.types.iter().any(|(f, k)| *f == family && k == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The relay forwards exactly the contract's families with the contract's types: the list
    /// here and what the collector declares must both agree with it.
    #[test]
    fn families_and_their_types_match_the_contract() {
        let golden = include_str!("../../tests/fixtures/golden/launcher-pod.prom");
        let mut typed = 0;
        for line in golden.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
            let (name, kind) = line.split_once(' ').unwrap();
            assert_eq!(
                kube_metrics_contract::metrics::family_type(name),
                Some(kind),
                "{name}"
            );
            typed += 1;
        }
        assert!(typed >= 15, "{typed} TYPE lines in the golden exposition");
    }

    fn parse(values: &[&str]) -> Result<Exclusions, ExcludeError> {
        Exclusions::parse(&values.iter().map(|v| v.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn reads_families_and_memory_types() {
        let ex = parse(&[
            "kubevirt_pod_infra_open_fds",
            "kubevirt_pod_infra_memory_amount_bytes:virtual",
            " ",
        ])
        .unwrap();
        assert!(ex.family("kubevirt_pod_infra_open_fds"));
        assert!(!ex.family("kubevirt_pod_infra_threads"));
        assert!(ex.kind("kubevirt_pod_infra_memory_amount_bytes", "virtual"));
        assert!(!ex.kind("kubevirt_pod_infra_memory_amount_bytes", "resident"));
    }

    #[test]
    fn rejects_what_names_nothing_or_must_stay() {
        let table = [
            (
                "kubevirt_pod_infra_nope",
                ExcludeError::Unknown("kubevirt_pod_infra_nope".into()),
            ),
            (
                "kubevirt_pod_infra_threads:x",
                ExcludeError::NotTyped("kubevirt_pod_infra_threads:x".into()),
            ),
            (POD_INFO, ExcludeError::PodInfo),
        ];
        for (value, want) in table {
            assert_eq!(parse(&[value]), Err(want), "{value}");
        }
    }
}
