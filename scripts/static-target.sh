# Sourced by scripts/build-image and scripts/release, not run: sets `target` to the Rust target the
# static binaries are built for, and RUSTFLAGS to match, so that both scripts share one set of
# compiled dependencies. musl when its target is installed; otherwise glibc linked statically (the
# binaries resolve no user or host names, so glibc's NSS caveats of static linking do not apply).
if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
    target=x86_64-unknown-linux-musl
else
    target=x86_64-unknown-linux-gnu
    case " ${RUSTFLAGS:-} " in
        *" -C target-feature=+crt-static "*) ;;
        *) export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" ;;
    esac
fi

# The revision every binary reports (--version, build_info; contract/build.rs): the commit, with
# `-dirty` when the work tree differs from it. Outside a git checkout it stays unset: "unknown".
if [[ -z "${KMC_REVISION:-}" ]] && revision="$(git rev-parse HEAD 2>/dev/null)"; then
    if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
        revision="$revision-dirty"
    fi
    export KMC_REVISION="$revision"
fi
