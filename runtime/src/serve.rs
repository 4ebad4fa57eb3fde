//! The one accept loop: hyper HTTP/1 over one or more listeners, with a per-connection handshake
//! step (the webhook's TLS) and header-read timeout, a connection cap, backoff when `accept`
//! fails, a span per connection and per request, and a drain with a deadline once shutdown starts.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;
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

use crate::backoff::{Backoff, Failure, LOG_INTERVAL, RateLimit, classify};
use crate::listen::{Listener, Stream};
use crate::response::Body;
use crate::shutdown::Shutdown;

/// After the drain deadline, how long the cut connections get to let go of their permits.
const CUT_GRACE: Duration = Duration::from_secs(1);

/// Per-server settings; the defaults are the crate's constants.
#[derive(Clone, Debug)]
pub struct Options {
    /// Time for each request head (and an idle keep-alive connection).
    pub header_read: Duration,
    /// Time for the handshake step.
    pub handshake: Duration,
    /// Time in-flight requests get once shutdown starts.
    pub drain: Duration,
    /// Connections served at once; past it a new connection is closed at once.
    pub max_connections: usize,
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
    /// One per open connection: the cap, and what the drain waits for.
    permits: Arc<Semaphore>,
}

// === impl Options ===

impl Default for Options {
    fn default() -> Self {
        Self {
            header_read: crate::HEADER_READ_TIMEOUT,
            handshake: crate::HANDSHAKE_TIMEOUT,
            drain: crate::DRAIN_TIMEOUT,
            max_connections: crate::MAX_CONNECTIONS,
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
    let permits = Arc::new(Semaphore::new(total as usize));
    let (cut_tx, cut) = Shutdown::channel();
    let drain = options.drain;
    let shared = Arc::new(Shared {
        handshake,
        handler,
        options,
        shutdown,
        cut,
        permits: Arc::clone(&permits),
    });
    let mut loops = JoinSet::new();
    for listener in listeners {
        loops.spawn(accept_loop(listener, Arc::clone(&shared)));
    }
    while loops.join_next().await.is_some() {}

    let open = |permits: &Semaphore| total as usize - permits.available_permits();
    tracing::info!(connections = open(&permits), "Draining");
    match tokio::time::timeout(drain, permits.acquire_many(total)).await {
        Ok(_) => tracing::info!("Drained"),
        Err(_) => {
            tracing::warn!(
                connections = open(&permits),
                "Drain timed out; closing the rest"
            );
            let _ = cut_tx.send(true);
            let _ = tokio::time::timeout(CUT_GRACE, permits.acquire_many(total)).await;
        }
    }
}

/// Accepts on one listener until shutdown starts.
async fn accept_loop<S, H, F>(listener: Listener, shared: Arc<Shared<S, H>>)
where
    S: Handshake,
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let name: Arc<str> = listener.to_string().into();
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
        // At the cap we accept and close at once rather than stop accepting: the client learns
        // right away instead of waiting in the backlog until it times out, and the kernel's
        // backlog does not fill with connections we would serve long after their clients left.
        let Ok(permit) = Arc::clone(&shared.permits).try_acquire_owned() else {
            drop(stream);
            if let Some(suppressed) = refused.hit(Instant::now()) {
                let limit = shared.options.max_connections;
                tracing::warn!(listener = %name, %peer, limit, suppressed, "Too many connections; closing new ones");
            }
            continue;
        };
        let span = tracing::info_span!("connection", listener = %name, %peer);
        tokio::spawn(connection(Arc::clone(&shared), stream, permit).instrument(span));
    }
    tracing::debug!(listener = %name, "Stopped accepting");
}

/// One connection: handshake, then HTTP until the client leaves, the drain closes it, or the
/// drain deadline cuts it.
async fn connection<S, H, F>(
    shared: Arc<Shared<S, H>>,
    stream: Stream,
    _permit: OwnedSemaphorePermit,
) where
    S: Handshake,
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
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
    };
    let handler = shared.handler.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let span = tracing::info_span!("request", method = %req.method(), path = req.uri().path());
        let response = span.in_scope(|| handler(req));
        async move {
            let response = response.await;
            tracing::debug!(status = response.status().as_u16(), "Request finished");
            Ok::<_, Infallible>(response)
        }
        .instrument(span)
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(shared.options.header_read)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
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
