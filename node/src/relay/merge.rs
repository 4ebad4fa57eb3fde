//! Merges the expositions of many collectors into one, labelling each series
//! with the pod it came from. No I/O.
//!
//! Guarantees of the output, whatever the targets send: only the collector's
//! families appear, each once (HELP and TYPE once, then all its samples) and
//! with the collector's type; every series carries the `namespace` and `pod`
//! the kubelet attests for its target and only labels its family carries; no
//! series appears twice; what one target sends never removes a line of
//! another; and no target, nor all of a node's, puts more in it than
//! `kube_metrics_contract::limits` allows.

use enum_map::EnumMap;

pub use crate::kubelet::Identity;
use answer::Answer;
pub use identity::identity;
use plan::{Scratch, plan};
pub use plan::{labels_allowed, reserved_label};
pub use room::Room;

/// Families under this prefix are the relay's own; a target may not send them.
pub const RESERVED_PREFIX: &str = "kube_metrics_collector_relay_";

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
    /// A line that is not valid text format 0.0.4, or a value Prometheus refuses.
    Malformed,
    /// One of the collector's families declared with another type.
    TypeConflict,
    /// One of the collector's families sent without a type.
    Untyped,
    /// More sample lines than a collector may send
    /// (`kube_metrics_contract::limits::MAX_SERIES`); the rest was not read.
    TooManySeries,
    /// Its series would take more of the answer than a collector may
    /// (`kube_metrics_contract::limits::MAX_OUTPUT_BYTES`).
    OutputTooLarge,
    /// The answer already holds a node's worth of collectors at their caps
    /// (`kube_metrics_contract::limits::MAX_ANSWER_BYTES`, `MAX_ANSWER_SERIES`).
    AnswerFull,
}

/// Why a line from a target was not copied to the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, enum_map::Enum)]
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
    /// A sample carrying a label its family does not have.
    UnknownLabel,
    /// A sample with more labels than any family has, not read further.
    TooManyLabels,
    /// A sample with a label value longer than the relay forwards.
    LabelTooLong,
}

/// Dropped line counts, one per [`Dropped`] reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropCounts(EnumMap<Dropped, u64>);

/// What happened to one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetReport {
    pub identity: Result<Identity, Rejected>,
    pub dropped: DropCounts,
}

/// The merged exposition and a report per input, in input order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merged {
    /// The collectors' families, with spare capacity for the relay's own
    /// (`kube_metrics_contract::limits::RELAY_OWN_BYTES`).
    pub text: String,
    pub targets: Vec<TargetReport>,
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
            Self::TooManySeries => "too_many_series",
            Self::OutputTooLarge => "output_too_large",
            Self::AnswerFull => "answer_full",
        }
    }
}

// === impl Dropped ===

impl Dropped {
    pub const ALL: [Self; 9] = [
        Self::Malformed,
        Self::TypeConflict,
        Self::Duplicate,
        Self::Reserved,
        Self::NotAllowed,
        Self::ReservedLabel,
        Self::UnknownLabel,
        Self::TooManyLabels,
        Self::LabelTooLong,
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
            Self::UnknownLabel => "unknown_label",
            Self::TooManyLabels => "too_many_labels",
            Self::LabelTooLong => "label_too_long",
        }
    }
}

// === impl DropCounts ===

impl DropCounts {
    fn add(&mut self, reason: Dropped, n: u64) {
        let count = &mut self.0[reason];
        *count = count.saturating_add(n);
    }

    /// Adds every count of `other`.
    pub fn add_all(&mut self, other: &DropCounts) {
        for (reason, n) in other.0 {
            self.add(reason, n);
        }
    }

    pub fn get(&self, reason: Dropped) -> u64 {
        self.0[reason]
    }
}

/// Merges target expositions (in the order given), each with the identity
/// the kubelet attests for it, into one text exposition.
///
/// A target is all or nothing: it must state its attested identity, every
/// line must parse and each of the collector's families it sends must carry
/// the collector's type, and it must stay within a collector's caps, or none
/// of its lines is forwarded. Types come from the contract, never from a
/// target, so no target can change how another's family is declared.
///
/// Targets are planned one at a time (their lines read, checked and weighed),
/// then the answer is written once at its final size: the memory this takes
/// is the targets' texts, one target's parse, and the answer.
pub fn merge<S: AsRef<str>>(targets: &[(Identity, S)]) -> Merged {
    let mut answer = Answer::default();
    let mut scratch = Scratch::default();
    let mut reports = Vec::with_capacity(targets.len());
    for (attested, body) in targets {
        let mut dropped = DropCounts::default();
        let identity = plan(
            attested,
            body.as_ref(),
            &answer.room,
            &mut scratch,
            &mut dropped,
        )
        .and_then(|planned| answer.add(planned))
        .map(|()| attested.clone());
        reports.push(TargetReport { identity, dropped });
    }
    Merged {
        text: answer.render(),
        targets: reports,
    }
}

mod answer;
mod identity;
mod plan;
mod room;
mod seen;
mod vet;

#[cfg(test)]
mod tests;
