//! Who this pod is: env `POD_NAME`/`POD_NAMESPACE`/`NODE_NAME` and the downward-API directory.
//!
//! Parsing takes `&str` and does no I/O; `PodInfo::read` is the one function that touches files.
//! Every file may be missing or malformed: we degrade, log, and never fail.

use kube_metrics_contract::kubevirt::{DOMAIN_ANNOTATION, MEMORY_OVERHEAD_ANNOTATION};
use kube_metrics_contract::{downward_api, sidecar};
use std::collections::BTreeMap;
use std::path::Path;

/// The pod's identity from the environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Env {
    pub pod_name: Option<String>,
    pub pod_namespace: Option<String>,
    pub node_name: Option<String>,
}

/// The downward-API files we use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodInfo {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub memory_request: Option<u64>,
    pub memory_limit: Option<u64>,
}

/// A downward-API line we could not read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: expected key=\"quoted value\"")]
pub struct BadLine {
    pub line: usize,
}

// === impl Env ===

impl Env {
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The identity from `lookup`, which gives an env var's value by name; empty counts as unset.
    /// Tests hand it the env a pod spec declares.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name| lookup(name).filter(|v: &String| !v.is_empty());
        Self {
            pod_name: var(sidecar::ENV_POD_NAME),
            pod_namespace: var(sidecar::ENV_POD_NAMESPACE),
            node_name: var(sidecar::ENV_NODE_NAME),
        }
    }
}

// === impl PodInfo ===

impl PodInfo {
    /// Reads `labels`, `annotations`, `compute_memory_request` and `compute_memory_limit` from `dir`.
    pub fn read(dir: &Path) -> Self {
        let text = |name: &str| match std::fs::read_to_string(dir.join(name)) {
            Ok(text) => Some(text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                tracing::debug!(file = name, dir = %dir.display(), "Downward-API file missing");
                None
            }
            Err(error) => {
                tracing::warn!(%error, file = name, dir = %dir.display(), "Cannot read downward-API file");
                None
            }
        };
        let map = |name: &str| {
            let (map, bad) = text(name).map(|t| parse_map(&t)).unwrap_or_default();
            for error in bad {
                tracing::warn!(%error, file = name, "Skipping malformed downward-API line");
            }
            map
        };
        let quantity = |name: &str| {
            let raw = text(name)?;
            let parsed = parse_quantity(&raw);
            if parsed.is_none() {
                tracing::warn!(
                    file = name,
                    value = raw.trim(),
                    "Ignoring malformed downward-API quantity"
                );
            }
            parsed
        };
        Self {
            labels: map(sidecar::PODINFO_LABELS),
            annotations: map(sidecar::PODINFO_ANNOTATIONS),
            memory_request: quantity(sidecar::PODINFO_MEMORY_REQUEST),
            memory_limit: quantity(sidecar::PODINFO_MEMORY_LIMIT),
        }
    }

    /// `kubevirt.io/memory-overhead-bytes`, when present and a plain integer.
    pub fn memory_overhead(&self) -> Option<u64> {
        self.annotations
            .get(MEMORY_OVERHEAD_ANNOTATION)
            .and_then(|v| parse_quantity(v))
    }
}

/// The `domain` label: annotation, else QEMU's guest name, else the pod name, else `unknown`.
pub fn domain<'a>(info: &'a PodInfo, guest_name: Option<&'a str>, env: &'a Env) -> &'a str {
    info.annotations
        .get(DOMAIN_ANNOTATION)
        .map(String::as_str)
        .filter(|d| !d.is_empty())
        .or(guest_name)
        .or(env.pod_name.as_deref())
        .unwrap_or("unknown")
}

/// Parses the downward-API map format: one `key="value"` per line, value quoted like Go's
/// `strconv.Quote`. Bad lines are returned separately; the good ones are kept.
pub fn parse_map(text: &str) -> (BTreeMap<String, String>, Vec<BadLine>) {
    let mut map = BTreeMap::new();
    let mut bad = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed = line
            .split_once('=')
            .and_then(|(key, value)| Some((key, downward_api::unquote(value.trim_end())?)));
        match parsed {
            Some((key, value)) if !key.is_empty() => {
                map.insert(key.to_string(), value);
            }
            _ => bad.push(BadLine { line: n + 1 }),
        }
    }
    (map, bad)
}

/// A plain non-negative integer (the downward API writes resources with divisor 1 this way).
pub fn parse_quantity(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_downward_api_annotations() {
        let text = "kubevirt.io/domain=\"vm-0\"\nnote=\"a \\\"quoted\\\" \\\\ word\\nnext\"\nutf=\"caf\\xc3\\xa9 \\u00e9\"\n";
        let (map, bad) = parse_map(text);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(map["kubevirt.io/domain"], "vm-0");
        assert_eq!(map["note"], "a \"quoted\" \\ word\nnext");
        assert_eq!(map["utf"], "café é");
    }

    #[test]
    fn keeps_good_lines_around_malformed_ones() {
        let text = "a=\"1\"\nbroken\nb=unquoted\nc=\"open\n=\"nokey\"\nd=\"bad\\q\"\ne=\"2\"\n";
        let (map, bad) = parse_map(text);
        assert_eq!(map.keys().collect::<Vec<_>>(), vec!["a", "e"]);
        let lines: Vec<usize> = bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6]);
    }

    #[test]
    fn domain_falls_back_in_order() {
        let mut info = PodInfo::default();
        let env = Env {
            pod_name: Some("virt-launcher-vm-0-abcde".into()),
            ..Env::default()
        };
        assert_eq!(domain(&info, Some("vm-q"), &env), "vm-q");
        assert_eq!(domain(&info, None, &env), "virt-launcher-vm-0-abcde");
        assert_eq!(domain(&info, None, &Env::default()), "unknown");
        info.annotations
            .insert(DOMAIN_ANNOTATION.into(), "vm-a".into());
        assert_eq!(domain(&info, Some("vm-q"), &env), "vm-a");
    }

    #[test]
    fn reads_quantities_and_overhead() {
        assert_eq!(parse_quantity("2147483648\n"), Some(2_147_483_648));
        assert_eq!(parse_quantity("2Gi"), None);
        assert_eq!(parse_quantity(""), None);
        let mut info = PodInfo::default();
        info.annotations
            .insert(MEMORY_OVERHEAD_ANNOTATION.into(), "231735296".into());
        assert_eq!(info.memory_overhead(), Some(231_735_296));
    }

    #[test]
    fn reads_a_directory_with_missing_and_malformed_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("labels"),
            "kubevirt.io=\"virt-launcher\"\n\u{0}garbage\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("compute_memory_limit"), "lots\n").unwrap();
        std::fs::write(dir.path().join("compute_memory_request"), "1073741824\n").unwrap();
        let info = PodInfo::read(dir.path());
        assert_eq!(
            info.labels.get("kubevirt.io").map(String::as_str),
            Some("virt-launcher")
        );
        assert!(info.annotations.is_empty());
        assert_eq!(
            (info.memory_request, info.memory_limit),
            (Some(1_073_741_824), None)
        );
        assert_eq!(
            PodInfo::read(&dir.path().join("absent")),
            PodInfo::default()
        );
    }

    proptest! {
        #[test]
        fn podinfo_parsers_never_panic(text in "\\PC{0,200}", raw in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_map(&text);
            let _ = parse_map(&String::from_utf8_lossy(&raw));
            let _ = parse_quantity(&text);
        }
    }
}
