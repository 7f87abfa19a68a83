//! Bodies of the library endpoints: `/books/*`, `/loans/*` and `/holds/*`.
//!
//! book-service answers with these types (and with circulation replies built from them),
//! app-service documents them. The ISBN rule lives here once ([`Isbn`]): ISBN-10 or ISBN-13
//! with a valid check digit, hyphens and spaces allowed, always kept as ISBN-13.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{Check, FieldError, Validate};

/// Longest title accepted, in characters.
pub const MAX_TITLE_CHARS: usize = 500;
/// Longest author accepted, in characters.
pub const MAX_AUTHOR_CHARS: usize = 300;
/// Most copies added by one request.
pub const MAX_COPIES_PER_REQUEST: u32 = 100;
/// Page size of a list when the client names none.
pub const DEFAULT_PAGE: u32 = 20;
/// Largest page a client may ask for.
pub const MAX_PAGE: u32 = 100;

// ---------------------------------------------------------------------------------------
// ISBN
// ---------------------------------------------------------------------------------------

/// Why a string is not a valid ISBN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsbnError {
    /// Neither 10 nor 13 characters once hyphens and spaces are removed.
    Length,
    /// A character other than a digit, a hyphen or a space (or an `X` that is not the last
    /// character of an ISBN-10).
    Characters,
    /// The last character is not the check digit of the others.
    CheckDigit,
    /// An ISBN-13 that does not start with 978 or 979 (the "Bookland" prefixes).
    Prefix,
}

impl IsbnError {
    /// The pydantic-style error type of this problem.
    pub fn kind(self) -> &'static str {
        match self {
            IsbnError::Length => "string_length",
            IsbnError::Characters => "string_pattern_mismatch",
            IsbnError::CheckDigit | IsbnError::Prefix => "value_error",
        }
    }

    /// A message for the client.
    pub fn message(self) -> &'static str {
        match self {
            IsbnError::Length => "ISBN must have 10 or 13 digits",
            IsbnError::Characters => "ISBN may contain only digits, hyphens, spaces and a final X",
            IsbnError::CheckDigit => "ISBN check digit is wrong",
            IsbnError::Prefix => "ISBN-13 must start with 978 or 979",
        }
    }

    /// The 422 field error for this problem at `loc` (e.g. `["body", "isbn"]`).
    pub fn at(self, loc: &[&str]) -> FieldError {
        FieldError::at(
            loc.iter().map(|&l| l.into()).collect(),
            self.kind(),
            self.message(),
        )
    }
}

impl std::fmt::Display for IsbnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for IsbnError {}

/// An ISBN that passed its check, held as the 13 digits of its ISBN-13 form.
///
/// [`Isbn::parse`] accepts ISBN-10 (weights 10…1, sum ≡ 0 mod 11, `X` = 10 as the check
/// character) and ISBN-13 (weights 1, 3, 1, 3, …, sum ≡ 0 mod 10, prefix 978 or 979), with
/// hyphens and spaces anywhere; an ISBN-10 becomes `978` + its first nine digits + a new
/// check digit. So `2-07-036002-4`, `978-2-07-036002-4` and `9782070360024` are one ISBN.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Isbn(String);

impl Isbn {
    /// Checks `raw` and normalises it to ISBN-13.
    pub fn parse(raw: &str) -> Result<Isbn, IsbnError> {
        let mut chars: Vec<u8> = Vec::with_capacity(13);
        for c in raw.chars() {
            match c {
                '-' | ' ' => {}
                '0'..='9' | 'X' | 'x' => chars.push(c.to_ascii_uppercase() as u8),
                _ => return Err(IsbnError::Characters),
            }
        }
        match chars.len() {
            10 => Self::from_isbn10(&chars),
            13 => Self::from_isbn13(&chars),
            _ => Err(IsbnError::Length),
        }
    }

    /// Parses the value of a request field at `loc`, or the 422 field error for it.
    pub fn parse_at(raw: &str, loc: &[&str]) -> Result<Isbn, FieldError> {
        Isbn::parse(raw).map_err(|e| e.at(loc))
    }

    fn from_isbn10(chars: &[u8]) -> Result<Isbn, IsbnError> {
        // `X` may only be the check character.
        if !chars[..9].iter().all(u8::is_ascii_digit) {
            return Err(IsbnError::Characters);
        }
        let sum: u32 = chars
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let value = if c == b'X' { 10 } else { u32::from(c - b'0') };
                value * (10 - i as u32)
            })
            .sum();
        if !sum.is_multiple_of(11) {
            return Err(IsbnError::CheckDigit);
        }
        let mut digits = b"978".to_vec();
        digits.extend_from_slice(&chars[..9]);
        digits.push(b'0' + isbn13_check_digit(&digits));
        Ok(Isbn(String::from_utf8(digits).expect("ASCII digits")))
    }

    fn from_isbn13(chars: &[u8]) -> Result<Isbn, IsbnError> {
        if !chars.iter().all(u8::is_ascii_digit) {
            return Err(IsbnError::Characters);
        }
        if isbn13_check_digit(&chars[..12]) != chars[12] - b'0' {
            return Err(IsbnError::CheckDigit);
        }
        if !(chars.starts_with(b"978") || chars.starts_with(b"979")) {
            return Err(IsbnError::Prefix);
        }
        Ok(Isbn(
            String::from_utf8(chars.to_vec()).expect("ASCII digits"),
        ))
    }

    /// A valid ISBN-13 made of `stem` (twelve digits starting with 978 or 979) and its check
    /// digit: for tests, benchmarks and fixtures.
    pub fn from_stem(stem: &str) -> Isbn {
        assert!(
            stem.len() == 12
                && stem.bytes().all(|b| b.is_ascii_digit())
                && (stem.starts_with("978") || stem.starts_with("979")),
            "a 12-digit stem starting with 978 or 979"
        );
        Isbn(format!("{stem}{}", isbn13_check_digit(stem.as_bytes())))
    }

    /// The 13 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The ISBN-10 form, for ISBNs with the 978 prefix (979 ones have none).
    pub fn isbn10(&self) -> Option<String> {
        let digits = self.0.strip_prefix("978")?;
        let stem = &digits.as_bytes()[..9];
        let sum: u32 = stem
            .iter()
            .enumerate()
            .map(|(i, &c)| u32::from(c - b'0') * (10 - i as u32))
            .sum();
        let check = match (11 - sum % 11) % 11 {
            10 => 'X',
            d => char::from(b'0' + d as u8),
        };
        Some(format!("{}{check}", &digits[..9]))
    }
}

impl std::fmt::Display for Isbn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Isbn {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The ISBN-13 check digit of twelve digits: weights 1, 3 alternating, (10 − sum mod 10) mod 10.
fn isbn13_check_digit(stem: &[u8]) -> u8 {
    let sum: u32 = stem
        .iter()
        .enumerate()
        .map(|(i, &b)| u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

// ---------------------------------------------------------------------------------------
// Text fields
// ---------------------------------------------------------------------------------------

/// `raw` trimmed, or the field error when it is empty or longer than `max` characters.
fn text_field(raw: &str, field: &str, max: usize) -> Result<String, FieldError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(FieldError::body(
            field,
            "string_too_short",
            "String should have at least 1 character",
        ));
    }
    if trimmed.chars().count() > max {
        return Err(FieldError::body(
            field,
            "string_too_long",
            format!("String should have at most {max} characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// `value` when it is within `1..=max`, or the field error at `loc`.
fn count_field(value: u32, loc: FieldError, max: u32) -> Result<u32, FieldError> {
    if (1..=max).contains(&value) {
        Ok(value)
    } else {
        Err(loc)
    }
}

/// Collects `result` into `errors`, giving its value when it is valid.
fn keep<T>(result: Result<T, FieldError>, errors: &mut Vec<FieldError>) -> Option<T> {
    result.map_err(|e| errors.push(e)).ok()
}

// ---------------------------------------------------------------------------------------
// Titles
// ---------------------------------------------------------------------------------------

/// `POST /books/`: a new title and its first copies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"title": "Germinal", "author": "Émile Zola", "isbn": "978-2-07-036002-4", "copies": 2}))]
pub struct BookCreate {
    #[schema(min_length = 1, max_length = 500)]
    pub title: String,
    #[schema(min_length = 1, max_length = 300)]
    pub author: String,
    /// ISBN-10 or ISBN-13 with a valid check digit; hyphens and spaces are allowed. Stored
    /// and answered as ISBN-13.
    #[schema(example = "978-2-07-036002-4")]
    pub isbn: String,
    /// Copies to create (1–100).
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 100, default = 1)]
    pub copies: u32,
}

fn one() -> u32 {
    1
}

/// A [`BookCreate`] whose every field passed its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBook {
    pub title: String,
    pub author: String,
    pub isbn: Isbn,
    pub copies: u32,
}

impl Validate for BookCreate {
    type Valid = NewBook;

    fn validate(self) -> Result<NewBook, Vec<FieldError>> {
        let mut errors = Vec::new();
        let title = keep(
            text_field(&self.title, "title", MAX_TITLE_CHARS),
            &mut errors,
        );
        let author = keep(
            text_field(&self.author, "author", MAX_AUTHOR_CHARS),
            &mut errors,
        );
        let isbn = keep(Isbn::parse_at(&self.isbn, &["body", "isbn"]), &mut errors);
        let copies = keep(
            count_field(
                self.copies,
                FieldError::body(
                    "copies",
                    "value_error",
                    format!("copies must be between 1 and {MAX_COPIES_PER_REQUEST}"),
                ),
                MAX_COPIES_PER_REQUEST,
            ),
            &mut errors,
        );
        match (title, author, isbn, copies) {
            (Some(title), Some(author), Some(isbn), Some(copies)) if errors.is_empty() => {
                Ok(NewBook {
                    title,
                    author,
                    isbn,
                    copies,
                })
            }
            _ => Err(errors),
        }
    }
}

/// `PATCH /books/{id}`: the fields to change; absent ones stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"title": "Germinal (Folio)"}))]
pub struct BookPatch {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 500)]
    pub title: Option<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 300)]
    pub author: Option<String>,
    #[serde(default)]
    pub isbn: Option<String>,
}

/// A [`BookPatch`] whose present fields passed their rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BookChanges {
    pub title: Option<String>,
    pub author: Option<String>,
    pub isbn: Option<Isbn>,
}

impl Validate for BookPatch {
    type Valid = BookChanges;

    fn validate(self) -> Result<BookChanges, Vec<FieldError>> {
        let mut errors = Vec::new();
        let title = self
            .title
            .map(|t| keep(text_field(&t, "title", MAX_TITLE_CHARS), &mut errors));
        let author = self
            .author
            .map(|a| keep(text_field(&a, "author", MAX_AUTHOR_CHARS), &mut errors));
        let isbn = self
            .isbn
            .map(|i| keep(Isbn::parse_at(&i, &["body", "isbn"]), &mut errors));
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(BookChanges {
            title: title.flatten(),
            author: author.flatten(),
            isbn: isbn.flatten(),
        })
    }
}

/// `POST /books/{id}/copies`: how many copies to add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"count": 2}))]
pub struct CopiesAdd {
    #[schema(minimum = 1, maximum = 100)]
    pub count: u32,
}

impl Validate for CopiesAdd {
    type Valid = u32;

    fn validate(self) -> Result<u32, Vec<FieldError>> {
        count_field(
            self.count,
            FieldError::body(
                "count",
                "value_error",
                format!("count must be between 1 and {MAX_COPIES_PER_REQUEST}"),
            ),
            MAX_COPIES_PER_REQUEST,
        )
        .map_err(|e| vec![e])
    }
}

/// A title with its circulation figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": 7, "title": "Germinal", "author": "Émile Zola", "isbn": "9782070360024", "copies_total": 2, "copies_available": 1, "holds_waiting": 0}))]
pub struct Book {
    pub id: i64,
    pub title: String,
    pub author: String,
    /// ISBN-13, digits only.
    pub isbn: String,
    pub copies_total: i64,
    /// Copies on the shelf that anyone may borrow (not lent, not set aside for a holder).
    pub copies_available: i64,
    /// Holds still waiting for a copy.
    pub holds_waiting: i64,
}

/// `GET /books/`: search parameters. Text is matched ignoring case and diacritics, each word
/// of `q` anywhere in the title, the author or the ISBN.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BookSearch {
    /// Words to find in the title, author or ISBN (as you type: parts of words match too).
    #[serde(default)]
    pub q: Option<String>,
    /// Words to find in the author.
    #[serde(default)]
    pub author: Option<String>,
    /// An exact ISBN (10 or 13 digits, hyphens allowed).
    #[serde(default)]
    pub isbn: Option<String>,
    /// `true`: only titles with a copy on the shelf now.
    #[serde(default)]
    pub available: Option<bool>,
    /// Page size, 1–100 (default 20).
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Where the previous page ended: the `cursor` of the `Link: rel="next"` of that page,
    /// as it was given (opaque; any other value is refused with 422).
    #[serde(default)]
    #[param(min_length = 1, pattern = "^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
}

/// A [`BookSearch`] with a checked ISBN and page size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BookFilter {
    pub q: Option<String>,
    pub author: Option<String>,
    pub isbn: Option<Isbn>,
    pub available: bool,
    pub limit: u32,
    pub cursor: Option<String>,
}

impl Validate for BookSearch {
    type Valid = BookFilter;

    fn validate(self) -> Result<BookFilter, Vec<FieldError>> {
        let mut errors = Vec::new();
        let isbn = self
            .isbn
            .filter(|raw| !raw.trim().is_empty())
            .and_then(|raw| keep(Isbn::parse_at(&raw, &["query", "isbn"]), &mut errors));
        let limit = keep(page_size(self.limit), &mut errors);
        match limit {
            Some(limit) if errors.is_empty() => Ok(BookFilter {
                q: self.q.filter(|q| !q.trim().is_empty()),
                author: self.author.filter(|a| !a.trim().is_empty()),
                isbn,
                available: self.available.unwrap_or(false),
                limit,
                cursor: self.cursor,
            }),
            _ => Err(errors),
        }
    }
}

/// The page size a client asked for (default [`DEFAULT_PAGE`]), or the 422 field error.
pub fn page_size(limit: Option<u32>) -> Result<u32, FieldError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    count_field(
        limit,
        FieldError::query(
            "limit",
            "value_error",
            format!("limit must be between 1 and {MAX_PAGE}"),
        ),
        MAX_PAGE,
    )
}

// ---------------------------------------------------------------------------------------
// Loans and holds
// ---------------------------------------------------------------------------------------

/// `POST /loans/`: borrow a copy of a title. An `Idempotency-Key` header makes a retry
/// return the first answer instead of borrowing again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"book_id": 7}))]
pub struct LoanCreate {
    /// The title (`id` of a `Book`).
    #[schema(minimum = 1)]
    pub book_id: i64,
}

impl Check for LoanCreate {
    fn check(&self) -> Vec<FieldError> {
        positive_id(self.book_id, "book_id")
    }
}

/// `POST /holds/`: join the waiting list of a title.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"book_id": 7}))]
pub struct HoldCreate {
    /// The title (`id` of a `Book`).
    #[schema(minimum = 1)]
    pub book_id: i64,
}

impl Check for HoldCreate {
    fn check(&self) -> Vec<FieldError> {
        positive_id(self.book_id, "book_id")
    }
}

fn positive_id(id: i64, field: &str) -> Vec<FieldError> {
    if id >= 1 {
        Vec::new()
    } else {
        vec![FieldError::body(
            field,
            "greater_than_equal",
            "Input should be greater than or equal to 1",
        )]
    }
}

/// A loan of one copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": 12, "book_id": 7, "user_id": 3, "title": "Germinal", "borrowed_at": "2026-03-01T10:00:00Z", "due_at": "2026-03-15T10:00:00Z", "renewals_left": 2, "returned_at": null, "overdue": false}))]
pub struct Loan {
    pub id: i64,
    pub book_id: i64,
    /// The borrower.
    pub user_id: i64,
    pub title: String,
    pub borrowed_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub renewals_left: i64,
    /// When the copy came back; `null` while it is out.
    pub returned_at: Option<DateTime<Utc>>,
    /// Out past its due date.
    pub overdue: bool,
}

/// `GET /user/borrowings/` (the borrowings function): one title a reader has borrowed and
/// not yet returned, in the original get-user-borrowings shape.
///
/// The original function answered these six fields from its SQL join; they keep their names.
/// Its dates were written with `isoformat()`; here they are RFC 3339 date-times in UTC, the
/// platform's one timestamp format: still ISO 8601 for the original's clients, and with an
/// explicit offset, so a due time near midnight is not a day off in another time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"book_id": 7, "title": "Germinal", "author": "Émile Zola", "isbn": "9782070360024", "borrowed_on": "2026-03-01T10:00:00Z", "return_by": "2026-03-15T10:00:00Z"}))]
pub struct Borrowing {
    pub book_id: i64,
    pub title: String,
    pub author: String,
    /// ISBN-13, digits only.
    pub isbn: String,
    /// When the copy was lent.
    pub borrowed_on: DateTime<Utc>,
    /// When it is due back (moved on by each renewal).
    pub return_by: DateTime<Utc>,
}

/// The two bodies of a 422 from a circulation request: invalid input (FastAPI's list of
/// fields), or an `Idempotency-Key` sent before with a different request (a refusal with
/// reason `idempotency_key_reused`). Documentation only: each is answered as itself.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum InvalidOrKeyReused {
    Invalid(crate::ValidationBody),
    KeyReused(Refusal),
}

/// Where a hold stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HoldState {
    /// In the queue for the next copy.
    Waiting,
    /// A copy is set aside for the holder until `pickup_deadline`.
    Ready,
    /// The holder borrowed the title.
    Fulfilled,
    /// Cancelled by the holder or a librarian.
    Cancelled,
    /// Not picked up in time; the copy went to the next holder.
    Expired,
}

impl HoldState {
    /// The value stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldState::Waiting => "waiting",
            HoldState::Ready => "ready",
            HoldState::Fulfilled => "fulfilled",
            HoldState::Cancelled => "cancelled",
            HoldState::Expired => "expired",
        }
    }

    /// Parses a stored state.
    pub fn parse(s: &str) -> Option<Self> {
        [
            HoldState::Waiting,
            HoldState::Ready,
            HoldState::Fulfilled,
            HoldState::Cancelled,
            HoldState::Expired,
        ]
        .into_iter()
        .find(|h| h.as_str() == s)
    }

    /// Whether the hold still waits or holds a copy.
    pub fn is_active(self) -> bool {
        matches!(self, HoldState::Waiting | HoldState::Ready)
    }
}

/// A reader's place on a title's waiting list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": 4, "book_id": 7, "user_id": 3, "title": "Germinal", "state": "waiting", "position": 2, "placed_at": "2026-03-01T10:00:00Z", "pickup_deadline": null}))]
pub struct Hold {
    pub id: i64,
    pub book_id: i64,
    /// The holder.
    pub user_id: i64,
    pub title: String,
    pub state: HoldState,
    /// Place in the queue while waiting (1 = next); `null` once a copy is set aside.
    pub position: Option<i64>,
    pub placed_at: DateTime<Utc>,
    /// While `ready`: until when the copy stays set aside.
    pub pickup_deadline: Option<DateTime<Utc>>,
}

/// `GET /loans/`: whose loans, which, and the page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LoanSearch {
    /// `true`: loans still out; `false`: returned ones; absent: all.
    #[serde(default)]
    pub active: Option<bool>,
    /// Another reader's loans: librarians only.
    #[serde(default)]
    #[param(minimum = 1)]
    pub user_id: Option<i64>,
    /// Page size, 1–100 (default 20).
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Where the previous page ended: the `cursor` of the `Link: rel="next"` of that page,
    /// as it was given (opaque; any other value is refused with 422).
    #[serde(default)]
    #[param(min_length = 1, pattern = "^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
}

impl Check for LoanSearch {
    fn check(&self) -> Vec<FieldError> {
        list_errors(self.user_id, self.limit)
    }
}

/// `GET /holds/`: whose active holds, and the page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HoldSearch {
    /// Another reader's holds: librarians only.
    #[serde(default)]
    #[param(minimum = 1)]
    pub user_id: Option<i64>,
    /// Page size, 1–100 (default 20).
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Where the previous page ended: the `cursor` of the `Link: rel="next"` of that page,
    /// as it was given (opaque; any other value is refused with 422).
    #[serde(default)]
    #[param(min_length = 1, pattern = "^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
}

impl Check for HoldSearch {
    fn check(&self) -> Vec<FieldError> {
        list_errors(self.user_id, self.limit)
    }
}

/// The broken rules of a list's `user_id` and `limit`.
fn list_errors(user_id: Option<i64>, limit: Option<u32>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if user_id.is_some_and(|id| id < 1) {
        errors.push(FieldError::query(
            "user_id",
            "greater_than_equal",
            "Input should be greater than or equal to 1",
        ));
    }
    errors.extend(page_size(limit).err());
    errors
}

/// Why a circulation request was refused: the `reason` of a 404, 409 or 422 answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// Every copy is lent (or there are none).
    NoCopyAvailable,
    /// The reader already borrows this title.
    AlreadyBorrowed,
    /// The copies on the shelf are set aside for other readers' holds.
    OnHoldForAnother,
    /// The reader has as many loans as allowed.
    LoanLimit,
    /// The reader has an overdue loan.
    OverdueBlock,
    /// The loan was returned already.
    AlreadyReturned,
    /// The loan was renewed as often as allowed.
    RenewalLimit,
    /// Another reader waits for this title.
    HoldWaiting,
    /// The reader already holds this title.
    AlreadyHolding,
    /// The reader has as many holds as allowed.
    HoldLimit,
    /// The hold was fulfilled, cancelled or expired already.
    HoldNotActive,
    /// No such title, loan or hold (or not one the caller may see).
    NotFound,
    /// The `Idempotency-Key` was used before for a different request.
    IdempotencyKeyReused,
}

impl RefusalReason {
    /// The HTTP status of this refusal.
    pub fn status(self) -> u16 {
        match self {
            RefusalReason::NotFound => 404,
            RefusalReason::IdempotencyKeyReused => 422,
            _ => 409,
        }
    }

    /// The wire name (`no_copy_available`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::NoCopyAvailable => "no_copy_available",
            RefusalReason::AlreadyBorrowed => "already_borrowed",
            RefusalReason::OnHoldForAnother => "on_hold_for_another",
            RefusalReason::LoanLimit => "loan_limit",
            RefusalReason::OverdueBlock => "overdue_block",
            RefusalReason::AlreadyReturned => "already_returned",
            RefusalReason::RenewalLimit => "renewal_limit",
            RefusalReason::HoldWaiting => "hold_waiting",
            RefusalReason::AlreadyHolding => "already_holding",
            RefusalReason::HoldLimit => "hold_limit",
            RefusalReason::HoldNotActive => "hold_not_active",
            RefusalReason::NotFound => "not_found",
            RefusalReason::IdempotencyKeyReused => "idempotency_key_reused",
        }
    }
}

impl std::fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of a refused circulation request: FastAPI's `detail` plus a machine-readable
/// `reason`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"detail": "No copy of this title is available", "reason": "no_copy_available"}))]
pub struct Refusal {
    pub detail: String,
    pub reason: RefusalReason,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isbn13_and_isbn10_are_one_isbn() {
        for raw in [
            "9782070360024",
            "978-2-07-036002-4",
            "978 2 07 036002 4",
            "2070360024",
            "2-07-036002-4",
        ] {
            assert_eq!(Isbn::parse(raw).unwrap().as_str(), "9782070360024", "{raw}");
        }
        let isbn = Isbn::parse("0-8044-2957-X").unwrap();
        assert_eq!(isbn.as_str(), "9780804429573");
        assert_eq!(isbn.isbn10().as_deref(), Some("080442957X"));
        assert_eq!(Isbn::parse("080442957x").unwrap(), isbn);
        assert_eq!(
            Isbn::parse("9791032305690").unwrap().isbn10(),
            None,
            "979 ISBNs have no ISBN-10"
        );
    }

    #[test]
    fn every_stem_has_exactly_one_check_digit() {
        let mut stem: u64 = 978_207_036_002;
        for _ in 0..300 {
            stem = 978_000_000_000
                + (stem.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1) % 1_000_000_000);
            let ok = (0..10)
                .filter(|d| Isbn::parse(&format!("{stem}{d}")).is_ok())
                .count();
            assert_eq!(ok, 1, "{stem}");
            let isbn = Isbn::from_stem(&stem.to_string());
            // The ISBN-10 form converts back to the same ISBN-13.
            assert_eq!(Isbn::parse(&isbn.isbn10().unwrap()).unwrap(), isbn);
        }
    }

    #[test]
    fn wrong_check_digits_are_refused() {
        assert_eq!(Isbn::parse("9782070360025"), Err(IsbnError::CheckDigit));
        assert_eq!(Isbn::parse("2070360025"), Err(IsbnError::CheckDigit));
        // Two digits swapped: the weights catch it.
        assert_eq!(Isbn::parse("2700360024"), Err(IsbnError::CheckDigit));
        assert_eq!(Isbn::parse("0804429578"), Err(IsbnError::CheckDigit));
    }

    #[test]
    fn malformed_isbns_are_refused() {
        assert_eq!(Isbn::parse(""), Err(IsbnError::Length));
        assert_eq!(Isbn::parse("978207036002"), Err(IsbnError::Length));
        assert_eq!(Isbn::parse("97820703600245"), Err(IsbnError::Length));
        assert_eq!(Isbn::parse("978207036002a"), Err(IsbnError::Characters));
        assert_eq!(Isbn::parse("X070360024"), Err(IsbnError::Characters));
        assert_eq!(Isbn::parse("978207036002X"), Err(IsbnError::Characters));
        assert_eq!(
            Isbn::parse("９７８２０７０３６００２４"),
            Err(IsbnError::Characters)
        );
        // A valid EAN-13 that is not a book number.
        assert_eq!(Isbn::parse("4006381333931"), Err(IsbnError::Prefix));
        let e = Isbn::parse_at("12", &["body", "isbn"]).unwrap_err();
        assert_eq!(
            e.loc,
            vec![serde_json::json!("body"), serde_json::json!("isbn")]
        );
        assert_eq!(e.kind, "string_length");
    }

    #[test]
    fn book_create_reports_every_broken_rule() {
        let body: BookCreate = serde_json::from_str(
            r#"{"title": "  ", "author": "Zola", "isbn": "123", "copies": 0}"#,
        )
        .unwrap();
        let errors = body.validate().unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.loc[1].clone()).collect();
        assert_eq!(fields, ["title", "isbn", "copies"]);

        let body: BookCreate = serde_json::from_str(
            r#"{"title": " Germinal ", "author": "Émile Zola", "isbn": "2-07-036002-4"}"#,
        )
        .unwrap();
        let book = body.validate().unwrap();
        assert_eq!(book.title, "Germinal");
        assert_eq!(book.isbn.as_str(), "9782070360024");
        assert_eq!(book.copies, 1, "one copy by default");
    }

    #[test]
    fn patch_checks_only_present_fields() {
        assert_eq!(BookPatch::default().validate(), Ok(BookChanges::default()));
        let patch = BookPatch {
            isbn: Some("9782070360025".into()),
            ..BookPatch::default()
        };
        assert_eq!(patch.validate().unwrap_err()[0].kind, "value_error");
        let patch = BookPatch {
            author: Some("x".repeat(MAX_AUTHOR_CHARS + 1)),
            ..BookPatch::default()
        };
        assert_eq!(patch.validate().unwrap_err()[0].kind, "string_too_long");
    }

    #[test]
    fn page_sizes_and_counts_are_bounded() {
        assert_eq!(page_size(None), Ok(DEFAULT_PAGE));
        assert_eq!(page_size(Some(100)), Ok(100));
        assert!(page_size(Some(0)).is_err() && page_size(Some(101)).is_err());
        assert!(CopiesAdd { count: 101 }.validate().is_err());
        assert_eq!(CopiesAdd { count: 3 }.validate(), Ok(3));
        let search = BookSearch {
            isbn: Some("not an isbn".into()),
            limit: Some(500),
            ..BookSearch::default()
        };
        let errors = search.validate().unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].loc[0], "query");
    }

    #[test]
    fn reasons_have_their_wire_names_and_statuses() {
        for (reason, status) in [
            (RefusalReason::NoCopyAvailable, 409),
            (RefusalReason::NotFound, 404),
            (RefusalReason::IdempotencyKeyReused, 422),
        ] {
            assert_eq!(reason.status(), status);
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        }
        assert_eq!(
            serde_json::to_value(RefusalReason::OnHoldForAnother).unwrap(),
            "on_hold_for_another"
        );
        for s in [HoldState::Waiting, HoldState::Ready, HoldState::Expired] {
            assert_eq!(HoldState::parse(s.as_str()), Some(s));
        }
        assert_eq!(HoldState::parse("lost"), None);
        assert!(HoldState::Ready.is_active() && !HoldState::Expired.is_active());
        assert_eq!(LoanCreate { book_id: 0 }.check().len(), 1);
        let bad = LoanSearch {
            user_id: Some(0),
            limit: Some(0),
            ..LoanSearch::default()
        };
        assert_eq!(bad.check().len(), 2);
        assert!(HoldSearch::default().check().is_empty());
        assert!(HoldCreate { book_id: 7 }.check().is_empty());
    }
}
