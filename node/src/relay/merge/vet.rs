//! Whether a target may be merged at all: its identity, its lines, its types. A target either
//! passes whole or is left out whole.

use kube_metrics_contract::metrics;
use kube_metrics_exposition::Kind;

use super::{DropCounts, Dropped, Identity, Rejected, Room, identity};
use crate::relay::parse::Parsed;

/// The target must state exactly the identity the kubelet attests, and be
/// the first to be served under it in this scrape.
pub(super) fn check_identity(
    attested: &Identity,
    text: &str,
    room: &Room<'_>,
) -> Result<(), Rejected> {
    if identity(text)? != *attested {
        return Err(Rejected::IdentityMismatch);
    }
    room.unserved(attested)
}

/// Rejects a target with a malformed line, or with one of the collector's
/// families untyped or of another type; counts the lines at fault.
pub(super) fn vet(target: &Parsed<'_>, dropped: &mut DropCounts) -> Result<(), Rejected> {
    if target.malformed > 0 {
        dropped.add(Dropped::Malformed, target.malformed);
        return Err(Rejected::Malformed);
    }
    let mut verdict = Ok(());
    for family in &target.families {
        let Some(want) = family_kind(&family.name) else {
            continue;
        };
        let fault = match family.kind {
            Some(kind) if kind == want => continue,
            None | Some(Kind::Untyped) => Rejected::Untyped,
            Some(_) => Rejected::TypeConflict,
        };
        dropped.add(Dropped::TypeConflict, family.samples.len() as u64);
        verdict = verdict.and(Err(fault));
    }
    verdict
}

/// The collector's declared type of family `name`, if it is one of its families.
pub(super) fn family_kind(name: &str) -> Option<Kind> {
    metrics::family_type(name).and_then(Kind::from_text)
}
