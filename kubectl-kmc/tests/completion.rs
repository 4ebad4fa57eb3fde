//! Shell completion as a shell and kubectl use it: the bash script sourced by a real bash, and
//! the `kubectl_complete-kmc` protocol answered by the binary through the shipped script.

use std::path::Path;
use std::process::Command;

fn kmc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kubectl-kmc"))
}

#[test]
fn bash_completes_subcommands_and_flags() {
    let script = kmc().args(["completion", "bash"]).output().expect("run");
    assert!(script.status.success());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kmc.bash");
    std::fs::write(&path, &script.stdout).expect("write");
    let complete = |words: &str| {
        let program = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
             _kubectl__kmc kubectl-kmc \"${{COMP_WORDS[-1]}}\" \"${{COMP_WORDS[-2]}}\"; \
             echo \"${{COMPREPLY[@]}}\"",
            path.display()
        );
        let output = Command::new("bash")
            .args(["-c", &program])
            .output()
            .expect("bash");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    assert_eq!(complete("kubectl-kmc rec"), "recommend");
    assert_eq!(complete("kubectl-kmc check --webhook"), "--webhook-config");
}

#[test]
fn kubectl_plugin_completion_goes_through_the_shipped_script() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("completion/kubectl_complete-kmc");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_kubectl-kmc"))
        .parent()
        .expect("bin dir")
        .to_owned();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new(shipped)
        .args(["top", "--sort"])
        .env("PATH", path)
        .output()
        .expect("run kubectl_complete-kmc");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "--sort-by\n:4\n");
}
