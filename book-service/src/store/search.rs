//! Searching the catalogue: the titles whose normalised text contains every query word
//! (`crate::search`), in title order (sort key, then id), a page at a time.
//!
//! A page is cheap only when its rows are read in title order and the reading stops once the
//! page is full; an index that finds every match and then sorts them all (trigrams, FTS) costs
//! as much as there are matches. So each search takes one of three routes ([`route`]):
//!
//! - [`Route::Terms`]: the query words are looked up in the vocabulary ([`super::terms`]); the
//!   titles listed under the terms containing the word held by the fewest titles are read in
//!   title order, one index range per term, in step with the range of every other word found
//!   in one term only, and each checked for every word. What a page costs is the rows read
//!   until it is full, whatever the number of matches.
//! - [`Route::Walk`]: every title in title order (the `titles_sort` index), each checked for
//!   every word: for queries with no word of the vocabulary (only words of one or two
//!   letters, or an exact ISBN) and for very common words, where a page fills quickly.
//! - [`Route::TextIndex`]: the trigram index (pg_trgm GIN on PostgreSQL, FTS5 on SQLite) finds
//!   every match, then they are sorted: numbers (parts of an ISBN), which are not terms, and
//!   words found in many terms held by few titles.

use service_kit::db::Db;
use service_kit::with_db;

use super::terms::{self, Vocabulary};
use super::titles::{BookRow, BOOK_COLUMNS};
use super::{bind_all, Bind, StoreError};
use crate::search::is_term;

/// Most terms a query word is looked up in before the word counts as too widespread to read
/// term by term.
pub const MAX_TERMS_PER_WORD: i64 = 16;
/// Most terms of a word that PostgreSQL reads side by side in preference to checking the word
/// on each title.
pub const MAX_TERMS_READ_TOGETHER: i64 = 4;
/// Titles holding a widespread word (one in more than [`MAX_TERMS_PER_WORD`] terms) from which
/// on walking the titles in order beats the trigram index: a page fills within a few hundred
/// titles.
pub const COMMON_WORD_TITLES: i64 = 1000;

/// What to search for, already normalised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Search {
    /// Each must occur in the search text.
    pub words: Vec<String>,
    /// Each must occur in the author.
    pub author_words: Vec<String>,
    /// An exact ISBN-13.
    pub isbn: Option<String>,
    /// Only titles with a copy available now.
    pub available: bool,
    /// Only titles after this (sort key, id): the cursor.
    pub after: Option<(String, i64)>,
    /// At most this many rows.
    pub limit: i64,
}

/// How a search is answered (see the module's documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A query word occurs in no term: nothing can match.
    Nothing,
    /// The titles listed under the terms of `read` (each containing the query's rarest word)
    /// that are also listed under every term of `also` (the only term containing another
    /// query word). The query words these terms answer exactly (`settled`) need no other
    /// check; the rest are checked on each title.
    Terms {
        read: Vec<String>,
        also: Vec<String>,
        settled: Vec<String>,
    },
    /// Every title in order.
    Walk,
    /// The trigram index, then a sort.
    TextIndex,
}

/// The route of `search`: one vocabulary lookup for the query words that are terms.
#[tracing::instrument(skip_all)]
pub async fn route(db: &Db, vocabulary: &Vocabulary, search: &Search) -> Result<Route, StoreError> {
    Ok(plan(db, vocabulary, search).await?.0)
}

/// The route of `search`, and the generation the kept lookups it rests on are valid at (see
/// [`Vocabulary`]), if it rests on kept ones.
async fn plan(
    db: &Db,
    vocabulary: &Vocabulary,
    search: &Search,
) -> Result<(Route, Option<i64>), StoreError> {
    let all_words = || search.words.iter().chain(&search.author_words);
    if search.isbn.is_some() {
        // One title at most, found by the ISBN's unique index.
        return Ok((Route::Walk, None));
    }
    // Title words first: only they can be settled by the terms (author words are checked
    // against the author).
    let words: Vec<&str> = all_words()
        .filter(|w| is_term(w))
        .map(String::as_str)
        .collect();
    let title_words = search.words.iter().filter(|w| is_term(w)).count();
    let (found, kept_at) = if words.is_empty() {
        (Vec::new(), None)
    } else {
        let looked = vocabulary
            .look_up(db, &words, MAX_TERMS_PER_WORD + 1)
            .await?;
        (looked.found, looked.kept_at)
    };
    if found.iter().any(Vec::is_empty) {
        return Ok((Route::Nothing, kept_at));
    }
    let titles = |terms: &[terms::Term]| terms.iter().map(|t| t.titles).sum::<i64>();
    let narrow = |terms: &Vec<terms::Term>| terms.len() as i64 <= MAX_TERMS_PER_WORD;
    let common = found
        .iter()
        .any(|terms| !narrow(terms) && titles(terms) >= COMMON_WORD_TITLES);
    // The word to read: the one held by the fewest titles; on PostgreSQL, one in a few terms
    // first if there is one, since the words found in one term are then all read in step (a
    // merge join of index ranges) instead of checked on each title. SQLite has no merge join:
    // reading in step is a lookup per row there, no cheaper than the check.
    let merges = matches!(db, Db::Postgres(_));
    let Some(rarest) = (0..found.len())
        .filter(|&i| narrow(&found[i]))
        .min_by_key(|&i| {
            let terms = found[i].len() as i64;
            let few = merges && (2..=MAX_TERMS_READ_TOGETHER).contains(&terms);
            (!few, titles(&found[i]))
        })
    else {
        let route = if common {
            Route::Walk
        } else if all_words().any(|w| w.chars().count() >= 3) {
            // Numbers of three digits or more: the trigram index narrows them down.
            Route::TextIndex
        } else {
            Route::Walk
        };
        return Ok((route, kept_at));
    };
    let read: Vec<String> = found[rarest].iter().map(|t| t.term.clone()).collect();
    let mut settled = Vec::new();
    if rarest < title_words {
        settled.push(words[rarest].to_owned());
    }
    let mut also = Vec::new();
    for (i, terms) in found.iter().enumerate() {
        if i == rarest || terms.len() != 1 {
            continue;
        }
        if read != [terms[0].term.as_str()] {
            also.push(terms[0].term.clone());
        }
        if i < title_words {
            settled.push(words[i].to_owned());
        }
    }
    also.sort_unstable();
    also.dedup();
    let route = Route::Terms {
        read,
        also,
        settled,
    };
    Ok((route, kept_at))
}

/// A row of a search's page: a title, and the terms' generation the page was read at.
#[derive(sqlx::FromRow)]
struct PageRow {
    #[sqlx(flatten)]
    book: BookRow,
    generation: i64,
}

/// The titles matching `search`, in order. A search resting on kept vocabulary lookups whose
/// generation has moved by the time its page is read is run again with fresh ones.
#[tracing::instrument(skip_all, fields(words = search.words.len(), limit = search.limit))]
pub async fn find_titles(
    db: &Db,
    vocabulary: &Vocabulary,
    search: &Search,
) -> Result<Vec<BookRow>, StoreError> {
    loop {
        let (route, kept_at) = plan(db, vocabulary, search).await?;
        let rows: Vec<PageRow> = if route == Route::Nothing {
            Vec::new()
        } else {
            let (sql, binds) = statement(db, search, &route);
            with_db!(db, pool => bind_all!(sqlx::query_as(&sql), &binds).fetch_all(pool).await)?
        };
        if let Some(kept_at) = kept_at {
            let now = match rows.first() {
                Some(row) => row.generation,
                None => terms::generation(db).await?,
            };
            if now != kept_at {
                // The next plan reads the words afresh: this loop runs twice at most.
                vocabulary.forget();
                continue;
            }
        }
        return Ok(rows.into_iter().map(|row| row.book).collect());
    }
}

/// The route of `search` and the plan of its statement (PostgreSQL: `EXPLAIN ANALYZE`,
/// SQLite: `EXPLAIN QUERY PLAN`), one line per row: to check that searches use the indexes.
#[tracing::instrument(skip_all)]
pub async fn explain(
    db: &Db,
    vocabulary: &Vocabulary,
    search: &Search,
) -> Result<(Route, Vec<String>), StoreError> {
    let route = route(db, vocabulary, search).await?;
    if route == Route::Nothing {
        return Ok((route, Vec::new()));
    }
    let (sql, binds) = statement(db, search, &route);
    let lines = match db {
        Db::Postgres(pool) => {
            let sql = format!("EXPLAIN (ANALYZE, BUFFERS) {sql}");
            let rows: Vec<(String,)> = bind_all!(sqlx::query_as(&sql), &binds)
                .fetch_all(pool)
                .await?;
            rows.into_iter().map(|(line,)| line).collect()
        }
        Db::Sqlite(pool) => {
            let sql = format!("EXPLAIN QUERY PLAN {sql}");
            let rows: Vec<(i64, i64, i64, String)> = bind_all!(sqlx::query_as(&sql), &binds)
                .fetch_all(pool)
                .await?;
            rows.into_iter().map(|(_, _, _, detail)| detail).collect()
        }
    };
    Ok((route, lines))
}

/// The terms' generation, read with a page (in the same snapshot).
const GENERATION: &str = "(SELECT n FROM terms_generation WHERE id = 1) AS generation";

/// A statement's parameters, numbered as they are added.
#[derive(Default)]
struct Params(Vec<Bind>);

impl Params {
    fn add(&mut self, value: Bind) -> String {
        self.0.push(value);
        format!("${}", self.0.len())
    }
}

/// The statement and its parameters for `search` along `route` on `db`'s backend.
fn statement(db: &Db, search: &Search, route: &Route) -> (String, Vec<Bind>) {
    let mut params = Params::default();
    let sql = match route {
        Route::Terms {
            read,
            also,
            settled,
        } => {
            let checks = checks(db, search, &mut params, Checks::Plain { settled });
            let limit = params.add(Bind::Int(search.limit));
            let after = after(search, &mut params, "d.sort_key, d.title_id");
            // Read in step with the main range: a merge of two ranges in one order.
            let also: String = also
                .iter()
                .map(|term| {
                    let term = params.add(Bind::Text(term.clone()));
                    format!(
                        " AND EXISTS (SELECT 1 FROM title_terms e WHERE e.term = {term} \
                         AND e.sort_key = d.sort_key AND e.title_id = d.title_id)"
                    )
                })
                .collect();
            // The titles themselves are read only for what is left to check.
            let join = if checks.is_empty() {
                ""
            } else {
                " JOIN titles t ON t.id = d.title_id"
            };
            let arms: Vec<String> = read
                .iter()
                .enumerate()
                .map(|(n, term)| {
                    let term = params.add(Bind::Text(term.clone()));
                    format!(
                        "SELECT * FROM (SELECT d.sort_key, d.title_id FROM title_terms d{join} \
                         WHERE d.term = {term}{after}{also}{checks} \
                         ORDER BY d.sort_key, d.title_id LIMIT {limit}) AS arm{n}",
                        after = after.as_deref().unwrap_or(""),
                    )
                })
                .collect();
            // Each term's range gives its first page; a title under two of the terms comes
            // twice. The first `limit` of them all, once each, are the page, and only its
            // titles are read in full.
            format!(
                "SELECT {BOOK_COLUMNS}, {GENERATION} FROM titles t JOIN (SELECT DISTINCT sort_key, title_id \
                 FROM ({arms}) AS found ORDER BY sort_key, title_id LIMIT {limit}) AS page \
                 ON t.id = page.title_id ORDER BY page.sort_key, page.title_id",
                arms = arms.join(" UNION ALL "),
            )
        }
        Route::Walk | Route::TextIndex => {
            let how = if *route == Route::TextIndex {
                Checks::Indexed
            } else {
                Checks::Plain { settled: &[] }
            };
            let checks = checks(db, search, &mut params, how);
            let after = after(search, &mut params, "t.sort_key, t.id");
            let limit = params.add(Bind::Int(search.limit));
            format!(
                "SELECT {BOOK_COLUMNS}, {GENERATION} FROM titles t WHERE 1 = 1{checks}{after} \
                 ORDER BY t.sort_key, t.id LIMIT {limit}",
                after = after.as_deref().unwrap_or(""),
            )
        }
        Route::Nothing => unreachable!("a search with no route runs no statement"),
    };
    (sql, params.0)
}

/// ` AND (<columns>) > (cursor)`: the rows after the cursor, when there is one; `columns` are
/// the sort key and id of the range read.
fn after(search: &Search, params: &mut Params, columns: &str) -> Option<String> {
    search.after.as_ref().map(|(sort_key, id)| {
        let k = params.add(Bind::Text(sort_key.clone()));
        let i = params.add(Bind::Int(*id));
        format!(" AND ({columns}) > ({k}, {i})")
    })
}

/// How [`checks`] writes the query words.
#[derive(Clone, Copy)]
enum Checks<'a> {
    /// For the trigram index (`LIKE` on PostgreSQL, an FTS5 match on SQLite).
    Indexed,
    /// As plain string searches, which no index serves, so that the database reads the rows
    /// in the order the route chose; the title words of `settled` are left out.
    Plain { settled: &'a [String] },
}

/// The conditions every result meets, each starting with ` AND `.
fn checks(db: &Db, search: &Search, params: &mut Params, how: Checks<'_>) -> String {
    let mut sql = String::new();
    let mut fts_terms = Vec::new();
    for (column, words) in [
        ("search_text", &search.words),
        ("author_key", &search.author_words),
    ] {
        for word in words {
            let indexed = match how {
                Checks::Indexed => true,
                Checks::Plain { settled } => {
                    if column == "search_text" && settled.contains(word) {
                        continue;
                    }
                    false
                }
            };
            match (db, indexed) {
                (Db::Postgres(_), true) => {
                    let p = params.add(Bind::Text(format!("%{word}%")));
                    sql.push_str(&format!(" AND t.{column} LIKE {p}"));
                }
                (Db::Sqlite(_), true) if word.chars().count() >= 3 => {
                    // Normalised words hold letters and digits only: safe in quotes.
                    fts_terms.push(format!("{column} : \"{word}\""));
                }
                (Db::Postgres(_), false) => {
                    let p = params.add(Bind::Text(word.clone()));
                    sql.push_str(&format!(" AND strpos(t.{column}, {p}) > 0"));
                }
                (Db::Sqlite(_), _) => {
                    let p = params.add(Bind::Text(word.clone()));
                    sql.push_str(&format!(" AND instr(t.{column}, {p}) > 0"));
                }
            }
        }
    }
    if !fts_terms.is_empty() {
        let p = params.add(Bind::Text(fts_terms.join(" AND ")));
        sql.push_str(&format!(
            " AND t.id IN (SELECT rowid FROM titles_fts WHERE titles_fts MATCH {p})"
        ));
    }
    if let Some(isbn) = &search.isbn {
        let p = params.add(Bind::Text(isbn.clone()));
        sql.push_str(&format!(" AND t.isbn = {p}"));
    }
    if search.available {
        sql.push_str(
            " AND EXISTS (SELECT 1 FROM copies c WHERE c.title_id = t.id AND c.status = 'available')",
        );
    }
    sql
}
