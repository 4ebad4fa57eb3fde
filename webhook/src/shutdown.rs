//! SIGTERM/SIGINT -> a `watch` flag every listener selects on.
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::watch,
};

/// Flips to `true` on the first SIGTERM or SIGINT. Errors only if the handlers cannot be
/// installed, which is a startup failure.
pub fn on_signal() -> std::io::Result<watch::Receiver<bool>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "Shutting down");
        let _ = tx.send(true);
        // Keep the sender alive: dropping it would look like a change to every receiver
        // that has not seen `true` yet, which is fine, but holding it is simpler to reason about.
        std::future::pending::<()>().await;
    });
    Ok(rx)
}
