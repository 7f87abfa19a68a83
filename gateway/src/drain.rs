//! Stopping without dropping requests: drain first, then let Pingora stop.
//!
//! Pingora's graceful shutdown sleeps a fixed grace period. Instead, [`DrainThenStop`] (the
//! server's shutdown watch) waits for a stop request — the [`crate::GatewayHandle`], or
//! SIGTERM/SIGINT in the standalone binary — then stops the listeners (through a separate
//! watch given only to them: no new connections, idle kept-alive connections closed), waits
//! until the requests in flight reach zero or the grace period ends, and only then lets
//! Pingora stop its runtimes (its own grace period is 0). A second signal during the drain
//! stops at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::shutdown::{terminate_signal, Shutdown};
use pingora::server::{ShutdownSignal, ShutdownSignalWatch};
use tokio::sync::watch;

use crate::metrics::Metrics;

/// How often the drain looks at the requests in flight.
const POLL: Duration = Duration::from_millis(20);

/// The server's shutdown watch: see the module documentation.
pub struct DrainThenStop {
    /// The stop request of the [`crate::GatewayHandle`].
    pub stop: Shutdown,
    /// Whether SIGTERM and SIGINT stop the gateway too (the standalone binary).
    pub os_signals: bool,
    /// Closes the listeners (see [`crate::listeners::PreBound`]).
    pub stop_accepting: watch::Sender<bool>,
    /// Where the requests in flight are counted.
    pub metrics: Arc<Metrics>,
    /// The longest wait for requests in flight.
    pub grace: Duration,
}

impl DrainThenStop {
    /// The next SIGTERM or SIGINT, when signals stop the gateway; otherwise never.
    async fn signal(&self) {
        if self.os_signals {
            terminate_signal().await;
        } else {
            std::future::pending::<()>().await;
        }
    }
}

#[async_trait]
impl ShutdownSignalWatch for DrainThenStop {
    async fn recv(&self) -> ShutdownSignal {
        tokio::select! {
            _ = self.stop.clone().wait() => {}
            _ = self.signal() => {}
        }
        let started = Instant::now();
        tracing::info!(in_flight = self.metrics.in_flight(), "gateway draining");
        let _ = self.stop_accepting.send(true);
        let deadline = tokio::time::Instant::now() + self.grace;
        // Listening from now on, so that a signal between two polls is not missed.
        let second_signal = self.signal();
        tokio::pin!(second_signal);
        while self.metrics.in_flight() > 0 {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(
                        in_flight = self.metrics.in_flight(),
                        "requests still running after the grace period; stopping anyway"
                    );
                    break;
                }
                _ = &mut second_signal => {
                    tracing::warn!("second signal; stopping without waiting");
                    return ShutdownSignal::FastShutdown;
                }
                _ = tokio::time::sleep(POLL) => {}
            }
        }
        tracing::info!(
            drain_ms = started.elapsed().as_millis() as u64,
            "gateway drained"
        );
        ShutdownSignal::GracefulTerminate
    }
}
