//! `terms` and `title_terms`: the catalogue's vocabulary (see `crate::search::is_term`), each
//! term with its count and with the titles holding it in title order. Written in the same
//! transaction as the titles ([`super::titles`]); read by [`super::search`].

use service_kit::db::Db;
use service_kit::with_db;

use super::{bind_all, Bind, StoreError, Tx};
use crate::with_tx;

/// Rows per multi-row statement (3 parameters each: well under both backends' limits).
const ROWS_PER_STATEMENT: usize = 2000;

/// The terms of one title, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TitleTerms<'a> {
    pub title_id: i64,
    pub sort_key: &'a str,
    /// Distinct and sorted (`crate::search::terms`).
    pub terms: Vec<String>,
}

/// Lists each title under its terms and counts it in them.
#[tracing::instrument(skip_all, fields(titles = titles.len()))]
pub async fn add(tx: &mut Tx, titles: &[TitleTerms<'_>]) -> Result<(), StoreError> {
    let mut rows = Vec::new();
    let mut counts = std::collections::BTreeMap::<&str, i64>::new();
    for title in titles {
        for term in &title.terms {
            rows.push((term.as_str(), title.sort_key, title.title_id));
            *counts.entry(term.as_str()).or_default() += 1;
        }
    }
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut sql = String::from("INSERT INTO title_terms (term, sort_key, title_id) VALUES ");
        let mut binds = Vec::with_capacity(chunk.len() * 3);
        for (i, (term, sort_key, id)) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            let n = binds.len();
            sql.push_str(&format!("(${}, ${}, ${})", n + 1, n + 2, n + 3));
            binds.push(Bind::Text((*term).to_owned()));
            binds.push(Bind::Text((*sort_key).to_owned()));
            binds.push(Bind::Int(*id));
        }
        with_tx!(tx, conn => bind_all!(sqlx::query(&sql), &binds).execute(conn).await.map(|r| r.rows_affected()))?;
    }
    // In term order (a BTreeMap's), so that concurrent writers lock the rows in one order.
    let counts: Vec<(&str, i64)> = counts.into_iter().collect();
    count(tx, &counts).await
}

/// Takes a title off its terms (before its text changes).
#[tracing::instrument(skip_all, fields(id = title.title_id))]
pub async fn remove(tx: &mut Tx, title: &TitleTerms<'_>) -> Result<(), StoreError> {
    if title.terms.is_empty() {
        return Ok(());
    }
    let mut sql =
        String::from("DELETE FROM title_terms WHERE title_id = $1 AND sort_key = $2 AND term IN (");
    let mut binds = vec![
        Bind::Int(title.title_id),
        Bind::Text(title.sort_key.to_owned()),
    ];
    for (i, term) in title.terms.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        binds.push(Bind::Text(term.clone()));
        sql.push_str(&format!("${}", binds.len()));
    }
    sql.push(')');
    with_tx!(tx, conn => bind_all!(sqlx::query(&sql), &binds).execute(conn).await.map(|r| r.rows_affected()))?;
    let counts: Vec<(&str, i64)> = title.terms.iter().map(|t| (t.as_str(), -1)).collect();
    count(tx, &counts).await
}

/// Adds each delta to its term's count, creating the terms not seen before; moves the
/// generation on when a term appears or its last title leaves it.
async fn count(tx: &mut Tx, deltas: &[(&str, i64)]) -> Result<(), StoreError> {
    let mut changed = false;
    for chunk in deltas.chunks(ROWS_PER_STATEMENT) {
        let mut sql = String::from("INSERT INTO terms (term, titles) VALUES ");
        let mut binds = Vec::with_capacity(chunk.len() * 2);
        for (i, (term, delta)) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            let n = binds.len();
            sql.push_str(&format!("(${}, ${})", n + 1, n + 2));
            binds.push(Bind::Text((*term).to_owned()));
            binds.push(Bind::Int(*delta));
        }
        sql.push_str(
            " ON CONFLICT (term) DO UPDATE SET titles = terms.titles + excluded.titles \
             RETURNING term, titles",
        );
        let counted: Vec<(String, i64)> =
            with_tx!(tx, conn => bind_all!(sqlx::query_as(&sql), &binds).fetch_all(conn).await)?;
        let delta_of: std::collections::HashMap<&str, i64> = chunk.iter().copied().collect();
        changed |= counted.iter().any(|(term, titles)| {
            let delta = delta_of.get(term.as_str()).copied().unwrap_or(0);
            // Held by nobody before (0 + delta), or by nobody now.
            (delta > 0 && *titles == delta) || (delta < 0 && *titles == 0)
        });
    }
    if changed {
        with_tx!(tx, conn => sqlx::query("UPDATE terms_generation SET n = n + 1 WHERE id = 1")
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// A term and how many titles hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub term: String,
    pub titles: i64,
}

/// For each of `words` (each a term itself: `crate::search::is_term`), at most `limit` terms
/// containing it that some title holds, in no particular order, and the generation they were
/// read at: one statement for them all. `words` is not empty ([`Vocabulary::look_up`] answers
/// an empty list from memory).
#[tracing::instrument(skip_all, fields(words = words.len(), limit))]
async fn containing_each(
    db: &Db,
    words: &[&str],
    limit: i64,
) -> Result<(i64, Vec<Vec<Term>>), StoreError> {
    let mut binds = vec![Bind::Int(limit)];
    let mut arms: Vec<String> = words
        .iter()
        .enumerate()
        .map(|(n, word)| {
            let (pattern, matching) = match db {
                Db::Postgres(_) => (format!("%{word}%"), "term LIKE"),
                // Normalised words hold letters and digits only: safe in quotes.
                Db::Sqlite(_) => (
                    format!("\"{word}\""),
                    "id IN (SELECT rowid FROM terms_fts WHERE terms_fts MATCH",
                ),
            };
            binds.push(Bind::Text(pattern));
            let close = if matches!(db, Db::Sqlite(_)) { ")" } else { "" };
            format!(
                "SELECT * FROM (SELECT CAST({n} AS BIGINT) AS word, term, titles FROM terms \
                 WHERE {matching} ${p}{close} AND titles > 0 LIMIT $1) AS word{n}",
                p = binds.len(),
            )
        })
        .collect();
    // Last, so that the first arm names the columns' types: the generation, as word -1.
    arms.push(
        "SELECT * FROM (SELECT CAST(-1 AS BIGINT) AS word, '' AS term, n AS titles \
         FROM terms_generation WHERE id = 1) AS generation"
            .to_owned(),
    );
    let sql = arms.join(" UNION ALL ");
    let rows: Vec<(i64, String, i64)> =
        with_db!(db, pool => bind_all!(sqlx::query_as(&sql), &binds).fetch_all(pool).await)?;
    let mut generation = 0;
    let mut found = vec![Vec::new(); words.len()];
    for (word, term, titles) in rows {
        match usize::try_from(word).ok().and_then(|w| found.get_mut(w)) {
            Some(terms) => terms.push(Term { term, titles }),
            None => generation = titles,
        }
    }
    Ok((generation, found))
}

/// The terms' generation now.
#[tracing::instrument(skip_all)]
pub async fn generation(db: &Db) -> Result<i64, StoreError> {
    let (n,): (i64,) = with_db!(db, pool => sqlx::query_as(
        "SELECT n FROM terms_generation WHERE id = 1",
    )
    .fetch_one(pool)
    .await)?;
    Ok(n)
}

/// Most query words whose lookups a [`Vocabulary`] keeps (it starts afresh beyond).
const MAX_KEPT_WORDS: usize = 10_000;

/// The lookups of query words among the terms (one statement for a search's words), kept in
/// memory while the terms' generation stays the same: a search whose words were all looked up
/// before reads only its page, and checks with it that the generation has not moved
/// ([`Looked::kept_at`]).
/// One per process; the generation lives in the database, so every instance sees another's
/// new terms at its next search.
#[derive(Debug, Default)]
pub struct Vocabulary {
    kept: std::sync::Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    generation: i64,
    words: std::collections::HashMap<String, Vec<Term>>,
}

/// What [`Vocabulary::look_up`] found.
#[derive(Debug)]
pub struct Looked {
    /// For each word, the terms containing it.
    pub found: Vec<Vec<Term>>,
    /// `Some(generation)` when the lookups were kept ones, valid only if the generation is
    /// still this one; `None` when they were read just now.
    pub kept_at: Option<i64>,
}

impl Vocabulary {
    /// The terms containing each of `words` (at most `limit` each), kept or read.
    pub async fn look_up(&self, db: &Db, words: &[&str], limit: i64) -> Result<Looked, StoreError> {
        {
            let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
            let found: Option<Vec<Vec<Term>>> =
                words.iter().map(|w| kept.words.get(*w).cloned()).collect();
            if let Some(found) = found {
                return Ok(Looked {
                    found,
                    kept_at: Some(kept.generation),
                });
            }
        }
        let (generation, found) = containing_each(db, words, limit).await?;
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        // A lookup older than the kept ones (another search read newer meanwhile) is not kept.
        if generation >= kept.generation {
            if generation > kept.generation || kept.words.len() + words.len() > MAX_KEPT_WORDS {
                kept.words.clear();
                kept.generation = generation;
            }
            for (word, terms) in words.iter().zip(&found) {
                kept.words.insert((*word).to_owned(), terms.clone());
            }
        }
        Ok(Looked {
            found,
            kept_at: None,
        })
    }

    /// Drops every kept lookup (the generation moved).
    pub fn forget(&self) {
        self.kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .words
            .clear();
    }
}
