//! The accept loop against real TCP clients: drain, drain deadline, connection caps and eviction,
//! sockets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use kube_metrics_runtime::response::{self, Body};
use kube_metrics_runtime::{ConnectionStats, Kind, Listener, Options, Shutdown, listen, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

/// A server whose `/slow` tells the test it started, then waits for `release`; `/hang` never
/// answers; everything else answers 200 at once.
struct Fixture {
    addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    started: mpsc::UnboundedReceiver<()>,
    release: Arc<Notify>,
    task: JoinHandle<()>,
    stats: Arc<ConnectionStats>,
}

async fn start(options: Options) -> Fixture {
    let listener = Listener::from(TcpListener::bind("127.0.0.1:0").await.unwrap());
    let addr = listener.tcp_addr().unwrap();
    let (stop, shutdown) = Shutdown::channel();
    let (started_tx, started) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let gate = Arc::clone(&release);
    let stats = Arc::clone(&options.stats);
    let handler = move |req: Request<Incoming>| {
        let (started, gate) = (started_tx.clone(), Arc::clone(&gate));
        async move { route(req.uri().path(), started, gate).await }
    };
    let task = tokio::spawn(serve(vec![listener], handler, shutdown, options));
    Fixture {
        addr,
        stop,
        started,
        release,
        task,
        stats,
    }
}

async fn route(
    path: &str,
    started: mpsc::UnboundedSender<()>,
    gate: Arc<Notify>,
) -> Response<Body> {
    match path {
        "/slow" => {
            let _ = started.send(());
            gate.notified().await;
            response::text(StatusCode::OK, "slow\n")
        }
        "/hang" => {
            let _ = started.send(());
            std::future::pending().await
        }
        _ => response::text(StatusCode::OK, "ok\n"),
    }
}

async fn send(addr: SocketAddr, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// Everything the server sends until it closes (or 5 s pass).
async fn read_all(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    assert!(
        read.is_ok(),
        "still open after 5 s: {:?}",
        String::from_utf8_lossy(&out)
    );
    String::from_utf8_lossy(&out).into_owned()
}

/// Polls `f` every 20 ms for up to 5 s.
async fn eventually<F: std::future::Future<Output = bool>>(what: &str, mut f: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f().await {
        assert!(Instant::now() < deadline, "{what} within 5 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn drain_completes_an_in_flight_request() {
    let mut fx = start(Options::default()).await;
    let mut slow = send(fx.addr, "/slow").await;
    fx.started.recv().await.unwrap();

    fx.stop.send(true).unwrap();
    let addr = fx.addr;
    eventually("new connections refused", || async move {
        TcpStream::connect(addr).await.is_err()
    })
    .await;
    assert!(!fx.task.is_finished(), "returned with a request in flight");

    fx.release.notify_one();
    let answer = read_all(&mut slow).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("slow\n"), "{answer}");
    tokio::time::timeout(Duration::from_secs(5), fx.task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn drain_deadline_cuts_a_hung_request() {
    let drain = Duration::from_millis(300);
    let mut fx = start(Options {
        drain,
        ..Options::default()
    })
    .await;
    let mut hung = send(fx.addr, "/hang").await;
    fx.started.recv().await.unwrap();

    let stopped = Instant::now();
    fx.stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), fx.task)
        .await
        .unwrap()
        .unwrap();
    let took = stopped.elapsed();
    assert!(took >= drain, "returned before the deadline: {took:?}");
    assert!(
        took < drain + Duration::from_secs(2),
        "deadline ignored: {took:?}"
    );
    assert_eq!(
        read_all(&mut hung).await,
        "",
        "a cut request gets no answer"
    );
}

#[tokio::test]
async fn at_the_cap_the_oldest_idle_connection_makes_room() {
    let fx = start(Options {
        max_connections: 2,
        ..Options::default()
    })
    .await;
    let stats = Arc::clone(&fx.stats);
    // Two connections that never send a byte take both slots.
    let mut silent = Vec::new();
    for _ in 0..2 {
        silent.push(TcpStream::connect(fx.addr).await.unwrap());
    }
    // A real request still gets through, by closing the oldest silent one.
    let mut real = send(fx.addr, "/").await;
    let mut buf = [0; 12];
    real.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200");
    assert_eq!(read_all(&mut silent[0]).await, "", "the oldest was closed");
    assert_eq!(stats.evicted(Kind::Tcp), 1);
    assert_eq!(stats.refused(Kind::Tcp), 0);
}

#[tokio::test]
async fn connections_past_a_busy_cap_are_closed_at_once() {
    let mut fx = start(Options {
        max_connections: 2,
        ..Options::default()
    })
    .await;
    // Two requests in hand: nobody can be evicted.
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(send(fx.addr, "/slow").await);
        fx.started.recv().await.unwrap();
    }
    let mut third = send(fx.addr, "/").await;
    assert_eq!(
        read_all(&mut third).await,
        "",
        "the third connection is closed unanswered"
    );
    assert_eq!(fx.stats.refused(Kind::Tcp), 1);

    fx.release.notify_waiters();
    for mut stream in held {
        let mut buf = [0; 12];
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
    }
    let addr = fx.addr;
    eventually("a freed slot serves again", || async move {
        let mut stream = send(addr, "/").await;
        let mut buf = [0; 12];
        stream.read_exact(&mut buf).await.is_ok() && &buf == b"HTTP/1.1 200"
    })
    .await;
}

#[tokio::test]
async fn each_listener_has_its_own_cap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    let tcp = Listener::from(TcpListener::bind("127.0.0.1:0").await.unwrap());
    let addr = tcp.tcp_addr().unwrap();
    let unix = listen::bind_unix(&path).unwrap();
    let (_stop, shutdown) = Shutdown::channel();
    let options = Options {
        max_connections: 4,
        ..Options::default()
    };
    let stats = Arc::clone(&options.stats);
    let handler = |req: Request<Incoming>| async move {
        if req.uri().path() == "/hang" {
            std::future::pending::<()>().await;
        }
        response::text(StatusCode::OK, "ok\n")
    };
    tokio::spawn(serve(vec![tcp, unix], handler, shutdown, options));
    // TCP is full of requests in hand.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(send(addr, "/hang").await);
    }
    let mut refused = send(addr, "/").await;
    assert_eq!(read_all(&mut refused).await, "");
    // The socket answers all the same.
    for _ in 0..8 {
        let mut stream = tokio::net::UnixStream::connect(&path).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    assert!(stats.refused(Kind::Tcp) >= 1);
    assert_eq!(stats.refused(Kind::Unix), 0);
}

#[tokio::test]
async fn serves_a_unix_socket_and_removes_it_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    let listener = listen::bind_unix(&path).unwrap();
    let (stop, shutdown) = Shutdown::channel();
    let handler = |_req: Request<Incoming>| async { response::method_not_allowed("GET") };
    let task = tokio::spawn(serve(vec![listener], handler, shutdown, Options::default()));

    let mut stream = tokio::net::UnixStream::connect(&path).await.unwrap();
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("allow: get\r\n"),
        "{answer}"
    );

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    assert!(!path.exists(), "socket file left behind");
}
