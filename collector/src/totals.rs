//! Per-class counters that never go backwards, built from per-member readings. No I/O.
//!
//! A member (a process or a thread, keyed by pid/tid and start time) contributes `last - base` to
//! its class. When it disappears, that contribution moves into the class's `retired` sum, so the
//! class total keeps it. When a member changes class (an `exec`, a thread renamed after it started),
//! its contribution so far is retired into the old class and counting restarts from `base = last`
//! in the new one. A reading below the previous one (a field that failed to read this time, passed
//! as 0) never lowers `last`.

use std::collections::HashMap;
use std::hash::Hash;

/// A reading of a fixed set of named counters, combined field by field.
pub trait Counters: Copy + Default {
    /// `f` applied to each pair of same-named fields of `self` and `other`.
    #[must_use]
    fn zip_with(self, other: Self, f: impl Fn(u64, u64) -> u64) -> Self;
}

/// Monotonic sums of counters `C` per class, over members keyed by `K`.
#[derive(Debug)]
pub struct Ledger<K, C> {
    members: HashMap<K, Member<C>>,
    retired: Vec<C>,
    /// Members first seen after the first sweep, per class.
    newcomers: Vec<u64>,
    /// Whether the class ever had a member.
    seen: Vec<bool>,
    generation: u64,
}

#[derive(Debug)]
struct Member<C> {
    class: usize,
    base: C,
    last: C,
    generation: u64,
}

/// One class's sums, live and retired members together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassTotals<C> {
    pub counters: C,
    pub live: u64,
    pub newcomers: u64,
    pub seen: bool,
}

// === impl Ledger ===

// === impl [u64; 2] ===

/// Anonymous counters, for tests of the ledger itself.
#[cfg(test)]
impl Counters for [u64; 2] {
    fn zip_with(mut self, other: Self, f: impl Fn(u64, u64) -> u64) -> Self {
        for (a, b) in self.iter_mut().zip(other) {
            *a = f(*a, b);
        }
        self
    }
}

impl<K: Eq + Hash + Copy, C: Counters> Ledger<K, C> {
    pub fn new(classes: usize) -> Self {
        Self {
            members: HashMap::new(),
            retired: vec![C::default(); classes],
            newcomers: vec![0; classes],
            seen: vec![false; classes],
            generation: 0,
        }
    }

    /// Records one reading of `key` in this generation. `class` must be below `classes`.
    pub fn observe(&mut self, key: K, class: usize, reading: C) {
        let generation = self.generation;
        if let Some(seen) = self.seen.get_mut(class) {
            *seen = true;
        }
        match self.members.get_mut(&key) {
            Some(member) => {
                if member.class != class {
                    retire(&mut self.retired, member);
                    member.class = class;
                    member.base = member.last;
                }
                member.last = member.last.zip_with(reading, u64::max);
                member.generation = generation;
            }
            None => {
                // Members alive at the first collection are the starting state, not restarts.
                if generation > 0
                    && let Some(n) = self.newcomers.get_mut(class)
                {
                    *n += 1;
                }
                let member = Member {
                    class,
                    base: C::default(),
                    last: reading,
                    generation,
                };
                self.members.insert(key, member);
            }
        }
    }

    /// Ends a generation: members not observed in it exited; their contribution is retired.
    pub fn sweep(&mut self) {
        let generation = self.generation;
        let retired = &mut self.retired;
        self.members.retain(|_, member| {
            let alive = member.generation == generation;
            if !alive {
                retire(retired, member);
            }
            alive
        });
        self.generation += 1;
    }

    /// Whether `key` has been observed before (in this or an earlier generation).
    pub fn contains(&self, key: &K) -> bool {
        self.members.contains_key(key)
    }

    /// Totals per class, in class order.
    pub fn totals(&self) -> Vec<ClassTotals<C>> {
        let mut out: Vec<ClassTotals<C>> = (0..self.retired.len())
            .map(|class| ClassTotals {
                counters: self.retired.get(class).copied().unwrap_or_default(),
                live: 0,
                newcomers: self.newcomers.get(class).copied().unwrap_or(0),
                seen: self.seen.get(class).copied().unwrap_or(false),
            })
            .collect();
        for member in self.members.values() {
            if let Some(total) = out.get_mut(member.class) {
                total.counters = add_growth(total.counters, member);
                total.live += 1;
            }
        }
        out
    }
}

fn retire<C: Counters>(retired: &mut [C], member: &Member<C>) {
    if let Some(sums) = retired.get_mut(member.class) {
        *sums = add_growth(*sums, member);
    }
}

/// `sums` plus what `member` grew by in its current class.
fn add_growth<C: Counters>(sums: C, member: &Member<C>) -> C {
    let growth = member.last.zip_with(member.base, u64::saturating_sub);
    sums.zip_with(growth, u64::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(ledger: &Ledger<u32, [u64; 2]>) -> Vec<[u64; 2]> {
        ledger.totals().iter().map(|t| t.counters).collect()
    }

    #[test]
    fn class_total_survives_member_exit() {
        let mut l = Ledger::<u32, [u64; 2]>::new(1);
        l.observe(1, 0, [10, 1]);
        l.observe(2, 0, [5, 1]);
        l.sweep();
        assert_eq!(totals(&l), vec![[15, 2]]);
        l.observe(2, 0, [7, 1]);
        l.sweep();
        assert_eq!(totals(&l), vec![[17, 2]]);
        assert_eq!(l.totals()[0].live, 1);
    }

    #[test]
    fn restarted_member_adds_on_top_and_counts_as_newcomer() {
        let mut l = Ledger::<u32, [u64; 2]>::new(1);
        l.observe(1, 0, [100, 0]);
        l.sweep();
        // The process restarted under a new key with fresh, smaller counters.
        l.observe(2, 0, [3, 0]);
        l.sweep();
        let t = l.totals()[0];
        assert_eq!(t.counters, [103, 0]);
        assert_eq!((t.live, t.newcomers), (1, 1));
    }

    #[test]
    fn failed_field_reading_never_lowers_a_counter() {
        let mut l = Ledger::<u32, [u64; 2]>::new(1);
        l.observe(1, 0, [10, 20]);
        l.sweep();
        l.observe(1, 0, [0, 25]);
        l.sweep();
        assert_eq!(totals(&l), vec![[10, 25]]);
    }

    #[test]
    fn class_change_moves_only_new_growth() {
        let mut l = Ledger::<u32, [u64; 2]>::new(2);
        l.observe(1, 1, [4, 0]);
        l.sweep();
        l.observe(1, 0, [10, 0]);
        l.sweep();
        assert_eq!(totals(&l), vec![[6, 0], [4, 0]]);
        l.sweep();
        assert_eq!(totals(&l), vec![[6, 0], [4, 0]]);
        assert_eq!(l.totals()[0].live, 0);
    }

    #[test]
    fn seen_marks_only_classes_with_members() {
        let mut l = Ledger::<u32, [u64; 2]>::new(3);
        l.observe(1, 2, [1, 1]);
        l.sweep();
        let seen: Vec<bool> = l.totals().iter().map(|t| t.seen).collect();
        assert_eq!(seen, vec![false, false, true]);
    }

    #[test]
    fn out_of_range_class_is_ignored() {
        let mut l = Ledger::<u32, [u64; 2]>::new(1);
        l.observe(1, 7, [1, 1]);
        l.sweep();
        assert_eq!(totals(&l), vec![[0, 0]]);
    }
}
