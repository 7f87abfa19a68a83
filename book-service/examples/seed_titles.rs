//! Seeds the catalogue with N titles (default 100 000) of made-up but realistic titles and
//! authors — some with diacritics — one copy each, in batched inserts; then times a few
//! searches, one at a time, with the route each takes (`store::search`), and prints the query
//! plan of one, to check that search stays fast and reads the indexes it should.
//!
//! ```sh
//! # PostgreSQL (tables in schema `bench`):
//! BOOK_SERVICE_DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/postgres \
//!   BOOK_SERVICE_DATABASE_SCHEMA=bench cargo run --release -p book-service --example seed_titles -- 100000
//! # SQLite (DATA_DIR/books.sqlite):
//! DATA_DIR=/tmp/bench cargo run --release -p book-service --example seed_titles
//! ```
//!
//! Seeding appends: run it against an empty database (ISBNs are numbered from 0); with N = 0
//! it only times the searches of a catalogue seeded before.

use std::time::Instant;

use api::library::Isbn;
use book_service::search::{normalise, search_text, words};
use book_service::store::search::{self, Route, Search};
use book_service::store::terms::Vocabulary;
use book_service::store::titles::{self, TitleText};
use book_service::store::Tx;
use service_kit::db::DbConfig;
use test_support::SplitMix;

/// Titles per INSERT statement (8 parameters each, well under both backends' limits).
const BATCH: usize = 1000;

const FIRST: &[&str] = &[
    "Émile",
    "Zoë",
    "José",
    "François",
    "Ștefan",
    "Łukasz",
    "Søren",
    "Antonín",
    "Mihai",
    "Ana",
    "Jürgen",
    "Inès",
    "Björn",
    "Renée",
    "Ion",
    "Marta",
    "Hélène",
    "Dmitri",
    "Agnès",
    "Paulo",
    "Chloé",
    "Tomás",
    "Ioana",
    "Gérard",
    "Lucía",
    "Ömer",
    "Nathalie",
    "Jiří",
    "Zsófia",
    "Olaf",
];
const LAST: &[&str] = &[
    "Zola",
    "Dvořák",
    "Müller",
    "Eminescu",
    "Creangă",
    "Kierkegaard",
    "García",
    "Núñez",
    "Sienkiewicz",
    "Brâncuși",
    "Čapek",
    "Hugo",
    "Balzac",
    "Flaubert",
    "Proust",
    "Pessoa",
    "Tolstoï",
    "Ibsen",
    "Lagerlöf",
    "Sadoveanu",
    "Rebreanu",
    "Mann",
    "Böll",
    "Camus",
    "Duras",
    "Yourcenar",
    "Kundera",
    "Hašek",
    "Szymborska",
    "Andrić",
];
const NOUNS: &[&str] = &[
    "histoire",
    "mer",
    "nuit",
    "château",
    "forêt",
    "rivière",
    "été",
    "hiver",
    "cœur",
    "âme",
    "dreams",
    "garden",
    "river",
    "winter",
    "letters",
    "journey",
    "house",
    "silence",
    "mirror",
    "tară",
    "pădure",
    "luceafăr",
    "Straße",
    "Mädchen",
    "Schloss",
    "ciudad",
    "corazón",
    "canción",
    "island",
    "shadow",
    "memory",
    "empire",
    "sea",
    "stars",
    "bread",
    "salt",
    "wolves",
    "bridge",
];
const ADJECTIVES: &[&str] = &[
    "perdue",
    "noire",
    "dernière",
    "éternel",
    "secret",
    "long",
    "silent",
    "broken",
    "golden",
    "forgotten",
    "sălbatic",
    "frumoasă",
    "dunkle",
    "große",
    "última",
    "blanca",
    "hidden",
    "wild",
];
const PATTERNS: usize = 5;

fn title(rng: &mut SplitMix) -> String {
    let (n1, n2, adj) = (rng.pick(NOUNS), rng.pick(NOUNS), rng.pick(ADJECTIVES));
    match rng.next_u64() as usize % PATTERNS {
        0 => format!("{n1} {adj}"),
        1 => format!("The {n1} of {n2}"),
        2 => format!("La {n1} et le {n2}"),
        3 => format!("{} {adj}", capitalise(n1)),
        _ => format!("{} and {n2}", capitalise(n1)),
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn text(rng: &mut SplitMix, n: usize) -> TitleText {
    let title = title(rng);
    let author = format!("{} {}", rng.pick(FIRST), rng.pick(LAST));
    let isbn = Isbn::from_stem(&format!("978{n:09}"));
    TitleText {
        search_text: search_text(&title, &author, &isbn),
        author_key: normalise(&author),
        sort_key: normalise(&title),
        isbn: isbn.as_str().to_owned(),
        title,
        author,
    }
}

fn main() -> std::process::ExitCode {
    common::bin::run("seed_titles", common::bin::Runtime::FromEnv, |rt| {
        rt.block_on(seed())
    })
}

async fn seed() -> Result<(), common::bin::BoxError> {
    let count: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(100_000);
    let config = DbConfig::from_env("BOOK_SERVICE", "books.sqlite")?;
    let db = book_service::startup::open_database(&config).await?;
    println!("backend: {}", db.backend_name());

    let started = Instant::now();
    let mut rng = SplitMix(20_260_301);
    let now = chrono::Utc::now();
    let mut n = 0;
    while n < count {
        let batch: Vec<TitleText> = (n..(n + BATCH).min(count))
            .map(|i| text(&mut rng, i))
            .collect();
        let mut tx = Tx::begin(&db).await?;
        titles::insert_many(&mut tx, &batch, now).await?;
        tx.commit().await?;
        n += batch.len();
    }
    println!(
        "seeded {count} titles in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // As book-service keeps them: repeated queries use kept vocabulary lookups.
    let vocabulary = Vocabulary::default();
    // Fresh statistics, as autovacuum would gather them soon after a bulk load.
    titles::refresh_statistics(&db).await?;

    // Then the hard cases: a word in ~20 % of titles, all filed under one letter; one too short
    // for the vocabulary in ~40 %; one in two terms; a part of an ISBN (numbers are no terms).
    for query in [
        "zola",
        "Émile Zola",
        "dvorak",
        "ZOLA mer",
        "chateau perdue",
        "hist",
        "pădure",
        "no such title",
        "the",
        "la",
        "mer",
        "9780000421",
    ] {
        let search = Search {
            words: words(query),
            limit: 21,
            ..Search::default()
        };
        let route = match search::route(&db, &vocabulary, &search).await? {
            Route::Terms { read, also, .. } => {
                format!("terms ({} read, {} in step)", read.len(), also.len())
            }
            other => format!("{other:?}"),
        };
        let mut times = Vec::new();
        let mut found = 0;
        for _ in 0..5 {
            let t = Instant::now();
            found = search::find_titles(&db, &vocabulary, &search).await?.len();
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "q={query:?}: {found} rows (first page) by {route}, median {:.2} ms, best {:.2} ms",
            times[times.len() / 2],
            times[0]
        );
    }
    let by_author = Search {
        author_words: words("müller"),
        limit: 21,
        ..Search::default()
    };
    let t = Instant::now();
    let found = search::find_titles(&db, &vocabulary, &by_author)
        .await?
        .len();
    println!(
        "author=müller: {found} rows, {:.2} ms",
        t.elapsed().as_secs_f64() * 1e3
    );

    let plan = Search {
        words: words("Émile Zola"),
        limit: 21,
        ..Search::default()
    };
    println!("\nplan of q=\"Émile Zola\":");
    for line in search::explain(&db, &vocabulary, &plan).await?.1 {
        println!("  {line}");
    }
    db.close().await;
    Ok(())
}
