//! The HTTPS listener: TLS accept loop, the one `match` of routes, graceful drain. The `/mutate`
//! route itself (body limits, parse, lookup, answer, log): `mutate`; what the handlers share:
//! `crate::state`.
use anyhow::Context as _;
use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use kube_metrics_runtime::response::{method_not_allowed, not_found, text};
use kube_metrics_runtime::{Handshake, Shutdown, Stream, listen};
use std::{net::SocketAddr, sync::Arc};
use tokio::task::JoinHandle;
use tokio_rustls::{TlsAcceptor, server::TlsStream};

use crate::{
    metrics::Metrics,
    policy::Policy,
    state::{Limits, State},
    tls::{self, CertStore, PairFiles, Reloader, TlsError},
    vmi::lookup::{self, VmiLookups},
};

mod mutate;
pub mod slots;

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

/// A started server: its bound addresses and the task that finishes after the drain.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub state: Arc<State>,
    task: JoinHandle<()>,
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

    let (vmi, watch_task) = lookup::start(vmi).await;
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
