//! The benchmark binaries work: in `--quick` mode every exporter answers and every number is
//! printed. Timing is not asserted; that is what running the benchmarks themselves is for.

use std::collections::BTreeMap;
use std::process::Command;

/// Runs `binary --quick`; returns its stdout and its `result` lines' fields, by exporter.
fn quick(binary: &str) -> (String, BTreeMap<String, BTreeMap<String, String>>) {
    let output = Command::new(binary).arg("--quick").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "bench failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
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
