//! Bodies of the `/scrape/*`, `/companies/*` and `/admin/*` endpoints.
//!
//! scraper-service answers with these types and app-service documents them, so the IDNO rule
//! lives here once: 13 digits whose last is a check digit, the sum of the first twelve
//! weighted 7, 3, 1, 7, 3, 1, … taken modulo 10.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{FieldError, Validate};

/// Number of digits in a Moldovan IDNO.
pub const IDNO_LEN: usize = 13;

/// Why a string is not a valid IDNO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdnoError {
    /// Not exactly 13 characters.
    Length,
    /// A character other than an ASCII digit.
    NotDigits,
    /// The 13th digit is not the check digit of the first twelve.
    CheckDigit,
}

impl IdnoError {
    /// The pydantic-style error type of this problem.
    pub fn kind(self) -> &'static str {
        match self {
            IdnoError::Length => "string_length",
            IdnoError::NotDigits => "string_pattern_mismatch",
            IdnoError::CheckDigit => "value_error",
        }
    }

    /// A message for the client.
    pub fn message(self) -> &'static str {
        match self {
            IdnoError::Length => "IDNO must have exactly 13 digits",
            IdnoError::NotDigits => "IDNO must contain digits only",
            IdnoError::CheckDigit => "IDNO check digit is wrong",
        }
    }
}

impl std::fmt::Display for IdnoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for IdnoError {}

/// A Moldovan IDNO that passed its check: 13 ASCII digits, the last being the check digit of
/// the first twelve (weights 7, 3, 1 repeated, sum mod 10). `1008600038413` is valid.
///
/// The only way to get one is [`Idno::parse`], so a value of this type is the proof that the
/// rule was checked: services parse it once, where the IDNO enters (a request, the command
/// line), and pass the `Idno` on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Idno(String);

impl Idno {
    /// Checks `raw` exactly as given (no trimming).
    pub fn parse(raw: &str) -> Result<Idno, IdnoError> {
        let bytes = raw.as_bytes();
        if !bytes.iter().all(u8::is_ascii_digit) {
            return Err(IdnoError::NotDigits);
        }
        if bytes.len() != IDNO_LEN {
            return Err(IdnoError::Length);
        }
        if check_digit(&bytes[..IDNO_LEN - 1]) == bytes[IDNO_LEN - 1] - b'0' {
            Ok(Idno(raw.to_owned()))
        } else {
            Err(IdnoError::CheckDigit)
        }
    }

    /// Parses the value of a request field at `loc` (e.g. `["path", "idno"]`), or the 422
    /// field error for it.
    pub fn parse_at(raw: &str, loc: &[&str]) -> Result<Idno, FieldError> {
        Idno::parse(raw).map_err(|e| e.at(loc))
    }

    /// A valid IDNO made of `stem` (twelve ASCII digits) and its check digit: for tests,
    /// benchmarks and fixtures.
    pub fn from_stem(stem: &str) -> Idno {
        assert!(
            stem.len() == IDNO_LEN - 1 && stem.bytes().all(|b| b.is_ascii_digit()),
            "a 12-digit stem"
        );
        Idno(format!("{stem}{}", check_digit(stem.as_bytes())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Idno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Idno {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// [`Idno::parse`] of an owned string, e.g. a column read back from a database.
impl TryFrom<String> for Idno {
    type Error = IdnoError;

    fn try_from(raw: String) -> Result<Idno, IdnoError> {
        Idno::parse(&raw)
    }
}

impl IdnoError {
    /// The 422 field error for this problem at `loc` (e.g. `["body", "idno"]`).
    pub fn at(self, loc: &[&str]) -> FieldError {
        FieldError::at(
            loc.iter().map(|&l| l.into()).collect(),
            self.kind(),
            self.message(),
        )
    }
}

/// The check digit of the first twelve digits: weights 7, 3, 1 repeated, sum mod 10.
fn check_digit(stem: &[u8]) -> u8 {
    const WEIGHTS: [u32; 3] = [7, 3, 1];
    let sum: u32 = stem
        .iter()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * WEIGHTS[i % 3])
        .sum();
    (sum % 10) as u8
}

/// `POST /scrape/`: company data for an IDNO, from the cache or by a new scrape job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"idno": "1008600038413", "force_refresh": false}))]
pub struct ScrapeRequest {
    /// The company's IDNO: 13 digits, the last a check digit (weights 7, 3, 1 repeated over
    /// the first twelve, sum mod 10); a wrong check digit is refused (422).
    #[schema(
        min_length = 13,
        max_length = 13,
        pattern = "^[0-9]{13}$",
        example = "1008600038413"
    )]
    pub idno: String,
    /// Scrape again even when fresh data is cached. `forced_refresh` is accepted too, as the
    /// original app spelled it.
    #[serde(default, alias = "forced_refresh")]
    pub force_refresh: bool,
}

/// A scrape request whose IDNO passed its check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeOrder {
    pub idno: Idno,
    pub force_refresh: bool,
}

impl Validate for ScrapeRequest {
    type Valid = ScrapeOrder;

    fn validate(self) -> Result<ScrapeOrder, Vec<FieldError>> {
        let idno = Idno::parse_at(&self.idno, &["body", "idno"]).map_err(|e| vec![e])?;
        Ok(ScrapeOrder {
            idno,
            force_refresh: self.force_refresh,
        })
    }
}

/// A company as Transform extracted it from a stored page. Fields the page did not show are
/// `null` (lists are empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CompanyRecord {
    #[schema(example = "1008600038413")]
    pub idno: String,
    #[schema(example = "Exemplu Comerț SRL")]
    pub company_name: Option<String>,
    #[schema(example = "Societate cu Răspundere Limitată")]
    pub legal_form: Option<String>,
    #[schema(example = "mun. Chișinău, str. Ștefan cel Mare 1")]
    pub address: Option<String>,
    /// `YYYY-MM-DD` when the page's date could be read, otherwise the text as shown.
    #[schema(example = "2003-03-12")]
    pub registration_date: Option<String>,
    #[schema(example = "Activă")]
    pub status: Option<String>,
    pub directors: Vec<String>,
    pub activities: Vec<String>,
    /// The stored page (`source_data.id`) this record was parsed from; `null` for records
    /// written by the original app.
    pub source_id: Option<i64>,
    /// The page's address.
    pub source_url: Option<String>,
    /// When the page was last fetched (UTC).
    pub fetched_at: Option<DateTime<Utc>>,
    /// When this record was (re)parsed (UTC).
    pub transformed_at: Option<DateTime<Utc>>,
    /// The version of the parser that produced the record.
    pub parser_version: Option<String>,
}

/// `200` answer of `POST /scrape/` when fresh data was cached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScrapeCachedResponse {
    /// Always `true`.
    pub success: bool,
    pub message: String,
    pub data: CompanyRecord,
    /// Always `true`.
    pub cached: bool,
}

/// The state of a scrape job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for a worker (also while waiting to be retried).
    Queued,
    /// A worker holds it.
    Running,
    /// Done; the job's `data` is the company record.
    Succeeded,
    /// Given up; the job's `error` says why.
    Failed,
}

impl JobState {
    /// The value stored in `scrape_jobs.state`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
        }
    }

    /// Parses a stored state.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "queued" => Some(JobState::Queued),
            "running" => Some(JobState::Running),
            "succeeded" => Some(JobState::Succeeded),
            "failed" => Some(JobState::Failed),
            _ => None,
        }
    }

    /// Whether the job will not change any more.
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed)
    }
}

/// `202` answer of `POST /scrape/`: a job was queued (or the caller's own job for this IDNO
/// was already pending). `Location` names the job's status URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"success": true, "message": "Scrape job queued", "job_id": "3f0c2a51-7d4e-4b8a-9c61-2e5f8a0b7d14", "idno": "1008600038413", "state": "queued", "cached": false, "status_url": "/scrape/jobs/3f0c2a51-7d4e-4b8a-9c61-2e5f8a0b7d14"}))]
pub struct ScrapeAcceptedResponse {
    /// Always `true`.
    pub success: bool,
    pub message: String,
    /// The job's id: a random UUID. A job belongs to the user who asked for it; nobody else
    /// (but an admin) can read it.
    #[schema(format = "uuid", example = "3f0c2a51-7d4e-4b8a-9c61-2e5f8a0b7d14")]
    pub job_id: String,
    pub idno: String,
    pub state: JobState,
    /// Always `false`.
    pub cached: bool,
    /// Where to poll the job: `/scrape/jobs/<job_id>`.
    pub status_url: String,
}

/// `GET /scrape/jobs/{id}`: a scrape job and, once it succeeded, its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScrapeJobResponse {
    /// The job's id: a random UUID (see [`ScrapeAcceptedResponse::job_id`]).
    #[schema(format = "uuid", example = "3f0c2a51-7d4e-4b8a-9c61-2e5f8a0b7d14")]
    pub id: String,
    pub idno: String,
    pub state: JobState,
    /// Attempts started so far.
    pub attempts: i32,
    pub max_attempts: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed, e.g. `company not found` or `source unreachable: …`.
    pub error: Option<String>,
    /// The company record when the job succeeded.
    pub data: Option<CompanyRecord>,
}

/// `POST /admin/retransform`: re-parse stored pages, of one IDNO or of all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"idno": "1008600038413"}))]
pub struct RetransformRequest {
    /// Only this company's pages; absent or `null`: every stored page. An IDNO: 13 digits,
    /// the last a check digit (weights 7, 3, 1 repeated over the first twelve, sum mod 10);
    /// a wrong check digit is refused (422).
    #[serde(default)]
    #[schema(min_length = 13, max_length = 13, pattern = "^[0-9]{13}$")]
    pub idno: Option<String>,
}

impl Validate for RetransformRequest {
    /// The company whose pages to re-parse; `None`: all.
    type Valid = Option<Idno>;

    fn validate(self) -> Result<Option<Idno>, Vec<FieldError>> {
        self.idno
            .as_deref()
            .map(|raw| Idno::parse_at(raw, &["body", "idno"]).map_err(|e| vec![e]))
            .transpose()
    }
}

/// The final report of the `retransform` command (printed as JSON).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"processed": 3, "succeeded": 2, "failed": 1}))]
pub struct RetransformResponse {
    /// Stored pages parsed.
    pub processed: u64,
    /// Pages that yielded a company record (written to `transformed_data`).
    pub succeeded: u64,
    /// Pages that did not (a "not found" page, or no company data in it).
    pub failed: u64,
}

/// The state of a re-transform run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RetransformState {
    /// A process is re-parsing pages (and renews its lease while it does).
    Running,
    /// Stopped before the end (error, shutdown, or its process died and its lease ran out);
    /// starting a run of the same scope resumes it from its checkpoint.
    Interrupted,
    /// Every page of the scope was processed.
    Succeeded,
    /// Left unfinished by an older parser version; a new run replaced it.
    Abandoned,
}

impl RetransformState {
    /// The value stored in `retransform_runs.state`.
    pub fn as_str(self) -> &'static str {
        match self {
            RetransformState::Running => "running",
            RetransformState::Interrupted => "interrupted",
            RetransformState::Succeeded => "succeeded",
            RetransformState::Abandoned => "abandoned",
        }
    }

    /// Parses a stored state.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "running" => Some(RetransformState::Running),
            "interrupted" => Some(RetransformState::Interrupted),
            "succeeded" => Some(RetransformState::Succeeded),
            "abandoned" => Some(RetransformState::Abandoned),
            _ => None,
        }
    }
}

/// A re-transform run: `202` answer of `POST /admin/retransform` (`Location:
/// /admin/retransform/<id>`) and answer of `GET /admin/retransform/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "0b6f3c1e-2a4d-4f5e-9c8b-7a6d5e4f3a2b", "idno": null, "parser_version": "1.0.0", "state": "running", "total": 100000, "processed": 41216, "succeeded": 38740, "failed": 2476, "checkpoint": 41216, "created_at": "2025-03-01T10:00:00Z", "updated_at": "2025-03-01T10:01:22Z", "finished_at": null, "error": null}))]
pub struct RetransformRun {
    /// The run's id: a random UUID.
    #[schema(format = "uuid")]
    pub id: String,
    /// The company whose pages are re-parsed; `null`: every stored page.
    pub idno: Option<String>,
    /// The parser version the run writes records with.
    pub parser_version: String,
    pub state: RetransformState,
    /// Pages in the scope when the run (or its last resumption) started.
    pub total: u64,
    /// Pages processed so far (counted when their batch is committed).
    pub processed: u64,
    /// Processed pages that yielded a record.
    pub succeeded: u64,
    /// Processed pages that did not (a "not found" page, no company data, another company's
    /// page, or a parser crash).
    pub failed: u64,
    /// The last stored page (`source_data.id`) whose batch is committed: a resumed run
    /// continues after it.
    pub checkpoint: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Why the run was interrupted, when it was by an error.
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_idnos() {
        // 1003600000006: 1·7 + 3·7 + 6·3 = 46, check digit 6.
        for ok in ["1008600038413", "1003600000006", "0000000000000"] {
            assert_eq!(check_idno(ok), Ok(()), "{ok}");
            assert_eq!(Idno::parse(ok).unwrap().as_str(), ok);
        }
        assert_eq!(Idno::from_stem("100860003841").as_str(), "1008600038413");
        assert_eq!(
            Idno::try_from("1008600038413".to_owned()),
            Idno::parse("1008600038413")
        );
        assert_eq!(
            Idno::try_from("1008600038414".to_owned()),
            Err(IdnoError::CheckDigit)
        );
    }

    fn check_idno(raw: &str) -> Result<(), IdnoError> {
        Idno::parse(raw).map(|_| ())
    }

    #[test]
    fn every_stem_has_exactly_one_check_digit() {
        let mut stem: u64 = 100_860_003_841;
        for _ in 0..500 {
            stem = stem.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1) % 1_000_000_000_000;
            let s = format!("{stem:012}");
            let ok = (0..10)
                .filter(|d| check_idno(&format!("{s}{d}")).is_ok())
                .count();
            assert_eq!(ok, 1, "{s}");
        }
    }

    #[test]
    fn field_errors_name_where_the_idno_was() {
        let e = Idno::parse_at("abc", &["path", "idno"]).unwrap_err();
        assert_eq!(
            e.loc,
            vec![serde_json::json!("path"), serde_json::json!("idno")]
        );
        assert_eq!(e.kind, "string_pattern_mismatch");
    }

    #[test]
    fn check_digit_is_weighted_sum_mod_10() {
        // Every check digit but the right one is refused.
        let stem = "100860003841";
        for d in 0..10 {
            let idno = format!("{stem}{d}");
            let expected = if d == 3 {
                Ok(())
            } else {
                Err(IdnoError::CheckDigit)
            };
            assert_eq!(check_idno(&idno), expected, "{idno}");
        }
        // Weights 7,3,1: a single 1 in position 0, 1 or 2 gives check digit 7, 3 or 1.
        assert_eq!(check_idno("1000000000007"), Ok(()));
        assert_eq!(check_idno("0100000000003"), Ok(()));
        assert_eq!(check_idno("0010000000001"), Ok(()));
        assert_eq!(check_idno("0001000000007"), Ok(()));
    }

    #[test]
    fn invalid_idnos() {
        assert_eq!(check_idno(""), Err(IdnoError::Length));
        assert_eq!(check_idno("123456789123"), Err(IdnoError::Length));
        assert_eq!(check_idno("10086000384130"), Err(IdnoError::Length));
        assert_eq!(check_idno("100860003841a"), Err(IdnoError::NotDigits));
        assert_eq!(check_idno(" 1008600038413"), Err(IdnoError::NotDigits));
        assert_eq!(
            check_idno("１００８６０００３８４１３"),
            Err(IdnoError::NotDigits)
        );
        assert_eq!(check_idno("-100860003841"), Err(IdnoError::NotDigits));
    }

    #[test]
    fn scrape_request_accepts_the_original_spelling() {
        let r: ScrapeRequest =
            serde_json::from_str(r#"{"idno": "1008600038413", "forced_refresh": true}"#).unwrap();
        assert!(r.force_refresh);
        let r: ScrapeRequest = serde_json::from_str(r#"{"idno": "1008600038413"}"#).unwrap();
        assert!(!r.force_refresh);
        let order = r.validate().unwrap();
        assert_eq!(order.idno.as_str(), "1008600038413");
        let bad = ScrapeRequest {
            idno: "1008600038414".into(),
            force_refresh: false,
        };
        let errors = bad.validate().unwrap_err();
        assert_eq!(
            errors[0].loc,
            vec![serde_json::json!("body"), serde_json::json!("idno")]
        );
        assert_eq!(errors[0].kind, "value_error");
    }

    #[test]
    fn retransform_request_idno_is_optional() {
        assert_eq!(RetransformRequest::default().validate(), Ok(None));
        let r = RetransformRequest {
            idno: Some("12".into()),
        };
        assert_eq!(r.validate().unwrap_err()[0].kind, "string_length");
    }

    #[test]
    fn job_state_round_trips() {
        for s in [
            JobState::Queued,
            JobState::Running,
            JobState::Succeeded,
            JobState::Failed,
        ] {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
        assert!(JobState::Failed.is_final() && !JobState::Running.is_final());
    }
}
