//! How much RAM QEMU gave the guest, and in which memory backends, from QEMU's own command line.
//! No I/O.
//!
//! libvirt writes the guest's memory as `-m` (boot RAM, with `slots`/`maxmem` when memory can be
//! hot-plugged), one `-object memory-backend-*` per RAM region (boot RAM as `pc.ram`, one per NUMA
//! node, one per DIMM or virtio-mem device) and `-device` entries that plug backends in. Objects and
//! devices come in QEMU's two syntaxes: `key=value,...` (with `,,` for a literal comma) and JSON
//! (`{"qom-type":...}`). The forms handled are listed in docs/metrics.md. An argument that is about
//! memory but cannot be read is counted in `unparsed`, never guessed at.
//!
//! QEMU started by hand, or by an older libvirt, may give boot RAM as `-m` alone. QEMU then creates
//! boot RAM's backend itself, so it is listed here too: see [`implicit_boot_backend`].

use serde_json::Value;

mod smaps;

pub use smaps::{Resident, resident};

/// One memory backend object (`-object memory-backend-{ram,memfd,file}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    pub id: String,
    pub kind: BackendKind,
    pub size: u64,
    /// Backed by hugetlbfs pages: not in the process's RSS but in `HugetlbPages`.
    pub hugetlb: bool,
    /// Every page touched at start (`prealloc`): the whole size is resident from the first read.
    pub prealloc: bool,
    /// `mem-path` of a file backend: the file, or the directory QEMU creates its file in.
    pub mem_path: Option<String>,
}

/// The id QEMU gives the boot RAM backend it creates itself from `-m` (x86's `default_ram_id`).
pub const IMPLICIT_BOOT_RAM: &str = "pc.ram";

/// The QOM type of a memory backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    Ram,
    Memfd,
    File,
}

/// Guest RAM as the command line gives it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuestMemory {
    /// Boot RAM in bytes: `-m`, or the sum of the boot backends when `-m` is absent.
    pub boot: Option<u64>,
    /// `maxmem`: the most the guest may grow to by hot-plug.
    pub max: Option<u64>,
    /// The `-object` backends, and boot RAM's own when `-m` stands alone.
    pub backends: Vec<Backend>,
    /// Backend ids plugged in as `pc-dimm` or `nvdimm`.
    pub dimms: Vec<String>,
    /// virtio-mem devices: backend id and the size requested at start (the backend's size is
    /// only the device's maximum).
    pub virtio_mem: Vec<(String, u64)>,
    /// Memory arguments that could not be read.
    pub unparsed: u32,
}

// === impl GuestMemory ===

impl GuestMemory {
    /// Reads the memory arguments of a QEMU argv; every other argument is ignored.
    pub fn from_args<'a>(args: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut memory = Self::default();
        let mut boot_backends = Vec::new();
        let mut legacy = Legacy::default();
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let kind = match flag {
                b"-m" => Arg::Memory,
                b"-object" => Arg::Object,
                b"-device" => Arg::Device,
                b"-numa" => Arg::Numa,
                b"-machine" | b"-M" => Arg::Machine,
                b"-mem-path" => Arg::MemPath,
                // The one memory flag without a value.
                b"-mem-prealloc" => {
                    legacy.prealloc = true;
                    continue;
                }
                _ => continue,
            };
            let Some(value) = args.next().and_then(|v| std::str::from_utf8(v).ok()) else {
                memory.unparsed += 1;
                continue;
            };
            let read = match kind {
                Arg::Memory => memory.read_memory(value),
                Arg::Object => memory.read_object(value),
                Arg::Device => memory.read_device(value),
                Arg::Numa | Arg::Machine => boot_backend(kind, value, &mut boot_backends),
                Arg::MemPath => {
                    legacy.mem_path = Some(value.to_owned());
                    Some(())
                }
            };
            if read.is_none() {
                memory.unparsed += 1;
            }
        }
        match (memory.boot, boot_backends.is_empty()) {
            (Some(size), true) => memory.backends.push(implicit_boot_backend(size, legacy)),
            (None, false) => {
                memory.boot = boot_backends
                    .iter()
                    .map(|id| memory.backend(id).map(|b| b.size))
                    .sum();
            }
            _ => {}
        }
        memory
    }

    /// Bytes of RAM the guest has at start: boot RAM, plugged DIMMs and virtio-mem's requested
    /// sizes. `None` when the boot RAM is unknown.
    pub fn size(&self) -> Option<u64> {
        let dimms: u64 = self
            .dimms
            .iter()
            .filter_map(|id| self.backend(id))
            .map(|b| b.size)
            .sum();
        let virtio: u64 = self.virtio_mem.iter().map(|(_, requested)| requested).sum();
        Some(self.boot? + dimms + virtio)
    }

    /// Bytes of guest RAM on hugetlbfs, which the kernel never counts in RSS.
    pub fn hugetlb(&self) -> u64 {
        self.backends
            .iter()
            .filter(|b| b.hugetlb)
            .map(|b| b.size)
            .sum()
    }

    pub fn backend(&self, id: &str) -> Option<&Backend> {
        self.backends.iter().find(|b| b.id == id)
    }

    /// `-m [size=]N[,slots=N][,maxmem=N]`; a bare number is MiB.
    fn read_memory(&mut self, value: &str) -> Option<()> {
        let fields = Fields::parse(value, "size")?;
        self.boot = Some(size(fields.get("size")?, Unit::MiB)?);
        if let Some(max) = fields.get("maxmem") {
            self.max = Some(size(max, Unit::MiB)?);
        }
        Some(())
    }

    /// `-object memory-backend-*`; other objects are not ours to read.
    fn read_object(&mut self, value: &str) -> Option<()> {
        let fields = Fields::parse(value, "qom-type")?;
        let kind = match fields.get("qom-type")? {
            "memory-backend-ram" => BackendKind::Ram,
            "memory-backend-memfd" => BackendKind::Memfd,
            "memory-backend-file" => BackendKind::File,
            _ => return Some(()),
        };
        let hugetlb = match kind {
            BackendKind::Memfd => fields.flag("hugetlb"),
            BackendKind::File => fields.get("mem-path").is_some_and(on_hugetlbfs),
            BackendKind::Ram => false,
        };
        self.backends.push(Backend {
            id: fields.get("id")?.to_owned(),
            kind,
            size: size(fields.get("size")?, Unit::Byte)?,
            hugetlb,
            prealloc: fields.flag("prealloc"),
            mem_path: fields.get("mem-path").map(str::to_owned),
        });
        Some(())
    }

    /// `-device pc-dimm|nvdimm|virtio-mem-pci,memdev=...`; other devices are not ours to read.
    fn read_device(&mut self, value: &str) -> Option<()> {
        let fields = Fields::parse(value, "driver")?;
        match fields.get("driver")? {
            "pc-dimm" | "nvdimm" => self.dimms.push(fields.get("memdev")?.to_owned()),
            "virtio-mem-pci" | "virtio-mem-ccw" | "virtio-mem" => {
                let requested = match fields.get("requested-size") {
                    Some(requested) => size(requested, Unit::Byte)?,
                    None => 0,
                };
                self.virtio_mem
                    .push((fields.get("memdev")?.to_owned(), requested));
            }
            _ => {}
        }
        Some(())
    }
}

/// The arguments that can describe guest memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arg {
    Memory,
    Object,
    Device,
    Numa,
    Machine,
    MemPath,
}

/// The flags that shape the boot RAM QEMU allocates itself: `-mem-path DIR`, `-mem-prealloc`.
#[derive(Clone, Debug, Default)]
struct Legacy {
    mem_path: Option<String>,
    prealloc: bool,
}

/// Boot RAM given by `-m` with no backend of its own (no `-machine memory-backend=`, no
/// `-numa node,memdev=`): QEMU creates the backend [`IMPLICIT_BOOT_RAM`] of `-m`'s size itself
/// (`create_default_memdev`), a `memory-backend-ram`, or a `memory-backend-file` under `-mem-path`,
/// touched at start with `-mem-prealloc`. It is mapped like one given on the command line.
fn implicit_boot_backend(size: u64, legacy: Legacy) -> Backend {
    let Legacy { mem_path, prealloc } = legacy;
    Backend {
        id: IMPLICIT_BOOT_RAM.to_owned(),
        kind: match mem_path {
            Some(_) => BackendKind::File,
            None => BackendKind::Ram,
        },
        size,
        hugetlb: mem_path.as_deref().is_some_and(on_hugetlbfs),
        prealloc,
        mem_path,
    }
}

/// `-machine ...,memory-backend=ID` and `-numa node,...,memdev=ID` name the backends of boot RAM.
/// A machine without `memory-backend`, or a legacy NUMA node without `memdev`, leaves boot RAM to
/// `-m`.
fn boot_backend(kind: Arg, value: &str, ids: &mut Vec<String>) -> Option<()> {
    let key = match kind {
        Arg::Machine => "memory-backend",
        _ => "memdev",
    };
    let fields = Fields::parse(value, "type")?;
    let is_node = fields.get("type").is_some_and(|t| t == "node");
    if kind == Arg::Numa && !is_node {
        return Some(());
    }
    if let Some(id) = fields.get(key) {
        ids.push(id.to_owned());
    }
    Some(())
}

/// The fields of one option value, from either of QEMU's syntaxes: `implied,key=value,...` (the
/// implied key's value first) or a JSON object, whose numbers and booleans become the text the
/// other syntax would carry.
#[derive(Debug)]
pub(crate) struct Fields(Vec<(String, String)>);

impl Fields {
    pub(crate) fn parse(value: &str, implied: &str) -> Option<Self> {
        if value.starts_with('{') {
            let Value::Object(map) = serde_json::from_str::<Value>(value).ok()? else {
                return None;
            };
            return Some(Self(map.into_iter().filter_map(json_field).collect()));
        }
        let mut fields = Vec::new();
        for (i, part) in split_commas(value).into_iter().enumerate() {
            let part = part.replace(",,", ",");
            match part.split_once('=') {
                Some((key, v)) => fields.push((key.to_owned(), v.to_owned())),
                None if i == 0 => fields.push((implied.to_owned(), part)),
                // A bare flag (`prealloc`) means `on`.
                None => fields.push((part, "on".to_owned())),
            }
        }
        Some(Self(fields))
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| &**v)
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("on" | "yes" | "true"))
    }
}

/// A JSON member as key-value text; arrays and objects are not read.
fn json_field((key, value): (String, Value)) -> Option<(String, String)> {
    let text = match value {
        Value::String(text) => text,
        Value::Number(number) => number.to_string(),
        Value::Bool(true) => "on".to_owned(),
        Value::Bool(false) => "off".to_owned(),
        _ => return None,
    };
    Some((key, text))
}

/// Splits at `,` but not at `,,`, which stands for one literal comma.
fn split_commas(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let bytes = value.as_bytes();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        if bytes.get(i) == Some(&b',') {
            if bytes.get(i + 1) == Some(&b',') {
                i += 2;
                continue;
            }
            parts.push(value.get(start..i).unwrap_or_default());
            start = i + 1;
        }
        i += 1;
    }
    parts.push(value.get(start..).unwrap_or_default());
    parts
}

/// The unit of a size without a suffix.
#[derive(Clone, Copy, Debug)]
enum Unit {
    Byte,
    MiB,
}

/// QEMU's size syntax: digits with an optional `B|K|M|G|T|P|E` suffix (either case, binary).
fn size(text: &str, default: Unit) -> Option<u64> {
    let text = text.trim();
    let digits = text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (number, suffix) = text.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" => match default {
            Unit::Byte => 0,
            Unit::MiB => 20,
        },
        "b" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        "e" => 60,
        _ => return None,
    };
    number.checked_mul(1u64.checked_shl(shift)?)
}

/// libvirt mounts hugetlbfs at `/dev/hugepages*` and names the backend path after it.
fn on_hugetlbfs(path: &str) -> bool {
    path.starts_with("/dev/hugepages") || path.contains("/hugepages")
}

#[cfg(test)]
mod tests;
