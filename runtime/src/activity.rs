//! What each open connection is doing, so a full listener can make room: when a listener is at its
//! cap, the connection that has waited longest without a request in hand is closed for the new one.
//!
//! Why evict rather than refuse: every client we serve on purpose (the API server, Prometheus, the
//! relay, the kubelet's exec probe) sends its request as soon as it connects and reads the answer at
//! once, so it is "busy" for the few milliseconds it matters. A client that connects and sends
//! nothing, trickles a head, or idles between requests holds a slot without using it; refusing new
//! connections at the cap let 256 such sockets shut every real client out. Closing the oldest idle
//! one instead costs such a client its connection, never a request in progress.
//!
//! A handler can mark part of its own work as idle ([`Activity::idle`]): the webhook does while it
//! waits for a review slot and reads a body, so a client trickling a body is evictable too.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// One connection's standing. Requests find it in their extensions as `Arc<Activity>`.
#[derive(Debug)]
pub struct Activity {
    /// Accept order on its listener: lower is older.
    seq: u64,
    /// Requests in hand, less the idle sections inside them.
    busy: AtomicUsize,
    evicted: AtomicBool,
    evict: Notify,
}

/// Held while a handler runs: the connection is busy.
#[derive(Debug)]
pub struct Busy(Arc<Activity>);

/// Held inside a handler for work a slow client controls (reading its body): the connection is
/// evictable meanwhile.
#[derive(Debug)]
pub struct Idle(Arc<Activity>);

/// The open connections of one listener, oldest first.
#[derive(Debug, Default)]
pub struct Table {
    next: AtomicU64,
    open: Mutex<BTreeMap<u64, Arc<Activity>>>,
}

/// Removes its connection from the table when the connection task ends.
#[derive(Debug)]
pub struct Entry {
    table: Arc<Table>,
    activity: Arc<Activity>,
}

// === impl Activity ===

impl Activity {
    /// Marks the connection evictable until the guard is dropped.
    pub fn idle(self: &Arc<Self>) -> Idle {
        self.busy.fetch_sub(1, Ordering::AcqRel);
        Idle(Arc::clone(self))
    }

    /// Whether a request is in hand outside an idle section.
    pub fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Acquire) > 0
    }

    /// Asks the connection to close now; its task drops it, and with it any request in hand.
    pub fn evict(&self) {
        if !self.evicted.swap(true, Ordering::AcqRel) {
            // `notify_one` keeps a permit when nobody waits yet, so a later `evicted()` returns.
            self.evict.notify_one();
        }
    }

    pub fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }

    /// Resolves once [`Activity::evict`] was called.
    pub async fn evicted(&self) {
        self.evict.notified().await;
    }

    /// Marks a request in hand until the guard is dropped.
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::AcqRel);
        Busy(Arc::clone(self))
    }

    /// Accept order on its listener.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Idle {
    fn drop(&mut self) {
        self.0.busy.fetch_add(1, Ordering::AcqRel);
    }
}

// === impl Table ===

impl Table {
    /// Registers a new connection, the youngest.
    pub fn open(self: &Arc<Self>) -> Entry {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity {
            seq,
            busy: AtomicUsize::new(0),
            evicted: AtomicBool::new(false),
            evict: Notify::new(),
        });
        self.lock().insert(seq, Arc::clone(&activity));
        Entry {
            table: Arc::clone(self),
            activity,
        }
    }

    /// Evicts the oldest connection without a request in hand; false when every one is busy.
    pub fn evict_oldest_idle(&self) -> bool {
        let open = self.lock();
        match oldest_idle(open.values().map(|a| (a.is_busy(), a.is_evicted()))) {
            Some(index) => {
                if let Some(activity) = open.values().nth(index) {
                    activity.evict();
                }
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Activity>>> {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

// === impl Entry ===

impl Entry {
    pub fn activity(&self) -> &Arc<Activity> {
        &self.activity
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.table.lock().remove(&self.activity.seq);
    }
}

/// Which connection to evict, from `(busy, already evicted)` oldest first: the oldest that is
/// neither. The accept loop waits for an evicted connection's slot before it accepts again, so one
/// already asked to go is only still there when it did not let go in time.
fn oldest_idle(connections: impl Iterator<Item = (bool, bool)>) -> Option<usize> {
    connections
        .enumerate()
        .find(|(_, (busy, evicted))| !busy && !evicted)
        .map(|(index, _)| index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_connection_without_a_request_goes() {
        let idle = (false, false);
        let busy = (true, false);
        let going = (false, true);
        /// Each connection's (busy, already evicted), oldest first; who goes.
        type Row<'a> = (&'a [(bool, bool)], Option<usize>);
        let table: [Row<'_>; 6] = [
            (&[], None),
            (&[idle], Some(0)),
            (&[busy, idle, idle], Some(1)),
            (&[busy, busy], None),
            (&[going, idle], Some(1)),
            (&[busy, going], None),
        ];
        for (connections, want) in table {
            assert_eq!(
                oldest_idle(connections.iter().copied()),
                want,
                "{connections:?}"
            );
        }
    }

    #[tokio::test]
    async fn idle_sections_and_eviction_are_seen_by_the_table() {
        let table = Arc::new(Table::default());
        let old = table.open();
        let young = table.open();
        let busy = old.activity().busy();
        assert!(old.activity().is_busy());
        assert!(table.evict_oldest_idle());
        assert!(young.activity().is_evicted() && !old.activity().is_evicted());
        // The eviction is remembered until the task looks.
        young.activity().evicted().await;

        drop(young);
        {
            let _reading = old.activity().idle();
            assert!(!old.activity().is_busy());
            assert!(table.evict_oldest_idle());
        }
        assert!(old.activity().is_busy() && old.activity().is_evicted());
        drop(busy);
        drop(old);
        assert!(!table.evict_oldest_idle());
    }
}
