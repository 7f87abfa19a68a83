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

/// Adds each delta to its term's count, creating the terms not seen before.
async fn count(tx: &mut Tx, deltas: &[(&str, i64)]) -> Result<(), StoreError> {
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
        sql.push_str(" ON CONFLICT (term) DO UPDATE SET titles = terms.titles + excluded.titles");
        with_tx!(tx, conn => bind_all!(sqlx::query(&sql), &binds).execute(conn).await.map(|r| r.rows_affected()))?;
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
/// containing it that some title holds, in no particular order: one statement for them all.
#[tracing::instrument(skip_all, fields(words = words.len(), limit))]
pub async fn containing_each(
    db: &Db,
    words: &[&str],
    limit: i64,
) -> Result<Vec<Vec<Term>>, StoreError> {
    if words.is_empty() {
        return Ok(Vec::new());
    }
    let mut binds = vec![Bind::Int(limit)];
    let arms: Vec<String> = words
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
    let sql = arms.join(" UNION ALL ");
    let rows: Vec<(i64, String, i64)> =
        with_db!(db, pool => bind_all!(sqlx::query_as(&sql), &binds).fetch_all(pool).await)?;
    let mut found = vec![Vec::new(); words.len()];
    for (word, term, titles) in rows {
        if let Some(terms) = usize::try_from(word).ok().and_then(|w| found.get_mut(w)) {
            terms.push(Term { term, titles });
        }
    }
    Ok(found)
}
