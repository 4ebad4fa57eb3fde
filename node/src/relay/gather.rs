//! One scrape of the node: discover the sockets, fetch them all at once, merge,
//! and account for every target that did not make it. Concurrent requests
//! share one scrape, and one answer is alive at a time.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::task::JoinSet;

use super::discover::{Discovery, Layout, discover};
use super::fetch::{FetchError, Limits, fetch};
use super::merge::{Identity, merge};
use super::stats::{LastScrape, Stats};

/// Scrapes every collector on the node; shared by all HTTP connections.
#[derive(Debug)]
pub struct Relay {
    layout: Layout,
    limits: Limits,
    stats: Mutex<Stats>,
    /// The latest body and when it was finished. Held across a scrape, so a
    /// request arriving meanwhile waits and takes that scrape's body.
    latest: tokio::sync::Mutex<Option<(Instant, Bytes)>>,
}

/// How long an answer still being sent to one client may be given to another
/// instead of a new scrape: the PodMonitors' `scrapeTimeout`, after which
/// Prometheus has given up on the answer it was reading.
pub const IN_FLIGHT_REUSE: Duration = Duration::from_secs(10);

/// What one target's fetch gave.
type Fetched = (usize, String, Identity, Result<String, FetchError>);

/// The targets that answered, in discovery order: pod uid, attested identity, body.
type Answered = Vec<(String, Identity, String)>;

// === impl Relay ===

impl Relay {
    pub fn new(layout: Layout, limits: Limits) -> Self {
        Self {
            layout,
            limits,
            stats: Mutex::new(Stats::default()),
            latest: tokio::sync::Mutex::new(None),
        }
    }

    /// The `/metrics` body of a scrape that finished after this call began:
    /// the one under way if there is one, otherwise a new one; or the latest
    /// answer while it is still being sent to another client ([`reuse_latest`]).
    /// However many requests arrive together, the node is scraped once for
    /// them, and a new scrape starts only once nobody holds the previous
    /// answer: memory stays that of one scrape and one answer
    /// (docs/threat-model.md, "The relay's bounds").
    pub async fn shared_scrape(self: &Arc<Self>) -> Bytes {
        let arrived = Instant::now();
        let mut latest = self.latest.lock().await;
        if let Some((finished, body)) = latest.as_ref() {
            let in_flight = !body.is_unique();
            if reuse_latest(arrived, *finished, in_flight, Instant::now()) {
                return body.clone();
            }
        }
        // Dropped before the next one is built, not when it replaces it.
        *latest = None;
        let body = Bytes::from(self.scrape().await);
        *latest = Some((Instant::now(), body.clone()));
        body
    }

    /// The whole `/metrics` body: every collector's series, then the relay's own.
    /// Never fails: a target that cannot be read is counted and left out.
    pub async fn scrape(self: &Arc<Self>) -> String {
        let start = Instant::now();
        let mut last = LastScrape::default();
        let mut failures: Vec<&'static str> = Vec::new();

        let discovery = self.discover().await;
        for (pod_uid, skipped) in &discovery.skipped {
            tracing::debug!(%pod_uid, reason = skipped.reason(), "Skipping pod socket");
            failures.push(skipped.reason());
        }
        last.skipped_direct = discovery.direct.len() as u64;
        let answered = self.fetch_all(discovery, &mut failures, &mut last).await;
        let (uids, bodies): (Vec<String>, Vec<(Identity, String)>) = answered
            .into_iter()
            .map(|(uid, id, body)| (uid, (id, body)))
            .unzip();

        // Parsing a few MB of text is CPU work; keep it off the async workers.
        let merged = tokio::task::spawn_blocking(move || merge(&bodies)).await;
        let (text, reports) = match merged {
            Ok(merged) => (merged.text, merged.targets),
            Err(error) => {
                tracing::error!(%error, "Merge task failed");
                (String::new(), Vec::new())
            }
        };
        last.ok = reports.iter().filter(|r| r.identity.is_ok()).count() as u64;
        for (pod_uid, report) in uids.iter().zip(&reports) {
            if let Err(rejected) = &report.identity {
                tracing::debug!(%pod_uid, reason = rejected.reason(), "Leaving out collector");
                failures.push(rejected.reason());
            }
        }
        last.failed = (failures.len() as u64).saturating_sub(last.timeout);
        last.duration = start.elapsed();

        let mut stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        for reason in failures {
            stats.fail(reason);
        }
        for report in &reports {
            stats.add_dropped(&report.dropped);
        }
        let own = stats.render(&last);
        drop(stats);
        // Into the room `merge` left for it: the answer is not copied.
        let mut text = text;
        text.push_str(&own);
        text
    }

    /// A copy of the counters, for tests.
    pub fn stats(&self) -> Stats {
        self.stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn discover(&self) -> Discovery {
        let layout = self.layout.clone();
        match tokio::task::spawn_blocking(move || discover(&layout)).await {
            Ok(Ok(discovery)) => discovery,
            Ok(Err(error)) => {
                tracing::warn!(error = %anyhow::Error::from(error), "Cannot list collector sockets");
                self.stats
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .fail("discovery");
                Discovery::default()
            }
            Err(error) => {
                tracing::error!(%error, "Discovery task failed");
                Discovery::default()
            }
        }
    }

    /// Fetches every target concurrently; returns the ones that answered.
    async fn fetch_all(
        &self,
        discovery: Discovery,
        failures: &mut Vec<&'static str>,
        last: &mut LastScrape,
    ) -> Answered {
        let mut tasks = JoinSet::new();
        for (index, target) in discovery.targets.into_iter().enumerate() {
            let limits = self.limits;
            tasks.spawn(async move {
                let result = fetch(&target.connect_path(), limits).await;
                // `target` (and its descriptor) lives until the fetch is done.
                (index, target.pod_uid, target.identity, result)
            });
        }
        let mut answered: Vec<(usize, String, Identity, String)> = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let (index, pod_uid, identity, result): Fetched = match joined {
                Ok(fetched) => fetched,
                Err(error) => {
                    tracing::error!(%error, "Scrape task failed");
                    failures.push("body");
                    continue;
                }
            };
            match result {
                Ok(body) => answered.push((index, pod_uid, identity, body)),
                Err(error) => {
                    let reason = error.reason();
                    if matches!(error, FetchError::Timeout) {
                        last.timeout += 1;
                    }
                    let error = format!("{:#}", anyhow::Error::from(error));
                    tracing::debug!(%pod_uid, reason, error, "Collector scrape failed");
                    failures.push(reason);
                }
            }
        }
        answered.sort_by_key(|(index, _, _, _)| *index);
        answered
            .into_iter()
            .map(|(_, uid, id, body)| (uid, id, body))
            .collect()
    }
}

/// Whether a request that arrived at `arrived` gets the answer of the scrape
/// that finished at `finished` instead of a new scrape: when that scrape
/// finished after the request arrived (the request waited for it), or when
/// the answer is still being sent to another client (`in_flight`) and is
/// younger than [`IN_FLIGHT_REUSE`]. The second keeps a second answer from
/// being built while the first still takes memory, when two Prometheus
/// replicas scrape the node a moment apart.
pub fn reuse_latest(arrived: Instant, finished: Instant, in_flight: bool, now: Instant) -> bool {
    finished >= arrived || (in_flight && now.saturating_duration_since(finished) < IN_FLIGHT_REUSE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_the_latest_answer_only_when_fresh_for_the_request_or_still_being_sent() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // (case, arrived, finished, in flight, now, reuse)
        let cases = [
            (
                "finished after the request arrived",
                0,
                500,
                false,
                600,
                true,
            ),
            (
                "finished before, nobody sends it",
                500,
                0,
                false,
                600,
                false,
            ),
            ("finished before, still being sent", 500, 0, true, 600, true),
            ("still being sent, but old", 20_000, 0, true, 20_000, false),
            (
                "still being sent, just under the limit",
                9_000,
                0,
                true,
                9_999,
                true,
            ),
        ];
        for (case, arrived, finished, in_flight, now, want) in cases {
            let got = reuse_latest(at(arrived), at(finished), in_flight, at(now));
            assert_eq!(got, want, "{case}");
        }
    }
}
