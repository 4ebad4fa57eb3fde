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

use anyhow::{Context as _, Result};
use clap::Parser;
use e2e::bench;
use e2e::exposition::{Sample, series_text};
use e2e::manifests;
use e2e::scale::history::{self, Plan, TargetLabels};
use e2e::scale::measure::{self, Dashboard, GroupTimes, QueryKind, Server, Timing};
use e2e::scale::{self, Fleet, Generator, PodSeries};
use kube_metrics_contract::metrics::Profile;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The relay's PodMonitor, as prometheus-operator names its job.
const RELAY_JOB: &str = "kube-metrics-collector/kube-metrics-collector-relay";
const MIB: f64 = 1024.0 * 1024.0;
/// The fleet sizes the results are extrapolated to.
const EXTRAPOLATE: [usize; 2] = [5_000, 20_000];
/// A dashboard query slower than this is too slow for a dashboard (the bar docs/metrics.md states).
const QUERY_BUDGET: f64 = 2.0;

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

/// Everything measured for one profile.
#[derive(Debug)]
struct Report {
    profile: Profile,
    vms: usize,
    series_per_pod: usize,
    head_series: f64,
    recorded_series: f64,
    /// `VmRSS` and `VmHWM` at the end, and of the same Prometheus without a fleet.
    rss: (u64, u64),
    empty_rss: u64,
    heap: f64,
    /// Alerts pending or firing at the end, by name: a healthy fleet has few.
    alerts: BTreeMap<String, usize>,
    history: history::Written,
    groups: BTreeMap<String, GroupTimes>,
    queries: Vec<QueryTiming>,
}

/// One dashboard query, timed with one VM chosen and for the whole fleet.
#[derive(Debug)]
struct QueryTiming {
    dashboard: String,
    panel: String,
    kind: QueryKind,
    one: Timing,
    fleet: Timing,
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
        print_report(&args, &report);
        reports.push(report);
    }
    print_comparison(&args, &reports);
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

fn print_report(args: &Args, r: &Report) {
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
    print_extrapolation(args, r);
}

/// The figures at [`EXTRAPOLATE`] VMs: straight lines through the measured point, from an empty
/// Prometheus for memory and from zero for everything else.
fn print_extrapolation(args: &Args, r: &Report) {
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
                args.interval as f64
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

fn print_comparison(args: &Args, reports: &[Report]) {
    if reports.len() < 2 {
        return;
    }
    println!();
    println!(
        "| profile | series per pod | head series per VM | RSS per 1,000 VMs | groups (p50 at {} VMs) |",
        args.vms
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
