//! What `bench-fleet` measured for each profile, and how it prints it: series, memory, the rule
//! groups' evaluation times, the dashboards' queries, and their extrapolation to larger fleets.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use e2e::scale::history;
use e2e::scale::measure::{self, GroupTimes, QueryKind, Timing};
use kube_metrics_contract::metrics::Profile;

pub const MIB: f64 = 1024.0 * 1024.0;
/// The fleet sizes the results are extrapolated to.
const EXTRAPOLATE: [usize; 2] = [5_000, 20_000];
/// A dashboard query slower than this is too slow for a dashboard (the bar docs/metrics.md states).
const QUERY_BUDGET: f64 = 2.0;

/// Everything measured for one profile.
#[derive(Debug)]
pub struct Report {
    pub profile: Profile,
    pub vms: usize,
    pub series_per_pod: usize,
    pub head_series: f64,
    pub recorded_series: f64,
    /// `VmRSS` and `VmHWM` at the end, and of the same Prometheus without a fleet.
    pub rss: (u64, u64),
    pub empty_rss: u64,
    pub heap: f64,
    /// Alerts pending or firing at the end, by name: a healthy fleet has few.
    pub alerts: BTreeMap<String, usize>,
    pub history: history::Written,
    pub groups: BTreeMap<String, GroupTimes>,
    pub queries: Vec<QueryTiming>,
}

/// One dashboard query, timed with one VM chosen and for the whole fleet.
#[derive(Debug)]
pub struct QueryTiming {
    pub dashboard: String,
    pub panel: String,
    pub kind: QueryKind,
    pub one: Timing,
    pub fleet: Timing,
}

/// One profile's measurements, then what they extrapolate to; `interval` is the scrape and
/// evaluation interval, in seconds.
pub fn print(r: &Report, interval: u64) {
    let n = r.vms as f64;
    let per_thousand = |bytes: u64| (bytes.saturating_sub(r.empty_rss)) as f64 / n * 1000.0 / MIB;
    println!();
    println!("== profile {} ({} VMs) ==", r.profile, r.vms);
    println!(
        "series per launcher pod: {} (the collector's own); in Prometheus' head per VM: {:.1} \
         (recorded {:.1}, cAdvisor and virt-controller 2, the rest the relay's and Prometheus' own)",
        r.series_per_pod,
        r.head_series / n,
        r.recorded_series / n
    );
    println!(
        "Prometheus RSS {:.0} MiB (peak {:.0} MiB, Go heap in use {:.0} MiB); without a fleet {:.0} \
         MiB: {:.1} MiB per 1,000 VMs",
        r.rss.0 as f64 / MIB,
        r.rss.1 as f64 / MIB,
        r.heap / MIB,
        r.empty_rss as f64 / MIB,
        per_thousand(r.rss.0)
    );
    println!("alerts pending or firing: {:?}", r.alerts);
    println!(
        "history: {} samples, {:.0} MiB of OpenMetrics, {} blocks, {:.0} s",
        r.history.samples,
        r.history.bytes as f64 / MIB,
        r.history.blocks,
        r.history.seconds
    );
    println!(
        "result profile={} vms={} series_per_pod={} head_series_per_vm={:.2} recorded_per_vm={:.2} \
         rss_bytes={} rss_per_1000_vms_mib={:.2}",
        r.profile,
        r.vms,
        r.series_per_pod,
        r.head_series / n,
        r.recorded_series / n,
        r.rss.0,
        per_thousand(r.rss.0)
    );
    println!();
    println!(
        "{:<40} {:>9} {:>9} {:>9} {:>6}",
        "rule group", "interval", "p50", "max", "evals"
    );
    for (name, g) in &r.groups {
        let (p50, max) = measure::median_max(&g.evaluations);
        println!(
            "{name:<40} {:>8.0}s {:>8.3}s {:>8.3}s {:>6}",
            g.interval,
            p50,
            max,
            g.evaluations.len()
        );
        println!(
            "result profile={} group={name} interval_seconds={} eval_p50_seconds={p50:.6} \
             eval_max_seconds={max:.6} evaluations={}",
            r.profile,
            g.interval,
            g.evaluations.len()
        );
        let mut rules: Vec<(&String, f64)> = g
            .rules
            .iter()
            .map(|(rule, times)| (rule, measure::median_max(times).0))
            .collect();
        rules.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (rule, p50) in rules.iter().take(4) {
            println!("    {p50:>8.3}s  {rule}");
        }
    }
    println!();
    println!(
        "{:<22} {:<58} {:>6} {:>10} {:>7} {:>10} {:>7}",
        "dashboard", "query", "kind", "one VM", "series", "fleet", "series"
    );
    let mut slow = 0;
    for QueryTiming {
        dashboard,
        panel,
        kind,
        one,
        fleet: all,
    } in &r.queries
    {
        let kind = match kind {
            QueryKind::Range => "range",
            QueryKind::Instant => "table",
            QueryKind::LabelValues { .. } => "values",
        };
        let mark = |t: &Timing| match &t.error {
            Some(e) => format!("ERROR {e}"),
            None => String::new(),
        };
        slow += usize::from(all.seconds > QUERY_BUDGET || one.seconds > QUERY_BUDGET);
        println!(
            "{:<22} {:<58} {:>6} {:>8.0}ms {:>7} {:>8.0}ms {:>7} {}{}",
            dashboard.chars().take(22).collect::<String>(),
            panel.chars().take(58).collect::<String>(),
            kind,
            one.seconds * 1e3,
            one.series,
            all.seconds * 1e3,
            all.series,
            mark(one),
            mark(all)
        );
    }
    let (worst_one, worst_all) = r.queries.iter().fold((0.0f64, 0.0f64), |(a, b), q| {
        (a.max(q.one.seconds), b.max(q.fleet.seconds))
    });
    println!(
        "result profile={} queries={} slowest_one_vm_seconds={worst_one:.6} \
         slowest_fleet_seconds={worst_all:.6} over_{QUERY_BUDGET}s={slow}",
        r.profile,
        r.queries.len()
    );
    print_extrapolation(r, interval);
}

/// The figures at [`EXTRAPOLATE`] VMs: straight lines through the measured point, from an empty
/// Prometheus for memory and from zero for everything else.
fn print_extrapolation(r: &Report, interval: u64) {
    let n = r.vms as f64;
    println!();
    println!("extrapolated (linear in the number of VMs):");
    for m in EXTRAPOLATE {
        let scale = m as f64 / n;
        let mut line = String::new();
        let _ = write!(
            line,
            "  {m} VMs: head series {:.0} x {m} = {:.0}; RSS {:.0} + ({:.0} - {:.0}) x {m}/{} = {:.0} MiB",
            r.head_series / n,
            r.head_series / n * m as f64,
            r.empty_rss as f64 / MIB,
            r.rss.0 as f64 / MIB,
            r.empty_rss as f64 / MIB,
            r.vms,
            (r.empty_rss as f64 + (r.rss.0 as f64 - r.empty_rss as f64) * scale) / MIB
        );
        println!("{line}");
        for (name, g) in &r.groups {
            let (p50, max) = measure::median_max(&g.evaluations);
            let interval = if g.interval > 0.0 {
                g.interval
            } else {
                interval as f64
            };
            println!(
                "    {name}: {p50:.3} s x {m}/{} = {:.2} s (max {:.2} s) of its {interval:.0} s interval, {:.0}%",
                r.vms,
                p50 * scale,
                max * scale,
                100.0 * p50 * scale / interval
            );
        }
        let slowest = r
            .queries
            .iter()
            .max_by(|a, b| a.fleet.seconds.total_cmp(&b.fleet.seconds));
        if let Some(q) = slowest {
            println!(
                "    slowest fleet-wide query ({}: {}): {:.3} s x {m}/{} = {:.2} s",
                q.dashboard,
                q.panel,
                q.fleet.seconds,
                r.vms,
                q.fleet.seconds * scale
            );
        }
    }
}

/// The profiles side by side, as docs/metrics.md's table.
pub fn print_comparison(reports: &[Report]) {
    if reports.len() < 2 {
        return;
    }
    println!();
    println!(
        "| profile | series per pod | head series per VM | RSS per 1,000 VMs | groups (p50 at {} VMs) |",
        reports.first().map_or(0, |r| r.vms)
    );
    println!("|---|---|---|---|---|");
    for r in reports {
        let n = r.vms as f64;
        let groups: Vec<String> = r
            .groups
            .iter()
            .map(|(name, g)| format!("{name} {:.2} s", measure::median_max(&g.evaluations).0))
            .collect();
        println!(
            "| {} | {} | {:.0} | {:.0} MiB | {} |",
            r.profile,
            r.series_per_pod,
            r.head_series / n,
            (r.rss.0.saturating_sub(r.empty_rss)) as f64 / n * 1000.0 / MIB,
            groups.join(", ")
        );
    }
}
