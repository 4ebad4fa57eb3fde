//! Guest memory from command lines in the forms libvirt writes for KubeVirt.

use super::*;

const GIB: u64 = 1 << 30;

fn parse(argv: &[&str]) -> GuestMemory {
    GuestMemory::from_args(argv.iter().map(|a| a.as_bytes()))
}

/// An anonymous RAM backend, as most tests want one.
pub(super) fn ram(id: &str, size: u64) -> Backend {
    Backend {
        id: id.into(),
        kind: BackendKind::Ram,
        size,
        hugetlb: false,
        prealloc: false,
        mem_path: None,
    }
}

/// What libvirt 10 writes for a KubeVirt VM with 2 GiB of memory.
const LIBVIRT_2G: [&str; 6] = [
    "-machine",
    "pc-q35-rhel9.4.0,usb=off,dump-guest-core=off,memory-backend=pc.ram,hpet=off,acpi=on",
    "-m",
    "size=2097152k",
    "-object",
    r#"{"qom-type":"memory-backend-ram","id":"pc.ram","size":2147483648}"#,
];

#[test]
fn reads_boot_ram_in_every_m_form() {
    let table = [
        ("1024", 1024 << 20),
        ("4G", 4 * GIB),
        ("4g", 4 * GIB),
        ("size=2097152k", 2 * GIB),
        ("size=2097152K,slots=16,maxmem=8G", 2 * GIB),
        ("512M", 512 << 20),
    ];
    for (value, want) in table {
        let memory = parse(&["/usr/libexec/qemu-kvm", "-m", value]);
        assert_eq!(memory.size(), Some(want), "-m {value}");
        assert_eq!(memory.unparsed, 0, "-m {value}");
    }
}

#[test]
fn reads_libvirts_json_backend_of_boot_ram() {
    let memory = parse(&LIBVIRT_2G);
    assert_eq!(memory.boot, Some(2 * GIB));
    assert_eq!(memory.backends, vec![ram("pc.ram", 2 * GIB)]);
    assert_eq!(memory.size(), Some(2 * GIB));
    assert_eq!((memory.hugetlb(), memory.unparsed), (0, 0));
}

#[test]
fn reads_the_key_value_syntax_of_objects() {
    let memory = parse(&[
        "-object",
        "memory-backend-ram,id=pc.ram,size=2147483648",
        "-machine",
        "q35,memory-backend=pc.ram",
    ]);
    assert_eq!(memory.backends, vec![ram("pc.ram", 2 * GIB)]);
    assert_eq!(
        memory.boot,
        Some(2 * GIB),
        "boot RAM from the machine's backend"
    );
}

#[test]
fn marks_hugetlbfs_and_prealloc_backends() {
    let memory = parse(&[
        "-machine",
        "q35,memory-backend=pc.ram",
        "-m",
        "size=1048576k",
        "-object",
        r#"{"qom-type":"memory-backend-file","id":"pc.ram","mem-path":"/dev/hugepages/libvirt/qemu/1-default_vm","prealloc":true,"size":1073741824}"#,
    ]);
    let backend = memory.backend("pc.ram").expect("backend");
    assert_eq!(backend.kind, BackendKind::File);
    assert!(backend.hugetlb && backend.prealloc, "{backend:?}");
    assert_eq!(memory.hugetlb(), GIB);

    let memfd = parse(&[
        "-object",
        "memory-backend-memfd,id=pc.ram,hugetlb=on,hugetlbsize=2M,size=1G,prealloc=on",
    ]);
    let backend = memfd.backend("pc.ram").expect("backend");
    assert_eq!(backend.kind, BackendKind::Memfd);
    assert!(backend.hugetlb && backend.prealloc, "{backend:?}");

    let shared_file = parse(&[
        "-object",
        "memory-backend-file,id=pc.ram,mem-path=/var/lib/libvirt/qemu/ram,,x,share=on,size=1G",
    ]);
    let backend = shared_file.backend("pc.ram").expect("backend");
    assert!(!backend.hugetlb, "a plain file is not hugetlbfs");
}

#[test]
fn m_alone_is_boot_rams_backend() {
    let file = |mem_path: &str, hugetlb| Backend {
        kind: BackendKind::File,
        hugetlb,
        mem_path: Some(mem_path.into()),
        ..ram(IMPLICIT_BOOT_RAM, GIB)
    };
    let table: [(&[&str], Vec<Backend>); 7] = [
        (&["-m", "1024"], vec![ram(IMPLICIT_BOOT_RAM, GIB)]),
        (
            &["-m", "1G", "-mem-prealloc"],
            vec![Backend {
                prealloc: true,
                ..ram(IMPLICIT_BOOT_RAM, GIB)
            }],
        ),
        (
            &["-mem-path", "/dev/hugepages", "-m", "1G"],
            vec![file("/dev/hugepages", true)],
        ),
        (
            &["-m", "1G", "-mem-path", "/dev/shm"],
            vec![file("/dev/shm", false)],
        ),
        (
            &["-m", "size=1048576k,slots=2,maxmem=4G"],
            vec![ram(IMPLICIT_BOOT_RAM, GIB)],
        ),
        (
            &[
                "-M",
                "q35,memory-backend=pc.ram",
                "-m",
                "1G",
                "-object",
                "memory-backend-ram,id=pc.ram,size=1G",
            ],
            vec![ram("pc.ram", GIB)],
        ),
        (
            &[
                "-m",
                "1G",
                "-object",
                "memory-backend-ram,id=ram-node0,size=1G",
                "-numa",
                "node,nodeid=0,memdev=ram-node0",
            ],
            vec![ram("ram-node0", GIB)],
        ),
    ];
    for (argv, want) in table {
        let memory = parse(argv);
        assert_eq!(memory.backends, want, "{argv:?}");
        assert_eq!(memory.size(), Some(GIB), "{argv:?}");
        assert_eq!(memory.unparsed, 0, "{argv:?}");
    }
}

#[test]
fn sums_numa_backends_when_m_is_absent() {
    let node = |n: u32| {
        [
            "-object".to_owned(),
            format!(r#"{{"qom-type":"memory-backend-ram","id":"ram-node{n}","size":2147483648}}"#),
            "-numa".to_owned(),
            format!("node,nodeid={n},cpus={n},memdev=ram-node{n}"),
        ]
    };
    let argv: Vec<String> = node(0).into_iter().chain(node(1)).collect();
    let memory = GuestMemory::from_args(argv.iter().map(|a| a.as_bytes()));
    assert_eq!(memory.boot, Some(4 * GIB));
    assert_eq!(memory.backends.len(), 2);

    let mut with_m = vec!["-m".to_owned(), "size=4194304k".to_owned()];
    with_m.extend(argv);
    let memory = GuestMemory::from_args(with_m.iter().map(|a| a.as_bytes()));
    assert_eq!(memory.size(), Some(4 * GIB), "-m wins, not counted twice");
}

#[test]
fn counts_virtio_mem_by_its_requested_size_and_dimms_by_their_backend() {
    let memory = parse(&[
        "-m",
        "size=2097152k,slots=16,maxmem=10485760k",
        "-object",
        r#"{"qom-type":"memory-backend-ram","id":"memvirtiomem0","reserve":false,"size":8589934592}"#,
        "-device",
        r#"{"driver":"virtio-mem-pci","node":0,"block-size":2097152,"requested-size":1073741824,"memdev":"memvirtiomem0","id":"virtiomem0","bus":"pci.9","addr":"0x0"}"#,
        "-object",
        "memory-backend-ram,id=memdimm0,size=1G",
        "-device",
        "pc-dimm,node=0,memdev=memdimm0,id=dimm0,slot=0",
    ]);
    assert_eq!(memory.max, Some(10 * GIB));
    assert_eq!(memory.virtio_mem, vec![("memvirtiomem0".into(), GIB)]);
    assert_eq!(memory.dimms, vec!["memdimm0".to_owned()]);
    assert_eq!(memory.size(), Some(2 * GIB + GIB + GIB));
}

#[test]
fn ignores_what_is_not_memory() {
    let memory = parse(&[
        "-object",
        r#"{"qom-type":"secret","id":"masterKey0","format":"raw","file":"/var/lib/libvirt/qemu/master-key.aes"}"#,
        "-device",
        r#"{"driver":"virtio-net-pci","netdev":"hostua-default","id":"ua-default","mac":"02:00:00:00:00:01"}"#,
        "-numa",
        "dist,src=0,dst=1,val=20",
        "-name",
        "guest=default_vm,debug-threads=on",
    ]);
    assert_eq!(memory, GuestMemory::default());
    assert_eq!(
        memory.size(),
        None,
        "no -m and no backend: unknown, not zero"
    );
}

#[test]
fn counts_what_it_cannot_read() {
    let table: [&[&str]; 6] = [
        &["-m", "lots"],
        &["-m", "size=2097152q"],
        &["-object", "{broken"],
        &["-object", "memory-backend-ram,id=pc.ram"],
        &["-device", r#"{"driver":"pc-dimm","id":"dimm0"}"#],
        &["-m"],
    ];
    for argv in table {
        let memory = parse(argv);
        assert_eq!(memory.unparsed, 1, "{argv:?}");
        assert_eq!(memory.size(), None, "{argv:?}");
    }
}

#[test]
fn sizes_follow_qemus_suffixes() {
    let table = [
        ("0", Unit::Byte, Some(0)),
        ("1k", Unit::Byte, Some(1024)),
        ("1B", Unit::MiB, Some(1)),
        ("3T", Unit::Byte, Some(3 << 40)),
        ("16", Unit::MiB, Some(16 << 20)),
        ("16E", Unit::Byte, None),
        ("", Unit::Byte, None),
        ("1.5G", Unit::Byte, None),
        ("-1", Unit::Byte, None),
    ];
    for (text, unit, want) in table {
        assert_eq!(size(text, unit), want, "{text:?}");
    }
}

#[test]
fn splits_at_single_commas_only() {
    assert_eq!(split_commas("a,b,,c,d"), ["a", "b,,c", "d"]);
    assert_eq!(split_commas(""), [""]);
    assert_eq!(split_commas("a,"), ["a", ""]);
}

proptest::proptest! {
    #[test]
    fn never_panics(argv in proptest::collection::vec(
        proptest::prop_oneof![
            proptest::string::string_regex("-m|-M|-object|-device|-numa|-machine|-mem-path|-mem-prealloc").unwrap(),
            proptest::string::string_regex(r#"[a-z=,{}":0-9kKGM.-]{0,40}"#).unwrap(),
        ],
        0..12,
    )) {
        let memory = GuestMemory::from_args(argv.iter().map(|a| a.as_bytes()));
        let _ = (memory.size(), memory.hugetlb());
    }
}
