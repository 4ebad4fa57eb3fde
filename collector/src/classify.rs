//! Assigns each process a role (docs/metrics.md) and each QEMU thread a class. No I/O.

use std::fmt;
use std::str::FromStr;

/// Built-in roles in exposition order; `other` is last.
pub use kube_metrics_contract::metrics::BUILTIN_ROLES;

/// Our own argv[0] basename; processes with it (the exec probe, `-M`) are never counted.
pub const SELF_NAME: &str = "kube-metrics-collector";

/// The kernel keeps 15 bytes of `comm`; what is left of our name in it.
const SELF_COMM: &[u8] = b"kube-metrics-co";

/// Strings virt-launcher-monitor kills by substring (docs/kubevirt.md §3.3); no argument of ours may hold them.
pub const FORBIDDEN_SUBSTRINGS: [&str; 2] = ["qemu-kvm", "qemu-system"];

/// Index into `Roles::names`.
pub type RoleId = usize;

/// An extra role from `--role NAME=BASENAME`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleRule {
    pub name: String,
    pub basename: String,
}

/// Why a `--role` value was rejected.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RoleRuleError {
    #[error("expected NAME=BASENAME")]
    Shape,
    #[error("must not contain `{0}`: virt-launcher-monitor would kill this process on exit")]
    Forbidden(&'static str),
}

/// The role table: built-ins followed by configured extras.
#[derive(Clone, Debug)]
pub struct Roles {
    names: Vec<String>,
    extra: Vec<(String, RoleId)>,
}

/// What a process is counted as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Role(RoleId),
    /// The collector itself, or the sandbox's `pause`.
    Excluded,
}

/// QEMU thread classes, by the names QEMU sets with `debug-threads=on`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadClass {
    Vcpu = 0,
    Iothread = 1,
    Other = 2,
}

// === impl RoleRule ===

impl FromStr for RoleRule {
    type Err = RoleRuleError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if let Some(bad) = FORBIDDEN_SUBSTRINGS.into_iter().find(|s| value.contains(s)) {
            return Err(RoleRuleError::Forbidden(bad));
        }
        let (name, basename) = value.split_once('=').ok_or(RoleRuleError::Shape)?;
        let (name, basename) = (name.trim(), basename.trim());
        if name.is_empty() || basename.is_empty() || basename.contains('/') {
            return Err(RoleRuleError::Shape);
        }
        Ok(Self {
            name: name.to_string(),
            basename: basename.to_string(),
        })
    }
}

impl fmt::Display for RoleRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.basename)
    }
}

// === impl Roles ===

impl Roles {
    pub const QEMU: RoleId = builtin("qemu");
    pub const OTHER: RoleId = builtin("other");

    /// Extra rules are checked before the built-ins; a rule naming a built-in role adds to it.
    pub fn new(rules: &[RoleRule]) -> Self {
        let mut names: Vec<String> = BUILTIN_ROLES.iter().map(|s| s.to_string()).collect();
        let mut extra = Vec::with_capacity(rules.len());
        for rule in rules {
            let id = match names.iter().position(|n| *n == rule.name) {
                Some(id) => id,
                None => {
                    names.push(rule.name.clone());
                    names.len() - 1
                }
            };
            extra.push((rule.basename.clone(), id));
        }
        Self { names, extra }
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The `process` label value of a role.
    pub fn name(&self, id: RoleId) -> &str {
        self.names.get(id).map_or("other", String::as_str)
    }

    /// Classifies a process from its cmdline bytes and `comm`.
    pub fn classify(&self, cmdline: &[u8], comm: &[u8]) -> Class {
        let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
        if argv0.is_empty() {
            // Kernel threads and zombies have an empty cmdline; only they are matched on `comm`.
            if comm == SELF_COMM || comm == b"pause" {
                return Class::Excluded;
            }
            return Class::Role(self.by_name(comm));
        }
        let base = argv0.rsplit(|&b| b == b'/').next().unwrap_or(argv0);
        if base == SELF_NAME.as_bytes() || base == b"pause" {
            return Class::Excluded;
        }
        Class::Role(self.by_name(base))
    }

    fn by_name(&self, name: &[u8]) -> RoleId {
        if let Some((_, id)) = self.extra.iter().find(|(b, _)| b.as_bytes() == name) {
            return *id;
        }
        let builtin = match name {
            // The kernel truncates comm to 15 bytes: `virt-launcher-m`.
            b"virt-launcher-monitor" | b"virt-launcher-m" => "virt-launcher-monitor",
            b"virt-launcher" => "virt-launcher",
            b"virtqemud" => "virtqemud",
            b"libvirtd" => "libvirtd",
            b"virtlogd" => "virtlogd",
            b"qemu-kvm" => "qemu",
            n if n.starts_with(b"qemu-system-") => "qemu",
            b"swtpm" => "swtpm",
            n if n == b"passt" || n.starts_with(b"passt.") => "passt",
            b"virtiofsd" => "virtiofsd",
            b"virt-tail" => "virt-tail",
            b"container-disk" => "container-disk",
            _ => return Self::OTHER,
        };
        BUILTIN_ROLES
            .iter()
            .position(|r| *r == builtin)
            .unwrap_or(Self::OTHER)
    }
}

/// The id of a built-in role, by name; a name not in `BUILTIN_ROLES` fails the build.
const fn builtin(name: &str) -> RoleId {
    let mut id = 0;
    while id < BUILTIN_ROLES.len() {
        if kube_metrics_contract::metrics::same_bytes(BUILTIN_ROLES[id].as_bytes(), name.as_bytes())
        {
            return id;
        }
        id += 1;
    }
    panic!("not a built-in role")
}

// === impl ThreadClass ===

impl ThreadClass {
    pub const ALL: [ThreadClass; 3] = [Self::Vcpu, Self::Iothread, Self::Other];

    /// `CPU <n>/KVM` and `CPU <n>/TCG` are vCPUs, `IO <name>` are I/O threads, the rest is `other`.
    pub fn of(comm: &[u8]) -> Self {
        if let Some(rest) = comm.strip_prefix(b"CPU ")
            && let Some((n, accel)) = rest.split_once_byte(b'/')
            && !n.is_empty()
            && n.iter().all(u8::is_ascii_digit)
            && matches!(accel, b"KVM" | b"TCG")
        {
            return Self::Vcpu;
        }
        if comm.starts_with(b"IO ") {
            return Self::Iothread;
        }
        Self::Other
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vcpu => "vcpu",
            Self::Iothread => "iothread",
            Self::Other => "other",
        }
    }
}

/// Longest guest name kept: a VMI's name is a DNS subdomain, at most 253 characters. A longer one
/// is no KubeVirt guest's; it would become the `domain` label of every series of its pod (a
/// process any pod can run put 130 KB there), so it is dropped and the pod's name is used.
pub const MAX_GUEST_NAME: usize = 253;

/// The `<name>` of QEMU's `-name guest=<namespace>_<name>,...`, from its cmdline bytes; `None`
/// past [`MAX_GUEST_NAME`].
pub fn qemu_guest_name(cmdline: &[u8]) -> Option<String> {
    let mut args = crate::proc::parse::args(cmdline);
    while let Some(arg) = args.next() {
        let value = match arg {
            b"-name" => args.next()?,
            _ => match arg.strip_prefix(b"-name=") {
                Some(v) => v,
                None => continue,
            },
        };
        let guest = value
            .split(|&b| b == b',')
            .find_map(|opt| opt.strip_prefix(b"guest="))?;
        // A namespace is a DNS label and cannot contain `_`, so the first `_` ends it.
        let (_, name) = guest.split_once_byte(b'_')?;
        if name.len() > MAX_GUEST_NAME {
            return None;
        }
        let name = std::str::from_utf8(name).ok()?;
        return (!name.is_empty()).then(|| name.to_string());
    }
    None
}

trait SplitOnceByte {
    fn split_once_byte(&self, b: u8) -> Option<(&[u8], &[u8])>;
}

impl SplitOnceByte for [u8] {
    fn split_once_byte(&self, b: u8) -> Option<(&[u8], &[u8])> {
        let at = self.iter().position(|&c| c == b)?;
        Some((self.get(..at)?, self.get(at + 1..)?))
    }
}

#[cfg(test)]
mod tests;
