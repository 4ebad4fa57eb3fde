//! Review slots: at most [`super::Limits::reviews`] requests hold a body and decide at once, so
//! the webhook's memory is that many reviews at their worst, whatever the number of connections.
//!
//! A review small enough to read first (`mutate`, [`super::Limits::small_body`]) takes a slot with
//! its body in hand ([`Reviews::deciding`]). A larger one takes its slot before the body is read
//! ([`Reviews::reading`]), so a client that trickles a large body holds one; readers may hold every
//! slot but one, so a review whose body is in never waits behind them. A reader is evictable: a
//! request that finds no slot it may take closes the connection of the oldest holder that has been
//! reading its body for over [`READ_GRACE`] (through the runtime's [`Activity`]). The API server
//! sends a review's body at once, so only slow clients are ever still reading by then. Holders that
//! are deciding (parse, VMI lookup, answer: at most the lookup budget) are never evicted; past
//! [`super::Limits::slot_wait`] a request gives up and is answered 503, which the API server's
//! `failurePolicy: Ignore` turns into an admission without the sidecar, counted as `busy`.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube_metrics_runtime::Activity;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a holder must have been reading its body before a waiting review may evict it. The API
/// server sends a review's body at once (3 MiB is milliseconds on any cluster network), so only a
/// client that trickles is still reading after this; a burst of real reviews waits for each other
/// instead of cutting each other off.
pub const READ_GRACE: Duration = Duration::from_secs(1);

/// How often a waiting review looks again for a reader to evict.
const EVICT_TICK: Duration = Duration::from_millis(100);

/// The slots of one server.
#[derive(Debug)]
pub struct Reviews {
    permits: Arc<Semaphore>,
    /// One fewer than `permits`: taken with a slot by a review whose body is still to be read.
    readers: Arc<Semaphore>,
    /// Holders still reading their body, oldest first, with their connections and when they
    /// started.
    reading: Mutex<BTreeMap<u64, (Instant, Arc<Activity>)>>,
    next: AtomicU64,
    wait: Duration,
}

/// One review's slot; while it holds a reader's place its body is being read, until [`Slot::read`].
#[derive(Debug)]
pub struct Slot {
    reviews: Arc<Reviews>,
    seq: u64,
    reader: Option<OwnedSemaphorePermit>,
    _permit: OwnedSemaphorePermit,
}

// === impl Reviews ===

impl Reviews {
    pub fn new(slots: usize, wait: Duration) -> Arc<Self> {
        let slots = slots.max(1);
        Arc::new(Self {
            permits: Arc::new(Semaphore::new(slots)),
            readers: Arc::new(Semaphore::new((slots - 1).max(1))),
            reading: Mutex::default(),
            next: AtomicU64::new(0),
            wait,
        })
    }

    /// A slot for a review whose body is in: a free one, else the one the oldest slow reader gives
    /// up, else the first to come free within the wait. `None` past the wait.
    pub async fn deciding(self: &Arc<Self>) -> Option<Slot> {
        let deadline = tokio::time::Instant::now() + self.wait;
        let permit = self.take(&self.permits, deadline).await?;
        Some(self.slot(None, permit))
    }

    /// A slot for a review whose body is still to be read on connection `activity` (none when
    /// the request did not come through the runtime's accept loop): a reader's place, then a
    /// slot, each as [`Reviews::deciding`] takes one, within one wait.
    pub async fn reading(self: &Arc<Self>, activity: Option<&Arc<Activity>>) -> Option<Slot> {
        let deadline = tokio::time::Instant::now() + self.wait;
        let reader = self.take(&self.readers, deadline).await?;
        let permit = self.take(&self.permits, deadline).await?;
        let slot = self.slot(Some(reader), permit);
        if let Some(activity) = activity {
            self.lock()
                .insert(slot.seq, (Instant::now(), Arc::clone(activity)));
        }
        Some(slot)
    }

    fn slot(
        self: &Arc<Self>,
        reader: Option<OwnedSemaphorePermit>,
        permit: OwnedSemaphorePermit,
    ) -> Slot {
        Slot {
            reviews: Arc::clone(self),
            seq: self.next.fetch_add(1, Ordering::Relaxed),
            reader,
            _permit: permit,
        }
    }

    /// A permit of `semaphore`: a free one, else waits for one until `deadline`, evicting a slow
    /// reader whenever one is past [`READ_GRACE`]: readers that were fresh when the wait began
    /// become evictable during it.
    async fn take(
        &self,
        semaphore: &Arc<Semaphore>,
        deadline: tokio::time::Instant,
    ) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = Arc::clone(semaphore).try_acquire_owned() {
            return Some(permit);
        }
        loop {
            self.evict_oldest_reader();
            let tick = (tokio::time::Instant::now() + EVICT_TICK).min(deadline);
            let freed = Arc::clone(semaphore).acquire_owned();
            match tokio::time::timeout_at(tick, freed).await {
                Ok(permit) => return permit.ok(),
                Err(_) if tick >= deadline => return None,
                Err(_) => {}
            }
        }
    }

    /// Slots in use, for tests and logs.
    pub fn in_use(&self, slots: usize) -> usize {
        slots.max(1) - self.permits.available_permits()
    }

    fn evict_oldest_reader(&self) {
        let reading = self.lock();
        let now = Instant::now();
        let holders = reading
            .values()
            .map(|(since, a)| (now.saturating_duration_since(*since), a.is_evicted()));
        let oldest = oldest_reader(holders);
        if let Some((_, activity)) = oldest.and_then(|index| reading.values().nth(index)) {
            tracing::debug!(
                seq = activity.seq(),
                "Evicting a slow body for a new review"
            );
            activity.evict();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, (Instant, Arc<Activity>)>> {
        self.reading
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

// === impl Slot ===

impl Slot {
    /// The body is in: from now on the review is deciding, is not evicted and leaves its reader's
    /// place to the next.
    pub fn read(&mut self) {
        self.reviews.lock().remove(&self.seq);
        self.reader = None;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.reviews.lock().remove(&self.seq);
    }
}

/// Which reader to evict, from each one's (time reading, already evicted) oldest first: the oldest
/// past [`READ_GRACE`] not yet asked to go. Every waiting request evicts one, so two at once free
/// two slots.
fn oldest_reader(holders: impl Iterator<Item = (Duration, bool)>) -> Option<usize> {
    holders
        .enumerate()
        .find(|(_, (reading, gone))| *reading > READ_GRACE && !gone)
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_slow_reader_not_yet_evicted_goes() {
        let slow = READ_GRACE * 2;
        let fresh = READ_GRACE / 2;
        /// Each holder's (time reading, already evicted), oldest first; who goes.
        type Row<'a> = (&'a [(Duration, bool)], Option<usize>);
        let table: [Row<'_>; 6] = [
            (&[], None),
            (&[(slow, false), (slow, false)], Some(0)),
            (&[(slow, true), (slow, false)], Some(1)),
            (&[(slow, true), (slow, true)], None),
            // A real review's body arrives at once: a burst does not cut itself off.
            (&[(fresh, false), (fresh, false)], None),
            (&[(fresh, false), (slow, false)], Some(1)),
        ];
        for (evicted, want) in table {
            assert_eq!(oldest_reader(evicted.iter().copied()), want, "{evicted:?}");
        }
    }

    #[tokio::test]
    async fn a_full_set_of_deciding_reviews_makes_the_next_one_wait_then_give_up() {
        let reviews = Reviews::new(1, Duration::from_millis(50));
        let first = reviews.deciding().await.unwrap();
        assert!(reviews.deciding().await.is_none());
        drop(first);
        assert!(reviews.deciding().await.is_some());
    }

    #[tokio::test]
    async fn readers_leave_the_last_slot_to_a_review_whose_body_is_in() {
        let reviews = Reviews::new(3, Duration::from_millis(50));
        let mut first = reviews.reading(None).await.unwrap();
        let _second = reviews.reading(None).await.unwrap();
        assert!(
            reviews.reading(None).await.is_none(),
            "two of three readers"
        );
        let last = reviews.deciding().await.unwrap();
        assert_eq!(reviews.in_use(3), 3);
        // A reader whose body is in gives its reader's place up, not its slot.
        first.read();
        drop(last);
        let third = reviews.reading(None).await;
        assert!(third.is_some());
        assert!(
            reviews.deciding().await.is_none(),
            "{} in use",
            reviews.in_use(3)
        );
    }
}
