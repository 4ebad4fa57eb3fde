//! The kubelet's pod log directories, `<pod-logs>/<namespace>_<name>_<uid>`: the one place on the
//! node where the kubelet writes a pod's namespace and name next to its uid from the API object
//! itself. A pod's own spec chooses which field each downward-API file holds (a file called
//! `namespace` may hold an annotation), so these names are what the relay attributes a uid to.
//! Blocking file I/O; callers run it off the async workers. Only names are read, never a log.

use std::collections::HashMap;
use std::path::Path;

use rustix::fs::{Dir, Mode, OFlags};

use super::Identity;

/// Who each pod uid is, by the log directory names; a uid named twice is left out.
pub fn read(dir: &Path) -> std::io::Result<HashMap<String, Identity>> {
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    for entry in Dir::read_from(&fd)? {
        let entry = entry?;
        if let Ok(name) = entry.file_name().to_str() {
            names.push(name.to_owned());
        }
    }
    Ok(index(names.iter().map(String::as_str)))
}

/// Maps each uid to its identity; a uid that two names claim maps to nothing.
pub fn index<'a>(names: impl Iterator<Item = &'a str>) -> HashMap<String, Identity> {
    let mut found: HashMap<String, Option<Identity>> = HashMap::new();
    for (uid, identity) in names.filter_map(parse) {
        found
            .entry(uid.to_owned())
            .and_modify(|seen| *seen = None)
            .or_insert(Some(identity));
    }
    found
        .into_iter()
        .filter_map(|(uid, id)| Some((uid, id?)))
        .collect()
}

/// `<namespace>_<name>_<uid>`: Kubernetes allows no `_` in any of the three.
pub fn parse(name: &str) -> Option<(&str, Identity)> {
    let mut parts = name.split('_');
    let (namespace, pod, uid) = (parts.next()?, parts.next()?, parts.next()?);
    let valid = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    };
    if parts.next().is_some() || ![namespace, pod, uid].into_iter().all(valid) {
        return None;
    }
    Some((
        uid,
        Identity {
            namespace: namespace.to_owned(),
            pod: pod.to_owned(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ns: &str, pod: &str) -> Identity {
        Identity {
            namespace: ns.into(),
            pod: pod.into(),
        }
    }

    #[test]
    fn table_of_log_directory_names() {
        let uid = "6f1c0e8a-0000-4000-8000-000000000001";
        let name = format!("ns-a_virt-launcher-vm-abcde_{uid}");
        assert_eq!(
            parse(&name),
            Some((uid, id("ns-a", "virt-launcher-vm-abcde")))
        );
        for bad in [
            "",
            "ns_pod",
            "ns_pod_uid_x",
            "_pod_uid",
            "ns__uid",
            "ns_pod_",
            "NS_pod_uid",
            "ns_po/d_uid",
            "..",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_uid_named_twice_names_nobody() {
        let map = index(["a_p_u1", "b_q_u2", "c_r_u2", "junk"].into_iter());
        assert_eq!(map.get("u1"), Some(&id("a", "p")));
        assert_eq!(map.get("u2"), None);
        assert_eq!(map.len(), 1);
    }
}
