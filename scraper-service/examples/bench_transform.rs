//! Transform throughput on a realistic company page (~200 KB: site chrome, inline scripts and
//! styles, a long related-companies table, and the details table): one page at a time on one
//! thread, then batches on every core the way a re-transform run parses them (the floor of
//! its end-to-end rate: no database, no cache).
//!
//! `cargo run --release -p scraper-service --example bench_transform [ITERATIONS] [THREADS]`

use std::time::Instant;

use scraper_service::retransform::pool::transform_batch;
use scraper_service::store::pages::{StoredHtml, StoredPage};
use scraper_service::transform::transform;

// The allocator the service runs with: the parse allocates a node per element.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const IDNO: &str = "1008600038413";

/// A page shaped like a real company page of a single-page app after rendering.
fn realistic_page() -> String {
    let mut nav = String::new();
    for i in 0..300 {
        nav.push_str(&format!("<li class=\"nav-item\"><a class=\"nav-link\" href=\"/categorii/{i}\">Categoria {i} – Activități economice</a></li>\n"));
    }
    let script: String = (0..1500)
        .map(|i| format!("function f{i}(a,b){{return a*{i}+b-\"Denumirea\".length;}}\n"))
        .collect();
    let style: String = (0..600)
        .map(|i| format!(".c{i}{{margin:{i}px;padding:2px}}\n"))
        .collect();
    let mut related = String::new();
    for i in 0..400 {
        related.push_str(&format!(
            "<tr><td><a href=\"/companies/10086000{i:05}\">Firma Înrudită Nr. {i} SRL</a></td><td>mun. Chişinău, str. Ştefan cel Mare {i}</td><td>Activă</td></tr>\n"
        ));
    }
    format!(
        "<!DOCTYPE html><html lang=\"ro\"><head><meta charset=\"utf-8\"><title>Exemplu Comerț SRL — OpenMoney</title>\
         <style>{style}</style><script>{script}</script></head><body>\
         <header class=\"site\"><nav><ul class=\"nav\">{nav}</ul></nav></header>\
         <main id=\"app\"><section class=\"company-details\"><h1>Exemplu Comerț SRL</h1>\
         <table class=\"company\" data-company><tbody>\
         <tr><th>Denumirea completă</th><td>Exemplu Comerț SRL</td></tr>\
         <tr><th>IDNO / Cod fiscal</th><td>1008600038413</td></tr>\
         <tr><th>Forma organizatorico-juridică</th><td>Societate cu Răspundere Limitată</td></tr>\
         <tr><th>Adresa juridică</th><td>mun. Chişinău, str. Ştefan cel Mare şi Sfînt 1, of. 2</td></tr>\
         <tr><th>Data înregistrării</th><td>12.03.2003</td></tr><tr><th>Statut</th><td>Activă</td></tr>\
         <tr><th>Conducători</th><td><ul><li>Ion Popescu</li><li>Maria Rusu</li></ul></td></tr>\
         <tr><th>Genuri de activitate</th><td><ul><li>47.11 Comerț cu amănuntul</li><li>62.01 Activități de realizare a soft-ului</li></ul></td></tr>\
         </tbody></table></section>\
         <section class=\"related\"><h2>Companii înrudite</h2><table class=\"related\"><thead><tr><th>Denumire</th><th>Adresă</th><th>Stare</th></tr></thead><tbody>{related}</tbody></table></section>\
         </main><footer><p>Date publice din Registrul de stat</p></footer></body></html>"
    )
}

fn main() {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let threads: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let page = realistic_page();
    let idno = api::scrape::Idno::parse(IDNO).expect("a valid IDNO");
    let company = transform(&page, &idno).expect("the benchmark page parses");
    assert_eq!(company.company_name.as_deref(), Some("Exemplu Comerț SRL"));
    assert_eq!(company.directors.len(), 2);

    for _ in 0..5 {
        let _ = transform(&page, &idno);
    }
    let started = Instant::now();
    for _ in 0..iterations {
        std::hint::black_box(transform(std::hint::black_box(&page), &idno).ok());
    }
    let secs = started.elapsed().as_secs_f64();
    let kb = page.len() as f64 / 1024.0;
    println!("page size:      {kb:.1} KiB");
    println!("iterations:     {iterations}");
    println!("per page:       {:.2} ms", secs * 1e3 / iterations as f64);
    println!("throughput:     {:.1} pages/s", iterations as f64 / secs);
    println!(
        "throughput:     {:.1} MB/s",
        (page.len() * iterations) as f64 / secs / 1e6
    );

    // Batches of 128, as a run reads them, on `threads` threads.
    let batch = |first: usize, n: usize| -> Vec<StoredHtml> {
        (first..first + n)
            .map(|i| StoredHtml {
                page: StoredPage {
                    id: i as i64 + 1,
                    url: None,
                    fetched_at: None,
                },
                idno: Some(IDNO.to_owned()),
                raw_html: Some(page.clone()),
            })
            .collect()
    };
    let batches: Vec<Vec<StoredHtml>> = (0..iterations)
        .step_by(128)
        .map(|first| batch(first, 128.min(iterations - first)))
        .collect();
    let started = Instant::now();
    for pages in batches {
        let n = pages.len();
        assert_eq!(transform_batch(pages, threads).records.len(), n);
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "all cores:      {:.1} pages/s on {threads} threads (batches of 128)",
        iterations as f64 / secs
    );
}
