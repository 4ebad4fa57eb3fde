//! Table and property tests of the roles and QEMU's thread classes.

use super::*;
use proptest::prelude::*;

fn role_of(roles: &Roles, cmdline: &[u8], comm: &[u8]) -> String {
    match roles.classify(cmdline, comm) {
        Class::Role(id) => roles.name(id).to_string(),
        Class::Excluded => "EXCLUDED".to_string(),
    }
}

#[test]
fn classifies_launcher_processes_by_argv0_basename() {
    let roles = Roles::new(&[]);
    let table: &[(&[u8], &[u8], &str)] = &[
        (
            b"/usr/bin/virt-launcher-monitor\0--qemu-timeout\0",
            b"virt-launcher-m",
            "virt-launcher-monitor",
        ),
        (b"", b"virt-launcher-m", "virt-launcher-monitor"),
        (
            b"/usr/bin/virt-launcher\0",
            b"virt-launcher",
            "virt-launcher",
        ),
        (
            b"/usr/sbin/virtqemud\0-f\0/var/run/libvirt/virtqemud.conf\0",
            b"virtqemud",
            "virtqemud",
        ),
        (b"/usr/sbin/libvirtd\0", b"libvirtd", "libvirtd"),
        (b"/usr/sbin/virtlogd\0-f\0x\0", b"virtlogd", "virtlogd"),
        (
            b"/usr/libexec/qemu-kvm\0-name\0guest=ns_vm\0",
            b"qemu-kvm",
            "qemu",
        ),
        (b"/usr/bin/qemu-system-x86_64\0", b"qemu-system-x86", "qemu"),
        (b"swtpm\0socket\0", b"swtpm", "swtpm"),
        (b"passt.avx2\0", b"passt.avx2", "passt"),
        (b"/usr/libexec/virtiofsd\0", b"virtiofsd", "virtiofsd"),
        (b"/usr/bin/virt-tail\0", b"virt-tail", "virt-tail"),
        (
            b"/usr/bin/container-disk\0--copy-path\0",
            b"container-disk",
            "container-disk",
        ),
        (b"/usr/bin/virt-probe\0", b"virt-probe", "other"),
        (b"", b"kworker/0:1", "other"),
        (b"/pause\0", b"pause", "EXCLUDED"),
        (
            b"/usr/bin/kube-metrics-collector\0probe\0",
            b"kube-metrics-co",
            "EXCLUDED",
        ),
        (b"", b"kube-metrics-co", "EXCLUDED"),
        (b"passtime\0", b"passtime", "other"),
    ];
    for (cmdline, comm, want) in table {
        assert_eq!(
            role_of(&roles, cmdline, comm),
            *want,
            "{}",
            String::from_utf8_lossy(cmdline)
        );
    }
}

#[test]
fn extra_roles_come_first_and_may_join_a_builtin() {
    let rules = [
        "sidecar=envoy".parse().unwrap(),
        "virt-tail=tail".parse().unwrap(),
    ];
    let roles = Roles::new(&rules);
    assert_eq!(roles.names().last().map(String::as_str), Some("sidecar"));
    assert_eq!(roles.len(), BUILTIN_ROLES.len() + 1);
    assert_eq!(
        role_of(&roles, b"/usr/local/bin/envoy\0", b"envoy"),
        "sidecar"
    );
    assert_eq!(role_of(&roles, b"tail\0-f\0", b"tail"), "virt-tail");
}

#[test]
fn role_rule_rejects_qemu_strings_and_bad_shapes() {
    assert_eq!(
        "x=qemu-kvm".parse::<RoleRule>(),
        Err(RoleRuleError::Forbidden("qemu-kvm"))
    );
    assert_eq!(
        "qemu-system-x=y".parse::<RoleRule>(),
        Err(RoleRuleError::Forbidden("qemu-system"))
    );
    assert_eq!("noequals".parse::<RoleRule>(), Err(RoleRuleError::Shape));
    assert_eq!("=x".parse::<RoleRule>(), Err(RoleRuleError::Shape));
    assert_eq!(
        "a=/usr/bin/x".parse::<RoleRule>(),
        Err(RoleRuleError::Shape)
    );
    let ok: RoleRule = "db=postgres".parse().unwrap();
    assert_eq!((ok.name.as_str(), ok.basename.as_str()), ("db", "postgres"));
}

#[test]
fn classifies_qemu_threads() {
    let table: &[(&[u8], ThreadClass)] = &[
        (b"CPU 0/KVM", ThreadClass::Vcpu),
        (b"CPU 15/TCG", ThreadClass::Vcpu),
        (b"CPU x/KVM", ThreadClass::Other),
        (b"CPU 1/XEN", ThreadClass::Other),
        (b"IO iothread1", ThreadClass::Iothread),
        (b"IO mon_iothread", ThreadClass::Iothread),
        (b"worker", ThreadClass::Other),
        (b"qemu-kvm", ThreadClass::Other),
        (b"vnc_worker", ThreadClass::Other),
    ];
    for (comm, want) in table {
        assert_eq!(
            ThreadClass::of(comm),
            *want,
            "{}",
            String::from_utf8_lossy(comm)
        );
    }
}

#[test]
fn finds_guest_name_in_qemu_cmdline() {
    let c = b"/usr/libexec/qemu-kvm\0-name\0guest=ns-0_vm-0,debug-threads=on\0-S\0";
    assert_eq!(qemu_guest_name(c).as_deref(), Some("vm-0"));
    let c = b"qemu-kvm\0-name=debug-threads=on,guest=default_my_vm\0";
    assert_eq!(qemu_guest_name(c).as_deref(), Some("my_vm"));
    assert_eq!(qemu_guest_name(b"qemu-kvm\0-name\0"), None);
    let at_cap = format!("qemu-kvm\0-name\0guest=ns_{}\0", "v".repeat(MAX_GUEST_NAME));
    assert_eq!(
        qemu_guest_name(at_cap.as_bytes()).map(|n| n.len()),
        Some(MAX_GUEST_NAME)
    );
    let over = format!("qemu-kvm\0-name\0guest=ns_{}\0", "v".repeat(130_000));
    assert_eq!(qemu_guest_name(over.as_bytes()), None);
    assert_eq!(qemu_guest_name(b"qemu-kvm\0-name\0guest=novm\0"), None);
    assert_eq!(qemu_guest_name(b""), None);
}

proptest! {
    #[test]
    fn role_flag_and_classifier_never_panic(s in "\\PC{0,40}", bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = s.parse::<RoleRule>();
        let roles = Roles::new(&[]);
        let _ = roles.classify(&bytes, &bytes);
        let _ = ThreadClass::of(&bytes);
        let _ = qemu_guest_name(&bytes);
    }
}

#[test]
fn builtin_role_ids_name_their_roles() {
    let roles = Roles::new(&[]);
    for (id, name) in [(Roles::QEMU, "qemu"), (Roles::OTHER, "other")] {
        assert_eq!(roles.name(id), name);
    }
    assert_eq!(builtin("virt-launcher-monitor"), 0);
    assert_eq!(builtin("container-disk"), 10);
}
