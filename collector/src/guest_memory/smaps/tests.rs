//! Guest RAM in smaps captured from a real QEMU 7.2 (paused with `-S`; KVM unless named TCG), and
//! synthetic cases.

use super::*;
use crate::guest_memory::tests::ram;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

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

/// TCG, `-m 256M,slots=2,maxmem=1G`, then over QMP a 256 MiB `memory-backend-ram` with `prealloc`
/// plugged in as a `pc-dimm`; its 1 GiB translation buffer is 16 `rwxp` regions.
const HOTPLUG_CMDLINE: &[u8] =
    include_bytes!("../../../tests/fixtures/qemu/dimm-hotplug-256m-tcg.cmdline");
const HOTPLUG_SMAPS: &[u8] =
    include_bytes!("../../../tests/fixtures/qemu/dimm-hotplug-256m-tcg.smaps");
/// Its `VmRSS` at the moment of the capture.
const HOTPLUG_VM_RSS: u64 = 300_884 * KIB;

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
fn a_hot_plugged_dimm_is_guest_ram_the_command_line_does_not_explain() {
    let memory = memory(HOTPLUG_CMDLINE);
    assert_eq!(memory.size(), Some(256 * MIB), "the DIMM is not on it");
    let found = resident(HOTPLUG_SMAPS, &memory);
    assert_eq!((found.matched, found.unmatched), (1, 0));
    assert_eq!(found.unexplained, 256 * MIB, "the DIMM, not TCG's code");
    assert_eq!(found.unexplained_bytes(), 256 * MIB);
    assert!(
        (256 * MIB..260 * MIB).contains(&found.resident),
        "the DIMM's pages and a few of boot RAM's: {found:?}"
    );
    assert_eq!(found.resident + found.other, HOTPLUG_VM_RSS);
    assert!(found.other < 40 * MIB, "QEMU's own memory: {found:?}");
}

#[test]
fn captured_qemus_started_as_configured_have_nothing_unexplained() {
    for (cmdline, smaps) in [
        (PREALLOC_CMDLINE, PREALLOC_SMAPS),
        (NUMA_CMDLINE, NUMA_SMAPS),
        (LEGACY_CMDLINE, LEGACY_SMAPS),
    ] {
        let found = resident(smaps, &memory(cmdline));
        assert_eq!(found.unexplained_bytes(), 0, "{found:?}");
    }
}

/// One mapping per row, laid out one after another with a gap between.
fn mk_mappings(maps: &[(&str, &str, u64, u64)]) -> String {
    let mut out = String::new();
    let mut start = 0x7f00_0000_0000_u64;
    for (perms, path, size, rss) in maps {
        let end = start + size;
        let (size_kib, rss_kib) = (size / KIB, rss / KIB);
        out.push_str(&format!(
            "{start:x}-{end:x} {perms} 00000000 00:00 0    {path}\nSize: {size_kib} kB\nRss: {rss_kib} kB\nSwap: 0 kB\n"
        ));
        start = end + 4 * KIB;
    }
    out
}

#[test]
fn only_mappings_that_look_like_a_backend_are_unexplained_guest_ram() {
    // Paths and permissions as QEMU 7.2 maps them; the rule is `unexplained`'s doc comment.
    let tcg_jit = "/memfd:tcg-jit (deleted)";
    let guest_ram = [
        // memory-backend-ram, -memfd and shared -ram, hot-plugged
        ("rw-p", "", 256 * MIB),
        ("rw-s", "/memfd:memory-backend-memfd (deleted)", 256 * MIB),
        ("rw-s", "/dev/zero (deleted)", 256 * MIB),
        ("rw-p", "[anon:guest]", 256 * MIB),
        // the smallest taken
        ("rw-p", "", 128 * MIB),
    ];
    let qemus_own = [
        // just below the smallest
        ("rw-p", "", 128 * MIB - 4 * KIB),
        // a full malloc arena, a thread stack, a reservation, read-only memory
        ("rw-p", "", 64 * MIB),
        ("rw-p", "", 8 * MIB),
        ("---p", "", GIB),
        ("r--p", "", 256 * MIB),
        // TCG's translation buffer, and its two aliases with split-wx
        ("rwxp", "", GIB - 4 * KIB),
        ("rw-s", tcg_jit, GIB),
        ("r-xs", tcg_jit, GIB),
        // a file, the heap
        ("rw-s", "/dev/shm/qemu_back_mem.mem1.X (deleted)", 256 * MIB),
        ("rw-p", "[heap]", 256 * MIB),
    ];
    let rows =
        (guest_ram.iter().map(|row| (row, true))).chain(qemus_own.iter().map(|row| (row, false)));
    for (&(perms, path, size), taken) in rows {
        let smaps = mk_mappings(&[(perms, path, size, 2 * MIB)]);
        let found = resident(smaps.as_bytes(), &GuestMemory::default());
        let want = match taken {
            true => (size, 2 * MIB, 0),
            false => (0, 0, 2 * MIB),
        };
        assert_eq!(
            (found.unexplained, found.resident, found.other),
            want,
            "{perms} {path:?} {size}"
        );
    }
}

#[test]
fn a_backend_on_the_command_line_is_not_unexplained() {
    let smaps = mk_mappings(&[
        ("rw-p", "", 256 * MIB, 256 * MIB),
        ("rw-p", "", 512 * MIB, 4 * MIB),
    ]);
    let memory = GuestMemory {
        backends: vec![ram("memdimm0", 512 * MIB), ram("pc.ram", 256 * MIB)],
        ..GuestMemory::default()
    };
    let found = resident(smaps.as_bytes(), &memory);
    assert_eq!((found.matched, found.unexplained), (2, 0));
    assert_eq!(found.resident, 260 * MIB);
}

#[test]
fn virtio_mem_held_beyond_its_requested_size_is_unexplained() {
    let table = [
        (GIB, 512 * MIB, 0, "below what was requested at start"),
        (GIB, GIB, 0, "all of it"),
        (GIB, GIB + 512 * MIB, 512 * MIB, "grown at run time"),
        (0, 2 * MIB, 2 * MIB, "none requested at start"),
    ];
    for (requested, rss, want, why) in table {
        let smaps = mk_mappings(&[("rw-p", "", 4 * GIB, rss)]);
        let memory = GuestMemory {
            backends: vec![ram("memvirtiomem0", 4 * GIB)],
            virtio_mem: vec![("memvirtiomem0".into(), requested)],
            ..GuestMemory::default()
        };
        let found = resident(smaps.as_bytes(), &memory);
        assert_eq!(found.resident, rss, "{why}");
        assert_eq!(
            (found.virtio_mem_grown, found.unexplained_bytes()),
            (want, want),
            "{why}"
        );
    }
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
