//! Bakes the source revision into [`build`](src/build.rs): `KMC_REVISION` as the release and
//! image scripts set it (`git rev-parse HEAD`), "unknown" when unset, so that a checkout without
//! `.git` (a source tarball) still builds. Nothing here runs git: a build script that did would
//! have to watch `.git`'s files, which live elsewhere in a worktree.

fn main() {
    println!("cargo::rerun-if-env-changed=KMC_REVISION");
    let revision = match std::env::var("KMC_REVISION") {
        Ok(value) if is_revision(&value) => value,
        Ok(value) => {
            // A label value and a --version line: only what a git revision is made of.
            println!("cargo::warning=KMC_REVISION {value:?} is not a revision; using \"unknown\"");
            "unknown".to_owned()
        }
        Err(_) => "unknown".to_owned(),
    };
    println!("cargo::rustc-env=KMC_BUILD_REVISION={revision}");
}

/// Hex digits, optionally followed by `-dirty`: what `git rev-parse HEAD` and the scripts print.
fn is_revision(value: &str) -> bool {
    let hex = value.strip_suffix("-dirty").unwrap_or(value);
    (4..=64).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit())
}
