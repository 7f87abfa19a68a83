//! Bodies of the `/auth/*` endpoints.
//!
//! The validation rules live here, next to the types, so that user-service (which enforces
//! them) and app-service (which documents them in its OpenAPI document) cannot drift apart.
//! Messages and error types follow pydantic's wording, as the original FastAPI app answered.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Check, FieldError};

/// Shortest accepted username, in characters.
pub const USERNAME_MIN_CHARS: usize = 3;
/// Longest accepted username, in characters.
pub const USERNAME_MAX_CHARS: usize = 32;
/// The characters a username may use (as a regular expression, for error messages and docs).
pub const USERNAME_PATTERN: &str = "^[A-Za-z0-9_.-]+$";
/// Shortest accepted password, in characters.
pub const PASSWORD_MIN_CHARS: usize = 8;
/// Longest accepted password, in characters. Longer passwords are refused, never truncated.
pub const PASSWORD_MAX_CHARS: usize = 128;
/// Longest accepted email address, in bytes (RFC 5321 path limit less the angle brackets).
pub const EMAIL_MAX_BYTES: usize = 254;
/// Longest accepted local part (before the `@`) of an email address, in bytes.
pub const EMAIL_LOCAL_MAX_BYTES: usize = 64;

/// `POST /auth/register/`: a new account, always with the role `user`. Any other field — a
/// `role` in particular — is ignored: nobody chooses their own role.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"username": "testuser", "email": "testuser@email.com", "password": "correct horse battery"}))]
pub struct RegisterRequest {
    /// 3 to 32 characters: ASCII letters, digits, `_`, `.` and `-`. Unique, ignoring case.
    #[schema(
        min_length = 3,
        max_length = 32,
        pattern = "^[A-Za-z0-9_.-]+$",
        example = "testuser"
    )]
    pub username: String,
    /// A valid email address (ASCII). Unique, ignoring case.
    #[schema(format = Email, max_length = 254, example = "testuser@email.com")]
    pub email: String,
    /// 8 to 128 characters; every character counts (nothing is truncated).
    #[schema(format = Password, min_length = 8, max_length = 128, example = "correct horse battery")]
    pub password: String,
}

/// `POST /auth/login/`: credentials as JSON. `username` may also be the account's email.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"username": "testuser", "password": "correct horse battery"}))]
pub struct LoginRequest {
    /// The username or the email address of the account (case does not matter).
    #[schema(min_length = 1, max_length = 254, example = "testuser")]
    pub username: String,
    #[schema(format = Password, min_length = 1, max_length = 128, example = "correct horse battery")]
    pub password: String,
}

/// `POST /auth/token`: the OAuth2 password grant (RFC 6749 §4.3), form-encoded, as Swagger UI's
/// Authorize button sends it. `scope`, `client_id` and `client_secret` are accepted and ignored.
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct TokenForm {
    /// Optional; when present it must be `password`.
    #[serde(default)]
    #[schema(pattern = "^password$", example = "password")]
    pub grant_type: String,
    /// The username or the email address of the account (case does not matter).
    #[schema(min_length = 1, max_length = 254, example = "testuser")]
    pub username: String,
    #[schema(format = Password, min_length = 1, max_length = 128)]
    pub password: String,
    /// Ignored (no scopes are defined).
    #[serde(default)]
    pub scope: String,
    /// Ignored.
    #[serde(default)]
    pub client_id: String,
    /// Ignored.
    #[serde(default)]
    pub client_secret: String,
}

/// A bearer token, as answered by `/auth/login/` and `/auth/token` (with `Cache-Control: no-store`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...", "token_type": "bearer", "expires_in": 1800}))]
pub struct TokenResponse {
    /// A JWT to send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

impl TokenResponse {
    /// A bearer token that lives `expires_in` seconds.
    pub fn bearer(access_token: String, expires_in: u64) -> Self {
        Self {
            access_token,
            token_type: "bearer".to_owned(),
            expires_in,
        }
    }
}

/// An account as the API shows it: the answer of `GET /auth/me/` and of a registration (201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": 1, "username": "testuser", "email": "testuser@email.com", "role": "user"}))]
pub struct UserResponse {
    pub id: i64,
    pub username: String,
    pub email: String,
    /// `user` (a reader), `librarian` or `admin`: what the account may do. Added after the
    /// other fields; an answer without it is a reader's.
    #[serde(default = "reader")]
    #[schema(example = "user")]
    pub role: String,
}

fn reader() -> String {
    "user".to_owned()
}

/// `POST /auth/session`: the web UI's login. The token is not in the body: it is set in the
/// `HttpOnly` cookie `platform_session`, beside the script-readable CSRF cookie
/// `platform_csrf` (answered with `Cache-Control: no-store`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"user": {"id": 1, "username": "testuser", "email": "testuser@email.com", "role": "user"}, "expires_in": 1800}))]
pub struct SessionResponse {
    /// The account now signed in.
    pub user: UserResponse,
    /// Seconds until the session (and both cookies) expire.
    pub expires_in: u64,
}

/// `{"detail": "..."}`: the answer of `POST /auth/logout/` and of every error but a 422.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"detail": "Logged out"}))]
pub struct MessageResponse {
    pub detail: String,
}

impl MessageResponse {
    pub fn new(detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
        }
    }
}

// Passwords must never reach a log through `Debug`.
impl fmt::Debug for RegisterRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisterRequest")
            .field("username", &self.username)
            .field("email", &self.email)
            .field("password", &"[redacted]")
            .finish()
    }
}

impl fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

impl fmt::Debug for TokenForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenForm")
            .field("grant_type", &self.grant_type)
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl Check for RegisterRequest {
    fn check(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        errors.extend(check_username(&self.username));
        if let Err(reason) = check_email(&self.email) {
            errors.push(FieldError::body(
                "email",
                "value_error",
                format!("value is not a valid email address: {reason}"),
            ));
        }
        errors.extend(check_length(
            "password",
            &self.password,
            PASSWORD_MIN_CHARS,
            PASSWORD_MAX_CHARS,
        ));
        errors
    }
}

impl Check for LoginRequest {
    fn check(&self) -> Vec<FieldError> {
        check_credentials(&self.username, &self.password)
    }
}

impl Check for TokenForm {
    fn check(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if !self.grant_type.is_empty() && self.grant_type != "password" {
            errors.push(FieldError::body(
                "grant_type",
                "string_pattern_mismatch",
                "String should match pattern '^password$'",
            ));
        }
        errors.extend(check_credentials(&self.username, &self.password));
        errors
    }
}

/// Login fields: present and of a sane size; anything else is for the password check to say.
fn check_credentials(username: &str, password: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    errors.extend(check_length("username", username, 1, EMAIL_MAX_BYTES));
    errors.extend(check_length("password", password, 1, PASSWORD_MAX_CHARS));
    errors
}

/// The pydantic length error for `field`, counting characters (not bytes).
fn check_length(field: &str, value: &str, min: usize, max: usize) -> Option<FieldError> {
    let chars = value.chars().count();
    if chars < min {
        let unit = if min == 1 { "character" } else { "characters" };
        Some(FieldError::body(
            field,
            "string_too_short",
            format!("String should have at least {min} {unit}"),
        ))
    } else if chars > max {
        Some(FieldError::body(
            field,
            "string_too_long",
            format!("String should have at most {max} characters"),
        ))
    } else {
        None
    }
}

fn check_username(username: &str) -> Option<FieldError> {
    check_length("username", username, USERNAME_MIN_CHARS, USERNAME_MAX_CHARS).or_else(|| {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
        (!username.chars().all(allowed)).then(|| {
            FieldError::body(
                "username",
                "string_pattern_mismatch",
                format!("String should match pattern '{USERNAME_PATTERN}'"),
            )
        })
    })
}

/// Checks the syntax of an ASCII email address (`local@domain`), deliberately stricter than
/// RFC 5322: no quoted local parts, comments or IP-literal domains, which no real sign-up
/// needs and which make case-insensitive uniqueness ambiguous.
///
/// The local part is 1 to 64 bytes of RFC 5322 `atext` and dots (no leading, trailing or
/// doubled dot); the domain has at least two dot-separated labels of 1 to 63 letters, digits
/// or hyphens (no hyphen at either end), and its last label is not all digits; the whole
/// address is at most 254 bytes. Returns the reason when the address is refused.
pub fn check_email(email: &str) -> Result<(), &'static str> {
    if email.is_empty() {
        return Err("An email address must have an @-sign.");
    }
    if !email.is_ascii() {
        return Err("Only ASCII email addresses are accepted.");
    }
    if email.len() > EMAIL_MAX_BYTES {
        return Err("The email address is too long (at most 254 characters).");
    }
    let (local, domain) = email
        .split_once('@')
        .ok_or("An email address must have an @-sign.")?;
    if domain.contains('@') {
        return Err("The email address must have exactly one @-sign.");
    }
    check_local_part(local)?;
    check_domain(domain)
}

fn check_local_part(local: &str) -> Result<(), &'static str> {
    const ATEXT_SPECIALS: &str = "!#$%&'*+/=?^_`{|}~-";
    if local.is_empty() {
        return Err("There must be something before the @-sign.");
    }
    if local.len() > EMAIL_LOCAL_MAX_BYTES {
        return Err("The part before the @-sign is too long (at most 64 characters).");
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err("The part before the @-sign cannot start or end with a period or contain two periods in a row.");
    }
    if !local
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || ATEXT_SPECIALS.contains(c))
    {
        return Err("The part before the @-sign contains a character that is not allowed.");
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<(), &'static str> {
    if domain.is_empty() {
        return Err("There must be something after the @-sign.");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err("The part after the @-sign is not valid. It should have a period.");
    }
    for label in &labels {
        if label.is_empty() {
            return Err("The part after the @-sign cannot start or end with a period or contain two periods in a row.");
        }
        if label.len() > 63 {
            return Err("A part of the domain name is too long (at most 63 characters).");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("A part of the domain name cannot start or end with a hyphen.");
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err("The part after the @-sign contains a character that is not allowed.");
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
    {
        return Err("The part after the @-sign is not a valid domain name.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(errors: &[FieldError]) -> Vec<String> {
        errors
            .iter()
            .map(|e| e.loc[1].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    fn register(username: &str, email: &str, password: &str) -> RegisterRequest {
        RegisterRequest {
            username: username.into(),
            email: email.into(),
            password: password.into(),
        }
    }

    #[test]
    fn accepts_good_addresses() {
        for ok in [
            "a@b.co",
            "testuser@email.com",
            "first.last+tag@sub.example-domain.org",
            "o'brien@x.ie",
            "x@xn--bcher-kva.example",
            &format!("{}@example.com", "a".repeat(64)),
        ] {
            assert_eq!(check_email(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_bad_addresses() {
        let long_domain = format!("a@{}.com", ["b".repeat(60).as_str(); 5].join("."));
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@@b.com",
            "a@b@c.com",
            "a@localhost",
            "a@example..com",
            "a@.example.com",
            "a@example.com.",
            "a@-example.com",
            "a@example-.com",
            "a@exa mple.com",
            "a b@example.com",
            ".a@example.com",
            "a.@example.com",
            "a..b@example.com",
            "\"quoted\"@example.com",
            "a@1.2.3.4",
            "a@[127.0.0.1]",
            "ü@example.com",
            &format!("{}@example.com", "a".repeat(65)),
            &format!("a@{}.com", "b".repeat(64)),
            &long_domain,
        ] {
            assert!(check_email(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(long_domain.len() > EMAIL_MAX_BYTES);
    }

    #[test]
    fn register_reports_every_bad_field() {
        let errors = register("a b", "nope", "short").check();
        assert_eq!(fields(&errors), ["username", "email", "password"]);
        assert_eq!(errors[1].kind, "value_error");
        assert_eq!(errors[2].kind, "string_too_short");
        assert!(register("alice_1.x-y", "alice@example.com", "12345678")
            .check()
            .is_empty());
    }

    #[test]
    fn username_rules() {
        assert_eq!(
            register("ab", "a@b.co", "12345678").check()[0].kind,
            "string_too_short"
        );
        assert_eq!(
            register(&"a".repeat(33), "a@b.co", "12345678").check()[0].kind,
            "string_too_long"
        );
        assert_eq!(
            register("al!ce", "a@b.co", "12345678").check()[0].kind,
            "string_pattern_mismatch"
        );
        assert_eq!(
            register("al@ce", "a@b.co", "12345678").check()[0].kind,
            "string_pattern_mismatch"
        );
        assert!(register(&"a".repeat(32), "a@b.co", "12345678")
            .check()
            .is_empty());
    }

    #[test]
    fn password_length_counts_characters_and_never_truncates() {
        // 128 multi-byte characters are fine (512 bytes); 129 are refused, not cut.
        assert!(register("alice", "a@b.co", &"é".repeat(128))
            .check()
            .is_empty());
        let errors = register("alice", "a@b.co", &"é".repeat(129)).check();
        assert_eq!(errors[0].kind, "string_too_long");
        assert_eq!(errors[0].msg, "String should have at most 128 characters");
    }

    #[test]
    fn token_form_rules() {
        let form: TokenForm =
            serde_urlencoded::from_bytes(b"username=alice&password=secret&scope=").unwrap();
        assert!(form.check().is_empty());
        let form: TokenForm =
            serde_urlencoded::from_bytes(b"grant_type=client_credentials&username=&password=x")
                .unwrap();
        assert_eq!(fields(&form.check()), ["grant_type", "username"]);
        let form: TokenForm =
            serde_urlencoded::from_bytes(b"grant_type=password&username=a&password=b&client_id=c")
                .unwrap();
        assert!(form.check().is_empty());
    }

    #[test]
    fn debug_hides_passwords() {
        let shown = format!(
            "{:?} {:?}",
            register("alice", "a@b.co", "hunter22"),
            LoginRequest {
                username: "alice".into(),
                password: "hunter22".into()
            }
        );
        assert!(!shown.contains("hunter22"), "{shown}");
    }
}
