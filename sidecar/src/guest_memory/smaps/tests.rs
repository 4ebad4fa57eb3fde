//! Guest RAM in smaps captured from a real QEMU 7.2 (KVM, paused with `-S`), and synthetic cases.

use super::*;
use crate::guest_memory::tests::ram;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// `/usr/libexec/qemu-kvm ... -m size=262144k -object {memory-backend-ram pc.ram, prealloc}`.
const PREALLOC_CMDLINE: &[u8] =
    include_bytes!("../../../tests/fixtures/qemu/prealloc-256m.cmdline");
const PREALLOC_SMAPS: &[u8] = include_bytes!("../../../tests/fixtures/qemu/prealloc-256m.smaps");
/// Its `VmRSS` at the moment of the capture.
const PREALLOC_VM_RSS: u64 = 297_396 * KIB;

/// Two NUMA nodes: an anonymous `memory-backend-ram` and a shared `memory-backend-memfd`, 256 MiB
/// each, not preallocated.
const NUMA_CMDLINE: &[u8] = include_bytes!("../../../tests/fixtures/qemu/numa-memfd-512m.cmdline");
const NUMA_SMAPS: &[u8] = include_bytes!("../../../tests/fixtures/qemu/numa-memfd-512m.smaps");

/// `-m 256 -mem-prealloc` and no backend: QEMU creates boot RAM's backend itself.
const LEGACY_CMDLINE: &[u8] = include_bytes!("../../../tests/fixtures/qemu/legacy-m-256m.cmdline");
const LEGACY_SMAPS: &[u8] = include_bytes!("../../../tests/fixtures/qemu/legacy-m-256m.smaps");
/// Its `VmRSS` at the moment of the capture.
const LEGACY_VM_RSS: u64 = 297_088 * KIB;

fn memory(cmdline: &[u8]) -> GuestMemory {
    GuestMemory::from_args(crate::proc::parse::args(cmdline))
}

fn mk_smaps(maps: &[(&str, &str, u64)]) -> String {
    let mut out = String::new();
    for (range, path, rss_kib) in maps {
        out.push_str(&format!(
            "{range} rw-p 00000000 00:00 0    {path}\nSize: 1 kB\nRss:  {rss_kib} kB\nSwap: 4 kB\nVmFlags: rd wr mr mw me ac\n"
        ));
    }
    out
}

#[test]
fn preallocated_guest_ram_is_resident_to_the_page() {
    let memory = memory(PREALLOC_CMDLINE);
    assert_eq!(memory.size(), Some(256 * MIB));
    let found = resident(PREALLOC_SMAPS, &memory);
    assert_eq!((found.matched, found.unmatched), (1, 0));
    assert_eq!(found.resident, 256 * MIB);
    assert_eq!(
        PREALLOC_VM_RSS - found.resident,
        35_252 * KIB,
        "QEMU's own memory"
    );
}

#[test]
fn boot_ram_of_m_alone_is_found_like_a_ram_backend() {
    let memory = memory(LEGACY_CMDLINE);
    assert_eq!(memory.size(), Some(256 * MIB));
    let found = resident(LEGACY_SMAPS, &memory);
    assert_eq!((found.matched, found.unmatched), (1, 0));
    assert_eq!(found.resident, 256 * MIB);
    assert_eq!(found.resident + found.other, LEGACY_VM_RSS);
    assert!(found.other < 40 * MIB, "QEMU's own memory: {found:?}");
}

#[test]
fn untouched_guest_ram_is_small_and_memfd_is_found_by_name() {
    let memory = memory(NUMA_CMDLINE);
    assert_eq!(memory.size(), Some(512 * MIB));
    assert_eq!(memory.backends.len(), 2);
    let found = resident(NUMA_SMAPS, &memory);
    assert_eq!((found.matched, found.unmatched), (2, 0));
    assert!(
        found.resident < 4 * MIB,
        "a paused guest touched little: {found:?}"
    );
}

#[test]
fn joins_split_anonymous_mappings() {
    let smaps = mk_smaps(&[
        ("7f0000000000-7f0000100000", "", 512),
        ("7f0000100000-7f0000200000", "", 256),
        ("7f0000200000-7f0000201000", "[stack]", 4),
    ]);
    let memory = GuestMemory {
        backends: vec![ram("pc.ram", 2 * MIB)],
        ..GuestMemory::default()
    };
    let found = resident(smaps.as_bytes(), &memory);
    assert_eq!(found.resident, 768 * KIB);
    assert_eq!(found.other, 4 * KIB, "the stack is QEMU's own");
    assert_eq!(found.swap, 8 * KIB);
    assert_eq!(found.matched, 1);
}

#[test]
fn a_neighbour_with_the_same_permissions_is_not_guest_ram() {
    let smaps = mk_smaps(&[
        ("7f0000000000-7f0000100000", "", 1024),
        ("7f0000100000-7f0000101000", "", 4),
    ]);
    let memory = GuestMemory {
        backends: vec![ram("pc.ram", MIB)],
        ..GuestMemory::default()
    };
    let found = resident(smaps.as_bytes(), &memory);
    assert_eq!(
        (found.matched, found.resident, found.other),
        (1, MIB, 4 * KIB)
    );
}

#[test]
fn each_mapping_serves_one_backend() {
    let smaps = mk_smaps(&[("7f0000000000-7f0000100000", "", 1024)]);
    let memory = GuestMemory {
        backends: vec![ram("ram-node0", MIB), ram("ram-node1", MIB)],
        ..GuestMemory::default()
    };
    let found = resident(smaps.as_bytes(), &memory);
    assert_eq!((found.matched, found.unmatched), (1, 1));
    assert_eq!(found.resident, MIB);
}

#[test]
fn shared_ram_backends_are_anonymous_memory() {
    // As QEMU 7.2 maps `memory-backend-ram,id=pc.ram,size=256M,share=on`.
    let smaps = "7f4493e00000-7f44a3e00000 rw-s 00000000 00:01 1036                       /dev/zero (deleted)\n\
                 Rss: 2048 kB\n";
    let memory = GuestMemory {
        backends: vec![ram("pc.ram", 256 * MIB)],
        ..GuestMemory::default()
    };
    let found = resident(smaps.as_bytes(), &memory);
    assert_eq!((found.matched, found.resident), (1, 2 * MIB));
}

#[test]
fn file_backends_match_under_their_mem_path_and_count_hugetlb_apart() {
    let smaps = "7f0000000000-7f0040000000 rw-s 00000000 00:2d 1 /dev/hugepages/libvirt/qemu/1-default_vm/qemu_back_mem.pc.ram.X (deleted)\n\
                 Rss: 0 kB\nShared_Hugetlb: 0 kB\nPrivate_Hugetlb: 1048576 kB\n";
    let memory = GuestMemory {
        backends: vec![Backend {
            kind: BackendKind::File,
            hugetlb: true,
            mem_path: Some("/dev/hugepages/libvirt/qemu/1-default_vm".into()),
            ..ram("pc.ram", 1 << 30)
        }],
        ..GuestMemory::default()
    };
    let found = resident(smaps.as_bytes(), &memory);
    assert_eq!(
        (found.resident, found.hugetlb, found.matched),
        (0, 1 << 30, 1)
    );
}

#[test]
fn garbage_finds_nothing_and_does_not_panic() {
    let memory = GuestMemory {
        backends: vec![ram("pc.ram", MIB)],
        ..GuestMemory::default()
    };
    for smaps in [
        &b""[..],
        b"Rss: 5 kB\n",
        b"zz-yy rw-p 0 0 0\n",
        b"20-10 rw-p 0 0:0 0\nRss: 1 kB\n",
    ] {
        let found = resident(smaps, &memory);
        assert_eq!((found.matched, found.unmatched, found.resident), (0, 1, 0));
    }
}

proptest::proptest! {
    #[test]
    fn never_panics(smaps in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
        let memory = GuestMemory {
            backends: vec![ram("pc.ram", 4096)],
            ..GuestMemory::default()
        };
        let _ = resident(&smaps, &memory);
    }
}
