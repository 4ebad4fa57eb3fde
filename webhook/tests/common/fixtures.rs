//! The JSON fixtures under `tests/fixtures`, read by name. A missing or broken file panics with its
//! path: the test cannot say anything without it.
use serde_json::Value;
use std::path::{Path, PathBuf};

/// `tests/fixtures/vmi/<name>.json`: one VMI per binding and per unsafe VM type.
pub fn vmi_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/vmi/{name}.json"))
}

/// The VMI fixture `name`, as the API server would return it.
pub fn vmi(name: &str) -> Value {
    json(&vmi_path(name))
}

/// The AdmissionReview of [`super::FIXTURE`], parsed.
pub fn review() -> Value {
    json(Path::new(super::FIXTURE))
}

/// The AdmissionReview of [`super::FIXTURE`], its pod owned by the VMI `vm` of uid `uid` (as
/// virt-controller writes both: the owner reference, the domain annotation, the created-by label).
pub fn review_for(vm: &str, uid: &str) -> Vec<u8> {
    let mut review = review();
    let metadata = &mut review["request"]["object"]["metadata"];
    metadata["ownerReferences"][0]["name"] = vm.into();
    metadata["ownerReferences"][0]["uid"] = uid.into();
    metadata["annotations"]["kubevirt.io/domain"] = vm.into();
    metadata["labels"]["kubevirt.io/created-by"] = uid.into();
    serde_json::to_vec(&review).unwrap_or_default()
}

/// Reads one JSON file.
pub fn json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}
