//! The relay's own metrics: counters kept across scrapes and their text
//! rendering. No I/O.

use std::collections::BTreeMap;
use std::time::Duration;

use kube_metrics_exposition::{Format, Kind, Writer};

use super::merge::{DropCounts, Dropped};

/// Every `reason` the failure counter can carry, exported from the start at 0
/// so that `rate()` and `increase()` see the first failure.
pub const FAILURE_REASONS: [&str; 26] = [
    "discovery",
    "symlink",
    "not_socket",
    "unreadable",
    "connect",
    "timeout",
    "http",
    "http_status",
    "too_large",
    "body",
    "not_utf8",
    "no_identity",
    "ambiguous_identity",
    "duplicate_identity",
    "no_attested_identity",
    "attestation_mismatch",
    "attestation_unsafe",
    "uid_mismatch",
    "not_relay",
    "identity_mismatch",
    "malformed",
    "type_conflict",
    "untyped",
    "too_many_series",
    "output_too_large",
    "answer_full",
];

/// Counters that only grow, for the life of the process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    failures: BTreeMap<&'static str, u64>,
    dropped: DropCounts,
}

/// How the targets of the latest scrape ended.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LastScrape {
    pub ok: u64,
    pub failed: u64,
    pub timeout: u64,
    /// Sockets of pods Prometheus scrapes directly: left alone, not failed.
    pub skipped_direct: u64,
    pub duration: Duration,
}

// === impl Stats ===

impl Default for Stats {
    fn default() -> Self {
        Self {
            failures: FAILURE_REASONS.iter().map(|r| (*r, 0)).collect(),
            dropped: DropCounts::default(),
        }
    }
}

impl Stats {
    /// Counts one failed target under `reason`.
    pub fn fail(&mut self, reason: &'static str) {
        let count = self.failures.entry(reason).or_default();
        *count = count.saturating_add(1);
    }

    pub fn add_dropped(&mut self, dropped: &DropCounts) {
        self.dropped.add_all(dropped);
    }

    pub fn failures(&self, reason: &str) -> u64 {
        self.failures.get(reason).copied().unwrap_or(0)
    }

    /// Text format 0.0.4 of the relay's own families.
    pub fn render(&self, last: &LastScrape) -> String {
        let mut out = Vec::with_capacity(2048);
        let mut w = Writer::new(&mut out, Format::Text);
        w.family(
            "kube_metrics_collector_relay_targets",
            "Collector sockets found in the latest scrape, by how they ended.",
            Kind::Gauge,
        );
        for (state, n) in [
            ("ok", last.ok),
            ("failed", last.failed),
            ("timeout", last.timeout),
            ("skipped_direct", last.skipped_direct),
        ] {
            w.sample(false, &[("state", state)], n as f64);
        }
        w.family(
            "kube_metrics_collector_relay_target_failures_total",
            "Targets left out of a scrape, by reason (each target counts once per scrape).",
            Kind::Counter,
        );
        for (reason, n) in &self.failures {
            w.sample(false, &[("reason", reason)], *n as f64);
        }
        w.family(
            "kube_metrics_collector_relay_dropped_lines_total",
            "Lines of collectors' expositions not forwarded, by reason.",
            Kind::Counter,
        );
        for reason in Dropped::ALL {
            let n = self.dropped.get(reason);
            w.sample(false, &[("reason", reason.reason())], n as f64);
        }
        w.family(
            "kube_metrics_collector_relay_scrape_duration_seconds",
            "Time the latest scrape of all targets took.",
            Kind::Gauge,
        );
        w.sample(false, &[], last.duration.as_secs_f64());
        w.finish();
        // Only ASCII literals and numbers were written.
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_all_states_and_reasons_from_the_start() {
        let mut stats = Stats::default();
        stats.fail("timeout");
        stats.fail("timeout");
        let last = LastScrape {
            ok: 3,
            failed: 1,
            timeout: 2,
            skipped_direct: 4,
            duration: Duration::from_millis(1500),
        };
        let text = stats.render(&last);
        for line in [
            "kube_metrics_collector_relay_targets{state=\"ok\"} 3",
            "kube_metrics_collector_relay_targets{state=\"timeout\"} 2",
            "kube_metrics_collector_relay_targets{state=\"skipped_direct\"} 4",
            "kube_metrics_collector_relay_target_failures_total{reason=\"identity_mismatch\"} 0",
            "kube_metrics_collector_relay_dropped_lines_total{reason=\"not_allowed\"} 0",
            "kube_metrics_collector_relay_target_failures_total{reason=\"timeout\"} 2",
            "kube_metrics_collector_relay_target_failures_total{reason=\"connect\"} 0",
            "kube_metrics_collector_relay_dropped_lines_total{reason=\"malformed\"} 0",
            "kube_metrics_collector_relay_scrape_duration_seconds 1.5",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn own_families_fit_the_room_the_answer_leaves_for_them() {
        use kube_metrics_contract::limits::{RELAY_OWN_BYTES, RELAY_OWN_SERIES};
        use kube_metrics_contract::metrics::FAMILIES;
        let mut stats = Stats::default();
        for reason in FAILURE_REASONS {
            for _ in 0..3 {
                stats.fail(reason);
            }
        }
        let last = LastScrape {
            ok: u64::MAX,
            failed: u64::MAX,
            timeout: u64::MAX,
            skipped_direct: u64::MAX,
            duration: Duration::from_secs_f64(1.0 / 3.0),
        };
        let text = stats.render(&last);
        let series = text.lines().filter(|l| !l.starts_with('#')).count();
        assert!(series <= RELAY_OWN_SERIES, "{series}");
        // Every count 20 digits long, as it may become.
        let longest = text.len() + series * 20;
        let type_lines: usize = FAMILIES
            .iter()
            .map(|f| "# TYPE ".len() + f.name.len() + 1 + f.kind.len() + 1)
            .sum();
        assert!(longest + type_lines <= RELAY_OWN_BYTES, "{longest}");
    }
}
