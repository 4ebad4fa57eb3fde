//! What the node collector's answer holds besides its pods' lines: which pods it admits, under the
//! relay's rules for a node's answer, and its own families. No I/O.

use kube_metrics_contract::limits::{MAX_OUTPUT_BYTES, MAX_SERIES};
use kube_metrics_exposition::{Format, Kind, Writer};

use crate::kubelet::Identity;
use crate::relay::merge::{Rejected, Room};

/// What one scrape did with the pods of the node, for the node collector's own families.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PodCounts {
    pub collected: u64,
    pub injected: u64,
    /// Launcher pods whose pods directory could not be read (left out: they may be injected).
    pub unverified: u64,
    /// Launcher pods without an attested identity (no single log directory for the uid).
    pub unattested: u64,
    /// Processes of unattested pods, left out.
    pub unattested_processes: u64,
    /// Collected pods whose QEMU gave no usable guest name (none, or past `MAX_GUEST_NAME`):
    /// their `domain` is the pod's name.
    pub domain_fallbacks: u64,
}

/// What one collected pod weighs in the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Weight<'a> {
    pub identity: &'a Identity,
    pub series: usize,
    pub bytes: usize,
}

/// Which collected pods go into the answer, in order: the relay's rules for a node's answer
/// (`crate::relay::merge`), so that the node collector's costs the same at most. A pod recreated
/// under a name already served is left out, as is one over a collector's caps
/// (`kube_metrics_contract::limits`), or one the answer has no room left for.
pub(super) fn admit<'a>(pods: &[Weight<'a>]) -> Vec<Result<(), Rejected>> {
    let mut room = Room::default();
    let admit = |pod: &Weight<'a>| {
        room.unserved(pod.identity)?;
        if pod.series > MAX_SERIES {
            return Err(Rejected::TooManySeries);
        }
        if pod.bytes > MAX_OUTPUT_BYTES {
            return Err(Rejected::OutputTooLarge);
        }
        room.take(pod.identity, pod.series, pod.bytes)
    };
    pods.iter().map(admit).collect()
}

/// `kube_metrics_collector_node_*`: what the last scrape did, appended to `out`.
pub(super) fn own_families(counts: &PodCounts, duration: f64, out: &mut Vec<u8>) {
    let PodCounts {
        collected,
        injected,
        unverified,
        unattested,
        unattested_processes,
        domain_fallbacks,
    } = *counts;
    let mut w = Writer::new(out, Format::Text);
    w.family(
        "kube_metrics_collector_node_pods",
        "Launcher pods on this node by what the node collector did with them at its last scrape.",
        Kind::Gauge,
    );
    for (state, pods) in [
        ("collected", collected),
        ("injected", injected),
        ("unverified", unverified),
        ("unattested", unattested),
    ] {
        w.sample(false, &[("state", state)], pods as f64);
    }
    let gauges = [
        (
            "kube_metrics_collector_node_unattested_processes",
            "Processes of launcher pods left out because the kubelet attests no identity for their pod.",
            unattested_processes as f64,
        ),
        (
            "kube_metrics_collector_node_domain_fallbacks",
            "Collected pods labelled with their pod name as domain, their QEMU giving no guest name of at most 253 characters.",
            domain_fallbacks as f64,
        ),
        (
            "kube_metrics_collector_node_scrape_duration_seconds",
            "Time the last node scrape took.",
            duration,
        ),
    ];
    for (name, help, value) in gauges {
        w.family(name, help, Kind::Gauge);
        w.sample(false, &[], value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube_metrics_contract::limits::MAX_TARGETS;

    #[test]
    fn admits_pods_within_the_relays_caps_once_per_identity() {
        let id = |pod: &str| Identity {
            namespace: "ns".into(),
            pod: pod.into(),
        };
        let (a, b, c, d) = (id("a"), id("b"), id("c"), id("d"));
        let weight = |identity, series, bytes| Weight {
            identity,
            series,
            bytes,
        };
        let pods = [
            weight(&a, 40, 8_000),
            weight(&a, 40, 8_000),
            weight(&b, MAX_SERIES + 1, 8_000),
            weight(&c, 40, MAX_OUTPUT_BYTES + 1),
            weight(&d, MAX_SERIES, MAX_OUTPUT_BYTES),
        ];
        assert_eq!(
            admit(&pods),
            [
                Ok(()),
                Err(Rejected::DuplicateIdentity),
                Err(Rejected::TooManySeries),
                Err(Rejected::OutputTooLarge),
                Ok(()),
            ]
        );
        let names: Vec<Identity> = (0..=MAX_TARGETS).map(|i| id(&i.to_string())).collect();
        let full: Vec<Weight<'_>> = names
            .iter()
            .map(|identity| weight(identity, MAX_SERIES, MAX_OUTPUT_BYTES))
            .collect();
        let admitted = admit(&full);
        assert!(
            admitted
                .get(..MAX_TARGETS)
                .unwrap()
                .iter()
                .all(Result::is_ok)
        );
        assert_eq!(admitted.last(), Some(&Err(Rejected::AnswerFull)));
    }

    #[test]
    fn own_families_state_each_count() {
        let mut out = Vec::new();
        own_families(
            &PodCounts {
                collected: 2,
                injected: 1,
                unverified: 4,
                unattested: 3,
                unattested_processes: 7,
                domain_fallbacks: 5,
            },
            0.5,
            &mut out,
        );
        let text = String::from_utf8(out).unwrap();
        for line in [
            "kube_metrics_collector_node_pods{state=\"collected\"} 2",
            "kube_metrics_collector_node_pods{state=\"injected\"} 1",
            "kube_metrics_collector_node_pods{state=\"unverified\"} 4",
            "kube_metrics_collector_node_pods{state=\"unattested\"} 3",
            "kube_metrics_collector_node_unattested_processes 7",
            "kube_metrics_collector_node_domain_fallbacks 5",
            "kube_metrics_collector_node_scrape_duration_seconds 0.5",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
    }
}
