//! Helpers for tests of this crate and of its users (the `testing` feature, enabled from
//! dev-dependencies only): the JetStream under test, streams of a test's own that are
//! deleted afterwards, and a private `nats-server` process a test may stop and restart.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::StreamConfig;

/// `TEST_NATS_URL`, when set (see [`test_support::external_url`]).
pub fn nats_url() -> Option<String> {
    test_support::external_url("TEST_NATS_URL")
}

/// A name no other test uses: `t_<label>_<12 hex digits>`.
pub fn unique_name(label: &str) -> String {
    let label: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(24)
        .collect();
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("t_{label}_{}", &id[..12])
}

/// A test's JetStream configuration; its streams are deleted when this is dropped (also
/// after a failed assertion).
pub struct TestStreams {
    pub config: StreamConfig,
    url: String,
}

impl TestStreams {
    /// Streams named after `label` on the server at `url`.
    pub fn new(url: &str, label: &str) -> Self {
        Self {
            config: StreamConfig::nats(url, &unique_name(label)),
            url: url.to_owned(),
        }
    }
}

impl Drop for TestStreams {
    fn drop(&mut self) {
        let (url, names) = (
            self.url.clone(),
            [self.config.stream.clone(), self.config.dead_stream()],
        );
        test_support::clean_up_on_own_thread(async move {
            let connect = async_nats::ConnectOptions::new()
                .connection_timeout(Duration::from_secs(2))
                .connect(url.as_str());
            let Ok(Ok(client)) = tokio::time::timeout(Duration::from_secs(3), connect).await else {
                return;
            };
            let js = async_nats::jetstream::new(client);
            for name in names {
                let _ = js.delete_stream(&name).await;
            }
        });
    }
}

/// A `nats-server -js` of a test's own, on a free port with its own storage directory, that
/// the test may stop and start again (the storage is kept). Killed when dropped.
pub struct NatsServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts one and waits until it accepts connections.
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = Self {
            port,
            dir: tempfile::tempdir().expect("a storage directory"),
            child: None,
        };
        server.resume();
        server
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: no goodbye to its clients) and waits until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same storage; waits until it accepts
    /// connections.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "the server is running");
        let store: PathBuf = self.dir.path().join("js");
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-sd")
            .arg(&store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server is installed (apt-get install nats-server)");
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nats-server did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
