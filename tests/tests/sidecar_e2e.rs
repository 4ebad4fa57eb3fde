//! The collector in a fake virt-launcher pod (a real PID namespace with processes named like
//! KubeVirt's), scraped by a real Prometheus; every value checked through the Prometheus HTTP API
//! is cross-checked against what the test reads itself from the host's /proc.

use anyhow::{Context as _, Result, bail, ensure};
use e2e::collector::{self, Collector};
use e2e::pod::{FakePod, PodInfo};
use e2e::prometheus::Prometheus;
use e2e::{hostproc, http, launcher, wait_for};
use kube_metrics_contract::metrics::POD_INFO;
use std::time::Duration;

const NAMESPACE: &str = "e2e";
const VM: &str = "testvm";
/// Not a round number, so a match cannot come from a default or a coincidence.
const OVERHEAD_BYTES: u64 = 254_803_968 + 7;
/// Long enough for a few 1 s scrapes on a loaded machine.
const SCRAPE_WAIT: Duration = Duration::from_secs(30);
const ROLES_PRESENT: [&str; 5] = [
    "virt-launcher-monitor",
    "virt-launcher",
    "virtqemud",
    "virtlogd",
    "qemu",
];
const ROLES_ABSENT: [&str; 3] = ["swtpm", "passt", "libvirtd"];

/// Starts the pod, the collector (TCP + Unix socket) and Prometheus; the checks run in order.
#[test]
fn prometheus_scrapes_fake_launcher_pod() {
    e2e::preflight(&["unshare", "nsenter", "prometheus"]).unwrap();
    let specs = launcher::core_processes(NAMESPACE, VM, None);
    let mut pod = FakePod::with_processes(&PodInfo::launcher(VM, OVERHEAD_BYTES), specs).unwrap();
    let collector = Collector::start(&pod, &[]).unwrap();
    let prometheus = Prometheus::start(&[collector.addr]).unwrap();

    let result = serving_checks(&pod, &collector)
        .and_then(|()| scraped_values(&pod, &prometheus))
        .and_then(|()| restart_keeps_counters(&mut pod, &prometheus));
    if let Err(error) = result {
        panic!(
            "{error:#}\n--- collector log:\n{}\n--- prometheus log:\n{}",
            collector.log(),
            prometheus.log()
        );
    }
}

/// Content negotiation, the Unix socket and the exec probe, straight from the collector.
fn serving_checks(pod: &FakePod, collector: &Collector) -> Result<()> {
    let openmetrics = collector.scrape()?;
    let content_type = openmetrics.header("content-type").unwrap_or_default();
    ensure!(
        content_type.starts_with("application/openmetrics-text") && content_type.contains("1.0.0"),
        "Prometheus' Accept header got {content_type:?}"
    );
    ensure!(
        openmetrics.text().ends_with("# EOF\n"),
        "OpenMetrics body must end with # EOF"
    );

    let text = http::get(collector.addr, "/metrics", &[("Accept", "text/plain")])?;
    let content_type = text.header("content-type").unwrap_or_default();
    ensure!(
        content_type.starts_with("text/plain") && content_type.contains("0.0.4"),
        "Accept: text/plain got {content_type:?}"
    );
    ensure!(!text.text().contains("# EOF"), "text 0.0.4 has no # EOF");

    let over_socket = collector.get_unix("/metrics")?;
    ensure!(
        over_socket.status == 200,
        "/metrics over the socket: {}",
        over_socket.status
    );
    ensure!(over_socket.text().contains("kubevirt_pod_infra_processes"));
    ensure!(
        collector.get_unix("/healthz")?.status == 200,
        "/healthz over the socket"
    );
    ensure!(
        collector.get_unix("/nope")?.status == 404,
        "unknown path must be 404"
    );

    let socket = collector.socket.to_string_lossy().into_owned();
    collector::run_once(pod, None, &["probe", "--socket", &socket]).context("probe")?;
    let missing = pod
        .dir()
        .join("missing.sock")
        .to_string_lossy()
        .into_owned();
    ensure!(
        collector::run_once(pod, None, &["probe", "--socket", &missing]).is_err(),
        "probe of a missing socket must fail"
    );
    Ok(())
}

/// The collector's series (docs/metrics.md) as Prometheus stores them, checked against /proc.
fn scraped_values(pod: &FakePod, prom: &Prometheus) -> Result<()> {
    wait_for("three scrapes", SCRAPE_WAIT, || {
        Ok((prom.value("count_over_time(up[1m])").unwrap_or(0.0) >= 3.0).then_some(()))
    })?;
    ensure!(prom.value("up")? == 1.0, "up");
    ensure!(
        prom.value("kube_metrics_collector_build_info")? == 1.0,
        "kube_metrics_collector_build_info"
    );
    roles_match_the_host(pod, prom)?;
    qemu_memory_matches_the_host(pod, prom)?;
    vcpu_time_is_counted(prom)?;
    identity_and_self_metrics(prom)?;
    counters_never_decrease(prom)
}

/// One process per running role, labelled with the domain and host, with the thread count the
/// host's /proc shows; an explicit 0 for the roles that do not run.
fn roles_match_the_host(pod: &FakePod, prom: &Prometheus) -> Result<()> {
    for role in ROLES_PRESENT {
        let series = prom.query(&format!(
            "kubevirt_pod_infra_processes{{process=\"{role}\"}}"
        ))?;
        let [one] = series.as_slice() else {
            bail!("{role}: want one processes series, got {series:?}");
        };
        ensure!(one.value == 1.0, "{role}: {} processes", one.value);
        ensure!(
            one.label("domain") == VM,
            "domain label {:?}",
            one.label("domain")
        );
        ensure!(
            one.label("host") == collector::NODE_NAME,
            "host {:?}",
            one.label("host")
        );
        let threads = role_sum(prom, "kubevirt_pod_infra_threads", role)?;
        let host_threads = hostproc::threads(pod.pid(role)?)?;
        ensure!(
            threads == host_threads as f64,
            "{role}: {threads} threads, /proc says {host_threads}"
        );
    }
    for role in ROLES_ABSENT {
        let processes = role_sum(prom, "kubevirt_pod_infra_processes", role)?;
        ensure!(
            processes == 0.0,
            "{role}: {processes} processes, want an explicit 0"
        );
    }
    ensure!(
        role_sum(prom, "kubevirt_pod_infra_threads", "qemu")? == 6.0,
        "qemu runs main + 5 named threads"
    );
    Ok(())
}

/// QEMU's resident memory is its VmRSS, and its anonymous memory holds the 64 MiB it touched.
fn qemu_memory_matches_the_host(pod: &FakePod, prom: &Prometheus) -> Result<()> {
    let qemu = pod.pid("qemu")?;
    let resident =
        prom.value(r#"kubevirt_pod_infra_memory_amount_bytes{process="qemu",type="resident"}"#)?;
    let vm_rss = hostproc::status_bytes(qemu, "VmRSS")? as f64;
    ensure!(
        (resident - vm_rss).abs() <= (vm_rss * 0.05).max(2.0 * 1024.0 * 1024.0),
        "qemu resident {resident} vs VmRSS {vm_rss}"
    );
    let anonymous =
        prom.value(r#"kubevirt_pod_infra_memory_amount_bytes{process="qemu",type="anonymous"}"#)?;
    ensure!(
        anonymous >= 64.0 * 1024.0 * 1024.0,
        "qemu touched 64 MiB, anonymous is {anonymous}"
    );
    eprintln!("checked: qemu resident {resident} B vs VmRSS {vm_rss} B");
    Ok(())
}

/// The burning vCPU threads have CPU time, more than the idle I/O thread, and within QEMU's total.
fn vcpu_time_is_counted(prom: &Prometheus) -> Result<()> {
    let vcpu = wait_for("vCPU CPU time", SCRAPE_WAIT, || {
        let v =
            prom.value(r#"sum(kubevirt_pod_infra_qemu_thread_cpu_seconds_total{class="vcpu"})"#)?;
        Ok((v > 0.0).then_some(v))
    })?;
    let iothread =
        prom.value(r#"sum(kubevirt_pod_infra_qemu_thread_cpu_seconds_total{class="iothread"})"#)?;
    ensure!(
        vcpu > iothread,
        "burning vCPUs ({vcpu}) must beat the idle I/O thread ({iothread})"
    );
    let qemu_cpu = role_sum(prom, "kubevirt_pod_infra_cpu_seconds_total", "qemu")?;
    // Both come from the same scrape; threads' times add up to the process's.
    ensure!(
        vcpu <= qemu_cpu + 0.05,
        "vCPU {vcpu} s exceeds qemu's total {qemu_cpu} s"
    );
    eprintln!("checked: vCPU {vcpu} s, I/O thread {iothread} s, qemu total {qemu_cpu} s");
    Ok(())
}

/// The downward-API values and the pod identity, and the collector's own health metrics.
fn identity_and_self_metrics(prom: &Prometheus) -> Result<()> {
    let overhead = prom.value("kubevirt_pod_infra_memory_overhead_estimate_bytes")?;
    ensure!(
        overhead == OVERHEAD_BYTES as f64,
        "overhead estimate {overhead}"
    );
    let request = prom.value(r#"kubevirt_pod_infra_compute_memory_bytes{type="request"}"#)?;
    ensure!(
        request == f64::from(300u32 << 20),
        "compute memory request {request}"
    );
    let info = prom.query(POD_INFO)?;
    ensure!(
        info.len() == 1
            && info.iter().all(|s| {
                s.label("pod") == collector::POD_NAME
                    && s.label("namespace") == collector::POD_NAMESPACE
            }),
        "pod_info {info:?}"
    );

    // The probes above were short-lived processes in the pod: one may vanish mid-read.
    let errors = prom.query("kube_metrics_collector_read_errors_total")?;
    ensure!(!errors.is_empty(), "no read error counters");
    ensure!(
        errors
            .iter()
            .all(|e| e.value == 0.0 || (e.label("kind") == "vanished" && e.value <= 2.0)),
        "as root every file is readable, yet: {errors:?}"
    );
    ensure!(
        prom.value("kube_metrics_collector_collection_duration_seconds")? > 0.0,
        "duration"
    );
    Ok(())
}

/// Kills virtlogd: its role drops to 0 processes but keeps its CPU; a new virtlogd is a restart.
fn restart_keeps_counters(pod: &mut FakePod, prom: &Prometheus) -> Result<()> {
    let cpu_before = wait_for("virtlogd CPU time", SCRAPE_WAIT, || {
        let cpu = role_sum(prom, "kubevirt_pod_infra_cpu_seconds_total", "virtlogd")?;
        Ok((cpu >= 0.05).then_some(cpu))
    })?;
    let restarts_before = role_sum(
        prom,
        "kubevirt_pod_infra_process_restarts_total",
        "virtlogd",
    )?;

    let spec = pod.kill("virtlogd")?;
    wait_for("virtlogd to be counted as gone", SCRAPE_WAIT, || {
        Ok((role_sum(prom, "kubevirt_pod_infra_processes", "virtlogd")? == 0.0).then_some(()))
    })?;
    let cpu_gone = role_sum(prom, "kubevirt_pod_infra_cpu_seconds_total", "virtlogd")?;
    ensure!(
        cpu_gone >= cpu_before,
        "virtlogd CPU went back from {cpu_before} to {cpu_gone} when it exited"
    );

    pod.spawn(spec)?;
    let restarts = wait_for("the restart to be counted", SCRAPE_WAIT, || {
        let restarts = role_sum(
            prom,
            "kubevirt_pod_infra_process_restarts_total",
            "virtlogd",
        )?;
        Ok((restarts > restarts_before).then_some(restarts))
    })?;
    ensure!(
        restarts == restarts_before + 1.0,
        "one restart, counted {restarts} (was {restarts_before})"
    );
    ensure!(
        role_sum(prom, "kubevirt_pod_infra_processes", "virtlogd")? == 1.0,
        "virtlogd is back"
    );
    let cpu_after = role_sum(prom, "kubevirt_pod_infra_cpu_seconds_total", "virtlogd")?;
    ensure!(
        cpu_after >= cpu_gone,
        "virtlogd CPU went back from {cpu_gone} to {cpu_after} after restart"
    );
    // A process can vanish between listing /proc and reading it; a handful at most.
    let errors = prom.value("sum(kube_metrics_collector_read_errors_total) or vector(0)")?;
    ensure!(errors <= 5.0, "{errors} read errors after one restart");
    eprintln!(
        "checked: virtlogd CPU {cpu_before} s before kill, {cpu_gone} s gone, {cpu_after} s \
         restarted; restarts {restarts_before} -> {restarts}; read errors {errors}"
    );
    counters_never_decrease(prom)
}

/// Every stored point of every counter, oldest first, never goes down.
fn counters_never_decrease(prom: &Prometheus) -> Result<()> {
    for counter in [
        "kubevirt_pod_infra_cpu_seconds_total",
        "kubevirt_pod_infra_qemu_thread_cpu_seconds_total",
        "kubevirt_pod_infra_page_faults_total",
        "kubevirt_pod_infra_context_switches_total",
        "kubevirt_pod_infra_process_restarts_total",
        "kube_metrics_collector_read_errors_total",
    ] {
        let series = prom.range(&format!("{counter}[5m]"))?;
        ensure!(!series.is_empty(), "no series of {counter}");
        for s in series {
            for pair in s.points.windows(2) {
                if let [(t0, v0), (t1, v1)] = pair {
                    ensure!(
                        v1 >= v0,
                        "{counter}{:?} went from {v0} at {t0} to {v1} at {t1}",
                        s.labels
                    );
                }
            }
        }
    }
    Ok(())
}

/// `sum(metric{process="role"})`: over `type` and other labels.
fn role_sum(prom: &Prometheus, metric: &str, role: &str) -> Result<f64> {
    prom.value(&format!("sum({metric}{{process=\"{role}\"}})"))
}
