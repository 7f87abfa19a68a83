//! Sockets bound before Pingora starts, handed to it by file descriptor.
//!
//! Pingora binds its listeners itself, inside its runtimes. To hand callers a listening
//! address at once (and an ephemeral port to tests), and to report a taken port as a start-up
//! error naming its variable, the sockets are bound here with `std` and passed to Pingora as
//! "inherited" file descriptors — the mechanism Pingora uses for zero-downtime upgrades —
//! through a small service wrapper ([`PreBound`]). No port race.
//!
//! [`PreBound`] also gives the wrapped service our own "stop accepting" watch instead of
//! Pingora's shutdown watch, so that draining (see [`crate::drain`]) closes the listeners
//! before Pingora begins its own shutdown.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::IntoRawFd;
use std::sync::Arc;

use async_trait::async_trait;
use pingora::server::{Fds, ListenFds, ShutdownWatch};
use pingora::services::{ServiceReadyNotifier, ServiceWithDependents};

use crate::error::StartupError;

/// A socket bound here, handed to Pingora by file descriptor once everything else is ready
/// (until then an error simply drops and closes it).
pub struct Bound {
    pub addr: SocketAddr,
    listener: TcpListener,
}

impl Bound {
    /// Pingora's table of inherited listeners, holding this one under its address.
    fn into_fds(self) -> ListenFds {
        let mut fds = Fds::new();
        fds.add(self.addr.to_string(), self.listener.into_raw_fd());
        Arc::new(parking_lot::Mutex::new(fds))
    }
}

/// Binds `addr`; a failure names `var`, the variable that configured it.
pub fn bind(addr: &str, var: &'static str) -> Result<Bound, StartupError> {
    let bind_error = |source| StartupError::Bind {
        var,
        addr: addr.to_owned(),
        source,
    };
    let listener = TcpListener::bind(addr).map_err(bind_error)?;
    // Pingora's accept loop expects a non-blocking socket, as it would have made itself.
    listener.set_nonblocking(true).map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    Ok(Bound { addr, listener })
}

/// Runs a Pingora listening service on a socket bound beforehand, and stops its accept loop
/// on our own watch (so that draining starts before Pingora's shutdown).
pub struct PreBound {
    inner: Box<dyn ServiceWithDependents>,
    fds: ListenFds,
    stop_accepting: ShutdownWatch,
}

impl PreBound {
    /// `service` must listen (`add_tcp`) on exactly `bound.addr`: Pingora then takes the
    /// inherited socket instead of binding one.
    pub fn new(
        service: Box<dyn ServiceWithDependents>,
        bound: Bound,
        stop_accepting: ShutdownWatch,
    ) -> Self {
        Self {
            inner: service,
            fds: bound.into_fds(),
            stop_accepting,
        }
    }
}

#[async_trait]
impl ServiceWithDependents for PreBound {
    async fn start_service(
        &mut self,
        _inherited: Option<ListenFds>,
        _shutdown: ShutdownWatch,
        listeners_per_fd: usize,
        ready: ServiceReadyNotifier,
    ) {
        self.inner
            .start_service(
                Some(Arc::clone(&self.fds)),
                self.stop_accepting.clone(),
                listeners_per_fd,
                ready,
            )
            .await
    }

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn threads(&self) -> Option<usize> {
        self.inner.threads()
    }
}
