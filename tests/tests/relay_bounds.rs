//! What tenants with pods only in their own namespaces tried against the node relay, run against
//! the built binary over a fake kubelet tree: a node full of collectors at every cap the relay
//! allows stays within the relay DaemonSet's memory limit (in a memory cgroup of that limit where
//! the machine has one, and by peak RSS everywhere), and values Prometheus refuses, lines of
//! thousands of labels, foreign labels and thousands of series leave a victim's series exactly as
//! its collector wrote them, in an answer that `promtool` and a real Prometheus with the
//! PodMonitor's limits take whole. Each test prints what it measured.

use anyhow::{Context as _, Result, ensure};
use e2e::memory_cgroup::{MemoryCgroup, quantity_bytes};
use e2e::prometheus::Prometheus;
use e2e::relay::{Kubelet, Podinfo, Relay, pod_uid, serve_body};
use e2e::{hostproc, http, manifests};
use kube_metrics_contract::limits::{
    LABEL_LIMIT, LABEL_NAME_LENGTH_LIMIT, LABEL_VALUE_LENGTH_LIMIT, MAX_BODY_BYTES,
    MAX_OUTPUT_BYTES, MAX_SERIES, MAX_TARGETS, NODE_BODY_SIZE_LIMIT, NODE_SAMPLE_LIMIT,
};
use kube_metrics_contract::metrics::POD_INFO;
use std::time::{Duration, Instant};

/// The longest namespace Kubernetes allows.
const NAMESPACE_LEN: usize = 63;
/// The longest pod name the relay can ever attest with such a namespace: the kubelet's pod log
/// directory `<namespace>_<pod>_<uid>` is one file name, at most 255 bytes.
const POD_LEN: usize = 255 - NAMESPACE_LEN - 36 - 2;
/// The gauge the hostile pods fill.
const GAUGE: &str = "kubevirt_pod_infra_processes";
/// A relay scrape of a small node; Prometheus' own timeout in the second test.
const SCRAPE_WAIT: Duration = Duration::from_secs(40);

/// A name of exactly `len` characters that Kubernetes allows, unique by `tag`.
fn name(tag: &str, len: usize) -> String {
    format!("{tag}{}", "x".repeat(len.saturating_sub(tag.len())))
}

/// The collector's own answer for a launcher pod (the collector's golden exposition), as pod
/// `namespace/pod` states it.
fn victim_body(namespace: &str, pod: &str) -> String {
    let golden = e2e::workspace().join("sidecar/tests/fixtures/golden/launcher-pod.prom");
    let golden = std::fs::read_to_string(golden).unwrap_or_default();
    golden.replace(
        "namespace=\"ns-0\",pod=\"virt-launcher-vm-0-abcde\"",
        &format!("namespace=\"{namespace}\",pod=\"{pod}\""),
    )
}

/// The lines the relay must forward of [`victim_body`]: each sample with `namespace` and `pod`
/// first, in the same order.
fn victim_forwarded(namespace: &str, pod: &str) -> Vec<String> {
    let id = format!("namespace=\"{namespace}\",pod=\"{pod}\"");
    victim_body(namespace, pod)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|line| {
            let line = line.replace(&format!("{id},"), "");
            match line.split_once('{') {
                Some((name, rest)) => format!("{name}{{{id},{rest}"),
                None => line.replacen(' ', &format!("{{{id}}} "), 1),
            }
        })
        .collect()
}

/// The sample lines of `answer` that carry `namespace/pod`, in order.
fn lines_of<'a>(answer: &'a str, namespace: &str, pod: &str) -> Vec<&'a str> {
    let id = format!("{{namespace=\"{namespace}\",pod=\"{pod}\"");
    answer
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains(&id))
        .collect()
}

/// What a tenant's collector can send to make the relay hold the most: as many series as a
/// collector may send, each as long as keeps the answer within a collector's output cap, read
/// from a body padded with a comment to exactly the body cap (comments cost the relay input,
/// never output). With the longest names, the relay must write about 1.5 times what it reads.
fn amplifier(namespace: &str, pod: &str) -> String {
    let head = format!("{}# TYPE {GAUGE} gauge\n", pod_info(namespace, pod));
    let line = |len: usize, i: usize| {
        let v = "v".repeat(len);
        format!("{GAUGE}{{host=\"{v}\",domain=\"{v}\",process=\"{v}{i:03}\"}} 1\n")
    };
    let relabelled = format!("namespace=\"{namespace}\",pod=\"{pod}\",").len();
    let series = MAX_SERIES - 1;
    let fits = |len: usize| {
        let input: usize = head.len() + (0..series).map(|i| line(len, i).len()).sum::<usize>();
        let output = input + (series + 1) * relabelled;
        input <= MAX_BODY_BYTES - 16 && output <= MAX_OUTPUT_BYTES
    };
    let len = (1..500).rev().find(|len| fits(*len)).unwrap_or(1);
    let mut body = head;
    (0..series).for_each(|i| body.push_str(&line(len, i)));
    let pad = MAX_BODY_BYTES - body.len() - 3;
    body.push_str(&format!("# {}\n", "p".repeat(pad)));
    body
}

/// The one line a collector must send: who it is, typed.
fn pod_info(namespace: &str, pod: &str) -> String {
    format!("# TYPE {POD_INFO} gauge\n{POD_INFO}{{namespace=\"{namespace}\",pod=\"{pod}\"}} 1\n")
}

/// Pod `i` of `kubelet`, attested as `namespace/pod`, whose collector answers `body`.
fn attested(kubelet: &Kubelet, i: usize, namespace: &str, pod: &str, body: String) -> Result<()> {
    let uid = pod_uid(i);
    kubelet.project(&uid, &Podinfo::relay(&uid, namespace, pod))?;
    serve_body(kubelet.bind(&uid)?, body.into_bytes());
    Ok(())
}

/// The relay DaemonSet's memory limit, as the manifest sets it.
fn relay_memory_limit() -> Result<u64> {
    let path = e2e::workspace().join("manifests/base/relay-daemonset.yaml");
    let docs = manifests::parse_documents(&std::fs::read_to_string(path)?)?;
    let daemonset = docs
        .iter()
        .find(|d| manifests::kind(d) == "DaemonSet")
        .context("no DaemonSet")?;
    let limit =
        &daemonset["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"];
    quantity_bytes(limit.as_str().context("no memory limit")?)
}

/// The relay's own counter `family{label="value"}` in `answer`.
fn own(answer: &str, family: &str, label: &str, value: &str) -> Option<f64> {
    let prefix = format!("kube_metrics_collector_relay_{family}{{{label}=\"{value}\"}} ");
    answer
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
}

#[test]
fn a_node_of_collectors_at_every_cap_stays_within_the_relays_memory_limit() {
    e2e::preflight(&[]).unwrap();
    let limit = relay_memory_limit().unwrap();
    let kubelet = Kubelet::new("e2e-kubelet-bounds-").unwrap();
    let (victim_ns, victim_pod) = (name("victim", NAMESPACE_LEN), name("victim", POD_LEN));
    attested(
        &kubelet,
        0,
        &victim_ns,
        &victim_pod,
        victim_body(&victim_ns, &victim_pod),
    )
    .unwrap();
    for i in 1..MAX_TARGETS {
        let (ns, pod) = (
            name(&format!("t{i}-"), NAMESPACE_LEN),
            name(&format!("p{i}-"), POD_LEN),
        );
        attested(&kubelet, i, &ns, &pod, amplifier(&ns, &pod)).unwrap();
    }
    let relay = Relay::start(&kubelet, &["--timeout-ms", "10000"]).unwrap();
    let cgroup = MemoryCgroup::new(limit).and_then(|g| g.enter(relay.pid()).map(|()| g));
    if let Err(error) = &cgroup {
        println!("no memory cgroup ({error:#}): peak RSS only");
    }
    let cpu_before = hostproc::cpu_seconds(relay.pid()).unwrap();
    let mut answers = Vec::new();
    let start = Instant::now();
    for _ in 0..2 {
        let response = http::get(relay.addr, "/metrics", &[]);
        let response = response.unwrap_or_else(|e| panic!("{e:#}\n{}", relay.log()));
        answers.push(String::from_utf8(response.body).unwrap());
    }
    let took = start.elapsed();
    let cpu = hostproc::cpu_seconds(relay.pid()).unwrap() - cpu_before;
    let peak_rss = hostproc::status_bytes(relay.pid(), "VmHWM").unwrap();
    let answer = answers.pop().unwrap();
    let series = answer.lines().filter(|l| !l.starts_with('#')).count();
    let victim = lines_of(&answer, &victim_ns, &victim_pod);
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    println!(
        "{MAX_TARGETS} collectors, each {} bytes: answer {} bytes, {series} series; 2 scrapes in {took:?}, {cpu:.2} s of relay CPU; peak RSS {:.1} MiB of the {:.0} MiB limit",
        amplifier("n", "p").len(),
        answer.len(),
        mib(peak_rss),
        mib(limit)
    );
    if let Ok(cgroup) = &cgroup {
        let (peak, kills) = (cgroup.peak().unwrap(), cgroup.oom_kills().unwrap());
        println!(
            "memory cgroup of {:.0} MiB: peak {:.1} MiB, {kills} OOM kills",
            mib(limit),
            mib(peak)
        );
        assert_eq!(kills, 0);
        assert!(peak < limit, "cgroup peak {peak}");
    }
    println!("victim's series ({}):\n{}", victim.len(), victim.join("\n"));

    // The bound (docs/threat-model.md) leaves a quarter of the limit to spare; so must the relay.
    assert!(peak_rss < limit / 4 * 3, "peak RSS {peak_rss} of {limit}");
    assert_eq!(victim, victim_forwarded(&victim_ns, &victim_pod));
    assert_eq!(
        own(&answer, "targets", "state", "ok"),
        Some(MAX_TARGETS as f64),
        "{}",
        relay.log()
    );
    assert!(
        answer.len() <= NODE_BODY_SIZE_LIMIT,
        "{} bytes",
        answer.len()
    );
    assert!(series <= NODE_SAMPLE_LIMIT, "{series} series");
}

/// Hostile pods of every other kind, each alone in its attack.
fn hostile_pods(kubelet: &Kubelet) -> Result<usize> {
    let mut i = 1;
    let mut pod = |body: &dyn Fn(&str, &str) -> String| -> Result<()> {
        let (ns, pod) = (format!("evil-{i}"), format!("evil-{i}"));
        attested(kubelet, i, &ns, &pod, body(&ns, &pod))?;
        i += 1;
        Ok(())
    };
    let typed = |ns: &str, pod: &str, samples: &str| {
        format!("{}# TYPE {GAUGE} gauge\n{samples}", pod_info(ns, pod))
    };
    // Values Prometheus refuses: each would have failed the relay's whole scrape.
    for value in ["1e400", "-nan", "+nan", "0x1p4"] {
        pod(&|ns, p| typed(ns, p, &format!("{GAUGE}{{process=\"q\"}} {value}\n")))?;
    }
    // A line of as many labels as a body may hold, three times over: seconds of CPU each, once.
    let labels: Vec<String> = (0..MAX_BODY_BYTES / 10)
        .map(|l| format!("l{l}=\"\""))
        .collect();
    let mut wide = format!("{GAUGE}{{{}", labels.join(","));
    wide.truncate(MAX_BODY_BYTES - 200);
    let wide = format!("{wide}}} 1\n{GAUGE}{{process=\"kept\"}} 1\n");
    for _ in 0..3 {
        pod(&|ns, p| typed(ns, p, &wide))?;
    }
    // Labels that would override Prometheus' target or external labels under honorLabels.
    let foreign: String = [
        "cluster",
        "prometheus",
        "prometheus_replica",
        "container",
        "endpoint",
        "service",
    ]
    .iter()
    .map(|l| format!("{GAUGE}{{{l}=\"x\",process=\"q\"}} 1\n"))
    .collect();
    pod(&|ns, p| typed(ns, p, &format!("{foreign}{GAUGE}{{process=\"kept\"}} 1\n")))?;
    // 10,002 series weigh more than a body may; more series than a collector may send fit in one.
    for count in [10_002, MAX_SERIES + 100] {
        let many: String = (0..count)
            .map(|s| format!("{GAUGE}{{process=\"{s}\"}} 1\n"))
            .collect();
        pod(&|ns, p| typed(ns, p, &many))?;
    }
    Ok(i - 1)
}

/// `promtool check metrics` reads `text` without a parse error. Lint problems are allowed: a
/// tenant can take a family's HELP away (the relay shows it only while every target agrees).
fn promtool_parses(text: &str) -> Result<()> {
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().context("no stdin")?;
    std::io::Write::write_all(&mut stdin, text.as_bytes())?;
    drop(stdin);
    let output = child.wait_with_output()?;
    // 0: clean; 3: lint problems only; anything else: it could not read the text.
    ensure!(
        matches!(output.status.code(), Some(0 | 3)),
        "promtool: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// Prometheus scraping the relay as its PodMonitor says, with the PodMonitor's limits.
fn start_prometheus(relay: &Relay) -> Result<Prometheus> {
    let dir = tempfile::Builder::new()
        .prefix("e2e-prometheus-bounds-")
        .tempdir()?;
    let config = format!(
        "global:\n  scrape_interval: 2s\n  scrape_timeout: 2s\nscrape_configs:\n  - job_name: relay\n    honor_labels: true\n    sample_limit: {NODE_SAMPLE_LIMIT}\n    label_limit: {LABEL_LIMIT}\n    label_name_length_limit: {LABEL_NAME_LENGTH_LIMIT}\n    label_value_length_limit: {LABEL_VALUE_LENGTH_LIMIT}\n    body_size_limit: {NODE_BODY_SIZE_LIMIT}B\n    static_configs:\n      - targets: ['{}']\n",
        relay.addr
    );
    std::fs::write(dir.path().join("prometheus.yml"), config)?;
    Prometheus::start_in(dir)
}

#[test]
fn tenants_attacks_leave_a_victims_series_exact_in_an_answer_prometheus_takes() {
    e2e::preflight(&["prometheus", "promtool"]).unwrap();
    let kubelet = Kubelet::new("e2e-kubelet-attacks-").unwrap();
    let (victim_ns, victim_pod) = ("vms", "virt-launcher-victim-abcde");
    attested(
        &kubelet,
        0,
        victim_ns,
        victim_pod,
        victim_body(victim_ns, victim_pod),
    )
    .unwrap();
    let hostile = hostile_pods(&kubelet).unwrap();
    let relay = Relay::start(&kubelet, &[]).unwrap();

    let cpu_before = hostproc::cpu_seconds(relay.pid()).unwrap();
    let start = Instant::now();
    let answer = http::get(relay.addr, "/metrics", &[]).unwrap().text();
    let (took, cpu) = (
        start.elapsed(),
        hostproc::cpu_seconds(relay.pid()).unwrap() - cpu_before,
    );
    let victim = lines_of(&answer, victim_ns, victim_pod);
    println!(
        "victim and {hostile} hostile pods: scrape in {took:?}, {cpu:.2} s of relay CPU; victim's series ({}):\n{}",
        victim.len(),
        victim.join("\n")
    );
    assert_eq!(victim, victim_forwarded(victim_ns, victim_pod));
    assert!(cpu < 1.0, "{cpu} s of CPU for one scrape");
    for (family, reason, n) in [
        ("target_failures_total", "malformed", 4.0),
        ("target_failures_total", "too_many_series", 1.0),
        ("target_failures_total", "too_large", 1.0),
        ("dropped_lines_total", "too_many_labels", 3.0),
        ("dropped_lines_total", "unknown_label", 6.0),
        ("targets", "ok", 5.0),
    ] {
        let label = if family == "targets" {
            "state"
        } else {
            "reason"
        };
        assert_eq!(
            own(&answer, family, label, reason),
            Some(n),
            "{reason}\n{answer}"
        );
    }
    for absent in [
        "cluster=",
        "prometheus=",
        "service=",
        "l0=",
        "1e400",
        "nan\n",
    ] {
        assert!(!answer.contains(absent), "{absent} forwarded:\n{answer}");
    }
    promtool_parses(&answer).unwrap();

    let prometheus = start_prometheus(&relay).unwrap();
    let result = e2e::wait_for("a scrape of the relay", SCRAPE_WAIT, || {
        let up = prometheus.query("up{job=\"relay\"}")?;
        Ok(up.first().map(|s| s.value))
    })
    .and_then(|up| {
        ensure!(up == 1.0, "Prometheus refused the relay's answer: up {up}");
        let selector = format!("{{namespace=\"{victim_ns}\",pod=\"{victim_pod}\"}}");
        let stored = prometheus.query(&format!("count({selector})"))?;
        let stored = stored.first().map_or(0.0, |s| s.value);
        ensure!(
            stored == victim.len() as f64,
            "{stored} victim series stored"
        );
        Ok(())
    });
    if let Err(error) = result {
        panic!("{error:#}\n--- prometheus log:\n{}", prometheus.log());
    }
}
