//! `recommend` and `top` against a real Prometheus loaded with a generated fleet history: the
//! answers equal what this test computes by hand from the same samples.

mod fleet;

use std::collections::BTreeMap;
use std::process::{Command, Output};

use fleet::{DAY, MI, Prometheus, Role, STEP, Series, Vm};
use serde_json::Value;

const HOUR: i64 = 3600;

fn vm(
    name: &'static str,
    vcpus: u32,
    guest_mi: f64,
    estimate_mi: f64,
    roles: [f64; 4],
    own: f64,
) -> Vm {
    Vm {
        namespace: "fleet",
        name,
        pods: vec![(
            Box::leak(format!("virt-launcher-{name}-x1").into_boxed_str()),
            -3 * DAY,
            0,
        )],
        vcpus,
        guest_mi,
        estimate_mi,
        pre_1_9: false,
        instancetype: None,
        roles: vec![
            Role::steady("virt-launcher-monitor", roles[0]),
            Role::steady("virt-launcher", roles[1]),
            Role::steady("virtqemud", roles[2]),
            Role::steady("virtlogd", roles[3]),
        ],
        qemu_own: Role::steady("qemu", own),
        cpu: (0.5, 0.1, 0.01),
    }
}

/// Six VMs with three days of history and one with six hours: a steady one, one restarted
/// half-way, one with a ten-minute spike, one with an instancetype, one whose virt-launcher
/// leaks 100Mi a day, one on KubeVirt before 1.9 (no estimate annotation).
fn fleet() -> Vec<Vm> {
    let a = vm("a", 2, 2048.0, 260.0, [20.0, 80.0, 35.0, 15.0], 40.0);
    let mut b = vm("b", 4, 8192.0, 330.0, [22.0, 90.0, 38.0, 16.0], 60.0);
    b.pods = vec![
        ("virt-launcher-b-1", -3 * DAY, -DAY - DAY / 2),
        ("virt-launcher-b-2", -DAY - DAY / 2 + STEP, 0),
    ];
    b.cpu = (1.5, 0.3, 0.02);
    let mut c = vm("c", 2, 4096.0, 280.0, [20.0, 85.0, 40.0, 15.0], 45.0);
    c.roles[2].spike = Some((DAY, 600, 150.0));
    let mut d = vm("d", 1, 4096.0, 270.0, [20.0, 80.0, 35.0, 15.0], 50.0);
    d.instancetype = Some("u1.medium");
    let mut leak = vm("leak", 2, 2048.0, 260.0, [20.0, 80.0, 35.0, 15.0], 40.0);
    leak.roles[1].leak_mi_per_day = 100.0;
    let mut old = vm("old", 2, 2048.0, 250.0, [25.0, 95.0, 40.0, 20.0], 45.0);
    old.pre_1_9 = true;
    let mut new = vm("new", 2, 2048.0, 260.0, [20.0, 200.0, 35.0, 15.0], 40.0);
    new.pods = vec![("virt-launcher-new-x1", -6 * HOUR, 0)];
    vec![a, b, c, d, leak, old, new]
}

/// What the test expects of one VM, computed from the samples.
#[derive(Debug)]
struct Expected {
    peak: f64,
    estimate: f64,
    span: f64,
}

fn by_vm(series: &[Series]) -> BTreeMap<String, Expected> {
    // (vm, pod, t) -> measured overhead at t.
    let mut overhead: BTreeMap<(String, String, i64), f64> = BTreeMap::new();
    let mut spans: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut estimates: BTreeMap<String, f64> = BTreeMap::new();
    let mut kubevirt_estimates: BTreeMap<String, f64> = BTreeMap::new();
    for s in series {
        let counts = match s.name.as_str() {
            "kubevirt_pod_infra_memory_amount_bytes" => match (s.label("type"), s.label("process"))
            {
                ("resident", "qemu") => false,
                ("resident" | "page_tables", _) => true,
                _ => false,
            },
            "kubevirt_pod_infra_qemu_own_memory_bytes" => {
                for (t, _) in &s.points {
                    let span = spans.entry(s.label("domain").into()).or_insert((*t, *t));
                    *span = (span.0.min(*t), span.1.max(*t));
                }
                true
            }
            "kubevirt_pod_infra_memory_overhead_estimate_bytes" => {
                for (_, v) in &s.points {
                    let e = estimates.entry(s.label("domain").into()).or_insert(*v);
                    *e = e.min(*v);
                }
                false
            }
            "kubevirt_vmi_launcher_memory_overhead_bytes" => {
                for (_, v) in &s.points {
                    let e = kubevirt_estimates
                        .entry(s.label("name").into())
                        .or_insert(*v);
                    *e = e.min(*v);
                }
                false
            }
            _ => false,
        };
        if counts {
            for (t, v) in &s.points {
                *overhead
                    .entry((s.label("domain").into(), s.label("pod").into(), *t))
                    .or_default() += v;
            }
        }
    }
    let mut peaks: BTreeMap<String, f64> = BTreeMap::new();
    for ((vm, _, _), v) in overhead {
        let peak = peaks.entry(vm).or_insert(v);
        *peak = peak.max(v);
    }
    peaks
        .into_iter()
        .map(|(vm, peak)| {
            let estimate = estimates
                .get(&vm)
                .or(kubevirt_estimates.get(&vm))
                .copied()
                .expect("estimate");
            let (first, last) = spans[&vm];
            (
                vm,
                Expected {
                    peak,
                    estimate,
                    span: (last - first) as f64,
                },
            )
        })
        .collect()
}

fn kmc(prometheus: &Prometheus, end: i64, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kubectl-kmc"));
    command.args(args).args([
        "--prometheus",
        &prometheus.url(),
        "--time",
        &end.to_string(),
    ]);
    // A clean environment: no flag defaults from the caller's.
    for (var, _) in
        std::env::vars().filter(|(k, _)| k.starts_with("KUBECTL_KMC_") || k == "KUBECONFIG")
    {
        command.env_remove(var);
    }
    command.output().expect("run kubectl-kmc")
}

fn stdout(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-9 * want.abs().max(1.0),
        "{what}: got {got}, want {want}"
    );
}

#[test]
fn recommend_and_top_against_a_real_prometheus() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    // A sample time, aligned to the 1m subquery steps, a little in the past.
    let end = now / STEP * STEP - 5 * STEP;
    let vms = fleet();
    let series = fleet::generate(&vms, end);
    let dir = tempfile::tempdir().expect("tempdir");
    let started = std::time::Instant::now();
    let prometheus = Prometheus::load(&series, dir.path());
    eprintln!(
        "{} series loaded and Prometheus ready in {:?}",
        series.len(),
        started.elapsed()
    );

    recommend_matches_the_hand_computation(&prometheus, end, &series);
    recommend_refuses_too_little_history(&prometheus, end);
    top_matches_the_last_samples(&prometheus, end, &series);
}

fn recommend_matches_the_hand_computation(prometheus: &Prometheus, end: i64, series: &[Series]) {
    let margin = 0.1;
    let expected = by_vm(series);
    let counted: Vec<(&String, &Expected)> = expected
        .iter()
        .filter(|(_, e)| e.span >= DAY as f64)
        .collect();
    assert_eq!(counted.len(), 6, "{expected:?}");
    let mut needs: Vec<f64> = counted.iter().map(|(_, e)| e.peak / e.estimate).collect();
    needs.sort_by(f64::total_cmp);
    // Nearest rank: ceil(0.8 × 6) = 5th of 6.
    let q = needs[4];
    let ratio = (((q * (1.0 + margin)) * 100.0 - 1e-6).ceil() / 100.0).max(1.0);
    let outliers: BTreeMap<&str, u64> = counted
        .iter()
        .filter_map(|(vm, e)| {
            let shortfall = e.peak * (1.0 + margin) - ratio * e.estimate;
            (shortfall > 0.0).then(|| (vm.as_str(), ((shortfall - 1e-3) / MI).ceil() as u64))
        })
        .collect();
    eprintln!("by hand: quantile {q}, ratio {ratio}, outliers {outliers:?}");
    // The fleet is built so that only the leaking VM needs more than the ratio.
    assert_eq!(outliers.keys().copied().collect::<Vec<_>>(), ["leak"]);

    let args = [
        "recommend",
        "--quantile",
        "0.8",
        "--margin",
        "10%",
        "-o",
        "json",
    ];
    let json: Value = serde_json::from_str(&stdout(&kmc(prometheus, end, &args))).expect("json");
    close(json["ratio"].as_f64().expect("ratio"), ratio, "ratio");
    close(
        json["quantile_ratio"].as_f64().expect("quantile"),
        q,
        "quantile ratio",
    );
    let vms = json["vms"].as_array().expect("vms");
    assert_eq!(vms.len(), 6);
    for vm in vms {
        let name = vm["vm"].as_str().expect("vm");
        let want = &expected[name];
        close(vm["peak"].as_f64().expect("peak"), want.peak, name);
        close(
            vm["estimate"].as_f64().expect("estimate"),
            want.estimate,
            name,
        );
        close(vm["span_seconds"].as_f64().expect("span"), want.span, name);
        close(
            vm["needed_ratio"].as_f64().expect("need"),
            want.peak / want.estimate,
            name,
        );
        assert_eq!(
            vm["added_overhead_mi"].as_u64(),
            outliers.get(name).copied(),
            "{name}"
        );
        let source = if name == "old" { "kubevirt" } else { "pod" };
        assert_eq!(vm["source"], source, "{name}");
    }
    let shapes: BTreeMap<&str, &str> = vms
        .iter()
        .map(|v| {
            (
                v["vm"].as_str().unwrap_or(""),
                v["shape"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(shapes["b"], "4vCPU/8Gi");
    assert_eq!(shapes["d"], "u1.medium");
    let over = |name: &str| -> Vec<String> {
        let vm = vms.iter().find(|v| v["vm"] == name).expect("vm");
        vm["over_budget"]
            .as_array()
            .expect("over")
            .iter()
            .map(|o| o["role"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(over("leak"), ["virt-launcher"]);
    assert_eq!(over("c"), ["virtqemud"]);
    // QEMU's budget for one vCPU is 30 + 8 + 8 = 46Mi; d's QEMU keeps 50Mi.
    assert_eq!(over("d"), ["qemu"]);
    assert!(over("a").is_empty());
    let left_out = json["left_out"].as_array().expect("left out");
    assert_eq!(left_out.len(), 1);
    assert_eq!(left_out[0]["vm"], "new");
    assert_eq!(
        left_out[0]["why"],
        "6h of history, less than --min-history 1d"
    );

    recommend_patches_and_table(prometheus, end, ratio, outliers["leak"]);
}

/// The YAML patches and the table say the same ratio and addedOverhead as the JSON.
fn recommend_patches_and_table(prometheus: &Prometheus, end: i64, ratio: f64, leak_mi: u64) {
    let yaml = stdout(&kmc(
        prometheus,
        end,
        &["recommend", "--quantile", "0.8", "-o", "yaml"],
    ));
    let ratio_text = format!("{ratio:.2}");
    assert!(yaml.contains(&format!(
        "# kubectl patch kubevirt kubevirt -n kubevirt --type merge -p '{{\"spec\":{{\"configuration\":{{\"additionalGuestMemoryOverheadRatio\":\"{ratio_text}\"}}}}}}'\n"
    )), "{yaml}");
    assert!(
        yaml.contains(&format!(
            "    additionalGuestMemoryOverheadRatio: '{ratio_text}'\n"
        )),
        "{yaml}"
    );
    assert!(
        yaml.contains("# kubectl patch vm leak -n fleet --type merge -p "),
        "{yaml}"
    );
    assert!(
        yaml.contains(&format!("            addedOverhead: {leak_mi}Mi\n")),
        "{yaml}"
    );
    assert_eq!(yaml.matches("\n---\n").count() + 1, 2, "{yaml}");
    let documents: Vec<Value> = yaml
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_norway::from_str(d).expect("yaml document"))
        .collect();
    assert_eq!(documents.len(), 2);

    let table = stdout(&kmc(prometheus, end, &["recommend", "--quantile", "0.8"]));
    eprintln!("{table}");
    assert!(
        table.starts_with(&format!(
            "additionalGuestMemoryOverheadRatio: {ratio_text}\n"
        )),
        "{table}"
    );
    assert!(
        table.contains(
            "from 6 VM(s) with 3d to 3d of history each (range 7d, quantile 0.8, margin 10%)"
        ),
        "{table}"
    );
    assert!(
        table.contains("  fleet/new: 6h of history, less than --min-history 1d\n"),
        "{table}"
    );
}

fn recommend_refuses_too_little_history(prometheus: &Prometheus, end: i64) {
    let output = kmc(prometheus, end, &["recommend", "--min-vms", "7"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("kubectl kmc: refusing to recommend: 6 VM(s) with at least 1d of history and an estimate, fewer than --min-vms 7 (1 left out: fleet/new: 6h of history"),
        "{stderr}"
    );
    let output = kmc(prometheus, end, &["recommend", "--min-history", "4d"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("refusing to recommend: 0 VM(s)"));
}

fn top_matches_the_last_samples(prometheus: &Prometheus, end: i64, series: &[Series]) {
    // Resident bytes at `end` per (vm, role), from the samples of the pods alive then.
    let mut resident: BTreeMap<(String, String), f64> = BTreeMap::new();
    for s in series.iter().filter(|s| {
        s.name == "kubevirt_pod_infra_memory_amount_bytes" && s.label("type") == "resident"
    }) {
        if let Some((_, v)) = s.points.last().filter(|(t, _)| *t == end) {
            resident.insert((s.label("domain").into(), s.label("process").into()), *v);
        }
    }
    let json: Value = serde_json::from_str(&stdout(&kmc(
        prometheus,
        end,
        &["top", "-n", "fleet", "-o", "json"],
    )))
    .expect("json");
    let vms = json.as_array().expect("array");
    assert_eq!(vms.len(), 7);
    let totals: Vec<(String, f64)> = vms
        .iter()
        .map(|v| {
            (
                v["vm"].as_str().unwrap_or("").to_owned(),
                v["resident_bytes"].as_f64().unwrap_or(0.0),
            )
        })
        .collect();
    assert!(
        totals.windows(2).all(|w| w[0].1 >= w[1].1),
        "sorted by memory: {totals:?}"
    );
    for vm in vms {
        let name = vm["vm"].as_str().expect("vm");
        let want_pod = if name == "b" {
            "virt-launcher-b-2".to_owned()
        } else {
            format!("virt-launcher-{name}-x1")
        };
        assert_eq!(vm["pod"], want_pod.as_str());
        for role in vm["roles"].as_array().expect("roles") {
            let role_name = role["role"].as_str().expect("role");
            let want = resident[&(name.to_owned(), role_name.to_owned())];
            close(
                role["resident_bytes"].as_f64().expect("resident"),
                want,
                &format!("{name} {role_name}"),
            );
        }
        let cpu = |role: &str| {
            vm["roles"]
                .as_array()
                .and_then(|r| r.iter().find(|x| x["role"] == role))
                .and_then(|x| x["cpu_cores"].as_f64())
                .expect("cpu")
        };
        let (user, system, launcher) = if name == "b" {
            (1.5, 0.3, 0.02)
        } else {
            (0.5, 0.1, 0.01)
        };
        assert!(
            (cpu("qemu") - (user + system)).abs() < 1e-6,
            "{name} qemu cpu {}",
            cpu("qemu")
        );
        assert!(
            (cpu("virt-launcher") - launcher).abs() < 1e-6,
            "{name} launcher cpu"
        );
        let qemu = vm["roles"]
            .as_array()
            .and_then(|r| r.iter().find(|x| x["role"] == "qemu"))
            .expect("qemu");
        assert!(
            qemu["overhead_bytes"].as_f64().is_some_and(|v| v > 0.0),
            "{name}"
        );
    }

    let table = stdout(&kmc(prometheus, end, &["top", "leak", "-n", "fleet"]));
    eprintln!("{table}");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 7, "{table}");
    assert!(lines[0].starts_with("NAMESPACE   VM     ROLE"), "{table}");
    assert!(
        lines[1].starts_with("fleet       leak   (all)   "),
        "{table}"
    );
    // The leaking virt-launcher holds 380Mi after three days and comes right after QEMU.
    assert!(lines[2].contains(" qemu "), "{table}");
    assert!(
        lines[3].contains(" virt-launcher ") && lines[3].contains("380.0Mi"),
        "{table}"
    );
}
