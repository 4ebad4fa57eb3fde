//! Sockets found under a fake kubelet root, and every way a pod's directory can be skipped.

use super::*;
use std::fs;
use std::os::unix::fs::symlink;
use std::os::unix::net::{UnixListener, UnixStream};

fn layout(root: &Path) -> Layout {
    Layout {
        kubelet_root: root.to_owned(),
        volume: "vol".into(),
        socket: "metrics.sock".into(),
        podinfo_volume: "info".into(),
        pod_logs: root.join("logs"),
    }
}

/// Writes pod `uid`'s downward-API volume as the kubelet does: files in a
/// timestamped directory, reached through `..data` and one symlink each.
fn podinfo(root: &Path, uid: &str, scrape: &str) {
    let dir = podinfo_path(&layout(root), uid);
    let data = dir.join("..2024_01_01_00_00_00.123456789");
    fs::create_dir_all(&data).unwrap();
    let labels = format!("kube-metrics-collector.io/scrape=\"{scrape}\"\n");
    for (file, value) in [
        ("uid", uid),
        ("namespace", "ns"),
        ("name", uid),
        ("labels", labels.as_str()),
    ] {
        fs::write(data.join(file), value).unwrap();
        let _ = symlink(format!("..data/{file}"), dir.join(file));
    }
    let _ = symlink("..2024_01_01_00_00_00.123456789", dir.join("..data"));
    let _ = fs::create_dir_all(root.join("logs").join(format!("ns_{uid}_{uid}")));
}

fn volume_dir(root: &Path, uid: &str) -> PathBuf {
    podinfo(root, uid, "relay");
    let dir = root
        .join("pods")
        .join(uid)
        .join("volumes")
        .join(EMPTY_DIR)
        .join("vol");
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Binds at a short path and moves the socket into place, as a test must for
/// kubelet-length paths (sun_path holds 108 bytes).
fn bind_at(root: &Path, path: &Path) -> UnixListener {
    let short = root.join("s.sock");
    let listener = UnixListener::bind(&short).unwrap();
    fs::rename(&short, path).unwrap();
    listener
}

fn summary(d: &Discovery) -> (Vec<&str>, Vec<(&str, Skipped)>) {
    (
        d.targets.iter().map(|t| t.pod_uid.as_str()).collect(),
        d.skipped
            .iter()
            .map(|(uid, s)| (uid.as_str(), *s))
            .collect(),
    )
}

#[test]
fn finds_sockets_and_skips_symlinks_and_non_sockets() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let good = volume_dir(root, "pod-a");
    let _a = bind_at(root, &good.join("metrics.sock"));
    // A pod directory that is a symlink to another pod's.
    symlink(root.join("pods/pod-a"), root.join("pods/pod-b")).unwrap();
    // A socket that is a symlink to another pod's socket.
    symlink(
        good.join("metrics.sock"),
        volume_dir(root, "pod-c").join("metrics.sock"),
    )
    .unwrap();
    // A volume directory that is a symlink out of the kubelet root.
    let outside = tempfile::tempdir().unwrap();
    let _o = bind_at(root, &outside.path().join("metrics.sock"));
    let vol_d = volume_dir(root, "pod-d");
    fs::remove_dir(&vol_d).unwrap();
    symlink(outside.path(), &vol_d).unwrap();
    // A regular file where the socket should be.
    fs::write(volume_dir(root, "pod-e").join("metrics.sock"), "x").unwrap();
    // Pods without the volume, or without the socket yet: not targets.
    fs::create_dir_all(root.join("pods/pod-f/volumes")).unwrap();
    fs::create_dir_all(root.join(format!("pods/pod-g/volumes/{EMPTY_DIR}/other"))).unwrap();
    volume_dir(root, "pod-h");
    // A stray file among the pod directories.
    fs::write(root.join("pods/stray"), "x").unwrap();
    // A pod Prometheus scrapes directly, one injected before pods had a uid file, and one
    // without a log directory.
    let direct = volume_dir(root, "pod-i");
    podinfo(root, "pod-i", "direct");
    let _i = bind_at(root, &direct.join("metrics.sock"));
    let old = volume_dir(root, "pod-j");
    fs::remove_file(podinfo_path(&layout(root), "pod-j").join("uid")).unwrap();
    let _j = bind_at(root, &old.join("metrics.sock"));
    let unlogged = volume_dir(root, "pod-k");
    fs::remove_dir(root.join("logs/ns_pod-k_pod-k")).unwrap();
    let _k = bind_at(root, &unlogged.join("metrics.sock"));

    let found = discover(&layout(root)).unwrap();
    assert_eq!(
        summary(&found),
        (
            vec!["pod-a", "pod-j"],
            vec![
                ("pod-b", Skipped::Symlink),
                ("pod-c", Skipped::Symlink),
                ("pod-d", Skipped::Symlink),
                ("pod-e", Skipped::NotSocket),
                ("pod-k", Skipped::Attest(AttestError::Missing)),
                ("stray", Skipped::Unreadable),
            ]
        )
    );
    assert_eq!(found.direct, vec!["pod-i"]);
    let a = found.targets.first().unwrap();
    assert_eq!(
        (a.identity.namespace.as_str(), a.identity.pod.as_str()),
        ("ns", "pod-a")
    );
}

#[test]
fn connect_path_reaches_the_socket_past_the_sun_path_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let uid = "0f3b2c1d-aaaa-bbbb-cccc-0123456789ab";
    let long = Layout {
        socket: format!("{}.sock", "s".repeat(40)),
        ..layout(tmp.path())
    };
    let path = socket_path(&long, uid);
    assert!(path.as_os_str().len() > 108, "{}", path.display());
    podinfo(tmp.path(), uid, "relay");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let listener = bind_at(tmp.path(), &path);
    let found = discover(&long).unwrap();
    let target = found.targets.first().unwrap();
    UnixStream::connect(target.connect_path()).unwrap();
    assert!(listener.accept().is_ok());
}

#[test]
fn a_pod_that_went_away_disappears() {
    let tmp = tempfile::tempdir().unwrap();
    let _a = bind_at(
        tmp.path(),
        &volume_dir(tmp.path(), "pod-a").join("metrics.sock"),
    );
    let _b = bind_at(
        tmp.path(),
        &volume_dir(tmp.path(), "pod-b").join("metrics.sock"),
    );
    assert_eq!(
        summary(&discover(&layout(tmp.path())).unwrap()).0,
        vec!["pod-a", "pod-b"]
    );
    fs::remove_dir_all(tmp.path().join("pods/pod-a")).unwrap();
    assert_eq!(
        summary(&discover(&layout(tmp.path())).unwrap()).0,
        vec!["pod-b"]
    );
}

#[test]
fn fails_when_pods_is_missing_or_a_symlink() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(discover(&layout(tmp.path())).is_err());
    let elsewhere = tempfile::tempdir().unwrap();
    symlink(elsewhere.path(), tmp.path().join("pods")).unwrap();
    assert!(discover(&layout(tmp.path())).is_err());
}
