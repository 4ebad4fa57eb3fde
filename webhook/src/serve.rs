//! The HTTPS listener: TLS accept loop, the one `match` of routes, graceful drain, and the VMI
//! lookup's setup. The `/mutate` route itself (body limits, parse, lookup, answer, log): `mutate`.
use anyhow::Context as _;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
use tokio_rustls::TlsAcceptor;

use crate::{
    metrics::Metrics,
    policy::Policy,
    tls::{self, CertStore, PairFiles, Reloader, TlsError},
    vmi::lookup::DynLookup,
};

mod mutate;

/// The path the MutatingWebhookConfiguration points at.
pub const MUTATE_PATH: &str = "/mutate";

/// Validated settings for `serve`.
#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub tls: PairFiles,
    pub policy: Policy,
    pub limits: Limits,
    pub vmi: VmiLookups,
}

/// Where the server reads VMIs from.
#[derive(Clone, Debug)]
pub enum VmiLookups {
    /// `--vmi-lookup off`: never contact the API server; the pod's signals decide.
    Off,
    /// The API server, through a client from the in-cluster config (or a kubeconfig), each lookup
    /// within `budget`.
    Cluster { budget: Duration },
    /// A lookup the caller built: tests inject a fake source here (there is no cluster).
    Given(Arc<dyn DynLookup>),
}

/// Bounds on what one client can cost us. Not flags: the defaults follow from the API server's
/// behaviour; tests shorten them.
#[derive(Clone, Debug)]
pub struct Limits {
    /// An AdmissionReview of a pod is a few KiB; the API server caps objects at ~1.5 MiB and
    /// webhooks conventionally accept 6 MiB (what kube-apiserver itself allows for JSON bodies).
    pub body_cap: usize,
    /// Time for the TLS handshake.
    pub handshake: Duration,
    /// Time for the request head. hyper also applies it to an idle keep-alive connection.
    pub header_read: Duration,
    /// Time for the whole body, after the head. The API server gives up after `timeoutSeconds`
    /// (at most 30 s) anyway.
    pub request: Duration,
    /// How long in-flight requests may take after SIGTERM; below the 30 s default grace period.
    pub drain: Duration,
    /// How often the certificate files are checked for rotation.
    pub reload_interval: Duration,
}

/// What every connection handler shares.
#[derive(Debug)]
pub struct State {
    pub policy: Policy,
    pub metrics: Metrics,
    /// `None` when lookups are off.
    pub vmi: Option<Arc<dyn DynLookup>>,
    pub store: Arc<CertStore>,
    pub limits: Limits,
    shutting_down: AtomicBool,
}

/// A started server: its bound addresses and the task that finishes after the drain.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub state: Arc<State>,
    task: JoinHandle<()>,
}

// === impl Limits ===

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_cap: 6 * 1024 * 1024,
            handshake: Duration::from_secs(5),
            header_read: Duration::from_secs(10),
            request: Duration::from_secs(15),
            drain: Duration::from_secs(20),
            reload_interval: Duration::from_secs(1),
        }
    }
}

// === impl State ===

impl State {
    pub fn new(
        policy: Policy,
        metrics: Metrics,
        vmi: Option<Arc<dyn DynLookup>>,
        store: Arc<CertStore>,
        limits: Limits,
    ) -> Self {
        Self {
            policy,
            metrics,
            vmi,
            store,
            limits,
            shutting_down: AtomicBool::new(false),
        }
    }

    /// Ready once a certificate is loaded, and not after shutdown started.
    pub fn is_ready(&self) -> bool {
        self.store.is_loaded() && !self.shutting_down.load(Ordering::Acquire)
    }
}

// === impl Running ===

impl Running {
    /// Resolves once shutdown was requested and the drain finished.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task failed")
    }
}

/// Binds both listeners, loads the certificate, and serves until `shutdown` flips.
pub async fn run(config: Config, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    start(config, shutdown).await?.wait().await
}

/// Like `run`, but returns once listening, with the bound addresses (tests bind port 0).
pub async fn start(config: Config, shutdown: watch::Receiver<bool>) -> anyhow::Result<Running> {
    let Config {
        listen,
        admin_listen,
        tls,
        policy,
        limits,
        vmi,
    } = config;
    let metrics = Metrics::new().context("failed to register metrics")?;
    let store = Arc::new(CertStore::default());
    let mut reloader = Reloader::new(tls.clone(), store.clone(), metrics.clone());
    match reloader.poll() {
        Ok(_) => {}
        // The Secret may not exist yet (certgen Job still running): wait, not ready.
        Err(TlsError::Io { path, source }) if source.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(path = %path.display(), "Certificate not found yet; waiting for it");
        }
        // A pair that exists but is broken is a configuration error: say so now.
        Err(error) => {
            return Err(error).with_context(|| {
                format!(
                    "failed to load {} and {}",
                    tls.cert.display(),
                    tls.key.display()
                )
            });
        }
    }
    let acceptor = TlsAcceptor::from(tls::server_config(store.clone())?);
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("failed to bind {listen}"))?;
    let admin = TcpListener::bind(admin_listen)
        .await
        .with_context(|| format!("failed to bind {admin_listen}"))?;
    let (addr, admin_addr) = (listener.local_addr()?, admin.local_addr()?);
    tracing::info!(%addr, %admin_addr, "Listening");

    let (vmi, watch_task) = vmi_lookup(vmi).await;
    let state = Arc::new(State::new(policy, metrics, vmi, store, limits));
    let (admin_stop, admin_stopped) = watch::channel(false);
    tokio::spawn(reloader.run(state.limits.reload_interval, shutdown.clone()));
    let admin_task = tokio::spawn(crate::admin::run(admin, state.clone(), admin_stopped));
    let main_state = state.clone();
    let task = tokio::spawn(async move {
        accept_loop(listener, acceptor, main_state, shutdown).await;
        let _ = admin_stop.send(true);
        let _ = admin_task.await;
        if let Some(watch_task) = watch_task {
            watch_task.abort();
        }
    });
    Ok(Running {
        addr,
        admin_addr,
        state,
        task,
    })
}

/// The lookup the server uses, and the VMI watch task behind it. A client that cannot be built
/// (no in-cluster config, no kubeconfig) must not take admission down: the webhook then runs with
/// lookups off, says so at error level, and counts every lookup it skips as `off`. Readiness still
/// depends on the certificate alone.
async fn vmi_lookup(config: VmiLookups) -> (Option<Arc<dyn DynLookup>>, Option<JoinHandle<()>>) {
    match config {
        VmiLookups::Off => {
            tracing::info!("VMI lookups are off; pods are judged by their own signals");
            (None, None)
        }
        VmiLookups::Given(lookup) => (Some(lookup), None),
        VmiLookups::Cluster { budget } => match crate::vmi::lookup::connect(budget).await {
            Ok((lookup, task)) => {
                tracing::info!(budget_ms = budget.as_millis(), "Watching VMIs");
                (Some(lookup), Some(task))
            }
            Err(error) => {
                let error = tls::error_chain(&error);
                tracing::error!(
                    %error,
                    "No Kubernetes client; running with VMI lookups off"
                );
                (None, None)
            }
        },
    }
}

/// Accepts until shutdown, then drains with a deadline.
async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    state: Arc<State>,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(error) => {
                    tracing::warn!(%error, "Failed to accept connection");
                    continue;
                }
            },
        };
        let (acceptor, state, watcher) = (acceptor.clone(), state.clone(), graceful.watcher());
        tokio::spawn(async move {
            let stream =
                match tokio::time::timeout(state.limits.handshake, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => return tracing::debug!(%peer, %error, "TLS handshake failed"),
                    Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                };
            let builder = http1_builder(&state.limits);
            let svc = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(req, &state).await) }
            });
            let conn = builder.serve_connection(TokioIo::new(stream), svc);
            if let Err(error) = watcher.watch(conn).await {
                tracing::debug!(%peer, %error, "Connection ended with an error");
            }
        });
    }
    state.shutting_down.store(true, Ordering::Release);
    drop(listener);
    tracing::info!(connections = graceful.count(), "Draining");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("Drained"),
        () = tokio::time::sleep(state.limits.drain) => tracing::warn!("Drain timed out"),
    }
}

/// The one HTTP/1 configuration both listeners use.
pub fn http1_builder(limits: &Limits) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .keep_alive(true);
    builder
}

/// Every route of the HTTPS port. The path alone decides: the API server appends `?timeout=`.
async fn route(req: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::POST, MUTATE_PATH) => mutate::mutate(req, state).await,
        (_, MUTATE_PATH) => {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "use POST\n");
            response
                .headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
            response
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// A plain-text response.
pub fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
