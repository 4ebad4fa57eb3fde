//! Property tests of `patch::review` (and of `parse` + `answer` with a VMI read): arbitrary bytes,
//! arbitrary JSON and mutated fixture reviews never panic; a review with a request uid always gets a valid, allowed AdmissionReview answer with
//! that uid whose patch (if any) applies to the request's object; anything else is a `ReviewError`.
mod common;

use common::fixtures;
use kube_core::DynamicObject;
use kube_core::admission::AdmissionReview;
use kube_metrics_webhook::patch;
use kube_metrics_webhook::policy::Policy;
use kube_metrics_webhook::vmi::{Lookup, VmiFacts};
use proptest::prelude::*;
use serde_json::{Value, json};

/// A VMI that makes the decision use everything it can: it is read, its passt interface lists our
/// port (the port moves), and its network allows a direct scrape.
fn passt_vmi() -> Lookup {
    let vmi = json!({"spec": {"networks": [{"name": "default", "pod": {}}],
        "domain": {"devices": {"interfaces": [{"name": "default", "passt": {}, "ports": [{"port": kube_metrics_contract::sidecar::PORT}]}]}}}});
    Lookup::Found(Box::new(
        VmiFacts::from_json(&vmi).unwrap_or_else(|e| panic!("{e}")),
    ))
}

/// Checks the contract on one input, answered without a VMI (`patch::review`).
fn check(body: &[u8]) -> Result<(), TestCaseError> {
    check_with(body, &Lookup::NotFound)
}

/// Checks the contract on one input: Ok with the uid iff the review carries one.
fn check_with(body: &[u8], lookup: &Lookup) -> Result<(), TestCaseError> {
    let policy = Policy::default();
    let input: Option<Value> = serde_json::from_slice(body).ok();
    let uid = input
        .as_ref()
        .and_then(|v| v.pointer("/request/uid"))
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty());
    let has_request = input
        .as_ref()
        .and_then(|v| v.get("request"))
        .is_some_and(Value::is_object);
    let result = patch::parse(body).map(|parsed| patch::answer(&parsed, &policy, lookup));
    let (Some(uid), true) = (uid, has_request) else {
        prop_assert!(
            result.is_err(),
            "no uid, yet answered: {:?}",
            result.map(|r| r.outcome)
        );
        return Ok(());
    };
    let reviewed = result.map_err(|e| TestCaseError::fail(format!("uid {uid:?} but {e}")))?;
    prop_assert_eq!(&reviewed.uid, uid);
    // The answer parses as kube-core's typed AdmissionReview (what a Rust client of the API expects).
    let answer: AdmissionReview<DynamicObject> = serde_json::from_slice(&reviewed.response)
        .map_err(|e| TestCaseError::fail(format!("answer: {e}")))?;
    let response = answer
        .response
        .ok_or_else(|| TestCaseError::fail("no response"))?;
    prop_assert_eq!(&response.uid, uid);
    prop_assert!(response.allowed);
    if let Some(bytes) = response.patch {
        let ops: json_patch::Patch =
            serde_json::from_slice(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut object = input
            .and_then(|v| v.pointer("/request/object").cloned())
            .unwrap_or_default();
        json_patch::patch(&mut object, &ops)
            .map_err(|e| TestCaseError::fail(format!("patch does not apply: {e}")))?;
    }
    Ok(())
}

/// Arbitrary JSON, with the keys of an AdmissionReview over-represented so deep paths get built.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,12}".prop_map(Value::from),
        Just(json!("CREATE")),
        Just(json!("Pod")),
    ];
    let key = prop_oneof![
        Just("request".to_owned()),
        Just("uid".to_owned()),
        Just("object".to_owned()),
        Just("operation".to_owned()),
        Just("metadata".to_owned()),
        Just("spec".to_owned()),
        Just("containers".to_owned()),
        Just("labels".to_owned()),
        "[a-z]{1,6}",
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every JSON pointer in `value`.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    let children: Vec<(String, &Value)> = match value {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| (k.replace('~', "~0").replace('/', "~1"), v))
            .collect(),
        Value::Array(l) => l
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => Vec::new(),
    };
    for (key, child) in children {
        let path = format!("{at}/{key}");
        out.push(path.clone());
        pointers(child, path, out);
    }
}

#[derive(Clone, Debug)]
enum Mutation {
    Remove,
    Replace(Value),
    Huge(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        Just(Mutation::Remove),
        any_json().prop_map(Mutation::Replace),
        (1usize..(1 << 20)).prop_map(Mutation::Huge),
    ]
}

fn mutate(review: &mut Value, pointer: &str, mutation: &Mutation) {
    let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    let key = key.replace("~1", "/").replace("~0", "~");
    let Some(parent) = review.pointer_mut(parent) else {
        return;
    };
    let slot = match parent {
        Value::Object(m) if matches!(mutation, Mutation::Remove) => {
            m.remove(&key);
            return;
        }
        Value::Array(l) if matches!(mutation, Mutation::Remove) => {
            if let Ok(i) = key.parse::<usize>()
                && i < l.len()
            {
                l.remove(i);
            }
            return;
        }
        Value::Object(m) => m.get_mut(&key),
        Value::Array(l) => key.parse::<usize>().ok().and_then(|i| l.get_mut(i)),
        _ => None,
    };
    if let Some(slot) = slot {
        *slot = match mutation {
            Mutation::Replace(v) => v.clone(),
            Mutation::Huge(n) => Value::String("x".repeat(*n)),
            Mutation::Remove => Value::Null,
        };
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&body)?;
    }

    #[test]
    fn arbitrary_json(value in any_json()) {
        check(&serde_json::to_vec(&value).unwrap_or_default())?;
    }

    #[test]
    fn arbitrary_request_with_a_uid(request in any_json(), uid in "[a-z0-9-]{1,36}") {
        let mut request = request;
        if let Value::Object(m) = &mut request {
            m.insert("uid".into(), json!(uid));
        }
        check(&serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "request": request})).unwrap_or_default())?;
    }

    #[test]
    fn mutated_fixture_reviews(picks in prop::collection::vec((any::<prop::sample::Index>(), mutation()), 1..4)) {
        let mut review = fixtures::review();
        for (index, mutation) in &picks {
            let mut all = Vec::new();
            pointers(&review, String::new(), &mut all);
            if all.is_empty() {
                break;
            }
            let pointer = all[index.index(all.len())].clone();
            mutate(&mut review, &pointer, mutation);
        }
        let body = serde_json::to_vec(&review).unwrap_or_default();
        check(&body)?;
        check_with(&body, &passt_vmi())?;
    }
}

#[test]
fn the_fixture_itself_satisfies_the_contract() {
    let body = serde_json::to_vec(&fixtures::review()).unwrap_or_default();
    assert!(check(&body).is_ok());
    assert!(check_with(&body, &passt_vmi()).is_ok());
    let reviewed = patch::review(&body, &Policy::default()).map(|r| r.patch_len);
    // shareProcessNamespace, sidecar, 2 volumes, status + reason-source annotations, scrape label.
    assert_eq!(reviewed.ok(), Some(7));
}
