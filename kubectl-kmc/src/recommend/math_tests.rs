//! Table tests of the quantile, ratio, addedOverhead and budget math.

use super::*;

const DAY: f64 = 86_400.0;

fn settings() -> Settings {
    Settings {
        range: Duration::from_secs(7 * 86_400),
        quantile: 0.99,
        margin: 0.10,
        min_history: Duration::from_secs(86_400),
        min_vms: 3,
        resolution: Duration::from_secs(60),
        current_ratio: 1.0,
    }
}

fn vm(name: &str, peak_mi: f64, estimate_mi: f64, span: f64) -> VmHistory {
    VmHistory {
        namespace: "vms".into(),
        vm: name.into(),
        peak: Some(peak_mi * MI),
        estimate: Some((estimate_mi * MI, EstimateSource::Pod)),
        span_seconds: span,
        vcpus: Some(2),
        guest_memory: Some(2048.0 * MI),
        ..VmHistory::default()
    }
}

#[test]
fn nearest_rank_quantiles() {
    let values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
    let cases = [
        (0.99, 10.0),
        (0.9, 9.0),
        (0.5, 5.0),
        (0.05, 1.0),
        (1.0, 10.0),
        (0.11, 2.0),
    ];
    for (q, want) in cases {
        assert_eq!(nearest_rank(&values, q), want, "q={q}");
    }
    assert_eq!(nearest_rank(&[3.0, 1.0, 2.0], 0.99), 3.0);
    assert_eq!(nearest_rank(&[], 0.5), 0.0);
}

#[test]
fn ratios() {
    let cases = [
        (1.0, 0.10, 1.10),
        (1.2, 0.10, 1.32),
        (1.234, 0.0, 1.24),
        (0.5, 0.10, 1.0),
        (0.95, 0.05, 1.0),
        (1.5, 0.0, 1.5),
    ];
    for (quantile, margin, want) in cases {
        let got = ratio_for(quantile, margin);
        assert!(
            (got - want).abs() < 1e-9,
            "{quantile} {margin}: {got} != {want}"
        );
    }
}

#[test]
fn fleet_ratio_and_outlier() {
    // Needed ratios 1.0, 1.1, 1.2, 2.0; the 0.75 quantile is 1.2, × 1.1 = 1.32.
    let fleet = [
        vm("a", 200.0, 200.0, 3.0 * DAY),
        vm("b", 220.0, 200.0, 3.0 * DAY),
        vm("c", 240.0, 200.0, 3.0 * DAY),
        vm("leak", 400.0, 200.0, 3.0 * DAY),
        vm("new", 999.0, 200.0, 0.25 * DAY),
    ];
    let advice = recommend(
        &fleet,
        &Settings {
            quantile: 0.75,
            ..settings()
        },
    )
    .unwrap();
    assert!((advice.quantile_ratio - 1.2).abs() < 1e-12);
    assert!((advice.ratio - 1.32).abs() < 1e-12);
    let added: Vec<(&str, Option<u64>)> = advice
        .vms
        .iter()
        .map(|v| (v.vm.as_str(), v.added_overhead_mi))
        .collect();
    // leak: 400 × 1.1 − 1.32 × 200 = 440 − 264 = 176Mi.
    assert_eq!(
        added,
        [("leak", Some(176)), ("c", None), ("b", None), ("a", None)]
    );
    assert_eq!(advice.left_out.len(), 1);
    assert_eq!(
        advice.left_out[0].why,
        "6h of history, less than --min-history 1d"
    );
    assert_eq!(advice.shortest_span, 3.0 * DAY);
    assert_eq!(
        advice.groups,
        [Group {
            shape: "2vCPU/2Gi".into(),
            vms: 4,
            max_needed_ratio: 2.0
        }]
    );
}

#[test]
fn current_ratio_divides_the_estimates() {
    let fleet = [
        vm("a", 300.0, 300.0, DAY),
        vm("b", 300.0, 300.0, DAY),
        vm("c", 300.0, 300.0, DAY),
    ];
    let s = Settings {
        current_ratio: 1.5,
        margin: 0.0,
        ..settings()
    };
    let advice = recommend(&fleet, &s).unwrap();
    assert_eq!(advice.vms[0].estimate, 200.0 * MI);
    assert!((advice.ratio - 1.5).abs() < 1e-12);
    assert!(matches!(
        recommend(
            &fleet,
            &Settings {
                current_ratio: 0.5,
                ..settings()
            }
        ),
        Err(RecommendError::CurrentRatio)
    ));
}

#[test]
fn refuses_too_little_data() {
    let mut no_estimate = vm("d", 100.0, 100.0, 3.0 * DAY);
    no_estimate.estimate = None;
    let mut no_split = vm("e", 100.0, 100.0, 3.0 * DAY);
    no_split.peak = None;
    let fleet = [
        vm("a", 100.0, 100.0, 3.0 * DAY),
        vm("b", 100.0, 100.0, 3.0 * DAY),
        vm("c", 100.0, 100.0, 3600.0),
        no_estimate,
        no_split,
    ];
    let error = recommend(&fleet, &settings()).unwrap_err();
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
    assert!(
        recommend(
            &fleet,
            &Settings {
                min_vms: 2,
                ..settings()
            }
        )
        .is_ok()
    );
}

#[test]
fn shapes() {
    let mut v = vm("a", 1.0, 1.0, 1.0);
    assert_eq!(shape(&v), "2vCPU/2Gi");
    v.guest_memory = Some(1536.0 * MI);
    assert_eq!(shape(&v), "2vCPU/1536Mi");
    v.vcpus = None;
    v.guest_memory = None;
    assert_eq!(shape(&v), "?vCPU/?");
    v.instancetype = Some("u1.medium".into());
    assert_eq!(shape(&v), "u1.medium");
}

#[test]
fn budgets() {
    let mut v = vm("a", 1.0, 1.0, 1.0);
    v.role_peaks = [
        ("virt-launcher", 130.0),
        ("virt-launcher-monitor", 20.0),
        ("virtqemud", 40.0),
        ("qemu", 55.0),
        ("passt", 500.0),
    ]
    .iter()
    .map(|(r, mi)| ((*r).to_owned(), mi * MI))
    .collect();
    v.page_tables_peak = Some(5.0 * MI);
    let over = over_budget(&v);
    let over: Vec<(&str, f64)> = over
        .iter()
        .map(|o| (o.role.as_str(), o.budget / MI))
        .collect();
    // qemu: 30 + 8 (IOThread) + 2 × 8 = 54Mi; page tables: 2048Mi / 512 = 4Mi.
    assert_eq!(
        over,
        [
            ("virt-launcher", 100.0),
            ("qemu", 54.0),
            ("page_tables", 4.0)
        ]
    );
}
