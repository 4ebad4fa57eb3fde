//! `/proc/<pid>/cgroup` -> the uid of the Kubernetes pod the process runs in. No I/O.
//!
//! The kubelet names each pod's cgroup after the pod's uid, under `kubepods`, with either driver:
//!
//! - systemd: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/...`,
//!   the uid's dashes written as `_` (systemd reserves `-` for nesting);
//! - cgroupfs: `/kubepods/burstable/pod<uid>/<container>`;
//!
//! guaranteed pods sit directly under `kubepods` (no QoS level). On cgroup v1 every controller has
//! its own line (`4:memory:/kubepods/...`), on v2 there is one (`0::/kubepods...`). A reader in its
//! own cgroup namespace (a container, even with hostPID) sees other pods' paths relative to its own
//! root, e.g. `0::/../../kubepods-besteffort.slice/...`, so the pod's segment is looked for
//! anywhere in the path, not only at its start.

/// The pod uid named by a whole `cgroup` file: every line that names one must name the same.
pub fn pod_uid(file: &[u8]) -> Option<String> {
    let mut found: Option<String> = None;
    for line in file.split(|&b| b == b'\n') {
        let Some(uid) = line_pod_uid(line) else {
            continue;
        };
        match &found {
            Some(seen) if *seen != uid => return None,
            Some(_) => {}
            None => found = Some(uid),
        }
    }
    found
}

/// One `<id>:<controllers>:<path>` line.
fn line_pod_uid(line: &[u8]) -> Option<String> {
    let mut fields = line.splitn(3, |&b| b == b':');
    let (_id, _controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
    let segments: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
    for (i, segment) in segments.iter().enumerate() {
        if let Some(uid) = systemd_segment(segment) {
            return Some(uid);
        }
        let parent = i.checked_sub(1).and_then(|p| segments.get(p));
        if let (Some(rest), Some(parent)) = (segment.strip_prefix(b"pod"), parent)
            && matches!(*parent, b"kubepods" | b"burstable" | b"besteffort" | b"..")
            && is_uid(rest)
        {
            return std::str::from_utf8(rest).ok().map(str::to_owned);
        }
    }
    None
}

/// `kubepods[-<qos>]-pod<uid with _>.slice`, possibly with a prefix (`kubelet-kubepods-...`).
fn systemd_segment(segment: &[u8]) -> Option<String> {
    let name = segment.strip_suffix(b".slice")?;
    let dash = name.iter().rposition(|&b| b == b'-')?;
    let (parents, last) = (name.get(..dash)?, name.get(dash + 1..)?);
    if !parents.ends_with(b"kubepods")
        && !parents.ends_with(b"kubepods-burstable")
        && !parents.ends_with(b"kubepods-besteffort")
    {
        return None;
    }
    let uid: Vec<u8> = last
        .strip_prefix(b"pod")?
        .iter()
        .map(|&b| if b == b'_' { b'-' } else { b })
        .collect();
    is_uid(&uid).then(|| String::from_utf8(uid).ok())?
}

/// A pod uid: a UUID (lower-case hex, dashes at 8, 13, 18, 23), or the 32 hex digits of a static
/// pod's config hash.
fn is_uid(s: &[u8]) -> bool {
    let hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
    match s.len() {
        32 => s.iter().all(hex),
        36 => s.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => hex(b),
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const UID: &str = "6f1c0e8a-1234-4abc-8def-0123456789ab";

    #[test]
    fn table_of_captured_cgroup_files() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            (
                "v2 systemd burstable containerd",
                "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6f1c0e8a_1234_4abc_8def_0123456789ab.slice/cri-containerd-0d4b1c2e3f.scope\n",
                Some(UID),
            ),
            (
                "v2 systemd besteffort crio",
                "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod6f1c0e8a_1234_4abc_8def_0123456789ab.slice/crio-0d4b1c2e3f.scope\n",
                Some(UID),
            ),
            (
                "v2 systemd guaranteed docker",
                "0::/kubepods.slice/kubepods-pod6f1c0e8a_1234_4abc_8def_0123456789ab.slice/docker-0d4b1c2e3f.scope\n",
                Some(UID),
            ),
            (
                "v2 systemd, the pod slice itself (pause before its scope exists)",
                "0::/kubepods.slice/kubepods-pod6f1c0e8a_1234_4abc_8def_0123456789ab.slice\n",
                Some(UID),
            ),
            (
                "v2 systemd seen from another pod's cgroup namespace",
                "0::/../../../kubepods-besteffort.slice/kubepods-besteffort-pod6f1c0e8a_1234_4abc_8def_0123456789ab.slice/cri-containerd-ab.scope\n",
                Some(UID),
            ),
            (
                "v2 systemd, kind's kubelet-kubepods prefix",
                "0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/kubelet-kubepods-burstable-pod6f1c0e8a_1234_4abc_8def_0123456789ab.slice/cri-containerd-ab.scope\n",
                Some(UID),
            ),
            (
                "v2 systemd under a test-owned subtree",
                "0::/kmc-test-1/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6f1c0e8a_1234_4abc_8def_0123456789ab.slice/cri-containerd-ab.scope\n",
                Some(UID),
            ),
            (
                "v2 cgroupfs burstable",
                "0::/kubepods/burstable/pod6f1c0e8a-1234-4abc-8def-0123456789ab/0d4b1c2e3f\n",
                Some(UID),
            ),
            (
                "v2 cgroupfs besteffort",
                "0::/kubepods/besteffort/pod6f1c0e8a-1234-4abc-8def-0123456789ab/0d4b1c2e3f\n",
                Some(UID),
            ),
            (
                "v2 cgroupfs guaranteed",
                "0::/kubepods/pod6f1c0e8a-1234-4abc-8def-0123456789ab/0d4b1c2e3f\n",
                Some(UID),
            ),
            (
                "v2 cgroupfs seen from another cgroup namespace",
                "0::/../../../besteffort/pod6f1c0e8a-1234-4abc-8def-0123456789ab/0d4b1c2e3f\n",
                Some(UID),
            ),
            (
                "v2 cgroupfs static pod (config hash uid)",
                "0::/kubepods/burstable/pod0123456789abcdef0123456789abcdef/ctr\n",
                Some("0123456789abcdef0123456789abcdef"),
            ),
            (
                "v1 cgroupfs, several controllers and a named hierarchy",
                "12:pids:/kubepods/burstable/pod6f1c0e8a-1234-4abc-8def-0123456789ab/0d4b\n\
                 11:cpu,cpuacct:/kubepods/burstable/pod6f1c0e8a-1234-4abc-8def-0123456789ab/0d4b\n\
                 4:memory:/kubepods/burstable/pod6f1c0e8a-1234-4abc-8def-0123456789ab/0d4b\n\
                 1:name=systemd:/kubepods/burstable/pod6f1c0e8a-1234-4abc-8def-0123456789ab/0d4b\n\
                 0::/\n",
                Some(UID),
            ),
            (
                "v1 systemd driver",
                "4:memory:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6f1c0e8a_1234_4abc_8def_0123456789ab.slice/docker-0d4b.scope\n\
                 1:name=systemd:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6f1c0e8a_1234_4abc_8def_0123456789ab.slice/docker-0d4b.scope\n",
                Some(UID),
            ),
            (
                "v1 lines that disagree name nobody",
                "4:memory:/kubepods/pod6f1c0e8a-1234-4abc-8def-0123456789ab/a\n\
                 3:cpu:/kubepods/pod6f1c0e8a-1234-4abc-8def-0123456789ac/a\n",
                None,
            ),
            ("host process, v2", "0::/system.slice/sshd.service\n", None),
            (
                "host process, v1",
                "4:memory:/user.slice\n1:name=systemd:/init.scope\n",
                None,
            ),
            ("root cgroup", "0::/\n", None),
            (
                "not under kubepods",
                "0::/system.slice/pod6f1c0e8a-1234-4abc-8def-0123456789ab/x\n",
                None,
            ),
            (
                "upper-case uid",
                "0::/kubepods/pod6F1C0E8A-1234-4ABC-8DEF-0123456789AB/x\n",
                None,
            ),
            ("short uid", "0::/kubepods/pod6f1c0e8a/x\n", None),
            (
                "not a slice",
                "0::/kubepods.slice/kubepods-pod6f1c0e8a_1234_4abc_8def_0123456789ab.scope\n",
                None,
            ),
            ("empty", "", None),
            ("no fields", "garbage\n", None),
        ];
        for (name, file, want) in cases {
            assert_eq!(pod_uid(file.as_bytes()).as_deref(), *want, "{name}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = pod_uid(&bytes);
        }

        #[test]
        fn finds_any_uid_in_either_layout(
            uid in "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            qos in prop_oneof![Just(""), Just("burstable"), Just("besteffort")],
        ) {
            // Guaranteed pods have no QoS slice: `kubepods.slice/kubepods-pod<uid>.slice`.
            let (qos_slice, pod_prefix) = if qos.is_empty() {
                (String::new(), "kubepods".to_owned())
            } else {
                (format!("/kubepods-{qos}.slice"), format!("kubepods-{qos}"))
            };
            let systemd = format!(
                "0::/kubepods.slice{qos_slice}/{pod_prefix}-pod{}.slice/crio-1.scope\n",
                uid.replace('-', "_")
            );
            let cgroupfs_qos = if qos.is_empty() { String::new() } else { format!("/{qos}") };
            let cgroupfs = format!("4:memory:/kubepods{cgroupfs_qos}/pod{uid}/1\n");
            prop_assert_eq!(pod_uid(systemd.as_bytes()), Some(uid.clone()));
            prop_assert_eq!(pod_uid(cgroupfs.as_bytes()), Some(uid));
        }
    }
}
