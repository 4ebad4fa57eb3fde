//! How much one collector, and one node, may put in the node relay's answer, and the limits the
//! PodMonitors give Prometheus, derived from the same numbers. docs/threat-model.md ("The relay's
//! bounds") has the arithmetic of the relay's memory from them.
//!
//! The caps come from what a real collector sends: `kube-metrics-collector -M` in a launcher pod
//! with the longest legal names (namespace 63 characters, pod, node and VM 253), measured by
//! `tests/tests/sidecar_dump.rs`:
//!
//! | pod | series | answer | with `namespace` and `pod` added |
//! |---|---|---|---|
//! | the five processes of every launcher pod | 148 | 89 KB | 139 KB |
//! | all twelve roles the collector knows, `--pss` | 307 | 185 KB | 288 KB |
//!
//! Each cap holds the largest of these with room to spare (the ratio is in each constant's
//! comment), and the first one, what nearly every pod sends, about three times over.

use crate::metrics;

/// Pods on one node: the kubelet's default `maxPods`. The relay's answer and the PodMonitors'
/// sample limits are sized for this many collectors; a node with more gets this many of them
/// (the rest are counted as `answer_full`).
pub const MAX_TARGETS: usize = 110;

/// Most bytes the relay reads from one collector's socket; it hangs up at the cap (`too_large`).
/// 1.4 times the twelve-role pod, 2.9 times the usual one.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Most sample lines one collector may send; the relay stops reading past it and leaves the
/// collector out (`too_many_series`). 1.7 times the twelve-role pod, 3.5 times the usual one.
pub const MAX_SERIES: usize = 512;

/// Most bytes one collector's series may take in the relay's answer, once `namespace` and `pod`
/// are added (and its HELP texts), else it is left out (`output_too_large`). The relay writes at
/// most 1.6 times what it reads (`namespace` and `pod` on every line); 1.4 times the twelve-role
/// pod, 2.8 times the usual one.
pub const MAX_OUTPUT_BYTES: usize = 384 * 1024;

/// Longest label value the relay forwards, in bytes: twice the longest name Kubernetes allows for
/// a pod or a node (253), which is also the longest the collector writes.
pub const MAX_LABEL_VALUE_BYTES: usize = 512;

/// Longest label name Prometheus is told to accept: above the longest the collector writes
/// (`kubevirt_release`, 16) or Prometheus itself adds (`exported_namespace`, 18).
pub const MAX_LABEL_NAME_BYTES: usize = 64;

/// Most series in the relay's answer from all collectors of a node.
pub const MAX_ANSWER_SERIES: usize = MAX_TARGETS * MAX_SERIES;

/// Most bytes of the relay's answer from all collectors of a node (families' TYPE lines and the
/// relay's own families come on top: [`RELAY_OWN_BYTES`]).
pub const MAX_ANSWER_BYTES: usize = MAX_TARGETS * MAX_OUTPUT_BYTES;

/// A bound on the series the relay (or the node collector) adds about itself: one per target
/// state, failure reason and dropped-line reason, and its scrape duration.
pub const RELAY_OWN_SERIES: usize = 64;

/// A bound on the bytes of the relay's answer besides the collectors' series: a TYPE line per
/// family and the relay's own families.
pub const RELAY_OWN_BYTES: usize = 16 * 1024;

/// Labels Prometheus puts on every series of a PodMonitor's target: `job`, `instance`,
/// `namespace`, `pod`, `container`, `endpoint`.
pub const TARGET_LABELS: usize = 6;

/// `sampleLimit` of the relay's and the node collector's PodMonitors: every collector of a node
/// at its cap, and their own series. Over it Prometheus drops the whole scrape.
pub const NODE_SAMPLE_LIMIT: usize = MAX_ANSWER_SERIES + RELAY_OWN_SERIES;

/// `sampleLimit` of the direct PodMonitor (one collector) and the webhook's.
pub const POD_SAMPLE_LIMIT: usize = MAX_SERIES;

/// `labelLimit` of every PodMonitor: `__name__`, the most labels a relayed series carries, the
/// target's labels, and two for a cluster's own scrape relabelling.
pub const LABEL_LIMIT: usize = 1 + metrics::MAX_RELAYED_LABELS + TARGET_LABELS + 2;

/// `labelNameLengthLimit` of every PodMonitor.
pub const LABEL_NAME_LENGTH_LIMIT: usize = MAX_LABEL_NAME_BYTES;

/// `labelValueLengthLimit` of every PodMonitor: the relay forwards nothing longer, and the
/// collector writes nothing longer.
pub const LABEL_VALUE_LENGTH_LIMIT: usize = MAX_LABEL_VALUE_BYTES;

/// `bodySizeLimit` of the relay's and the node collector's PodMonitors, in bytes.
pub const NODE_BODY_SIZE_LIMIT: usize = MAX_ANSWER_BYTES + RELAY_OWN_BYTES;

/// `bodySizeLimit` of the direct PodMonitor, in bytes: what the relay would read of it.
pub const POD_BODY_SIZE_LIMIT: usize = MAX_BODY_BYTES;

// A pod's or node's name fits a label value twice over, and what the relay may write of a
// collector's answer is more than it reads of it.
const _: () = assert!(2 * 253 <= MAX_LABEL_VALUE_BYTES);
const _: () = assert!(MAX_BODY_BYTES < MAX_OUTPUT_BYTES);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_what_a_collector_writes() {
        let longest_name = metrics::FAMILIES
            .iter()
            .flat_map(|f| f.labels)
            .map(|l| l.len())
            .max();
        assert!(longest_name.is_some_and(|n| n < MAX_LABEL_NAME_BYTES));
        assert!("exported_namespace".len() < MAX_LABEL_NAME_BYTES);
        // Every relayed line fits in a collector's output many times over.
        let longest_line = 64 + metrics::MAX_RELAYED_LABELS * (2 * MAX_LABEL_VALUE_BYTES + 24);
        assert!(longest_line * 32 < MAX_OUTPUT_BYTES, "{longest_line}");
    }

    #[test]
    fn prometheus_limits_follow_the_caps() {
        assert_eq!(NODE_SAMPLE_LIMIT, 110 * 512 + 64);
        assert_eq!(LABEL_LIMIT, 16);
        assert_eq!(NODE_BODY_SIZE_LIMIT, 110 * 384 * 1024 + 16 * 1024);
    }
}
