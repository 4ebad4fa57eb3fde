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

/// Monotonic sums of `N` counters per class, over members keyed by `K`.
#[derive(Debug)]
pub struct Ledger<K, const N: usize> {
    members: HashMap<K, Member<N>>,
    retired: Vec<[u64; N]>,
    /// Members first seen after the first sweep, per class.
    newcomers: Vec<u64>,
    /// Whether the class ever had a member.
    seen: Vec<bool>,
    generation: u64,
}

#[derive(Debug)]
struct Member<const N: usize> {
    class: usize,
    base: [u64; N],
    last: [u64; N],
    generation: u64,
}

/// One class's sums, live and retired members together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassTotals<const N: usize> {
    pub counters: [u64; N],
    pub live: u64,
    pub newcomers: u64,
    pub seen: bool,
}

// === impl Ledger ===

impl<K: Eq + Hash + Copy, const N: usize> Ledger<K, N> {
    pub fn new(classes: usize) -> Self {
        Self {
            members: HashMap::new(),
            retired: vec![[0; N]; classes],
            newcomers: vec![0; classes],
            seen: vec![false; classes],
            generation: 0,
        }
    }

    /// Records one reading of `key` in this generation. `class` must be below `classes`.
    pub fn observe(&mut self, key: K, class: usize, reading: [u64; N]) {
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
                for (last, new) in member.last.iter_mut().zip(reading) {
                    *last = (*last).max(new);
                }
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
                    base: [0; N],
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
    pub fn totals(&self) -> Vec<ClassTotals<N>> {
        let mut out: Vec<ClassTotals<N>> = (0..self.retired.len())
            .map(|class| ClassTotals {
                counters: self.retired.get(class).copied().unwrap_or([0; N]),
                live: 0,
                newcomers: self.newcomers.get(class).copied().unwrap_or(0),
                seen: self.seen.get(class).copied().unwrap_or(false),
            })
            .collect();
        for member in self.members.values() {
            if let Some(total) = out.get_mut(member.class) {
                for ((sum, last), base) in
                    total.counters.iter_mut().zip(member.last).zip(member.base)
                {
                    *sum = sum.saturating_add(last.saturating_sub(base));
                }
                total.live += 1;
            }
        }
        out
    }
}

fn retire<const N: usize>(retired: &mut [[u64; N]], member: &Member<N>) {
    if let Some(sums) = retired.get_mut(member.class) {
        for ((sum, last), base) in sums.iter_mut().zip(member.last).zip(member.base) {
            *sum = sum.saturating_add(last.saturating_sub(base));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(ledger: &Ledger<u32, 2>) -> Vec<[u64; 2]> {
        ledger.totals().iter().map(|t| t.counters).collect()
    }

    #[test]
    fn class_total_survives_member_exit() {
        let mut l = Ledger::<u32, 2>::new(1);
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
        let mut l = Ledger::<u32, 2>::new(1);
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
        let mut l = Ledger::<u32, 2>::new(1);
        l.observe(1, 0, [10, 20]);
        l.sweep();
        l.observe(1, 0, [0, 25]);
        l.sweep();
        assert_eq!(totals(&l), vec![[10, 25]]);
    }

    #[test]
    fn class_change_moves_only_new_growth() {
        let mut l = Ledger::<u32, 2>::new(2);
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
        let mut l = Ledger::<u32, 2>::new(3);
        l.observe(1, 2, [1, 1]);
        l.sweep();
        let seen: Vec<bool> = l.totals().iter().map(|t| t.seen).collect();
        assert_eq!(seen, vec![false, false, true]);
    }

    #[test]
    fn out_of_range_class_is_ignored() {
        let mut l = Ledger::<u32, 2>::new(1);
        l.observe(1, 7, [1, 1]);
        l.sweep();
        assert_eq!(totals(&l), vec![[0, 0]]);
    }
}
