//! The one accept loop: hyper HTTP/1 over one or more listeners, with a per-connection handshake
//! step (the webhook's TLS) and header-read timeout, a connection cap per listener (at the cap the
//! oldest idle connection makes room: `activity`), backoff when `accept` fails, a span per
//! connection and per request, and a drain with a deadline once shutdown starts.
//!
//! Each listener has its own cap, so clients of one (the TCP port any pod can reach) can never use
//! up the connections of another (the Unix socket the relay and the exec probe use).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument as _;

use crate::activity::Table;
use crate::backoff::{Backoff, Failure, LOG_INTERVAL, RateLimit, classify};
use crate::listen::{Listener, Stream};
use crate::response::Body;
use crate::shutdown::Shutdown;

/// After the drain deadline, how long the cut connections get to let go of their permits.
const CUT_GRACE: Duration = Duration::from_secs(1);

/// hyper's smallest read buffer (`max_buf_size` panics below it).
const MIN_BUF: usize = 8192;

/// How long a new connection waits for the slot of the idle one it evicted: that connection's task
/// only has to notice and drop, so this is a bound, not a delay.
const EVICT_WAIT: Duration = Duration::from_secs(1);

/// Per-server settings; the defaults are the crate's constants.
#[derive(Clone, Debug)]
pub struct Options {
    /// Time for each request head (and an idle keep-alive connection).
    pub header_read: Duration,
    /// Time for the handshake step.
    pub handshake: Duration,
    /// Time in-flight requests get once shutdown starts.
    pub drain: Duration,
    /// Connections served at once on each listener; past it the oldest idle one is closed for the
    /// new one, and when every one is busy the new one is closed at once.
    pub max_connections: usize,
    /// Largest request head (hyper's read buffer, at least 8 KiB), per connection.
    pub max_head_bytes: usize,
    /// Connections evicted and refused, for the binary's own metrics.
    pub stats: Arc<ConnectionStats>,
}

/// What the caps did, per kind of listener.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    evicted: enum_map::EnumMap<Kind, AtomicU64>,
    refused: enum_map::EnumMap<Kind, AtomicU64>,
}

/// A listener's kind, as a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, enum_map::Enum)]
pub enum Kind {
    Tcp,
    Unix,
}

/// A step between accept and HTTP, bounded by `Options::handshake`: TLS for the webhook.
pub trait Handshake: Send + Sync + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    fn handshake(&self, stream: Stream) -> impl Future<Output = io::Result<Self::Io>> + Send;
}

/// No handshake: HTTP on the accepted stream.
#[derive(Clone, Copy, Debug, Default)]
pub struct Plain;

/// What every connection task of one server shares.
struct Shared<S, H> {
    handshake: S,
    handler: H,
    options: Options,
    shutdown: Shutdown,
    /// Triggered at the drain deadline: connections still open are dropped.
    cut: Shutdown,
}

/// One listener's connections: its cap, what the drain waits for, and who may be evicted.
struct Slots {
    permits: Arc<Semaphore>,
    total: u32,
    table: Arc<Table>,
}

// === impl Options ===

impl Default for Options {
    fn default() -> Self {
        Self {
            header_read: crate::HEADER_READ_TIMEOUT,
            handshake: crate::HANDSHAKE_TIMEOUT,
            drain: crate::DRAIN_TIMEOUT,
            max_connections: crate::MAX_CONNECTIONS,
            max_head_bytes: crate::MAX_HEAD_BYTES,
            stats: Arc::default(),
        }
    }
}

// === impl ConnectionStats ===

impl ConnectionStats {
    /// Idle connections closed to make room for a new one.
    pub fn evicted(&self, kind: Kind) -> u64 {
        self.evicted[kind].load(Ordering::Relaxed)
    }

    /// New connections closed at once because every connection was busy.
    pub fn refused(&self, kind: Kind) -> u64 {
        self.refused[kind].load(Ordering::Relaxed)
    }
}

// === impl Kind ===

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Tcp, Kind::Unix];

    pub fn of(listener: &Listener) -> Kind {
        match listener {
            Listener::Tcp(_) => Kind::Tcp,
            Listener::Unix(_) => Kind::Unix,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Tcp => "tcp",
            Kind::Unix => "unix",
        }
    }
}

// === impl Plain ===

impl Handshake for Plain {
    type Io = Stream;

    fn handshake(&self, stream: Stream) -> impl Future<Output = io::Result<Stream>> + Send {
        std::future::ready(Ok(stream))
    }
}

/// Serves plain HTTP on every listener until `shutdown` starts, then drains.
pub async fn serve<H, F>(listeners: Vec<Listener>, handler: H, shutdown: Shutdown, options: Options)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    serve_with(listeners, Plain, handler, shutdown, options).await;
}

/// Serves every listener through `handshake` until `shutdown` starts; then stops accepting
/// (dropping the listeners, which removes Unix socket files), lets in-flight requests finish
/// within `options.drain`, and drops the connections still open after that.
pub async fn serve_with<S, H, F>(
    listeners: Vec<Listener>,
    handshake: S,
    handler: H,
    shutdown: Shutdown,
    options: Options,
) where
    S: Handshake,
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let total = u32::try_from(options.max_connections.max(1)).unwrap_or(u32::MAX);
    let (cut_tx, cut) = Shutdown::channel();
    let drain = options.drain;
    let shared = Arc::new(Shared {
        handshake,
        handler,
        options,
        shutdown,
        cut,
    });
    let mut loops = JoinSet::new();
    let mut all = Vec::new();
    for listener in listeners {
        let slots = Arc::new(Slots {
            permits: Arc::new(Semaphore::new(total as usize)),
            total,
            table: Arc::default(),
        });
        all.push(Arc::clone(&slots));
        loops.spawn(accept_loop(listener, slots, Arc::clone(&shared)));
    }
    while loops.join_next().await.is_some() {}

    let open = |all: &[Arc<Slots>]| all.iter().map(|s| s.open()).sum::<usize>();
    tracing::info!(connections = open(&all), "Draining");
    if tokio::time::timeout(drain, drained(&all)).await.is_ok() {
        tracing::info!("Drained");
    } else {
        tracing::warn!(
            connections = open(&all),
            "Drain timed out; closing the rest"
        );
        let _ = cut_tx.send(true);
        let _ = tokio::time::timeout(CUT_GRACE, drained(&all)).await;
    }
}

/// Resolves once every connection of every listener has closed.
async fn drained(all: &[Arc<Slots>]) {
    for slots in all {
        let _ = slots.permits.acquire_many(slots.total).await;
    }
}

// === impl Slots ===

impl Slots {
    fn open(&self) -> usize {
        self.total as usize - self.permits.available_permits()
    }

    /// A slot for a new connection: a free one, else the one the oldest idle connection gives up.
    /// `None` when every connection is busy.
    async fn admit(&self, stats: &ConnectionStats, kind: Kind) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() {
            return Some(permit);
        }
        if !self.table.evict_oldest_idle() {
            stats.refused[kind].fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let freed = Arc::clone(&self.permits).acquire_owned();
        match tokio::time::timeout(EVICT_WAIT, freed).await {
            Ok(Ok(permit)) => {
                stats.evicted[kind].fetch_add(1, Ordering::Relaxed);
                Some(permit)
            }
            _ => {
                stats.refused[kind].fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }
}

/// Accepts on one listener until shutdown starts.
async fn accept_loop<S, H, F>(listener: Listener, slots: Arc<Slots>, shared: Arc<Shared<S, H>>)
where
    S: Handshake,
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let name: Arc<str> = listener.to_string().into();
    let kind = Kind::of(&listener);
    let mut backoff = Backoff::default();
    let mut errors = RateLimit::new(LOG_INTERVAL);
    let mut refused = RateLimit::new(LOG_INTERVAL);
    loop {
        let accepted = tokio::select! {
            biased;
            () = shared.shutdown.wait() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                let failure = classify(&error);
                if let Some(suppressed) = errors.hit(Instant::now()) {
                    tracing::warn!(listener = %name, %error, suppressed, "Failed to accept connection");
                }
                if failure == Failure::Resources {
                    let delay = backoff.failed();
                    tokio::select! {
                        biased;
                        () = shared.shutdown.wait() => break,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
                continue;
            }
        };
        backoff.succeeded();
        // At the cap we accept and evict or close rather than stop accepting: the client learns
        // right away instead of waiting in the backlog until it times out, and the kernel's
        // backlog does not fill with connections we would serve long after their clients left.
        let admitted = tokio::select! {
            biased;
            () = shared.shutdown.wait() => break,
            admitted = slots.admit(&shared.options.stats, kind) => admitted,
        };
        let Some(permit) = admitted else {
            drop(stream);
            if let Some(suppressed) = refused.hit(Instant::now()) {
                let limit = shared.options.max_connections;
                tracing::warn!(listener = %name, %peer, limit, suppressed, "Every connection is busy; closing new ones");
            }
            continue;
        };
        let entry = slots.table.open();
        let span = tracing::info_span!("connection", listener = %name, %peer);
        tokio::spawn(connection(Arc::clone(&shared), stream, (permit, entry)).instrument(span));
    }
    tracing::debug!(listener = %name, "Stopped accepting");
}

/// One connection: handshake, then HTTP until the client leaves, the drain closes it, or the
/// drain deadline cuts it.
async fn connection<S, H, F>(
    shared: Arc<Shared<S, H>>,
    stream: Stream,
    (_permit, entry): (OwnedSemaphorePermit, crate::activity::Entry),
) where
    S: Handshake,
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let activity = entry.activity();
    let handshake =
        tokio::time::timeout(shared.options.handshake, shared.handshake.handshake(stream));
    let io = tokio::select! {
        biased;
        done = handshake => match done {
            Ok(Ok(io)) => io,
            Ok(Err(error)) => return tracing::debug!(%error, "Handshake failed"),
            Err(_) => return tracing::debug!("Handshake timed out"),
        },
        // Nothing is in flight before the handshake is done.
        () = shared.shutdown.wait() => return,
        () = activity.evicted() => return tracing::debug!("Evicted before its handshake"),
    };
    let handler = shared.handler.clone();
    let requests = Arc::clone(activity);
    let service = service_fn(move |mut req: Request<Incoming>| {
        let busy = requests.busy();
        req.extensions_mut().insert(Arc::clone(&requests));
        let span = tracing::info_span!("request", method = %req.method(), path = req.uri().path());
        let response = span.in_scope(|| handler(req));
        async move {
            let response = response.await;
            drop(busy);
            tracing::debug!(status = response.status().as_u16(), "Request finished");
            Ok::<_, Infallible>(response)
        }
        .instrument(span)
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(shared.options.header_read)
        .max_buf_size(shared.options.max_head_bytes.max(MIN_BUF))
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = activity.evicted() => return tracing::debug!("Evicted for a new connection"),
        () = shared.shutdown.wait() => {
            // Finishes the request in flight, then closes; an idle connection closes now.
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                result = conn.as_mut() => result,
                () = shared.cut.wait() => return tracing::debug!("Connection cut at the drain deadline"),
            }
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "Connection ended with an error");
    }
}
