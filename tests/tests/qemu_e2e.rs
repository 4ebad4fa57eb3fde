//! A real QEMU (Debian's `qemu-system-x86`, KVM where `/dev/kvm` opens, TCG otherwise) in a fake
//! launcher pod's PID namespace, next to the other launcher processes, read by `-M`: guest RAM's
//! size and resident part, QEMU's own memory, page tables and the vCPU class against the host's
//! `/proc`; boot RAM given as a bare `-m`, and a DIMM hot-plugged over QMP; and the series such a
//! pod exports in each metrics profile, against docs/metrics.md.

use anyhow::{Context as _, Result, ensure};
use e2e::collector;
use e2e::exposition::{self, Sample};
use e2e::hostproc;
use e2e::launcher;
use e2e::pod::{FakePod, PodInfo};
use e2e::qemu::{BootRam, Guest, Qemu};
use kube_metrics_contract::metrics::Profile;

const NAMESPACE: &str = "e2e";
const MIB: f64 = 1024.0 * 1024.0;
/// Two reads of a running process a moment apart differ by a few pages.
const DRIFT: f64 = 512.0 * 1024.0;

fn guest(vm: &str, memory_mib: u64, prealloc: bool, spin: bool) -> Guest {
    Guest {
        namespace: NAMESPACE.into(),
        vm: vm.into(),
        memory_mib,
        prealloc,
        spin,
        boot: BootRam::Backend,
        hotplug_mib: None,
    }
}

/// A launcher pod whose QEMU is the real one.
fn pod_with(guest: &Guest) -> Result<(FakePod, Qemu)> {
    e2e::preflight(&["unshare", "nsenter", "qemu-system-x86_64"])?;
    let others = launcher::core_processes(NAMESPACE, &guest.vm, None)
        .into_iter()
        .filter(|spec| spec.key != "qemu");
    let pod = FakePod::with_processes(&PodInfo::launcher(&guest.vm, 1), others)?;
    let qemu = guest.start(&pod)?;
    Ok((pod, qemu))
}

fn dump(pod: &FakePod) -> Result<Vec<Sample>> {
    let podinfo = pod.podinfo_dir().to_string_lossy().into_owned();
    let output = collector::run_once(pod, None, &["-M", "--podinfo", &podinfo])?;
    exposition::parse(&String::from_utf8(output.stdout).context("-M printed non-UTF-8")?)
}

fn guest_bytes(samples: &[Sample], kind: &str) -> Result<f64> {
    exposition::value(
        samples,
        "kubevirt_pod_infra_guest_memory_bytes",
        &[("type", kind)],
    )
}

fn own_memory(samples: &[Sample]) -> Result<f64> {
    exposition::value(samples, "kubevirt_pod_infra_qemu_own_memory_bytes", &[])
}

/// A health gauge of the guest memory reader.
fn health(samples: &[Sample], name: &str) -> Result<f64> {
    exposition::value(
        samples,
        &format!("kube_metrics_collector_guest_memory_{name}"),
        &[],
    )
}

fn qemu_memory(samples: &[Sample], kind: &str) -> Result<f64> {
    exposition::value(
        samples,
        "kubevirt_pod_infra_memory_amount_bytes",
        &[("process", "qemu"), ("type", kind)],
    )
}

#[test]
fn preallocated_guest_ram_is_told_apart_from_qemus_own_memory() -> Result<()> {
    let spec = guest("prealloc", 256, true, false);
    let (pod, qemu) = pod_with(&spec)?;
    // QEMU may still be settling after its RAM is resident: its own memory must lie between what
    // the host showed just before and just after the collector read it.
    let status = |field| hostproc::status_bytes(qemu.pid, field).map(|b| b as f64);
    let (rss_before, pte_before) = (status("VmRSS")?, status("VmPTE")?);
    let samples = dump(&pod)?;
    let (rss_after, pte_after) = (status("VmRSS")?, status("VmPTE")?);

    let size = guest_bytes(&samples, "size")?;
    ensure!(
        size == 256.0 * MIB,
        "guest size {size}, asked for 256 MiB ({:?})",
        qemu.argv
    );
    let resident = guest_bytes(&samples, "resident")?;
    ensure!(
        (size - resident).abs() <= 16.0 * 4096.0,
        "preallocated guest RAM resident {resident} of {size}"
    );
    let own = own_memory(&samples)?;
    ensure!(
        rss_before - resident - DRIFT <= own && own <= rss_after - resident + DRIFT,
        "QEMU's own {own} vs VmRSS {rss_before}..{rss_after} - guest {resident}"
    );
    ensure!(
        own > 4.0 * MIB,
        "QEMU's own memory is its code and heap: {own}"
    );
    let pages = qemu_memory(&samples, "page_tables")?;
    ensure!(
        pte_before - DRIFT <= pages && pages <= pte_after + DRIFT,
        "page tables {pages} vs VmPTE {pte_before}..{pte_after}"
    );
    for name in [
        "unparsed_arguments",
        "unmatched_backends",
        "unexplained_bytes",
    ] {
        ensure!(health(&samples, name)? == 0.0, "{name}");
    }
    // KubeVirt's budget for this QEMU from its own command line: 2 vCPUs, no display device
    // (`-nodefaults`), 256 MiB of guest RAM; release 1.9 assumed.
    let budget = exposition::value(
        &samples,
        "kubevirt_pod_infra_memory_overhead_budget_bytes",
        &[
            ("component", "qemu"),
            ("kubevirt_release", "1.9"),
            ("source", "assumed"),
        ],
    )?;
    let want = (30.0 + 2.0 * 8.0 + 8.0) * MIB + 524_289.0;
    ensure!(budget == want, "QEMU's budget {budget}, want {want}");
    println!(
        "QEMU's own memory and page tables {:.1} MiB against its budget {:.1} MiB",
        (own + pages) / MIB,
        budget / MIB
    );
    let charged = exposition::value(
        &samples,
        "kubevirt_pod_infra_compute_memory_bytes",
        &[("type", "guest")],
    )?;
    ensure!(charged == size, "guest RAM charged {charged}, size {size}");
    // The series of one launcher pod in the full profile (`-M` serves nothing, so no connection
    // counts); docs/metrics.md ("Profiles") counts them as injected.
    println!("series of one launcher pod: {}", samples.len());
    ensure!(samples.len() <= 160, "{} series per pod", samples.len());
    let domain = samples
        .iter()
        .find(|s| s.name == "kubevirt_pod_infra_guest_memory_bytes");
    ensure!(
        domain.is_some_and(|s| s.label("domain") == "prealloc"),
        "{domain:?}"
    );
    Ok(())
}

#[test]
fn untouched_guest_ram_is_small_but_its_size_is_exact() -> Result<()> {
    let spec = guest("lazy", 512, false, false);
    let (pod, _qemu) = pod_with(&spec)?;
    let samples = dump(&pod)?;
    ensure!(guest_bytes(&samples, "size")? == 512.0 * MIB, "size");
    let resident = guest_bytes(&samples, "resident")?;
    ensure!(
        resident < 32.0 * MIB,
        "a paused guest touched {resident} bytes"
    );
    ensure!(
        guest_bytes(&samples, "hugetlb")? == 0.0,
        "no hugetlbfs here"
    );
    Ok(())
}

#[test]
fn a_spinning_guest_burns_vcpu_time() -> Result<()> {
    let spec = guest("spin", 64, false, true);
    let (pod, qemu) = pod_with(&spec)?;
    let vcpu = |samples: &[Sample]| -> Result<f64> {
        ["user", "system"]
            .into_iter()
            .map(|kind| {
                exposition::value(
                    samples,
                    "kubevirt_pod_infra_qemu_thread_cpu_seconds_total",
                    &[("class", "vcpu"), ("type", kind)],
                )
            })
            .sum()
    };
    let samples = e2e::wait_for(
        "the vCPU to burn 0.3 s",
        std::time::Duration::from_secs(60),
        || {
            let samples = dump(&pod)?;
            Ok((vcpu(&samples)? >= 0.3).then_some(samples))
        },
    )
    .with_context(|| format!("QEMU {:?}", qemu.argv))?;
    let other = exposition::value(
        &samples,
        "kubevirt_pod_infra_qemu_thread_cpu_seconds_total",
        &[("class", "other"), ("type", "user")],
    )?;
    ensure!(
        vcpu(&samples)? > other,
        "the guest's CPU is in the vcpu class"
    );
    Ok(())
}

#[test]
fn boot_ram_of_a_bare_m_is_guest_ram() -> Result<()> {
    let spec = Guest {
        boot: BootRam::Legacy,
        ..guest("legacy", 256, true, false)
    };
    let (pod, qemu) = pod_with(&spec)?;
    let samples = dump(&pod)?;
    let (size, resident) = (
        guest_bytes(&samples, "size")?,
        guest_bytes(&samples, "resident")?,
    );
    let own = own_memory(&samples)?;
    println!("bare -m 256: resident {resident}, own {own}");
    ensure!(size == 256.0 * MIB, "guest size {size} ({:?})", qemu.argv);
    ensure!(
        (size - resident).abs() <= 16.0 * 4096.0,
        "preallocated boot RAM resident {resident} of {size}"
    );
    ensure!(
        own < 64.0 * MIB,
        "QEMU's own memory {own} holds no guest RAM"
    );
    for name in [
        "unparsed_arguments",
        "unmatched_backends",
        "unexplained_bytes",
    ] {
        ensure!(health(&samples, name)? == 0.0, "{name}");
    }
    Ok(())
}

#[test]
fn a_hot_plugged_dimm_is_guest_ram_and_flagged() -> Result<()> {
    const DIMM: f64 = 256.0 * MIB;
    let spec = Guest {
        boot: BootRam::Legacy,
        hotplug_mib: Some(768),
        ..guest("hotplug", 256, false, false)
    };
    let (pod, qemu) = pod_with(&spec)?;
    // QEMU answers QMP from its main loop, which runs once start-up is done: from then on its own
    // memory holds still while the guest is paused.
    let mut qmp = qemu.qmp()?;
    let before = dump(&pod)?;
    ensure!(health(&before, "unexplained_bytes")? == 0.0, "before");
    qmp.plug_dimm("dimm0", DIMM as u64)?;
    let after = e2e::wait_for(
        "the DIMM in the collector's smaps read",
        std::time::Duration::from_secs(60),
        || {
            let samples = dump(&pod)?;
            Ok((health(&samples, "unexplained_bytes")? > 0.0).then_some(samples))
        },
    )?;
    let resident = |s: &[Sample]| guest_bytes(s, "resident");
    let grown = resident(&after)? - resident(&before)?;
    let own_grown = own_memory(&after)? - own_memory(&before)?;
    let unexplained = health(&after, "unexplained_bytes")?;
    println!(
        "hot-plug of 256 MiB: resident {} -> {}, own {} -> {}, unexplained {unexplained}",
        resident(&before)?,
        resident(&after)?,
        own_memory(&before)?,
        own_memory(&after)?,
    );
    ensure!(unexplained == DIMM, "unexplained {unexplained}");
    // The paused guest touches nothing meanwhile; the DIMM is preallocated, so it is resident
    // whole. QEMU's own memory grows only by what adding a device allocates: about 0.2 MiB when
    // measured by hand, so 4 MiB (1/64 of the DIMM) is a wide margin.
    ensure!(
        (grown - DIMM).abs() <= 4.0 * MIB,
        "guest resident grew by {grown}"
    );
    ensure!(
        own_grown.abs() <= 4.0 * MIB,
        "QEMU's own memory grew by {own_grown}"
    );
    ensure!(
        guest_bytes(&after, "size")? == 256.0 * MIB,
        "the size is the command line's"
    );
    ensure!(health(&after, "unmatched_backends")? == 0.0, "unmatched");
    Ok(())
}

/// The rows of docs/metrics.md's table of series per launcher pod ("Profiles"): the pod, then the
/// processes besides QEMU that it runs.
const DOCUMENTED_PODS: [(&str, &[&str]); 2] = [
    ("KubeVirt's five processes", &[]),
    ("... and virt-tail", &["virt-tail"]),
];

/// `(default, full)` of the row of docs/metrics.md that starts with `| {row} |`.
fn documented_series(row: &str) -> Result<(usize, usize)> {
    let doc = std::fs::read_to_string(e2e::workspace().join("docs/metrics.md"))?;
    let prefix = format!("| {row} | ");
    let line = doc
        .lines()
        .find(|l| l.starts_with(&prefix))
        .with_context(|| format!("docs/metrics.md has no row {prefix:?}"))?;
    let cells: Vec<&str> = line.split('|').map(str::trim).collect();
    let number = |i: usize| -> Result<usize> {
        cells
            .get(i)
            .and_then(|c| c.parse().ok())
            .with_context(|| format!("{line:?}: cell {i} is no number"))
    };
    Ok((number(2)?, number(3)?))
}

/// The series of a launcher pod with a real QEMU, the collector serving as the webhook injects it
/// (TCP and its socket), are the number docs/metrics.md states for each profile, the default one at
/// most 50; the default profile's are all in the full one.
#[test]
fn a_launcher_pods_series_are_the_documented_count_in_each_profile() -> Result<()> {
    for (row, extra) in DOCUMENTED_PODS {
        let spec = guest("counted", 128, false, false);
        e2e::preflight(&["unshare", "nsenter", "qemu-system-x86_64"])?;
        let mut specs: Vec<_> = launcher::core_processes(NAMESPACE, &spec.vm, None)
            .into_iter()
            .filter(|s| s.key != "qemu")
            .collect();
        for key in extra {
            specs.push(e2e::pod::ProcessSpec::new(
                key,
                &[&format!("/usr/bin/{key}")],
            ));
        }
        let pod = FakePod::with_processes(&PodInfo::launcher(&spec.vm, 300 << 20), specs)?;
        let _qemu = spec.start(&pod)?;
        let mut counts = Vec::new();
        let mut outputs = Vec::new();
        for profile in Profile::ALL {
            let collector =
                collector::Collector::start(&pod, &["--metrics-profile", profile.as_str()])?;
            let samples = e2e::wait_for(
                "the collector's first read of QEMU's smaps",
                std::time::Duration::from_secs(30),
                || {
                    let samples = exposition::parse(&collector.scrape()?.text())?;
                    let read = samples
                        .iter()
                        .any(|s| s.name == "kubevirt_pod_infra_qemu_own_memory_bytes");
                    Ok(read.then_some(samples))
                },
            )
            .with_context(|| collector.log())?;
            println!("{row}, profile {profile}: {} series", samples.len());
            if std::env::var_os("SHOW_SERIES").is_some() {
                for s in &samples {
                    println!("  {} {:?} {}", s.name, s.labels, s.value);
                }
            }
            counts.push(samples.len());
            outputs.push(samples);
        }
        let (default, full) = documented_series(row)?;
        ensure!(
            counts == [default, full],
            "{row}: {counts:?} series (default, full); docs/metrics.md says {default} and {full}"
        );
        ensure!(
            default <= 50,
            "{row}: {default} series in the default profile"
        );
        let [lean, all] = [&outputs[0], &outputs[1]];
        for sample in lean {
            ensure!(
                all.iter()
                    .any(|s| s.name == sample.name && s.labels == sample.labels),
                "{} {:?} is not in the full profile",
                sample.name,
                sample.labels
            );
        }
    }
    Ok(())
}
