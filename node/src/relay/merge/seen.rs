//! Which series one target has already written, for the duplicate check,
//! without keeping a second copy of every series key.

use std::collections::HashMap;
use std::collections::hash_map::{Entry, RandomState};
use std::hash::BuildHasher as _;
use std::ops::Range;

/// The series keys one target has written so far into its buffer, without a
/// copy of each: a map from the key's hash to where the key is, plus the rare
/// keys whose hash another key already had. The hash is randomly seeded, so a
/// target cannot choose keys that collide.
#[derive(Debug, Default)]
pub(super) struct Seen {
    pub(super) state: RandomState,
    pub(super) first: HashMap<u64, Range<usize>>,
    pub(super) collided: Vec<Range<usize>>,
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

    /// Records the key at `buf[span]`; false when an equal key was recorded before.
    pub(super) fn insert(&mut self, buf: &[u8], span: Range<usize>) -> bool {
        let key = buf.get(span.clone());
        match self.first.entry(self.hash(key)) {
            Entry::Vacant(entry) => {
                entry.insert(span);
                true
            }
            Entry::Occupied(entry) => {
                let text = |s: &Range<usize>| buf.get(s.clone());
                if text(entry.get()) == key || self.collided.iter().any(|s| text(s) == key) {
                    return false;
                }
                self.collided.push(span);
                true
            }
        }
    }
}
