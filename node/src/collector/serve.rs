//! The node collector's HTTP surface: `GET /metrics` (text 0.0.4), `GET /healthz`. One scrape at
//! a time, off the async runtime; listeners, timeouts and drain are `kube_metrics_runtime`'s.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use crate::relay::serve::CONTENT_TYPE_TEXT;
use anyhow::Context as _;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use kube_metrics_runtime::response::{method_not_allowed, not_found, text, typed};
use kube_metrics_runtime::{Options, Shutdown, listen};

use super::pods::NodeScraper;

/// Serves on `addr` until SIGTERM or SIGINT.
pub async fn run(addr: SocketAddr, scraper: NodeScraper) -> anyhow::Result<()> {
    let listener = listen::bind_tcp(addr)
        .await
        .with_context(|| format!("failed to bind {addr}"))?;
    let shutdown = Shutdown::on_signal().context("failed to install signal handlers")?;
    tracing::info!(listen = %addr, "Node collector serving");
    let scraper = Arc::new(Mutex::new(scraper));
    let handler = move |req: Request<Incoming>| {
        let scraper = Arc::clone(&scraper);
        async move { route(&req, scraper).await }
    };
    kube_metrics_runtime::serve(vec![listener], handler, shutdown, Options::default()).await;
    tracing::info!("Node collector stopped");
    Ok(())
}

async fn route(req: &Request<Incoming>, scraper: Arc<Mutex<NodeScraper>>) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => {
            let scraped = tokio::task::spawn_blocking(move || {
                scraper
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .scrape()
            })
            .await;
            let Ok(body) = scraped else {
                tracing::error!("Node scrape task failed");
                return text(StatusCode::INTERNAL_SERVER_ERROR, "scrape failed\n");
            };
            typed(CONTENT_TYPE_TEXT, Bytes::from(body))
        }
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (_, "/metrics" | "/healthz") => method_not_allowed("GET"),
        _ => not_found(),
    }
}
