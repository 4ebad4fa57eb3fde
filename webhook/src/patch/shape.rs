//! A bound on the pod's shape, checked on the raw JSON before the typed `Pod` is built. No I/O.
//!
//! The complexity limit bounds the JSON values a review builds, not the typed pod read from them:
//! a `Container` or a `Volume` of k8s-openapi is a struct of some hundred optional fields, over a
//! kilobyte each, so 25,000 `{"name":"c"}` containers (100,000 tokens) became ~80 MiB of typed pod.
//! No launcher pod comes near these counts, so a pod past any of them is not one we inject: it is
//! skipped as `unparseable` before its typed read, and counted by the part that was too long.
//!
//! The caps, from what KubeVirt puts in a launcher pod (docs/kubevirt.md): `compute`, a handful of
//! its own (guest-console-log, hook sidecars, istio's, the container-disk init containers) and one
//! container per container-disk or virtiofs volume, of which a VMI has at most 256 (KubeVirt's
//! `arrayLenMax` for volumes, disks and filesystems). [`MAX_CONTAINERS`] and [`MAX_VOLUMES`] are
//! 256 plus room for everything else; lists inside a container are capped as generously.
use serde_json::Value;

/// Containers in one of `containers`, `initContainers`, `ephemeralContainers`: one per
/// container disk or virtiofs volume (at most 256) plus KubeVirt's and its neighbours' own.
pub const MAX_CONTAINERS: usize = 320;
/// `spec.volumes`: the VMI's (at most 256) plus KubeVirt's own (~20) and ours (2).
pub const MAX_VOLUMES: usize = 320;
/// `env`, `envFrom`, `ports`, `volumeMounts`, `volumeDevices` of one container: `compute` mounts
/// every volume and lists every port a VMI interface forwards.
pub const MAX_PER_CONTAINER: usize = 1024;
/// Every other list of the spec and of the metadata (tolerations, owner references, ...).
pub const MAX_OTHER: usize = 1024;

/// The part of the pod that is longer than any launcher pod's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{part} has {count} entries, more than a launcher pod can have ({cap})")]
pub struct Oversized {
    /// Which list, as a metric label: `containers`, `volumes`, `container-lists`, `other`.
    pub part: &'static str,
    pub count: usize,
    pub cap: usize,
}

/// The metric labels of [`Oversized::part`], each series starting at 0.
pub const PARTS: &[&str] = &["containers", "volumes", "container-lists", "other"];

/// Checks the pod object's lists against the caps.
pub fn check(pod: &Value) -> Result<(), Oversized> {
    let spec = pod.get("spec").unwrap_or(&Value::Null);
    for key in ["containers", "initContainers", "ephemeralContainers"] {
        let containers = list(spec.get(key));
        cap("containers", containers.len(), MAX_CONTAINERS)?;
        for container in containers {
            let Some(fields) = container.as_object() else {
                continue;
            };
            for value in fields.values() {
                cap(
                    "container-lists",
                    list(Some(value)).len(),
                    MAX_PER_CONTAINER,
                )?;
            }
        }
    }
    cap("volumes", list(spec.get("volumes")).len(), MAX_VOLUMES)?;
    for section in [spec, pod.get("metadata").unwrap_or(&Value::Null)] {
        let Some(fields) = section.as_object() else {
            continue;
        };
        for value in fields.values() {
            let len = match value {
                Value::Array(items) => items.len(),
                Value::Object(map) => map.len(),
                _ => 0,
            };
            cap("other", len, MAX_OTHER)?;
        }
    }
    Ok(())
}

fn list(value: Option<&Value>) -> &[Value] {
    match value {
        Some(Value::Array(items)) => items,
        _ => &[],
    }
}

fn cap(part: &'static str, count: usize, cap: usize) -> Result<(), Oversized> {
    if count > cap {
        return Err(Oversized { part, count, cap });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn named(n: usize) -> Vec<Value> {
        (0..n).map(|i| json!({"name": format!("c{i}")})).collect()
    }

    #[test]
    fn a_launcher_pod_passes_and_each_list_past_its_cap_is_named() {
        let fixture: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/admission/pod-a.json"))
                .unwrap();
        assert_eq!(check(&fixture["request"]["object"]), Ok(()));

        let env: Vec<Value> = (0..=MAX_PER_CONTAINER)
            .map(|i| json!({"name": format!("E{i}")}))
            .collect();
        let table = [
            (json!({"spec": {"containers": named(MAX_CONTAINERS)}}), None),
            (
                json!({"spec": {"containers": named(MAX_CONTAINERS + 1)}}),
                Some(("containers", MAX_CONTAINERS + 1)),
            ),
            (
                json!({"spec": {"initContainers": named(25_000)}}),
                Some(("containers", 25_000)),
            ),
            (
                json!({"spec": {"volumes": named(MAX_VOLUMES + 1)}}),
                Some(("volumes", MAX_VOLUMES + 1)),
            ),
            (
                json!({"spec": {"containers": [{"name": "compute", "env": env}]}}),
                Some(("container-lists", MAX_PER_CONTAINER + 1)),
            ),
            (
                json!({"spec": {"tolerations": named(MAX_OTHER + 1)}}),
                Some(("other", MAX_OTHER + 1)),
            ),
            (
                json!({"metadata": {"ownerReferences": named(MAX_OTHER + 1)}}),
                Some(("other", MAX_OTHER + 1)),
            ),
            // Not lists where lists belong: the typed read judges those.
            (json!({"spec": {"containers": "x", "volumes": 3}}), None),
            (json!(null), None),
        ];
        for (pod, want) in table {
            let got = check(&pod).err().map(|o| (o.part, o.count));
            assert_eq!(got, want, "{want:?}");
        }
    }
}
