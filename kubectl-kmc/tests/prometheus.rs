//! `top` and `recommend` against a real Prometheus loaded with generated histories: a fleet with
//! the traps (a pod two targets scrape, an OOM-killed leaking VM, an outlier, twins in two
//! namespaces, a migration, hugepages, a TPM, and pods posing as VMs that KubeVirt does not vouch
//! for, one with a hostile name) whose answers equal what this test computes by hand from the same
//! model, and the golden outputs of two generated fleets of 3 and 12 VMs. The printed commands,
//! pasted into a shell, give a fake `kubectl` exactly the argv meant.

mod fleet;
mod paste;

use std::collections::BTreeMap;
use std::process::{Command, Output};

use fleet::{
    DAY, END, Ending, HOUR, MI, Pod, Prometheus, Role, STEP, Vm, expect, golden, golden_file,
};
use serde_json::Value;

const HISTORY: i64 = 2 * DAY;
/// The subqueries' step: that of the scrapes, so that every sample is seen, at half the cost of
/// the default 1m.
const RESOLUTION: &str = "2m";
/// The generated fleets end ten days after the trap fleet: a 7d range never sees both.
const GOLDEN_END: i64 = END + 10 * DAY;
const GOLDEN_HISTORY: i64 = DAY + 6 * HOUR;
const MARGIN: f64 = 0.1;

fn own(vm: &mut Vm, mi: f64) {
    vm.pods[0].qemu_own = Role::steady("qemu", mi);
}

/// Healthy VMs of 1, 4 and 16 GiB (limit = guest + estimate, guest RAM touched), one scraped by
/// two targets, a 4-vCPU VM with video and a TPM, one on hugepages, twins in two namespaces, a
/// migrated VM, an OOM-killed VM whose QEMU leaked, a heavy outlier and one too new to count.
fn trap_fleet() -> Vec<Vm> {
    let h = HISTORY;
    // Scraped through its own port and the node relay: two `instance`s of one pod.
    let mut dup = Vm::new("fleet", "dup", 1, 1024.0, h);
    dup.targets = 2;
    dup.touched = 0.95;
    dup.cpu = (0.151, 0.020, 0.010);
    own(&mut dup, 82.0);
    let mut small = Vm::new("fleet", "small", 1, 1024.0, h);
    small.touched = 0.9;
    own(&mut small, 80.0);
    let mut medium = Vm::new("fleet", "medium", 2, 4096.0, h);
    medium.touched = 0.75;
    own(&mut medium, 92.0);
    let mut large = Vm::new("fleet", "large", 4, 16_384.0, h);
    large.touched = 0.5;
    own(&mut large, 110.0);
    let mut tpm = Vm::new("fleet", "tpm", 4, 4096.0, h);
    tpm.tpm = true;
    tpm.roles.push(Role::steady("swtpm", 12.0));
    tpm.estimate_mi = tpm.budget_sum_mi();
    own(&mut tpm, 106.0);
    let mut huge = Vm::new("fleet", "huge", 2, 2048.0, h);
    huge.hugepages = true;
    huge.video = false;
    huge.estimate_mi = huge.budget_sum_mi();
    huge.instancetype = Some("cx1.medium1gi");
    own(&mut huge, 88.0);
    // One name in two namespaces; KubeVirt's metric for the estimate, without the annotation.
    let mut twin = Vm::new("fleet", "twin", 2, 2048.0, h);
    (twin.touched, twin.annotation, twin.kubevirt_metric) = (0.6, false, true);
    own(&mut twin, 90.0);
    let mut other_twin = Vm::new("other", "twin", 2, 2048.0, h);
    (other_twin.touched, other_twin.kubevirt_metric) = (0.6, true);
    own(&mut other_twin, 118.0);
    vec![
        dup,
        small,
        medium,
        large,
        tpm,
        huge,
        twin,
        other_twin,
        migrated(),
        oom(),
        outlier(),
        Vm::new("fleet", "new", 2, 2048.0, 6 * HOUR),
        hostile(),
        impostor(),
    ]
}

/// A name a tenant chose: a shell command, a newline that would open a YAML line of its own, an
/// OSC title and a CSI that clears the screen.
pub const HOSTILE: &str = "vm;touch /tmp/x;#\nspec: {}\n\u{1b}]0;owned\u{7}\u{1b}[2J";

/// A tenant's pod in a namespace that never opted in, labelled for the direct PodMonitor and
/// serving the collector's families under a hostile name: no VMI, so KubeVirt reports nothing.
/// Its small estimate would make it need more than most, moving the median if it counted.
fn hostile() -> Vm {
    let mut vm = Vm::new("tenant", HOSTILE, 2, 2048.0, HISTORY);
    vm.pods[0].name = "fake-launcher".into();
    vm.estimate_mi = 240.0;
    vm.vouched = false;
    vm
}

/// A pod in an opted-in namespace that claims a real VM's name: KubeVirt names another pod for
/// that VMI. Its heavy QEMU would raise the VM's peak if it counted.
fn impostor() -> Vm {
    let mut vm = Vm::new("fleet", "small", 1, 1024.0, HISTORY);
    vm.pods[0].name = "impostor".into();
    own(&mut vm, 900.0);
    vm.vouched = false;
    vm
}

/// Migrated half-way: the source pod completed, the target runs; one `name`, two pods.
fn migrated() -> Vm {
    let mut vm = Vm::new("fleet", "migrated", 2, 2048.0, HISTORY);
    vm.pods = vec![
        Pod {
            name: "virt-launcher-migrated-a".into(),
            from: -HISTORY,
            to: -HISTORY / 2,
            ending: Ending::Completed,
            qemu_own: Role::steady("qemu", 90.0),
        },
        Pod {
            name: "virt-launcher-migrated-b".into(),
            from: -HISTORY / 2 + STEP,
            to: 0,
            ending: Ending::Running,
            qemu_own: Role::steady("qemu", 100.0),
        },
    ];
    vm
}

/// The guest touched all its RAM; QEMU's own memory leaked 21.5Mi a day until the compute
/// container was OOM-killed six hours before the end, its last scrape 2.2Mi short of the
/// allowance; the VM restarted in a new pod that leaks again.
pub fn oom() -> Vm {
    let mut vm = Vm::new("fleet", "oom", 2, 2048.0, HISTORY);
    vm.touched = 1.0;
    let leaking = Role {
        name: "qemu",
        base_mi: 61.0,
        leak_mi_per_day: 21.5,
        spike: None,
    };
    vm.pods = vec![
        Pod {
            name: "virt-launcher-oom-x1".into(),
            from: -HISTORY,
            to: -6 * HOUR,
            ending: Ending::OomKilled,
            qemu_own: leaking.clone(),
        },
        Pod {
            name: "virt-launcher-oom-x2".into(),
            from: -6 * HOUR + STEP,
            to: 0,
            ending: Ending::Running,
            qemu_own: leaking,
        },
    ];
    vm
}

/// A virt-launcher that holds 260Mi, steadily.
fn outlier() -> Vm {
    let mut vm = Vm::new("fleet", "outlier", 2, 2048.0, HISTORY);
    vm.roles[1].base_mi = 260.0;
    vm
}

fn kmc(prometheus: &Prometheus, at: i64, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kubectl-kmc"));
    command
        .args(args)
        .args(["--prometheus", &prometheus.url(), "--time", &at.to_string()])
        // No cluster, even in a pod with a service account: `recommend` then names the KubeVirt
        // CR at its usual name, as these goldens expect.
        .args(["--kubeconfig", "/nonexistent/kubeconfig"]);
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
fn top_and_recommend_against_a_real_prometheus() {
    let vms = trap_fleet();
    let generated = [
        golden::fleet(3, "three", GOLDEN_HISTORY),
        golden::fleet(12, "twelve", GOLDEN_HISTORY),
    ]
    .concat();
    let mut series = fleet::generate(&vms, END);
    series.extend(fleet::generate(&generated, GOLDEN_END));
    let dir = tempfile::tempdir().expect("tempdir");
    let started = std::time::Instant::now();
    let prometheus = Prometheus::load(&series, dir.path());
    let samples: usize = series.iter().map(|s| s.points.len()).sum();
    eprintln!(
        "{} series, {samples} samples loaded and Prometheus ready in {:?}",
        series.len(),
        started.elapsed()
    );

    top_counts_a_pod_scraped_twice_once(&prometheus, &vms);
    recommend_sets_the_traps_aside(&prometheus, &vms);
    recommend_refuses_too_little_history(&prometheus);
    for (n, namespace) in [(3, "three"), (12, "twelve")] {
        let table = stdout(&kmc(
            &prometheus,
            GOLDEN_END,
            &["recommend", "-n", namespace, "--resolution", RESOLUTION],
        ));
        golden_file(&format!("recommend-{n}.txt"), &table);
    }
    twelve_read_directly_agree_with_prometheus(&prometheus, &generated);
}

/// Every VM once; the duplicated pod's CPU and memory as one target reports them.
fn top_counts_a_pod_scraped_twice_once(prometheus: &Prometheus, vms: &[Vm]) {
    let output = kmc(prometheus, END, &["top", "-o", "json"]);
    // Each pod posing as a VM: one series of each of the five rules that have its process or
    // component rows (resident, CPU, overhead, budget) or its pod's (overhead, estimate).
    let notes = String::from_utf8_lossy(&output.stderr);
    assert!(
        notes.contains("series left out: KubeVirt reports no VMI of that namespace and name")
            && notes.contains("series left out: KubeVirt names other launcher pods for that VMI"),
        "{notes}"
    );
    assert!(
        !notes.chars().any(|c| c != '\n' && c.is_control()),
        "{notes}"
    );
    let json: Value = serde_json::from_str(&stdout(&output)).expect("json");
    let rows = json.as_array().expect("array");
    let keys: Vec<(String, String, String)> = rows
        .iter()
        .map(|v| {
            let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            (text("namespace"), text("vm"), text("pod"))
        })
        .collect();
    let mut want: Vec<(String, String, String)> = vms
        .iter()
        .filter(|vm| vm.vouched)
        .map(|vm| {
            let pod = vm.pods.last().expect("pod");
            (vm.namespace.clone(), vm.name.clone(), pod.name.clone())
        })
        .collect();
    let mut got = keys.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "one row per running pod");

    let dup = rows.iter().find(|v| v["vm"] == "dup").expect("dup");
    let role = |name: &str| {
        dup["roles"]
            .as_array()
            .and_then(|r| r.iter().find(|x| x["role"] == name))
            .unwrap_or_else(|| panic!("role {name}"))
    };
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    // By hand: QEMU's user 0.151 + system 0.020 cores; virt-launcher 0.010.
    let tolerance = |got: f64, want: f64, what: &str| {
        assert!((got - want).abs() < 1e-6, "{what}: got {got}, want {want}");
    };
    tolerance(f(&role("qemu")["cpu_cores"]), 0.171, "dup qemu cpu");
    tolerance(f(&dup["cpu_cores"]), 0.181, "dup cpu");
    // QEMU's RSS: its own 82Mi and 95% of 1Gi of guest RAM, 1054.8Mi, not twice that.
    close(
        f(&role("qemu")["resident_bytes"]),
        (82.0 + 972.8) * MI,
        "dup qemu resident",
    );
    close(
        f(&dup["resident_bytes"]),
        (82.0 + 972.8 + 22.0 + 95.0 + 18.0 + 38.0) * MI,
        "dup resident",
    );
    // The measured overhead: 4 roles × (resident + 0.5Mi page tables) + QEMU's 82Mi + its page
    // tables 972.8/512 + 0.2 = 2.1Mi: 259.1Mi.
    let overhead = (173.0 + 2.0 + 82.0 + 972.8 / 512.0 + 0.2) * MI;
    close(f(&dup["overhead_bytes"]), overhead, "dup overhead");
    close(f(&dup["estimate_bytes"]), 270.0 * MI, "dup estimate");
    close(
        f(&role("qemu")["budget_bytes"]),
        78.0 * MI + 2_097_152.0,
        "dup qemu budget",
    );
    close(
        f(&role("qemu")["overhead_bytes"]),
        (82.0 + 2.1) * MI,
        "dup qemu overhead",
    );

    let table = stdout(&kmc(prometheus, END, &["top", "dup", "-n", "fleet"]));
    eprintln!("{table}");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 7, "{table}");
    assert_eq!(
        lines[1],
        "fleet       dup   (all)                   181m         1227.8Mi   259.1Mi    270.0Mi",
        "{table}"
    );
    assert_eq!(
        lines[2],
        "fleet       dup   qemu                    171m         1054.8Mi   84.1Mi     80.0Mi",
        "{table}"
    );
}

/// What the test expects of a VM, by hand.
#[derive(Debug)]
struct Expected {
    peak: f64,
    estimate: f64,
    span: f64,
    /// OOM-killed: the allowance bounds the overhead at the kill.
    at_least: Option<f64>,
}

fn expected(vm: &Vm) -> Expected {
    let peak = expect::peak(vm, END);
    let killed = vm.pods.iter().any(|p| p.ending == Ending::OomKilled);
    Expected {
        peak,
        estimate: vm.estimate_mi * MI,
        span: expect::span(vm),
        at_least: killed.then(|| expect::allowance(vm).max(peak)),
    }
}

fn recommend_sets_the_traps_aside(prometheus: &Prometheus, vms: &[Vm]) {
    let by_hand: BTreeMap<(String, String), Expected> = vms
        .iter()
        .filter(|v| v.name != "new" && v.vouched)
        .map(|v| ((v.namespace.clone(), v.name.clone()), expected(v)))
        .collect();
    let need = |e: &Expected| e.at_least.unwrap_or(e.peak) / e.estimate;
    // Set aside: the OOM-killed VM and the outlier; the median of the other nine is covered.
    let aside = ["oom", "outlier"];
    let mut needs: Vec<f64> = by_hand
        .iter()
        .filter(|((_, name), _)| !aside.contains(&name.as_str()))
        .map(|(_, e)| need(e))
        .collect();
    needs.sort_by(f64::total_cmp);
    assert_eq!(needs.len(), 9);
    let median = needs[4];
    let ratio = ((median * (1.0 + MARGIN) * 100.0 - 1e-6).ceil() / 100.0).max(1.0);
    let added: BTreeMap<&(String, String), u64> = by_hand
        .iter()
        .filter_map(|(key, e)| {
            let shortfall = e.at_least.unwrap_or(e.peak) * (1.0 + MARGIN) - ratio * e.estimate;
            let mi = ((shortfall - 1e-3) / MI).ceil();
            (mi > 0.0).then_some((key, mi as u64))
        })
        .collect();
    eprintln!("by hand: median {median}, ratio {ratio}, added {added:?}");

    let args = ["recommend", "--resolution", RESOLUTION, "-o", "json"];
    let json: Value = serde_json::from_str(&stdout(&kmc(prometheus, END, &args))).expect("json");
    close(json["ratio"].as_f64().unwrap_or(0.0), ratio, "ratio");
    close(
        json["basis_ratio"].as_f64().unwrap_or(0.0),
        median,
        "median",
    );
    assert_eq!(
        json["method"],
        serde_json::json!({"kind": "median", "of": 9})
    );
    let rows = json["vms"].as_array().expect("vms");
    assert_eq!(rows.len(), by_hand.len());
    for row in rows {
        let key = (
            row["namespace"].as_str().unwrap_or_default().to_owned(),
            row["vm"].as_str().unwrap_or_default().to_owned(),
        );
        let want = &by_hand[&key];
        let what = format!("{}/{}", key.0, key.1);
        let f = |k: &str| row[k].as_f64().unwrap_or(f64::NAN);
        close(f("peak"), want.peak, &what);
        close(f("estimate"), want.estimate, &what);
        close(f("span_seconds"), want.span, &what);
        close(f("needed_ratio"), need(want), &what);
        assert_eq!(row["at_least"].as_f64(), want.at_least, "{what}");
        assert_eq!(
            row["added_overhead_mi"].as_u64(),
            added.get(&key).copied(),
            "{what}"
        );
        close(f("ratio_cost"), (ratio - 1.0) * want.estimate, &what);
    }
    let row = |name: &str| rows.iter().find(|v| v["vm"] == name).expect(name);
    assert_eq!(row("oom")["set_aside"], "oom-killed");
    assert_eq!(row("outlier")["set_aside"], "outlier");
    assert!(
        rows.iter()
            .filter(|v| !aside.contains(&v["vm"].as_str().unwrap_or_default()))
            .all(|v| v["set_aside"].is_null())
    );
    // The OOM-killed VM: the kill as kube-state-metrics reported it, the bound its allowance,
    // QEMU's leak in the killed pod.
    let kill = &row("oom")["oom_kill"];
    assert_eq!(kill["pod"], "virt-launcher-oom-x1");
    let oom_pod = &oom().pods[0];
    close(
        kill["at"].as_f64().unwrap_or(0.0),
        expect::killed_at(oom_pod, END, STEP),
        "kill time",
    );
    close(
        kill["allowance"].as_f64().unwrap_or(0.0),
        280.0 * MI,
        "allowance",
    );
    let leaks = row("oom")["leaks"].as_array().expect("leaks");
    assert_eq!(leaks.len(), 1, "{leaks:?}");
    assert_eq!(
        (&leaks[0]["component"], &leaks[0]["pod"]),
        (&"qemu".into(), &"virt-launcher-oom-x1".into())
    );
    let per_day = leaks[0]["per_day"].as_f64().unwrap_or(0.0) / MI;
    assert!((per_day - 21.5).abs() < 0.5, "{per_day} Mi a day");
    // The duplicated VM invents no addedOverhead, and its figures are one pod's.
    assert!(row("dup")["added_overhead_mi"].is_null());
    // Budgets: the swtpm's is there, QEMU's is what the 1.9 constants allow.
    let over: Vec<&str> = row("tpm")["over_budget"]
        .as_array()
        .expect("over")
        .iter()
        .filter_map(|o| o["component"].as_str())
        .collect();
    assert_eq!(over, ["qemu"]);
    let judged = &json["budgets"];
    assert_eq!(judged["verdict"]["kind"], "agrees");
    assert_eq!(judged["budgets"], serde_json::json!([["1.9", "assumed"]]));
    assert_eq!(judged["cluster"], serde_json::json!(["v1.9.0"]));
    let left_out = json["left_out"].as_array().expect("left out");
    assert_eq!(left_out.len(), 1);
    assert_eq!(left_out[0]["vm"], "new");
    // The pods posing as VMs count nowhere, and are counted as left out.
    assert_eq!(json["series"]["vouched"], true);
    let series = &json["series"]["left_out"];
    assert!(series["no-vmi"].as_u64().unwrap_or(0) > 0, "{series}");
    assert!(
        series["not-the-vmis-pod"].as_u64().unwrap_or(0) > 0,
        "{series}"
    );

    recommend_table_and_patches(prometheus, ratio, &added);
}

/// The table and the YAML patches say the same as the JSON.
fn recommend_table_and_patches(
    prometheus: &Prometheus,
    ratio: f64,
    added: &BTreeMap<&(String, String), u64>,
) {
    let table = stdout(&kmc(
        prometheus,
        END,
        &["recommend", "--resolution", RESOLUTION],
    ));
    eprintln!("{table}");
    golden_file("recommend-traps.txt", &table);
    let ratio_text = format!("{ratio:.2}");
    assert!(
        table.starts_with(&format!(
            "additionalGuestMemoryOverheadRatio: {ratio_text} (now 1.0)\n"
        )),
        "{table}"
    );
    let yaml = stdout(&kmc(
        prometheus,
        END,
        &["recommend", "--resolution", RESOLUTION, "-o", "yaml"],
    ));
    golden_file("recommend-traps.yaml", &yaml);
    let documents: Vec<Value> = yaml
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_norway::from_str(d).expect("yaml document"))
        .collect();
    assert_eq!(documents.len(), 1 + added.len(), "{yaml}");
    assert_eq!(
        documents[0]["spec"]["configuration"]["additionalGuestMemoryOverheadRatio"],
        ratio_text.as_str()
    );
    for ((namespace, name), mi) in added {
        assert!(
            yaml.contains(&format!(
                "# kubectl patch vm {name} -n {namespace} --type merge -p '{{\"spec\":{{\"template\":{{\"spec\":{{\"domain\":{{\"memory\":{{\"reservedOverhead\":{{\"addedOverhead\":\"{mi}Mi\"}}}}}}}}}}}}}}'\n"
            )),
            "{namespace}/{name}: {yaml}"
        );
    }
    // Pasted as printed, each command gives kubectl exactly the words meant, and no more.
    let commands = paste::commands(&yaml);
    assert_eq!(commands.len(), 1 + added.len(), "{yaml}");
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(
        paste::argv(&commands[0], dir.path()),
        paste::ratio_patch(&ratio_text)
    );
    let mut pasted: Vec<Vec<String>> = commands[1..]
        .iter()
        .map(|c| paste::argv(c, dir.path()))
        .collect();
    let mut meant: Vec<Vec<String>> = added
        .iter()
        .map(|((namespace, name), mi)| paste::vm_patch(namespace, name, *mi))
        .collect();
    pasted.sort();
    meant.sort();
    assert_eq!(pasted, meant);
    for text in [&table, &yaml] {
        assert!(!text.contains("vm;touch"), "{text}");
        assert!(!text.chars().any(|c| c != '\n' && c.is_control()), "{text}");
    }
}

fn recommend_refuses_too_little_history(prometheus: &Prometheus) {
    let output = kmc(
        prometheus,
        END,
        &["recommend", "--resolution", RESOLUTION, "--min-vms", "12"],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("kubectl kmc: refusing to recommend: 11 VM(s) with at least 1d of history and an estimate, fewer than --min-vms 12 (1 left out: fleet/new: 6h of history"),
        "{stderr}"
    );
    let output = kmc(
        prometheus,
        END,
        &[
            "recommend",
            "--resolution",
            RESOLUTION,
            "--min-history",
            "3d",
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("refusing to recommend: 0 VM(s)"));
}

/// The twelve VMs read by hand from their model give the same recommendation as Prometheus: the
/// path the 300-VM golden output takes (tests/recommend.rs) is the one Prometheus takes.
fn twelve_read_directly_agree_with_prometheus(prometheus: &Prometheus, generated: &[Vm]) {
    let args = [
        "recommend",
        "-n",
        "twelve",
        "--resolution",
        RESOLUTION,
        "-o",
        "json",
    ];
    let json: Value =
        serde_json::from_str(&stdout(&kmc(prometheus, GOLDEN_END, &args))).expect("json");
    let twelve: Vec<&Vm> = generated
        .iter()
        .filter(|v| v.namespace == "twelve")
        .collect();
    let direct = serde_json::to_value(expect::advice(&twelve, GOLDEN_END)).expect("json");
    assert_eq!(json["ratio"], direct["ratio"]);
    assert_eq!(json["method"], direct["method"]);
    assert_eq!(json["cost"]["added_mi"], direct["cost"]["added_mi"]);
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    close(f(&json["basis_ratio"]), f(&direct["basis_ratio"]), "basis");
    close(
        f(&json["cost"]["ratio_bytes"]),
        f(&direct["cost"]["ratio_bytes"]),
        "cost",
    );
    let rows = |v: &Value| -> Vec<(Value, Value, Value, Vec<Value>)> {
        v["vms"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let over = r["over_budget"].as_array().into_iter().flatten();
                (
                    r["vm"].clone(),
                    r["set_aside"].clone(),
                    r["added_overhead_mi"].clone(),
                    over.map(|o| o["component"].clone()).collect(),
                )
            })
            .collect()
    };
    assert_eq!(rows(&json), rows(&direct));
}
