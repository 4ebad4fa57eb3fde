//! Finds the workspace's binaries in cargo's target directory, building them when missing.

use anyhow::{Context as _, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// The collector's package and binary name.
const COLLECTOR: &str = "kube-metrics-collector";
/// The fake pod process, a binary of this package.
const FAKE_PROCESS: &str = "fake-process";
/// This package.
const E2E_PACKAGE: &str = "e2e";

/// Names a collector binary to use as it is, instead of the one of our own profile: the benchmark
/// measures the binary the image ships (another profile or target).
pub const COLLECTOR_OVERRIDE: &str = "KMC_COLLECTOR_BINARY";

/// The collector binary of the profile we were built with, rebuilt when `sidecar/` or a crate it
/// links changed since; or the one `$KMC_COLLECTOR_BINARY` names.
pub fn collector() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(COLLECTOR_OVERRIDE) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("{COLLECTOR_OVERRIDE}={} is not a file", path.display());
        }
        return Ok(path);
    }
    let workspace = crate::workspace();
    let sources = [
        workspace.join("sidecar"),
        workspace.join("collector"),
        workspace.join("node"),
        workspace.join("runtime"),
        workspace.join("exposition"),
        workspace.join("contract"),
        workspace.join("Cargo.toml"),
        workspace.join("Cargo.lock"),
    ];
    locate(COLLECTOR, COLLECTOR, &sources)
}

/// The fake pod process binary of the profile we were built with.
pub fn fake_process() -> Result<PathBuf> {
    // Cargo builds a package's binaries before its integration tests: no staleness to check.
    locate(E2E_PACKAGE, FAKE_PROCESS, &[])
}

/// `target/<profile>/<bin>` next to the running executable, built with `$CARGO build` when
/// missing or older than any file under `sources`.
///
/// The e2e crate does not depend on the collector's crate, so `cargo test -p e2e` alone would
/// happily run a stale collector; comparing modification times is what cargo itself does. (Not
/// always building: `cargo build -p X` may unify features differently from `cargo test
/// --workspace` and relink a binary that was fresh.) Cargo does not hold its build lock while
/// tests run, so building from a test is safe.
/// A test executable lives in `target/<profile>/deps/`, a binary in `target/<profile>/`.
fn locate(package: &str, bin: &str, sources: &[PathBuf]) -> Result<PathBuf> {
    let profile_dir = profile_dir()?;
    let path = profile_dir.join(bin);
    let built = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    let changed = sources.iter().filter_map(|s| newest(s)).max();
    let fresh = match (built, changed) {
        (Some(built), Some(changed)) => built >= changed,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if !fresh {
        build(&profile_dir, package, bin)?;
    }
    if !path.is_file() {
        bail!("`cargo build` did not produce {}", path.display());
    }
    Ok(path)
}

/// The newest modification time of `path` or of any file below it.
fn newest(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(|entry| newest(&entry.ok()?.path()))
        .max()
}

fn profile_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the running executable")?;
    let dir = exe.parent().context("executable has no directory")?;
    Ok(if dir.file_name().is_some_and(|name| name == "deps") {
        dir.parent().unwrap_or(dir).to_path_buf()
    } else {
        dir.to_path_buf()
    })
}

fn build(profile_dir: &Path, package: &str, bin: &str) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(["build", "--package", package, "--bin", bin]);
    if let Some(target_dir) = profile_dir.parent() {
        command.arg("--target-dir").arg(target_dir);
    }
    match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(profile) => {
            command.args(["--profile", profile]);
        }
    }
    let status = command
        .status()
        .with_context(|| format!("failed to run {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}
