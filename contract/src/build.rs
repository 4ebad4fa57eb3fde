//! What every binary says about its own build: `--version` and `*_build_info`.

/// The workspace version (Cargo.toml), the release's number.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git revision the binaries were built from: `KMC_REVISION` at build time (scripts/release
/// and scripts/build-image set it), "unknown" when the build did not say (contract/build.rs).
pub const REVISION: &str = env!("KMC_BUILD_REVISION");

/// What `--version` prints after the binary's name: `0.1.0 (revision 9630bcf...)`.
pub fn long_version() -> &'static str {
    static LINE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    LINE.get_or_init(|| format!("{VERSION} (revision {REVISION})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_version_and_revision() {
        assert_eq!(
            long_version(),
            format!("{} (revision {})", env!("CARGO_PKG_VERSION"), REVISION)
        );
        assert!(!REVISION.is_empty() && !REVISION.contains(char::is_whitespace));
    }
}
