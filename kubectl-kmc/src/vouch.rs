//! Which series `top` and `recommend` may count as a VM's; no I/O.
//!
//! The fleet is whatever carries the collector's series, and a tenant can make a pod carry them:
//! one labelled for the direct PodMonitor is scraped as it is, in a namespace that never opted in,
//! under any `name` it chooses. So a series counts only when KubeVirt itself vouches for its VM:
//! virt-controller's `kubevirt_vmi_info{namespace, name, vmi_pod}` says which VMIs exist and which
//! launcher pod runs each (the pod it created, labelled `kubevirt.io/created-by=<VMI uid>`, that
//! runs on the VMI's node). It is read from KubeVirt's own scrape job only (`--kubevirt-job`):
//! the direct PodMonitor does not honour a target's labels, so a tenant's pod that exports
//! `kubevirt_vmi_info` gets its own `job`, never KubeVirt's, and the relay forwards none.
//!
//! - A VMI that KubeVirt names no pod for in the range (a release before `vmi_pod`, or a VMI that
//!   never ran while scraped) vouches for its `(namespace, name)`;
//! - one that names pods vouches for those pods only.
//!
//! Values that are not finite, non-negative numbers are left out too, per series. Every series
//! left out is counted by reason ([`Tally`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::fleet::VmKey;
use crate::prom::Sample;

/// KubeVirt's scrape job as virt-operator's ServiceMonitor names it (the Service
/// `kubevirt-prometheus-metrics`).
pub const KUBEVIRT_JOB: &str = "kubevirt-prometheus-metrics";

/// What `kubevirt_vmi_info` writes where it names no pod.
const NO_POD: &str = "<none>";

/// Why a series was not counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ignored {
    /// KubeVirt knows no VMI of that namespace and name.
    NoVmi,
    /// KubeVirt names other launcher pods for that VMI.
    NotTheVmisPod,
    /// The value is NaN.
    NotANumber,
    /// The value is +Inf or -Inf.
    Infinite,
    /// The value is below zero.
    Negative,
}

/// How many series were left out, by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tally(pub BTreeMap<Ignored, usize>);

/// The VMIs KubeVirt reports, with the pods it names for each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Vouchers {
    /// From `kubevirt_vmi_info`.
    Kubevirt(BTreeMap<VmKey, BTreeSet<String>>),
    /// `--allow-unvouched` where KubeVirt's series are absent: every series counts.
    Unvouched,
}

/// The vouchers and the count of what they left out: what every answer passes through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Screen {
    pub vouchers: Vouchers,
    pub tally: Tally,
}

/// No `kubevirt_vmi_info` at all, and `--allow-unvouched` not given.
#[derive(Debug, thiserror::Error)]
#[error(
    "Prometheus has no kubevirt_vmi_info{{job=\"{job}\"}}{range}: KubeVirt's own metrics are not scraped, so nothing vouches that the collector's series come from VMs, and any pod can pose as one; scrape KubeVirt (virt-operator's ServiceMonitor kubevirt-prometheus-metrics), name its job with --kubevirt-job, or pass --allow-unvouched to count every series as a VM"
)]
pub struct NoVouchers {
    pub job: String,
    /// ` in the last 7d`, or empty for now.
    pub range: String,
}

// === impl Ignored ===

impl Ignored {
    /// Why, in the words the outputs use.
    pub fn describe(self) -> &'static str {
        match self {
            Ignored::NoVmi => {
                "KubeVirt reports no VMI of that namespace and name (kubevirt_vmi_info): not a VM, whatever its labels say"
            }
            Ignored::NotTheVmisPod => {
                "KubeVirt names other launcher pods for that VMI (kubevirt_vmi_info's vmi_pod)"
            }
            Ignored::NotANumber => "the value is NaN",
            Ignored::Infinite => "the value is infinite",
            Ignored::Negative => "the value is negative",
        }
    }
}

/// Whether `value` may be counted: a finite number, at least 0.
pub fn vet(value: f64) -> Result<f64, Ignored> {
    match value {
        v if v.is_nan() => Err(Ignored::NotANumber),
        v if v.is_infinite() => Err(Ignored::Infinite),
        v if v < 0.0 => Err(Ignored::Negative),
        v => Ok(v),
    }
}

// === impl Tally ===

impl Tally {
    pub fn add(&mut self, why: Ignored) {
        *self.0.entry(why).or_default() += 1;
    }

    pub fn total(&self) -> usize {
        self.0.values().sum()
    }

    /// One line per reason: `3 series: <why>`.
    pub fn lines(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|(why, n)| format!("{n} series left out: {}", why.describe()))
            .collect()
    }
}

// === impl Vouchers ===

impl Vouchers {
    /// From the answer to [`query`]; `None` when it is empty.
    pub fn from_samples(samples: &[Sample]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut vmis: BTreeMap<VmKey, BTreeSet<String>> = BTreeMap::new();
        for s in samples {
            let key = (s.label("namespace").to_owned(), s.label("name").to_owned());
            let pods = vmis.entry(key).or_default();
            let pod = s.label("vmi_pod");
            if !pod.is_empty() && pod != NO_POD {
                pods.insert(pod.to_owned());
            }
        }
        Some(Vouchers::Kubevirt(vmis))
    }

    /// Whether KubeVirt vouches for a series with these labels: its VMI exists, and the pod is
    /// the VMI's where the series names one and KubeVirt named any.
    pub fn judge(&self, labels: &BTreeMap<String, String>) -> Result<(), Ignored> {
        let Vouchers::Kubevirt(vmis) = self else {
            return Ok(());
        };
        let label = |name: &str| labels.get(name).map_or("", String::as_str);
        let key = (label("namespace").to_owned(), label("name").to_owned());
        let pods = vmis.get(&key).ok_or(Ignored::NoVmi)?;
        let pod = label("pod");
        if pod.is_empty() || pods.is_empty() || pods.contains(pod) {
            Ok(())
        } else {
            Err(Ignored::NotTheVmisPod)
        }
    }
}

/// The PromQL of the vouchers: every VMI and pod KubeVirt named over `range` (PromQL's duration
/// syntax), or now when `None`.
pub fn query(job: &str, range: Option<&str>) -> String {
    let selector = format!("kubevirt_vmi_info{{job=\"{}\"}}", promql_string(job));
    match range {
        Some(range) => {
            format!("group by (namespace, name, vmi_pod) (last_over_time({selector}[{range}]))")
        }
        None => format!("group by (namespace, name, vmi_pod) ({selector})"),
    }
}

/// `text` inside a PromQL double-quoted string.
pub fn promql_string(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

// === impl Screen ===

impl Screen {
    pub fn new(vouchers: Vouchers) -> Self {
        Self {
            vouchers,
            tally: Tally::default(),
        }
    }

    /// Whether a series with these labels and values counts; counts it when not.
    pub fn admit(
        &mut self,
        labels: &BTreeMap<String, String>,
        mut values: impl Iterator<Item = f64>,
    ) -> bool {
        let verdict = self
            .vouchers
            .judge(labels)
            .and_then(|()| values.try_for_each(|v| vet(v).map(drop)));
        match verdict {
            Ok(()) => true,
            Err(why) => {
                self.tally.add(why);
                false
            }
        }
    }

    /// The samples that count.
    pub fn samples(&mut self, samples: Vec<Sample>) -> Vec<Sample> {
        samples
            .into_iter()
            .filter(|s| self.admit(&s.labels, std::iter::once(s.value)))
            .collect()
    }

    /// Whether KubeVirt's series were there to vouch.
    pub fn vouched(&self) -> bool {
        matches!(self.vouchers, Vouchers::Kubevirt(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(pairs: &[(&str, &str)], value: f64) -> Sample {
        Sample::new(pairs, value)
    }

    fn vmi(ns: &str, name: &str, pod: &str) -> Sample {
        sample(&[("namespace", ns), ("name", name), ("vmi_pod", pod)], 1.0)
    }

    #[test]
    fn kubevirt_vouches_for_its_vmis_and_their_pods() {
        let vouchers = Vouchers::from_samples(&[
            vmi("vms", "a", "virt-launcher-a-1"),
            vmi("vms", "a", "virt-launcher-a-2"),
            vmi("vms", "a", NO_POD),
            vmi("vms", "old", ""),
            vmi("other", "b", NO_POD),
        ])
        .unwrap();
        let judge = |ns: &str, name: &str, pod: &str| {
            let s = sample(&[("namespace", ns), ("name", name), ("pod", pod)], 1.0);
            vouchers.judge(&s.labels)
        };
        let cases = [
            (("vms", "a", "virt-launcher-a-1"), Ok(())),
            (("vms", "a", "virt-launcher-a-2"), Ok(())),
            (("vms", "a", ""), Ok(())),
            (("vms", "a", "fake"), Err(Ignored::NotTheVmisPod)),
            (("vms", "old", "virt-launcher-old-1"), Ok(())),
            (("other", "b", "any"), Ok(())),
            (("tenant", "a", "virt-launcher-a-1"), Err(Ignored::NoVmi)),
            (("vms", "vm;touch /tmp/x;#", "p"), Err(Ignored::NoVmi)),
        ];
        for ((ns, name, pod), want) in cases {
            assert_eq!(judge(ns, name, pod), want, "{ns}/{name} {pod}");
        }
        assert_eq!(Vouchers::from_samples(&[]), None);
        assert_eq!(Vouchers::Unvouched.judge(&BTreeMap::new()), Ok(()));
    }

    #[test]
    fn values_must_be_finite_and_not_negative() {
        let cases = [
            (0.0, Ok(0.0)),
            (1.5, Ok(1.5)),
            (f64::NAN, Err(Ignored::NotANumber)),
            (f64::INFINITY, Err(Ignored::Infinite)),
            (f64::NEG_INFINITY, Err(Ignored::Infinite)),
            (-1.0, Err(Ignored::Negative)),
        ];
        for (value, want) in cases {
            assert_eq!(vet(value), want, "{value}");
        }
    }

    #[test]
    fn a_screen_counts_what_it_leaves_out() {
        let vouchers = Vouchers::from_samples(&[vmi("vms", "a", "p")]).unwrap();
        let mut screen = Screen::new(vouchers);
        let kept = screen.samples(vec![
            sample(&[("namespace", "vms"), ("name", "a"), ("pod", "p")], 1.0),
            sample(
                &[("namespace", "vms"), ("name", "a"), ("pod", "p")],
                f64::NAN,
            ),
            sample(&[("namespace", "vms"), ("name", "a"), ("pod", "q")], 1.0),
            sample(&[("namespace", "t"), ("name", "x\n"), ("pod", "p")], 1.0),
            sample(&[("namespace", "t"), ("name", "y"), ("pod", "p")], -1.0),
        ]);
        assert_eq!(kept.len(), 1);
        assert_eq!(screen.tally.total(), 4);
        assert_eq!(
            screen.tally.lines(),
            [
                "2 series left out: KubeVirt reports no VMI of that namespace and name (kubevirt_vmi_info): not a VM, whatever its labels say",
                "1 series left out: KubeVirt names other launcher pods for that VMI (kubevirt_vmi_info's vmi_pod)",
                "1 series left out: the value is NaN",
            ]
        );
    }

    #[test]
    fn queries_read_kubevirts_job_only() {
        assert_eq!(
            query(KUBEVIRT_JOB, Some("7d")),
            "group by (namespace, name, vmi_pod) (last_over_time(kubevirt_vmi_info{job=\"kubevirt-prometheus-metrics\"}[7d]))"
        );
        assert_eq!(
            query("a\"b", None),
            "group by (namespace, name, vmi_pod) (kubevirt_vmi_info{job=\"a\\\"b\"})"
        );
    }
}
