//! API key material: generation, parsing and hashing.
//!
//! A key reads `aurum_<keyid>_<secret>`: the 12-character key id is public and indexes the
//! stored row, so verification costs one lookup and one hash rather than a scan; the secret is
//! 32 bytes (256 bits) from the thread-local CSPRNG, hex-encoded.
//!
//! **Why a fast hash, not argon2.** Slow password hashes (argon2, bcrypt) exist to make guessing
//! a *low-entropy* password from a stolen hash expensive. An API key secret has 256 bits of
//! entropy: no amount of guessing finds a preimage of SHA-256 for it, slow or fast. A slow hash
//! on the request path only hands an attacker a lever: each wrong guess cost the server 19 MiB
//! and 17 ms of argon2, so a flood of wrong secrets exhausted memory and CPU. aurum therefore
//! stores `sha256$<hex>`, the SHA-256 of a domain-separation prefix and the whole key
//! (microseconds, no allocation of note), and compares digests in constant time.
//!
//! Keys created by earlier versions are stored as argon2id PHC strings. They still verify, on a
//! bounded pool in the service layer, and the first successful verification replaces the stored
//! hash by the fast form ([`crate::MetadataStore::upgrade_key_hash`]).

use argon2::Argon2;
use argon2::password_hash::PasswordVerifier;
use argon2::password_hash::phc::PasswordHash;
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::error::{RegistryError, Result};

const PREFIX: &str = "aurum_";
const KEY_ID_LEN: usize = 12;
const KEY_ID_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const SECRET_BYTES: usize = 32;
/// Separates API-key digests from every other SHA-256 aurum computes.
const DOMAIN: &[u8] = b"aurum-api-key-v1\0";
const FAST_PREFIX: &str = "sha256$";

/// A freshly generated key: its public id and the full plaintext.
#[derive(Debug)]
pub struct GeneratedKey {
    pub id: String,
    pub plaintext: String,
}

/// A new key: a random 12-character id and a 256-bit secret from the thread-local CSPRNG.
pub fn generate() -> GeneratedKey {
    let mut rng = rand::rng();
    let id: String = (0..KEY_ID_LEN)
        .map(|_| char::from(KEY_ID_ALPHABET[rng.random_range(0..KEY_ID_ALPHABET.len())]))
        .collect();
    let mut secret = [0u8; SECRET_BYTES];
    rng.fill(&mut secret[..]);
    let plaintext = format!("{PREFIX}{id}_{}", hex::encode(secret));
    GeneratedKey { id, plaintext }
}

/// The key id of a well-formed key, `None` for anything else.
pub fn parse_key_id(plaintext: &str) -> Option<&str> {
    let rest = plaintext.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == KEY_ID_LEN && id.bytes().all(|b| KEY_ID_ALPHABET.contains(&b));
    let secret_ok = secret.len() == SECRET_BYTES * 2
        && secret
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (id_ok && secret_ok).then_some(id)
}

/// The digest of a presented key. Computed for every presented key, well-formed or not, so that
/// the work done does not depend on whether the key id exists.
pub fn key_digest(plaintext: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update(plaintext.as_bytes());
    h.finalize().into()
}

/// The stored form of a new key's hash.
pub fn hash(plaintext: &str) -> String {
    format!("{FAST_PREFIX}{}", hex::encode(key_digest(plaintext)))
}

/// A stored key hash, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredKeyHash {
    /// `sha256$<hex>`: compare [`key_digest`]s.
    Sha256([u8; 32]),
    /// An argon2id PHC string written by an earlier version (slow; upgraded on first success).
    Argon2(String),
}

impl StoredKeyHash {
    pub fn parse(stored: &str) -> Result<StoredKeyHash> {
        if let Some(hex_digest) = stored.strip_prefix(FAST_PREFIX) {
            let bytes = hex::decode(hex_digest)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| {
                    RegistryError::CorruptRecord("stored API key digest is not 32 hex bytes".into())
                })?;
            return Ok(StoredKeyHash::Sha256(bytes));
        }
        if stored.starts_with("$argon2") {
            return Ok(StoredKeyHash::Argon2(stored.to_string()));
        }
        Err(RegistryError::CorruptRecord(
            "stored API key hash has an unknown format".into(),
        ))
    }

    /// The stored text form.
    pub fn to_stored(&self) -> String {
        match self {
            StoredKeyHash::Sha256(d) => format!("{FAST_PREFIX}{}", hex::encode(d)),
            StoredKeyHash::Argon2(phc) => phc.clone(),
        }
    }
}

/// Constant-time equality of two digests: the time taken does not depend on where they differ.
pub fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Whether `plaintext` matches a legacy argon2id PHC string. Slow (milliseconds, ~19 MiB):
/// callers bound how many run at once.
pub fn verify_argon2(plaintext: &str, phc: &str) -> Result<bool> {
    let parsed = PasswordHash::new(phc)
        .map_err(|e| RegistryError::CorruptRecord(format!("stored API key hash: {e}")))?;
    match Argon2::default().verify_password(plaintext.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(e) => Err(RegistryError::Internal(format!(
            "verifying an API key failed: {e}"
        ))),
    }
}

/// Verifies `plaintext` against a stored hash of either form.
pub fn verify(plaintext: &str, stored: &StoredKeyHash) -> Result<bool> {
    match stored {
        StoredKeyHash::Sha256(d) => Ok(digests_equal(&key_digest(plaintext), d)),
        StoredKeyHash::Argon2(phc) => verify_argon2(plaintext, phc),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordHasher;

    #[test]
    fn generated_keys_parse_and_differ() {
        let a = generate();
        let b = generate();
        assert_ne!(a.plaintext, b.plaintext);
        assert_eq!(parse_key_id(&a.plaintext), Some(a.id.as_str()));
        assert_eq!(a.plaintext.len(), PREFIX.len() + KEY_ID_LEN + 1 + 64);
    }

    #[test]
    fn malformed_keys_do_not_parse() {
        let good = generate().plaintext;
        assert!(parse_key_id("").is_none());
        assert!(parse_key_id("aurum_").is_none());
        assert!(parse_key_id(&good.replacen("aurum_", "other_", 1)).is_none());
        assert!(parse_key_id(&good[..good.len() - 1]).is_none());
        assert!(parse_key_id(&good.to_uppercase()).is_none());
        assert!(parse_key_id(&format!("{good}_")).is_none());
    }

    #[test]
    fn hash_verifies_only_the_same_key() {
        let key = generate().plaintext;
        let stored = hash(&key);
        assert!(stored.starts_with("sha256$"));
        assert!(!stored.contains(&key[PREFIX.len() + KEY_ID_LEN + 1..]));
        let parsed = StoredKeyHash::parse(&stored).unwrap();
        assert_eq!(parsed.to_stored(), stored);
        assert!(verify(&key, &parsed).unwrap());
        assert!(!verify(&generate().plaintext, &parsed).unwrap());
        assert!(StoredKeyHash::parse("not a hash").is_err());
        assert!(StoredKeyHash::parse("sha256$abcd").is_err());
    }

    #[test]
    fn legacy_argon2_hashes_still_verify() {
        let key = generate().plaintext;
        let phc = Argon2::default()
            .hash_password(key.as_bytes())
            .unwrap()
            .to_string();
        let parsed = StoredKeyHash::parse(&phc).unwrap();
        assert!(matches!(parsed, StoredKeyHash::Argon2(_)));
        assert!(verify(&key, &parsed).unwrap());
        assert!(!verify(&generate().plaintext, &parsed).unwrap());
    }

    #[test]
    fn digest_comparison_is_exact() {
        let a = key_digest("a");
        let mut b = a;
        assert!(digests_equal(&a, &b));
        b[31] ^= 1;
        assert!(!digests_equal(&a, &b));
        b = a;
        b[0] ^= 0x80;
        assert!(!digests_equal(&a, &b));
    }
}
