//! Merges the expositions of many collectors into one, labelling each series
//! with the pod it came from. No I/O.
//!
//! Guarantees of the output, whatever the targets send: every family appears
//! once (HELP and TYPE once, then all its samples), every series carries the
//! `namespace` and `pod` of its target, no series appears twice, and the
//! relay's own family names cannot be forged by a target.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::{Index, IndexMut};

use kube_metrics_exposition::{Format, Kind, Line, Writer};

use super::parse::{Family, Parsed, Sample, belongs_to};
pub use identity::identity;
use identity::reject_duplicates;
use seen::{Seen, Span};

/// Families under this prefix are the relay's own; a target may not send them.
pub const RESERVED_PREFIX: &str = "kube_metrics_collector_relay_";

/// The pod a collector says it serves.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity {
    pub namespace: String,
    pub pod: String,
}

/// Why a whole target was left out of the merged output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejected {
    /// No `kubevirt_pod_infra_pod_info` with non-empty namespace and pod.
    NoIdentity,
    /// Several different identities in one exposition.
    AmbiguousIdentity,
    /// Another target claims the same identity; neither is trusted.
    DuplicateIdentity,
}

/// Why a line from a target was not copied to the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// Not valid text format 0.0.4.
    Malformed,
    /// The family was declared with another TYPE by an earlier target.
    TypeConflict,
    /// The same series (name and labels) was already emitted.
    Duplicate,
    /// A name under [`RESERVED_PREFIX`].
    Reserved,
}

/// Dropped line counts, one per [`Dropped`] reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropCounts {
    pub malformed: u64,
    pub type_conflict: u64,
    pub duplicate: u64,
    pub reserved: u64,
}

/// What happened to one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetReport {
    pub identity: Result<Identity, Rejected>,
    pub dropped: DropCounts,
}

/// The merged exposition and a report per input, in input order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merged {
    pub text: String,
    pub targets: Vec<TargetReport>,
}

/// A family being assembled from several targets.
#[derive(Debug)]
struct Slot {
    name: String,
    help: Option<String>,
    kind: Option<Kind>,
    /// Sample lines, written by `relabel`.
    lines: Vec<u8>,
}

// === impl Rejected ===

impl Rejected {
    /// The `reason` label value of the relay's failure counter.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NoIdentity => "no_identity",
            Self::AmbiguousIdentity => "ambiguous_identity",
            Self::DuplicateIdentity => "duplicate_identity",
        }
    }
}

// === impl Dropped ===

impl Dropped {
    pub const ALL: [Self; 4] = [
        Self::Malformed,
        Self::TypeConflict,
        Self::Duplicate,
        Self::Reserved,
    ];

    /// The `reason` label value of the relay's dropped-lines counter.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::TypeConflict => "type_conflict",
            Self::Duplicate => "duplicate",
            Self::Reserved => "reserved",
        }
    }
}

// === impl DropCounts ===

impl DropCounts {
    fn add(&mut self, reason: Dropped, n: u64) {
        let count = &mut self[reason];
        *count = count.saturating_add(n);
    }

    /// Adds every count of `other`.
    pub fn add_all(&mut self, other: &DropCounts) {
        for reason in Dropped::ALL {
            self.add(reason, other[reason]);
        }
    }

    pub fn get(&self, reason: Dropped) -> u64 {
        self[reason]
    }
}

impl Index<Dropped> for DropCounts {
    type Output = u64;

    fn index(&self, reason: Dropped) -> &u64 {
        match reason {
            Dropped::Malformed => &self.malformed,
            Dropped::TypeConflict => &self.type_conflict,
            Dropped::Duplicate => &self.duplicate,
            Dropped::Reserved => &self.reserved,
        }
    }
}

impl IndexMut<Dropped> for DropCounts {
    fn index_mut(&mut self, reason: Dropped) -> &mut u64 {
        match reason {
            Dropped::Malformed => &mut self.malformed,
            Dropped::TypeConflict => &mut self.type_conflict,
            Dropped::Duplicate => &mut self.duplicate,
            Dropped::Reserved => &mut self.reserved,
        }
    }
}

/// Merges target expositions (in the order given) into one text exposition.
///
/// Identities are settled first, from the pod_info lines alone; then each
/// target is parsed, written into its families and dropped before the next,
/// so only one parsed target is alive at a time.
pub fn merge<S: AsRef<str>>(bodies: &[S]) -> Merged {
    let mut identities: Vec<Result<Identity, Rejected>> =
        bodies.iter().map(|b| identity(b.as_ref())).collect();
    reject_duplicates(&mut identities);

    let mut slots: Vec<Slot> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut seen = Seen::default();
    let mut targets = Vec::with_capacity(bodies.len());
    for (body, identity) in bodies.iter().zip(identities) {
        let target = Parsed::from_text(body.as_ref());
        let mut dropped = DropCounts::default();
        dropped.add(Dropped::Malformed, target.malformed);
        if let Ok(id) = &identity {
            // Every accepted target has its own identity, and its series all
            // carry it: a series can only repeat within one target.
            seen.clear();
            for family in target.families {
                add_family(
                    family,
                    id,
                    &mut slots,
                    &mut by_name,
                    &mut seen,
                    &mut dropped,
                );
            }
        }
        targets.push(TargetReport { identity, dropped });
    }
    Merged {
        text: render(&slots),
        targets,
    }
}

fn add_family(
    family: Family<'_>,
    id: &Identity,
    slots: &mut Vec<Slot>,
    by_name: &mut HashMap<String, usize>,
    seen: &mut Seen,
    dropped: &mut DropCounts,
) {
    let count = family.samples.len() as u64;
    if family.name.starts_with(RESERVED_PREFIX) {
        dropped.add(Dropped::Reserved, count);
        return;
    }
    let index = match by_name.get(family.name.as_str()) {
        Some(index) => *index,
        None => {
            slots.push(Slot {
                name: family.name.clone(),
                help: None,
                kind: None,
                lines: Vec::new(),
            });
            by_name.insert(family.name, slots.len() - 1);
            slots.len() - 1
        }
    };
    let Some(slot) = slots.get_mut(index) else {
        return;
    };
    // An untyped declaration fits any family; two explicit types must agree.
    if let (Some(have), Some(new)) = (slot.kind, family.kind)
        && have != new
    {
        dropped.add(Dropped::TypeConflict, count);
        return;
    }
    if slot.kind.is_none() && family.kind.is_some() {
        // Samples already in the slot must still fit the newly learned type.
        if !slot.lines.is_empty() && family.kind.is_some_and(|k| k != Kind::Untyped) {
            dropped.add(Dropped::TypeConflict, count);
            return;
        }
        slot.kind = family.kind;
    }
    if slot.help.is_none() {
        slot.help = family.help.map(Cow::into_owned);
    }
    for sample in family.samples {
        let Some(slot) = slots.get_mut(index) else {
            return;
        };
        if !belongs_to(sample.name, &slot.name, slot.kind) {
            dropped.add(Dropped::TypeConflict, 1);
            continue;
        }
        let start = slot.lines.len();
        let Some(key_end) = relabel(&mut slot.lines, &sample, id) else {
            slot.lines.truncate(start);
            dropped.add(Dropped::Malformed, 1);
            continue;
        };
        let key = Span {
            slot: index,
            start,
            end: key_end,
        };
        if !seen.insert(slots, key) {
            if let Some(slot) = slots.get_mut(index) {
                slot.lines.truncate(start);
            }
            dropped.add(Dropped::Duplicate, 1);
        }
    }
}

/// Appends one sample to `lines` with `namespace` and `pod` first. A target's
/// own label of that name is dropped when it agrees with the identity and
/// kept as `exported_<name>` when it does not, as Prometheus does with
/// `honor_labels: false`. Returns None when even that name is taken (the
/// caller removes what was written); otherwise where the series key ends:
/// name and labels, before the value.
fn relabel(lines: &mut Vec<u8>, sample: &Sample<'_>, id: &Identity) -> Option<usize> {
    let mut line = Line::new(lines, sample.name);
    line.label("namespace", &id.namespace).label("pod", &id.pod);
    let wanted = [("namespace", &id.namespace), ("pod", &id.pod)];
    for (name, value) in &sample.labels {
        match wanted.iter().find(|(w, _)| w == name) {
            Some((_, v)) if v.as_str() == &**value => continue,
            Some(_) => {
                let taken = |n: &str| n.strip_prefix(EXPORTED) == Some(*name);
                if sample.labels.iter().any(|(n, _)| taken(n)) {
                    return None;
                }
                // Rare: only a target contradicting its own identity pays for this name.
                line.label(&format!("{EXPORTED}{name}"), value);
            }
            None => {
                line.label(name, value);
            }
        }
    }
    // Labels keep the target's order, so two lines naming the same labels in
    // a different order are two keys; Prometheus would then report the
    // duplicate, which is acceptable for such an exotic target.
    let key_end = line.key_end();
    line.raw_value(sample.value, sample.timestamp);
    Some(key_end)
}

/// The prefix Prometheus gives a target label that clashes with a target one.
const EXPORTED: &str = "exported_";

fn render(slots: &[Slot]) -> String {
    let mut out = Vec::with_capacity(slots.iter().map(|s| s.lines.len() + 64).sum());
    let mut writer = Writer::new(&mut out, Format::Text);
    for slot in slots {
        writer.declared(&slot.name, slot.help.as_deref(), slot.kind);
        writer.lines(&slot.lines);
    }
    writer.finish();
    // Every piece is UTF-8: the targets' text, ASCII escapes and ASCII syntax.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

mod identity;
mod seen;

#[cfg(test)]
mod tests;
