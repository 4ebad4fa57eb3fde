//! `kubectl kmc --version`: what the krew archive's binary answers (scripts/release runs it).

use kube_metrics_contract::build::{REVISION, VERSION};
use std::process::Command;

#[test]
fn version_names_the_release_and_the_revision() {
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-kmc"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("kubectl-kmc {VERSION} (revision {REVISION})\n")
    );
}
