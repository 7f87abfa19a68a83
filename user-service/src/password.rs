//! The password schemes: how a password becomes a stored hash and how a candidate is checked
//! against one. Blocking and pure (bcrypt only); [`crate::hasher`] runs it off the runtime.
//!
//! # Schemes
//!
//! bcrypt reads at most 72 bytes of its input, so a longer password would be silently cut and
//! any two passwords sharing their first 72 bytes would be equal. Every new hash therefore
//! records its scheme (column `users.password_scheme`):
//!
//! * [`Scheme::Bcrypt`] (`bcrypt`): a password of **at most 72 bytes** (UTF-8), bcrypted as
//!   it is — exactly what passlib did in the original app;
//! * [`Scheme::BcryptSha256`] (`bcrypt-sha256`): a password of **more than 72 bytes**, bcrypted
//!   over `base64(SHA-256(password))` (44 ASCII bytes, standard alphabet with padding): the
//!   digest depends on every byte, and base64 keeps NUL bytes out of bcrypt's input.
//!
//! Verification honours the recorded scheme strictly: a candidate of at most 72 bytes never
//! verifies against a `bcrypt-sha256` hash, nor a longer one against a `bcrypt` hash. That is
//! what closes the "second password": without the record, the 44-character digest of a long
//! password — an unsalted SHA-256 that may have leaked elsewhere — was itself a password of
//! at most 72 bytes whose plain bcrypt was the stored hash.
//!
//! # Legacy rows (no recorded scheme)
//!
//! The original app's passlib hashes and this platform's rows from before the record are
//! checked by the candidate's length:
//!
//! * **at most 72 bytes**: bcrypt of the candidate as it is, *except* a candidate shaped like
//!   the base64 of a SHA-256 digest (44 characters of the base64 alphabet ending in `=`, whose
//!   last data character carries no stray bits), which is refused: it may be the leaked digest
//!   of a long password. The cost: an account whose real password has exactly that shape (e.g.
//!   the output of `openssl rand -base64 32`) cannot log in until its password is reset — the
//!   two cases produce the very same stored hash, so they cannot be told apart;
//! * **more than 72 bytes**: first `base64(SHA-256(candidate))` (this platform's older rows),
//!   then the first 72 bytes (passlib cut longer passwords there, so those users can log in
//!   again; until the re-hash, any candidate over 72 bytes sharing those 72 bytes matches, as
//!   it did under passlib).
//!
//! A legacy match is reported as [`Verdict::LegacyMatch`] so that the caller re-hashes the
//! password under its scheme and records it: each legacy account leaves the legacy rules at its
//! next login.
//!
//! # Timing
//!
//! A check always runs its bcrypts, also when the answer is known beforehand (a candidate of
//! the wrong length for the recorded scheme, a digest-shaped one), so a refusal takes as long
//! as a check — one bcrypt, like the dummy hash an unknown user is checked against. The one
//! exception: a candidate over 72 bytes against a legacy row takes two, so such a guess can
//! tell an account still on a legacy hash from a missing one, until that account's next login.

use base64::Engine;
use sha2::{Digest, Sha256};

/// bcrypt reads at most this many bytes of a password.
pub const BCRYPT_MAX_BYTES: usize = 72;

/// Length of `base64(SHA-256(..))` with padding.
const DIGEST_B64_LEN: usize = 44;

/// How a stored hash was made from the password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// bcrypt of the password itself (at most 72 bytes).
    Bcrypt,
    /// bcrypt of `base64(SHA-256(password))` (passwords over 72 bytes).
    BcryptSha256,
}

impl Scheme {
    /// The name recorded in `users.password_scheme`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Bcrypt => "bcrypt",
            Scheme::BcryptSha256 => "bcrypt-sha256",
        }
    }

    /// The scheme named `name`, if this version knows it.
    pub fn parse(name: &str) -> Option<Scheme> {
        [Scheme::Bcrypt, Scheme::BcryptSha256]
            .into_iter()
            .find(|s| s.as_str() == name)
    }

    /// The scheme a new hash of `password` uses.
    pub fn for_password(password: &str) -> Scheme {
        if password.len() > BCRYPT_MAX_BYTES {
            Scheme::BcryptSha256
        } else {
            Scheme::Bcrypt
        }
    }
}

/// A stored hash and the scheme recorded with it (`None`: a legacy row).
#[derive(Clone)]
pub struct StoredPassword {
    pub hash: String,
    /// The `password_scheme` column as stored.
    pub scheme: Option<String>,
}

impl std::fmt::Debug for StoredPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredPassword")
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

/// A new hash with the scheme to record beside it.
#[derive(Clone, Debug)]
pub struct NewHash {
    pub hash: String,
    pub scheme: Scheme,
}

/// The outcome of checking a candidate password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Mismatch,
    Match,
    /// A match under the legacy rules: re-hash the password and record its scheme.
    LegacyMatch,
}

impl Verdict {
    pub fn matched(self) -> bool {
        self != Verdict::Mismatch
    }
}

/// Hashes `password` at `cost` under its scheme.
pub fn hash(password: &str, cost: u32) -> Result<NewHash, bcrypt::BcryptError> {
    let scheme = Scheme::for_password(password);
    let hash = match scheme {
        Scheme::Bcrypt => bcrypt::hash(password, cost)?,
        Scheme::BcryptSha256 => bcrypt::hash(digest_b64(password), cost)?,
    };
    Ok(NewHash { hash, scheme })
}

/// Checks `candidate` against `stored` (see the module documentation for the rules).
pub fn verify(candidate: &str, stored: &StoredPassword) -> Result<Verdict, bcrypt::BcryptError> {
    let long = candidate.len() > BCRYPT_MAX_BYTES;
    let Some(recorded) = stored.scheme.as_deref() else {
        return verify_legacy(candidate, &stored.hash);
    };
    // The bcrypt runs first, whatever the length: a refusal takes the same time as a check.
    let matched = match Scheme::parse(recorded) {
        Some(Scheme::Bcrypt) => bcrypt::verify(candidate, &stored.hash)? && !long,
        Some(Scheme::BcryptSha256) => bcrypt::verify(digest_b64(candidate), &stored.hash)? && long,
        None => {
            // Written by a newer version: nothing here can check it, and guessing would
            // reopen what the record closes.
            tracing::warn!(
                scheme = recorded,
                "unknown password scheme; refusing the login"
            );
            false
        }
    };
    Ok(if matched {
        Verdict::Match
    } else {
        Verdict::Mismatch
    })
}

fn verify_legacy(candidate: &str, hash: &str) -> Result<Verdict, bcrypt::BcryptError> {
    // Every bcrypt runs, whatever the outcome, so that the time says nothing more than the
    // length of the candidate did.
    let matched = if candidate.len() > BCRYPT_MAX_BYTES {
        let as_digest = bcrypt::verify(digest_b64(candidate), hash)?;
        let truncated = bcrypt::verify(&candidate.as_bytes()[..BCRYPT_MAX_BYTES], hash)?;
        as_digest || truncated
    } else {
        bcrypt::verify(candidate, hash)? && !looks_like_digest_b64(candidate)
    };
    Ok(if matched {
        Verdict::LegacyMatch
    } else {
        Verdict::Mismatch
    })
}

/// `base64(SHA-256(password))`: what a password over 72 bytes is bcrypted as.
pub fn digest_b64(password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(password.as_bytes()))
}

/// Whether `candidate` could be `base64(SHA-256(..))`: 44 characters, 43 of the standard
/// alphabet then `=`, the 43rd carrying only the digest's last 4 bits (its low 2 bits zero).
pub fn looks_like_digest_b64(candidate: &str) -> bool {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = candidate.as_bytes();
    if bytes.len() != DIGEST_B64_LEN || bytes[DIGEST_B64_LEN - 1] != b'=' {
        return false;
    }
    let data = &bytes[..DIGEST_B64_LEN - 1];
    let value = |c: u8| ALPHABET.iter().position(|&a| a == c);
    data.iter().all(|&c| value(c).is_some())
        && value(data[DIGEST_B64_LEN - 2]).is_some_and(|v| v % 4 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(hash: String, scheme: Option<Scheme>) -> StoredPassword {
        StoredPassword {
            hash,
            scheme: scheme.map(|s| s.as_str().to_owned()),
        }
    }

    #[test]
    fn short_passwords_are_bcrypted_as_they_are() {
        let pw = "x".repeat(72);
        let new = hash(&pw, 4).unwrap();
        assert_eq!(new.scheme, Scheme::Bcrypt);
        assert!(
            bcrypt::verify(&pw, &new.hash).unwrap(),
            "passlib-compatible"
        );
        assert_eq!(
            verify(&pw, &stored(new.hash, Some(new.scheme))).unwrap(),
            Verdict::Match
        );
    }

    #[test]
    fn long_passwords_keep_every_byte() {
        let long = "y".repeat(100);
        let mut changed = long.clone();
        changed.replace_range(90..91, "z");
        let new = hash(&long, 4).unwrap();
        assert_eq!(new.scheme, Scheme::BcryptSha256);
        assert!(new.hash.starts_with("$2b$04$"));
        let row = stored(new.hash, Some(new.scheme));
        assert_eq!(verify(&long, &row).unwrap(), Verdict::Match);
        assert_eq!(verify(&changed, &row).unwrap(), Verdict::Mismatch);
        assert_eq!(verify(&long[..72], &row).unwrap(), Verdict::Mismatch);
        // 73 bytes is over the limit even though it is one byte more.
        assert_eq!(Scheme::for_password(&"w".repeat(73)), Scheme::BcryptSha256);
    }

    #[test]
    fn the_digest_of_a_long_password_is_not_a_second_password() {
        let long = "p".repeat(80);
        let digest = digest_b64(&long);
        assert_eq!(digest.len(), 44);
        assert!(looks_like_digest_b64(&digest));
        let new = hash(&long, 4).unwrap();
        // Recorded scheme: a short candidate never checks against bcrypt-sha256.
        assert_eq!(
            verify(&digest, &stored(new.hash.clone(), Some(new.scheme))).unwrap(),
            Verdict::Mismatch
        );
        // Legacy row of this platform (same hash, no record): the digest's shape is refused,
        // the long password itself still matches (and asks for a re-hash).
        let legacy = stored(new.hash, None);
        assert_eq!(verify(&digest, &legacy).unwrap(), Verdict::Mismatch);
        assert_eq!(verify(&long, &legacy).unwrap(), Verdict::LegacyMatch);
    }

    #[test]
    fn legacy_passlib_rows_verify_even_when_passlib_truncated_them() {
        let short = stored(bcrypt::hash("hunter22", 4).unwrap(), None);
        assert_eq!(verify("hunter22", &short).unwrap(), Verdict::LegacyMatch);
        assert_eq!(verify("hunter23", &short).unwrap(), Verdict::Mismatch);
        let long = "é".repeat(50); // 100 bytes
        let truncated = stored(bcrypt::hash(&long.as_bytes()[..72], 4).unwrap(), None);
        assert_eq!(verify(&long, &truncated).unwrap(), Verdict::LegacyMatch);
        let other_start = format!("è{}", "é".repeat(49));
        assert_eq!(verify(&other_start, &truncated).unwrap(), Verdict::Mismatch);
        // Until its re-hash such a row cannot tell apart candidates that share its first 72
        // bytes — what passlib stored is all there is.
        assert_eq!(
            verify(&"é".repeat(49), &truncated).unwrap(),
            Verdict::LegacyMatch
        );
        assert_eq!(
            verify(&"é".repeat(35), &truncated).unwrap(),
            Verdict::Mismatch
        );
    }

    #[test]
    fn recorded_schemes_are_strict_and_unknown_ones_refuse() {
        let plain = hash("hunter22", 4).unwrap();
        assert_eq!(
            verify(
                "hunter22",
                &stored(plain.hash.clone(), Some(Scheme::BcryptSha256))
            )
            .unwrap(),
            Verdict::Mismatch
        );
        let future = StoredPassword {
            hash: plain.hash,
            scheme: Some("argon2id".into()),
        };
        assert_eq!(verify("hunter22", &future).unwrap(), Verdict::Mismatch);
        assert!(verify("x", &stored("not a hash".into(), Some(Scheme::Bcrypt))).is_err());
    }

    #[test]
    fn digest_shape() {
        let digest = digest_b64("anything");
        assert!(looks_like_digest_b64(&digest));
        // The 43rd character of a digest encodes 4 bits: `B` (value 1) cannot occur there.
        let mut odd = digest.clone().into_bytes();
        odd[42] = b'B';
        assert!(!looks_like_digest_b64(std::str::from_utf8(&odd).unwrap()));
        assert!(!looks_like_digest_b64(&digest[..43]));
        assert!(!looks_like_digest_b64(&format!("{}-=", &digest[..42])));
        assert!(!looks_like_digest_b64(
            "correct horse battery staple, 44 chars long="
        ));
    }
}
