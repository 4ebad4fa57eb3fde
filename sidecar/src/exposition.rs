//! A collection -> Prometheus text 0.0.4 or OpenMetrics 1.0.0, written straight into a buffer at
//! each scrape. No I/O.
//!
//! The writer (`write.rs`) knows the two formats; `families.rs` knows the names and meanings of
//! docs/metrics.md. There is no intermediate metric object model: building one per scrape was
//! most of the collector's CPU.

mod families;
mod negotiate;
mod write;

pub use families::{Metrics, Scope};
pub use negotiate::{Format, negotiate};

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
