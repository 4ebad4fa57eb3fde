//! `--version` of the built webhook, with and without a subcommand.

use kube_metrics_contract::build::{REVISION, VERSION};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_kube-metrics-webhook");

#[test]
fn version_names_the_release_and_the_revision() {
    let want = format!("kube-metrics-webhook {VERSION} (revision {REVISION})\n");
    for args in [&["--version"][..], &["-V"], &["serve", "--version"]] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert_eq!(String::from_utf8(out.stdout).unwrap(), want, "{args:?}");
    }
    let out = Command::new(BIN)
        .args(["certgen", "--version"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .ends_with(&format!(" {VERSION} (revision {REVISION})\n"))
    );
}
