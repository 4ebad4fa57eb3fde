//! `--version` of the built binary and of its subcommands, and the revision `build_info` carries:
//! the same line a release's image answers with (scripts/release checks it against git).

use kube_metrics_contract::build::{REVISION, VERSION};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_kube-metrics-collector");

fn stdout(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn version_names_the_release_and_the_revision() {
    let want = format!("kube-metrics-collector {VERSION} (revision {REVISION})\n");
    assert_eq!(stdout(&["--version"]), want);
    assert_eq!(stdout(&["-V"]), want);
    // The DaemonSets run subcommands: an admin asks them, too.
    for sub in ["relay", "node", "probe"] {
        let line = stdout(&[sub, "--version"]);
        assert!(
            line.ends_with(&format!(" {VERSION} (revision {REVISION})\n")),
            "{sub}: {line}"
        );
    }
}

#[test]
fn build_info_carries_the_same_revision() {
    // build_info is in the full profile only: nothing the default one serves reads it.
    let text = stdout(&[
        "-M",
        "--metrics-profile",
        "full",
        "--podinfo",
        "/nonexistent/podinfo",
    ]);
    let want = format!(
        "kube_metrics_collector_build_info{{version=\"{VERSION}\",revision=\"{REVISION}\"}} 1"
    );
    assert!(
        text.lines().any(|l| l == want),
        "no `{want}` in:\n{}",
        text.lines()
            .filter(|l| l.contains("build_info"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
