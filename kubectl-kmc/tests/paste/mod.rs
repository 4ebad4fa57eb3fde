//! Pastes the commands `recommend -o yaml` prints into a shell, as an admin would: each must
//! parse (`sh -n`), and run against a fake `kubectl` (a script first on the `PATH` that records
//! its argv, NUL-separated) it must give exactly the argv that was meant.
#![allow(dead_code)] // Not every test uses every helper.

use std::path::Path;
use std::process::Command;

/// The printed commands: every comment line that starts with `kubectl `.
pub fn commands(yaml: &str) -> Vec<String> {
    yaml.lines()
        .filter_map(|l| l.strip_prefix("# kubectl "))
        .map(|c| format!("kubectl {c}"))
        .collect()
}

/// The argv `kubectl` receives when `command` is pasted into `sh`; panics when `sh -n` rejects
/// it or the shell fails.
pub fn argv(command: &str, dir: &Path) -> Vec<String> {
    let checked = Command::new("sh")
        .args(["-n", "-c", command])
        .output()
        .expect("sh -n");
    assert!(
        checked.status.success(),
        "sh -n rejects {command:?}: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let fake = bin.join("kubectl");
    std::fs::write(
        &fake,
        "#!/bin/sh\nfor arg in \"$@\"; do printf '%s\\0' \"$arg\"; done > \"$KMC_ARGV\"\n",
    )
    .expect("fake kubectl");
    set_executable(&fake);
    let out = dir.join("argv");
    let _ = std::fs::remove_file(&out);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let ran = Command::new("sh")
        .args(["-c", command])
        .env("PATH", path)
        .env("KMC_ARGV", &out)
        .output()
        .expect("sh");
    assert!(
        ran.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let recorded =
        std::fs::read(&out).unwrap_or_else(|e| panic!("{command:?} ran no kubectl: {e}"));
    recorded
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

fn set_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let mut permissions = std::fs::metadata(path).expect("stat").permissions();
    permissions.set_mode(0o755);
    std::fs::set_permissions(path, permissions).expect("chmod");
}

/// What the command that patches VM `namespace/vm` with `mi` Mi of addedOverhead must pass.
pub fn vm_patch(namespace: &str, vm: &str, mi: u64) -> Vec<String> {
    let patch = format!(
        "{{\"spec\":{{\"template\":{{\"spec\":{{\"domain\":{{\"memory\":{{\"reservedOverhead\":{{\"addedOverhead\":\"{mi}Mi\"}}}}}}}}}}}}}}"
    );
    [
        "patch", "vm", vm, "-n", namespace, "--type", "merge", "-p", &patch,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// What the command that sets the ratio must pass.
pub fn ratio_patch(ratio: &str) -> Vec<String> {
    let patch = format!(
        "{{\"spec\":{{\"configuration\":{{\"additionalGuestMemoryOverheadRatio\":\"{ratio}\"}}}}}}"
    );
    [
        "patch", "kubevirt", "kubevirt", "-n", "kubevirt", "--type", "merge", "-p", &patch,
    ]
    .map(str::to_owned)
    .to_vec()
}
