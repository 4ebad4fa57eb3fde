//! One scrape of the node: discover the sockets, fetch them all at once, merge,
//! and account for every target that did not make it. Concurrent requests
//! share one scrape.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use tokio::task::JoinSet;

use super::discover::{Discovery, Layout, discover};
use super::merge::{Identity, merge};
use super::scrape::{Limits, ScrapeError, fetch};
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

/// What one target's fetch gave.
type Fetched = (usize, String, Identity, Result<String, ScrapeError>);

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
    /// the one under way if there is one, otherwise a new one. However many
    /// requests arrive together, the node is scraped once for them, so memory
    /// stays that of one scrape plus one shared body.
    pub async fn shared_scrape(self: &Arc<Self>) -> Bytes {
        let arrived = Instant::now();
        let mut latest = self.latest.lock().await;
        if let Some((finished, body)) = latest.as_ref()
            && *finished >= arrived
        {
            return body.clone();
        }
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
        text + &own
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
                    if matches!(error, ScrapeError::Timeout) {
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
