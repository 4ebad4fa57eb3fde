//! Review slots: at most [`super::Limits::reviews`] requests read a body and decide at once, so
//! the webhook's memory is that many reviews at their worst, whatever the number of connections.
//!
//! A slot is taken before the body is read, so a client that trickles its body holds one. Such a
//! client is evictable: a request that finds every slot taken closes the connection of the oldest
//! holder still reading its body (through the runtime's [`Activity`]) and takes its slot. The API
//! server sends a review's body at once, so only slow clients are ever still reading. Holders that
//! are deciding (parse, VMI lookup, answer: at most the lookup budget) are never evicted; past
//! [`super::Limits::slot_wait`] a request gives up and is answered 503, which the API server's
//! `failurePolicy: Ignore` turns into an admission without the sidecar, counted as `busy`.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube_metrics_runtime::Activity;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The slots of one server.
#[derive(Debug)]
pub struct Reviews {
    permits: Arc<Semaphore>,
    /// Holders still reading their body, oldest first, with their connections.
    reading: Mutex<BTreeMap<u64, Arc<Activity>>>,
    next: AtomicU64,
    wait: Duration,
}

/// One review's slot; its body is being read until [`Slot::read`].
#[derive(Debug)]
pub struct Slot {
    reviews: Arc<Reviews>,
    seq: u64,
    _permit: OwnedSemaphorePermit,
}

// === impl Reviews ===

impl Reviews {
    pub fn new(slots: usize, wait: Duration) -> Arc<Self> {
        Arc::new(Self {
            permits: Arc::new(Semaphore::new(slots.max(1))),
            reading: Mutex::default(),
            next: AtomicU64::new(0),
            wait,
        })
    }

    /// A slot for a review whose connection is `activity` (none when the request did not come
    /// through the runtime's accept loop): a free one, else the one the oldest slow reader gives
    /// up, else the first to come free within the wait. `None` past the wait.
    pub async fn acquire(self: &Arc<Self>, activity: Option<&Arc<Activity>>) -> Option<Slot> {
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                self.evict_oldest_reader();
                let freed = Arc::clone(&self.permits).acquire_owned();
                tokio::time::timeout(self.wait, freed).await.ok()?.ok()?
            }
        };
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        if let Some(activity) = activity {
            self.lock().insert(seq, Arc::clone(activity));
        }
        Some(Slot {
            reviews: Arc::clone(self),
            seq,
            _permit: permit,
        })
    }

    /// Slots in use, for tests and logs.
    pub fn in_use(&self, slots: usize) -> usize {
        slots.max(1) - self.permits.available_permits()
    }

    fn evict_oldest_reader(&self) {
        let reading = self.lock();
        let oldest = oldest_reader(reading.values().map(|a| a.is_evicted()));
        if let Some(activity) = oldest.and_then(|index| reading.values().nth(index)) {
            tracing::debug!(
                seq = activity.seq(),
                "Evicting a slow body for a new review"
            );
            activity.evict();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Activity>>> {
        self.reading
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

// === impl Slot ===

impl Slot {
    /// The body is in: from now on the review is deciding and is not evicted.
    pub fn read(&self) {
        self.reviews.lock().remove(&self.seq);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.reviews.lock().remove(&self.seq);
    }
}

/// Which reader to evict, from each one's "already evicted" oldest first: the oldest not yet asked
/// to go. Every waiting request evicts one, so two at once free two slots.
fn oldest_reader(evicted: impl Iterator<Item = bool>) -> Option<usize> {
    evicted.enumerate().find(|(_, gone)| !gone).map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_reader_not_yet_evicted_goes() {
        let table: [(&[bool], Option<usize>); 4] = [
            (&[], None),
            (&[false, false], Some(0)),
            (&[true, false], Some(1)),
            (&[true, true], None),
        ];
        for (evicted, want) in table {
            assert_eq!(oldest_reader(evicted.iter().copied()), want, "{evicted:?}");
        }
    }

    #[tokio::test]
    async fn a_full_set_of_deciding_reviews_makes_the_next_one_wait_then_give_up() {
        let reviews = Reviews::new(1, Duration::from_millis(50));
        let first = reviews.acquire(None).await.unwrap();
        first.read();
        assert!(reviews.acquire(None).await.is_none());
        drop(first);
        assert!(reviews.acquire(None).await.is_some());
    }
}
