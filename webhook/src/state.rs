//! What every connection handler of both listeners shares ([`State`]), and the bounds on what one
//! client can cost ([`Limits`]). Its own module so that the HTTPS listener (`serve`) and the admin
//! listener (`admin`) both read it without reading each other.
use kube_metrics_runtime::{ConnectionStats, Options, Shutdown};
use std::{sync::Arc, time::Duration};

use crate::{
    metrics::Metrics,
    policy::Policy,
    serve::slots,
    tls::{self, CertStore},
    vmi::lookup::DynLookup,
};

/// The default body cap ([`Limits::body_cap`]): the API server's own request limit.
pub const BODY_CAP: usize = 3 * 1024 * 1024;

/// The default size under which a body is read before its review takes a slot
/// ([`Limits::small_body`]): a launcher pod's AdmissionReview is ~15 KiB.
pub const SMALL_BODY: usize = 64 * 1024;

/// The default number of review slots ([`Limits::reviews`]); the arithmetic that fits them in the
/// Deployment's 128 MiB is in docs/threat-model.md.
pub const REVIEW_SLOTS: usize = 4;

/// Bounds on what one client can cost us. Not flags: the defaults follow from the API server's
/// behaviour and, where the webhook has no reason to differ, are the runtime's; tests shorten them.
#[derive(Clone, Debug)]
pub struct Limits {
    /// A launcher pod's AdmissionReview is ~15 KiB. etcd stores at most 1.5 MiB per object and the
    /// API server takes request bodies of at most 3 MiB, so no pod the cluster can create has a
    /// larger review; every byte allowed here is memory each of `reviews` may hold.
    pub body_cap: usize,
    /// A body declared at most this long is read before its review takes a slot, within
    /// `small_read`: a slow client then holds a connection, never a slot. Every connection may
    /// hold this much at once (docs/threat-model.md).
    pub small_body: usize,
    /// Time for a small body, after the head. The API server sends a review's body at once.
    pub small_read: Duration,
    /// Time for the TLS handshake.
    pub handshake: Duration,
    /// Time for the request head. hyper also applies it to an idle keep-alive connection.
    pub header_read: Duration,
    /// Time for a larger body, after the head. The API server gives up after `timeoutSeconds`
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

// === impl Limits ===

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_cap: BODY_CAP,
            small_body: SMALL_BODY,
            small_read: slots::READ_GRACE,
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
