//! VMI facts or pod-spec signals -> one [`Verdict`]. No I/O.
//!
//! When the VMI was read, its reasons are authoritative (the pod spec only shows their side effects:
//! node selectors, extended resources). When it was not, the pod-spec signals decide, and the verdict
//! says so in a separate `source` field rather than in new reason names: the reason set (metric
//! labels, annotation values) stays the same closed set whichever source decided.
use std::{collections::BTreeSet, fmt::Write as _};

use super::{
    lookup::Lookup,
    network::{PathDecision, PathReason},
};
use crate::reason::UnsafeReason;

/// Which source decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// The VMI was read.
    Vmi,
    /// The VMI was not found or not read in time: the pod-spec signals decided.
    PodFallback,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Vmi => kube_metrics_contract::pod::REASON_SOURCE_VMI,
            Source::PodFallback => kube_metrics_contract::pod::REASON_SOURCE_POD_FALLBACK,
        }
    }
}

/// What the webhook does about one pod's VM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Sorted, without duplicates; empty means a shared PID namespace is safe.
    pub unsafe_reasons: Vec<UnsafeReason>,
    pub source: Source,
    /// The lookup's outcome (`found`, `not-found`, `timeout`, `api-error`, `unreadable`), for logs.
    pub lookup: &'static str,
    /// Always the relay when the VMI was not read.
    pub scrape: PathDecision,
    /// passt lists our port: the VM will not start next to our sidecar. Only the VMI can tell.
    pub passt_port_conflict: bool,
}

impl Verdict {
    pub fn is_safe(&self) -> bool {
        self.unsafe_reasons.is_empty()
    }

    /// One line for a log or a warning, e.g. `dedicated-cpus,realtime (pod-fallback: timeout)`.
    pub fn describe(&self) -> String {
        let mut text = self
            .unsafe_reasons
            .iter()
            .map(|reason| reason.as_str())
            .collect::<Vec<_>>()
            .join(",");
        if text.is_empty() {
            text.push_str("safe");
        }
        let _ = write!(text, " ({}: {})", self.source.as_str(), self.lookup);
        text
    }
}

/// Combines a lookup with the VM types the pod-spec signals show (`SkipReason::unsafe_reason`) for
/// the sidecar's `port`.
pub fn verdict(lookup: &Lookup, pod_reasons: &[UnsafeReason], port: u16) -> Verdict {
    match lookup {
        Lookup::Found(facts) => Verdict {
            unsafe_reasons: facts.unsafe_reasons.clone(),
            source: Source::Vmi,
            lookup: lookup.as_str(),
            scrape: facts.scrape_path(port),
            passt_port_conflict: facts.passt_port_conflict(port),
        },
        Lookup::NotFound | Lookup::Unavailable(_) => Verdict {
            unsafe_reasons: pod_reasons
                .iter()
                .copied()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            source: Source::PodFallback,
            lookup: lookup.as_str(),
            scrape: PathDecision::relay(PathReason::VmiNotRead),
            passt_port_conflict: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vmi::{Unavailable, VmiFacts, network::ScrapePath};
    use UnsafeReason::*;
    use serde_json::json;
    use std::time::Duration;

    fn found(spec: serde_json::Value) -> Lookup {
        match VmiFacts::from_json(&json!({"spec": spec})) {
            Ok(facts) => Lookup::Found(Box::new(facts)),
            Err(error) => panic!("{error}"),
        }
    }

    /// One row: a lookup and the pod signals in, the verdict out.
    struct Case {
        name: &'static str,
        lookup: Lookup,
        pod: &'static [UnsafeReason],
        reasons: &'static [UnsafeReason],
        source: Source,
        path: ScrapePath,
        text: &'static str,
    }

    #[test]
    fn table() {
        let passt = json!({"networks": [{"name": "d", "pod": {}}], "domain": {"devices": {"interfaces": [{"name": "d", "passt": {}}]}}});
        let dedicated = json!({"domain": {"cpu": {"dedicatedCpuPlacement": true}}});
        let timeout = Lookup::Unavailable(Unavailable::Timeout(Duration::from_secs(2)));
        let forbidden = Lookup::Unavailable(Unavailable::Api("forbidden".into()));
        let cases = [
            Case {
                name: "VMI safe overrides pod signals",
                lookup: found(passt),
                pod: &[VfioDevice],
                reasons: &[],
                source: Source::Vmi,
                path: ScrapePath::Direct,
                text: "safe (vmi: found)",
            },
            Case {
                name: "VMI unsafe, pod silent",
                lookup: found(dedicated),
                pod: &[],
                reasons: &[DedicatedCpus],
                source: Source::Vmi,
                path: ScrapePath::Relay,
                text: "dedicated-cpus (vmi: found)",
            },
            Case {
                name: "timeout: pod signals, sorted and deduplicated",
                lookup: timeout,
                pod: &[VfioDevice, DedicatedCpus, VfioDevice],
                reasons: &[DedicatedCpus, VfioDevice],
                source: Source::PodFallback,
                path: ScrapePath::Relay,
                text: "dedicated-cpus,vfio-device (pod-fallback: timeout)",
            },
            Case {
                name: "not found: pod says safe",
                lookup: Lookup::NotFound,
                pod: &[],
                reasons: &[],
                source: Source::PodFallback,
                path: ScrapePath::Relay,
                text: "safe (pod-fallback: not-found)",
            },
            Case {
                name: "api error",
                lookup: forbidden,
                pod: &[MemoryLock],
                reasons: &[MemoryLock],
                source: Source::PodFallback,
                path: ScrapePath::Relay,
                text: "memory-lock (pod-fallback: api-error)",
            },
        ];
        for case in cases {
            let got = verdict(&case.lookup, case.pod, 48080);
            assert_eq!(
                (
                    got.unsafe_reasons.as_slice(),
                    got.source,
                    got.scrape.path,
                    got.describe().as_str()
                ),
                (case.reasons, case.source, case.path, case.text),
                "{}",
                case.name
            );
            assert_eq!(got.is_safe(), case.reasons.is_empty(), "{}", case.name);
        }
    }

    #[test]
    fn fallback_never_scrapes_directly_and_says_why() {
        let got = verdict(&Lookup::NotFound, &[], 48080);
        assert_eq!(got.scrape, PathDecision::relay(PathReason::VmiNotRead));
        assert_eq!(got.source.as_str(), "pod-fallback");
    }

    #[test]
    fn passt_conflict_is_reported() {
        let spec = json!({"networks": [{"name": "d", "pod": {}}],
                          "domain": {"devices": {"interfaces": [{"name": "d", "passt": {}, "ports": [{"port": 48080}]}]}}});
        let got = verdict(&found(spec), &[], 48080);
        assert!(got.passt_port_conflict);
        assert_eq!(got.scrape, PathDecision::relay(PathReason::PasstListsPort));
    }
}
