//! A local stand-in for openmoney.md: `/companies/<idno>` is a single-page-app shell whose
//! script fetches `/api/companies/<idno>` after a delay and renders the company (or a "not
//! found" message) with Romanian labels — so only a real browser sees the data. A server-side
//! rendered mode serves the same markup without JavaScript (for queue tests with the plain
//! HTTP fetcher). The site can be taken down (503), slowed down, and counts its hits.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

/// A company the site knows.
#[derive(Debug, Clone, Serialize)]
pub struct FixtureCompany {
    pub idno: String,
    pub name: String,
    pub legal_form: String,
    pub address: String,
    /// As the site shows it: `dd.mm.yyyy`.
    pub registered: String,
    pub status: String,
    pub directors: Vec<String>,
    pub activities: Vec<String>,
}

impl FixtureCompany {
    /// A company with realistic Romanian data (the address uses the old cedilla letters).
    pub fn sample(idno: &str) -> Self {
        Self {
            idno: idno.into(),
            name: "Exemplu Comerț SRL".into(),
            legal_form: "Societate cu Răspundere Limitată".into(),
            address: "mun. Chişinău, str. Ştefan cel Mare şi Sfînt 1, of. 2".into(),
            registered: "12.03.2003".into(),
            status: "Activă".into(),
            directors: vec!["Ion Popescu".into(), "Maria Rusu".into()],
            activities: vec![
                "47.11 Comerț cu amănuntul".into(),
                "62.01 Activități de realizare a soft-ului".into(),
            ],
        }
    }
}

/// How `/companies/<idno>` is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Render {
    /// An empty shell; the data appears only after JavaScript runs (like the real site).
    Script,
    /// The final markup, no JavaScript needed.
    Server,
}

#[derive(Default)]
struct Counters {
    pages: HashMap<String, u64>,
    api: HashMap<String, u64>,
}

struct SiteState {
    render: Render,
    companies: Mutex<HashMap<String, FixtureCompany>>,
    down: AtomicBool,
    page_delay_ms: AtomicU64,
    script_delay_ms: u64,
    counters: Mutex<Counters>,
}

/// The running fixture site.
#[derive(Clone)]
pub struct FixtureSite {
    addr: SocketAddr,
    state: Arc<SiteState>,
}

impl FixtureSite {
    /// Starts the site on 127.0.0.1:0.
    pub async fn start(render: Render) -> Self {
        let state = Arc::new(SiteState {
            render,
            companies: Mutex::new(HashMap::new()),
            down: AtomicBool::new(false),
            page_delay_ms: AtomicU64::new(0),
            script_delay_ms: 300,
            counters: Mutex::new(Counters::default()),
        });
        let app = Router::new()
            .route("/companies/{idno}", get(page))
            .route("/api/companies/{idno}", get(api))
            .route("/redirect-away", get(redirect_away))
            .route("/big", get(big))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fixture site");
        let addr = listener.local_addr().expect("fixture address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn add(&self, company: FixtureCompany) {
        self.state
            .companies
            .lock()
            .unwrap()
            .insert(company.idno.clone(), company);
    }

    /// Changes a known company (e.g. its status), so the next fetch differs.
    pub fn update(&self, idno: &str, change: impl FnOnce(&mut FixtureCompany)) {
        if let Some(c) = self.state.companies.lock().unwrap().get_mut(idno) {
            change(c);
        }
    }

    /// While down, every request gets 503.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// Delays every `/companies/…` answer.
    pub fn set_page_delay(&self, delay: Duration) {
        self.state
            .page_delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// How many times `/companies/<idno>` was requested.
    pub fn page_hits(&self, idno: &str) -> u64 {
        self.state
            .counters
            .lock()
            .unwrap()
            .pages
            .get(idno)
            .copied()
            .unwrap_or(0)
    }

    /// How many times `/api/companies/<idno>` was requested (by the page's script).
    pub fn api_hits(&self, idno: &str) -> u64 {
        self.state
            .counters
            .lock()
            .unwrap()
            .api
            .get(idno)
            .copied()
            .unwrap_or(0)
    }
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Html("<html><body><h1>503 Service Unavailable</h1></body></html>"),
    )
        .into_response()
}

async fn page(State(s): State<Arc<SiteState>>, Path(idno): Path<String>) -> Response {
    *s.counters
        .lock()
        .unwrap()
        .pages
        .entry(idno.clone())
        .or_default() += 1;
    let delay = s.page_delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if s.down.load(Ordering::SeqCst) {
        return unavailable();
    }
    let body = match s.render {
        Render::Script => shell(&idno, s.script_delay_ms),
        Render::Server => {
            let company = s.companies.lock().unwrap().get(&idno).cloned();
            let content = match company {
                Some(c) => rendered(&c),
                None => "<div class=\"not-found\">Compania nu a fost găsită</div>".to_owned(),
            };
            layout(&content, "")
        }
    };
    Html(body).into_response()
}

async fn api(State(s): State<Arc<SiteState>>, Path(idno): Path<String>) -> Response {
    *s.counters
        .lock()
        .unwrap()
        .api
        .entry(idno.clone())
        .or_default() += 1;
    if s.down.load(Ordering::SeqCst) {
        return unavailable();
    }
    match s.companies.lock().unwrap().get(&idno).cloned() {
        Some(c) => Json(c).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"detail": "not found"})),
        )
            .into_response(),
    }
}

async fn redirect_away(State(_): State<Arc<SiteState>>) -> Response {
    // Another host name for the same server: still "another host" for the fetcher.
    (
        StatusCode::FOUND,
        [(header::LOCATION, "http://localhost:9/companies/1")],
    )
        .into_response()
}

async fn big(State(_): State<Arc<SiteState>>) -> Response {
    Html(format!(
        "<html><body>{}</body></html>",
        "<p>filler</p>".repeat(10_000)
    ))
    .into_response()
}

/// The page around the content: header, navigation and footer like a real site.
fn layout(content: &str, script: &str) -> String {
    format!(
        "<!doctype html><html lang=\"ro\"><head><meta charset=\"utf-8\"><title>OpenMoney (fixture)</title>\
         <style>body{{font-family:sans-serif}}</style></head><body>\
         <header><nav><a href=\"/\">Acasă</a> <a href=\"/companies\">Companii</a></nav></header>\
         <main id=\"app\">{content}</main><footer><p>Date publice</p></footer>{script}</body></html>"
    )
}

fn rendered(c: &FixtureCompany) -> String {
    let list = |xs: &[String]| {
        format!(
            "<ul>{}</ul>",
            xs.iter()
                .map(|x| format!("<li>{x}</li>"))
                .collect::<String>()
        )
    };
    let row = |label: &str, value: &str| format!("<tr><th>{label}</th><td>{value}</td></tr>");
    format!(
        "<h1>{}</h1><table class=\"company\" data-company>{}{}{}{}{}{}{}{}</table>",
        c.name,
        row("Denumirea completă", &c.name),
        row("IDNO / Cod fiscal", &c.idno),
        row("Forma organizatorico-juridică", &c.legal_form),
        row("Adresa juridică", &c.address),
        row("Data înregistrării", &c.registered),
        row("Statut", &c.status),
        row("Conducători", &list(&c.directors)),
        row("Genuri de activitate", &list(&c.activities)),
    )
}

/// The single-page-app shell: nothing but "loading" until the script has run.
fn shell(idno: &str, delay_ms: u64) -> String {
    let script = format!(
        r#"<script>
const idno = {idno:?};
setTimeout(async () => {{
  const app = document.getElementById('app');
  try {{
    const r = await fetch('/api/companies/' + idno);
    if (r.status === 404) {{ app.innerHTML = '<div class="not-found">Compania nu a fost găsită</div>'; return; }}
    if (!r.ok) {{ app.innerHTML = '<p class="error">Serviciul nu este disponibil</p>'; return; }}
    const c = await r.json();
    const row = (l, v) => '<tr><th>' + l + '</th><td>' + v + '</td></tr>';
    const list = xs => '<ul>' + xs.map(x => '<li>' + x + '</li>').join('') + '</ul>';
    app.innerHTML = '<h1>' + c.name + '</h1><table class="company" data-company>'
      + row('Denumirea completă', c.name) + row('IDNO / Cod fiscal', c.idno)
      + row('Forma organizatorico-juridică', c.legal_form) + row('Adresa juridică', c.address)
      + row('Data înregistrării', c.registered) + row('Statut', c.status)
      + row('Conducători', list(c.directors)) + row('Genuri de activitate', list(c.activities))
      + '</table>';
  }} catch (e) {{ app.innerHTML = '<p class="error">Eroare</p>'; }}
}}, {delay_ms});
</script>"#
    );
    layout("<p class=\"loading\">Se încarcă…</p>", &script)
}
