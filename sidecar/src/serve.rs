//! The HTTP surface: `GET /metrics`, `/healthz`, `/readyz` on TCP and/or a Unix socket.
//!
//! Scrapes are coalesced: one collection at a time, and a scrape that arrives while one runs, or
//! within `--min-interval-ms` of the last, is answered from it. Listeners, timeouts, shutdown on
//! SIGTERM/SIGINT and the drain are `kube_metrics_runtime`'s; readiness goes when shutdown starts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use kube_metrics_runtime::response::{method_not_allowed, not_found, text, typed};
use kube_metrics_runtime::{ConnectionStats, Kind, Options, Shutdown, listen};

use crate::args::ServeConfig;
use kube_metrics_collect::families::{self, Metrics};
use kube_metrics_exposition::{Format, negotiate};

use crate::podinfo::Env;
use crate::scrape::Scraper;

/// A body of our size (~30 KB for a launcher pod) in one allocation.
const ENCODE_CAPACITY: usize = 32 * 1024;

/// Shared by every connection.
#[derive(Debug)]
pub struct State {
    scraper: Arc<Mutex<Scraper>>,
    latest: tokio::sync::Mutex<Option<Arc<Snapshot>>>,
    min_interval: Duration,
    /// Set by the first collection.
    ready: AtomicBool,
    /// Readiness goes once shutdown starts.
    shutdown: Shutdown,
}

/// One collection, encoded lazily once per format.
#[derive(Debug)]
struct Snapshot {
    finished: Instant,
    metrics: Option<Metrics>,
    text: OnceLock<Option<Bytes>>,
    openmetrics: OnceLock<Option<Bytes>>,
}

/// Binds the listeners, serves until SIGTERM/SIGINT, drains.
pub async fn run(config: ServeConfig) -> anyhow::Result<()> {
    let ServeConfig {
        scrape,
        listen,
        socket,
        min_interval,
    } = config;
    let mut listeners = Vec::new();
    if let Some(addr) = listen {
        let tcp = listen::bind_tcp(addr)
            .await
            .with_context(|| format!("failed to bind {addr}"))?;
        listeners.push(tcp);
    }
    if let Some(path) = &socket {
        let unix = listen::bind_unix(path)
            .with_context(|| format!("failed to bind {}", path.display()))?;
        listeners.push(unix);
    }
    let tcp_addr = listeners.iter().find_map(listen::Listener::tcp_addr);
    let shutdown = Shutdown::on_signal().context("failed to install signal handlers")?;
    tracing::info!(
        listen = tcp_addr.map(tracing::field::display),
        socket = socket
            .as_ref()
            .map(|p| tracing::field::display(p.display())),
        "Serving metrics"
    );

    let stats = Arc::new(ConnectionStats::default());
    let mut scraper = Scraper::new(scrape, Env::from_env());
    scraper.count_connections(listeners.iter().map(Kind::of).collect(), Arc::clone(&stats));
    let state = Arc::new(State::new(scraper, min_interval, shutdown.clone()));
    // The first collection makes /readyz succeed and sets the baseline for restart counting.
    let warmup = Arc::clone(&state);
    tokio::spawn(async move { warmup.snapshot().await });

    let handler = move |req: Request<Incoming>| {
        let state = Arc::clone(&state);
        async move { route(&req, &state).await }
    };
    let options = Options {
        stats,
        ..Options::default()
    };
    kube_metrics_runtime::serve(listeners, handler, shutdown, options).await;
    tracing::info!("Stopped");
    Ok(())
}

/// Every route, method and status code.
pub async fn route(req: &Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => {
            let accept = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok());
            state.metrics(negotiate(accept)).await
        }
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz") if state.is_ready() => text(StatusCode::OK, "ready\n"),
        (&Method::GET, "/readyz") => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        (_, "/metrics" | "/healthz" | "/readyz") => method_not_allowed("GET"),
        _ => not_found(),
    }
}

// === impl State ===

impl State {
    pub fn new(scraper: Scraper, min_interval: Duration, shutdown: Shutdown) -> Self {
        Self {
            scraper: Arc::new(Mutex::new(scraper)),
            latest: tokio::sync::Mutex::new(None),
            min_interval,
            ready: AtomicBool::new(false),
            shutdown,
        }
    }

    /// Ready once a collection finished, and not after shutdown started.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !self.shutdown.is_started()
    }

    async fn metrics(&self, format: Format) -> Response<Full<Bytes>> {
        let snapshot = self.snapshot().await;
        let cell = match format {
            Format::Text => &snapshot.text,
            Format::OpenMetrics => &snapshot.openmetrics,
        };
        let body = cell.get_or_init(|| {
            let metrics = snapshot.metrics.as_ref()?;
            let mut out = Vec::with_capacity(ENCODE_CAPACITY);
            families::encode(metrics, format, &mut out);
            Some(Bytes::from(out))
        });
        match body {
            Some(body) => typed(format.content_type(), body.clone()),
            None => text(StatusCode::INTERNAL_SERVER_ERROR, "collection failed\n"),
        }
    }

    /// The latest collection if it finished after this call began or within `min_interval`;
    /// else a new one. The async lock makes concurrent callers share one collection.
    async fn snapshot(&self) -> Arc<Snapshot> {
        let arrived = Instant::now();
        let mut latest = self.latest.lock().await;
        if let Some(snapshot) = latest.as_ref() {
            let fresh = snapshot.finished >= arrived
                || arrived.saturating_duration_since(snapshot.finished) < self.min_interval;
            if fresh {
                return Arc::clone(snapshot);
            }
        }
        let scraper = Arc::clone(&self.scraper);
        // Reading /proc is blocking file I/O; keep it off the async thread.
        let collected = tokio::task::spawn_blocking(move || {
            let mut scraper = scraper
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            scraper.scrape()
        })
        .await;
        let metrics = collected
            .inspect_err(|error| tracing::error!(%error, "Collection task failed"))
            .ok();
        let snapshot = Arc::new(Snapshot {
            finished: Instant::now(),
            metrics,
            text: OnceLock::new(),
            openmetrics: OnceLock::new(),
        });
        *latest = Some(Arc::clone(&snapshot));
        self.ready.store(true, Ordering::Release);
        snapshot
    }
}
