//! The one shutdown path: SIGTERM/SIGINT (or a test) -> a value every listener waits on.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// Turns true once, when shutdown starts; cheap to clone. A dropped sender also counts as
/// shutdown, so a test that drops its switch does not leave servers running.
#[derive(Clone, Debug)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

// === impl Shutdown ===

impl Shutdown {
    /// A shutdown the caller triggers with `send(true)` (tests, or one server stopping another).
    pub fn channel() -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(false);
        (tx, Self { rx })
    }

    /// Starts on the first SIGTERM or SIGINT. Errors only if the handlers cannot be installed,
    /// which is a startup failure. Must be called inside the tokio runtime.
    pub fn on_signal() -> std::io::Result<Self> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let (tx, shutdown) = Self::channel();
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(signal = name, "Shutting down");
            let _ = tx.send(true);
            // Hold the sender: receivers should see `true`, not a closed channel.
            std::future::pending::<()>().await;
        });
        Ok(shutdown)
    }

    /// Whether shutdown has started: readiness answers "not ready" from then on.
    pub fn is_started(&self) -> bool {
        *self.rx.borrow() || self.rx.has_changed().is_err()
    }

    /// Resolves once shutdown has started.
    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        // An error means the sender is gone: shut down too.
        let _ = rx.wait_for(|started| *started).await;
    }

    /// The underlying receiver, for code that selects on a `watch` directly.
    pub fn receiver(&self) -> watch::Receiver<bool> {
        self.rx.clone()
    }
}

impl From<watch::Receiver<bool>> for Shutdown {
    fn from(rx: watch::Receiver<bool>) -> Self {
        Self { rx }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn starts_on_send_and_on_a_dropped_sender() {
        let (tx, shutdown) = Shutdown::channel();
        assert!(!shutdown.is_started());
        tx.send(true).unwrap();
        assert!(shutdown.is_started());
        shutdown.wait().await;

        let (tx, shutdown) = Shutdown::channel();
        drop(tx);
        assert!(shutdown.is_started());
        shutdown.wait().await;
    }
}
