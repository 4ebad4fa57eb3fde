//! A collection -> Prometheus text 0.0.4 or OpenMetrics 1.0.0, written straight into a buffer at
//! each scrape. No I/O.
//!
//! The writer (crate `kube-metrics-exposition`) knows the two formats; `families.rs` knows the
//! names and meanings of docs/metrics.md.

mod exclude;
mod families;

pub use exclude::{ExcludeError, Exclusions};
pub use families::{ListenerConnections, Metrics, Scope};
pub use kube_metrics_exposition::{Format, negotiate};

/// Encodes `metrics` in `format` into `out` (cleared first). Writing to memory cannot fail; the
/// `Result` keeps callers' error handling should an encoder ever validate its input.
pub fn encode(
    metrics: &Metrics,
    format: Format,
    out: &mut Vec<u8>,
) -> Result<(), std::convert::Infallible> {
    families::encode(metrics, format, out);
    Ok(())
}
