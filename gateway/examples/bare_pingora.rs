//! A Pingora proxy with no logic of its own, for the benchmark (`scripts/bench-auth.sh`): it
//! forwards every request to one upstream over pooled HTTP/1.1 connections, with the
//! gateway's allocator and thread count. The difference between this hop and the gateway's
//! is what the gateway's own work costs; the difference between this hop and NGINX's is what
//! Pingora costs.
//!
//!   bare_pingora LISTEN_ADDR UPSTREAM_ADDR [THREADS]

use std::net::SocketAddr;

use async_trait::async_trait;
use pingora::prelude::HttpPeer;
use pingora::proxy::{ProxyHttp, Session};
use pingora::server::configuration::ServerConf;
use pingora::server::Server;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Bare {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _: &mut Session, _: &mut ()) -> pingora::Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bare_pingora LISTEN_ADDR UPSTREAM_ADDR [THREADS]";
    let listen = args.next().expect(usage);
    let upstream = args.next().and_then(|a| a.parse().ok()).expect(usage);
    let threads = args.next().map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |t| t.parse().expect(usage),
    );
    let conf = ServerConf {
        threads,
        // Stop at once on SIGTERM (the benchmark restarts it on the same port).
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server =
        Server::new_with_opt_and_conf(None::<pingora::server::configuration::Opt>, conf);
    server.bootstrap();
    let mut proxy = pingora::proxy::http_proxy_service(&server.configuration, Bare { upstream });
    proxy.add_tcp(&listen);
    server.add_service(proxy);
    server.run_forever();
}
