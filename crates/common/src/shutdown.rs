//! Telling long-running work that the process is stopping: a trigger, the signal every task
//! of it watches, and the OS signals (SIGTERM, Ctrl-C) that pull the trigger.

use tokio::sync::watch;

/// Tells long-running work that the process is stopping.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

/// Starts the shutdown that every [`Shutdown`] of its channel sees.
#[derive(Clone, Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// A new trigger and the signal it controls.
pub fn shutdown_channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }

    /// Another signal of this channel.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }

    /// Triggers on SIGTERM or Ctrl-C.
    pub fn on_os_signal(&self) {
        let trigger = self.clone();
        tokio::spawn(async move {
            terminate_signal().await;
            tracing::info!("shutdown signal received; draining");
            trigger.trigger();
        });
    }
}

impl Shutdown {
    /// Resolves once shutdown has started.
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn terminate_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
