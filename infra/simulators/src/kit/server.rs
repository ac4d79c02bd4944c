//! Serving a simulator: bind `127.0.0.1:0`, serve an axum [`Router`] on the current tokio
//! runtime, stop gracefully on [`SimServer::shutdown`] or when the last clone is dropped.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server. Clones share it; it stops when the last clone is dropped or when
/// [`shutdown`](Self::shutdown) is called on any clone.
#[derive(Clone)]
pub struct SimServer {
    addr: SocketAddr,
    guard: Arc<ServerGuard>,
}

impl fmt::Debug for SimServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl SimServer {
    /// Binds `127.0.0.1:0` and serves `app`. `name` only labels log lines.
    pub async fn start(name: &'static str, app: Router) -> std::io::Result<SimServer> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        Self::serve(name, listener, app)
    }

    /// Serves `app` on an already bound listener (for a simulator that must know its own
    /// address before building its router: bind first, then build, then serve).
    pub fn serve(name: &'static str, listener: tokio::net::TcpListener, app: Router) -> std::io::Result<SimServer> {
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.await;
                })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, simulator = name, "simulator stopped with an error");
            }
        });
        tracing::debug!(%addr, simulator = name, "simulator listening");
        Ok(SimServer { addr, guard: Arc::new(ServerGuard { stop: Mutex::new(Some(stop_tx)), task: Mutex::new(Some(task)) }) })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server (for every clone) and waits up to 5 s for it to finish; in-flight
    /// requests that hang longer are aborted.
    pub async fn shutdown(&self) {
        self.shutdown_within(Duration::from_secs(5)).await;
    }

    /// [`shutdown`](Self::shutdown) with another grace period for in-flight requests.
    pub async fn shutdown_within(&self, grace: Duration) {
        self.guard.signal_stop();
        let task = self.guard.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut task) = task
            && tokio::time::timeout(grace, &mut task).await.is_err()
        {
            task.abort();
        }
    }
}

struct ServerGuard {
    stop: Mutex<Option<oneshot::Sender<()>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl ServerGuard {
    fn signal_stop(&self) {
        if let Some(tx) = self.stop.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.signal_stop();
    }
}
