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

/// Reads one JSON file.
pub fn json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}
