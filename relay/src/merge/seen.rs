//! Which series one target has already written, for the duplicate check,
//! without keeping a second copy of every series key.

use std::collections::HashMap;
use std::collections::hash_map::{Entry, RandomState};
use std::hash::BuildHasher as _;

use super::Slot;

/// Where a series key was written: `slots[slot].lines[start..end]`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Span {
    pub slot: usize,
    pub start: usize,
    pub end: usize,
}

/// The series keys one target has written so far, without a copy of each:
/// a map from the key's hash to where the key is, plus the rare keys whose
/// hash another key already had. The hash is randomly seeded, so a target
/// cannot choose keys that collide.
#[derive(Debug, Default)]
pub(super) struct Seen {
    pub(super) state: RandomState,
    pub(super) first: HashMap<u64, Span>,
    pub(super) collided: Vec<Span>,
}

// === impl Seen ===

impl Seen {
    pub(super) fn clear(&mut self) {
        self.first.clear();
        self.collided.clear();
    }

    pub(super) fn hash(&self, key: Option<&[u8]>) -> u64 {
        self.state.hash_one(key)
    }

    /// Records the key at `span`; false when an equal key was recorded before.
    pub(super) fn insert(&mut self, slots: &[Slot], span: Span) -> bool {
        let text = |s: &Span| {
            slots
                .get(s.slot)
                .and_then(|slot| slot.lines.get(s.start..s.end))
        };
        let key = text(&span);
        match self.first.entry(self.hash(key)) {
            Entry::Vacant(entry) => {
                entry.insert(span);
                true
            }
            Entry::Occupied(entry) => {
                if text(entry.get()) == key || self.collided.iter().any(|s| text(s) == key) {
                    return false;
                }
                self.collided.push(span);
                true
            }
        }
    }
}
