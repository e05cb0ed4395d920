//! Coinbase CDP JWT verification, written for the fake alone (it shares no
//! code with anx's signer, so a bug there cannot hide here).
//!
//! The fake reads the same key file as the client (`{"name", "privateKey"}`),
//! derives the public key and checks every request's
//! `Authorization: Bearer <jwt>`:
//! - header `{"alg": "ES256"|"EdDSA", "kid": <key name>, "nonce", "typ": "JWT"}`
//!   (alg must match the key; typ, if present, must be JWT);
//! - the signature: ES256 as JWS's raw 64-byte r‖s, EdDSA as Ed25519's 64 bytes;
//! - claims `{"sub": <key name>, "iss": "cdp", "nbf", "exp", "uri"}` with
//!   `uri` = "METHOD host/path" (the Host header as addressed, no query);
//! - `exp` not past, `nbf` not more than `NBF_LEEWAY_S` ahead, a lifetime
//!   `exp − nbf` of at most `LIFETIME_S_MAX`, and a nonce never seen before.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// How far in the future `nbf` may be (clock skew allowed).
pub const NBF_LEEWAY_S: i64 = 5;
/// The longest a token may live (Coinbase's tokens last two minutes).
pub const LIFETIME_S_MAX: i64 = 120;

/// The key requests must be signed with.
pub enum PublicKey {
    Es256(p256::ecdsa::VerifyingKey),
    EdDsa(ed25519_dalek::VerifyingKey),
}

impl PublicKey {
    fn alg(&self) -> &'static str {
        match self {
            PublicKey::Es256(_) => "ES256",
            PublicKey::EdDsa(_) => "EdDSA",
        }
    }
}

#[derive(Deserialize)]
struct KeyFile {
    name: String,
    #[serde(rename = "privateKey")]
    private_key: String,
}

/// Reads a CDP key file: its key name and the public half of its key.
pub fn load_key_file(path: &std::path::Path) -> Result<(String, PublicKey), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read key file {}: {e}", path.display()))?;
    let file: KeyFile =
        serde_json::from_str(&text).map_err(|e| format!("key file {}: {e}", path.display()))?;
    let key =
        public_key(&file.private_key).map_err(|e| format!("key file {}: {e}", path.display()))?;
    Ok((file.name, key))
}

/// The public key of a private key as Coinbase hands it out: SEC1 PEM
/// (P-256), PKCS#8 PEM (P-256 or Ed25519), or base64 of an Ed25519 seed
/// (32 bytes) or seed and public key (64 bytes).
pub fn public_key(private_key: &str) -> Result<PublicKey, String> {
    // One trait (the pkcs8 crate's) for both curves.
    use ed25519_dalek::pkcs8::DecodePrivateKey as _;
    // Some exports carry the newlines escaped twice.
    let text = private_key.replace("\\n", "\n");
    let text = text.trim();
    if text.contains("BEGIN EC PRIVATE KEY") {
        let secret = p256::SecretKey::from_sec1_pem(text)
            .map_err(|e| format!("not a P-256 SEC1 key: {e}"))?;
        let signing = p256::ecdsa::SigningKey::from(&secret);
        return Ok(PublicKey::Es256(*signing.verifying_key()));
    }
    if text.contains("BEGIN PRIVATE KEY") {
        if let Ok(secret) = p256::SecretKey::from_pkcs8_pem(text) {
            let signing = p256::ecdsa::SigningKey::from(&secret);
            return Ok(PublicKey::Es256(*signing.verifying_key()));
        }
        let signing = ed25519_dalek::SigningKey::from_pkcs8_pem(text)
            .map_err(|e| format!("PKCS#8 key is neither P-256 nor Ed25519: {e}"))?;
        return Ok(PublicKey::EdDsa(signing.verifying_key()));
    }
    let bytes = STANDARD
        .decode(text)
        .map_err(|e| format!("privateKey is neither PEM nor base64: {e}"))?;
    let seed: [u8; 32] = bytes
        .get(..32)
        .and_then(|s| s.try_into().ok())
        .filter(|_| bytes.len() == 32 || bytes.len() == 64)
        .ok_or_else(|| format!("an Ed25519 key is 32 or 64 bytes, not {}", bytes.len()))?;
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    if bytes.len() == 64 && bytes[32..] != signing.verifying_key().to_bytes() {
        return Err("the Ed25519 key's public half does not match its seed".into());
    }
    Ok(PublicKey::EdDsa(signing.verifying_key()))
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    nonce: Option<String>,
    typ: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    iss: Option<String>,
    nbf: Option<i64>,
    exp: Option<i64>,
    uri: Option<String>,
}

/// What a token is checked against.
pub struct Presented<'a> {
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub authorization: Option<&'a str>,
    /// The auth clock, Unix seconds.
    pub now_s: i64,
}

/// Verifies tokens and remembers their nonces until they expire.
pub struct Verifier {
    key_name: String,
    key: PublicKey,
    /// Nonce → the `exp` of the token that used it.
    nonces: Mutex<BTreeMap<String, i64>>,
}

impl Verifier {
    pub fn new(key_name: String, key: PublicKey) -> Verifier {
        Verifier {
            key_name,
            key,
            nonces: Mutex::new(BTreeMap::new()),
        }
    }

    /// Ok, or why the request is unauthenticated.
    pub fn verify(&self, presented: &Presented) -> Result<(), String> {
        let authorization = presented
            .authorization
            .ok_or("missing Authorization header")?;
        let token = authorization
            .strip_prefix("Bearer ")
            .ok_or("Authorization is not a Bearer token")?;
        let parts: Vec<&str> = token.split('.').collect();
        let [header_b64, claims_b64, signature_b64] = parts[..] else {
            return Err("the token is not three base64url parts".into());
        };
        let header: Header = decode_part(header_b64, "header")?;
        let claims: Claims = decode_part(claims_b64, "claims")?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| "the signature is not base64url")?;
        if header.alg != self.key.alg() {
            return Err(format!(
                "alg {} does not match the key ({})",
                header.alg,
                self.key.alg()
            ));
        }
        let signed = format!("{header_b64}.{claims_b64}");
        self.check_signature(signed.as_bytes(), &signature)?;
        self.check_header(&header)?;
        let nonce = header.nonce.clone().unwrap_or_default();
        let exp = self.check_claims(&claims, presented)?;
        self.use_nonce(nonce, exp, presented.now_s)
    }

    fn check_signature(&self, signed: &[u8], signature: &[u8]) -> Result<(), String> {
        let bad = || "signature verification failed".to_string();
        match &self.key {
            PublicKey::Es256(key) => {
                use p256::ecdsa::signature::Verifier as _;
                let sig = p256::ecdsa::Signature::from_slice(signature).map_err(|_| bad())?;
                key.verify(signed, &sig).map_err(|_| bad())
            }
            PublicKey::EdDsa(key) => {
                let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|_| bad())?;
                key.verify_strict(signed, &sig).map_err(|_| bad())
            }
        }
    }

    fn check_header(&self, header: &Header) -> Result<(), String> {
        if header.kid.as_deref() != Some(self.key_name.as_str()) {
            return Err("kid is not the key name".into());
        }
        if header.typ.as_deref().is_some_and(|typ| typ != "JWT") {
            return Err("typ is not JWT".into());
        }
        match header.nonce.as_deref() {
            Some(nonce) if !nonce.is_empty() => Ok(()),
            _ => Err("the header has no nonce".into()),
        }
    }

    /// Checks the claims; returns `exp`.
    fn check_claims(&self, claims: &Claims, presented: &Presented) -> Result<i64, String> {
        if claims.sub.as_deref() != Some(self.key_name.as_str()) {
            return Err("sub is not the key name".into());
        }
        if claims.iss.as_deref() != Some("cdp") {
            return Err("iss is not cdp".into());
        }
        let expected = format!("{} {}{}", presented.method, presented.host, presented.path);
        if claims.uri.as_deref() != Some(expected.as_str()) {
            return Err(format!(
                "uri {:?} does not match the request {expected:?}",
                claims.uri.as_deref().unwrap_or("")
            ));
        }
        let (Some(nbf), Some(exp)) = (claims.nbf, claims.exp) else {
            return Err("nbf and exp are required".into());
        };
        let now = presented.now_s;
        if exp < now {
            return Err(format!("the token expired at {exp}, now is {now}"));
        }
        if nbf > now + NBF_LEEWAY_S {
            return Err(format!("the token is not valid before {nbf}, now is {now}"));
        }
        if exp <= nbf || exp - nbf > LIFETIME_S_MAX {
            return Err(format!(
                "exp − nbf must be in (0, {LIFETIME_S_MAX}] s, is {}",
                exp.saturating_sub(nbf)
            ));
        }
        Ok(exp)
    }

    /// A nonce counts once; it is forgotten once its token can no longer pass.
    fn use_nonce(&self, nonce: String, exp: i64, now_s: i64) -> Result<(), String> {
        let mut nonces = self.nonces.lock().unwrap_or_else(|e| e.into_inner());
        nonces.retain(|_, seen_exp| *seen_exp >= now_s - NBF_LEEWAY_S);
        if nonces.contains_key(&nonce) {
            return Err("the nonce was used before".into());
        }
        nonces.insert(nonce, exp);
        Ok(())
    }
}

fn decode_part<T: for<'de> Deserialize<'de>>(part: &str, what: &str) -> Result<T, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| format!("the token's {what} is not base64url"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("the token's {what} is not valid: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixture_key_loads() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/keys");
        for (file, alg) in [
            ("ecdsa.json", "ES256"),
            ("ecdsa-other.json", "ES256"),
            ("ed25519.json", "EdDSA"),
            ("ed25519-pem.json", "EdDSA"),
        ] {
            let (_, key) = load_key_file(&dir.join(file)).unwrap();
            assert_eq!(key.alg(), alg, "{file}");
        }
    }

    #[test]
    fn garbage_keys_are_refused() {
        assert!(public_key("not a key").is_err());
        assert!(public_key(&STANDARD.encode([1u8; 40])).is_err());
        let mut pair = [7u8; 64];
        pair[40] = 0;
        assert!(public_key(&STANDARD.encode(pair)).is_err());
    }
}
