//! Which of QEMU's mappings hold guest RAM, and how much of them is resident, from
//! `/proc/<qemu>/smaps`. No I/O.
//!
//! QEMU maps each memory backend as one region of exactly the backend's size: anonymous memory for
//! `memory-backend-ram` (shared anonymous memory with `share=on`), `/memfd:...` for memfd, a file
//! under `mem-path` for file backends. The kernel may split a region into several adjacent mappings
//! (madvise, KSM, THP), and may place other anonymous memory right next to it, so a run of adjacent
//! mappings counts only when no single mapping has the backend's size.
//!
//! Guest RAM the command line does not list (a DIMM hot-plugged through QMP) is mapped the same
//! way; the mappings left over that look like a backend are counted as guest RAM all the same and
//! reported apart, see [`unexplained`].

use super::{Backend, BackendKind, GuestMemory};
use crate::proc::parse::number;

/// Guest RAM in QEMU's address space, summed over the backends that were found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resident {
    /// Bytes of guest RAM in QEMU's RSS (hugetlb pages are never in RSS).
    pub resident: u64,
    /// Bytes of hugetlb pages of guest RAM.
    pub hugetlb: u64,
    /// Bytes of guest RAM swapped out.
    pub swap: u64,
    /// Bytes of QEMU's RSS outside guest RAM (its own memory), from the same read, so that the two
    /// parts always add up to the RSS of that moment.
    pub other: u64,
    /// Backends whose mapping was found, and those whose was not.
    pub matched: u32,
    pub unmatched: u32,
    /// Bytes of mappings that no backend claimed but that look like guest RAM ([`unexplained`]),
    /// by their size. Their pages are in `resident`, `hugetlb` and `swap`, not in `other`.
    pub unexplained: u64,
    /// Bytes of virtio-mem backends held (resident, hugetlb or swapped) beyond the size requested
    /// at start: the device was resized at run time, so the command line's size is behind.
    pub virtio_mem_grown: u64,
}

/// The smallest mapping taken for guest RAM that no backend claimed. QEMU's own large anonymous
/// mappings stay below it: glibc's malloc arenas are at most 64 MiB (`HEAP_MAX_SIZE`, the 65404 kB
/// `---p` reservations of every smaps of QEMU 7.2 captured here), thread stacks 8 MiB, VGA memory 16
/// MiB. A DIMM smaller than this is missed; Linux guests hot-add memory in 128 MiB blocks on x86.
const UNEXPLAINED_MIN: u64 = 128 << 20;

/// How smaps shows a `memory-backend-memfd`: QEMU names every such memfd after the type. Other
/// memfds of QEMU are its own, e.g. TCG's code buffer under `-accel tcg,split-wx=on`, mapped as
/// `/memfd:tcg-jit` twice, `r-xs` and a writable `rw-s` alias of the same size (1 GiB).
const MEMFD_BACKEND: &[u8] = b"/memfd:memory-backend-memfd";

/// One mapping, or a run of adjacent anonymous ones, with the fields we use, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Mapping<'a> {
    start: u64,
    end: u64,
    perms: &'a [u8],
    /// Empty for anonymous memory.
    path: &'a [u8],
    rss: u64,
    hugetlb: u64,
    swap: u64,
}

/// The guest-RAM part of `smaps` for the backends in `memory`, and for the mappings left over that
/// look like guest RAM.
pub fn resident(smaps: &[u8], memory: &GuestMemory) -> Resident {
    let mappings = parse(smaps);
    let mut used = vec![false; mappings.len()];
    let mut found = Resident::default();
    for backend in &memory.backends {
        let Some(range) = region(&mappings, &used, backend) else {
            found.unmatched += 1;
            continue;
        };
        found.matched += 1;
        let held = found.add(mappings.get(range.clone()).unwrap_or_default());
        used.get_mut(range).unwrap_or_default().fill(true);
        if let Some(requested) = virtio_mem_requested(memory, &backend.id) {
            found.virtio_mem_grown += held.saturating_sub(requested);
        }
    }
    for (m, used) in mappings.iter().zip(&mut used) {
        if !*used && unexplained(m) {
            *used = true;
            found.add(std::slice::from_ref(m));
            found.unexplained += m.end - m.start;
        }
    }
    found.other = mappings
        .iter()
        .zip(&used)
        .filter(|(_, used)| !**used)
        .map(|(m, _)| m.rss)
        .sum();
    found
}

// === impl Resident ===

impl Resident {
    /// Guest RAM the command line does not explain: unexplained mappings by size, and virtio-mem
    /// grown past its requested size. 0 is the healthy value.
    pub fn unexplained_bytes(&self) -> u64 {
        self.unexplained + self.virtio_mem_grown
    }

    /// Counts `mappings` as guest RAM; returns the bytes they hold (resident, hugetlb, swapped).
    fn add(&mut self, mappings: &[Mapping<'_>]) -> u64 {
        let mut held = 0;
        for m in mappings {
            self.resident += m.rss;
            self.hugetlb += m.hugetlb;
            self.swap += m.swap;
            held += m.rss + m.hugetlb + m.swap;
        }
        held
    }
}

/// The size requested at start of the virtio-mem device that backend `id` is plugged into.
fn virtio_mem_requested(memory: &GuestMemory, id: &str) -> Option<u64> {
    memory
        .virtio_mem
        .iter()
        .find(|(backend, _)| backend == id)
        .map(|(_, requested)| *requested)
}

/// Whether `mapping`, which no backend of the command line claimed, is guest RAM all the same. A
/// backend added at run time (QMP `object-add` then `device_add pc-dimm`, as memory hot-plug does)
/// is mapped like one on the command line, so the rule is a backend's look: writable, not
/// executable, anonymous or a memfd of `memory-backend-memfd`, and at least [`UNEXPLAINED_MIN`].
///
/// Measured on QEMU 7.2 (docs/metrics.md, "Guest memory"): besides guest RAM, its largest mappings
/// under KVM are the `---p` arena reservations (65404 kB), thread stacks (8192 kB `rw-p`) and the
/// `[heap]` (named, so not anonymous); under TCG also the translation buffer, 1 GiB `rwxp` (one
/// mapping, or one of 65532 kB per vCPU region), which is executable. A hot-plugged 256 MiB DIMM is
/// one `rw-p` anonymous mapping of exactly 256 MiB under both. File backends (`mem-path`) are not
/// looked for: any file QEMU maps would pass.
fn unexplained(mapping: &Mapping<'_>) -> bool {
    let writable = mapping.perms.get(1) == Some(&b'w');
    let executable = mapping.perms.get(2) == Some(&b'x');
    let backend_like = is_anonymous(mapping.path) || mapping.path.starts_with(MEMFD_BACKEND);
    writable && !executable && backend_like && mapping.end - mapping.start >= UNEXPLAINED_MIN
}

/// The mappings QEMU mapped for `backend`: one mapping of exactly its size, else (anonymous RAM
/// only) a run of adjacent anonymous mappings with the same permissions that adds up to it. The
/// single mapping is tried first: a neighbour with the same permissions but other flags is not
/// guest RAM.
fn region(
    mappings: &[Mapping<'_>],
    used: &[bool],
    backend: &Backend,
) -> Option<std::ops::Range<usize>> {
    let free = |i: usize| !used.get(i).copied().unwrap_or(true);
    let single = (0..mappings.len())
        .find(|&i| free(i) && mappings.get(i).is_some_and(|m| holds(m, backend)));
    if let Some(i) = single {
        return Some(i..i + 1);
    }
    if backend.kind != BackendKind::Ram {
        return None;
    }
    (0..mappings.len()).find_map(|start| {
        let first = mappings.get(start)?;
        let mut size = 0;
        for (end, m) in mappings.iter().enumerate().skip(start) {
            let joins = end == start
                || mappings
                    .get(end - 1)
                    .is_some_and(|prev| prev.end == m.start && prev.perms == first.perms);
            if !free(end) || !is_anonymous(m.path) || !joins {
                return None;
            }
            size += m.end - m.start;
            if size >= backend.size {
                return (size == backend.size).then_some(start..end + 1);
            }
        }
        None
    })
}

/// Whether `mapping` alone is the region QEMU mapped for `backend`.
fn holds(mapping: &Mapping<'_>, backend: &Backend) -> bool {
    if mapping.end - mapping.start != backend.size {
        return false;
    }
    match backend.kind {
        BackendKind::Ram => is_anonymous(mapping.path),
        BackendKind::Memfd => mapping.path.starts_with(b"/memfd:"),
        BackendKind::File => backend
            .mem_path
            .as_deref()
            .is_some_and(|dir| mapping.path.starts_with(dir.as_bytes())),
    }
}

/// Anonymous memory has no path, or a name given with `PR_SET_VMA_ANON_NAME`. Shared anonymous
/// memory (`memory-backend-ram,share=on`) lives in a hidden shmem file that smaps shows as
/// `/dev/zero (deleted)`, or `[anon_shmem:NAME]` when named.
fn is_anonymous(path: &[u8]) -> bool {
    path.is_empty()
        || path.starts_with(b"[anon:")
        || path.starts_with(b"[anon_shmem:")
        || path == b"/dev/zero (deleted)"
}

/// Every mapping of `smaps`, in address order.
fn parse(smaps: &[u8]) -> Vec<Mapping<'_>> {
    let mut mappings: Vec<Mapping<'_>> = Vec::new();
    for line in smaps.split(|&b| b == b'\n') {
        if let Some(header) = header(line) {
            mappings.push(header);
            continue;
        }
        let (Some(last), Some((key, kib))) = (mappings.last_mut(), field(line)) else {
            continue;
        };
        let bytes = kib.saturating_mul(1024);
        match key {
            b"Rss" => last.rss = bytes,
            b"Swap" => last.swap = bytes,
            b"Shared_Hugetlb" | b"Private_Hugetlb" => last.hugetlb += bytes,
            _ => {}
        }
    }
    mappings
}

/// `start-end perms offset dev inode [path]`.
fn header(line: &[u8]) -> Option<Mapping<'_>> {
    let mut fields = line.splitn(6, |&b| b == b' ');
    let range = fields.next()?;
    let dash = range.iter().position(|&b| b == b'-')?;
    let start = hex(range.get(..dash)?)?;
    let end = hex(range.get(dash + 1..)?)?;
    let perms = fields.next()?;
    // offset, device and inode
    for _ in 0..3 {
        fields.next()?;
    }
    let path = fields.next().unwrap_or_default().trim_ascii();
    (end >= start).then_some(Mapping {
        start,
        end,
        perms,
        path,
        ..Mapping::default()
    })
}

/// `Key:   N kB`.
fn field(line: &[u8]) -> Option<(&[u8], u64)> {
    let colon = line.iter().position(|&b| b == b':')?;
    let value = line.get(colon + 1..)?.trim_ascii();
    let digits = value.strip_suffix(b" kB")?;
    Some((line.get(..colon)?, number(digits.trim_ascii())?))
}

fn hex(digits: &[u8]) -> Option<u64> {
    u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

#[cfg(test)]
mod tests;
