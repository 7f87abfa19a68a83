//! The browser fetcher: headless Chromium driven over WebDriver (fantoccini → chromedriver).
//!
//! chromedriver is spawned on a free local port on first use (or `WEBDRIVER_URL` is used), and
//! respawned if it dies. Sessions are pooled — at most one per concurrent fetch, so at most
//! `SCRAPER_MAX_CONCURRENT_PER_HOST` browsers — reused across pages, and replaced when one
//! breaks. Each session runs with a fresh profile directory and with every host but the
//! source's unresolvable, so the page's scripts cannot reach anywhere else either.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fantoccini::error::{CmdError, ErrorStatus};
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use tokio::process::{Child, Command};
use url::Url;

use super::{FetchError, FetchedPage, Fetcher, HostGate};
use crate::config::Config;

/// How often the page is checked for having rendered.
const POLL: Duration = Duration::from_millis(100);
/// How long a spawned chromedriver may take to answer.
const DRIVER_START_TIMEOUT: Duration = Duration::from_secs(15);

/// Returns `[state, bodyLength]`: state is `"not_found"`, `"ready"` or null.
const READY_SCRIPT: &str = r#"
const [ready, notFound] = arguments;
const len = document.documentElement ? document.documentElement.outerHTML.length : 0;
try { if (notFound && document.querySelector(notFound)) return ['not_found', len]; } catch (e) {}
try { if (ready && document.querySelector(ready)) return ['ready', len]; } catch (e) {}
const text = ((document.body && document.body.innerText) || '').toLowerCase();
if (/compania nu a fost g[aăǎ]sit|не найден|company not found/.test(text)) return ['not_found', len];
return [null, len];
"#;

/// `[status, documentUrl, netError]`: the HTTP status of the page's own navigation (0 when the
/// browser does not say), the document's URL (`chrome-error://…` when Chromium shows its own
/// error page because the site could not be reached), and that page's error code.
const STATUS_SCRIPT: &str = r#"
const nav = performance.getEntriesByType('navigation')[0];
const raw = window.loadTimeDataRaw;
return [nav && nav.responseStatus ? nav.responseStatus : 0, String(document.URL || ''),
        raw && raw.errorCode ? String(raw.errorCode) : null];
"#;

/// What the browser fetcher needs from the configuration.
#[derive(Debug, Clone)]
struct Settings {
    chromedriver_path: String,
    chromium_path: String,
    webdriver_url: Option<String>,
    ready_selector: String,
    not_found_selector: String,
    page_timeout: Duration,
    max_page_bytes: usize,
}

/// A chromedriver process this fetcher started, in a process group of its own so that the
/// browsers it launches can be ended with it even when it died without closing them.
struct Driver {
    child: Child,
    url: String,
    pgid: Option<u32>,
}

impl Driver {
    /// Ends chromedriver and every process of its group (its browsers).
    fn kill_group(&mut self) {
        let _ = self.child.start_kill();
        if let Some(pgid) = self.pgid.take() {
            kill_process_group(pgid);
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// `kill -KILL -<pgid>` (through `sh`, whose built-in `kill` exists even in slim images).
fn kill_process_group(pgid: u32) {
    #[cfg(unix)]
    {
        let _ = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("kill -9 -{pgid} 2>/dev/null"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    #[cfg(not(unix))]
    let _ = pgid;
}

/// One WebDriver session (one browser) and its profile directory, removed when the session
/// is closed or dropped.
struct Session {
    client: Option<Client>,
    profile: Option<PathBuf>,
}

impl Session {
    fn client(&self) -> Result<&Client, LoadError> {
        self.client.as_ref().ok_or(LoadError {
            error: FetchError::Transient("browser session already closed".into()),
            session_broken: true,
        })
    }

    async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), client.close()).await;
        }
        if let Some(dir) = self.profile.take() {
            let _ = tokio::fs::remove_dir_all(dir).await;
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Best effort when the fetcher goes away without `shutdown` (its browsers are killed
        // with chromedriver's process group).
        if let Some(dir) = self.profile.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Fetches pages with headless Chromium.
pub struct BrowserFetcher {
    settings: Settings,
    gate: HostGate,
    driver: tokio::sync::Mutex<Option<Driver>>,
    idle: Mutex<Vec<Session>>,
}

/// A failed page load: whether the session itself broke (and must be replaced).
struct LoadError {
    error: FetchError,
    session_broken: bool,
}

impl BrowserFetcher {
    pub fn new(config: &Config) -> Self {
        Self {
            settings: Settings {
                chromedriver_path: config.chromedriver_path.clone(),
                chromium_path: config.chromium_path.clone(),
                webdriver_url: config.webdriver_url.clone(),
                ready_selector: config.ready_selector.clone(),
                not_found_selector: config.not_found_selector.clone(),
                page_timeout: config.page_timeout,
                max_page_bytes: config.max_page_bytes,
            },
            gate: HostGate::new(&config.source_base_url, config.max_concurrent_per_host),
            driver: tokio::sync::Mutex::new(None),
            idle: Mutex::new(Vec::new()),
        }
    }

    fn take_idle(&self) -> Option<Session> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    fn put_idle(&self, session: Session) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(session);
    }

    /// The WebDriver URL, spawning (or respawning) chromedriver when needed.
    async fn driver_url(&self) -> Result<String, FetchError> {
        if let Some(url) = &self.settings.webdriver_url {
            return Ok(url.clone());
        }
        let mut guard = self.driver.lock().await;
        if let Some(driver) = guard.as_mut() {
            if matches!(driver.child.try_wait(), Ok(None)) {
                return Ok(driver.url.clone());
            }
            tracing::warn!("chromedriver exited; ending its browsers and starting it again");
            driver.kill_group();
        }
        let driver = spawn_driver(&self.settings.chromedriver_path).await?;
        let url = driver.url.clone();
        *guard = Some(driver);
        Ok(url)
    }

    async fn new_session(&self) -> Result<Session, FetchError> {
        let driver = self.driver_url().await?;
        let profile = std::env::temp_dir().join(format!(
            "scraper-chromium-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&profile).map_err(|e| {
            FetchError::Transient(format!("cannot create a browser profile directory: {e}"))
        })?;
        let caps = capabilities(&self.settings, self.gate.host(), &profile);
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(caps);
        match tokio::time::timeout(DRIVER_START_TIMEOUT, builder.connect(&driver)).await {
            Ok(Ok(client)) => Ok(Session {
                client: Some(client),
                profile: Some(profile),
            }),
            Ok(Err(e)) => {
                let _ = std::fs::remove_dir_all(&profile);
                Err(FetchError::Transient(format!(
                    "cannot start a browser session: {e}"
                )))
            }
            Err(_) => {
                let _ = std::fs::remove_dir_all(&profile);
                Err(FetchError::Transient(
                    "timed out starting a browser session".into(),
                ))
            }
        }
    }

    /// Loads `url` in `session` and returns the rendered DOM.
    async fn load(&self, session: &Session, url: &Url) -> Result<FetchedPage, LoadError> {
        let client = session.client()?;
        let deadline = Instant::now() + self.settings.page_timeout;
        match tokio::time::timeout(self.settings.page_timeout, client.goto(url.as_str())).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(classify(e)),
            Err(_) => {
                return Err(LoadError {
                    error: FetchError::Transient(format!(
                        "page did not load within {} ms",
                        self.settings.page_timeout.as_millis()
                    )),
                    session_broken: true,
                })
            }
        }

        let landed = client.current_url().await.map_err(classify)?;
        if !self.gate.allows(&landed) {
            return Err(LoadError {
                error: FetchError::Permanent(format!(
                    "redirected to {landed}: not the configured source host"
                )),
                session_broken: false,
            });
        }

        let info = client
            .execute(STATUS_SCRIPT, vec![])
            .await
            .map_err(classify)?;
        let document_url = info.get(1).and_then(Value::as_str).unwrap_or_default();
        let net_error = info.get(2).and_then(Value::as_str);
        if document_url.starts_with("chrome-error:") || net_error.is_some() {
            // Chromium could not reach the site and shows its own error page instead.
            let code = net_error.unwrap_or("ERR_FAILED");
            let code = if code.starts_with("net::") {
                code.to_owned()
            } else {
                format!("net::{code}")
            };
            return Err(LoadError {
                error: FetchError::Transient(code),
                session_broken: false,
            });
        }
        let status = info
            .get(0)
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .filter(|s| *s > 0)
            .unwrap_or(200);

        // Wait until the content (or a "not found" message) is there and the DOM has stopped
        // changing between two checks. An error status needs no waiting: it says enough.
        let args = vec![
            json!(self.settings.ready_selector),
            json!(self.settings.not_found_selector),
        ];
        let mut rendered = status >= 400;
        let mut last_len: Option<u64> = None;
        while !rendered && Instant::now() < deadline {
            let answer = client
                .execute(READY_SCRIPT, args.clone())
                .await
                .map_err(classify)?;
            let state = answer.get(0).and_then(Value::as_str);
            let len = answer.get(1).and_then(Value::as_u64);
            if state.is_some() {
                if last_len.is_some() && last_len == len {
                    rendered = true;
                    break;
                }
                last_len = len;
            } else {
                last_len = None;
            }
            tokio::time::sleep(POLL).await;
        }

        let html = client.source().await.map_err(classify)?;
        if html.len() > self.settings.max_page_bytes {
            return Err(LoadError {
                error: FetchError::Permanent(format!(
                    "page larger than {} bytes",
                    self.settings.max_page_bytes
                )),
                session_broken: false,
            });
        }
        Ok(FetchedPage {
            url: url.to_string(),
            status,
            html,
            rendered,
        })
    }

    /// The process id of the chromedriver this fetcher started, if it runs (for tests that
    /// simulate a crash).
    #[doc(hidden)]
    pub async fn driver_pid(&self) -> Option<u32> {
        self.driver.lock().await.as_ref().and_then(|d| d.child.id())
    }

    async fn stop_driver(&self) {
        if let Some(mut driver) = self.driver.lock().await.take() {
            driver.kill_group();
            let _ = tokio::time::timeout(Duration::from_secs(5), driver.child.wait()).await;
        }
    }
}

#[async_trait::async_trait]
impl Fetcher for BrowserFetcher {
    fn name(&self) -> &'static str {
        "browser"
    }

    async fn fetch(&self, url: &Url) -> Result<FetchedPage, FetchError> {
        let _permit = self.gate.enter(url).await?;
        // A pooled session may have died since its last use: then try once more with a new one.
        let mut last_error = None;
        for _ in 0..2 {
            let session = match self.take_idle() {
                Some(s) => s,
                None => self.new_session().await?,
            };
            match self.load(&session, url).await {
                Ok(page) => {
                    self.put_idle(session);
                    return Ok(page);
                }
                Err(LoadError {
                    error,
                    session_broken: false,
                }) => {
                    self.put_idle(session);
                    return Err(error);
                }
                Err(LoadError {
                    error,
                    session_broken: true,
                }) => {
                    tracing::warn!(error = %error, "browser session broke; replacing it");
                    session.close().await;
                    last_error = Some(error);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| FetchError::Transient("browser session failed".into())))
    }

    async fn shutdown(&self) {
        let sessions: Vec<Session> =
            std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()));
        for session in sessions {
            session.close().await;
        }
        self.stop_driver().await;
    }
}

/// Sorts a WebDriver error: network errors of the page are about the source; anything else
/// means the session (or chromedriver) is in trouble.
fn classify(e: CmdError) -> LoadError {
    match &e {
        CmdError::Standard(wd) if wd.message.contains("net::ERR_") => {
            let reason = wd
                .message
                .split_whitespace()
                .find(|w| w.starts_with("net::ERR_"))
                .unwrap_or("net error");
            LoadError {
                error: FetchError::Transient(reason.to_owned()),
                session_broken: false,
            }
        }
        CmdError::Standard(wd)
            if matches!(wd.error, ErrorStatus::Timeout | ErrorStatus::ScriptTimeout) =>
        {
            LoadError {
                error: FetchError::Transient(format!("browser timed out: {}", wd.message)),
                session_broken: false,
            }
        }
        _ => LoadError {
            error: FetchError::Transient(format!("browser failed: {e}")),
            session_broken: true,
        },
    }
}

/// Chromium's options: headless, no sandbox (root in containers), no background traffic, a
/// fresh profile, and every host but the source's unresolvable.
fn capabilities(
    settings: &Settings,
    host: &str,
    profile: &std::path::Path,
) -> serde_json::Map<String, Value> {
    let mut args = vec![
        "--headless".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--disable-quic".to_owned(),
        "--no-first-run".to_owned(),
        "--no-default-browser-check".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--disable-extensions".to_owned(),
        "--disable-breakpad".to_owned(),
        "--disable-crash-reporter".to_owned(),
        "--mute-audio".to_owned(),
        format!("--user-data-dir={}", profile.display()),
    ];
    if host.parse::<std::net::IpAddr>().is_err() {
        args.push(format!(
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE {host}"
        ));
    }
    let timeout_ms = settings.page_timeout.as_millis().min(u128::from(u32::MAX)) as u64;
    let caps = json!({
        "browserName": "chrome",
        "pageLoadStrategy": "normal",
        "timeouts": {"pageLoad": timeout_ms, "script": timeout_ms, "implicit": 0},
        "goog:chromeOptions": {"binary": settings.chromium_path, "args": args},
    });
    match caps {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

/// Starts `chromedriver --port=<free port>` and waits until it answers `/status`.
async fn spawn_driver(path: &str) -> Result<Driver, FetchError> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| FetchError::Transient(format!("no free port for chromedriver: {e}")))?;
    let mut command = Command::new(path);
    #[cfg(unix)]
    command.process_group(0);
    let mut child = command
        .arg(format!("--port={port}"))
        .arg("--log-level=OFF")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            FetchError::Permanent(format!(
                "cannot start chromedriver ({path}, CHROMEDRIVER_PATH): {e}"
            ))
        })?;
    let url = format!("http://127.0.0.1:{port}");
    let pgid = child.id();
    let status_client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| FetchError::Transient(format!("cannot build an HTTP client: {e}")))?;
    let deadline = Instant::now() + DRIVER_START_TIMEOUT;
    loop {
        if let Ok(Some(exit)) = child.try_wait() {
            return Err(FetchError::Transient(format!(
                "chromedriver exited at start-up ({exit})"
            )));
        }
        let ready = match status_client.get(format!("{url}/status")).send().await {
            Ok(resp) => resp
                .json::<Value>()
                .await
                .ok()
                .and_then(|v| v["value"]["ready"].as_bool())
                .unwrap_or(false),
            Err(_) => false,
        };
        if ready {
            tracing::info!(%url, "chromedriver started");
            return Ok(Driver { child, url, pgid });
        }
        if Instant::now() > deadline {
            let _ = child.start_kill();
            if let Some(pgid) = pgid {
                kill_process_group(pgid);
            }
            return Err(FetchError::Transient(
                "chromedriver did not become ready".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
