//! Changes to the catalogue that librarians make over HTTP: a new title with its copies,
//! edits, more copies. Each is one transaction; new copies go to waiting holders first.

use api::library::{BookChanges, Isbn, NewBook};
use service_kit::db::Db;

use crate::apply::pass_on;
use crate::clock::SharedClock;
use crate::outbox::Bell;
use crate::rules::{CopyStatus, Rules};
use crate::search::{normalise, search_text};
use crate::store::titles::{self, BookRow, TitleText};
use crate::store::{copies, StoreError, Tx};

/// The stored text of a title.
fn text_of(title: &str, author: &str, isbn: &Isbn) -> TitleText {
    TitleText {
        title: title.to_owned(),
        author: author.to_owned(),
        isbn: isbn.as_str().to_owned(),
        search_text: search_text(title, author, isbn),
        author_key: normalise(author),
        sort_key: normalise(title),
    }
}

/// Catalogues a title with its first copies; `Duplicate` when the ISBN is taken.
pub async fn create(db: &Db, clock: &SharedClock, book: &NewBook) -> Result<BookRow, StoreError> {
    let now = clock.now();
    let mut tx = Tx::begin(db).await?;
    let id = titles::insert(
        &mut tx,
        &text_of(&book.title, &book.author, &book.isbn),
        now,
    )
    .await?;
    copies::insert(&mut tx, id, book.copies, now).await?;
    let row = titles::get_in(&mut tx, id).await?;
    tx.commit().await?;
    row.ok_or(StoreError::Other(sqlx::Error::RowNotFound))
}

/// Applies `changes` to title `id`; `None` when there is no such title, `Duplicate` when the
/// new ISBN belongs to another.
pub async fn update(
    db: &Db,
    clock: &SharedClock,
    id: i64,
    changes: &BookChanges,
) -> Result<Option<BookRow>, StoreError> {
    let mut tx = Tx::begin(db).await?;
    let Some(current) = titles::lock_text(&mut tx, id).await? else {
        return Ok(None);
    };
    let title = changes.title.as_deref().unwrap_or(&current.title);
    let author = changes.author.as_deref().unwrap_or(&current.author);
    let isbn = match &changes.isbn {
        Some(isbn) => isbn.clone(),
        // Stored ISBNs were checked when they were written.
        None => Isbn::parse(&current.isbn).map_err(|e| {
            StoreError::Other(sqlx::Error::Decode(format!("stored ISBN: {e}").into()))
        })?,
    };
    titles::update(
        &mut tx,
        id,
        &current,
        &text_of(title, author, &isbn),
        clock.now(),
    )
    .await?;
    let row = titles::get_in(&mut tx, id).await?;
    tx.commit().await?;
    Ok(row)
}

/// Adds `count` copies to title `id`, each given to the next waiting holder (who is told:
/// the relay is rung) or shelved; `None` when there is no such title.
pub async fn add_copies(
    db: &Db,
    clock: &SharedClock,
    rules: &Rules,
    bell: &Bell,
    id: i64,
    count: u32,
) -> Result<Option<BookRow>, StoreError> {
    let now = clock.now();
    let mut tx = Tx::begin(db).await?;
    if !titles::lock(&mut tx, id).await? {
        return Ok(None);
    }
    for copy in copies::insert(&mut tx, id, count, now).await? {
        pass_on(&mut tx, rules, copy, id, CopyStatus::Available, now).await?;
    }
    let row = titles::get_in(&mut tx, id).await?;
    tx.commit().await?;
    bell.ring();
    Ok(row)
}
