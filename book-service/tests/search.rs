//! Search, checked against the plain definition on every route: a title matches when its
//! normalised text contains every query word (its author every author word), and results come
//! in title order, page by page. A catalogue of made-up titles is searched through the store
//! and compared with a scan of the same rows in Rust, before and after titles are renamed.
//! SQLite always; PostgreSQL when `TEST_DATABASE_URL` is set.

use api::library::Isbn;
use book_service::search::{normalise, search_text, words};
use book_service::startup::open_database;
use book_service::store::search::{find_titles, route, Route, Search, MAX_TERMS_PER_WORD};
use book_service::store::terms::{self, Vocabulary};
use book_service::store::titles::{self, TitleText};
use book_service::store::Tx;
use service_kit::db::Db;
use service_kit::with_db;
use test_support::SplitMix;

/// Words of titles: common, rare, one inside others, and more than `MAX_TERMS_PER_WORD`
/// words sharing "ing".
const WORDS: &[&str] = &[
    "mer", "summer", "merle", "château", "perdue", "the", "of", "la", "nuit", "île", "sing",
    "ring", "king", "wing", "bring", "thing", "string", "spring", "swing", "sting", "cling",
    "fling", "sling", "wring", "ding", "ping", "zing", "bing", "rare",
];
const AUTHORS: &[&str] = &["Émile Zola", "Ion Creangă", "Ana Blandiana", "Zoë Müller"];

fn text(title: &str, author: &str, n: usize) -> TitleText {
    let isbn = Isbn::from_stem(&format!("978{n:09}"));
    TitleText {
        search_text: search_text(title, author, &isbn),
        author_key: normalise(author),
        sort_key: normalise(title),
        isbn: isbn.as_str().to_owned(),
        title: title.to_owned(),
        author: author.to_owned(),
    }
}

fn catalogue(count: usize) -> Vec<TitleText> {
    let mut rng = SplitMix(7);
    (0..count)
        .map(|n| {
            // "rare" in one title of fifty; the rest one to three words.
            let mut title: Vec<&str> = (0..1 + rng.next_u64() % 3)
                .map(|_| rng.pick(&WORDS[..WORDS.len() - 1]))
                .collect();
            if n % 50 == 7 {
                title.push("rare");
            }
            // Titles starting with "The" file together, as in a real catalogue.
            if n % 4 == 0 {
                title.insert(0, "The");
            }
            text(&title.join(" "), rng.pick(AUTHORS), n)
        })
        .collect()
}

/// Every stored title as (id, search text, author key, sort key).
async fn stored(db: &Db) -> Vec<(i64, String, String, String)> {
    with_db!(db, pool => sqlx::query_as(
        "SELECT id, search_text, author_key, sort_key FROM titles ORDER BY sort_key, id",
    )
    .fetch_all(pool)
    .await)
    .unwrap()
}

/// The ids `search` must give, by the definition.
fn expected(rows: &[(i64, String, String, String)], search: &Search) -> Vec<i64> {
    rows.iter()
        .filter(|(_, text, author, _)| {
            search.words.iter().all(|w| text.contains(w.as_str()))
                && search
                    .author_words
                    .iter()
                    .all(|w| author.contains(w.as_str()))
        })
        .map(|(id, ..)| *id)
        .collect()
}

/// Every result of `search`, read `page` at a time through the cursor.
async fn all_pages(db: &Db, vocabulary: &Vocabulary, mut search: Search, page: i64) -> Vec<i64> {
    search.limit = page;
    let mut ids = Vec::new();
    loop {
        let rows = find_titles(db, vocabulary, &search).await.unwrap();
        assert!(rows.len() as i64 <= page);
        ids.extend(rows.iter().map(|r| r.id));
        match rows.last() {
            Some(last) if rows.len() as i64 == page => {
                search.after = Some((last.sort_key.clone(), last.id));
            }
            _ => return ids,
        }
    }
}

fn query(q: &str, author: &str) -> Search {
    Search {
        words: words(q),
        author_words: words(author),
        ..Search::default()
    }
}

const QUERIES: &[(&str, &str)] = &[
    ("zola", ""),
    ("emile zola", ""),
    ("rare", ""),
    ("rare zola", ""),
    ("rare zola emile", ""),
    ("mer zola", ""),
    ("zola zol la", ""),
    ("ing rare", ""),
    ("rare", "zola"),
    ("mer", ""),
    ("summer", ""),
    ("merle chateau", ""),
    ("the", ""),
    ("the of", ""),
    ("la", ""),
    ("ing", ""),
    ("ing la", ""),
    ("978000000", ""),
    ("nosuchword", ""),
    ("ile nuit", ""),
    ("", "zoe"),
    ("perdue", "muller"),
];

async fn check_every_query(db: &Db, vocabulary: &Vocabulary, label: &str) {
    let rows = stored(db).await;
    for (q, author) in QUERIES {
        let search = query(q, author);
        let want = expected(&rows, &search);
        for page in [1, 7, 50] {
            let got = all_pages(db, vocabulary, search.clone(), page).await;
            assert_eq!(
                got, want,
                "{label}: q={q:?} author={author:?}, pages of {page}"
            );
        }
    }
}

#[tokio::test]
async fn every_route_gives_what_a_scan_of_the_catalogue_gives() {
    let dir = tempfile::tempdir().unwrap();
    for test_db in test_support::databases(dir.path(), "search_routes") {
        let name = test_db.name();
        let db = open_database(&test_db.config()).await.unwrap();
        let texts = catalogue(600);
        let mut tx = Tx::begin(&db).await.unwrap();
        titles::insert_many(&mut tx, &texts[..300], chrono::Utc::now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        // The rest one at a time, as librarians add them.
        for text in &texts[300..] {
            let mut tx = Tx::begin(&db).await.unwrap();
            titles::insert(&mut tx, text, chrono::Utc::now())
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }

        // Each route is taken by some query.
        let route_of = |q: &str| {
            let db = db.clone();
            let search = query(q, "");
            async move { route(&db, &Vocabulary::default(), &search).await.unwrap() }
        };
        let strings = |s: &[&str]| s.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        let terms = |read: &[&str], also: &[&str], settled: &[&str]| Route::Terms {
            read: strings(read),
            also: strings(also),
            settled: strings(settled),
        };
        assert_eq!(
            route_of("zola").await,
            terms(&["zola"], &[], &["zola"]),
            "{name}"
        );
        let Route::Terms {
            mut read,
            also,
            settled,
        } = route_of("mer zola").await
        else {
            panic!("{name}: mer is in three terms")
        };
        read.sort();
        if name == "postgres" {
            // Read side by side, zola in step with them: a merge join.
            assert_eq!(
                (read, also, settled),
                (
                    strings(&["mer", "merle", "summer"]),
                    strings(&["zola"]),
                    strings(&["mer", "zola"])
                ),
                "{name}"
            );
        } else {
            // The word held by fewer titles is read; the other in step or checked.
            assert!(
                read == ["mer", "merle", "summer"] || read == ["zola"],
                "{name}: {read:?} {also:?} {settled:?}"
            );
        }
        assert_eq!(
            route_of("rare zola").await,
            terms(&["rare"], &["zola"], &["rare", "zola"]),
            "{name}"
        );
        assert_eq!(
            route_of("zola zol la").await,
            terms(&["zola"], &[], &["zola", "zol"]),
            "{name}"
        );
        // A word in many terms, beside a rare one, is checked on each title.
        let Route::Terms { settled, .. } = route_of("ing rare").await else {
            panic!("{name}: rare is a term")
        };
        assert_eq!(settled, ["rare"], "{name}");
        assert_eq!(route_of("nosuchword zola").await, Route::Nothing, "{name}");
        assert_eq!(route_of("la").await, Route::Walk, "{name}");
        assert_eq!(route_of("978000000").await, Route::TextIndex, "{name}");
        // In more than MAX_TERMS_PER_WORD terms, held by few titles.
        assert!(WORDS.iter().filter(|w| w.contains("ing")).count() as i64 > MAX_TERMS_PER_WORD);
        assert_eq!(route_of("ing").await, Route::TextIndex, "{name}");

        // One vocabulary for both rounds: its kept lookups must follow the renames.
        let vocabulary = Vocabulary::default();
        check_every_query(&db, &vocabulary, name).await;

        // Renamed titles leave their old terms and join their new ones.
        for id in [1_i64, 2, 3, 8, 400] {
            let mut tx = Tx::begin(&db).await.unwrap();
            let before = titles::lock_text(&mut tx, id).await.unwrap().unwrap();
            let isbn = Isbn::parse(&before.isbn).unwrap();
            let after = text("Rare summer of the merle", "Ana Blandiana", 0);
            let after = TitleText {
                isbn: isbn.as_str().to_owned(),
                search_text: search_text(&after.title, &after.author, &isbn),
                ..after
            };
            titles::update(&mut tx, id, &before, &after, chrono::Utc::now())
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        check_every_query(&db, &vocabulary, &format!("{name}, after renaming")).await;
        db.close().await;
    }
}

#[tokio::test]
async fn kept_lookups_follow_new_terms_written_by_another_instance() {
    let dir = tempfile::tempdir().unwrap();
    for test_db in test_support::databases(dir.path(), "search_kept") {
        let name = test_db.name();
        let db = open_database(&test_db.config()).await.unwrap();
        let add = |title: &'static str, n: usize| {
            let db = db.clone();
            async move {
                let mut tx = Tx::begin(&db).await.unwrap();
                let id = titles::insert(&mut tx, &text(title, "Émile Zola", n), chrono::Utc::now())
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                id
            }
        };
        let this_instance = Vocabulary::default();
        let find = |q: &str| {
            let search = Search {
                limit: 50,
                ..query(q, "")
            };
            let (db, vocabulary) = (db.clone(), &this_instance);
            async move {
                let rows = find_titles(&db, vocabulary, &search).await.unwrap();
                rows.into_iter().map(|r| r.id).collect::<Vec<i64>>()
            }
        };
        let summer = add("Summer", 1).await;
        assert_eq!(find("mer").await, [summer], "{name}");
        assert_eq!(find("mermaid").await, Vec::<i64>::new(), "{name}");
        assert_eq!(find("zola").await, [summer], "{name}");

        // Another instance adds titles: one with a new term, one with known terms only.
        let before = terms::generation(&db).await.unwrap();
        let again = add("Summer", 2).await;
        assert_eq!(
            terms::generation(&db).await.unwrap(),
            before,
            "{name}: no new term"
        );
        assert_eq!(find("zola").await, [summer, again], "{name}");
        let mermaid = add("The Mermaid", 3).await;
        assert!(
            terms::generation(&db).await.unwrap() > before,
            "{name}: a new term"
        );
        // This instance's kept lookups for "mer" and "mermaid" are stale: it reads them again.
        assert_eq!(find("mermaid").await, [mermaid], "{name}");
        assert_eq!(find("mer").await, [summer, again, mermaid], "{name}");

        // The last title holding a term leaves it: the term is gone for searches.
        let mut tx = Tx::begin(&db).await.unwrap();
        let before_rename = titles::lock_text(&mut tx, mermaid).await.unwrap().unwrap();
        let isbn = Isbn::parse(&before_rename.isbn).unwrap();
        let renamed = TitleText {
            isbn: isbn.as_str().to_owned(),
            search_text: search_text("The Sea", "Émile Zola", &isbn),
            ..text("The Sea", "Émile Zola", 3)
        };
        titles::update(
            &mut tx,
            mermaid,
            &before_rename,
            &renamed,
            chrono::Utc::now(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(find("mermaid").await, Vec::<i64>::new(), "{name}");
        assert_eq!(find("mer").await, [summer, again], "{name}");
        db.close().await;
    }
}
