//! `--version` of the built webhook, with and without a subcommand.

use kube_metrics_contract::build::{REVISION, VERSION};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_kube-metrics-webhook");

#[test]
fn version_names_the_release_and_the_revision() {
    // clap names a subcommand's version line after the subcommand.
    for (args, name) in [
        (&["--version"][..], "kube-metrics-webhook"),
        (&["-V"], "kube-metrics-webhook"),
        (&["serve", "--version"], "kube-metrics-webhook-serve"),
        (&["certgen", "--version"], "kube-metrics-webhook-certgen"),
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            format!("{name} {VERSION} (revision {REVISION})\n"),
            "{args:?}"
        );
    }
}
