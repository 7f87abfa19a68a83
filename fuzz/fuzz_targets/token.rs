//! Bearer tokens on arbitrary `Authorization` bytes: `common::auth::token_of`,
//! `TokenVerifier::verify` with an HS256 verifier and with a JWKS (EdDSA) verifier, and
//! `Authenticator::authenticate_header` with a live session — what the gateway and every
//! service decide before anything else.
//!
//! Input: when the first byte is ASCII, the whole input is the raw header value (so a file
//! holding `Bearer <token>` is a seed as it is). Otherwise bit 0 of the first byte picks a
//! genuine token (HS256 or EdDSA) and the rest is a list of edits applied to it.
//!
//! Invariants:
//! - nothing panics;
//! - `token_of` gives a non-empty, trimmed token of a header reading `Bearer <token>` (any
//!   case), or `Missing`;
//! - a verifier accepts only the genuine token signed with its own key, byte for byte: an
//!   edited token is refused unless the edits gave the same token back; neither verifier
//!   accepts the other's token;
//! - `authenticate_header` accepts exactly what the HS256 verifier accepts (the genuine
//!   token's session is live), and every refusal is answered 401 with an RFC 6750 challenge.

#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::auth::{
    token_of, AuthError, Authenticator, Claims, Role, SessionData, Sessions, TokenVerifier,
    VerifyKey,
};
use common::kv::Kv;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use libfuzzer_sys::arbitrary::{self, Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"fuzz-secret-0123456789abcdef-0123456789";
/// The Ed25519 test key of the gateway's tests (gateway/tests/gateway/proxying.rs).
const PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEID0G11wSXZDwtjLjeQZVihRgj1tECVtzekTw4dWzjgrK\n-----END PRIVATE KEY-----\n";
const PUBLIC_X: &str = "2n8_tpwFV4Zjo4OzddhxO1ISRp99cqyLKfH_TgF_R8g";
const ISSUER: &str = "user-service";
const AUDIENCE: &str = "platform";
const SID: &str = "fuzz-session";

struct Fixture {
    hs: Arc<TokenVerifier>,
    ed: TokenVerifier,
    hs_token: String,
    ed_token: String,
    auth: Authenticator,
    runtime: tokio::runtime::Runtime,
}

fn claims() -> Claims {
    Claims {
        sub: "7".into(),
        sid: SID.into(),
        username: "alice".into(),
        role: "user".into(),
        iat: 1_700_000_000,
        // 2100-01-01: the genuine tokens stay current.
        exp: 4_102_444_800,
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let hs = Arc::new(
            TokenVerifier::new(
                VerifyKey::Hmac {
                    algorithm: Algorithm::HS256,
                    secrets: vec![SECRET.to_vec()],
                },
                ISSUER,
                AUDIENCE,
                Duration::from_secs(5),
            )
            .expect("HS256 verifier"),
        );
        let jwks: JwkSet = serde_json::from_value(serde_json::json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": PUBLIC_X, "kid": "k1", "alg": "EdDSA", "use": "sig"}
        ]}))
        .expect("JWKS");
        let ed = TokenVerifier::new(VerifyKey::Jwks(jwks), ISSUER, AUDIENCE, Duration::from_secs(5))
            .expect("JWKS verifier");
        let hs_token = encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(SECRET),
        )
        .expect("HS256 token");
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some("k1".into());
        let ed_token = encode(
            &header,
            &claims(),
            &EncodingKey::from_ed_pem(PRIVATE_PEM.as_bytes()).expect("Ed25519 key"),
        )
        .expect("EdDSA token");

        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let sessions = Sessions::new(Kv::memory("fuzz:"));
        let session = SessionData {
            user_id: 7,
            username: "alice".into(),
            email: "alice@example.com".into(),
            role: Role::User,
        };
        runtime
            .block_on(sessions.create(SID, &session, Duration::from_secs(365 * 24 * 3600)))
            .expect("session");
        let auth = Authenticator::new(Arc::clone(&hs), sessions);

        // The fixture itself is right: each verifier takes its own token and only that.
        assert_eq!(hs.verify(&hs_token).expect("HS256 token verifies"), claims());
        assert_eq!(ed.verify(&ed_token).expect("EdDSA token verifies"), claims());
        assert!(matches!(hs.verify(&ed_token), Err(AuthError::Invalid)));
        assert!(matches!(ed.verify(&hs_token), Err(AuthError::Invalid)));
        Fixture {
            hs,
            ed,
            hs_token,
            ed_token,
            auth,
            runtime,
        }
    })
}

/// One edit of a token's bytes; positions wrap around the current length.
#[derive(Debug, Arbitrary)]
enum Edit {
    Set {
        at: u16,
        byte: u8,
    },
    Insert {
        at: u16,
        byte: u8,
    },
    Remove {
        at: u16,
    },
    Splice {
        at: u16,
        len: u8,
        bytes: Vec<u8>,
    },
    /// Swaps two of the dot-separated segments.
    Swap {
        a: u8,
        b: u8,
    },
    /// Flips one bit of one character's base64url value (keeps the alphabet).
    FlipBase64 {
        at: u16,
        bit: u8,
    },
}

const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn apply(token: &mut Vec<u8>, edit: &Edit) {
    let pos = |at: u16, len: usize| if len == 0 { 0 } else { usize::from(at) % len };
    match *edit {
        Edit::Set { at, byte } => {
            if !token.is_empty() {
                let i = pos(at, token.len());
                token[i] = byte;
            }
        }
        Edit::Insert { at, byte } => {
            let i = pos(at, token.len() + 1);
            token.insert(i, byte);
        }
        Edit::Remove { at } => {
            if !token.is_empty() {
                let i = pos(at, token.len());
                token.remove(i);
            }
        }
        Edit::Splice { at, len, ref bytes } => {
            let i = pos(at, token.len() + 1);
            let end = (i + usize::from(len)).min(token.len());
            token.splice(i..end, bytes.iter().copied());
        }
        Edit::Swap { a, b } => {
            let mut parts: Vec<Vec<u8>> = token.split(|&c| c == b'.').map(<[u8]>::to_vec).collect();
            let (a, b) = (usize::from(a) % parts.len(), usize::from(b) % parts.len());
            parts.swap(a, b);
            *token = parts.join(&b'.');
        }
        Edit::FlipBase64 { at, bit } => {
            if !token.is_empty() {
                let i = pos(at, token.len());
                if let Some(v) = BASE64URL.iter().position(|&c| c == token[i]) {
                    token[i] = BASE64URL[v ^ (1 << (bit % 6))];
                }
            }
        }
    }
}

fn assert_refusal(e: &AuthError) {
    assert!(
        !matches!(e, AuthError::Unavailable(_) | AuthError::KeysUnavailable),
        "{e:?}"
    );
    assert_eq!(e.status(), 401);
    assert!(e.challenge().is_some());
    let body: serde_json::Value = serde_json::from_slice(e.body()).expect("JSON body");
    assert_eq!(body["detail"], e.detail());
}

/// Verifies `token` with both verifiers: each accepts only its own genuine token.
fn check_token(f: &Fixture, token: &str) {
    match f.hs.verify(token) {
        Ok(c) => {
            assert_eq!(token, f.hs_token, "HS256 accepted a token it did not sign");
            assert_eq!(c, claims());
        }
        Err(e) => {
            assert_ne!(token, f.hs_token, "the genuine HS256 token refused: {e:?}");
            assert_refusal(&e);
        }
    }
    match f.ed.verify(token) {
        Ok(c) => {
            assert_eq!(token, f.ed_token, "EdDSA accepted a token it did not sign");
            assert_eq!(c, claims());
        }
        Err(e) => {
            assert_ne!(token, f.ed_token, "the genuine EdDSA token refused: {e:?}");
            assert_refusal(&e);
        }
    }
}

/// The whole check of a raw header value, as the gateway and the services make it.
fn check_header(f: &Fixture, header: &[u8]) {
    let token = match token_of(Some(header)) {
        Ok(token) => {
            assert!(!token.is_empty() && token.trim() == token, "{token:?}");
            let text = std::str::from_utf8(header).expect("a token is UTF-8");
            let (scheme, _) = text.trim().split_once(' ').expect("scheme and token");
            assert!(scheme.eq_ignore_ascii_case("bearer"), "{text:?}");
            check_token(f, token);
            Some(token)
        }
        Err(e) => {
            assert!(matches!(e, AuthError::Missing), "{e:?}");
            assert_refusal(&e);
            None
        }
    };
    match f.runtime.block_on(f.auth.authenticate_header(Some(header))) {
        Ok((c, session)) => {
            assert_eq!(token, Some(f.hs_token.as_str()));
            assert_eq!(c, claims());
            assert_eq!(session.user_id, 7);
        }
        Err(e) => {
            assert_ne!(
                token,
                Some(f.hs_token.as_str()),
                "genuine token refused: {e:?}"
            );
            assert_refusal(&e);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some(&first) = data.first() else {
        check_header(f, data);
        return;
    };
    if first.is_ascii() {
        check_header(f, data);
        return;
    }
    let genuine = if first & 1 == 0 {
        &f.hs_token
    } else {
        &f.ed_token
    };
    let u = Unstructured::new(&data[1..]);
    let Ok(edits) = Vec::<Edit>::arbitrary_take_rest(u) else {
        return;
    };
    let mut token = genuine.as_bytes().to_vec();
    for edit in &edits {
        apply(&mut token, edit);
    }
    let token = String::from_utf8_lossy(&token);
    check_token(f, &token);
    let mut header = b"Bearer ".to_vec();
    header.extend_from_slice(token.as_bytes());
    check_header(f, &header);
});
