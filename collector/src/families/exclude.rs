//! `--metrics-profile` and `--exclude`: what an installation does not want written.
//!
//! A launcher pod of KubeVirt's five processes exports 152 series in the full profile and 43 in
//! the default one (docs/metrics.md, "Profiles"); KubeVirt users have seen per-VMI series cost Prometheus
//! gigabytes, so the default profile writes only what the rules, alerts, dashboards and
//! `kubectl kmc` read, and each family can be left out at the source besides.

use kube_metrics_contract::metrics::{FAMILIES, Keep, POD_INFO, Profile};

/// Families whose `type` label may be excluded one value at a time.
const TYPED: [&str; 2] = [
    "kubevirt_pod_infra_memory_amount_bytes",
    "kubevirt_pod_infra_guest_memory_bytes",
];

/// What to leave out: what the profile does not keep, and `--exclude`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exclusions {
    profile: Profile,
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
    /// `profile`, less the `--exclude` values.
    pub fn parse(profile: Profile, values: &[String]) -> Result<Self, ExcludeError> {
        let mut out = Self {
            profile,
            ..Self::default()
        };
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

    /// Everything, as `--metrics-profile full` without `--exclude` writes it.
    pub fn full() -> Self {
        Self {
            profile: Profile::Full,
            ..Self::default()
        }
    }

    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// What is written of family `name`: `None` when the profile or `--exclude` leaves it out.
    pub fn keeps(&self, name: &str) -> Option<Keep> {
        if self.families.contains(&name) {
            return None;
        }
        self.profile.keeps(name)
    }

    pub fn kind(&self, family: &str, kind: &str) -> bool {
        self.types.iter().any(|(f, k)| *f == family && k == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(values: &[&str]) -> Result<Exclusions, ExcludeError> {
        let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        Exclusions::parse(Profile::Full, &values)
    }

    #[test]
    fn reads_families_and_memory_types() {
        let ex = parse(&[
            "kubevirt_pod_infra_open_fds",
            "kubevirt_pod_infra_memory_amount_bytes:virtual",
            " ",
        ])
        .unwrap();
        assert_eq!(ex.keeps("kubevirt_pod_infra_open_fds"), None);
        assert_eq!(ex.keeps("kubevirt_pod_infra_threads"), Some(Keep::All));
        assert!(ex.kind("kubevirt_pod_infra_memory_amount_bytes", "virtual"));
        assert!(!ex.kind("kubevirt_pod_infra_memory_amount_bytes", "resident"));
    }

    #[test]
    fn the_profile_keeps_and_exclude_takes_away() {
        let ex = Exclusions::parse(
            Profile::Default,
            &["kubevirt_pod_infra_qemu_own_memory_bytes".to_owned()],
        )
        .unwrap();
        assert_eq!(ex.profile(), Profile::Default);
        assert_eq!(ex.keeps("kubevirt_pod_infra_qemu_own_memory_bytes"), None);
        assert_eq!(ex.keeps("kubevirt_pod_infra_threads"), None);
        assert_eq!(ex.keeps(POD_INFO), Some(Keep::All));
        assert_eq!(
            Exclusions::full().keeps("kubevirt_pod_infra_threads"),
            Some(Keep::All)
        );
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
