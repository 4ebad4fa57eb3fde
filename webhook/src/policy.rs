//! What the webhook injects: image, mode, port, resources, from flags with env twins, validated once in
//! [`PolicyArgs::into_policy`]. Nothing past that function sees the raw flags.
use crate::quantity::{self, Quantity};
use kube_metrics_contract::estimate::Release;
use kube_metrics_contract::metrics::Profile;

/// The default image: the same build as this webhook (the image holds both binaries; see
/// manifests/base/kustomization.yaml, which rewrites `KMW_IMAGE` to the real registry).
pub const DEFAULT_IMAGE: &str = concat!(
    "localhost/kube-metrics-collector:",
    env!("CARGO_PKG_VERSION")
);

/// Linux's default ephemeral port range. passt binds every free port *outside* it when the domain
/// starts (docs/kubevirt.md §4), so a port inside it is never stolen by the guest's port forwarding.
/// A node with another `net.ipv4.ip_local_port_range` can still lose the port; node sysctls are
/// not visible to the webhook.
pub const EPHEMERAL_PORTS: std::ops::RangeInclusive<u16> = 32768..=60999;

/// The highest memory limit a per-pod annotation may ask for: the collector needs a few MiB; more
/// than this is a typo, and it would count against the VM's node.
const MAX_MEMORY_LIMIT: &str = "512Mi";

/// The highest CPU limit a per-pod annotation may ask for.
const MAX_CPU_LIMIT: &str = "1";

/// Where the collector runs in the pod.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// A native sidecar: appended to `initContainers` with `restartPolicy: Always` (Kubernetes 1.29+).
    /// It does not delay the VM's start on readiness and does not keep a finished pod Running.
    #[default]
    Native,
    /// A classic container appended to `containers`, for clusters older than 1.29.
    Container,
}

/// Which scrape paths the webhook may choose; the one it chose is written on the pod as label
/// `kube-metrics-collector.io/scrape`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Scrape {
    /// The VMI decides: `direct` where it proves `podIP:port` reaches the sidecar (docs/kubevirt.md §4),
    /// `relay` everywhere else, and always when the VMI was not read.
    #[default]
    Auto,
    /// Always `relay`: for clusters that deploy only the relay's PodMonitor. There is no
    /// "always direct": for most bindings that would scrape the guest.
    Relay,
}

/// The flags that shape the injected sidecar; flattened into the binary's `Args`.
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyArgs {
    /// Image of the injected kube-metrics-collector sidecar.
    #[arg(long, env = "KMW_IMAGE", default_value = DEFAULT_IMAGE)]
    pub image: String,

    /// Where the sidecar goes: `native` (initContainers, restartPolicy Always; Kubernetes 1.29+) or
    /// `container` (containers; older clusters).
    #[arg(long, env = "KMW_MODE", value_enum, default_value_t = Mode::Native)]
    pub mode: Mode,

    /// The sidecar's metrics port; inside the ephemeral range 32768-60999. Moved up when the pod
    /// already uses it.
    #[arg(long, env = "KMW_PORT", default_value_t = kube_metrics_contract::sidecar::PORT)]
    pub port: u16,

    /// How Prometheus reaches the sidecar: `auto` (the VMI's network decides, direct or relay) or
    /// `relay` (always the node relay), written on the pod as a label.
    #[arg(long, env = "KMW_SCRAPE", value_enum, default_value_t = Scrape::Auto)]
    pub scrape: Scrape,

    /// The sidecar's CPU request: about 0.05 millicores measured at a 30 s scrape interval, more
    /// while the collector reads a large guest's smaps (README, "Measured").
    #[arg(long, env = "KMW_CPU_REQUEST", default_value = "1m")]
    pub cpu_request: String,

    /// The sidecar's CPU limit.
    #[arg(long, env = "KMW_CPU_LIMIT", default_value = "50m")]
    pub cpu_limit: String,

    /// The sidecar's memory request: 1.5 times the collector's measured peak RSS of 5 MiB
    /// (README, "Measured").
    #[arg(long, env = "KMW_MEMORY_REQUEST", default_value = "8Mi")]
    pub memory_request: String,

    /// The sidecar's memory limit.
    #[arg(long, env = "KMW_MEMORY_LIMIT", default_value = "32Mi")]
    pub memory_limit: String,

    /// The node collector is installed (manifests/components/node-collector): a pod skipped for its
    /// VM type is annotated as covered by it.
    #[arg(long, env = "KMW_NODE_COLLECTOR")]
    pub node_collector: bool,

    /// The cluster's KubeVirt release (`1.9`, `v1.9.0`), passed to every injected collector for
    /// its per-process budgets; without it the collector assumes the newest release it knows and
    /// says so on its budget series.
    #[arg(long, env = "KMW_KUBEVIRT_RELEASE", value_name = "RELEASE")]
    pub kubevirt_release: Option<Release>,

    /// The metrics profile of every injected collector (`default`: what the rules, alerts,
    /// dashboards and `kubectl kmc` read; `full`: every series), passed as its
    /// `KMC_METRICS_PROFILE`; a pod's `kube-metrics-collector.io/metrics-profile` annotation wins.
    /// Unset, the collector's own default (`default`) applies.
    #[arg(long, env = "KMW_METRICS_PROFILE", value_name = "PROFILE")]
    pub metrics_profile: Option<Profile>,
}

/// A request and a limit for one resource, with request <= limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounds {
    pub request: Quantity,
    pub limit: Quantity,
}

/// Validated injection settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub image: String,
    pub mode: Mode,
    pub port: u16,
    pub scrape: Scrape,
    pub cpu: Bounds,
    pub memory: Bounds,
    /// The highest limits a per-pod annotation may set.
    pub max_cpu_limit: Quantity,
    pub max_memory_limit: Quantity,
    /// Pods skipped for their VM type are reported by the node collector.
    pub node_collector: bool,
    /// Passed to the collector; `None`: it assumes one.
    pub kubevirt_release: Option<Release>,
    /// Passed to the collector unless a pod's annotation says otherwise; `None`: its default.
    pub metrics_profile: Option<Profile>,
}

/// A flag, or a flag combination, that cannot work.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("--image must be a non-empty image reference without whitespace, got {0:?}")]
    Image(String),
    #[error(
        "--port {0} is outside the ephemeral range 32768-60999 (passt may bind it for the guest)"
    )]
    Port(u16),
    #[error("--{flag} {value:?} is not a Kubernetes quantity")]
    Quantity { flag: &'static str, value: String },
    #[error("--{flag} must be greater than zero")]
    Zero { flag: &'static str },
    #[error("--{resource}-request must not exceed --{resource}-limit")]
    RequestAboveLimit { resource: &'static str },
}

impl Default for Policy {
    /// The policy of the default flags, for tests and callers that build one in code.
    fn default() -> Self {
        let cpu = Bounds {
            request: Quantity::literal("1m"),
            limit: Quantity::literal("50m"),
        };
        let memory = Bounds {
            request: Quantity::literal("8Mi"),
            limit: Quantity::literal("32Mi"),
        };
        Self {
            image: DEFAULT_IMAGE.to_owned(),
            mode: Mode::Native,
            port: kube_metrics_contract::sidecar::PORT,
            scrape: Scrape::Auto,
            cpu,
            memory,
            max_cpu_limit: Quantity::literal(MAX_CPU_LIMIT),
            max_memory_limit: Quantity::literal(MAX_MEMORY_LIMIT),
            node_collector: false,
            kubevirt_release: None,
            metrics_profile: None,
        }
    }
}

// === impl PolicyArgs ===

impl PolicyArgs {
    /// Validates the flags once; nothing past this sees `PolicyArgs`.
    pub fn into_policy(self) -> Result<Policy, PolicyError> {
        let Self {
            image,
            mode,
            port,
            scrape,
            cpu_request,
            cpu_limit,
            memory_request,
            memory_limit,
            node_collector,
            kubevirt_release,
            metrics_profile,
        } = self;
        if image.is_empty() || image.chars().any(char::is_whitespace) {
            return Err(PolicyError::Image(image));
        }
        if !EPHEMERAL_PORTS.contains(&port) {
            return Err(PolicyError::Port(port));
        }
        let cpu = bounds("cpu", &cpu_request, &cpu_limit)?;
        let memory = bounds("memory", &memory_request, &memory_limit)?;
        Ok(Policy {
            image,
            mode,
            port,
            scrape,
            cpu,
            memory,
            max_cpu_limit: Quantity::literal(MAX_CPU_LIMIT),
            max_memory_limit: Quantity::literal(MAX_MEMORY_LIMIT),
            node_collector,
            kubevirt_release,
            metrics_profile,
        })
    }
}

fn bounds(resource: &'static str, request: &str, limit: &str) -> Result<Bounds, PolicyError> {
    let flag_request = if resource == "cpu" {
        "cpu-request"
    } else {
        "memory-request"
    };
    let flag_limit = if resource == "cpu" {
        "cpu-limit"
    } else {
        "memory-limit"
    };
    let parse = |flag: &'static str, value: &str| {
        let q = quantity::parse(value).ok_or_else(|| PolicyError::Quantity {
            flag,
            value: value.to_owned(),
        })?;
        if q.is_zero() {
            Err(PolicyError::Zero { flag })
        } else {
            Ok(q)
        }
    };
    let request = parse(flag_request, request)?;
    let limit = parse(flag_limit, limit)?;
    if request.nano() > limit.nano() {
        return Err(PolicyError::RequestAboveLimit { resource });
    }
    Ok(Bounds { request, limit })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, clap::Parser)]
    struct TestArgs {
        #[command(flatten)]
        policy: PolicyArgs,
    }

    fn parse(args: &[&str]) -> Result<Policy, PolicyError> {
        let argv = std::iter::once("kube-metrics-webhook").chain(args.iter().copied());
        TestArgs::try_parse_from(argv)
            .map_err(|e| panic!("{e}"))
            .and_then(|a| a.policy.into_policy())
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        TestArgs::command().debug_assert();
    }

    #[test]
    fn default_flags_give_the_default_policy() {
        assert_eq!(parse(&[]), Ok(Policy::default()));
    }

    #[test]
    fn rejects_empty_or_spaced_image() {
        assert_eq!(
            parse(&["--image", ""]),
            Err(PolicyError::Image(String::new()))
        );
        assert_eq!(
            parse(&["--image", "a b"]),
            Err(PolicyError::Image("a b".into()))
        );
    }

    #[test]
    fn rejects_port_outside_the_ephemeral_range() {
        assert_eq!(parse(&["--port", "8080"]), Err(PolicyError::Port(8080)));
        assert_eq!(parse(&["--port", "61000"]), Err(PolicyError::Port(61000)));
        assert_eq!(parse(&["--port", "32768"]).map(|p| p.port), Ok(32768));
    }

    #[test]
    fn rejects_unparseable_quantity() {
        let want = PolicyError::Quantity {
            flag: "memory-limit",
            value: "lots".into(),
        };
        assert_eq!(parse(&["--memory-limit", "lots"]), Err(want));
    }

    #[test]
    fn rejects_zero_quantity() {
        assert_eq!(
            parse(&["--cpu-request", "0"]),
            Err(PolicyError::Zero {
                flag: "cpu-request"
            })
        );
    }

    #[test]
    fn rejects_request_above_limit() {
        let got = parse(&["--cpu-request", "100m", "--cpu-limit", "0.05"]);
        assert_eq!(got, Err(PolicyError::RequestAboveLimit { resource: "cpu" }));
    }

    #[test]
    fn the_metrics_profile_is_unset_unless_given() {
        assert_eq!(parse(&[]).map(|p| p.metrics_profile), Ok(None));
        assert_eq!(
            parse(&["--metrics-profile", "full"]).map(|p| p.metrics_profile),
            Ok(Some(Profile::Full))
        );
        let args = TestArgs::try_parse_from(["kube-metrics-webhook", "--metrics-profile", "all"]);
        assert!(args.is_err());
    }

    #[test]
    fn keeps_the_spelling_of_quantities() {
        let policy = parse(&["--memory-limit", "64Mi", "--mode", "container"]);
        let policy = policy.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(policy.memory.limit.as_str(), "64Mi");
        assert_eq!(policy.mode, Mode::Container);
    }
}
