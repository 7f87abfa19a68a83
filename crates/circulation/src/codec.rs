//! Commands and replies as bytes on a wire, signed so that the receiver can tell they come
//! from a holder of the circulation secret.
//!
//! The body is the JSON of the [`Command`] (or [`Outcome`]); the signature is
//! HMAC-SHA256 over those exact bytes, base64 in the `x-signature` header. Anything that
//! does not verify or parse is poison: it is dead-lettered, never applied.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::command::{Command, Outcome};

/// The header carrying the signature.
pub(crate) const SIGNATURE_HEADER: &str = "x-signature";

/// Signs and verifies bodies with one secret.
#[derive(Clone)]
pub(crate) struct Signer {
    key: Vec<u8>,
}

impl Signer {
    pub(crate) fn new(secret: &str) -> Self {
        Self {
            key: secret.as_bytes().to_vec(),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length")
    }

    /// The base64 signature of `body`.
    pub(crate) fn sign(&self, body: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(body);
        STANDARD.encode(mac.finalize().into_bytes())
    }

    /// Whether `signature` is `body`'s (compared in constant time).
    pub(crate) fn verify(&self, body: &[u8], signature: &str) -> bool {
        let Ok(raw) = STANDARD.decode(signature) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(body);
        mac.verify_slice(&raw).is_ok()
    }

    /// A command's body and signature.
    pub(crate) fn encode_command(&self, command: &Command) -> (Vec<u8>, String) {
        let body = serde_json::to_vec(command).expect("commands serialise");
        let signature = self.sign(&body);
        (body, signature)
    }

    /// The command in `body`, if `signature` is its signature and it parses.
    pub(crate) fn decode_command(
        &self,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<Command, String> {
        self.check(body, signature)?;
        serde_json::from_slice(body).map_err(|e| format!("undecodable command: {e}"))
    }

    /// A reply's body and signature.
    pub(crate) fn encode_outcome(&self, outcome: &Outcome) -> (Vec<u8>, String) {
        let body = serde_json::to_vec(outcome).expect("outcomes serialise");
        let signature = self.sign(&body);
        (body, signature)
    }

    /// The outcome in `body`, if signed and parseable.
    pub(crate) fn decode_outcome(
        &self,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<Outcome, String> {
        self.check(body, signature)?;
        serde_json::from_slice(body).map_err(|e| format!("undecodable reply: {e}"))
    }

    fn check(&self, body: &[u8], signature: Option<&str>) -> Result<(), String> {
        match signature {
            None => Err("unsigned message".into()),
            Some(s) if self.verify(body, s) => Ok(()),
            Some(_) => Err("bad signature".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::CommandKind;
    use common::auth::Role;
    use std::time::Duration;

    #[test]
    fn only_the_signed_bytes_verify() {
        let signer = Signer::new("k".repeat(32).as_str());
        let command = Command::new(
            CommandKind::Borrow { book_id: 1 },
            7,
            Role::User,
            None,
            Duration::from_secs(5),
        );
        let (body, sig) = signer.encode_command(&command);
        assert_eq!(signer.decode_command(&body, Some(&sig)).unwrap(), command);

        // Someone who can publish but lacks the secret cannot act as another user.
        let forged = String::from_utf8(body.clone())
            .unwrap()
            .replace("\"user_id\":7", "\"user_id\":8");
        assert_eq!(
            signer.decode_command(forged.as_bytes(), Some(&sig)),
            Err("bad signature".into())
        );
        let other = Signer::new("o".repeat(32).as_str());
        let (_, other_sig) = other.encode_command(&command);
        assert!(signer.decode_command(&body, Some(&other_sig)).is_err());
        assert_eq!(
            signer.decode_command(&body, None),
            Err("unsigned message".into())
        );
        assert!(signer.decode_command(&body, Some("not base64!")).is_err());
        let garbage = b"{not json";
        let sig = signer.sign(garbage);
        assert!(signer
            .decode_command(garbage, Some(&sig))
            .unwrap_err()
            .starts_with("undecodable"));
    }
}
