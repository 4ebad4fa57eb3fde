//! The relay's HTTP surface: `GET /metrics` for every collector on the node, `GET /healthz`.
//! The accept loop, timeouts and drain are `kube_metrics_runtime`'s.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use kube_metrics_runtime::response::{method_not_allowed, not_found, text, typed};
use kube_metrics_runtime::{Listener, Options, Shutdown};

use super::gather::Relay;

/// Content type of text format 0.0.4.
pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Serves until `shutdown` starts, then drains in-flight requests.
pub async fn serve(listener: Listener, relay: Arc<Relay>, shutdown: Shutdown) {
    let handler = move |req: Request<Incoming>| {
        let relay = Arc::clone(&relay);
        async move { route(req, &relay).await }
    };
    kube_metrics_runtime::serve(vec![listener], handler, shutdown, Options::default()).await;
}

/// Every route, method and status code of the relay.
pub async fn route(req: Request<Incoming>, relay: &Arc<Relay>) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => typed(CONTENT_TYPE_TEXT, relay.shared_scrape().await),
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (_, "/metrics" | "/healthz") => method_not_allowed("GET"),
        _ => not_found(),
    }
}
