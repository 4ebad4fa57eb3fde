//! One target's part of the answer, decided before any of the answer is
//! written: whether the target is in at all, which of its lines, and how many
//! bytes they take once relabelled. No I/O.

use std::borrow::Cow;

use kube_metrics_contract::limits::{MAX_OUTPUT_BYTES, MAX_SERIES};
use kube_metrics_contract::metrics::{self, FAMILIES, RELAY_LABELS};
use kube_metrics_exposition::Line;

use super::seen::Seen;
use super::vet::{check_identity, vet};
use super::{DropCounts, Dropped, Identity, RESERVED_PREFIX, Rejected, Room};
use crate::relay::parse::{Family, Parsed, Sample};

/// How many families the collector writes.
pub(super) const N: usize = FAMILIES.len();

/// The HELP a target declared a family with: `Some(None)` when it declared it
/// without one, `None` when it did not declare it.
pub(super) type Help<'a> = Option<Option<Cow<'a, str>>>;

/// What one accepted target adds to the answer.
#[derive(Debug)]
pub(super) struct Planned<'a> {
    pub identity: &'a Identity,
    /// The source lines to forward, grouped by family in [`FAMILIES`] order:
    /// family `f`'s are `lines[ends[f - 1]..ends[f]]`.
    pub lines: Vec<&'a str>,
    pub ends: [usize; N],
    pub help: [Help<'a>; N],
    /// What its lines take in the answer, relabelled.
    pub line_bytes: usize,
    /// What its HELP lines would take.
    pub help_bytes: usize,
}

/// What planning a target needs besides the target, reused from one to the
/// next: its lines as the answer will carry them, for their keys and size.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    buf: Vec<u8>,
    seen: Seen,
}

/// Checks one target whole and decides which of its lines go into the answer;
/// counts the lines it leaves out. The target's lines are written once here,
/// into `scratch`, to find repeated series and to weigh them.
pub(super) fn plan<'a>(
    attested: &'a Identity,
    text: &'a str,
    room: &Room<'_>,
    scratch: &mut Scratch,
    dropped: &mut DropCounts,
) -> Result<Planned<'a>, Rejected> {
    check_identity(attested, text, room)?;
    let target = Parsed::read(text, MAX_SERIES);
    if target.too_many_samples {
        return Err(Rejected::TooManySeries);
    }
    dropped.add(Dropped::TooManyLabels, target.too_many_labels);
    dropped.add(Dropped::LabelTooLong, target.label_too_long);
    vet(&target, dropped)?;
    let mut families = collector_families(target.families, dropped);
    // Parsed keeps one family per name, so each index comes once.
    families.sort_unstable_by_key(|(f, _)| *f);
    scratch.buf.clear();
    scratch.seen.clear();
    let mut planned = Planned::new(attested);
    let mut counts = [0; N];
    for (f, family) in families {
        let before = planned.lines.len();
        planned.add_family(f, family, scratch, dropped)?;
        if let Some(count) = counts.get_mut(f) {
            *count = planned.lines.len() - before;
        }
    }
    let mut end = 0;
    for (f, count) in counts.into_iter().enumerate() {
        end += count;
        if let Some(slot) = planned.ends.get_mut(f) {
            *slot = end;
        }
    }
    planned.line_bytes = scratch.buf.len();
    Ok(planned)
}

/// The collector's families of a target with their index in [`FAMILIES`];
/// the lines of any other family are counted and left out.
fn collector_families<'a>(
    families: Vec<Family<'a>>,
    dropped: &mut DropCounts,
) -> Vec<(usize, Family<'a>)> {
    let mut kept = Vec::with_capacity(families.len().min(N));
    for family in families {
        let count = family.samples.len() as u64;
        if family.name.starts_with(RESERVED_PREFIX) {
            dropped.add(Dropped::Reserved, count);
            continue;
        }
        match metrics::family_index(&family.name) {
            Some(f) => kept.push((f, family)),
            None => dropped.add(Dropped::NotAllowed, count),
        }
    }
    kept
}

// === impl Planned ===

impl<'a> Planned<'a> {
    fn new(identity: &'a Identity) -> Self {
        Self {
            identity,
            lines: Vec::new(),
            ends: [0; N],
            help: Default::default(),
            line_bytes: 0,
            help_bytes: 0,
        }
    }

    /// The source lines of family `f`.
    pub fn lines_of(&self, f: usize) -> &[&'a str] {
        let start = match f.checked_sub(1) {
            Some(previous) => self.ends.get(previous).copied().unwrap_or(0),
            None => 0,
        };
        let end = self.ends.get(f).copied().unwrap_or(start);
        self.lines.get(start..end).unwrap_or_default()
    }

    /// Plans family `f`'s samples: each one whose labels its family carries,
    /// once, while the target's output stays within its cap.
    fn add_family(
        &mut self,
        f: usize,
        family: Family<'a>,
        scratch: &mut Scratch,
        dropped: &mut DropCounts,
    ) -> Result<(), Rejected> {
        let Some(contract) = FAMILIES.get(f) else {
            return Ok(());
        };
        if let Some(help) = &family.help {
            self.help_bytes += help_line_bytes(contract.name, help);
        }
        if let Some(slot) = self.help.get_mut(f) {
            *slot = Some(family.help);
        }
        for sample in family.samples {
            if let Err(reason) = labels_allowed(&sample, contract, self.identity) {
                dropped.add(reason, 1);
                continue;
            }
            let start = scratch.buf.len();
            let key_end = write_line(&mut scratch.buf, &sample, self.identity);
            if !scratch.seen.insert(&scratch.buf, start..key_end) {
                scratch.buf.truncate(start);
                dropped.add(Dropped::Duplicate, 1);
                continue;
            }
            if scratch.buf.len() + self.help_bytes > MAX_OUTPUT_BYTES {
                return Err(Rejected::OutputTooLarge);
            }
            self.lines.push(sample.line);
        }
        Ok(())
    }
}

/// Whether a sample may go out with the labels it has: none that Prometheus
/// or the relay sets ([`reserved_label`]), and none its family does not
/// carry. Constant work per label: a family has at most
/// [`metrics::MAX_LABELS`] names.
pub fn labels_allowed(
    sample: &Sample<'_>,
    family: &metrics::Family,
    id: &Identity,
) -> Result<(), Dropped> {
    let mut unknown = false;
    for (name, value) in &sample.labels {
        if reserved_label(name, value, id, family.name) {
            return Err(Dropped::ReservedLabel);
        }
        unknown |= !family.labels.contains(name);
    }
    match unknown {
        true => Err(Dropped::UnknownLabel),
        false => Ok(()),
    }
}

/// Whether a target's label would pass for one Prometheus or the relay sets:
/// `job`, `instance`, `node` (but on pod_info, where the collector writes
/// it), `exported_*`, `__*`, and a `namespace` or `pod` other than the
/// attested one. With `honorLabels: true` such a label would win over the
/// real one.
pub fn reserved_label(name: &str, value: &str, id: &Identity, family: &str) -> bool {
    match name {
        "namespace" => value != id.namespace,
        "pod" => value != id.pod,
        "node" => family != metrics::POD_INFO,
        "job" | "instance" => true,
        _ => name.starts_with("exported_") || name.starts_with("__"),
    }
}

/// Appends one sample to `out` with `namespace` and `pod` first; the target's
/// own copies (equal to them: [`labels_allowed`]) are left out. Returns where
/// the series key ends: name and labels, before the value.
pub(super) fn write_line(out: &mut Vec<u8>, sample: &Sample<'_>, id: &Identity) -> usize {
    let mut line = Line::new(out, sample.name);
    line.label(RELAY_LABELS[0], &id.namespace)
        .label(RELAY_LABELS[1], &id.pod);
    for (name, value) in &sample.labels {
        if !RELAY_LABELS.contains(name) {
            line.label(name, value);
        }
    }
    // Labels keep the target's order, so two lines naming the same labels in
    // a different order are two keys; Prometheus would then report the
    // duplicate, which is acceptable for such an exotic target.
    let key_end = line.key_end();
    line.raw_value(sample.value, sample.timestamp);
    key_end
}

/// The bytes of `# HELP <name> <help>\n` as the text format escapes it.
pub(super) fn help_line_bytes(name: &str, help: &str) -> usize {
    let escaped = help.bytes().filter(|b| matches!(b, b'\\' | b'\n')).count();
    "# HELP ".len() + name.len() + 1 + help.len() + escaped + 1
}
