//! The benchmark binary works: in `--quick` mode both exporters answer and every number is printed.
//! Timing is not asserted; that is what running the benchmark itself is for.

use std::collections::BTreeMap;
use std::process::Command;

#[test]
fn bench_quick_mode_measures_both_exporters() {
    e2e::preflight(&["unshare", "nsenter", "prometheus-process-exporter"]).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_bench-sidecar"))
        .arg("--quick")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let results: BTreeMap<String, BTreeMap<String, String>> = stdout
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
    assert_eq!(
        results.keys().collect::<Vec<_>>(),
        ["kube-metrics-collector", "process-exporter"],
        "{stdout}"
    );
    for (exporter, fields) in &results {
        assert_eq!(fields["scrapes"], "20", "{exporter}: {stdout}");
        for key in ["p50_seconds", "p99_seconds", "peak_rss_bytes", "body_bytes"] {
            let value: f64 = fields[key].parse().unwrap();
            assert!(value > 0.0, "{exporter} {key} = {value}:\n{stdout}");
        }
        let cpu: f64 = fields["cpu_seconds_per_scrape"].parse().unwrap();
        assert!(cpu >= 0.0, "{exporter}: {stdout}");
    }
    assert!(
        stdout.contains("process-exporter / ours"),
        "summary table:\n{stdout}"
    );
}
