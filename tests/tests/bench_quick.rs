//! The benchmark binaries work: in `--quick` mode every exporter answers and every number is
//! printed. Timing is not asserted; that is what running the benchmarks themselves is for.

use std::collections::BTreeMap;
use std::process::Command;

/// Runs `binary --quick`; returns its stdout, which must say it succeeded.
fn run_quick(binary: &str) -> String {
    let output = Command::new(binary).arg("--quick").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "bench failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Runs `binary --quick`; returns its stdout and its `result` lines' fields, by exporter.
fn quick(binary: &str) -> (String, BTreeMap<String, BTreeMap<String, String>>) {
    let stdout = run_quick(binary);
    let results = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("result "))
        .map(|line| {
            let fields: BTreeMap<String, String> = line
                .split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            (fields["exporter"].clone(), fields)
        })
        .collect();
    (stdout, results)
}

/// Every exporter of `results` did `scrapes` scrapes and printed positive latencies and sizes.
fn assert_measured(
    stdout: &str,
    results: &BTreeMap<String, BTreeMap<String, String>>,
    scrapes: &str,
) {
    for (exporter, fields) in results {
        assert_eq!(fields["scrapes"], scrapes, "{exporter}: {stdout}");
        for key in ["p50_seconds", "p99_seconds", "peak_rss_bytes", "body_bytes"] {
            let value: f64 = fields[key].parse().unwrap();
            assert!(value > 0.0, "{exporter} {key} = {value}:\n{stdout}");
        }
    }
}

#[test]
fn bench_quick_mode_measures_both_exporters() {
    e2e::preflight(&["unshare", "nsenter", "prometheus-process-exporter"]).unwrap();
    let (stdout, results) = quick(env!("CARGO_BIN_EXE_bench-sidecar"));
    assert_eq!(
        results.keys().collect::<Vec<_>>(),
        ["kube-metrics-collector", "process-exporter"],
        "{stdout}"
    );
    assert_measured(&stdout, &results, "20");
    for (exporter, fields) in &results {
        let cpu: f64 = fields["cpu_seconds_per_scrape"].parse().unwrap();
        assert!(cpu >= 0.0, "{exporter}: {stdout}");
    }
    assert!(
        stdout.contains("process-exporter / ours"),
        "summary table:\n{stdout}"
    );
}

#[test]
fn bench_node_quick_mode_measures_the_node_collector() {
    let (stdout, results) = quick(env!("CARGO_BIN_EXE_bench-node"));
    assert_eq!(results.keys().collect::<Vec<_>>(), ["node"], "{stdout}");
    assert_measured(&stdout, &results, "5");
}

/// The fleet benchmark with 20 VMs and one-second intervals: a real Prometheus scrapes the
/// generated fleet, backfilled blocks load, every rule group is timed and every dashboard query
/// answers, with one VM and for the fleet.
#[test]
fn bench_fleet_quick_mode_times_rules_and_dashboards() {
    e2e::preflight(&["unshare", "nsenter", "prometheus", "promtool"]).unwrap();
    let stdout = run_quick(env!("CARGO_BIN_EXE_bench-fleet"));
    let results: Vec<BTreeMap<&str, &str>> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("result "))
        .map(|line| {
            line.split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .collect()
        })
        .collect();
    let profile = results
        .iter()
        .find(|r| r.contains_key("series_per_pod"))
        .unwrap_or_else(|| panic!("no profile line:\n{stdout}"));
    assert_eq!(profile["profile"], "default", "{stdout}");
    let series: usize = profile["series_per_pod"].parse().unwrap();
    assert!(
        (40..=50).contains(&series),
        "{series} series per pod:\n{stdout}"
    );
    let groups: Vec<&str> = results
        .iter()
        .filter_map(|r| r.get("group").copied())
        .collect();
    for group in [
        kube_metrics_contract::rules::GROUP,
        kube_metrics_contract::rules::TRENDS_GROUP,
        "kube-metrics-collector.alerts",
    ] {
        assert!(groups.contains(&group), "{group} not timed:\n{stdout}");
    }
    let queries = results
        .iter()
        .find(|r| r.contains_key("queries"))
        .unwrap_or_else(|| panic!("no query line:\n{stdout}"));
    let count: usize = queries["queries"].parse().unwrap();
    assert!(count >= 40, "{count} dashboard queries:\n{stdout}");
    assert!(!stdout.contains("ERROR"), "a query failed:\n{stdout}");
    assert!(stdout.contains("20000 VMs:"), "no extrapolation:\n{stdout}");
}

/// The footprint benchmark for a few seconds: both pods measured, requests and limits derived.
#[test]
fn bench_footprint_quick_mode_measures_both_pods() {
    e2e::preflight(&["unshare", "nsenter"]).unwrap();
    let stdout = run_quick(env!("CARGO_BIN_EXE_bench-footprint"));
    let pods = stdout
        .lines()
        .filter(|l| l.starts_with("result pod="))
        .count();
    assert_eq!(pods, 2, "{stdout}");
    for derived in [
        "memory request:",
        "memory limit:",
        "CPU request:",
        "CPU limit:",
    ] {
        assert!(stdout.contains(derived), "{derived}\n{stdout}");
    }
}
