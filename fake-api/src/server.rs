//! The accept loop, on a thread and runtime of its own, and where each request goes: the first
//! route that matches it, else the store, else a 404.
use std::{
    convert::Infallible,
    fmt,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
    sync::oneshot,
};
use tokio_rustls::TlsAcceptor;

use crate::{Answer, Reply, Request, lock, store::Store};

/// What decides whether a route takes a request.
pub(crate) type Matcher = Box<dyn Fn(&Request) -> bool + Send + Sync>;
/// What a route answers.
pub(crate) type Handler = Box<dyn Fn(&Request) -> Reply + Send + Sync>;

/// One route: the requests it takes, its answer, and how many more times it answers.
pub(crate) struct Route {
    pub(crate) matches: Matcher,
    pub(crate) handler: Handler,
    pub(crate) times: usize,
}

/// What the server and the test share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) routes: Mutex<Vec<Route>>,
    pub(crate) store: Mutex<Store>,
    pub(crate) requests: Mutex<Vec<Request>>,
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("times", &self.times)
            .finish_non_exhaustive()
    }
}

/// Accepts on `listener` until `stop` fires (or its sender is dropped), each connection in a task
/// of its own, over TLS when `tls` is given.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        let stream = tokio::select! {
            biased;
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let (tls, shared) = (tls.clone(), shared.clone());
        tokio::spawn(async move {
            match tls {
                // A client that rejects the certificate ends the handshake: nothing to serve.
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        connection(stream, shared).await;
                    }
                }
                None => connection(stream, shared).await,
            }
        });
    }
}

async fn connection(stream: impl AsyncRead + AsyncWrite + Unpin, shared: Arc<Shared>) {
    let service = service_fn(move |request| answer(request, shared.clone()));
    // A client that hangs up mid-request is no failure of the fake's.
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn answer(
    request: http::Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let request = Request::new(parts, body);
    lock(&shared.requests).push(request.clone());
    let reply = route(&shared, &request);
    Ok(reply.answer().await.into_response())
}

fn route(shared: &Shared, request: &Request) -> Reply {
    let mut routes = lock(&shared.routes);
    if let Some(route) = routes
        .iter_mut()
        .find(|route| route.times > 0 && (route.matches)(request))
    {
        route.times -= 1;
        return (route.handler)(request);
    }
    drop(routes);
    if let Some(reply) = lock(&shared.store).serve(request) {
        return reply;
    }
    let message = "the server could not find the requested resource";
    Answer::status(StatusCode::NOT_FOUND, message).into()
}
