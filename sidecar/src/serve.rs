//! The HTTP surface: `GET /metrics`, `/healthz`, `/readyz` on TCP and/or a Unix socket.
//!
//! Scrapes are coalesced: one collection at a time, and a scrape that arrives while one runs, or
//! within `--min-interval-ms` of the last, is answered from it. Shutdown on SIGTERM/SIGINT clears
//! readiness, stops accepting, drains in-flight requests with a deadline and removes the socket.

use std::convert::Infallible;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;

use crate::args::ServeConfig;
use crate::exposition::{self, Format, Metrics};
use crate::identity::Env;
use crate::scrape::Scraper;

/// A client must send its request headers within this time, so a port scanner or stalled client
/// cannot hold a connection open.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Below the default 30 s termination grace period, so we exit on our own terms.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A body of our size (~30 KB for a launcher pod) in one allocation.
const ENCODE_CAPACITY: usize = 32 * 1024;

/// Shared by every connection.
#[derive(Debug)]
pub struct State {
    scraper: Arc<Mutex<Scraper>>,
    latest: tokio::sync::Mutex<Option<Arc<Snapshot>>>,
    min_interval: Duration,
    ready: AtomicBool,
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
    let tcp = match listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("failed to bind {addr}"))?,
        ),
        None => None,
    };
    let unix = match &socket {
        Some(path) => {
            Some(bind_unix(path).with_context(|| format!("failed to bind {}", path.display()))?)
        }
        None => None,
    };
    let tcp_addr = tcp.as_ref().and_then(|l| l.local_addr().ok());
    tracing::info!(listen = ?tcp_addr, socket = ?socket, "Serving metrics");

    let state = Arc::new(State::new(
        Scraper::new(scrape, Env::from_env()),
        min_interval,
    ));
    // The first collection makes /readyz succeed and sets the baseline for restart counting.
    let warmup = Arc::clone(&state);
    tokio::spawn(async move { warmup.snapshot().await });

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = stop_tx.send(true);
    });
    serve(tcp, unix, Arc::clone(&state), stop_rx).await;
    if let Some(path) = &socket
        && let Err(error) = std::fs::remove_file(path)
    {
        tracing::warn!(%error, path = %path.display(), "Failed to remove socket");
    }
    tracing::info!("Stopped");
    Ok(())
}

/// The accept loop over both listeners; returns once drained after `stop` turns true.
pub async fn serve(
    tcp: Option<TcpListener>,
    unix: Option<UnixListener>,
    state: Arc<State>,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => break,
            accepted = accept_tcp(tcp.as_ref()) => match accepted {
                Ok(stream) => spawn_connection(stream, &state, &graceful),
                Err(error) => tracing::warn!(%error, "Failed to accept connection"),
            },
            accepted = accept_unix(unix.as_ref()) => match accepted {
                Ok(stream) => spawn_connection(stream, &state, &graceful),
                Err(error) => tracing::warn!(%error, "Failed to accept connection"),
            },
        }
    }
    state.ready.store(false, Ordering::Release);
    drop((tcp, unix));
    tokio::select! {
        () = graceful.shutdown() => tracing::debug!("Drained"),
        () = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("Drain timed out"),
    }
}

/// Every route, method and status code.
pub async fn route(req: &Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => {
            let accept = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok());
            state.metrics(exposition::negotiate(accept)).await
        }
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz") if state.ready.load(Ordering::Acquire) => {
            text(StatusCode::OK, "ready\n")
        }
        (&Method::GET, "/readyz") => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        (_, "/metrics" | "/healthz" | "/readyz") => {
            let mut rsp = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            rsp.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("GET"));
            rsp
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

// === impl State ===

impl State {
    pub fn new(scraper: Scraper, min_interval: Duration) -> Self {
        Self {
            scraper: Arc::new(Mutex::new(scraper)),
            latest: tokio::sync::Mutex::new(None),
            min_interval,
            ready: AtomicBool::new(false),
        }
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
            match exposition::encode(metrics, format, &mut out) {
                Ok(()) => Some(Bytes::from(out)),
                Err(never) => match never {},
            }
        });
        match body {
            Some(body) => {
                let mut rsp = Response::new(Full::new(body.clone()));
                let value = header::HeaderValue::from_static(format.content_type());
                rsp.headers_mut().insert(header::CONTENT_TYPE, value);
                rsp
            }
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

fn spawn_connection<S>(stream: S, state: &Arc<State>, graceful: &GracefulShutdown)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let state = Arc::clone(state);
    let service = service_fn(move |req: Request<Incoming>| {
        let state = Arc::clone(&state);
        async move { Ok::<_, Infallible>(route(&req, &state).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    let conn = graceful.watch(conn);
    tokio::spawn(async move {
        if let Err(error) = conn.await {
            tracing::debug!(%error, "Connection closed with an error");
        }
    });
}

async fn accept_tcp(listener: Option<&TcpListener>) -> io::Result<tokio::net::TcpStream> {
    match listener {
        Some(l) => l.accept().await.map(|(stream, _)| stream),
        None => std::future::pending().await,
    }
}

async fn accept_unix(listener: Option<&UnixListener>) -> io::Result<tokio::net::UnixStream> {
    match listener {
        Some(l) => l.accept().await.map(|(stream, _)| stream),
        None => std::future::pending().await,
    }
}

/// Mode of the collector's socket: owner and group may connect (see `bind_unix`).
pub const SOCKET_MODE: u32 = 0o660;

/// Binds a Unix socket, replacing a stale socket file a previous run left behind.
pub fn bind_unix(path: &Path) -> io::Result<UnixListener> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path)?,
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "exists and is not a socket",
            ));
        }
        Err(_) => {}
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let listener = UnixListener::bind(path)?;
    // Connecting needs write permission on the socket. The node relay runs without
    // CAP_DAC_OVERRIDE and reaches the socket through the pod's group (fsGroup 107), so the
    // group gets read-write whatever the umask; others get nothing.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))?;
    Ok(listener)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!(signal = "SIGTERM", "Shutting down"),
                _ = int.recv() => tracing::info!(signal = "SIGINT", "Shutting down"),
            }
        }
        (Err(error), _) | (_, Err(error)) => {
            tracing::error!(%error, "Cannot listen for signals; running until killed");
            std::future::pending::<()>().await;
        }
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut rsp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *rsp.status_mut() = status;
    rsp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    rsp
}
