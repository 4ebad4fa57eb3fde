//! The Prometheus exposition formats, shared by the collector and the node relay: a writer of
//! text 0.0.4 and OpenMetrics 1.0.0 straight into a byte buffer (`write`), and the choice between
//! them from a request's `Accept` header (`negotiate`). No I/O, no metric object model: a scrape
//! through the `prometheus` crate's registry takes 30 times as long and 11,000 allocations
//! (`benches/writer.rs`; docs/design.md, "Hand-written, and why").
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod negotiate;
mod write;

pub use negotiate::{Format, negotiate};
pub use write::{Kind, Line, Writer, escape_help, escape_label_value, label};
