//! A fake Kubernetes API server on loopback, plain HTTP: each request goes to a handler that
//! answers with a status and a JSON body. There is no cluster here; the VMI lookup's tests and the
//! memory benchmark serve real API shapes from it.
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::{server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::{convert::Infallible, future::Future, net::SocketAddr, pin::Pin, sync::Arc};
use tokio::net::TcpListener;

/// What the server does with one request (its head; the lookup sends no bodies).
pub type Handler = Arc<dyn Fn(http::request::Parts) -> Answer + Send + Sync>;
/// The status and JSON body of one answer, when it is ready.
pub type Answer = Pin<Box<dyn Future<Output = (StatusCode, Bytes)> + Send>>;

/// Serves `handler` on 127.0.0.1 until the runtime stops.
pub async fn serve(handler: Handler) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|error| panic!("bind: {error}"));
    let address = listener
        .local_addr()
        .unwrap_or_else(|error| panic!("address: {error}"));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let answer = handler(request.into_parts().0);
                    async move {
                        let (status, body) = answer.await;
                        let mut response = Response::new(Full::new(body));
                        *response.status_mut() = status;
                        response.headers_mut().insert(
                            http::header::CONTENT_TYPE,
                            http::HeaderValue::from_static("application/json"),
                        );
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    address
}

/// The API server's 404 for a missing object.
pub fn not_found() -> (StatusCode, Bytes) {
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": "not found", "reason": "NotFound", "code": 404});
    (StatusCode::NOT_FOUND, Bytes::from(status.to_string()))
}

/// A client of the fake at `address`.
pub fn client(address: SocketAddr) -> kube::Client {
    let uri = format!("http://{address}")
        .parse()
        .unwrap_or_else(|error| panic!("uri: {error}"));
    kube::Client::try_from(kube::Config::new(uri)).unwrap_or_else(|error| panic!("client: {error}"))
}

/// A kubeconfig for a process that should talk to the fake at `address`.
pub fn kubeconfig(address: SocketAddr) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{address}\n\
         users:\n- name: fake\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n\
         current-context: fake\n"
    )
}

/// One query parameter of a request, if present.
pub fn query<'a>(parts: &'a http::request::Parts, name: &str) -> Option<&'a str> {
    parts.uri.query()?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then_some(value)
    })
}
