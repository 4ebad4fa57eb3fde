//! What the accept loop does after `accept` fails, as pure state machines: how long to wait, and
//! whether to log.
//!
//! A listener whose accept fails for lack of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM) stays
//! readable, so retrying at once spins a core and writes a warning per retry. The loop sleeps
//! instead, longer after each failure, and logs the first error and then one line per interval.

use std::io;
use std::time::{Duration, Instant};

/// The first sleep after a failed accept: short, so a brief shortage costs little latency.
pub const FIRST_DELAY: Duration = Duration::from_millis(5);

/// The longest sleep: a freed descriptor is picked up within a second.
pub const MAX_DELAY: Duration = Duration::from_secs(1);

/// At most one accept-error line per this interval.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// What a failed accept says about the listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// One connection failed before we got it (reset or aborted in the backlog): the next accept
    /// may well succeed, so retry at once.
    Connection,
    /// Anything else, above all a lack of descriptors or memory: retrying at once would spin.
    Resources,
}

/// Classifies an accept error.
pub fn classify(error: &io::Error) -> Failure {
    match error.kind() {
        io::ErrorKind::ConnectionAborted
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::Interrupted => Failure::Connection,
        _ => Failure::Resources,
    }
}

/// The sleep after a resource failure, given the previous one (`None` after a success):
/// `FIRST_DELAY`, doubling up to `MAX_DELAY`.
pub fn next_delay(previous: Option<Duration>) -> Duration {
    match previous {
        None => FIRST_DELAY,
        Some(delay) => delay.saturating_mul(2).clamp(FIRST_DELAY, MAX_DELAY),
    }
}

/// Exponential backoff across consecutive failures; a success resets it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Backoff {
    delay: Option<Duration>,
}

impl Backoff {
    /// The sleep for this failure.
    pub fn failed(&mut self) -> Duration {
        let delay = next_delay(self.delay);
        self.delay = Some(delay);
        delay
    }

    pub fn succeeded(&mut self) {
        self.delay = None;
    }
}

/// Lets the first event through, then at most one per `interval`, reporting how many it held
/// back in between.
#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimit {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// An event at `now`: `Some(suppressed since the last logged one)` if it should be logged.
    pub fn hit(&mut self, now: Instant) -> Option<u64> {
        let due = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= self.interval);
        if due {
            self.last = Some(now);
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_from_first_to_max() {
        let ms = Duration::from_millis;
        let cases = [
            (None, ms(5)),
            (Some(ms(5)), ms(10)),
            (Some(ms(10)), ms(20)),
            (Some(ms(320)), ms(640)),
            (Some(ms(640)), ms(1000)),
            (Some(ms(1000)), ms(1000)),
            (Some(Duration::MAX), ms(1000)),
            (Some(Duration::ZERO), ms(5)),
        ];
        for (previous, want) in cases {
            assert_eq!(next_delay(previous), want, "{previous:?}");
        }
    }

    #[test]
    fn backoff_resets_on_success() {
        let mut backoff = Backoff::default();
        let delays: Vec<_> = (0..10).map(|_| backoff.failed().as_millis()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        backoff.succeeded();
        assert_eq!(backoff.failed(), FIRST_DELAY);
    }

    #[test]
    fn classifies_accept_errors() {
        let cases = [
            (io::Error::from_raw_os_error(24), Failure::Resources), // EMFILE
            (io::Error::from_raw_os_error(23), Failure::Resources), // ENFILE
            (io::Error::from_raw_os_error(105), Failure::Resources), // ENOBUFS
            (io::Error::from_raw_os_error(12), Failure::Resources), // ENOMEM
            (io::Error::from_raw_os_error(103), Failure::Connection), // ECONNABORTED
            (io::Error::from_raw_os_error(104), Failure::Connection), // ECONNRESET
            (io::Error::other("unknown"), Failure::Resources),
        ];
        for (error, want) in cases {
            assert_eq!(classify(&error), want, "{error}");
        }
    }

    #[test]
    fn rate_limit_logs_first_then_one_per_interval_with_the_count() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut limit = RateLimit::new(Duration::from_secs(10));
        // (time of the event in ms, what `hit` says)
        let cases = [
            (0, Some(0)),
            (1, None),
            (5_000, None),
            (9_999, None),
            (10_000, Some(3)),
            (10_001, None),
            (30_000, Some(1)),
            (30_001, None),
            (45_000, Some(1)),
        ];
        for (ms, want) in cases {
            assert_eq!(limit.hit(at(ms)), want, "at {ms} ms");
        }
    }
}
