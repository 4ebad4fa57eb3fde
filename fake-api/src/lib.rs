//! A fake Kubernetes API server on loopback, for tests. It stands in for kube-apiserver because
//! none can run where these tests run (no cluster, no kube-apiserver or etcd binaries): the real
//! kube client, or a binary given a kubeconfig naming the fake, talks to it over plain HTTP or TLS.
//!
//! One server serves three things, tried in order:
//! - routes the test adds: a method and path (or any predicate) to a canned [`Answer`] or a
//!   closure, which may answer later or never (a [`Reply`]), and may answer only so many times
//!   (an injected failure);
//! - the objects the test puts in collections, served as kube-apiserver serves them (`store`);
//! - else kube-apiserver's 404 for a resource it does not serve.
//!
//! Every request is recorded, for assertions on what a client sent. Prometheus' query API with
//! canned answers can be served too ([`FakeApi::prometheus`]), as a client reaches it through the
//! API server. The server runs on a thread and runtime of its own, so a synchronous test can use
//! it as well as an async one, until the [`FakeApi`] is dropped.

mod answer;
mod prometheus;
mod request;
mod server;
mod store;

pub use answer::{Answer, Reply};
pub use prometheus::Prometheus;
pub use request::Request;

use std::{
    io,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError},
};

use http::Method;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use server::{Route, Shared};

/// The running fake; it stops when dropped.
#[derive(Debug)]
pub struct FakeApi {
    pub addr: SocketAddr,
    tls: bool,
    shared: Arc<Shared>,
    prometheus: OnceLock<Prometheus>,
    _stop: oneshot::Sender<()>,
}

/// Why the fake could not start, or give a client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to start the fake API server")]
    Start(#[source] io::Error),
    #[error("unusable TLS certificate or key")]
    Pem(#[source] rustls_pki_types::pem::Error),
    #[error("unusable TLS certificate or key")]
    Tls(#[source] rustls::Error),
    #[error("no URI of the fake API server")]
    Uri(#[source] http::uri::InvalidUri),
    #[error("failed to make a client of the fake API server")]
    Client(#[source] kube::Error),
}

// === impl FakeApi ===

impl FakeApi {
    /// Serves plain HTTP on a free loopback port.
    pub fn start() -> Result<FakeApi, Error> {
        Self::spawn(None)
    }

    /// Serves HTTPS on a free loopback port, with this certificate chain and key (PEM).
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Result<FakeApi, Error> {
        let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::Pem)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(Error::Pem)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|builder| builder.with_no_client_auth().with_single_cert(certs, key))
            .map_err(Error::Tls)?;
        Self::spawn(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
    }

    fn spawn(tls: Option<tokio_rustls::TlsAcceptor>) -> Result<FakeApi, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Start)?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(Error::Start)?;
        let addr = listener.local_addr().map_err(Error::Start)?;
        listener.set_nonblocking(true).map_err(Error::Start)?;
        let listener = {
            let _runtime = runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(Error::Start)?
        };
        let shared = Arc::new(Shared::default());
        let (stop, stopped) = oneshot::channel();
        let serve = server::serve(listener, tls.clone(), shared.clone(), stopped);
        std::thread::Builder::new()
            .name(format!("fake-api {addr}"))
            .spawn(move || runtime.block_on(serve))
            .map_err(Error::Start)?;
        Ok(FakeApi {
            addr,
            tls: tls.is_some(),
            shared,
            prometheus: OnceLock::new(),
            _stop: stop,
        })
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// A client of the fake, the way a binary's own would be (plain HTTP only: a client over TLS
    /// needs the test's CA, which the fake does not know).
    pub fn client(&self) -> Result<kube::Client, Error> {
        let uri = http::Uri::try_from(self.url()).map_err(Error::Uri)?;
        kube::Client::try_from(kube::Config::new(uri)).map_err(Error::Client)
    }

    /// Writes a kubeconfig naming the fake (plain HTTP) to `dir/kubeconfig`, with `namespace` as
    /// its context's if given, and returns its path.
    pub fn write_kubeconfig(&self, dir: &Path, namespace: Option<&str>) -> io::Result<PathBuf> {
        let mut context = json!({"cluster": "fake", "user": "fake"});
        if let Some(namespace) = namespace {
            context["namespace"] = namespace.into();
        }
        let config = json!({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url()}}],
            "users": [{"name": "fake", "user": {}}],
            "contexts": [{"name": "fake", "context": context}],
        });
        let path = dir.join("kubeconfig");
        std::fs::write(&path, config.to_string())?;
        Ok(path)
    }

    /// Answers the requests `matches` takes with `handler`, before any route added later.
    pub fn route_when<R: Into<Reply>>(
        &self,
        matches: impl Fn(&Request) -> bool + Send + Sync + 'static,
        handler: impl Fn(&Request) -> R + Send + Sync + 'static,
    ) {
        self.add(
            Box::new(matches),
            Box::new(move |r| handler(r).into()),
            usize::MAX,
        );
    }

    /// Answers `method` on exactly `path` (any query) with `handler`.
    pub fn route<R: Into<Reply>>(
        &self,
        method: Method,
        path: &str,
        handler: impl Fn(&Request) -> R + Send + Sync + 'static,
    ) {
        self.route_when(on(method, path), handler);
    }

    /// Answers `method` on `path` with `answer` from now on, e.g. a 403 or an injected failure.
    pub fn answer(&self, method: Method, path: &str, answer: Answer) {
        self.add(
            on(method, path),
            Box::new(move |_| answer.clone().into()),
            usize::MAX,
        );
    }

    /// Answers the next `method` on `path` with `answer`, and the ones after it as before.
    pub fn answer_once(&self, method: Method, path: &str, answer: Answer) {
        self.add(
            on(method, path),
            Box::new(move |_| answer.clone().into()),
            1,
        );
    }

    fn add(&self, matches: server::Matcher, handler: server::Handler, times: usize) {
        let route = Route {
            matches,
            handler,
            times,
        };
        lock(&self.shared.routes).push(route);
    }

    /// Serves Prometheus' query API with the canned answers returned (the same ones on every
    /// call), after the routes added before the first call.
    pub fn prometheus(&self) -> Prometheus {
        let prometheus = self.prometheus.get_or_init(|| {
            let prometheus = Prometheus::default();
            let serving = prometheus.clone();
            self.route_when(Prometheus::is_query, move |request| serving.reply(request));
            prometheus
        });
        prometheus.clone()
    }

    /// Makes `collection` (a path such as `/api/v1/namespaces/ns-0/pods`) hold exactly `objects`,
    /// as given.
    pub fn set(&self, collection: &str, objects: Vec<Value>) {
        lock(&self.shared.store).set(collection, objects);
    }

    /// Adds `object` to `collection` as if a client had created it earlier: with a
    /// resourceVersion, a uid and a creation time.
    pub fn seed(&self, collection: &str, object: Value) {
        lock(&self.shared.store).seed(collection, object);
    }

    /// Adds the collection's own validation of what clients write to it.
    pub fn validate(
        &self,
        collection: &str,
        validator: impl Fn(&Value, Option<&Value>) -> Result<(), String> + Send + Sync + 'static,
    ) {
        lock(&self.shared.store).validate(collection, Arc::new(validator));
    }

    /// The objects of `collection` now, in the order they were added.
    pub fn objects(&self, collection: &str) -> Vec<Value> {
        lock(&self.shared.store).objects(collection)
    }

    /// The object at `path` (its collection's path and its name), if there is one.
    pub fn object(&self, path: &str) -> Option<Value> {
        lock(&self.shared.store).object(path)
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.requests).clone()
    }

    /// "METHOD path" of every request so far, in order.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.shared.requests)
            .iter()
            .map(Request::call)
            .collect()
    }
}

/// A matcher of `method` on exactly `path`.
fn on(method: Method, path: &str) -> server::Matcher {
    let path = path.to_owned();
    Box::new(move |request| request.method == method && request.path == path)
}

/// The data behind `mutex`, also after a panic elsewhere: a test that panicked has failed
/// already, and the fake must not turn that into a second failure.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
