//! Merges the expositions of many collectors into one, labelling each series
//! with the pod it came from. No I/O.
//!
//! Guarantees of the output, whatever the targets send: only the collector's
//! families appear, each once (HELP and TYPE once, then all its samples) and
//! with the collector's type; every series carries the `namespace` and `pod`
//! the kubelet attests for its target and no label Prometheus sets; no series
//! appears twice; and what one target sends never removes a line of another.

use std::collections::{HashMap, HashSet};
use std::ops::{Index, IndexMut};

use kube_metrics_contract::metrics;
use kube_metrics_exposition::{Format, Kind, Line, Writer};

use super::parse::{Family, Parsed, Sample};
pub use identity::identity;
use seen::{Seen, Span};
use vet::{check_identity, family_kind, vet};

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
    /// The identity stated is not the one the kubelet attests.
    IdentityMismatch,
    /// An earlier target was already served under the same attested
    /// identity (a pod recreated under its old name); only this one is left out.
    DuplicateIdentity,
    /// A line that is not valid text format 0.0.4.
    Malformed,
    /// One of the collector's families declared with another type.
    TypeConflict,
    /// One of the collector's families sent without a type.
    Untyped,
}

/// Why a line from a target was not copied to the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// Not valid text format 0.0.4 (its whole target is left out).
    Malformed,
    /// Samples of a family with the wrong type, or none (its whole target is left out).
    TypeConflict,
    /// The same series (name and labels) was already emitted.
    Duplicate,
    /// A name under [`RESERVED_PREFIX`].
    Reserved,
    /// A family the collector does not write.
    NotAllowed,
    /// A sample carrying a label Prometheus or the relay sets.
    ReservedLabel,
}

/// Dropped line counts, one per [`Dropped`] reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropCounts {
    pub malformed: u64,
    pub type_conflict: u64,
    pub duplicate: u64,
    pub reserved: u64,
    pub not_allowed: u64,
    pub reserved_label: u64,
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
    /// The collector's type of the family, from the contract.
    kind: Kind,
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
            Self::IdentityMismatch => "identity_mismatch",
            Self::DuplicateIdentity => "duplicate_identity",
            Self::Malformed => "malformed",
            Self::TypeConflict => "type_conflict",
            Self::Untyped => "untyped",
        }
    }
}

// === impl Dropped ===

impl Dropped {
    pub const ALL: [Self; 6] = [
        Self::Malformed,
        Self::TypeConflict,
        Self::Duplicate,
        Self::Reserved,
        Self::NotAllowed,
        Self::ReservedLabel,
    ];

    /// The `reason` label value of the relay's dropped-lines counter.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::TypeConflict => "type_conflict",
            Self::Duplicate => "duplicate",
            Self::Reserved => "reserved",
            Self::NotAllowed => "not_allowed",
            Self::ReservedLabel => "reserved_label",
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
            Dropped::NotAllowed => &self.not_allowed,
            Dropped::ReservedLabel => &self.reserved_label,
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
            Dropped::NotAllowed => &mut self.not_allowed,
            Dropped::ReservedLabel => &mut self.reserved_label,
        }
    }
}

/// Merges target expositions (in the order given), each with the identity
/// the kubelet attests for it, into one text exposition.
///
/// A target is all or nothing: it must state its attested identity, every
/// line must parse and each of the collector's families it sends must carry
/// the collector's type, or none of its lines is forwarded. Types come from
/// the contract, never from a target, so no target can change how another's
/// family is declared. Targets are parsed one at a time.
pub fn merge<S: AsRef<str>>(targets: &[(Identity, S)]) -> Merged {
    let mut slots: Vec<Slot> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut seen = Seen::default();
    let mut served: HashSet<&Identity> = HashSet::new();
    let mut reports = Vec::with_capacity(targets.len());
    for (attested, body) in targets {
        let mut dropped = DropCounts::default();
        let identity = check_identity(attested, body.as_ref(), &served).and_then(|()| {
            let target = Parsed::from_text(body.as_ref());
            vet(&target, &mut dropped)?;
            served.insert(attested);
            // Every accepted target has its own identity, and its series all
            // carry it: a series can only repeat within one target.
            seen.clear();
            for family in target.families {
                let mut out = Out {
                    slots: &mut slots,
                    by_name: &mut by_name,
                    seen: &mut seen,
                    dropped: &mut dropped,
                };
                out.add_family(family, attested);
            }
            Ok(attested.clone())
        });
        reports.push(TargetReport { identity, dropped });
    }
    Merged {
        text: render(&slots),
        targets: reports,
    }
}

/// Where accepted families go.
struct Out<'s> {
    slots: &'s mut Vec<Slot>,
    by_name: &'s mut HashMap<String, usize>,
    seen: &'s mut Seen,
    dropped: &'s mut DropCounts,
}

impl Out<'_> {
    fn add_family(&mut self, family: Family<'_>, id: &Identity) {
        let count = family.samples.len() as u64;
        if family.name.starts_with(RESERVED_PREFIX) {
            self.dropped.add(Dropped::Reserved, count);
            return;
        }
        let Some(kind) = family_kind(&family.name) else {
            self.dropped.add(Dropped::NotAllowed, count);
            return;
        };
        let index = match self.by_name.get(family.name.as_str()) {
            Some(index) => *index,
            None => {
                self.slots.push(Slot {
                    name: family.name.clone(),
                    help: family.help.as_deref().map(str::to_owned),
                    kind,
                    lines: Vec::new(),
                });
                self.by_name.insert(family.name, self.slots.len() - 1);
                self.slots.len() - 1
            }
        };
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        // HELP is shown only while every target agrees on it.
        if slot.help.as_deref() != family.help.as_deref() {
            slot.help = None;
        }
        for sample in family.samples {
            let Some(slot) = self.slots.get_mut(index) else {
                return;
            };
            let start = slot.lines.len();
            let Some(key_end) = relabel(&mut slot.lines, &sample, id, &slot.name) else {
                self.dropped.add(Dropped::ReservedLabel, 1);
                continue;
            };
            let key = Span {
                slot: index,
                start,
                end: key_end,
            };
            if !self.seen.insert(self.slots, key) {
                if let Some(slot) = self.slots.get_mut(index) {
                    slot.lines.truncate(start);
                }
                self.dropped.add(Dropped::Duplicate, 1);
            }
        }
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

/// Appends one sample to `lines` with `namespace` and `pod` first; the
/// target's own copies (equal to them) are left out. Returns None, writing
/// nothing, when the sample carries a reserved label: it is dropped rather
/// than renamed, since the collector never writes one and a renamed label
/// would still forward what a forger chose. Otherwise returns where the
/// series key ends: name and labels, before the value.
fn relabel(lines: &mut Vec<u8>, sample: &Sample<'_>, id: &Identity, family: &str) -> Option<usize> {
    if sample
        .labels
        .iter()
        .any(|(name, value)| reserved_label(name, value, id, family))
    {
        return None;
    }
    let mut line = Line::new(lines, sample.name);
    line.label("namespace", &id.namespace).label("pod", &id.pod);
    for (name, value) in &sample.labels {
        if !matches!(*name, "namespace" | "pod") {
            line.label(name, value);
        }
    }
    // Labels keep the target's order, so two lines naming the same labels in
    // a different order are two keys; Prometheus would then report the
    // duplicate, which is acceptable for such an exotic target.
    let key_end = line.key_end();
    line.raw_value(sample.value, sample.timestamp);
    Some(key_end)
}

fn render(slots: &[Slot]) -> String {
    let mut out = Vec::with_capacity(slots.iter().map(|s| s.lines.len() + 64).sum());
    let mut writer = Writer::new(&mut out, Format::Text);
    for slot in slots {
        writer.declared(&slot.name, slot.help.as_deref(), Some(slot.kind));
        writer.lines(&slot.lines);
    }
    writer.finish();
    // Every piece is UTF-8: the targets' text, ASCII escapes and ASCII syntax.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

mod identity;
mod seen;
mod vet;

#[cfg(test)]
mod tests;
