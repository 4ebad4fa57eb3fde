//! Table tests of the method: leaks, the OOM bound, the outlier fence, the small-fleet median,
//! the quantile, the ratio, addedOverhead and the costs.

use std::time::Duration;

use super::*;

const HOUR: f64 = 3600.0;

fn settings() -> Settings {
    Settings {
        range: Duration::from_secs(7 * 86_400),
        quantile: 0.9,
        margin: 0.10,
        min_history: Duration::from_secs(86_400),
        min_vms: 3,
        resolution: Duration::from_secs(60),
        current_ratio: 1.0,
    }
}

fn vm(name: &str, peak_mi: f64, estimate_mi: f64) -> VmHistory {
    VmHistory {
        namespace: "vms".into(),
        vm: name.into(),
        pods: 1,
        peak: Some(peak_mi * MI),
        estimate: Some(estimate_mi * MI),
        span_seconds: 3.0 * DAY,
        vcpus: Some(2),
        guest_memory: Some(2048.0 * MI),
        ..VmHistory::default()
    }
}

fn fleet(vms: Vec<VmHistory>) -> Fleet {
    Fleet {
        vms,
        release: release::Facts::default(),
        screen: Screened {
            vouched: true,
            ..Screened::default()
        },
    }
}

/// Hourly means over `hours` from t = 0: `f(hour)` Mi.
fn trend(component: &str, hours: usize, f: impl Fn(f64) -> f64) -> Trend {
    Trend {
        pod: "pod-0".into(),
        component: component.into(),
        points: (0..hours)
            .map(|h| (h as f64 * HOUR, f(h as f64) * MI))
            .collect(),
    }
}

fn close(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() < 1e-9, "{what}: got {got}, want {want}");
}

#[test]
fn nearest_rank_quantiles() {
    let cases = [
        (10, 0.99, 10),
        (10, 0.9, 9),
        (10, 0.5, 5),
        (10, 0.05, 1),
        (10, 1.0, 10),
        (10, 0.11, 2),
        (300, 0.9, 270),
        (3, 0.99, 3),
        (0, 0.5, 1),
    ];
    for (n, q, want) in cases {
        assert_eq!(nearest_rank(n, q), want, "n={n} q={q}");
    }
}

#[test]
fn ratios_round_up_to_hundredths_and_never_below_one() {
    let cases = [
        (1.0, 0.10, 1.10),
        (1.2, 0.10, 1.32),
        (1.234, 0.0, 1.24),
        (0.5, 0.10, 1.0),
        (0.95, 0.05, 1.0),
        (1.5, 0.0, 1.5),
    ];
    for (basis, margin, want) in cases {
        close(ratio_for(basis, margin), want, &format!("{basis} {margin}"));
    }
}

#[test]
fn small_fleets_cover_their_median_and_larger_ones_the_quantile() {
    let nine: Vec<f64> = (1..=9).map(f64::from).collect();
    let ten: Vec<f64> = (1..=10).map(f64::from).collect();
    let cases: [(&[f64], f64, Method, f64); 7] = [
        // ⌈0.9 · 9⌉ = 9: the quantile would be the largest.
        (&nine, 0.9, Method::Median { of: 9 }, 5.0),
        (&ten, 0.9, Method::Quantile { rank: 9, of: 10 }, 9.0),
        (&ten, 0.99, Method::Median { of: 10 }, 5.5),
        (&ten, 1.0, Method::Quantile { rank: 10, of: 10 }, 10.0),
        (&[2.0, 1.0], 0.9, Method::Median { of: 2 }, 1.5),
        (&[1.3], 0.5, Method::Median { of: 1 }, 1.3),
        (&[], 0.9, Method::Nothing, 0.0),
    ];
    for (needs, q, method, value) in cases {
        assert_eq!(basis(needs, q), (method, value), "{needs:?} q={q}");
    }
}

#[test]
fn the_fence_stands_three_scaled_mads_or_a_fifth_above_the_median() {
    // Needs, then the median, the MAD and the fence.
    type Case<'a> = (&'a [f64], Option<(f64, f64, f64)>);
    let cases: [Case<'_>; 5] = [
        // A tight fleet: MAD 0.01, so the least gap decides.
        (&[0.90, 0.91, 0.92, 0.93, 0.94], Some((0.92, 0.01, 1.12))),
        // A spread fleet: 3 × 1.4826 × 0.1 = 0.44478 above the median.
        (&[0.6, 0.8, 0.9, 1.0, 1.2], Some((0.9, 0.1, 1.34478))),
        (&[1.0, 1.0, 1.0, 2.5], Some((1.0, 0.0, 1.2))),
        (&[0.8, 1.0], Some((0.9, 0.1, 1.344_78))),
        (&[], None),
    ];
    for (needs, want) in cases {
        let got = fence(needs).map(|f| (f.median, f.mad, f.at));
        match (got, want) {
            (Some(g), Some(w)) => {
                close(g.0, w.0, "median");
                close(g.1, w.1, "mad");
                close(g.2, w.2, "fence");
            }
            (g, w) => assert_eq!(g, w, "{needs:?}"),
        }
    }
}

#[test]
fn leaks_grow_in_both_halves_of_a_pods_history() {
    let days3 = 72;
    let cases: [(&str, Trend, Option<f64>); 8] = [
        ("steady", trend("virtqemud", days3, |_| 40.0), None),
        (
            "leaks 24Mi a day",
            trend("virtqemud", days3, |h| 40.0 + h),
            Some(24.0),
        ),
        (
            "warms up for six hours, then flat",
            trend("qemu", days3, |h| 40.0 + 5.0 * h.min(6.0)),
            None,
        ),
        (
            "a spike of 150Mi for an hour",
            trend("virtqemud", days3, |h| if h == 30.0 { 190.0 } else { 40.0 }),
            None,
        ),
        (
            "grows only in its second half",
            trend("qemu", days3, |h| 40.0 + (h - 36.0).max(0.0)),
            None,
        ),
        ("shrinks", trend("qemu", days3, |h| 200.0 - h), None),
        (
            "too short to tell: three points a half",
            trend("qemu", 6, |h| 40.0 + 100.0 * h),
            None,
        ),
        (
            "slow: 6Mi a day grows 9Mi a half over three days",
            trend("qemu", days3, |h| 40.0 + h / 4.0),
            None,
        ),
    ];
    for (what, trend, per_day_mi) in cases {
        let got = leak(&trend);
        assert_eq!(
            got.as_ref().map(|l| (l.per_day / MI * 1e6).round() / 1e6),
            per_day_mi,
            "{what}: {got:?}"
        );
        if let Some(leak) = got {
            assert_eq!((leak.since, leak.component.as_str()), (0.0, "virtqemud"));
            assert!(leak.growth.iter().all(|g| *g > LEAK_MIN_GROWTH), "{what}");
        }
    }
}

#[test]
fn a_vm_reports_each_leaking_component_once_from_its_latest_pod() {
    let mut old = trend("qemu", 48, |h| 40.0 + h);
    old.pod = "pod-1".into();
    let mut new = trend("qemu", 48, |h| 40.0 + 2.0 * h);
    new.pod = "pod-2".into();
    new.points.iter_mut().for_each(|p| p.0 += 48.0 * HOUR);
    let found = leaks(&[new, old, trend("virtlogd", 48, |_| 15.0)]);
    let found: Vec<(&str, &str)> = found
        .iter()
        .map(|l| (l.pod.as_str(), l.component.as_str()))
        .collect();
    assert_eq!(found, [("pod-2", "qemu")]);
}

#[test]
fn an_oom_kill_is_bounded_by_the_allowance_or_the_peak() {
    let kill = |allowance: Option<f64>| OomKill {
        pod: "p".into(),
        at: 0.0,
        allowance: allowance.map(|a| a * MI),
    };
    let cases = [
        // The guest RAM was all charged: the overhead reached the allowance, past the last scrape.
        (270.0, vec![kill(Some(280.0))], 280.0),
        // Untouched guest RAM left room: the peak measured is the better bound.
        (453.0, vec![kill(Some(280.0))], 453.0),
        // No limit, no allowance.
        (260.0, vec![kill(None)], 260.0),
        (260.0, vec![kill(None), kill(Some(300.0))], 300.0),
    ];
    for (peak, kills, want) in cases {
        close(
            oom_bound(peak * MI, &kills) / MI,
            want,
            &format!("{kills:?}"),
        );
    }
}

/// Nine healthy VMs needing 1.00 to 1.08, one outlier, one leaking, one OOM-killed.
fn trap_fleet() -> Vec<VmHistory> {
    let mut vms: Vec<VmHistory> = (0..9)
        .map(|i| vm(&format!("ok-{i}"), 250.0 + 2.5 * f64::from(i), 250.0))
        .collect();
    vms.push(vm("outlier", 400.0, 250.0));
    let mut leaking = vm("leak", 300.0, 250.0);
    leaking.trends = vec![trend("virtqemud", 72, |h| 40.0 + h)];
    vms.push(leaking);
    let mut killed = vm("oom", 270.0, 250.0);
    killed.oom_kills = vec![OomKill {
        pod: "virt-launcher-oom-1".into(),
        at: 1000.0,
        allowance: Some(280.0 * MI),
    }];
    vms.push(killed);
    vms
}

#[test]
fn set_aside_vms_never_drive_the_ratio_and_get_their_own_added_overhead() {
    let advice = recommend(&fleet(trap_fleet()), &settings()).unwrap();
    // Nine needs 1.00 .. 1.08: fewer than 10, so their median 1.04; × 1.1 = 1.144 → 1.15.
    assert_eq!(advice.method, Method::Median { of: 9 });
    close(advice.basis_ratio, 1.04, "basis");
    close(advice.ratio, 1.15, "ratio");
    // The fence is drawn before outliers are known: from the ten VMs neither killed nor leaking,
    // median 1.045, MAD 0.025, and 3 × 1.4826 × 0.025 < 0.2.
    let fence = advice.fence.expect("fence");
    close(fence.median, 1.045, "median");
    close(fence.mad, 0.025, "mad");
    close(fence.at, 1.245, "fence");
    let by_name: BTreeMap<&str, &VmAdvice> =
        advice.vms.iter().map(|v| (v.vm.as_str(), v)).collect();
    let row = |name: &str| {
        let v = by_name[name];
        (v.set_aside, v.added_overhead_mi)
    };
    // outlier: 400 × 1.1 − 1.15 × 250 = 152.5 → 153Mi.
    assert_eq!(row("outlier"), (Some(SetAside::Outlier), Some(153)));
    // leak: 300 × 1.1 − 287.5 = 42.5 → 43Mi.
    assert_eq!(row("leak"), (Some(SetAside::Leak), Some(43)));
    // oom: sized from its allowance 280 (not its peak 270): 308 − 287.5 = 20.5 → 21Mi.
    assert_eq!(row("oom"), (Some(SetAside::OomKilled), Some(21)));
    close(by_name["oom"].at_least.unwrap_or(0.0) / MI, 280.0, "bound");
    close(by_name["oom"].needed_ratio, 1.12, "oom need");
    // ok-i needs 1 + i/100; with the margin, ok-5 to ok-8 need more than 1.15:
    // ok-8: 297 − 287.5 = 9.5 → 10Mi; ok-6: 291.5 − 287.5 = 4Mi.
    assert_eq!(row("ok-8"), (None, Some(10)));
    assert_eq!(row("ok-6"), (None, Some(4)));
    assert_eq!(row("ok-4"), (None, None));
    let leak = &by_name["leak"].leaks[0];
    assert_eq!(leak.component, "virtqemud");
    close(leak.per_day / MI, 24.0, "leak per day");
}

#[test]
fn the_old_default_would_have_let_one_vm_size_them_all() {
    // With nothing set aside and q = 0.99, twelve VMs' ratio would be the outlier's 1.6 × 1.1.
    let all: Vec<f64> = trap_fleet()
        .iter()
        .map(|v| v.peak.unwrap_or(0.0) / v.estimate.unwrap_or(1.0))
        .collect();
    let (_, worst) = basis(&all, 1.0);
    close(ratio_for(worst, 0.1), 1.76, "old ratio");
    let advice = recommend(&fleet(trap_fleet()), &settings()).unwrap();
    assert!(advice.ratio < 1.2, "{}", advice.ratio);
}

#[test]
fn costs_sum_the_ratio_change_over_every_estimate_and_every_added_overhead() {
    let advice = recommend(&fleet(trap_fleet()), &settings()).unwrap();
    // 1.0 → 1.15 on twelve estimates of 250Mi: 37.5Mi each, 450Mi in all.
    close(advice.cost.ratio_bytes / MI, 450.0, "ratio cost");
    close(advice.cost.ratio_per_vm[0] / MI, 37.5, "least");
    close(advice.cost.ratio_per_vm[1] / MI, 37.5, "most");
    assert_eq!(advice.cost.vms, 12);
    // outlier 153, leak 43, oom 21, ok-8 10, ok-7 7 (6.75), ok-6 4, ok-5 2 (1.25).
    assert_eq!((advice.cost.added_mi, advice.cost.added_vms), (240, 7));
    // A current ratio of 1.5 over estimates of 250Mi: 166.7Mi each without it, needing 1.2; the
    // median × 1.1 = 1.32 saves 0.18 × 166.7 = 30Mi on each VM.
    let s = Settings {
        current_ratio: 1.5,
        ..settings()
    };
    let generous = vec![
        vm("a", 200.0, 250.0),
        vm("b", 200.0, 250.0),
        vm("c", 200.0, 250.0),
    ];
    let advice = recommend(&fleet(generous), &s).unwrap();
    close(advice.ratio, 1.32, "ratio");
    close(advice.cost.ratio_bytes / MI, -90.0, "savings");
    assert_eq!(advice.cost.added_vms, 0);
}

#[test]
fn a_tight_fleet_has_no_outlier_and_every_vm_set_aside_leaves_ratio_one() {
    let tight: Vec<VmHistory> = (0..12)
        .map(|i| vm(&format!("t-{i}"), 250.0 + 4.0 * f64::from(i), 250.0))
        .collect();
    let advice = recommend(&fleet(tight), &settings()).unwrap();
    assert!(advice.vms.iter().all(|v| v.set_aside.is_none()));
    // ⌈0.9 · 12⌉ = 11th of 12: 1.16 × 1.1 = 1.276 → 1.28.
    assert_eq!(advice.method, Method::Quantile { rank: 11, of: 12 });
    close(advice.ratio, 1.28, "ratio");

    let mut killed = trap_fleet();
    killed.retain(|v| v.vm == "oom" || v.vm == "leak");
    let advice = recommend(
        &fleet(killed),
        &Settings {
            min_vms: 2,
            ..settings()
        },
    )
    .unwrap();
    assert_eq!(advice.method, Method::Nothing);
    assert_eq!(advice.fence, None);
    close(advice.ratio, 1.0, "ratio");
    assert!(advice.vms.iter().all(|v| v.added_overhead_mi.is_some()));
}

#[test]
fn current_ratio_divides_the_estimates() {
    let vms = vec![
        vm("a", 300.0, 300.0),
        vm("b", 300.0, 300.0),
        vm("c", 300.0, 300.0),
    ];
    let s = Settings {
        current_ratio: 1.5,
        margin: 0.0,
        ..settings()
    };
    let advice = recommend(&fleet(vms.clone()), &s).unwrap();
    assert_eq!(advice.vms[0].estimate, 200.0 * MI);
    close(advice.ratio, 1.5, "ratio");
    close(advice.cost.ratio_bytes, 0.0, "no change, no cost");
    let s = Settings {
        current_ratio: 0.5,
        ..settings()
    };
    assert_eq!(
        recommend(&fleet(vms), &s),
        Err(RecommendError::CurrentRatio)
    );
}

#[test]
fn refuses_too_little_data() {
    let mut no_estimate = vm("d", 100.0, 100.0);
    no_estimate.estimate = None;
    let mut no_split = vm("e", 100.0, 100.0);
    no_split.peak = None;
    let mut short = vm("c", 100.0, 100.0);
    short.span_seconds = HOUR;
    let vms = vec![
        vm("a", 100.0, 100.0),
        vm("b", 100.0, 100.0),
        short,
        no_estimate,
        no_split,
    ];
    let error = recommend(&fleet(vms.clone()), &settings()).unwrap_err();
    assert!(matches!(
        error,
        RecommendError::TooFewVms {
            qualified: 2,
            left_out: 3,
            ..
        }
    ));
    assert!(error.to_string().starts_with(
        "refusing to recommend: 2 VM(s) with at least 1d of history and an estimate, fewer than --min-vms 3 (3 left out: vms/c: 1h of history"
    ));
    let s = Settings {
        min_vms: 2,
        ..settings()
    };
    assert!(recommend(&fleet(vms), &s).is_ok());
}

#[test]
fn shapes() {
    let mut v = vm("a", 1.0, 1.0);
    assert_eq!(shape(&v), "2vCPU/2Gi");
    v.guest_memory = Some(1536.0 * MI);
    assert_eq!(shape(&v), "2vCPU/1536Mi");
    v.vcpus = None;
    v.guest_memory = None;
    assert_eq!(shape(&v), "?vCPU/?");
    v.instancetype = Some("u1.medium".into());
    assert_eq!(shape(&v), "u1.medium");
}
