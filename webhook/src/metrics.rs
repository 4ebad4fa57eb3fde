//! The webhook's own Prometheus metrics (served on the admin listener in text format 0.0.4).
//!
//! Through the `prometheus` crate's registry, not the workspace's exposition writer: every label
//! value here is one of a closed set in this file or the code it names, never a value read from a
//! request, so none needs escaping; the writer is for series that carry values read from pods
//! and targets (docs/design.md, "The exposition writer").
use kube_metrics_runtime::{ConnectionStats, Kind};
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry,
    TextEncoder,
};
use std::time::Duration;

/// The `action` label of `kube_metrics_webhook_connections_total`.
const CONNECTION_ACTIONS: [&str; 2] = ["evicted", "refused"];

/// The `result` label of `kube_metrics_webhook_certificate_reloads_total`.
const CERT_RELOAD_RESULTS: [&str; 2] = ["success", "failure"];

use crate::{decide::SkipReason, patch::Outcome};

/// Latency buckets, in seconds: a review is sub-millisecond work; the API server gives up at
/// `timeoutSeconds` (a few seconds), so nothing above 10 s is interesting.
const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The `annotation` label of `kube_metrics_webhook_ignored_annotations_total`: the per-pod
/// overrides whose value the webhook may ignore (docs/webhook.md, "Per-pod overrides").
pub const IGNORABLE_ANNOTATIONS: [&str; 4] = [
    kube_metrics_contract::pod::MEMORY_LIMIT,
    kube_metrics_contract::pod::CPU_LIMIT,
    kube_metrics_contract::pod::LOG_LEVEL,
    kube_metrics_contract::pod::METRICS_PROFILE,
];

/// The `result` label of `kube_metrics_webhook_vmi_lookups_total`: a [`crate::vmi::Lookup::as_str`],
/// or `off` for a lookup not made because `--vmi-lookup off` (or no client could be built).
pub const VMI_LOOKUP_RESULTS: &[&str] = &[
    "found",
    "not-found",
    "timeout",
    "api-error",
    "unreadable",
    "off",
];

/// What became of one POST /mutate, as the `result` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestResult {
    Injected,
    Skipped,
    /// Answered "allowed" without a patch because of an internal error.
    Error,
    /// Not an AdmissionReview we could answer: 400, 408, 413 or 415.
    BadRequest,
    /// No review slot came free in time: 503.
    Busy,
}

/// Every series the webhook exports; cheap to clone (the collectors are `Arc`s inside).
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    skips: IntCounterVec,
    vmi_lookups: IntCounterVec,
    duration: Histogram,
    cert_expiry: Gauge,
    cert_reloads: IntCounterVec,
    oversized: IntCounterVec,
    connections: IntCounterVec,
    oversized_vmis: prometheus::IntCounter,
    ignored: IntCounterVec,
}

// === impl RequestResult ===

impl RequestResult {
    /// Every value, so each series starts at 0.
    pub const ALL: &'static [RequestResult] = &[
        Self::Injected,
        Self::Skipped,
        Self::Error,
        Self::BadRequest,
        Self::Busy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Injected => "injected",
            Self::Skipped => "skipped",
            Self::Error => "error",
            Self::BadRequest => "bad_request",
            Self::Busy => "busy",
        }
    }

    pub fn of(outcome: &Outcome) -> Self {
        match outcome {
            Outcome::Injected => Self::Injected,
            Outcome::Skipped(_) => Self::Skipped,
            Outcome::Error(_) => Self::Error,
        }
    }
}

// === impl Metrics ===

impl Metrics {
    /// Builds the registry with every series initialised, so dashboards and alerts see zeros
    /// instead of absent series.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "kube_metrics_webhook_requests_total",
                "Admission requests by result.",
            ),
            &["result"],
        )?;
        let skips = IntCounterVec::new(
            Opts::new(
                "kube_metrics_webhook_skips_total",
                "Pods not injected, by reason.",
            ),
            &["reason"],
        )?;
        let vmi_lookups = IntCounterVec::new(
            Opts::new(
                "kube_metrics_webhook_vmi_lookups_total",
                "Lookups of a launcher pod's VirtualMachineInstance, by result.",
            ),
            &["result"],
        )?;
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "kube_metrics_webhook_request_duration_seconds",
                "Time from request headers to response, for POST /mutate.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
        )?;
        let cert_expiry = Gauge::new(
            "kube_metrics_webhook_certificate_expiry_timestamp_seconds",
            "notAfter of the serving certificate in use, as a Unix timestamp.",
        )?;
        let cert_reloads = IntCounterVec::new(
            Opts::new(
                "kube_metrics_webhook_certificate_reloads_total",
                "Attempts to load a changed certificate and key, by result.",
            ),
            &["result"],
        )?;
        let oversized = IntCounterVec::new(
            Opts::new(
                "kube_metrics_webhook_oversized_pods_total",
                "Pods skipped as unparseable because a list is longer than any launcher pod's, by list.",
            ),
            &["part"],
        )?;
        let connections = IntCounterVec::new(
            Opts::new(
                "kube_metrics_webhook_connections_total",
                "HTTPS connections closed by the connection cap: idle ones evicted for a new one, new ones refused while every connection was busy.",
            ),
            &["action"],
        )?;
        let oversized_vmis = prometheus::IntCounter::new(
            "kube_metrics_webhook_oversized_vmis_total",
            "VMIs not read because their domain and networks are past the cache's bounds; their pods are judged by their own signals.",
        )?;
        // Which build answers: the same version and revision as `--version`.
        let build_info = prometheus::IntGaugeVec::new(
            Opts::new(
                "kube_metrics_webhook_build_info",
                "Build of kube-metrics-webhook; always 1.",
            ),
            &["version", "revision"],
        )?;
        build_info
            .with_label_values(&[
                kube_metrics_contract::build::VERSION,
                kube_metrics_contract::build::REVISION,
            ])
            .set(1);
        registry.register(Box::new(build_info))?;
        let ignored = IntCounterVec::new(
            Opts::new(
                "kube_metrics_webhook_ignored_annotations_total",
                "Per-pod overrides whose value was ignored (the pod was injected with the default), by annotation.",
            ),
            &["annotation"],
        )?;
        registry.register(Box::new(ignored.clone()))?;
        for annotation in IGNORABLE_ANNOTATIONS {
            ignored.with_label_values(&[annotation]);
        }
        registry.register(Box::new(oversized_vmis.clone()))?;
        registry.register(Box::new(oversized.clone()))?;
        registry.register(Box::new(connections.clone()))?;
        for part in crate::patch::shape::PARTS {
            oversized.with_label_values(&[*part]);
        }
        for action in CONNECTION_ACTIONS {
            connections.with_label_values(&[action]);
        }
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(skips.clone()))?;
        registry.register(Box::new(vmi_lookups.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(cert_expiry.clone()))?;
        registry.register(Box::new(cert_reloads.clone()))?;
        for result in RequestResult::ALL {
            requests.with_label_values(&[result.as_str()]);
        }
        for reason in SkipReason::ALL {
            skips.with_label_values(&[reason.as_str()]);
        }
        for result in VMI_LOOKUP_RESULTS {
            vmi_lookups.with_label_values(&[*result]);
        }
        for result in CERT_RELOAD_RESULTS {
            cert_reloads.with_label_values(&[result]);
        }
        Ok(Self {
            registry,
            requests,
            skips,
            vmi_lookups,
            duration,
            cert_expiry,
            cert_reloads,
            oversized,
            connections,
            oversized_vmis,
            ignored,
        })
    }

    /// Counts one per-pod override ignored for its value, one of [`IGNORABLE_ANNOTATIONS`].
    pub fn ignored(&self, annotation: &str) {
        if let Some(counter) = closed(&self.ignored, &IGNORABLE_ANNOTATIONS, annotation) {
            counter.inc();
        }
    }

    /// Brings the oversized VMI counter up to what the VMI decoder counted.
    pub fn oversized_vmis(&self, total: u64) {
        self.oversized_vmis
            .inc_by(total.saturating_sub(self.oversized_vmis.get()));
    }

    /// Counts one pod skipped for a list longer than any launcher pod's, one of
    /// [`crate::patch::shape::PARTS`].
    pub fn oversized(&self, part: &str) {
        if let Some(counter) = closed(&self.oversized, crate::patch::shape::PARTS, part) {
            counter.inc();
        }
    }

    /// Brings the connection counters up to what the runtime's cap counted on the HTTPS port.
    pub fn connections(&self, stats: &ConnectionStats) {
        let [evicted, refused] = CONNECTION_ACTIONS;
        for (action, total) in [
            (evicted, stats.evicted(Kind::Tcp)),
            (refused, stats.refused(Kind::Tcp)),
        ] {
            let counter = self.connections.with_label_values(&[action]);
            counter.inc_by(total.saturating_sub(counter.get()));
        }
    }

    /// Counts one request and its latency.
    pub fn observe(&self, result: RequestResult, elapsed: Duration) {
        self.requests.with_label_values(&[result.as_str()]).inc();
        self.duration.observe(elapsed.as_secs_f64());
    }

    pub fn skipped(&self, reason: SkipReason) {
        self.skips.with_label_values(&[reason.as_str()]).inc();
    }

    /// Counts one VMI lookup by its result, one of [`VMI_LOOKUP_RESULTS`].
    pub fn vmi_lookup(&self, result: &str) {
        if let Some(counter) = closed(&self.vmi_lookups, VMI_LOOKUP_RESULTS, result) {
            counter.inc();
        }
    }

    /// Records a certificate load: the new expiry on success, a failure count otherwise.
    pub fn cert_loaded(&self, not_after: Option<i64>) {
        let [success, failure] = CERT_RELOAD_RESULTS;
        match not_after {
            Some(timestamp) => {
                // Timestamps fit f64 exactly until the year 285 million.
                self.cert_expiry.set(timestamp as f64);
                self.cert_reloads.with_label_values(&[success]).inc();
            }
            None => self.cert_reloads.with_label_values(&[failure]).inc(),
        }
    }

    /// Text exposition format 0.0.4: (content type, body).
    pub fn render(&self) -> (String, Vec<u8>) {
        let encoder = TextEncoder::new();
        let mut body = Vec::new();
        if let Err(error) = encoder.encode(&self.registry.gather(), &mut body) {
            tracing::error!(%error, "Failed to encode metrics");
        }
        (encoder.format_type().to_owned(), body)
    }
}

/// The series of `vec` for `value`, when `value` is one of `closed`. Callers pass constants of
/// those sets; another value would be a bug of ours, and is not counted rather than become a
/// series of its own.
fn closed(vec: &IntCounterVec, closed: &[&str], value: &str) -> Option<IntCounter> {
    if closed.contains(&value) {
        Some(vec.with_label_values(&[value]))
    } else {
        tracing::error!(
            value,
            "Metric label value outside its closed set; not counted"
        );
        None
    }
}

#[cfg(test)]
mod tests;
