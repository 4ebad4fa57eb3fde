//! The relay's HTTP surface: `GET /metrics` for every collector on the node,
//! `GET /healthz`. Accept loop and drain on shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use super::gather::Relay;

/// Content type of text format 0.0.4.
pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Below the default 30s termination grace period, so we exit on our own terms.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// A client that has not sent its headers by then is dropped (port scanners).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(listener: TcpListener, relay: Arc<Relay>, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(error) => {
                    tracing::warn!(%error, "Failed to accept connection");
                    continue;
                }
            },
        };
        let relay = Arc::clone(&relay);
        let service = service_fn(move |req| {
            let relay = Arc::clone(&relay);
            async move { Ok::<_, Infallible>(route(req, &relay).await) }
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = conn.await {
                tracing::debug!(%error, %peer, "Connection ended with an error");
            }
        });
    }
    tokio::select! {
        () = graceful.shutdown() => tracing::debug!("Drained"),
        () = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("Drain timed out"),
    }
}

/// Every route, method and status code of the relay.
pub async fn route(req: Request<Incoming>, relay: &Arc<Relay>) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => {
            let mut response = Response::new(Full::new(Bytes::from(relay.scrape().await)));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_TEXT));
            response
        }
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (_, "/metrics" | "/healthz") => text(StatusCode::METHOD_NOT_ALLOWED, ""),
        _ => text(StatusCode::NOT_FOUND, ""),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}
