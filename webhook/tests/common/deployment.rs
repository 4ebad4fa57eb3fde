//! What the webhook's Deployment (`manifests/base/webhook-deployment.yaml`) sets that the attack
//! tests hold the binary to: its memory limit, and the environment its allocator reads. Read as
//! text: the file is ours and these few lines are plain.
use std::ffi::OsString;

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../manifests/base/webhook-deployment.yaml"
);

fn text() -> String {
    std::fs::read_to_string(PATH).unwrap_or_else(|error| panic!("{PATH}: {error}"))
}

/// The container's memory limit, in MiB.
pub fn memory_limit_mib() -> f64 {
    let text = text();
    let limits = text.split("limits:").nth(1).unwrap_or_default();
    let value = limits
        .lines()
        .find_map(|line| line.trim().strip_prefix("memory:"))
        .unwrap_or_else(|| panic!("{PATH}: no memory limit"));
    let quantity = kube_metrics_webhook::quantity::parse(value.trim())
        .unwrap_or_else(|| panic!("{PATH}: memory limit {value}"));
    quantity.nano() as f64 / 1e9 / 1048576.0
}

/// The container's `MALLOC_*` variables, with their values.
pub fn allocator_env() -> Vec<(String, OsString)> {
    let text = text();
    let mut lines = text.lines().map(str::trim);
    let mut env = Vec::new();
    while let Some(line) = lines.next() {
        let Some(name) = line.strip_prefix("- name: ") else {
            continue;
        };
        if name.starts_with("MALLOC_") {
            let value = lines.next().and_then(|l| l.strip_prefix("value: "));
            let value = value.unwrap_or_else(|| panic!("{PATH}: {name} has no value"));
            env.push((name.to_owned(), value.trim_matches('"').into()));
        }
    }
    env
}
