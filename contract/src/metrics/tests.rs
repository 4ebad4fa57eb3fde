//! The families, their labels and the profiles, held to one another.

use super::*;

#[test]
fn same_bytes_is_equality() {
    assert!(!same_bytes(b"qemu", b"qemu-kvm"));
    assert!(!same_bytes(b"qemu", b"qemv"));
    assert!(same_bytes(b"", b""));
    assert!(same_bytes(b"qemu", b"qemu"));
}

#[test]
fn families_are_unique_and_typed_as_the_text_format_spells_it() {
    for (i, f) in FAMILIES.iter().enumerate() {
        assert!(
            matches!(f.kind, "counter" | "gauge"),
            "{}: {}",
            f.name,
            f.kind
        );
        assert_eq!(family_type(f.name), Some(f.kind));
        assert_eq!(family_index(f.name), Some(i));
        assert!(
            FAMILIES[..i].iter().all(|g| g.name != f.name),
            "{} twice",
            f.name
        );
    }
    assert_eq!(family_type("up"), None);
    assert_eq!(family_type(POD_INFO), Some("gauge"));
}

#[test]
fn label_lists_are_label_names_without_repeats_or_reserved_ones() {
    for f in FAMILIES {
        for (i, label) in f.labels.iter().enumerate() {
            let mut chars = label.chars();
            assert!(
                chars.next().is_some_and(|c| c.is_ascii_lowercase()),
                "{label}"
            );
            assert!(chars.all(|c| c.is_ascii_lowercase() || c == '_'), "{label}");
            assert!(!f.labels[..i].contains(label), "{}: {label} twice", f.name);
            assert!(!["job", "instance"].contains(label), "{}: {label}", f.name);
            let relayed = RELAY_LABELS.contains(label) || *label == "node";
            assert!(!relayed || f.name == POD_INFO, "{}: {label}", f.name);
        }
    }
}

#[test]
fn the_default_profile_names_families_and_labels_the_collector_writes() {
    for (i, (name, keep)) in DEFAULT_PROFILE.iter().enumerate() {
        let f = family(name).unwrap_or_else(|| panic!("{name} is no family"));
        assert!(
            DEFAULT_PROFILE[..i].iter().all(|(n, _)| n != name),
            "{name} twice"
        );
        match keep {
            Keep::Only { label, values } => {
                assert!(f.labels.contains(label), "{name}: no label {label}");
                assert!(!values.is_empty(), "{name}");
            }
            Keep::RolesSeenAnd(_) => assert!(f.labels.contains(&"process"), "{name}"),
            Keep::NonZero => assert_eq!(f.kind, "gauge", "{name}"),
            Keep::All => {}
        }
    }
    // The relay and every join need the pod's identity.
    assert_eq!(Profile::Default.keeps(POD_INFO), Some(Keep::All));
    assert_eq!(Profile::Default.keeps("kubevirt_pod_infra_threads"), None);
    assert_eq!(Profile::Default.keeps("up"), None);
    for f in FAMILIES {
        assert_eq!(Profile::Full.keeps(f.name), Some(Keep::All), "{}", f.name);
    }
    assert_eq!(Profile::Full.keeps("up"), None);
}

#[test]
fn keep_judges_samples_by_label_and_value() {
    let only = Keep::Only {
        label: "type",
        values: &["resident"],
    };
    assert!(only.sample(&[("process", "qemu"), ("type", "resident")], 0.0));
    assert!(!only.sample(&[("process", "qemu"), ("type", "virtual")], 1.0));
    assert!(!only.sample(&[], 1.0));
    assert!(Keep::NonZero.sample(&[], 2.0) && !Keep::NonZero.sample(&[], 0.0));
    assert!(Keep::All.sample(&[], 0.0));
}

#[test]
fn profiles_parse_from_their_names() {
    for profile in Profile::ALL {
        assert_eq!(profile.as_str().parse(), Ok(profile));
        assert_eq!(profile.to_string(), profile.as_str());
    }
    assert_eq!(Profile::default(), Profile::Default);
    let err = "Full".parse::<Profile>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "no metrics profile \"Full\" (one of: default, full)"
    );
}

#[test]
fn label_counts_are_the_longest_lists() {
    assert_eq!(MAX_LABELS, 6);
    // qemu_thread_cpu_seconds_total and the budgets: five of their own, namespace and pod.
    assert_eq!(MAX_RELAYED_LABELS, 7);
    assert!(contains(&["a", "bc"], "bc") && !contains(&["a", "bc"], "b"));
}
