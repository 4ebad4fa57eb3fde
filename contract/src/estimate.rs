//! KubeVirt's memory overhead estimate, term by term and release by release (docs/kubevirt.md §5):
//! the budget each measured component of a launcher pod is held to. The collector exports these
//! budgets per pod (`kubevirt_pod_infra_memory_overhead_budget_bytes`), and the recording rules,
//! the dashboard and `kubectl kmc recommend` read them from there, so this is the only copy.
//!
//! A component is what one process costs the pod's memory cgroup beyond guest RAM: its resident
//! memory plus its page tables (QEMU: its resident memory outside guest RAM plus its page tables).
//! Its budget is every term of `GetMemoryOverhead` that pays for that process. QEMU's therefore
//! holds `QemuOverhead`, the per-vCPU, I/O-thread and video terms, the arm64 firmware flash, and the
//! page tables of guest RAM (memory request / 512): QEMU maps guest RAM, so the guest's page tables
//! are QEMU's. Measured with Debian's QEMU under KVM, 2 vCPUs, guest RAM preallocated: `VmPTE` is
//! 2268 kB for 1 GiB (the term: 2048 kB) and 8416 kB for 4 GiB (8192 kB); without guest RAM touched,
//! 204 kB. The page tables of guest RAM alone would exceed their term by QEMU's own 200 kB on every
//! VM, so they are judged together with QEMU's other terms.
//!
//! Terms that pay for no process of the pod (exec probes, SEV, VFIO, dedicated CPUs, downward
//! metrics, `addedOverhead`, the cluster's ratio) are in KubeVirt's total estimate but in no
//! component's budget.

use std::fmt;
use std::str::FromStr;

/// One mebibyte, the unit of every constant below.
pub const MI: u64 = 1 << 20;

/// A KubeVirt release, `major.minor`: the estimate's constants change only with minor releases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Release {
    pub major: u32,
    pub minor: u32,
}

/// The release whose constants apply when the cluster's is not known: the newest release this
/// table was checked against. The collector says on every budget series whether it assumed it.
pub const ASSUMED_RELEASE: Release = Release { major: 1, minor: 9 };

/// The constants of `GetMemoryOverhead` from one release on, in Mi.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Constants {
    /// The first release with these values.
    pub since: Release,
    pub monitor: u64,
    pub launcher: u64,
    pub virtlogd: u64,
    pub virtqemud: u64,
    pub qemu: u64,
    /// The video term, added unless the VMI turns its graphics device off.
    pub video: u64,
}

/// Per vCPU (`coresMemory`).
pub const PER_VCPU_MI: u64 = 8;
/// The static I/O-thread term.
pub const IOTHREAD_MI: u64 = 8;
/// arm64's two UEFI flash devices.
pub const ARM64_FLASH_MI: u64 = 128;
/// The TPM term, for the swtpm process.
pub const SWTPM_MI: u64 = 53;

/// Every change of the per-process constants since v1.0.0, oldest first. Read from
/// `pkg/virt-controller/services/template.go` and `renderresources.go` (v1.0.0 to v1.7.x) and
/// `pkg/hypervisor/kvm/hypervisorbackend.go` (v1.8.0 on) at each tag; 1.10 is KubeVirt's main
/// branch after v1.9.0 (commit `c822873795`, "bump QemuOverhead from 30Mi to 50Mi"), unreleased
/// when read.
pub const RELEASES: [Constants; 4] = [
    Constants {
        since: Release { major: 1, minor: 0 },
        monitor: 25,
        launcher: 100,
        virtlogd: 20,
        virtqemud: 35,
        qemu: 30,
        video: 16,
    },
    Constants {
        since: Release { major: 1, minor: 5 },
        monitor: 25,
        launcher: 100,
        virtlogd: 25,
        virtqemud: 40,
        qemu: 30,
        video: 16,
    },
    Constants {
        since: Release { major: 1, minor: 6 },
        monitor: 25,
        launcher: 100,
        virtlogd: 25,
        virtqemud: 40,
        qemu: 30,
        video: 32,
    },
    Constants {
        since: Release {
            major: 1,
            minor: 10,
        },
        monitor: 25,
        launcher: 100,
        virtlogd: 25,
        virtqemud: 40,
        qemu: 50,
        video: 32,
    },
];

/// What of a VM the budgets depend on, as QEMU's command line shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// KubeVirt takes the VMI's memory request; the collector has the guest's size, which is the
    /// same unless the guest's memory is overcommitted.
    pub memory_request: u64,
    pub vcpus: u32,
    pub video: bool,
    pub tpm: bool,
    pub arm64: bool,
}

/// A budgeted component, named as the collector's roles are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    Monitor,
    Launcher,
    Virtlogd,
    Virtqemud,
    Qemu,
    Swtpm,
}

// === impl Release ===

impl Release {
    /// The constants in force at this release; `None` before v1.0.0.
    pub fn constants(self) -> Option<&'static Constants> {
        RELEASES.iter().rev().find(|c| c.since <= self)
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// `1.9`, `v1.9.0`, `v1.9.0-rc.1`, `1.10.2+build`: major and minor, the rest ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseError(pub String);

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a KubeVirt release: expected MAJOR.MINOR such as 1.9 or v1.9.0",
            self.0
        )
    }
}

impl std::error::Error for ReleaseError {}

impl FromStr for Release {
    type Err = ReleaseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || ReleaseError(text.to_owned());
        let bare = text.strip_prefix('v').unwrap_or(text);
        let mut parts = bare.splitn(3, '.');
        let major = parts.next().ok_or_else(error)?;
        let minor = parts.next().ok_or_else(error)?;
        let minor = minor
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap_or_default();
        let digits = |s: &str| {
            (!s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        Ok(Self {
            major: digits(major).ok_or_else(error)?,
            minor: digits(minor).ok_or_else(error)?,
        })
    }
}

// === impl Component ===

impl Component {
    pub const ALL: [Component; 6] = [
        Self::Monitor,
        Self::Launcher,
        Self::Virtlogd,
        Self::Virtqemud,
        Self::Qemu,
        Self::Swtpm,
    ];

    /// The `component` label: the collector's role name of the process.
    pub fn name(self) -> &'static str {
        match self {
            Self::Monitor => "virt-launcher-monitor",
            Self::Launcher => "virt-launcher",
            Self::Virtlogd => "virtlogd",
            Self::Virtqemud => "virtqemud",
            Self::Qemu => "qemu",
            Self::Swtpm => "swtpm",
        }
    }
}

/// KubeVirt's page-table term for a memory request, as `GetMemoryOverhead` rounds it: the request
/// in whole kB (rounded up), times 1000, divided by 512.
pub fn page_tables(memory_request: u64) -> u64 {
    memory_request.div_ceil(1000).saturating_mul(1000) / 512
}

/// The budget of every component `shape` has, in bytes, in [`Component::ALL`]'s order.
pub fn budgets(shape: &Shape, constants: &Constants) -> Vec<(Component, u64)> {
    let c = constants;
    let qemu = c.qemu
        + PER_VCPU_MI * u64::from(shape.vcpus.max(1))
        + IOTHREAD_MI
        + if shape.video { c.video } else { 0 }
        + if shape.arm64 { ARM64_FLASH_MI } else { 0 };
    let mut out = vec![
        (Component::Monitor, c.monitor * MI),
        (Component::Launcher, c.launcher * MI),
        (Component::Virtlogd, c.virtlogd * MI),
        (Component::Virtqemud, c.virtqemud * MI),
        (
            Component::Qemu,
            qemu * MI + page_tables(shape.memory_request),
        ),
    ];
    if shape.tpm {
        out.push((Component::Swtpm, SWTPM_MI * MI));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(major: u32, minor: u32) -> Release {
        Release { major, minor }
    }

    #[test]
    fn releases_parse_as_kubevirt_tags_and_flags_spell_them() {
        let table = [
            ("1.9", Some(release(1, 9))),
            ("v1.9.0", Some(release(1, 9))),
            ("v1.10.0-rc.1", Some(release(1, 10))),
            ("1.8.4+build.7", Some(release(1, 8))),
            ("v1.9-rc.0", Some(release(1, 9))),
            ("", None),
            ("1", None),
            ("v", None),
            ("one.nine", None),
            ("1.x", None),
            ("99999.1", None),
            ("-1.9", None),
        ];
        for (text, want) in table {
            assert_eq!(text.parse::<Release>().ok(), want, "{text:?}");
        }
    }

    #[test]
    fn each_release_gets_the_constants_read_at_its_tag() {
        let table = [
            (release(0, 59), None),
            (release(1, 0), Some((20, 35, 30, 16))),
            (release(1, 4), Some((20, 35, 30, 16))),
            (release(1, 5), Some((25, 40, 30, 16))),
            (release(1, 6), Some((25, 40, 30, 32))),
            (release(1, 9), Some((25, 40, 30, 32))),
            (release(1, 10), Some((25, 40, 50, 32))),
            (release(2, 0), Some((25, 40, 50, 32))),
        ];
        for (r, want) in table {
            let got = r
                .constants()
                .map(|c| (c.virtlogd, c.virtqemud, c.qemu, c.video));
            assert_eq!(got, want, "{r}");
        }
        assert!(RELEASES.windows(2).all(|w| w[0].since < w[1].since));
        assert_eq!(ASSUMED_RELEASE.to_string(), "1.9");
    }

    #[test]
    fn page_tables_round_as_kubevirt_does() {
        // 1 GiB: ceil(1073741824 / 1000) = 1073742 kB -> 1073742000 / 512.
        assert_eq!(page_tables(1 << 30), 2_097_152);
        assert_eq!(page_tables(0), 0);
        assert_eq!(page_tables(1), 1);
        assert_eq!(page_tables(4 << 30), 8_388_609);
        assert_eq!(page_tables(u64::MAX), u64::MAX / 512);
    }

    #[test]
    fn budgets_hold_every_term_of_the_process_they_pay_for() {
        let v1_9 = release(1, 9).constants().copied().unwrap_or(RELEASES[0]);
        let gib = 1 << 30;
        let small = Shape {
            memory_request: gib,
            vcpus: 1,
            video: true,
            ..Shape::default()
        };
        let big = Shape {
            memory_request: 16 * gib,
            vcpus: 4,
            video: true,
            tpm: true,
            arm64: false,
        };
        let headless = Shape {
            memory_request: gib,
            vcpus: 2,
            ..Shape::default()
        };
        let qemu = |shape: &Shape, constants: &Constants| {
            budgets(shape, constants)
                .into_iter()
                .find(|(c, _)| *c == Component::Qemu)
                .map(|(_, b)| b)
        };
        // 30 + 8 + 8 + 32 Mi and 1 GiB's page tables.
        assert_eq!(qemu(&small, &v1_9), Some(78 * MI + 2_097_152));
        assert_eq!(qemu(&big, &v1_9), Some(102 * MI + page_tables(16 * gib)));
        assert_eq!(qemu(&headless, &v1_9), Some(54 * MI + 2_097_152));
        // Video was 16Mi before 1.6; QemuOverhead is 50Mi after 1.9.
        assert_eq!(
            qemu(&small, &RELEASES[0]),
            Some(62 * MI + 2_097_152),
            "v1.0"
        );
        assert_eq!(
            qemu(&small, &RELEASES[3]),
            Some(98 * MI + 2_097_152),
            "v1.10"
        );
        // A VM without a vCPU count is budgeted as KubeVirt budgets it: one vCPU.
        let unknown = Shape { vcpus: 0, ..small };
        assert_eq!(qemu(&unknown, &v1_9), qemu(&small, &v1_9));
        let arm = Shape {
            arm64: true,
            ..small
        };
        assert_eq!(qemu(&arm, &v1_9), Some(206 * MI + 2_097_152));

        let names: Vec<&str> = budgets(&big, &v1_9).iter().map(|(c, _)| c.name()).collect();
        assert_eq!(
            names,
            [
                "virt-launcher-monitor",
                "virt-launcher",
                "virtlogd",
                "virtqemud",
                "qemu",
                "swtpm"
            ]
        );
        assert_eq!(budgets(&small, &v1_9).len(), 5, "no TPM, no swtpm budget");
        let processes: u64 = budgets(&small, &v1_9)
            .iter()
            .filter(|(c, _)| *c != Component::Qemu)
            .map(|(_, b)| b)
            .sum();
        assert_eq!(processes, 190 * MI);
    }
}
