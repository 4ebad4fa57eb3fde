//! `Decision` + the raw pod JSON -> RFC 6902 `add` operations. Built on the raw JSON so nothing the
//! typed structs do not know is dropped; only `add`, only to absent members or list ends, so nothing
//! existing is replaced or reordered. No I/O.
use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation};
use kube_metrics_contract::pod::{
    REASON, REASON_SOURCE, SCRAPE, STATUS, STATUS_INJECTED, STATUS_SKIPPED,
};
use serde_json::{Map, Value, json};

use super::sidecar;
use crate::decide::{Decision, Plan, SkipReason};
use crate::policy::Mode;

/// The pod's JSON is not shaped as its typed form promised (a member of the wrong type).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("pod field {0} has an unexpected type")]
pub struct ShapeError(pub String);

/// The operations that carry out `decision` on `pod`.
pub fn operations(pod: &Value, decision: &Decision) -> Result<Vec<PatchOperation>, ShapeError> {
    match decision {
        Decision::Inject(plan) => inject(pod, plan),
        Decision::Skip(reason) if reason.is_annotated() => {
            let entries = [(STATUS, STATUS_SKIPPED), (REASON, reason.as_str())];
            let mut ops = Vec::new();
            add_entries(pod, &["metadata", "annotations"], &entries, &mut ops)?;
            Ok(ops)
        }
        Decision::Skip(_) => Ok(Vec::new()),
        Decision::Unsafe { reason, source } => {
            let entries = [
                (STATUS, STATUS_SKIPPED),
                (REASON, reason.as_str()),
                (REASON_SOURCE, source.as_str()),
            ];
            let mut ops = Vec::new();
            add_entries(pod, &["metadata", "annotations"], &entries, &mut ops)?;
            Ok(ops)
        }
    }
}

/// Annotations for a skip, when the pod's metadata can take them; nothing otherwise (a skip never
/// fails).
pub fn skip_operations(pod: &Value, reason: SkipReason) -> Vec<PatchOperation> {
    operations(pod, &Decision::Skip(reason)).unwrap_or_default()
}

fn inject(pod: &Value, plan: &Plan) -> Result<Vec<PatchOperation>, ShapeError> {
    let mut ops = Vec::new();
    match pod.pointer("/spec/shareProcessNamespace") {
        None | Some(Value::Null) => ops.push(add(&["spec", "shareProcessNamespace"], json!(true))),
        Some(Value::Bool(true)) => {}
        Some(_) => return Err(ShapeError("/spec/shareProcessNamespace".into())),
    }
    let list = match plan.mode {
        Mode::Native => "initContainers",
        Mode::Container => "containers",
    };
    append(
        pod,
        &["spec", list],
        vec![sidecar::container(plan)],
        &mut ops,
    )?;
    append(
        pod,
        &["spec", "volumes"],
        sidecar::volumes().into(),
        &mut ops,
    )?;
    add_entries(
        pod,
        &["metadata", "annotations"],
        &[
            (STATUS, STATUS_INJECTED),
            (REASON_SOURCE, plan.source.as_str()),
        ],
        &mut ops,
    )?;
    add_entries(
        pod,
        &["metadata", "labels"],
        &[(SCRAPE, plan.scrape.path.as_str())],
        &mut ops,
    )?;
    Ok(ops)
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

/// Adds the string entries that are not in the map at `path` yet, creating the map when absent. An
/// entry that exists is left alone, whoever set it: `add` would overwrite it.
fn add_entries(
    pod: &Value,
    path: &[&str],
    entries: &[(&str, &str)],
    ops: &mut Vec<PatchOperation>,
) -> Result<(), ShapeError> {
    match get(pod, path)? {
        None | Some(Value::Null) => {
            let map: Map<String, Value> = entries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!(v)))
                .collect();
            ops.push(add(path, Value::Object(map)));
        }
        Some(Value::Object(map)) => {
            for (key, value) in entries.iter().filter(|(k, _)| !map.contains_key(*k)) {
                let full: Vec<&str> = path.iter().copied().chain([*key]).collect();
                ops.push(add(&full, json!(value)));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(ops: &[PatchOperation]) -> Vec<String> {
        ops.iter().map(|op| op.path().to_string()).collect()
    }

    #[test]
    fn escapes_slash_and_tilde_in_keys() {
        assert_eq!(
            pointer(&["metadata", "annotations", "a.io/b~c"]).to_string(),
            "/metadata/annotations/a.io~1b~0c"
        );
    }

    #[test]
    fn creates_an_absent_map_with_all_entries() {
        let mut ops = Vec::new();
        add_entries(
            &json!({"metadata": {}}),
            &["metadata", "annotations"],
            &[("a/b", "1")],
            &mut ops,
        )
        .ok();
        assert_eq!(paths(&ops), ["/metadata/annotations"]);
        assert_eq!(
            serde_json::to_value(&ops).ok(),
            Some(json!([{"op": "add", "path": "/metadata/annotations", "value": {"a/b": "1"}}]))
        );
    }

    #[test]
    fn leaves_existing_entries_alone() {
        let pod = json!({"metadata": {"annotations": {"a/b": "theirs"}}});
        let mut ops = Vec::new();
        add_entries(
            &pod,
            &["metadata", "annotations"],
            &[("a/b", "ours"), ("c", "1")],
            &mut ops,
        )
        .ok();
        assert_eq!(paths(&ops), ["/metadata/annotations/c"]);
    }

    #[test]
    fn appends_to_a_list_and_creates_an_absent_one() {
        let mut ops = Vec::new();
        append(
            &json!({"spec": {"volumes": [1]}}),
            &["spec", "volumes"],
            vec![json!(2), json!(3)],
            &mut ops,
        )
        .ok();
        assert_eq!(paths(&ops), ["/spec/volumes/-", "/spec/volumes/-"]);
        ops.clear();
        append(
            &json!({"spec": {"volumes": null}}),
            &["spec", "volumes"],
            vec![json!(2)],
            &mut ops,
        )
        .ok();
        assert_eq!(paths(&ops), ["/spec/volumes"]);
    }

    #[test]
    fn wrong_types_are_shape_errors() {
        let mut ops = Vec::new();
        let got = append(
            &json!({"spec": {"volumes": {}}}),
            &["spec", "volumes"],
            vec![],
            &mut ops,
        );
        assert_eq!(got, Err(ShapeError("/spec/volumes".into())));
        let got = add_entries(
            &json!({"metadata": {"labels": []}}),
            &["metadata", "labels"],
            &[],
            &mut ops,
        );
        assert_eq!(got, Err(ShapeError("/metadata/labels".into())));
    }

    #[test]
    fn not_launcher_and_already_injected_get_no_operations() {
        for reason in [SkipReason::NotLauncher, SkipReason::AlreadyInjected] {
            assert_eq!(
                operations(&json!({"metadata": {}}), &Decision::Skip(reason)),
                Ok(vec![])
            );
        }
    }
}
