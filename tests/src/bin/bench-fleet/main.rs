//! Benchmark: what a fleet of VMs costs a real Prometheus (Debian's) with this project's rules
//! loaded, in each metrics profile. Each launcher pod's series are the real collector's, scraped
//! from it in a fake launcher pod with KubeVirt's five processes and virt-tail; the fleet serves
//! them live, one target per node as the relay does, beside cAdvisor's working set and
//! virt-controller's estimate. Past hours are backfilled with `promtool tsdb create-blocks-from
//! openmetrics` (the raw series and the recorded ones, and a day of the series a slower rule group
//! records), then Prometheus scrapes and evaluates live. It prints the series per VM, Prometheus'
//! memory per 1,000 VMs, each rule group's evaluation time (`/api/v1/rules`), the latency of every
//! query of both dashboards with one VM chosen and for the whole fleet, and the same figures
//! extrapolated to larger fleets, the arithmetic shown.
//!
//! `cargo build --release -p e2e --bin bench-fleet && ./target/release/bench-fleet --vms 2000`
//! (root; 20 to 25 minutes per profile). Not a timed test: it prints numbers. `--quick` runs a
//! tiny fleet in seconds, to show that it works.

mod report;

use anyhow::{Context as _, Result};
use clap::Parser;
use e2e::bench;
use e2e::exposition::{Sample, series_text};
use e2e::manifests;
use e2e::scale::history::{self, Plan, TargetLabels};
use e2e::scale::measure::{self, Dashboard, Server, Timing};
use e2e::scale::{self, Fleet, Generator, PodSeries};
use kube_metrics_contract::metrics::Profile;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use report::{MIB, QueryTiming, Report};

/// The relay's PodMonitor, as prometheus-operator names its job.
const RELAY_JOB: &str = "kube-metrics-collector/kube-metrics-collector-relay";

/// What a fleet costs Prometheus, per metrics profile.
#[derive(Debug, Parser)]
#[command(name = "bench-fleet")]
struct Args {
    /// VMs in the fleet.
    #[arg(long, default_value_t = 2000)]
    vms: usize,

    /// VMs per node: one relay target each.
    #[arg(long, default_value_t = 50)]
    per_node: usize,

    /// Profiles to run, one Prometheus each: `default`, `full`, or both.
    #[arg(long, value_delimiter = ',', default_value = "default,full")]
    profiles: Vec<Profile>,

    /// Seconds between scrapes, and between rule evaluations (prometheus-operator's default).
    #[arg(long, default_value_t = 30)]
    interval: u64,

    /// Hours of raw and recorded history backfilled before the live part.
    #[arg(long, default_value_t = 6)]
    history_hours: i64,

    /// Seconds between backfilled samples (the live ones come every `--interval`).
    #[arg(long, default_value_t = 300)]
    history_step: i64,

    /// Hours of history of what rule groups with an interval of their own record (the
    /// long-range alerts read a day of it).
    #[arg(long, default_value_t = 25)]
    trend_hours: i64,

    /// Seconds of live scraping after the backfill before anything is measured: `rate` needs
    /// five minutes of samples.
    #[arg(long, default_value_t = 420)]
    warm_up: u64,

    /// Seconds of rule evaluations to time.
    #[arg(long, default_value_t = 180)]
    measure: u64,

    /// Runs of each dashboard query; the median is kept.
    #[arg(long, default_value_t = 3)]
    runs: usize,

    /// The PrometheusRule to load (default: the one `manifests/` installs).
    #[arg(long)]
    rules: Option<PathBuf>,

    /// Dashboards whose queries to time (default: Grafana's and the OpenShift console's).
    #[arg(long)]
    dashboard: Vec<PathBuf>,

    /// A tiny fleet, short intervals and waits: shows that the benchmark works in seconds, and
    /// measures nothing meaningful.
    #[arg(long)]
    quick: bool,

    /// Print one launcher pod's series in each profile and exit.
    #[arg(long)]
    template: bool,
}

fn main() -> ExitCode {
    bench::exit_code("bench-fleet", run(settle(Args::parse())))
}

/// `--quick` overrides the sizes and waits.
fn settle(mut args: Args) -> Args {
    if args.quick {
        args.vms = 20;
        args.per_node = 10;
        args.profiles = vec![Profile::Default];
        args.interval = 1;
        args.history_hours = 1;
        args.history_step = 120;
        args.trend_hours = 2;
        args.warm_up = 1;
        args.measure = 2;
        args.runs = 1;
    }
    args
}

fn run(args: Args) -> Result<()> {
    if args.template {
        for profile in &args.profiles {
            let samples = scale::launcher_template(*profile)?;
            println!("# profile {profile}: {} series", samples.len());
            for s in samples {
                println!("{} {}", series_text(&s.name, &s.labels), s.value);
            }
        }
        return Ok(());
    }
    e2e::preflight(&["unshare", "nsenter", "prometheus", "promtool"])?;
    let rules_path = args.rules.clone().unwrap_or_else(|| {
        e2e::workspace().join("manifests/components/monitoring/prometheusrule.yaml")
    });
    let rules = rule_groups(&rules_path, args.quick)?;
    let dashboards: Vec<PathBuf> = if args.dashboard.is_empty() {
        [
            "manifests/components/monitoring/dashboard.json",
            "manifests/components/openshift-console-dashboard/console-dashboard.json",
        ]
        .iter()
        .map(|p| e2e::workspace().join(p))
        .collect()
    } else {
        args.dashboard.clone()
    };
    let dashboards = dashboards
        .iter()
        .map(|p| measure::dashboard(p))
        .collect::<Result<Vec<_>>>()?;
    println!(
        "bench-fleet: {} VMs, {} per node, scrape and evaluation every {} s, {} h of history every \
         {} s, {} h of slower groups' records; rules {}",
        args.vms,
        args.per_node,
        args.interval,
        args.history_hours,
        args.history_step,
        args.trend_hours,
        rules_path.display()
    );
    let empty_rss = empty_prometheus_rss(&rules, if args.quick { 1 } else { 5 })?;
    let mut reports = Vec::new();
    for profile in &args.profiles {
        let report = run_profile(&args, *profile, &rules, &dashboards, empty_rss)
            .with_context(|| format!("profile {profile}"))?;
        report::print(&report, args.interval);
        reports.push(report);
    }
    report::print_comparison(&reports);
    Ok(())
}

/// The PrometheusRule's groups, as a Prometheus rule file; in `--quick` mode every group at the
/// global interval, so that each runs within seconds.
fn rule_groups(path: &Path, quick: bool) -> Result<Value> {
    let docs = manifests::parse_documents(&std::fs::read_to_string(path)?)?;
    let (mut spec, _) = manifests::prometheus_rules(&docs)?;
    if quick {
        for group in spec["groups"].as_array_mut().into_iter().flatten() {
            if let Some(group) = group.as_object_mut() {
                group.remove("interval");
            }
        }
    }
    Ok(spec)
}

/// The recorded series' names of groups with an interval of their own, with that interval.
fn trend_records(rules: &Value) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for group in rules["groups"].as_array().into_iter().flatten() {
        let Some(interval) = group["interval"].as_str().and_then(seconds) else {
            continue;
        };
        for rule in group["rules"].as_array().into_iter().flatten() {
            if let Some(record) = rule["record"].as_str() {
                out.push((record.to_owned(), interval));
            }
        }
    }
    out
}

/// `30s`, `5m`, `1h` in seconds.
fn seconds(duration: &str) -> Option<i64> {
    let (number, unit) = duration.split_at(duration.len().checked_sub(1)?);
    let number: i64 = number.parse().ok()?;
    Some(match unit {
        "s" => number,
        "m" => number * 60,
        "h" => number * 3600,
        _ => return None,
    })
}

/// `VmRSS` of Prometheus with the rules and no targets, `settle` seconds after its start.
fn empty_prometheus_rss(rules: &Value, settle: u64) -> Result<u64> {
    let dir = tempfile::Builder::new().prefix("bench-fleet-").tempdir()?;
    bench::prometheus_dir(dir.path(), rules, &bench::rules_only_config(30))?;
    let mut server = Server::new(dir.path())?;
    server.start()?;
    std::thread::sleep(Duration::from_secs(settle));
    let (rss, _) = server.rss()?;
    server.stop()?;
    Ok(rss)
}

fn run_profile(
    args: &Args,
    profile: Profile,
    rules: &Value,
    dashboards: &[Dashboard],
    empty_rss: u64,
) -> Result<Report> {
    let started = Instant::now();
    let template = PodSeries::from_samples(&scale::launcher_template(profile)?)?;
    let fleet = Arc::new(Fleet::new(profile, template, args.vms, args.per_node));
    let generator = Generator::start(Arc::clone(&fleet))?;
    let dir = tempfile::Builder::new().prefix("bench-fleet-").tempdir()?;
    let mut server = Server::new(dir.path())?;
    let config = config(&generator, server.addr, args.interval);
    bench::prometheus_dir(dir.path(), rules, &config)?;
    let step = |what: &str| {
        println!(
            "  [{profile} {:>5.0} s] {what}",
            started.elapsed().as_secs_f64()
        );
    };
    step(&format!(
        "{} series per launcher pod; {} VMs on {} nodes served",
        fleet.series_per_pod(),
        fleet.vms.len(),
        fleet.nodes
    ));
    // Live first, until every rule group has recorded and the count of recorded series holds
    // still over an evaluation: the recorded series are then known.
    server.start()?;
    let head_start = history::now();
    let trends = trend_records(rules);
    let slowest = trends.iter().map(|(_, i)| *i).max().unwrap_or(0);
    let wait = Duration::from_secs((args.interval * 6).max(slowest as u64 * 2) + 30);
    let mut last = 0.0;
    e2e::wait_for("the recording rules to settle", wait, || {
        std::thread::sleep(Duration::from_secs(args.interval));
        let count = server.scalar("count({__name__=~\".+:.+\"})").unwrap_or(0.0);
        let trended = trends.iter().all(|(record, _)| {
            server
                .scalar(&format!("count({record})"))
                .is_ok_and(|n| n > 0.0)
        });
        let settled = count >= fleet.vms.len() as f64 && count == last && trended;
        last = count;
        Ok(settled.then_some(()))
    })
    .with_context(|| server.log())?;
    let recorded: Vec<Sample> = server.instant("{__name__=~\".+:.+\"}")?;
    server.stop()?;
    step(&format!(
        "{} recorded series; backfilling {} h",
        recorded.len(),
        args.history_hours
    ));
    let targets = target_labels(&generator);
    let plan = Plan {
        end: head_start - 1,
        seconds: args.history_hours * 3600,
        step: args.history_step,
        trends: trend_records(rules),
        trend_seconds: args.trend_hours * 3600,
    };
    let written = history::backfill(&fleet, &recorded, &targets, &plan, &server.data())?;
    step(&format!(
        "{} samples ({:.0} MiB of OpenMetrics) in {} blocks, {:.0} s; live again",
        written.samples,
        written.bytes as f64 / MIB,
        written.blocks,
        written.seconds
    ));
    server.start()?;
    std::thread::sleep(Duration::from_secs(args.warm_up));
    step("timing the rule groups");
    let groups = server.rule_times(Duration::from_secs(args.measure))?;
    let (rss, hwm) = server.rss()?;
    let head_series = server.scalar("prometheus_tsdb_head_series")?;
    let recorded_series = server.scalar("count({__name__=~\".+:.+\"})")?;
    let heap = server
        .scalar("go_memstats_heap_inuse_bytes{job=\"prometheus\"}")
        .unwrap_or(0.0);
    let mut alerts = BTreeMap::new();
    for alert in server.api("alerts")?["alerts"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = alert["labels"]["alertname"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        *alerts.entry(name).or_insert(0) += 1;
    }
    step("timing the dashboards' queries");
    let queries = time_dashboards(&server, &fleet, dashboards, args)?;
    server.stop()?;
    drop(generator);
    step("done");
    Ok(Report {
        profile,
        vms: fleet.vms.len(),
        series_per_pod: fleet.series_per_pod(),
        head_series,
        recorded_series,
        rss: (rss, hwm),
        empty_rss,
        heap,
        alerts,
        history: written,
        groups,
        queries,
    })
}

/// Prometheus' configuration: the relay's PodMonitor (one target per node, `honor_labels`), the
/// kubelet's cAdvisor, virt-controller, and itself.
fn config(generator: &Generator, own: std::net::SocketAddr, interval: u64) -> String {
    let targets: Vec<String> = generator.addrs.iter().map(|a| format!("'{a}'")).collect();
    let targets = targets.join(", ");
    let first = generator
        .addrs
        .first()
        .map(ToString::to_string)
        .unwrap_or_default();
    let timeout = interval.min(10);
    format!(
        "global:\n  scrape_interval: {interval}s\n  scrape_timeout: {timeout}s\n  evaluation_interval: {interval}s\n\
         rule_files: [rules.yaml]\n\
         scrape_configs:\n\
         \x20 - job_name: {RELAY_JOB}\n    honor_labels: true\n    static_configs:\n\
         \x20     - targets: [{targets}]\n        labels: {{container: relay, endpoint: relay-metrics}}\n\
         \x20 - job_name: kubelet\n    honor_labels: true\n    metrics_path: /cadvisor\n    static_configs:\n\
         \x20     - targets: [{targets}]\n        labels: {{endpoint: https-metrics, metrics_path: /metrics/cadvisor, service: kubelet}}\n\
         \x20 - job_name: kubevirt-prometheus-metrics\n    honor_labels: true\n    metrics_path: /controller\n    static_configs:\n\
         \x20     - targets: ['{first}']\n        labels: {{endpoint: metrics}}\n\
         \x20 - job_name: prometheus\n    static_configs:\n      - targets: ['{own}']\n"
    )
}

/// The labels each job's targets add, as [`config`] sets them.
fn target_labels(generator: &Generator) -> TargetLabels {
    let per_node = |f: &dyn Fn(&std::net::SocketAddr) -> String| -> Vec<String> {
        generator.addrs.iter().map(f).collect()
    };
    TargetLabels {
        relay: per_node(&|a| {
            format!(
                ",container=\"relay\",endpoint=\"relay-metrics\",instance=\"{a}\",job=\"{RELAY_JOB}\""
            )
        }),
        cadvisor: per_node(&|a| {
            format!(
                ",endpoint=\"https-metrics\",metrics_path=\"/metrics/cadvisor\",service=\"kubelet\",\
                 instance=\"{a}\",job=\"kubelet\""
            )
        }),
        controller: format!(
            ",endpoint=\"metrics\",instance=\"{}\",job=\"kubevirt-prometheus-metrics\"",
            generator
                .addrs
                .first()
                .map(ToString::to_string)
                .unwrap_or_default()
        ),
    }
}

/// Every query of every dashboard, with one VM chosen and for the whole fleet (every variable at
/// "All", or the first VM where the VM variable has no "All").
fn time_dashboards(
    server: &Server,
    fleet: &Fleet,
    dashboards: &[Dashboard],
    args: &Args,
) -> Result<Vec<QueryTiming>> {
    let vm = fleet
        .vms
        .get(fleet.vms.len() / 2)
        .context("an empty fleet")?;
    let first = fleet.vms.first().context("an empty fleet")?;
    let step = args.interval as f64;
    let rate = format!("{}s", args.interval * 4);
    let range = if args.quick { 600.0 } else { 6.0 * 3600.0 };
    let mut out = Vec::new();
    for dashboard in dashboards {
        let one = vec![
            ("$cluster", ".*".to_owned()),
            ("$namespace", vm.namespace.clone()),
            ("$node", ".*".to_owned()),
            ("$vm", vm.name.clone()),
            ("$__rate_interval", rate.clone()),
            ("$__interval", format!("{step}s")),
        ];
        let all_vms = if dashboard.vm_has_all {
            ".*".to_owned()
        } else {
            first.name.clone()
        };
        let all = vec![
            ("$cluster", ".*".to_owned()),
            ("$namespace", ".*".to_owned()),
            ("$node", ".*".to_owned()),
            ("$vm", all_vms),
            ("$__rate_interval", rate.clone()),
            ("$__interval", format!("{step}s")),
        ];
        for query in &dashboard.queries {
            let time = |variables: &[(&str, String)]| -> Result<Timing> {
                let mut runs = Vec::new();
                for _ in 0..args.runs.max(1) {
                    let now = scale::unix_now().floor();
                    runs.push(server.time_query(query, variables, now, range, step)?);
                }
                runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
                runs.into_iter().nth(args.runs.max(1) / 2).context("no run")
            };
            out.push(QueryTiming {
                dashboard: dashboard.name.clone(),
                panel: query.panel.clone(),
                kind: query.kind.clone(),
                one: time(&one)?,
                fleet: time(&all)?,
            });
        }
    }
    Ok(out)
}
