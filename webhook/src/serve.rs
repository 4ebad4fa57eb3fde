//! The HTTPS listener: TLS accept loop, the one `match` of routes, graceful drain, and the VMI
//! lookup's setup. The `/mutate` route itself (body limits, parse, lookup, answer, log): `mutate`.
use anyhow::Context as _;
use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use kube_metrics_runtime::response::{method_not_allowed, not_found, text};
use kube_metrics_runtime::{ConnectionStats, Handshake, Options, Shutdown, Stream, listen};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tokio::task::JoinHandle;
use tokio_rustls::{TlsAcceptor, server::TlsStream};

use crate::{
    metrics::Metrics,
    policy::Policy,
    tls::{self, CertStore, PairFiles, Reloader, TlsError},
    vmi::lookup::DynLookup,
};

mod mutate;
pub mod slots;

/// The path the MutatingWebhookConfiguration points at.
pub const MUTATE_PATH: &str = "/mutate";

/// The default body cap ([`Limits::body_cap`]): the API server's own request limit.
pub const BODY_CAP: usize = 3 * 1024 * 1024;

/// The default number of review slots ([`Limits::reviews`]); the arithmetic that fits them in the
/// Deployment's 128 MiB is in docs/threat-model.md.
pub const REVIEW_SLOTS: usize = 4;

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
/// behaviour and, where the webhook has no reason to differ, are the runtime's; tests shorten them.
#[derive(Clone, Debug)]
pub struct Limits {
    /// A launcher pod's AdmissionReview is ~15 KiB. etcd stores at most 1.5 MiB per object and the
    /// API server takes request bodies of at most 3 MiB, so no pod the cluster can create has a
    /// larger review; every byte allowed here is memory each of `reviews` may hold.
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
    /// Reviews that read a body and decide at once (`serve::slots`): the webhook's memory is this
    /// many reviews at their worst (docs/threat-model.md).
    pub reviews: usize,
    /// How long a review waits for a slot before it is answered 503: with the lookup budget (2 s)
    /// it stays under the API server's 5 s `timeoutSeconds`.
    pub slot_wait: Duration,
    /// What the HTTPS port's connection cap did, exported as metrics.
    pub connections: Arc<ConnectionStats>,
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
    /// The review slots every POST /mutate takes.
    pub reviews: Arc<slots::Reviews>,
    /// Readiness goes once shutdown starts.
    shutdown: Shutdown,
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
            body_cap: BODY_CAP,
            handshake: kube_metrics_runtime::HANDSHAKE_TIMEOUT,
            header_read: kube_metrics_runtime::HEADER_READ_TIMEOUT,
            request: Duration::from_secs(15),
            drain: kube_metrics_runtime::DRAIN_TIMEOUT,
            reload_interval: Duration::from_secs(1),
            reviews: REVIEW_SLOTS,
            slot_wait: Duration::from_secs(2),
            connections: Arc::default(),
        }
    }
}

impl Limits {
    /// What the runtime's accept loop enforces of these.
    pub fn options(&self) -> Options {
        Options {
            header_read: self.header_read,
            handshake: self.handshake,
            drain: self.drain,
            stats: Arc::clone(&self.connections),
            ..Options::default()
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
        shutdown: Shutdown,
    ) -> Self {
        let reviews = slots::Reviews::new(limits.reviews, limits.slot_wait);
        Self {
            policy,
            metrics,
            vmi,
            store,
            limits,
            reviews,
            shutdown,
        }
    }

    /// Ready once a certificate is loaded, while it has not expired (`tls::Expiry` says why), and
    /// not after shutdown started.
    pub fn is_ready(&self) -> bool {
        self.store.is_servable(tls::unix_now()) && !self.shutdown.is_started()
    }
}

// === impl Running ===

impl Running {
    /// Resolves once shutdown was requested and the drain finished.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task failed")
    }
}

/// Binds both listeners, loads the certificate, and serves until `shutdown` starts.
pub async fn run(config: Config, shutdown: Shutdown) -> anyhow::Result<()> {
    start(config, shutdown).await?.wait().await
}

/// Like `run`, but returns once listening, with the bound addresses (tests bind port 0).
pub async fn start(config: Config, shutdown: Shutdown) -> anyhow::Result<Running> {
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
    let listener = listen::bind_tcp(listen)
        .await
        .with_context(|| format!("failed to bind {listen}"))?;
    let admin = listen::bind_tcp(admin_listen)
        .await
        .with_context(|| format!("failed to bind {admin_listen}"))?;
    let (Some(addr), Some(admin_addr)) = (listener.tcp_addr(), admin.tcp_addr()) else {
        anyhow::bail!("a TCP listener has no local address");
    };
    tracing::info!(%addr, %admin_addr, "Listening");

    let (vmi, watch_task) = vmi_lookup(vmi).await;
    let state = Arc::new(State::new(
        policy,
        metrics,
        vmi,
        store,
        limits,
        shutdown.clone(),
    ));
    // The admin port outlives the drain of the HTTPS port, so probes see "not ready" meanwhile.
    let (admin_stop, admin_shutdown) = Shutdown::channel();
    tokio::spawn(reloader.run(state.limits.reload_interval, shutdown.receiver()));
    let admin_task = tokio::spawn(crate::admin::run(admin, state.clone(), admin_shutdown));
    let handler = {
        let state = state.clone();
        move |req: Request<Incoming>| {
            let state = state.clone();
            async move { route(req, &state).await }
        }
    };
    let options = state.limits.options();
    let task = tokio::spawn(async move {
        kube_metrics_runtime::serve_with(vec![listener], Tls(acceptor), handler, shutdown, options)
            .await;
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

/// The TLS accept, as the runtime's per-connection handshake step.
struct Tls(TlsAcceptor);

impl Handshake for Tls {
    type Io = TlsStream<Stream>;

    fn handshake(
        &self,
        stream: Stream,
    ) -> impl Future<Output = std::io::Result<TlsStream<Stream>>> + Send {
        self.0.accept(stream)
    }
}

/// Every route of the HTTPS port. The path alone decides: the API server appends `?timeout=`.
async fn route(req: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::POST, MUTATE_PATH) => mutate::mutate(req, state).await,
        (_, MUTATE_PATH) => method_not_allowed("POST"),
        _ => not_found(),
    }
}
