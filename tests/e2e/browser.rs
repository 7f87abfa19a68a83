//! The web UI in a real browser: Debian's Chromium, headless, driven over WebDriver
//! (chromedriver, spawned on a free port for each test), against the whole platform started
//! in process (`support::start`) and reached through its gateway, as a user would.
//!
//! Journeys: a reader's (register → log out → log in → search as they type → borrow → place
//! a hold → notified live, with the unread count → return), a librarian's (add a title → find
//! it), a company lookup (the scraper's stand-in site), an area made to fail (its files
//! blocked in the browser: the fallback shows, the other areas keep working, "Retry"
//! recovers), and an ended session (the next request's 401 leads back to the login screen).
//! axe-core checks every screen: no serious or critical violation. One screen is checked at a
//! phone's size. `UPDATE_SCREENSHOTS=1` writes the main screens to `docs/screenshots/`.
//! The first load with a cold cache is measured from the browser's performance timeline.
//!
//! Every wait is explicit (a condition on the page, polled until a generous deadline); no test
//! sleeps to let something happen. Without Chromium, chromedriver or axe-core
//! (`npm ci --prefix web`), each test says why and passes — unless `REQUIRE_EXTERNAL_BACKENDS`
//! is set (CI), where it fails.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use api::library::Isbn;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use reqwest::Method;
use serde_json::{json, Value};

use crate::fixture::{FixtureCompany, FixtureSite, Render};
use crate::support::{start, Backend, TestStack, PASSWORD};

/// How long any one thing may take to show on the page (a cold start of an area on a busy
/// two-core machine included).
const WAIT: Duration = Duration::from_secs(30);
/// How often a condition is looked at again.
const POLL: Duration = Duration::from_millis(100);
/// A desktop window, and a phone's.
const DESKTOP: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (390, 844);

/// What the tests need on the machine.
struct Tools {
    chromium: PathBuf,
    chromedriver: PathBuf,
    /// axe-core's source (`web/node_modules/axe-core/axe.min.js`).
    axe: String,
}

/// The tools, or `None` (with the reason printed) when one is missing; a missing tool fails
/// the test when `REQUIRE_EXTERNAL_BACKENDS` is set.
fn tools() -> Option<Tools> {
    let env_or = |var: &str, default: &str| {
        PathBuf::from(std::env::var(var).unwrap_or_else(|_| default.to_owned()))
    };
    let chromium = env_or("CHROMIUM_PATH", "/usr/bin/chromium");
    let chromedriver = env_or("CHROMEDRIVER_PATH", "/usr/bin/chromedriver");
    let axe_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("web/node_modules/axe-core/axe.min.js");
    let mut missing = Vec::new();
    if !chromium.is_file() {
        missing.push(format!("Chromium ({})", chromium.display()));
    }
    if !chromedriver.is_file() {
        missing.push(format!("chromedriver ({})", chromedriver.display()));
    }
    let axe = std::fs::read_to_string(&axe_path).ok();
    if axe.is_none() {
        missing.push(format!(
            "axe-core ({}; run `npm ci --prefix web`)",
            axe_path.display()
        ));
    }
    if missing.is_empty() {
        return Some(Tools {
            chromium,
            chromedriver,
            axe: axe.unwrap_or_default(),
        });
    }
    let required =
        std::env::var("REQUIRE_EXTERNAL_BACKENDS").is_ok_and(|v| v == "1" || v == "true");
    let reason = format!("browser tests need {}", missing.join(", "));
    assert!(!required, "REQUIRE_EXTERNAL_BACKENDS is set: {reason}");
    eprintln!("skipped: {reason}");
    None
}

/// A chromedriver of this test, in a process group of its own: dropping it ends chromedriver
/// and the browsers it started, also after a failed assertion.
struct Driver {
    child: tokio::process::Child,
    url: String,
}

impl Driver {
    async fn spawn(path: &Path) -> Driver {
        let port = crate::support::free_port();
        let mut command = tokio::process::Command::new(path);
        command.process_group(0);
        let child = command
            .arg(format!("--port={port}"))
            .arg("--log-level=OFF")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        let deadline = Instant::now() + WAIT;
        loop {
            let ready = match http.get(format!("{}/status", driver.url)).send().await {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| v["value"]["ready"].as_bool()),
                Err(_) => None,
            };
            if ready == Some(true) {
                return driver;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            // The group: chromedriver and every browser process it started.
            let _ = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("kill -9 -{pid} 2>/dev/null"))
                .status();
        }
    }
}

/// One browser on the platform at `base`: a fresh profile (a cold cache), a desktop window.
struct Browser {
    client: Client,
    base: String,
    axe: String,
    _profile: tempfile::TempDir,
    _driver: Driver,
}

impl Browser {
    async fn open(tools: &Tools, base: &str) -> Browser {
        let driver = Driver::spawn(&tools.chromedriver).await;
        let profile = tempfile::tempdir().expect("profile directory");
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--no-first-run".to_owned(),
            "--no-default-browser-check".to_owned(),
            "--disable-extensions".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--hide-scrollbars".to_owned(),
            "--force-device-scale-factor=1".to_owned(),
            "--lang=en-GB".to_owned(),
            format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": tools.chromium, "args": args},
            "timeouts": {"pageLoad": 60_000, "script": 60_000, "implicit": 0},
        });
        let Value::Object(caps) = caps else {
            unreachable!("an object")
        };
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(caps);
        let client = builder
            .connect(&driver.url)
            .await
            .expect("a browser session starts");
        Browser {
            client,
            base: base.to_owned(),
            axe: tools.axe.clone(),
            _profile: profile,
            _driver: driver,
        }
    }

    /// Loads `path` (a full page load).
    async fn go(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("load {path}: {e}"));
    }

    /// Runs `script` (a function body) in the page.
    async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until `condition` (a JavaScript expression) is true; `what` names it in the
    /// failure, which also shows where the page is and what it says.
    async fn until(&self, what: &str, condition: &str) {
        let script = format!("try {{ return !!({condition}); }} catch (e) {{ return false; }}");
        let deadline = Instant::now() + WAIT;
        loop {
            if self.client.execute(&script, vec![]).await.ok() == Some(Value::Bool(true)) {
                return;
            }
            if Instant::now() > deadline {
                let page = self
                    .client
                    .execute(
                        "return location.href + '\\n' + (document.body ? document.body.innerText : '')",
                        vec![],
                    )
                    .await
                    .unwrap_or_default();
                panic!(
                    "waited {WAIT:?} for {what} ({condition}); the page:\n{}",
                    page.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits for an element matching `css` to be shown.
    async fn shown(&self, css: &str) {
        let quoted = serde_json::to_string(css).expect("a string");
        self.until(
            &format!("{css} to be shown"),
            &format!(
                "(() => {{ const e = document.querySelector({quoted}); \
                 return e && !e.closest('[hidden]') && e.getClientRects().length > 0; }})()"
            ),
        )
        .await;
    }

    /// Waits until the text of the element matching `css` contains `text`.
    async fn shows_text(&self, css: &str, text: &str) {
        let (q, t) = (
            serde_json::to_string(css).expect("a string"),
            serde_json::to_string(text).expect("a string"),
        );
        self.until(
            &format!("{css} to say {text:?}"),
            &format!("(document.querySelector({q})?.textContent ?? '').includes({t})"),
        )
        .await;
    }

    /// Waits for the UI path to be `path` (without the query).
    async fn at(&self, path: &str) {
        let p = serde_json::to_string(path).expect("a string");
        self.until(
            &format!("the path {path}"),
            &format!("location.pathname === {p}"),
        )
        .await;
    }

    /// Clicks the element matching `css` once it is shown. An element replaced between
    /// being found and clicked (a list re-rendered as results arrive) is found again.
    async fn click(&self, css: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            self.shown(css).await;
            let clicked = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.click().await,
                Err(e) => Err(e),
            };
            match clicked {
                Ok(()) => return,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("click {css}: {e}; again");
                    tokio::time::sleep(POLL).await;
                }
                Err(e) => panic!("click {css}: {e}"),
            }
        }
    }

    /// Types `text` into the field `name` (its `data-test="field-<name>"`), after clearing it.
    async fn fill(&self, name: &str, text: &str) {
        let css = format!("[data-test=\"field-{name}\"]");
        self.shown(&css).await;
        let field = self
            .client
            .find(Locator::Css(&css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        field
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
        field
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Logs in with the form of `/login` (already shown) and waits for the header to name
    /// the user.
    async fn log_in(&self, name: &str) {
        self.shown("[data-test=\"login\"]").await;
        self.fill("username", name).await;
        self.fill("password", PASSWORD).await;
        self.click("[data-test=\"login-submit\"]").await;
        self.shows_text("[data-test=\"whoami-name\"]", name).await;
    }

    /// Runs axe-core on the page as it is now: no serious or critical violation on `screen`.
    async fn accessible(&self, screen: &str) {
        let injected = self.js("return typeof window.axe;", vec![]).await;
        if injected != "object" {
            let kind = self
                .js(&format!("{}\nreturn typeof window.axe;", self.axe), vec![])
                .await;
            assert_eq!(kind, "object", "axe-core did not load");
        }
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document).then(
                   (r) => done({ passed: r.passes.length,
                     violations: r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                       nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) })) }),
                   (e) => done({ error: String(e) }));",
                vec![],
            )
            .await
            .unwrap_or_else(|e| panic!("axe on {screen}: {e}"));
        let Some(violations) = result["violations"].as_array() else {
            panic!("axe on {screen}: {result}")
        };
        // The rules really ran (labels, contrast, landmarks, names… on this page).
        assert!(
            result["passed"].as_u64() > Some(10),
            "axe on {screen}: {result}"
        );
        let grave: Vec<&Value> = violations
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .collect();
        assert!(
            grave.is_empty(),
            "{screen}: serious or critical accessibility violations: {}",
            serde_json::to_string_pretty(&grave).unwrap_or_default()
        );
    }

    /// Writes the page as `docs/screenshots/<name>.png` when `UPDATE_SCREENSHOTS=1`.
    async fn screenshot(&self, name: &str) {
        if std::env::var("UPDATE_SCREENSHOTS").ok().as_deref() != Some("1") {
            return;
        }
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
        std::fs::create_dir_all(&dir).expect("docs/screenshots");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write the screenshot");
    }

    /// Sends a Chrome DevTools command through chromedriver (`goog/cdp/execute`).
    async fn devtools(&self, cmd: &str, params: Value) {
        self.client
            .issue_cmd(DevTools {
                cmd: cmd.to_owned(),
                params,
            })
            .await
            .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    }

    async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(10), self.client.close()).await;
    }
}

/// A Chrome DevTools Protocol command, sent through chromedriver's vendor endpoint.
#[derive(Debug)]
struct DevTools {
    cmd: String,
    params: Value,
}

impl WebDriverCompatibleCommand for DevTools {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (Method, Option<String>) {
        let body = json!({"cmd": self.cmd, "params": self.params});
        (Method::POST, Some(body.to_string()))
    }
}

/// An account made through the API, logged in there too (for what the test does behind the
/// browser's back).
struct Account {
    name: String,
    token: String,
}

async fn account(s: &TestStack, name: &str, role: Option<&str>) -> Account {
    s.register(name).await;
    if let Some(role) = role {
        s.set_role(name, role).await;
    }
    Account {
        name: name.to_owned(),
        token: s.login(name).await,
    }
}

/// Catalogues a title by Victor Hugo; its id.
async fn add_title(
    s: &TestStack,
    librarian: &Account,
    title: &str,
    stem: &str,
    copies: u32,
) -> i64 {
    let body = json!({"title": title, "author": "Victor Hugo",
                      "isbn": Isbn::from_stem(stem).as_str(), "copies": copies});
    let (status, book, _) = s
        .call(Method::POST, "/books/", Some(&librarian.token), Some(&body))
        .await;
    assert_eq!(status, 201, "{book}");
    book["id"].as_i64().expect("id")
}

async fn api_post(s: &TestStack, who: &Account, path: &str, body: Value) -> Value {
    let (status, answer, _) = s
        .call(Method::POST, path, Some(&who.token), Some(&body))
        .await;
    assert!(
        (200..300).contains(&status),
        "POST {path}: {status} {answer}"
    );
    answer
}

const RESULT: &str = "[data-test=\"result\"]";

#[tokio::test(flavor = "multi_thread")]
async fn a_readers_whole_journey() {
    let Some(tools) = tools() else { return };
    let s = start(Backend::Embedded, "ui_reader", |_| {}).await;
    let librarian = account(&s, "ui_librarian", Some("librarian")).await;
    let shelf = add_title(&s, &librarian, "Les Misérables", "978207040850", 1).await;
    let wanted = add_title(&s, &librarian, "Notre-Dame de Paris", "978207036003", 1).await;
    // Someone else has the only copy of the title the reader will wait for.
    let other = account(&s, "ui_other", None).await;
    let theirs = api_post(&s, &other, "/loans/", json!({"book_id": wanted})).await;

    let b = Browser::open(&tools, &s.url).await;
    // Register (which signs in), log out, log in.
    b.go("/register").await;
    b.shown("[data-test=\"register\"]").await;
    b.accessible("register").await;
    b.screenshot("register").await;
    b.fill("username", "ui_reader").await;
    b.fill("email", "ui_reader@example.com").await;
    b.fill("password", PASSWORD).await;
    b.fill("confirm", PASSWORD).await;
    b.click("[data-test=\"register-submit\"]").await;
    b.shows_text("[data-test=\"whoami-name\"]", "ui_reader")
        .await;
    b.shows_text("[data-test=\"whoami-role\"]", "Reader").await;
    b.at("/catalogue").await;
    b.click("[data-test=\"logout\"]").await;
    b.at("/login").await;
    b.shows_text("[data-test=\"flash\"]", "logged out").await;
    b.accessible("login").await;
    b.screenshot("login").await;
    b.log_in("ui_reader").await;

    // Search as one types, with availability.
    b.at("/catalogue").await;
    b.fill("q", "hugo").await;
    b.until(
        "both titles found",
        &format!("document.querySelectorAll('{RESULT}').length === 2"),
    )
    .await;
    b.shows_text("[data-test=\"results\"]", "Les Misérables")
        .await;
    b.accessible("catalogue search").await;
    b.screenshot("catalogue").await;

    // Borrow the title on the shelf.
    b.click(&format!(
        "[data-test=\"result-link\"][href=\"/catalogue/{shelf}\"]"
    ))
    .await;
    b.shows_text("[data-test=\"book-title\"]", "Les Misérables")
        .await;
    b.click("[data-test=\"borrow\"]").await;
    b.shows_text("[data-test=\"circulation-status\"]", "Borrowed")
        .await;
    b.accessible("a title").await;
    b.screenshot("book").await;

    // Wait for the other one: a hold, first in the queue.
    b.go(&format!("/catalogue/{wanted}")).await;
    b.shows_text("[data-test=\"book-title\"]", "Notre-Dame de Paris")
        .await;
    b.click("[data-test=\"place-hold\"]").await;
    b.shows_text(
        "[data-test=\"circulation-status\"]",
        "number 1 in the queue",
    )
    .await;

    // Live: with the notifications open and the stream connected, the other reader's return
    // makes the hold ready; the notification and the unread count arrive without a reload.
    b.click("[data-test=\"nav-account-notifications\"]").await;
    b.shows_text("[data-test=\"stream-state\"]", "Live").await;
    b.js("window.__samePage = true;", vec![]).await;
    let loan = theirs["id"].as_i64().expect("loan id");
    api_post(&s, &other, &format!("/loans/{loan}/return"), json!({})).await;
    b.shown("[data-test=\"notification\"]").await;
    b.shows_text("[data-test=\"unread-count\"]", "1").await;
    assert_eq!(
        b.js("return window.__samePage === true;", vec![]).await,
        Value::Bool(true),
        "the notification came without a page load"
    );
    b.accessible("notifications").await;
    b.screenshot("notifications").await;

    // My loans: the borrowed title with its due date; return it.
    b.click("[data-test=\"nav-account\"]").await;
    b.shown("[data-test=\"loan-row\"]").await;
    b.shown("[data-test=\"loan-due\"]").await;
    b.shows_text("[data-test=\"my-holds\"]", "Notre-Dame de Paris")
        .await;
    b.accessible("loans and holds").await;
    b.screenshot("account").await;
    b.click("[data-test=\"loan-return\"]").await;
    b.shows_text("[data-test=\"loan-status\"]", "Returned")
        .await;
    let (_, loans, _) = s.get("/loans/", Some(&s.login("ui_reader").await)).await;
    assert!(
        loans
            .as_array()
            .is_some_and(|l| l.iter().all(|loan| loan["returned_at"].is_string())),
        "{loans}"
    );

    // A phone-sized screen: the menu folds, nothing scrolls sideways, still accessible.
    b.client
        .set_window_size(PHONE.0, PHONE.1)
        .await
        .expect("resize");
    b.click("[data-test=\"brand\"]").await;
    b.at("/catalogue").await;
    b.shown("#menu-toggle").await;
    b.until(
        "no sideways scrolling",
        "document.documentElement.scrollWidth <= window.innerWidth",
    )
    .await;
    b.click("#menu-toggle").await;
    b.shown("[data-test=\"nav-account\"]").await;
    b.accessible("catalogue on a phone").await;
    b.screenshot("phone-menu").await;

    b.close().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_librarian_adds_a_title_and_a_company_is_looked_up() {
    let Some(tools) = tools() else { return };
    let site = FixtureSite::start(Render::Server).await;
    let idno = api::scrape::Idno::from_stem("100860003841").to_string();
    site.add(FixtureCompany::sample(&idno));
    let base = site.base_url();
    let s = start(Backend::Embedded, "ui_librarian", move |c| {
        c.scraper.source_base_url = url::Url::parse(&base).expect("a URL");
        c.scraper.fetcher = scraper_service::config::FetcherChoice::Http;
        c.scraper.poll_interval = Duration::from_millis(50);
    })
    .await;
    let librarian = account(&s, "ui_keeper", Some("librarian")).await;

    let b = Browser::open(&tools, &s.url).await;
    b.go("/login").await;
    b.log_in(&librarian.name).await;
    b.shows_text("[data-test=\"whoami-role\"]", "Librarian")
        .await;

    // Add a title: it opens, then the search finds it.
    b.click("[data-test=\"add-title\"]").await;
    b.at("/catalogue/new").await;
    b.shown("[data-test=\"new-title\"]").await;
    b.accessible("add a title").await;
    b.fill("title", "Quatrevingt-treize").await;
    b.fill("author", "Victor Hugo").await;
    b.fill("isbn", Isbn::from_stem("978207037041").as_str())
        .await;
    b.fill("copies", "3").await;
    b.screenshot("add-title").await;
    b.click("[data-test=\"new-title-submit\"]").await;
    b.shows_text("[data-test=\"book-title\"]", "Quatrevingt-treize")
        .await;
    b.shows_text("[data-test=\"book-figures\"]", "3 copies")
        .await;
    b.shown("[data-test=\"librarian-tools\"]").await;
    b.accessible("a title, for a librarian").await;
    b.click("[data-test=\"nav-catalogue\"]").await;
    b.fill("q", "quatrevingt").await;
    b.shows_text("[data-test=\"results\"]", "Quatrevingt-treize")
        .await;

    // The members list.
    b.click("[data-test=\"nav-members\"]").await;
    b.shown("[data-test=\"member-row\"]").await;
    b.accessible("members").await;
    b.screenshot("members").await;

    // Company data by IDNO: the job's progress, then the record.
    b.click("[data-test=\"nav-company\"]").await;
    b.shown("[data-test=\"company-request\"]").await;
    b.accessible("company request").await;
    b.fill("idno", &idno).await;
    b.click("[data-test=\"company-request-submit\"]").await;
    b.shows_text("[data-test=\"record-name\"]", "Exemplu Comerț SRL")
        .await;
    b.shows_text("[data-test=\"company-record\"]", "Ion Popescu")
        .await;
    b.accessible("company record").await;
    b.screenshot("company").await;

    b.close().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_area_falls_back_and_an_ended_session_leads_to_login() {
    let Some(tools) = tools() else { return };
    let s = start(Backend::Embedded, "ui_faults", |_| {}).await;
    let reader = account(&s, "ui_unlucky", None).await;

    let b = Browser::open(&tools, &s.url).await;
    // The catalogue's files cannot be had (as if book-service's area were down).
    b.devtools("Network.enable", json!({})).await;
    b.devtools(
        "Network.setBlockedURLs",
        json!({"urls": ["*/ui/catalogue/*"]}),
    )
    .await;
    b.go("/login").await;
    b.log_in(&reader.name).await;
    b.at("/catalogue").await;
    b.shown("[data-test=\"area-fallback\"][data-area=\"catalogue\"]")
        .await;
    b.shown("[data-test=\"area-retry\"]").await;
    b.accessible("an area's fallback").await;
    b.screenshot("fallback").await;

    // The rest works: the header, the account area, the companies area.
    b.click("[data-test=\"nav-account\"]").await;
    b.shown("[data-test=\"my-loans-empty\"]").await;
    b.click("[data-test=\"nav-company\"]").await;
    b.shown("[data-test=\"company-request\"]").await;

    // Still down when the user comes back to it; once it is up again, Retry loads it.
    b.click("[data-test=\"nav-catalogue\"]").await;
    b.shown("[data-test=\"area-fallback\"][data-area=\"catalogue\"]")
        .await;
    b.devtools("Network.setBlockedURLs", json!({"urls": []}))
        .await;
    b.click("[data-test=\"area-retry\"]").await;
    b.shown("[data-test=\"search-form\"]").await;

    // The session ends behind the browser's back: the next request's 401 leads to the login
    // screen, with a word on why, and back where the user was after logging in again.
    // (The open event stream may notice first; either way the user lands on the login.)
    api_post(&s, &reader, "/auth/logout-all", json!({})).await;
    b.js(
        "document.querySelector('[data-test=\"nav-account\"]')?.click();",
        vec![],
    )
    .await;
    b.at("/login").await;
    b.shows_text("[data-test=\"flash\"]", "session has ended")
        .await;
    b.until(
        "no one named in the header",
        "!document.querySelector('[data-test=\"whoami\"]')",
    )
    .await;
    b.log_in(&reader.name).await;
    b.at("/account").await;

    b.close().await;
    s.stop().await;
}

/// The first load of the shell with a cold cache, from the browser's performance timeline:
/// bytes of script transferred and the time until the first view answers input (the shell's
/// `ui-interactive` mark, after the login area mounted). Printed; held to generous bounds
/// (the goal, 100 KB and 1 s, is in docs/web-ui.md with the measured figures). A second load
/// takes every hashed file from the cache.
#[tokio::test(flavor = "multi_thread")]
async fn the_first_load_is_light_and_the_second_comes_from_the_cache() {
    let Some(tools) = tools() else { return };
    let s = start(Backend::Embedded, "ui_first_load", |_| {}).await;
    let b = Browser::open(&tools, &s.url).await;

    const FIGURES: &str = "
        const all = performance.getEntriesByType('resource');
        const nav = performance.getEntriesByType('navigation')[0];
        const scripts = all.filter((r) => new URL(r.name).pathname.endsWith('.js'));
        const sum = (list, key) => list.reduce((n, r) => n + r[key], 0);
        return {
          scripts: scripts.length,
          script_transfer: sum(scripts, 'transferSize'),
          script_body: sum(scripts, 'encodedBodySize'),
          all_transfer: sum(all, 'transferSize') + nav.transferSize,
          requests: all.length + 1,
          cached: all.filter((r) => r.name.includes('/ui/') && /\\/[0-9a-f]{16}\\//.test(r.name)
                                   && r.transferSize === 0).length,
          hashed: all.filter((r) => /\\/[0-9a-f]{16}\\//.test(r.name)).length,
          interactive_ms: performance.getEntriesByName('ui-interactive')[0].startTime,
          dom_content_loaded_ms: nav.domContentLoadedEventEnd,
        };";
    let interactive = "performance.getEntriesByName('ui-interactive').length > 0";

    b.go("/login").await;
    b.shown("[data-test=\"login\"]").await;
    b.until("the interactive mark", interactive).await;
    let cold = b.js(FIGURES, vec![]).await;
    println!("first load, cold cache: {cold}");
    let script = cold["script_transfer"].as_f64().expect("bytes");
    let tti = cold["interactive_ms"].as_f64().expect("ms");
    assert!(
        script > 0.0 && script < 100_000.0,
        "script over 100 KB: {cold}"
    );
    // Generous: a busy CI machine; the figure on an idle one is in docs/web-ui.md.
    assert!(tti < 10_000.0, "interactive after {tti} ms: {cold}");

    b.go("/login").await;
    b.shown("[data-test=\"login\"]").await;
    b.until("the interactive mark", interactive).await;
    let warm = b.js(FIGURES, vec![]).await;
    println!("second load, warm cache: {warm}");
    assert_eq!(
        warm["cached"], warm["hashed"],
        "every hashed file comes from the cache: {warm}"
    );

    b.close().await;
    s.stop().await;
}

/// The value of cookie `name` in `Set-Cookie` headers, with the whole header.
fn set_cookie<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
}

/// The cookie's value (before the first `;`, after `=`).
fn cookie_value(set_cookie: &str) -> &str {
    let pair = set_cookie.split(';').next().unwrap_or_default();
    pair.split_once('=').map_or("", |(_, v)| v)
}

/// What the browser tests rely on, checked without a browser (so it runs everywhere): the web
/// session's cookies and CSRF check through the gateway, its real end, and every area's files
/// with their caching and security headers, through whichever service relays them.
#[tokio::test(flavor = "multi_thread")]
async fn the_web_session_and_the_areas_files_through_the_gateway() {
    let s = start(Backend::Embedded, "ui_session", |_| {}).await;
    let id = s.register("ui_cookie").await;
    let login = json!({"username": "ui_cookie", "password": PASSWORD});

    // A wrong password: 401 and no cookie.
    let wrong = json!({"username": "ui_cookie", "password": "not-the-password"});
    let (status, _, headers) = s.post_json("/auth/session", &wrong, None).await;
    assert_eq!(status, 401);
    assert!(headers.get(reqwest::header::SET_COOKIE).is_none());

    // Signed in: the account with its role; the token only in an HttpOnly cookie.
    let (status, body, headers) = s.post_json("/auth/session", &login, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["user"],
        json!({"id": id, "username": "ui_cookie", "email": "ui_cookie@example.com", "role": "user"})
    );
    assert!(body.get("access_token").is_none(), "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    let session = set_cookie(&headers, "platform_session").expect("the session cookie");
    let csrf = set_cookie(&headers, "platform_csrf").expect("the CSRF cookie");
    for attribute in [
        "; Path=/",
        "; SameSite=Strict",
        "; HttpOnly",
        "; Max-Age=1800",
    ] {
        assert!(session.contains(attribute), "{session}");
    }
    assert!(!session.contains("Secure"), "plain HTTP here: {session}");
    assert!(!csrf.contains("HttpOnly"), "the UI reads it: {csrf}");
    assert!(csrf.contains("; SameSite=Strict"), "{csrf}");
    let (token, csrf) = (
        cookie_value(session).to_owned(),
        cookie_value(csrf).to_owned(),
    );
    assert!(csrf.len() >= 32, "{csrf}");
    let cookies = format!("platform_session={token}; platform_csrf={csrf}");

    // The cookie authenticates like the bearer token.
    let me = s
        .http
        .get(s.at("/auth/me/"))
        .header("cookie", &cookies)
        .send()
        .await
        .expect("request");
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.expect("json");
    assert_eq!(me["role"], "user", "{me}");

    // Ending it needs the CSRF proof.
    let delete = |proof: Option<&str>| {
        let mut request = s
            .http
            .delete(s.at("/auth/session"))
            .header("cookie", &cookies);
        if let Some(proof) = proof {
            request = request.header("x-csrf-token", proof);
        }
        request.send()
    };
    assert_eq!(delete(None).await.expect("request").status(), 403);
    assert_eq!(delete(Some("forged")).await.expect("request").status(), 403);
    let ended = delete(Some(&csrf)).await.expect("request");
    assert_eq!(ended.status(), 200);
    let cleared = ended.headers();
    for name in ["platform_session", "platform_csrf"] {
        let c = set_cookie(cleared, name).unwrap_or_else(|| panic!("{name} cleared"));
        assert!(
            c.starts_with(&format!("{name}=;")) && c.contains("Max-Age=0"),
            "{c}"
        );
    }
    // Ended on the server: the cookie, and the token inside it, are refused from now on.
    let again = s
        .http
        .get(s.at("/auth/me/"))
        .header("cookie", &cookies)
        .send()
        .await
        .expect("request");
    assert_eq!(again.status(), 401);
    assert_eq!(s.get("/auth/me/", Some(&token)).await.0, 401);

    // Every area, from the service that owns it (through app-service for auth and
    // companies): a revalidated manifest (ETag → 304), immutable hashed files, the policy.
    for area in ["auth", "catalogue", "account", "companies"] {
        let manifest = s
            .http
            .get(s.at(&format!("/ui/{area}/manifest.json")))
            .send()
            .await
            .expect("request");
        assert_eq!(manifest.status(), 200, "{area}");
        let headers = manifest.headers().clone();
        assert_eq!(headers["cache-control"], "no-cache", "{area}");
        let csp = headers["content-security-policy"].to_str().expect("ASCII");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe"),
            "{area}: {csp}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff", "{area}");
        let etag = headers["etag"].clone();
        let body: Value = manifest.json().await.expect("json");
        assert_eq!(body["area"], area);
        let unchanged = s
            .http
            .get(s.at(&format!("/ui/{area}/manifest.json")))
            .header("if-none-match", etag)
            .send()
            .await
            .expect("request");
        assert_eq!(unchanged.status(), 304, "{area}");

        let entry = body["entry"].as_str().expect("an entry module");
        let file = s.http.get(s.at(entry)).send().await.expect("request");
        assert_eq!(file.status(), 200, "{entry}");
        assert_eq!(
            file.headers()["cache-control"],
            "public, max-age=31536000, immutable",
            "{entry}"
        );
        assert_eq!(
            file.headers()["content-type"],
            "text/javascript; charset=utf-8"
        );
        let etag = file.headers()["etag"].clone();
        let unchanged = s
            .http
            .get(s.at(entry))
            .header("if-none-match", etag)
            .send()
            .await
            .expect("request");
        assert_eq!(unchanged.status(), 304, "{entry}");
        // Read-only.
        let post = s
            .http
            .post(s.at(&format!("/ui/{area}/manifest.json")))
            .send()
            .await
            .expect("request");
        assert_eq!(post.status(), 405, "{area}");
    }
    s.stop().await;
}
