//! Coinbase CDP API keys and the JWT that authenticates each request.
//!
//! Coinbase's Advanced Trade API takes a fresh JWT per request
//! (docs.cdp.coinbase.com, "JWT Authentication"; the official
//! coinbase-advanced-py SDK, `jwt_generator.build_rest_jwt`):
//! - header: `alg` (ES256 or EdDSA), `kid` = the key name, `nonce` = random
//!   hex, `typ` = JWT;
//! - claims: `sub` = the key name, `iss` = "cdp", `nbf` = now, `exp` = now +
//!   120 s (Coinbase's maximum), `uri` = "METHOD host/path" (no query);
//! - ES256 signs with the raw 64-byte r||s of ECDSA P-256 over SHA-256 (JWS).
//!
//! Keys come as Coinbase hands them out: the downloaded key JSON
//! (`{"name": "organizations/…/apiKeys/…", "privateKey": "-----BEGIN EC
//! PRIVATE KEY-----…"}`) or the environment variables `COINBASE_API_KEY` (the
//! name) and `COINBASE_API_SECRET` (the private key). The private key may be a
//! SEC1 or PKCS#8 PEM of a P-256 key, a PKCS#8 PEM of an Ed25519 key, or
//! Coinbase's Ed25519 export: base64 of the 32-byte seed and the 32-byte
//! public key.
//!
//! A secret never leaves this module: [`Credentials`] prints as its key name
//! only, and every error names the source (file or variable), never the text.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use std::fmt;
use std::path::Path;

/// Coinbase's longest token life.
pub const TOKEN_LIFE_S: i64 = 120;
/// The environment variables the official SDK reads.
pub const ENV_KEY_NAME: &str = "COINBASE_API_KEY";
pub const ENV_KEY_SECRET: &str = "COINBASE_API_SECRET";
/// A key file larger than this is not a key file.
const KEY_FILE_BYTES_MAX: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("no Coinbase API key: give --key-file, or set {ENV_KEY_NAME} and {ENV_KEY_SECRET}")]
    Missing,
    #[error("{ENV_KEY_NAME} is set but {ENV_KEY_SECRET} is not (or the other way round)")]
    HalfSet,
    #[error("cannot read the key file {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("{source_name}: {reason}")]
    Invalid { source_name: String, reason: String },
}

enum SigningKey {
    Es256(p256::ecdsa::SigningKey),
    EdDsa(ed25519_dalek::SigningKey),
}

/// A Coinbase API key: its name and its private key. Debug and Display show
/// the name and the algorithm, never the key.
pub struct Credentials {
    name: String,
    key: SigningKey,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({} {})", self.algorithm(), self.name)
    }
}

impl Credentials {
    /// From `--key-file` if given, else from the environment.
    pub fn load(key_file: Option<&Path>) -> Result<Credentials, AuthError> {
        match key_file {
            Some(path) => Credentials::from_file(path),
            None => Credentials::from_env(),
        }
    }

    /// Coinbase's downloaded key JSON.
    pub fn from_file(path: &Path) -> Result<Credentials, AuthError> {
        let shown = path.display().to_string();
        let unreadable = |reason: String| AuthError::Unreadable {
            path: shown.clone(),
            reason,
        };
        let size = std::fs::metadata(path).map_err(|e| unreadable(e.to_string()))?;
        if size.len() > KEY_FILE_BYTES_MAX {
            return Err(unreadable(format!(
                "{} bytes is too large for a key file",
                size.len()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?;
        let invalid = |reason: &str| AuthError::Invalid {
            source_name: format!("the key file {shown}"),
            reason: reason.to_string(),
        };
        // serde_json's error would quote the text it choked on: a secret.
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|_| {
            invalid("not JSON (expected Coinbase's key download: name, privateKey)")
        })?;
        let field = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| value.get(*n).and_then(|v| v.as_str()))
                .map(str::to_string)
        };
        let name = field(&["name", "id"]).ok_or_else(|| invalid("it has no \"name\""))?;
        let secret = field(&["privateKey", "private_key"])
            .ok_or_else(|| invalid("it has no \"privateKey\""))?;
        Credentials::new(name, &secret).map_err(|reason| invalid(&reason))
    }

    /// `COINBASE_API_KEY` and `COINBASE_API_SECRET`.
    pub fn from_env() -> Result<Credentials, AuthError> {
        let name = std::env::var(ENV_KEY_NAME).ok().filter(|s| !s.is_empty());
        let secret = std::env::var(ENV_KEY_SECRET).ok().filter(|s| !s.is_empty());
        match (name, secret) {
            (None, None) => Err(AuthError::Missing),
            (Some(name), Some(secret)) => {
                // A PEM pasted into one line keeps its newlines as `\n`.
                let secret = secret.replace("\\n", "\n");
                Credentials::new(name, &secret).map_err(|reason| AuthError::Invalid {
                    source_name: ENV_KEY_SECRET.to_string(),
                    reason,
                })
            }
            _ => Err(AuthError::HalfSet),
        }
    }

    /// A key named `name` with private key text `secret`; the reason it is
    /// not one, without its text.
    pub fn new(name: String, secret: &str) -> Result<Credentials, String> {
        if name.trim().is_empty() || name.len() > 512 {
            return Err("the key name is empty or too long".into());
        }
        let key = parse_key(secret.trim())?;
        Ok(Credentials { name, key })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn algorithm(&self) -> &'static str {
        match self.key {
            SigningKey::Es256(_) => "ES256",
            SigningKey::EdDsa(_) => "EdDSA",
        }
    }

    /// A token for one request: `method` (GET, POST), `host` as the request
    /// addresses it (`api.coinbase.com`, or `127.0.0.1:port`), `path`
    /// without the query, issued at `now_s` (the local clock), with a fresh
    /// random nonce.
    pub fn token(
        &self,
        method: &str,
        host: &str,
        path: &str,
        now_s: i64,
    ) -> Result<String, String> {
        let mut nonce = [0u8; 16];
        getrandom::getrandom(&mut nonce).map_err(|e| format!("no random nonce: {e}"))?;
        Ok(self.token_with_nonce(method, host, path, now_s, &hex(&nonce)))
    }

    /// [`Credentials::token`] with a given nonce (tests pin it).
    pub fn token_with_nonce(
        &self,
        method: &str,
        host: &str,
        path: &str,
        now_s: i64,
        nonce: &str,
    ) -> String {
        let header = serde_json::json!({
            "alg": self.algorithm(),
            "kid": self.name,
            "nonce": nonce,
            "typ": "JWT",
        });
        let claims = serde_json::json!({
            "sub": self.name,
            "iss": "cdp",
            "nbf": now_s,
            "exp": now_s + TOKEN_LIFE_S,
            "uri": format!("{method} {host}{path}"),
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        use ed25519_dalek::Signer as _;
        match &self.key {
            SigningKey::Es256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_bytes().to_vec()
            }
            SigningKey::EdDsa(key) => key.sign(message).to_bytes().to_vec(),
        }
    }

    /// The public key's SEC1 or raw bytes (tests verify with it).
    #[cfg(test)]
    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        use ed25519_dalek::Verifier as _;
        match &self.key {
            SigningKey::Es256(key) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|s| key.verifying_key().verify(message, &s).is_ok()),
            SigningKey::EdDsa(key) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|s| key.verifying_key().verify(message, &s).is_ok()),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The private key in any of the forms Coinbase issues. Errors never quote
/// the key.
fn parse_key(secret: &str) -> Result<SigningKey, String> {
    use ed25519_dalek::pkcs8::DecodePrivateKey as _;
    if secret.contains("-----BEGIN EC PRIVATE KEY-----") {
        return p256::SecretKey::from_sec1_pem(secret)
            .map(|k| SigningKey::Es256(k.into()))
            .map_err(|_| "the EC PRIVATE KEY PEM is not a valid P-256 key".into());
    }
    if secret.contains("-----BEGIN PRIVATE KEY-----") {
        if let Ok(key) = p256::SecretKey::from_pkcs8_pem(secret) {
            return Ok(SigningKey::Es256(key.into()));
        }
        return ed25519_dalek::SigningKey::from_pkcs8_pem(secret)
            .map(SigningKey::EdDsa)
            .map_err(|_| "the PRIVATE KEY PEM is neither a P-256 nor an Ed25519 key".into());
    }
    if secret.contains("-----BEGIN") {
        return Err("unsupported PEM (expected EC PRIVATE KEY or PRIVATE KEY)".into());
    }
    let bytes = STANDARD
        .decode(secret)
        .map_err(|_| "the private key is neither a PEM nor base64 (Coinbase's Ed25519 export)")?;
    ed25519_from_bytes(&bytes)
}

/// Coinbase's Ed25519 export: the seed and the public key (64 bytes), or
/// the seed alone (32); a public key that does not belong to the seed is refused.
fn ed25519_from_bytes(bytes: &[u8]) -> Result<SigningKey, String> {
    let seed: [u8; 32] = bytes
        .get(..32)
        .and_then(|s| s.try_into().ok())
        .filter(|_| bytes.len() == 32 || bytes.len() == 64)
        .ok_or_else(|| {
            format!(
                "a base64 private key must hold 32 or 64 bytes (Ed25519), not {}",
                bytes.len()
            )
        })?;
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    if bytes.len() == 64 && key.verifying_key().as_bytes() != &bytes[32..] {
        return Err("the Ed25519 key's public half does not match its seed".into());
    }
    Ok(SigningKey::EdDsa(key))
}

/// The parts of a token, decoded (tests and the 401 diagnosis).
#[cfg(test)]
fn decode_part(part: &str) -> serde_json::Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/keys")
            .join(name)
    }

    fn check_token(credentials: &Credentials, alg: &str) {
        let token = credentials
            .token(
                "POST",
                "api.coinbase.com",
                "/api/v3/brokerage/orders",
                1_700_000_000,
            )
            .unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header = decode_part(parts[0]);
        let claims = decode_part(parts[1]);
        assert_eq!(header["alg"], alg);
        assert_eq!(header["kid"], credentials.name());
        assert_eq!(header["nonce"].as_str().unwrap().len(), 32);
        assert_eq!(claims["sub"], credentials.name());
        assert_eq!(claims["iss"], "cdp");
        assert_eq!(claims["nbf"], 1_700_000_000);
        assert_eq!(claims["exp"], 1_700_000_120);
        assert_eq!(
            claims["uri"],
            "POST api.coinbase.com/api/v3/brokerage/orders"
        );
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        assert_eq!(signature.len(), 64);
        let input = format!("{}.{}", parts[0], parts[1]);
        assert!(credentials.verify(input.as_bytes(), &signature));
        assert!(!credentials.verify(b"another message", &signature));
    }

    #[test]
    fn every_key_form_coinbase_issues_signs_a_verifiable_token() {
        check_token(
            &Credentials::from_file(&fixture("ecdsa.json")).unwrap(),
            "ES256",
        );
        check_token(
            &Credentials::from_file(&fixture("ed25519.json")).unwrap(),
            "EdDSA",
        );
        check_token(
            &Credentials::from_file(&fixture("ed25519-pem.json")).unwrap(),
            "EdDSA",
        );
    }

    #[test]
    fn two_tokens_never_share_a_nonce() {
        let c = Credentials::from_file(&fixture("ecdsa.json")).unwrap();
        let a = c.token("GET", "h", "/p", 1).unwrap();
        let b = c.token("GET", "h", "/p", 1).unwrap();
        let nonce = |t: &str| decode_part(t.split('.').next().unwrap())["nonce"].clone();
        assert_ne!(nonce(&a), nonce(&b));
    }

    #[test]
    fn bad_keys_are_refused_without_quoting_the_secret() {
        let secret =
            "-----BEGIN EC PRIVATE KEY-----\nTOPSECRETTOPSECRET\n-----END EC PRIVATE KEY-----";
        let error = Credentials::new("k".into(), secret).unwrap_err();
        assert!(!error.contains("TOPSECRET"), "{error}");
        let error = Credentials::new("k".into(), "TOPSECRET!!").unwrap_err();
        assert!(!error.contains("TOPSECRET"), "{error}");
        let error = Credentials::new("k".into(), &STANDARD.encode([7u8; 48])).unwrap_err();
        assert!(error.contains("32 or 64 bytes"), "{error}");
        // A 64-byte export whose public half is someone else's.
        let mut bytes = [7u8; 64];
        bytes[40] = 1;
        let error = Credentials::new("k".into(), &STANDARD.encode(bytes)).unwrap_err();
        assert!(error.contains("does not match"), "{error}");
        assert!(Credentials::new(" ".into(), &STANDARD.encode([7u8; 32])).is_err());
    }

    #[test]
    fn a_key_file_that_is_not_json_is_refused_without_its_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        std::fs::write(&path, "name=TOPSECRET").unwrap();
        let error = Credentials::from_file(&path).unwrap_err().to_string();
        assert!(
            error.contains("not JSON") && !error.contains("TOPSECRET"),
            "{error}"
        );
        let missing = Credentials::from_file(&dir.path().join("none.json")).unwrap_err();
        assert!(matches!(missing, AuthError::Unreadable { .. }));
    }

    #[test]
    fn debug_shows_the_name_never_the_key() {
        let c = Credentials::from_file(&fixture("ecdsa.json")).unwrap();
        let text = format!("{c:?}");
        assert!(text.contains("ES256") && text.contains("apiKeys"));
        let file = std::fs::read_to_string(fixture("ecdsa.json")).unwrap();
        let value: serde_json::Value = serde_json::from_str(&file).unwrap();
        let body = value["privateKey"]
            .as_str()
            .unwrap()
            .lines()
            .nth(1)
            .unwrap();
        assert!(!text.contains(body));
    }
}
