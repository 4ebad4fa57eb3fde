//! Past hours of the fleet, as TSDB blocks made by `promtool tsdb create-blocks-from
//! openmetrics`: the raw series of every pod, node and VM as the generator serves them, labelled
//! as Prometheus stored them (the scrape's target labels included), and the recorded series
//! Prometheus evaluated, each at its last value. One OpenMetrics file per two-hour block, so that
//! promtool reads each line once and the disk holds one block's text at a time.

use super::{Fleet, unix_now};
use crate::exposition::{Sample, series_text};
use crate::prometheus;
use anyhow::Result;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

/// promtool's block length: it cuts blocks at multiples of it.
const BLOCK: i64 = 7_200;

/// What to write, and where it ends.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The first sample after the history (the live head's first): the history ends one step
    /// before.
    pub end: i64,
    /// Hours of raw and recorded series.
    pub seconds: i64,
    pub step: i64,
    /// Recorded series that a slower rule group writes, with that group's interval, and how far
    /// back their history goes (the long-range alerts read a day of them).
    pub trends: Vec<(String, i64)>,
    pub trend_seconds: i64,
}

/// The target labels Prometheus put on each job's series (with `honor_labels`), as
/// `,name="value"` text to append to a series' own labels; by node for the per-node jobs.
#[derive(Clone, Debug)]
pub struct TargetLabels {
    pub relay: Vec<String>,
    pub cadvisor: Vec<String>,
    pub controller: String,
}

/// What writing the history took.
#[derive(Clone, Debug)]
pub struct Written {
    pub samples: u64,
    pub bytes: u64,
    pub blocks: usize,
    pub seconds: f64,
}

/// Writes `plan`'s history of `fleet` and of `recorded` (the recorded series as Prometheus
/// returned them, with their values) into blocks under `data`, a Prometheus data directory whose
/// Prometheus is stopped.
pub fn backfill(
    fleet: &Fleet,
    recorded: &[Sample],
    targets: &TargetLabels,
    plan: &Plan,
    data: &Path,
) -> Result<Written> {
    let started = Instant::now();
    let scratch = tempfile::Builder::new()
        .prefix("bench-history-")
        .tempdir()?;
    let first = plan.end - plan.seconds.max(plan.trend_seconds);
    let mut written = Written {
        samples: 0,
        bytes: 0,
        blocks: 0,
        seconds: 0.0,
    };
    let mut from = first.div_euclid(BLOCK) * BLOCK;
    while from < plan.end {
        let to = (from + BLOCK).min(plan.end);
        let path = scratch.path().join(format!("{from}.om"));
        let samples = write_window(fleet, recorded, targets, plan, (from.max(first), to), &path)?;
        if samples > 0 {
            written.samples += samples;
            written.bytes += std::fs::metadata(&path)?.len();
            prometheus::create_blocks(&path, data)?;
            written.blocks += 1;
        }
        std::fs::remove_file(&path)?;
        from = to;
    }
    written.seconds = started.elapsed().as_secs_f64();
    Ok(written)
}

/// Writes the samples of `[from, to)` to `path`, series by series; returns how many.
fn write_window(
    fleet: &Fleet,
    recorded: &[Sample],
    targets: &TargetLabels,
    plan: &Plan,
    (from, to): (i64, i64),
    path: &Path,
) -> Result<u64> {
    let file = std::fs::File::create(path)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut samples = 0;
    let mut buffer = String::new();
    let raw_from = from.max(plan.end - plan.seconds);
    let times: Vec<i64> = steps(raw_from, to, plan.step).collect();
    // One time after the other within a series: promtool appends each series in time order.
    for &time in &times {
        buffer.clear();
        let suffix = format!(" {time}");
        for vm in &fleet.vms {
            fleet.write_pod(
                vm,
                time as f64,
                &targets.relay[vm.node],
                &suffix,
                &mut buffer,
            );
            fleet.write_cadvisor(
                vm,
                time as f64,
                &targets.cadvisor[vm.node],
                &suffix,
                &mut buffer,
            );
            fleet.write_controller(vm, &targets.controller, &suffix, &mut buffer);
        }
        for node in 0..fleet.nodes {
            fleet.write_relay(
                node,
                time as f64,
                &targets.relay[node],
                &suffix,
                &mut buffer,
            );
        }
        samples += buffer.lines().count() as u64;
        out.write_all(buffer.as_bytes())?;
    }
    for sample in recorded {
        let (step, first) = match plan.trends.iter().find(|(name, _)| *name == sample.name) {
            Some((_, interval)) => (*interval, from.max(plan.end - plan.trend_seconds)),
            None => (plan.step, raw_from),
        };
        buffer.clear();
        let labels = series_text(&sample.name, &sample.labels);
        for time in steps(first, to, step) {
            let _ = writeln!(buffer, "{labels} {} {time}", sample.value);
            samples += 1;
        }
        out.write_all(buffer.as_bytes())?;
    }
    out.write_all(b"# EOF\n")?;
    out.flush()?;
    Ok(samples)
}

/// Multiples of `step` in `[from, to)`.
fn steps(from: i64, to: i64, step: i64) -> impl Iterator<Item = i64> {
    let first = from.div_euclid(step) * step + if from.rem_euclid(step) == 0 { 0 } else { step };
    (first..to).step_by(step.max(1) as usize)
}

/// Now, rounded down to a whole second.
pub fn now() -> i64 {
    unix_now() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_aligned_multiples_inside_the_range() {
        assert_eq!(steps(95, 400, 100).collect::<Vec<_>>(), [100, 200, 300]);
        assert_eq!(steps(100, 300, 100).collect::<Vec<_>>(), [100, 200]);
        assert_eq!(steps(100, 100, 100).count(), 0);
    }
}
