//! `Decision` + the raw pod JSON -> RFC 6902 operations. Built on the raw JSON so nothing the typed
//! structs do not know is dropped. The injection only adds, to absent members or list ends, so
//! nothing existing is replaced or reordered; the webhook's own keys ([`Marks`]) are the exception:
//! the decision is their only source, so each is added, replaced or removed to match it, whatever
//! the pod (a VM template, a tenant) set there. No I/O.
use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation, RemoveOperation, ReplaceOperation};
use kube_metrics_contract::pod::{
    COVERAGE, COVERAGE_NODE_COLLECTOR, REASON, REASON_SOURCE, SCRAPE, STATUS, STATUS_INJECTED,
    STATUS_SKIPPED,
};
use serde_json::{Map, Value, json};

use super::sidecar;
use crate::decide::{Decision, Plan, SkipReason};
use crate::policy::Mode;
use crate::vmi::{PathDecision, Source};

/// The pod's JSON is not shaped as its typed form promised (a member of the wrong type).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("pod field {0} has an unexpected type")]
pub struct ShapeError(pub String);

/// Every label and annotation the webhook owns, with the value its decision gives it; `None`: the
/// key must be absent. The tenant's inputs (`inject`, `memory-limit`, `cpu-limit`, `log-level`) are
/// not among them and are never touched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Marks {
    /// Annotation [`STATUS`].
    pub status: Option<&'static str>,
    /// Annotation [`REASON`].
    pub reason: Option<&'static str>,
    /// Annotation [`REASON_SOURCE`].
    pub reason_source: Option<&'static str>,
    /// Annotation [`COVERAGE`]: only a pod skipped for its VM type, with the node collector on.
    pub coverage: Option<&'static str>,
    /// Label [`SCRAPE`]: only a pod with our sidecar has one.
    pub scrape: Option<&'static str>,
}

// === impl Marks ===

impl Marks {
    /// What `decision` writes. A pod that is not a launcher gets none of our keys (those it carries
    /// are removed).
    pub fn of(decision: &Decision) -> Marks {
        match decision {
            Decision::Inject(plan) => Marks::injected(plan.source, plan.scrape),
            Decision::Skip(reason) if reason.is_annotated() => Marks {
                status: Some(STATUS_SKIPPED),
                reason: Some(reason.as_str()),
                ..Marks::default()
            },
            Decision::Skip(_) => Marks::default(),
            Decision::Unsafe {
                reason,
                source,
                covered,
            } => Marks {
                status: Some(STATUS_SKIPPED),
                reason: Some(reason.as_str()),
                reason_source: Some(source.as_str()),
                coverage: covered.then_some(COVERAGE_NODE_COLLECTOR),
                scrape: None,
            },
        }
    }

    /// A pod with our sidecar, judged by `source`, scraped by `scrape`.
    pub fn injected(source: Source, scrape: PathDecision) -> Marks {
        Marks {
            status: Some(STATUS_INJECTED),
            reason: None,
            reason_source: Some(source.as_str()),
            coverage: None,
            scrape: Some(scrape.path.as_str()),
        }
    }
}

/// The operations that carry out `decision` on `pod`.
pub fn operations(pod: &Value, decision: &Decision) -> Result<Vec<PatchOperation>, ShapeError> {
    let mut ops = Vec::new();
    if let Decision::Inject(plan) = decision {
        inject(pod, plan, &mut ops)?;
    }
    mark(pod, Marks::of(decision), &mut ops)?;
    Ok(ops)
}

/// The marks for a skip, when the pod's metadata can take them; nothing otherwise (a skip never
/// fails).
pub fn skip_operations(pod: &Value, reason: SkipReason) -> Vec<PatchOperation> {
    operations(pod, &Decision::Skip(reason)).unwrap_or_default()
}

/// Sets our keys to `marks`: annotations first, then the label; none when the pod's metadata
/// cannot take them (nothing is written then).
pub fn mark_operations(pod: &Value, marks: Marks) -> Vec<PatchOperation> {
    let mut ops = Vec::new();
    match mark(pod, marks, &mut ops) {
        Ok(()) => ops,
        Err(_) => Vec::new(),
    }
}

fn mark(pod: &Value, marks: Marks, ops: &mut Vec<PatchOperation>) -> Result<(), ShapeError> {
    set_entries(
        pod,
        &["metadata", "annotations"],
        &[
            (STATUS, marks.status),
            (REASON, marks.reason),
            (REASON_SOURCE, marks.reason_source),
            (COVERAGE, marks.coverage),
        ],
        ops,
    )?;
    set_entries(pod, &["metadata", "labels"], &[(SCRAPE, marks.scrape)], ops)
}

/// The sidecar, its volumes and `shareProcessNamespace`; the marks follow.
fn inject(pod: &Value, plan: &Plan, ops: &mut Vec<PatchOperation>) -> Result<(), ShapeError> {
    match pod.pointer("/spec/shareProcessNamespace") {
        None | Some(Value::Null) => ops.push(add(&["spec", "shareProcessNamespace"], json!(true))),
        Some(Value::Bool(true)) => {}
        Some(_) => return Err(ShapeError("/spec/shareProcessNamespace".into())),
    }
    let list = match plan.mode {
        Mode::Native => "initContainers",
        Mode::Container => "containers",
    };
    append(pod, &["spec", list], vec![sidecar::container(plan)], ops)?;
    append(pod, &["spec", "volumes"], sidecar::volumes().into(), ops)
}

/// Appends `items` to the list at `path`, creating the list when absent.
fn append(
    pod: &Value,
    path: &[&str],
    items: Vec<Value>,
    ops: &mut Vec<PatchOperation>,
) -> Result<(), ShapeError> {
    match get(pod, path)? {
        None | Some(Value::Null) => ops.push(add(path, Value::Array(items))),
        Some(Value::Array(_)) => {
            let end: Vec<&str> = path.iter().copied().chain(["-"]).collect();
            ops.extend(items.into_iter().map(|item| add(&end, item)));
        }
        Some(_) => return Err(ShapeError(pointer(path).to_string())),
    }
    Ok(())
}

/// Makes each of `entries` in the map at `path` what it says: `Some` is added when absent and
/// replaced when different, `None` is removed when present (RFC 6902 `remove` fails on an absent
/// member). An absent map is created with the `Some` entries, when there are any.
fn set_entries(
    pod: &Value,
    path: &[&str],
    entries: &[(&str, Option<&str>)],
    ops: &mut Vec<PatchOperation>,
) -> Result<(), ShapeError> {
    match get(pod, path)? {
        None | Some(Value::Null) => {
            let map: Map<String, Value> = entries
                .iter()
                .filter_map(|(k, v)| v.map(|v| ((*k).to_owned(), json!(v))))
                .collect();
            if !map.is_empty() {
                ops.push(add(path, Value::Object(map)));
            }
        }
        Some(Value::Object(map)) => {
            for (key, wanted) in entries {
                let full: Vec<&str> = path.iter().copied().chain([*key]).collect();
                match (map.get(*key), wanted) {
                    (Some(have), Some(want)) if have.as_str() == Some(*want) => {}
                    (Some(_), Some(want)) => ops.push(replace(&full, json!(want))),
                    (None, Some(want)) => ops.push(add(&full, json!(want))),
                    (Some(_), None) => ops.push(remove(&full)),
                    (None, None) => {}
                }
            }
        }
        Some(_) => return Err(ShapeError(pointer(path).to_string())),
    }
    Ok(())
}

/// The member at `path`; an error when a parent on the way is not an object, because `add` cannot
/// create it there.
fn get<'a>(pod: &'a Value, path: &[&str]) -> Result<Option<&'a Value>, ShapeError> {
    let mut current = pod;
    for (depth, key) in path.iter().enumerate() {
        let Value::Object(map) = current else {
            return Err(ShapeError(pointer(&path[..depth]).to_string()));
        };
        match map.get(*key) {
            Some(next) => current = next,
            None if depth + 1 == path.len() => return Ok(None),
            None => return Err(ShapeError(pointer(&path[..=depth]).to_string())),
        }
    }
    Ok(Some(current))
}

/// `jsonptr` escapes each token: `/` as `~1`, `~` as `~0` (RFC 6901).
fn pointer(path: &[&str]) -> PointerBuf {
    PointerBuf::from_tokens(path.iter().copied())
}

fn add(path: &[&str], value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: pointer(path),
        value,
    })
}

fn replace(path: &[&str], value: Value) -> PatchOperation {
    PatchOperation::Replace(ReplaceOperation {
        path: pointer(path),
        value,
    })
}

fn remove(path: &[&str]) -> PatchOperation {
    PatchOperation::Remove(RemoveOperation {
        path: pointer(path),
    })
}

#[cfg(test)]
mod tests;
