//! The plain-HTTP admin listener: `/healthz`, `/readyz`, `/metrics`. Separate from the HTTPS port
//! so probes and Prometheus need no certificate and never compete with admission traffic.
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use std::{convert::Infallible, sync::Arc};
use tokio::{net::TcpListener, sync::watch};

use crate::serve::{State, http1_builder, text};

/// Answers one admin request.
pub fn route(req: &Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz") if state.is_ready() => text(StatusCode::OK, "ready\n"),
        (&Method::GET, "/readyz") => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        (&Method::GET, "/metrics") => {
            let (content_type, body) = state.metrics.render();
            let mut response = Response::new(Full::new(Bytes::from(body)));
            if let Ok(value) = header::HeaderValue::from_str(&content_type) {
                response.headers_mut().insert(header::CONTENT_TYPE, value);
            }
            response
        }
        (_, "/healthz" | "/readyz" | "/metrics") => text(StatusCode::METHOD_NOT_ALLOWED, ""),
        _ => text(StatusCode::NOT_FOUND, ""),
    }
}

/// Serves until `stop` flips. Connections are not drained: probes and scrapes are retried.
pub async fn run(listener: TcpListener, state: Arc<State>, mut stop: watch::Receiver<bool>) {
    loop {
        let (stream, _peer) = tokio::select! {
            biased;
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(error) => {
                    tracing::warn!(%error, "Failed to accept admin connection");
                    continue;
                }
            },
        };
        let state = state.clone();
        let builder = http1_builder(&state.limits);
        tokio::spawn(async move {
            let svc = service_fn(|req| {
                let response = route(&req, &state);
                async move { Ok::<_, Infallible>(response) }
            });
            if let Err(error) = builder.serve_connection(TokioIo::new(stream), svc).await {
                tracing::debug!(%error, "Admin connection ended with an error");
            }
        });
    }
}
