//! The node benchmark works: in `--quick` mode the node collector answers for every fake VM and
//! every number is printed. Timing is not asserted.

use std::collections::BTreeMap;
use std::process::Command;

#[test]
fn bench_node_quick_mode_measures_the_node_collector() {
    let output = Command::new(env!("CARGO_BIN_EXE_bench-node"))
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
    let fields: BTreeMap<&str, &str> = stdout
        .lines()
        .find_map(|line| line.strip_prefix("result "))
        .unwrap_or_else(|| panic!("no result line:\n{stdout}"))
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .collect();
    assert_eq!(fields["exporter"], "node", "{stdout}");
    assert_eq!(fields["scrapes"], "5", "{stdout}");
    for key in ["p50_seconds", "p99_seconds", "peak_rss_bytes", "body_bytes"] {
        let value: f64 = fields[key].parse().unwrap();
        assert!(value > 0.0, "{key} = {value}:\n{stdout}");
    }
}
