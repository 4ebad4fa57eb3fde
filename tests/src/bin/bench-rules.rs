//! Benchmark: what the user-workload rewrite (`kube_metrics_contract::user_workload`) costs a
//! real Prometheus evaluating the rules. The generated fleet (`e2e::fleet`, 11 running VMs over
//! two days) is copied into `--copies` sets of namespaces, turned into TSDB blocks, and Prometheus
//! evaluates each variant's rule groups every `--interval` seconds; each row is the median and
//! the largest `evaluationTime` of each group over `--evaluations` evaluations (`/api/v1/rules`):
//!
//! - `default`: the default install's rules, on the fleet as the relay labels it;
//! - `openshift`: the OpenShift variant's (rewritten) rules on the same fleet;
//! - `openshift/uwm`: the OpenShift variant's rules on the fleet as user-workload monitoring
//!   stores it (half of the pods relayed: the relay's namespace and pod, the VM's in `exported_*`).
//!
//! First it times the rewrite itself over every expression of the default PrometheusRule.
//!
//! `cargo run --release -p e2e --bin bench-rules -- --copies 1,10` (prometheus, promtool, kubectl).
//! Not a timed test: it prints numbers.

use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use e2e::bench;
use e2e::fleet::{self, SYSTEM_NAMESPACE};
use e2e::manifests;
use e2e::prometheus::{self, Prometheus, RuleGroup};
use serde_json::Value;

#[derive(Debug, Parser)]
#[command(name = "bench-rules")]
struct Args {
    /// Copies of the fleet, each in namespaces of its own (11 running VMs each).
    #[arg(long, value_delimiter = ',', default_value = "1,10")]
    copies: Vec<usize>,
    /// Evaluations of each group to measure.
    #[arg(long, default_value_t = 15)]
    evaluations: usize,
    /// Seconds between evaluations.
    #[arg(long, default_value_t = 2)]
    interval: u64,
}

fn main() -> ExitCode {
    bench::exit_code("bench-rules", run(&Args::parse()))
}

fn run(args: &Args) -> Result<()> {
    e2e::preflight(&["prometheus", "promtool", "kubectl"])?;
    let end = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs())?;
    let history = fleet::fleet(end).openmetrics();
    let (default, exprs) = manifests::prometheus_rules(manifests::default_install()?)?;
    rewrite_cost(&exprs)?;
    let openshift = manifests::rendered()?
        .iter()
        .find(|r| r.variant == "overlays/openshift")
        .context("no openshift variant")?;
    let (openshift, _) = manifests::prometheus_rules(&openshift.docs)?;
    println!("copies  VMs  variant        group                          median     max");
    for &copies in &args.copies {
        let labelled = copied(&history, copies);
        let (uwm, _) = e2e::user_workload::series::reshape_openmetrics(&labelled)?;
        for (variant, rules, data) in [
            ("default", &default, &labelled),
            ("openshift", &openshift, &labelled),
            ("openshift/uwm", &openshift, &uwm),
        ] {
            for (group, median, max) in measure(args, rules, data)? {
                println!(
                    "{copies:>6} {:>4}  {variant:<14} {group:<30} {:>7.1}ms {:>6.1}ms",
                    11 * copies,
                    median * 1e3,
                    max * 1e3
                );
            }
        }
    }
    Ok(())
}

/// How long rewriting every expression of the default PrometheusRule takes (what generating the
/// OpenShift rule, or one `kubectl kmc` query, costs).
fn rewrite_cost(exprs: &[(String, String)]) -> Result<()> {
    const PASSES: u32 = 1000;
    let bytes: usize = exprs.iter().map(|(_, e)| e.len()).sum();
    let started = Instant::now();
    for _ in 0..PASSES {
        for (_, expr) in exprs {
            std::hint::black_box(e2e::user_workload::rewrite(std::hint::black_box(expr))?);
        }
    }
    let each = started.elapsed() / PASSES;
    println!(
        "rewrite of {} expressions ({bytes} bytes): {:.1} µs per pass ({PASSES} passes)",
        exprs.len(),
        each.as_secs_f64() * 1e6
    );
    Ok(())
}

/// `history` `copies` times, every namespace but the install's renamed `<namespace>-<copy>` in
/// the copies after the first.
fn copied(history: &str, copies: usize) -> String {
    let body = history.trim_end().trim_end_matches("# EOF");
    let mut out = String::with_capacity(body.len() * copies + 8);
    out.push_str(body);
    let system = format!("namespace=\"{SYSTEM_NAMESPACE}\"");
    for copy in 1..copies {
        for line in body.lines().filter(|l| !l.contains(&system)) {
            match line.split_once("namespace=\"") {
                Some((before, after)) => {
                    let (namespace, rest) = after.split_once('"').unwrap_or((after, ""));
                    out.push_str(&format!("{before}namespace=\"{namespace}-{copy}\"{rest}\n"));
                }
                None => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

/// Per group: the median and the largest evaluation time, in seconds.
fn measure(args: &Args, rules: &Value, history: &str) -> Result<Vec<(String, f64, f64)>> {
    let dir = tempfile::Builder::new().prefix("bench-rules-").tempdir()?;
    let input = dir.path().join("fleet.om");
    std::fs::write(&input, history)?;
    prometheus::create_blocks(&input, &dir.path().join("data"))?;
    std::fs::remove_file(&input)?;
    bench::prometheus_dir(dir.path(), rules, &bench::rules_only_config(args.interval))?;
    let prometheus = Prometheus::start_in(dir)?;
    let mut seen: Vec<RuleGroup> = Vec::new();
    let deadline =
        Instant::now() + Duration::from_secs(args.interval * (args.evaluations as u64 + 5) + 30);
    let groups = prometheus.rule_groups()?.len();
    while seen.len() < groups * args.evaluations && Instant::now() < deadline {
        for group in prometheus.rule_groups()? {
            // A failing rule is fast, not cheap: refuse to time it.
            if !group.errors.is_empty() {
                bail!("{}: {}", group.name, group.errors.join("; "));
            }
            if !group.last_evaluation.starts_with("0001") && !seen.contains(&group) {
                seen.push(group);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut names: Vec<String> = seen.iter().map(|g| g.name.clone()).collect();
    names.sort();
    names.dedup();
    let mut out = Vec::new();
    for name in names {
        let mut times: Vec<f64> = seen
            .iter()
            .filter(|g| g.name == name)
            .map(|g| g.seconds)
            .collect();
        times.sort_by(f64::total_cmp);
        let median = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
        let max = times.last().copied().unwrap_or(f64::NAN);
        out.push((name, median, max));
    }
    Ok(out)
}
