//! The plain-HTTP admin listener: `/healthz`, `/readyz`, `/metrics`. Separate from the HTTPS port
//! so probes and Prometheus need no certificate and never compete with admission traffic.
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use kube_metrics_runtime::response::{method_not_allowed, not_found, text};
use kube_metrics_runtime::{Listener, Shutdown};
use std::sync::Arc;

use crate::state::State;

/// Answers one admin request.
pub fn route(req: &Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz") if state.is_ready() => text(StatusCode::OK, "ready\n"),
        (&Method::GET, "/readyz") => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        (&Method::GET, "/metrics") => {
            state.metrics.connections(&state.limits.connections);
            state
                .metrics
                .oversized_vmis(crate::vmi::cache::VmiSubset::oversized_total());
            let (content_type, body) = state.metrics.render();
            let mut response = Response::new(Full::new(Bytes::from(body)));
            if let Ok(value) = header::HeaderValue::from_str(&content_type) {
                response.headers_mut().insert(header::CONTENT_TYPE, value);
            }
            response
        }
        (_, "/healthz" | "/readyz" | "/metrics") => method_not_allowed("GET"),
        _ => not_found(),
    }
}

/// Serves until `stop` starts (after the HTTPS port has drained), then drains its own requests.
pub async fn run(listener: Listener, state: Arc<State>, stop: Shutdown) {
    // Its own connection counts: the exported ones are the HTTPS port's.
    let options = kube_metrics_runtime::Options {
        stats: Arc::default(),
        ..state.limits.options()
    };
    let handler = move |req: Request<Incoming>| {
        let response = route(&req, &state);
        async move { response }
    };
    kube_metrics_runtime::serve(vec![listener], handler, stop, options).await;
}
