//! The HTTPS listener: TLS accept loop, `POST /mutate`, graceful drain. It only moves bytes and
//! awaits the VMI lookup: read the body under limits, `patch::parse` it, look the pod's VMI up (when
//! `parse` asks for one and lookups are on), `patch::answer`, write the answer, log and count it.
use anyhow::Context as _;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
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
    time::{Duration, Instant},
};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
use tokio_rustls::TlsAcceptor;

use crate::{
    metrics::{Metrics, RequestResult},
    patch::{self, Outcome, Reviewed},
    policy::Policy,
    tls::{self, CertStore, PairFiles, Reloader, TlsError},
    vmi::{Lookup, lookup::DynLookup},
};

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

/// Why a request body was refused before review.
#[derive(Debug, PartialEq, Eq)]
enum Reject {
    ContentType,
    TooLarge,
    Timeout,
    Read,
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
        (&Method::POST, MUTATE_PATH) => mutate(req, state).await,
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

async fn mutate(req: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let (result, response) = match read_body(req, &state.limits).await {
        Err(reject) => {
            tracing::info!(?reject, "Rejected admission request");
            (RequestResult::BadRequest, reject.response())
        }
        Ok(body) => match patch::parse(&body) {
            Err(error) => {
                let error = tls::error_chain(&error);
                tracing::info!(%error, "Rejected malformed AdmissionReview");
                (
                    RequestResult::BadRequest,
                    text(StatusCode::BAD_REQUEST, "malformed AdmissionReview\n"),
                )
            }
            Ok(parsed) => {
                let (lookup, lookup_result) = match (parsed.vmi_ref(), &state.vmi) {
                    (None, _) => (Lookup::NotFound, ""),
                    (Some(_), None) => (Lookup::NotFound, "off"),
                    (Some(vmi), Some(lookups)) => {
                        let lookup = lookups.lookup(vmi).await;
                        let result = lookup.as_str();
                        (lookup, result)
                    }
                };
                if !lookup_result.is_empty() {
                    state.metrics.vmi_lookup(lookup_result);
                }
                let reviewed = patch::answer(&parsed, &state.policy, &lookup);
                log_review(&reviewed, lookup_result, started.elapsed());
                if let Outcome::Skipped(reason) = reviewed.outcome {
                    state.metrics.skipped(reason);
                }
                (
                    RequestResult::of(&reviewed.outcome),
                    json(reviewed.response),
                )
            }
        },
    };
    state.metrics.observe(result, started.elapsed());
    response
}

/// Reads the body under the Content-Type, size and time limits.
async fn read_body(req: Request<Incoming>, limits: &Limits) -> Result<Bytes, Reject> {
    if !is_json(req.headers().get(header::CONTENT_TYPE)) {
        return Err(Reject::ContentType);
    }
    // Refuse a declared oversize body before reading a byte of it; `Limited` catches the rest.
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok());
    if declared
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|len| len > limits.body_cap as u64)
    {
        return Err(Reject::TooLarge);
    }
    let body = Limited::new(req.into_body(), limits.body_cap);
    match tokio::time::timeout(limits.request, body.collect()).await {
        Err(_) => Err(Reject::Timeout),
        Ok(Err(error)) if error.is::<LengthLimitError>() => Err(Reject::TooLarge),
        Ok(Err(_)) => Err(Reject::Read),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// `application/json`, with any parameters (`; charset=utf-8`), in any case.
fn is_json(content_type: Option<&header::HeaderValue>) -> bool {
    content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// The structured line per review: what the user sees on the pod, the request identity, and how
/// the VM was judged. `lookup` is empty when no lookup was needed.
fn log_review(reviewed: &Reviewed, lookup: &str, elapsed: Duration) {
    let (outcome, reason) = match &reviewed.outcome {
        Outcome::Injected => ("injected", ""),
        Outcome::Skipped(reason) => ("skipped", reason.as_str()),
        Outcome::Error(error) => ("error", error.as_str()),
    };
    let (namespace, generate_name, vm) = (
        reviewed.namespace.as_deref().unwrap_or_default(),
        reviewed.generate_name.as_deref().unwrap_or_default(),
        reviewed.vm.as_deref().unwrap_or_default(),
    );
    let source = reviewed.source.map_or("", |s| s.as_str());
    let (scrape, scrape_reason) = reviewed
        .scrape
        .map_or(("", ""), |s| (s.path.as_str(), s.reason.as_str()));
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    let dry_run = reviewed.dry_run;
    let uid = reviewed.uid.as_str();
    if matches!(reviewed.outcome, Outcome::Error(_)) {
        tracing::warn!(
            uid,
            namespace,
            generate_name,
            vm,
            outcome,
            reason,
            source,
            lookup,
            scrape,
            scrape_reason,
            dry_run,
            latency_ms,
            "Reviewed pod"
        );
    } else {
        tracing::info!(
            uid,
            namespace,
            generate_name,
            vm,
            outcome,
            reason,
            source,
            lookup,
            scrape,
            scrape_reason,
            dry_run,
            latency_ms,
            "Reviewed pod"
        );
    }
}

// === impl Reject ===

impl Reject {
    fn response(&self) -> Response<Full<Bytes>> {
        match self {
            Reject::ContentType => text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type must be application/json\n",
            ),
            Reject::TooLarge => text(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n"),
            Reject::Timeout => text(StatusCode::REQUEST_TIMEOUT, "body not received in time\n"),
            Reject::Read => text(StatusCode::BAD_REQUEST, "failed to read body\n"),
        }
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

fn json(body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_must_be_json() {
        let ok = [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
        ];
        for value in ok {
            assert!(
                is_json(Some(&header::HeaderValue::from_static(value))),
                "{value}"
            );
        }
        let bad = ["text/plain", "application/jsonx", "application/yaml", ""];
        for value in bad {
            assert!(
                !is_json(Some(&header::HeaderValue::from_static(value))),
                "{value}"
            );
        }
        assert!(!is_json(None));
    }

    #[test]
    fn rejections_map_to_statuses() {
        let cases = [
            (Reject::ContentType, StatusCode::UNSUPPORTED_MEDIA_TYPE),
            (Reject::TooLarge, StatusCode::PAYLOAD_TOO_LARGE),
            (Reject::Timeout, StatusCode::REQUEST_TIMEOUT),
            (Reject::Read, StatusCode::BAD_REQUEST),
        ];
        for (reject, status) in cases {
            assert_eq!(reject.response().status(), status, "{reject:?}");
        }
    }
}
